"""The frontier of one model's committed KV runs: score against work, per setting and ratio.

Reads ``DIR/<setting>/results.json`` (the main run) and every ``DIR/<setting>/<run>/results.json``
beside it (runs on a declared subset, e.g. ``kvzip-subset``, or confirmations such as ``gauss``),
and writes ``DIR/frontier.png`` (score against ``cost_in_prefills``, log scale: a cell's whole work
in prefills of its own sample, measured in its own run) and ``DIR/frontier.md`` (per run, setting
and ratio, the presses on that run's frontier: none cheaper scores as high, plus RC's variants).

    python benchmarks/kv/frontier.py benchmarks/kv/smollm2-135m-instruct
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rcstat.evaluation.kv.oracle import ORACLE
from rcstat.io import write_atomic
from rcstat.render.plots import plot_frontier

SETTINGS = ("query-aware", "query-agnostic")
RATIOS = (0.5, 0.75, 0.9)


def runs_of(directory: Path) -> dict[str, list[tuple[str, dict]]]:
    """Setting -> [(run name, results.json)], the main run first."""
    runs = {}
    for setting in SETTINGS:
        main = directory / setting / "results.json"
        if not main.is_file():
            continue
        found = [("main", json.loads(main.read_text()))]
        found += [
            (p.parent.name, json.loads(p.read_text()))
            for p in sorted(directory.glob(f"{setting}/*/results.json"))
        ]
        runs[setting] = found
    return runs


def _class(row: dict) -> str:
    """The class of a result row's press, from its repr (``""`` where it has none)."""
    return (row.get("press_repr") or "").split("(")[0]


def renamed(found: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The runs, a later run's press named after its run where the main run has a different press
    under the same name (``rcstat`` before and after the default changed): ``rcstat [rcstat-auto]``."""
    main = {r["press"]: _class(r) for r in found[0][1]["results"] if r.get("mode", "ratio") == "ratio"}
    out = [found[0]]
    for name, result in found[1:]:
        rows = [
            {**r, "press": f"{r['press']} [{name}]"}
            if r["press"] in main and _class(r) != main[r["press"]]
            else r
            for r in result["results"]
        ]
        out.append((name, {**result, "results": rows}))
    return out


def frontier(rows: list[dict], ratio: float) -> list[dict]:
    """The ratio-mode cells at ``ratio`` that no cheaper-or-equal cell beats, and RC's, by cost."""
    cells = sorted(
        (
            r
            for r in rows
            if r.get("mode", "ratio") == "ratio"
            and r["compression_ratio"] == ratio
            and r["n"]
            and r.get("cost_in_prefills") is not None
            and r["press"] != ORACLE
        ),
        key=lambda r: (r["cost_in_prefills"], -r["accuracy"]),
    )
    best, out = -1.0, []
    for row in cells:
        on = row["accuracy"] > best
        best = max(best, row["accuracy"])
        if on or row["press"].startswith("rcstat"):
            out.append({**row, "on_frontier": on})
    return out


def markdown(directory: Path, runs: dict[str, list[tuple[str, dict]]]) -> str:
    lines = [
        f"# The frontier: {directory.name}",
        "",
        "Score against work: *prefills* is a cell's whole work in prefills of its own sample, measured "
        "in its own run (a replayed press: the prefill plus its compression; a live press such as "
        "KVzip: its prefill and its extra passes). Per run, setting and ratio: the presses on that "
        "run's frontier (no cheaper press scores as high) and RC's variants. Runs on a subset are "
        "compared within themselves; `frontier.png` draws them hollow. Written by "
        "`python benchmarks/kv/frontier.py DIR`.",
        "",
    ]
    for setting, found in runs.items():
        for name, result in found:
            lines += [
                f"## {setting}, {name} run: {result['data']}, commit {result['commit']}",
                "",
                f"Command: `{result['command']}`",
                "",
                "| ratio | press | prefills | score [95%] | n | on the frontier |",
                "|---:|---|---:|---|---:|---|",
            ]
            for ratio in RATIOS:
                for r in frontier(result["results"], ratio):
                    on = "yes" if r["on_frontier"] else "no"
                    lines.append(
                        f"| {ratio:g} | {r['press']} | {r['cost_in_prefills']:.2f} | {r['accuracy']:.3f} "
                        f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {r['n']} | {on} |"
                    )
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="a model's directory under benchmarks/kv")
    args = parser.parse_args(argv)
    runs = {setting: renamed(found) for setting, found in runs_of(args.directory).items()}
    if not runs:
        print(f"error: no results.json under {args.directory}/<setting>/", file=sys.stderr)
        return 2
    write_atomic(args.directory / "frontier.md", markdown(args.directory, runs).encode())
    plot_frontier(
        {s: [(name, r["results"]) for name, r in found] for s, found in runs.items()},
        RATIOS,
        args.directory / "frontier.png",
        f"{args.directory.name}: score against work (prefills); hollow: a run on a subset",
    )
    print(args.directory / "frontier.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
