"""Pool the citation runs of run.sh per split and dataset: precision, recall (95% Wilson over the
pooled counts) and F1 per margin, the default margin marked; summary.md and summary.png."""

from __future__ import annotations

import json
from pathlib import Path

from rcstat.evaluation.attribution.citations import summarise_citations
from rcstat.io import write_atomic
from rcstat.options import DEFAULT_CITE_MARGIN
from rcstat.render.plots import pyplot, save

HERE = Path(__file__).resolve().parent
SPLITS = {
    ("development", "quotesum"): ["dev-quotesum-1-40.json"],
    ("development", "verigran"): ["dev-verigran-31-70.json"],
    ("held out", "quotesum"): ["quotesum-41-130.json"],
    ("held out", "verigran"): ["verigran-1-30.json", "verigran-71-125.json"],
}


def pooled() -> dict[tuple[str, str], dict]:
    out = {}
    for key, files in SPLITS.items():
        runs = [json.loads((HERE / f).read_text()) for f in files if (HERE / f).exists()]
        if not runs:
            continue
        margins = [r["margin"] for r in runs[0]["results"]]
        records = [rec for run in runs for rec in run["records"]]
        out[key] = {
            "examples": sum(run["examples"] for run in runs),
            "commits": sorted({run["commit"] for run in runs}),
            "commands": [run["command"] for run in runs],
            "rows": summarise_citations(records, margins),
        }
    return out


def markdown(tables: dict) -> str:
    lines = [
        "# Citations: precision and recall against the annotated sources",
        "",
        f"Default margin {DEFAULT_CITE_MARGIN:g} (bold), chosen on the development split. A sentence cites "
        "every chunk scoring within the margin of its best chunk, and none when the best does not lead "
        "the median chunk by the margin. Only sentences that overlap an annotated span count; intervals "
        "are 95% Wilson over pooled counts (the sentences of one response are not independent, so they "
        "are optimistic).",
    ]
    for (split, dataset), table in tables.items():
        lines += [
            "",
            f"## {split}: {dataset} ({table['examples']} examples; commit {', '.join(table['commits'])})",
            "",
            "| margin | precision | recall | F1 | citations | gold |",
            "|---:|---|---|---:|---:|---:|",
        ]
        for r in table["rows"]:
            mark = "**" if r["margin"] == DEFAULT_CITE_MARGIN else ""
            (pl, ph), (rl, rh) = r["precision_ci95"], r["recall_ci95"]
            lines.append(
                f"| {mark}{r['margin']:g}{mark} | {r['precision']:.3f} [{pl:.3f}, {ph:.3f}] | "
                f"{r['recall']:.3f} [{rl:.3f}, {rh:.3f}] | {r['f1']:.3f} | {r['citations']} | {r['gold']} |"
            )
        lines += ["", "Commands: " + "; ".join(f"`{c}`" for c in table["commands"])]
    return "\n".join(lines) + "\n"


def plot(tables: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=110)
    for (split, dataset), table in tables.items():
        rows = table["rows"]
        style = "-" if split == "held out" else ":"
        ax.plot(
            [r["recall"] for r in rows],
            [r["precision"] for r in rows],
            style,
            marker="o",
            label=f"{dataset}, {split}",
        )
        default = [r for r in rows if r["margin"] == DEFAULT_CITE_MARGIN]
        if default:
            ax.plot(default[0]["recall"], default[0]["precision"], "k*", markersize=11)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("citations over margins (★ the default)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, path)


def main() -> None:
    tables = pooled()
    write_atomic(HERE / "summary.md", markdown(tables).encode())
    plot(tables, HERE / "summary.png")
    print(markdown(tables))


if __name__ == "__main__":
    main()
