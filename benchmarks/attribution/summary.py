"""Summary of held-out attribution runs (issue 4): one table and one figure from the result JSONs.

Runs of the same dataset are pooled span by span (they are disjoint slices of its dev file). For
each dataset: chunk top-1 accuracy per method with a 95% Wilson interval, the mean log-prob drop
when the top-1 / top-3 chunks are removed (95% normal interval; spans where it was measured), the
time per example, and paired comparisons of RC against each other method on the same spans
(spans only RC gets right vs only the other gets right, with an exact two-sided sign test).

    python benchmarks/attribution/summary.py benchmarks/attribution/{quotesum,verigran}-*.json \
        --output benchmarks/attribution/summary.md --plot benchmarks/attribution/summary.png
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from rcstat.evaluation.intervals import normal, wilson
from rcstat.io import write_atomic


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial p-value of ``wins`` vs ``losses`` under p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(entries: list[dict], ref: list[dict]) -> tuple[int, int]:
    """Spans only ``entries`` get right, and spans only ``ref`` gets right (the same spans, in order)."""
    pairs = list(zip(entries, ref, strict=True))
    return (
        sum(e["correct"] and not r["correct"] for e, r in pairs),
        sum(r["correct"] and not e["correct"] for e, r in pairs),
    )


def pooled(paths: list[str]) -> dict[str, dict]:
    """Per dataset: its runs, methods (in run order) and every span's entry per method."""
    out: dict[str, dict] = {}
    for path in paths:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
        data = out.setdefault(run["dataset"], {"runs": [], "methods": [], "entries": {}, "seconds": {}})
        data["runs"].append(run)
        for result in run["results"]:
            name = result["method"]
            if name not in data["methods"]:
                data["methods"].append(name)
            data["seconds"].setdefault(name, []).append((result["seconds_per_example"], result["examples"]))
        for record in run["records"]:
            for name, entry in record["methods"].items():
                data["entries"].setdefault(name, []).append(entry)
    return out


def table(datasets: dict[str, dict], reference: str = "rcstat") -> str:
    lines = []
    for name, data in datasets.items():
        slices = ", ".join(
            f"{r['skip'] + 1}–{r['skip'] + r['examples']}"
            for r in sorted(data["runs"], key=lambda r: r["skip"])
        )
        spans = len(data["entries"][data["methods"][0]])
        lines += [
            f"### {name} dev, examples {slices} ({spans} spans; `{data['runs'][0]['scoring']}`)",
            "",
            "| method | top-1 accuracy [95% CI] | log-prob drop @1 [95% CI] (n) | @3 (n) | s / example |"
            f" vs {reference}: only it right / only {reference} right (sign test p) |"
            f" drop @1 minus {reference}'s, paired [95% CI] |",
            "|---|---:|---:|---:|---:|---|---:|",
        ]
        ref = data["entries"].get(reference)
        for method in data["methods"]:
            entries = data["entries"][method]
            correct = sum(e["correct"] for e in entries)
            low, high = wilson(correct, len(entries))
            cells = [f"{correct / len(entries):.3f} [{low:.2f}, {high:.2f}]"]
            for k in (1, 3):
                drops = [e[f"drop@{k}"] for e in entries if f"drop@{k}" in e]
                if drops:
                    dl, dh = normal(drops)
                    cells.append(f"{statistics.fmean(drops):.1f} [{dl:.1f}, {dh:.1f}] ({len(drops)})")
                else:
                    cells.append("–")
            seconds = data["seconds"][method]
            cells.append(f"{sum(s * n for s, n in seconds) / sum(n for _, n in seconds):.2f}")
            if ref is None or method == reference:
                cells += ["", ""]
            else:
                pairs = list(zip(entries, ref, strict=True))
                only_it, only_ref = paired(entries, ref)
                cells.append(f"{only_it} / {only_ref} (p = {sign_test(only_it, only_ref):.3f})")
                diffs = [e["drop@1"] - r["drop@1"] for e, r in pairs if "drop@1" in e and "drop@1" in r]
                if diffs:
                    dl, dh = normal(diffs)
                    cells.append(f"{statistics.fmean(diffs):+.1f} [{dl:+.1f}, {dh:+.1f}]")
                else:
                    cells.append("–")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _option(run: dict, flag: str) -> str:
    """The value of ``flag`` in the run's recorded command."""
    words = run["command"].split()
    return words[words.index(flag) + 1] if flag in words else "?"


