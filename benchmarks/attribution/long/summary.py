"""Summarise the long-context runs of run.sh: accuracy (95% Wilson) per dataset, method and context
length, accuracy by the gold chunks' depth (the lengths with distractors pooled), and the cost of
the logit capture against one plain forward pass of the same example (seconds and peak extra
memory, both means per example); summary.md and summary.png."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

from rcstat.evaluation.attribution.data import load_examples
from rcstat.evaluation.intervals import wilson
from rcstat.io import write_atomic
from rcstat.render.plots import pyplot, save

HERE = Path(__file__).resolve().parent
DATASETS = ("quotesum", "verigran")
LENGTHS = ("own", "1024", "2048", "4096", "7168", "7680")


def pooled(paths: list[Path]) -> dict:
    """The files of one length as one run: their records (each example once, at its position in the
    whole slice), accuracy recomputed from them, cost means over their examples, commits and commands."""
    files = [json.loads(p.read_text()) for p in paths]
    records = [r for f in files for r in f["records"]]
    firsts = [r for r in records if r["target"] == 0]  # one per example
    positions = [r["example"] for r in firsts]
    if len(set(positions)) != len(positions):
        raise SystemExit(f"{[p.name for p in paths]}: an example is in more than one file")

    def mean(key: str, scale: float = 1.0) -> float:
        values = [r[key] for r in firsts if r.get(key) is not None]
        return sum(values) / len(values) / scale if values else math.nan

    return {
        "methods": [row["method"] for row in files[0]["results"]],
        "records": records,
        "examples": len(firsts),
        "context_tokens_mean": mean("context_tokens"),
        "pass_seconds_mean": mean("pass_seconds"),
        "forward_seconds_mean": mean("forward_seconds"),
        "pass_peak_mib_mean": mean("pass_peak_bytes", 2**20),
        "forward_peak_mib_mean": mean("forward_peak_bytes", 2**20),
        "commits": [f["commit"] for f in files],
        "commands": [f["command"] for f in files],
        "data": files[0]["data"],
        "dataset": files[0]["dataset"],
        "skip": files[0]["skip"] - files[0].get("first", 0),  # the whole slice's
    }


def runs() -> dict[str, dict[str, dict]]:
    """``{dataset: {length: pooled run}}`` from the files ``DATASET-FIRST-LAST-LENGTH.json`` that exist
    (a length's files pooled: the slice run in parts, see tail.py)."""
    out: dict[str, dict[str, dict]] = {}
    for dataset in DATASETS:
        for length in LENGTHS:
            paths = sorted(HERE.glob(f"{dataset}-*-{length}.json"), key=lambda p: int(p.name.split("-")[1]))
            if paths:
                out.setdefault(dataset, {})[length] = pooled(paths)
    return out


def accuracy(run: dict, method: str) -> tuple[int, int]:
    return sum(int(r["methods"][method]["correct"]) for r in run["records"]), len(run["records"])


def _cell(correct: int, n: int) -> str:
    low, high = wilson(correct, n)
    return f"{correct / n:.3f} [{low:.2f}, {high:.2f}]" if n else "–"


def by_depth(lengths: dict[str, dict], method: str) -> dict[float, tuple[int, int]]:
    """``{depth: (correct, n)}`` over every run with distractors."""
    out: dict[float, tuple[int, int]] = {}
    for run in lengths.values():
        for r in run["records"]:
            if r.get("depth") is None:
                continue
            c, n = out.get(r["depth"], (0, 0))
            out[r["depth"]] = (c + int(r["methods"][method]["correct"]), n + 1)
    return dict(sorted(out.items()))


def own_chunks(run: dict) -> dict[int, int] | None:
    """``{position in the slice: how many chunks the example has of its own}`` from the data file the
    run read (relative to the checkout), or None where it is not there."""
    path = HERE.parents[2] / run["data"]
    if not path.exists():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file's flawed records, reported by the runs themselves
        examples = load_examples(run["dataset"], path).examples[run["skip"] :]
    return {i: len(e.chunks) for i, e in enumerate(examples)}


def depth0_misses(lengths: dict[str, dict], method: str) -> list[int] | None:
    """Spans with the gold chunks first (depth 0) over the lengths with distractors: ``[spans, wrong,
    wrong on another of the example's own chunks, on a distractor in the context's last quarter, on
    the last chunk itself, on another distractor]``."""
    out = [0] * 6
    for run in lengths.values():
        records = [r for r in run["records"] if r.get("depth") == 0]
        own = own_chunks(run) if records else {}
        if own is None:
            return None
        for r in records:
            out[0] += 1
            if r["methods"][method]["correct"]:
                continue
            top, last = r["methods"][method]["top"], r["chunks"] - 1
            out[1] += 1
            if top < own[r["example"]]:
                out[2] += 1
            elif top >= 0.75 * last:
                out[3] += 1
                out[4] += top == last
            else:
                out[5] += 1
    return out


def _costs(lengths: dict[str, dict]) -> list[str]:
    lines = ["", "| cost | " + " | ".join(lengths) + " |", "|---|" + "---|" * len(lengths)]
    for label, key in (("capture s", "pass_seconds_mean"), ("forward s", "forward_seconds_mean")):
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:.2f}" for r in lengths.values()) + " |")
    lines.append(
        "| capture / forward (time) | "
        + " | ".join(f"{r['pass_seconds_mean'] / r['forward_seconds_mean']:.1f}×" for r in lengths.values())
        + " |"
    )
    for label, key in (
        ("capture peak MiB", "pass_peak_mib_mean"),
        ("forward peak MiB", "forward_peak_mib_mean"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:.0f}" for r in lengths.values()) + " |")
    return lines


def _depths(lengths: dict[str, dict], methods: list[str]) -> list[str]:
    depths = sorted({d for m in methods for d in by_depth(lengths, m)})
    if not depths:
        return []
    lines = [
        "",
        "By depth of the gold chunks (0 first, 1 last; lengths with distractors pooled):",
        "",
        "| method | " + " | ".join(f"{d:g}" for d in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    for method in methods:
        cells = by_depth(lengths, method)
        lines.append(f"| {method} | " + " | ".join(_cell(*cells.get(d, (0, 0))) for d in depths) + " |")
    longest = list(lengths)[-1]
    lines += [
        "",
        f"By depth at the longest length ({longest} only):",
        "",
        "| method | " + " | ".join(f"{d:g}" for d in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    for method in methods:
        cells = by_depth({longest: lengths[longest]}, method)
        lines.append(f"| {method} | " + " | ".join(_cell(*cells.get(d, (0, 0))) for d in depths) + " |")
    rows = {m: depth0_misses(lengths, m) for m in methods if m != "random"}
    if any(v is None for v in rows.values()):
        return lines
    lines += [
        "",
        "Where the misses at depth 0 point (the chunk ranked first instead of a gold one; lengths with "
        "distractors pooled; the last quarter: from 3/4 of the chunks on):",
        "",
        "| method | wrong / spans | another own chunk | distractor in the last quarter | "
        "of which the last chunk | other distractor |",
        "|---|---|---|---|---|---|",
    ]
    for method, (spans, wrong, own, late, last, other) in rows.items():
        lines.append(f"| {method} | {wrong} / {spans} | {own} | {late} | {last} | {other} |")
    return lines


def markdown(data: dict[str, dict[str, dict]]) -> str:
    lines = [
        "# Attribution at long contexts",
        "",
        "Held-out slices with passages of other examples added up to about N context tokens (`own`: "
        "the example as it is). Accuracy: the top-scored chunk is an annotated one, per span, with "
        "95% Wilson intervals (spans of one example are not independent, so they are optimistic). "
        "Cost: the logit capture (every method's shared pass) against one plain forward pass of the "
        "same tokens with the model's own attention, means per example. A length run in parts (tail.py: "
        "the missing examples on the contexts a whole run gives them) is pooled; its parts ran on a "
        "machine shared with other jobs at different times, so its seconds mix loads (memory does not). "
        "A run records the checkout's commit when it ends (`-dirty`: others' uncommitted files). "
        "Where the misses at depth 0 point (last table of each dataset): a distractor in the context's "
        "last quarter is the passage nearest the response winning over the far gold one (the README's "
        "long-context section: recency, not a first-position effect).",
    ]
    for dataset, lengths in data.items():
        methods = next(iter(lengths.values()))["methods"]
        lines += [
            "",
            f"## {dataset}",
            "",
            "Commits: " + "; ".join(f"{k} {', '.join(r['commits'])}" for k, r in lengths.items()) + ".",
            "",
            "| method | "
            + " | ".join(
                f"{k} (~{r['context_tokens_mean']:.0f} tok, {r['examples']} ex.)" for k, r in lengths.items()
            )
            + " |",
            "|---|" + "---|" * len(lengths),
        ]
        for method in methods:
            cells = [_cell(*accuracy(run, method)) for run in lengths.values()]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += _costs(lengths) + _depths(lengths, methods)
        commands = [c for r in lengths.values() for c in r["commands"]]
        lines += ["", "Commands: " + "; ".join(f"`{c}`" for c in commands)]
    return "\n".join(lines) + "\n"


def plot(data: dict[str, dict[str, dict]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(data), figsize=(5.5 * len(data), 8), dpi=100, squeeze=False)
    for col, (dataset, lengths) in enumerate(data.items()):
        for method in next(iter(lengths.values()))["methods"]:
            xs = [r["context_tokens_mean"] for r in lengths.values()]
            ys = [c / n for c, n in (accuracy(r, method) for r in lengths.values())]
            axes[0, col].plot(xs, ys, marker="o", label=method)
            cells = by_depth(lengths, method)
            axes[1, col].plot(list(cells), [c / n for c, n in cells.values()], marker="o", label=method)
        axes[0, col].set_xscale("log", base=2)
        axes[0, col].set_xlabel("context tokens (mean)")
        axes[0, col].set_title(f"{dataset}: accuracy against context length", fontsize=9)
        axes[1, col].set_xlabel("depth of the gold chunks (0 first, 1 last)")
        axes[1, col].set_title(f"{dataset}: accuracy against depth (with distractors)", fontsize=9)
        for ax in axes[:, col]:
            ax.set_ylabel("accuracy")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)


def main() -> None:
    data = runs()
    write_atomic(HERE / "summary.md", markdown(data).encode())
    plot(data, HERE / "summary.png")
    print(markdown(data))


if __name__ == "__main__":
    main()
