"""Summarise the long-context runs of run.sh: accuracy (95% Wilson) per dataset, method and context
length, accuracy by the gold chunks' depth (the lengths with distractors pooled), and the cost of
the logit capture against one plain forward pass of the same example (seconds and peak extra
memory, both means per example); summary.md and summary.png."""

from __future__ import annotations

import json
from pathlib import Path

from rcstat.evaluation.intervals import wilson
from rcstat.io import write_atomic
from rcstat.render.plots import pyplot, save

HERE = Path(__file__).resolve().parent
DATASETS = ("quotesum", "verigran")
LENGTHS = ("own", "1024", "2048", "4096", "7168", "7680")


def runs() -> dict[str, dict[str, dict]]:
    """``{dataset: {length: run}}`` from the files ``DATASET-FIRST-LAST-LENGTH.json`` that exist."""
    out: dict[str, dict[str, dict]] = {}
    for dataset in DATASETS:
        for length in LENGTHS:
            for path in sorted(HERE.glob(f"{dataset}-*-{length}.json")):
                out.setdefault(dataset, {})[length] = json.loads(path.read_text())
    return out


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


def markdown(data: dict[str, dict[str, dict]]) -> str:
    lines = [
        "# Attribution at long contexts",
        "",
        "Held-out slices with passages of other examples added up to about N context tokens (`own`: "
        "the example as it is). Accuracy: the top-scored chunk is an annotated one, per span, with "
        "95% Wilson intervals (spans of one example are not independent, so they are optimistic). "
        "Cost: the logit capture (every method's shared pass) against one plain forward pass of the "
        "same tokens with the model's own attention, means per example, in one run.",
    ]
    for dataset, lengths in data.items():
        first = next(iter(lengths.values()))
        methods = [row["method"] for row in first["results"]]
        commits = ", ".join(sorted({r["commit"] for r in lengths.values()}))
        lines += [
            "",
            f"## {dataset} (commit {commits})",
            "",
            "| method | "
            + " | ".join(
                f"{k} (~{r['context_tokens_mean']:.0f} tok, {r['examples']} ex.)" for k, r in lengths.items()
            )
            + " |",
            "|---|" + "---|" * len(lengths),
        ]
        for method in methods:
            cells = []
            for run in lengths.values():
                row = next(r for r in run["results"] if r["method"] == method)
                cells.append(_cell(round(row["accuracy"] * row["n"]), row["n"]))
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += ["", "| cost | " + " | ".join(lengths) + " |", "|---|" + "---|" * len(lengths)]
        for label, key in (("capture s", "pass_seconds_mean"), ("forward s", "forward_seconds_mean")):
            lines.append(f"| {label} | " + " | ".join(f"{r[key]:.2f}" for r in lengths.values()) + " |")
        lines.append(
            "| capture / forward (time) | "
            + " | ".join(
                f"{r['pass_seconds_mean'] / r['forward_seconds_mean']:.1f}×" for r in lengths.values()
            )
            + " |"
        )
        for label, key in (
            ("capture peak MiB", "pass_peak_mib_mean"),
            ("forward peak MiB", "forward_peak_mib_mean"),
        ):
            lines.append(f"| {label} | " + " | ".join(f"{r[key]:.0f}" for r in lengths.values()) + " |")
        depths = sorted({d for m in methods for d in by_depth(lengths, m)})
        if depths:
            lines += [
                "",
                "By depth of the gold chunks (0 first, 1 last; lengths with distractors pooled):",
                "",
                "| method | " + " | ".join(f"{d:g}" for d in depths) + " |",
                "|---|" + "---|" * len(depths),
            ]
            for method in methods:
                cells = by_depth(lengths, method)
                lines.append(
                    f"| {method} | " + " | ".join(_cell(*cells.get(d, (0, 0))) for d in depths) + " |"
                )
        lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in lengths.values())]
    return "\n".join(lines) + "\n"


def plot(data: dict[str, dict[str, dict]], path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(data), figsize=(5.5 * len(data), 8), dpi=100, squeeze=False)
    for col, (dataset, lengths) in enumerate(data.items()):
        methods = [row["method"] for row in next(iter(lengths.values()))["results"]]
        for method in methods:
            xs = [r["context_tokens_mean"] for r in lengths.values()]
            ys = [
                next(x for x in r["results"] if x["method"] == method)["accuracy"] for r in lengths.values()
            ]
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