def side_table(paths: list[str], mains: list[str], reference: str = "rcstat") -> str:
    """Runs of other settings (ContextCite's) against the main runs' RC on the same spans.

    Times compare each method with the side run's own ``reference`` pass (same run, same load)."""
    main_runs = {
        (r["dataset"], r["skip"], r["examples"]): r
        for r in (json.loads(Path(m).read_text(encoding="utf-8")) for m in mains)
    }
    lines = []
    for path in paths:
        side = json.loads(Path(path).read_text(encoding="utf-8"))
        main = main_runs.get((side["dataset"], side["skip"], side["examples"]))
        if main is None:
            raise SystemExit(f"{path}: no main run covers the same examples")
        keys = [(r["example"], r["target"]) for r in side["records"]]
        if keys != [(r["example"], r["target"]) for r in main["records"]]:
            raise SystemExit(f"{path}: its spans differ from the main run's")
        ref = [r["methods"][reference] for r in main["records"]]
        ref_correct = sum(e["correct"] for e in ref)
        own = {r["method"]: r for r in side["results"]}
        lines += [
            f"### {side['dataset']} dev, examples {side['skip'] + 1}–{side['skip'] + side['examples']}: "
            f"`{Path(path).name}` ({_option(side, '--ablations')} ablations; "
            f"its {reference}: `{side['scoring']}`) "
            f"against {reference} with `{main['scoring']}` (`{Path(_option(main, '--output')).name}`)",
            "",
            f"| method (side run) | accuracy [95% CI] | {reference} (main run), same spans | "
            f"only it right / only {reference} right (p) | s / example | × the side run's {reference} time |",
            "|---|---:|---:|---|---:|---:|",
        ]
        for name, result in own.items():
            entries = [r["methods"][name] for r in side["records"]]
            only_it, only_ref = paired(entries, ref)
            low, high = result["ci95"]
            ratio = result["seconds_per_example"] / own[reference]["seconds_per_example"]
            lines.append(
                f"| {name} | {result['accuracy']:.3f} [{low:.2f}, {high:.2f}] | "
                f"{ref_correct / len(ref):.3f} | "
                f"{only_it} / {only_ref} (p = {sign_test(only_it, only_ref):.3f}) | "
                f"{result['seconds_per_example']:.2f} | {ratio:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(datasets: dict[str, dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 3.6), squeeze=False)
    for ax, (name, data) in zip(axes[0], datasets.items(), strict=True):
        methods = data["methods"]
        accs, errs = [], [[], []]
        for method in methods:
            entries = data["entries"][method]
            correct = sum(e["correct"] for e in entries)
            acc = correct / len(entries)
            low, high = wilson(correct, len(entries))
            accs.append(acc)
            errs[0].append(acc - low)
            errs[1].append(high - acc)
        colours = ["tab:red" if m.startswith("rcstat") else "tab:gray" for m in methods]
        ax.barh(range(len(methods)), accs, xerr=errs, color=colours, capsize=3)
        ax.set_yticks(range(len(methods)), methods)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("chunk top-1 accuracy (95% Wilson)")
        ax.set_title(f"{name}: {len(data['entries'][methods[0]])} held-out spans")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="result JSONs of rcstat bench attribution")
    parser.add_argument("--output", help="markdown to write (default: stdout)")
    parser.add_argument("--plot", help="PNG of the accuracies with their intervals")
    parser.add_argument(
        "--side", nargs="*", default=[], help="runs of other settings (ContextCite's) to pair"
    )
    args = parser.parse_args()
    datasets = pooled(args.results)
    text = table(datasets)
    if args.side:
        text += "\n## Side runs, paired with the main runs' RC\n\n" + side_table(args.side, args.results)
    if args.output:
        write_atomic(args.output, text.encode())
    else:
        print(text)
    if args.plot:
        plot(datasets, args.plot)


if __name__ == "__main__":
    main()
