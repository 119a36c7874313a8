"""Paired comparison of two presses on the samples both ran, from two KV runs' logs (git-ignored:
rerun the runs to get them): per ratio the mean difference of the per-sample scores with its 95%
interval (normal approximation), wins and losses, and the means per family.

    python benchmarks/kv/paired.py LOG_A:PRESS_A LOG_B:PRESS_B [--output FILE.md]

The difference of two means measured on the same samples has a far narrower interval than either
mean: two presses whose own intervals overlap can still be apart, sample by sample.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from rcstat.evaluation.intervals import normal
from rcstat.evaluation.provenance import git_commit
from rcstat.evaluation.runlog import records
from rcstat.io import write_atomic


def _score(record: dict, press: str, ratio: float) -> float:
    cell = record["results"].get(f"{press}@{ratio:g}") or record["results"][f"{press}@0"]  # the full cache
    return float(cell["score"])


def compare(a: tuple[Path, str], b: tuple[Path, str], ratios: list[float]) -> str:
    """The markdown tables of press ``a`` against press ``b`` on the samples both logs hold."""
    (log_a, press_a), (log_b, press_b) = a, b
    ra, rb = ({r["key"]: r for r in records(log)} for log in (log_a, log_b))
    keys = sorted(set(ra) & set(rb))
    out = [
        f"**{press_a}** (`{log_a}`) against **{press_b}** (`{log_b}`), n = {len(keys)} samples both ran",
        "",
        "| ratio | " + press_a + " | " + press_b + " | difference [95% CI] | wins | losses |",
        "|---:|---:|---:|---|---:|---:|",
    ]
    for ratio in ratios:
        xa = [_score(ra[k], press_a, ratio) for k in keys]
        xb = [_score(rb[k], press_b, ratio) for k in keys]
        diff = [x - y for x, y in zip(xa, xb, strict=True)]
        lo, hi = normal(diff) or (float("nan"), float("nan"))
        out.append(
            f"| {ratio:g} | {statistics.fmean(xa):.3f} | {statistics.fmean(xb):.3f} | "
            f"{statistics.fmean(diff):+.3f} [{lo:+.3f}, {hi:+.3f}] | "
            f"{sum(d > 0 for d in diff)} | {sum(d < 0 for d in diff)} |"
        )
    by_task: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        by_task[ra[k]["task"]].append(k)
    out += ["", f"Per family ({press_a} / {press_b}):", ""]
    out += ["| family | n | " + " | ".join(f"{r:g}" for r in ratios) + " |"]
    out += ["|---|---:|" + "---|" * len(ratios)]
    for task, ks in sorted(by_task.items()):
        cells = [
            f"{statistics.fmean(_score(ra[k], press_a, r) for k in ks):.2f} / "
            f"{statistics.fmean(_score(rb[k], press_b, r) for k in ks):.2f}"
            for r in ratios
        ]
        out.append(f"| {task} | {len(ks)} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="LOG:PRESS")
    parser.add_argument("b", help="LOG:PRESS")
    parser.add_argument("--ratios", default="0.25,0.5,0.75,0.9")
    parser.add_argument("--output", type=Path, default=None, help="append the tables to this markdown file")
    args = parser.parse_args()
    sides = [(Path(s.rsplit(":", 1)[0]), s.rsplit(":", 1)[1]) for s in (args.a, args.b)]
    text = compare(sides[0], sides[1], [float(r) for r in args.ratios.split(",")])
    text += f"\n`python benchmarks/kv/paired.py {args.a} {args.b}` at {git_commit()}\n\n"
    print(text)
    if args.output:
        previous = args.output.read_text() if args.output.exists() else ""
        write_atomic(args.output, (previous + text).encode())
        print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
