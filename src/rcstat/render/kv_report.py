"""Reports of a KV benchmark run: JSON, a markdown table and a plot of score vs. compression ratio."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rcstat.errors import RCStatError
from rcstat.io import write_atomic
from rcstat.presses.registry import FULL_CACHE
from rcstat.render.plots import plot_kv

COST_NOTE = (
    "Compression time is the press's scoring and pruning of one recorded prefill (all layers), per "
    "sample; extra peak memory is the resident high-water mark it added (Linux `VmHWM`, including the "
    "compressed cache it returns). *Seen* is the share of cache entries attention still sees; *held* is "
    "the share of the full cache's bytes still in memory: kvpress only **masks** the entries that "
    "head-adaptive presses (rcstat, adakv) evict, so they hold everything. ObservedAttention's time "
    "includes recomputing the eager attention weights from the recorded prefill (a live run pays "
    "for them inside an eager forward instead)."
)


def markdown(meta: dict, rows: Sequence[dict]) -> str:
    """Accuracy per press (rows) and ratio (columns) with 95% intervals, then per task, cost and memory."""
    ratios = sorted({r["compression_ratio"] for r in rows if r["press"] != FULL_CACHE})
    presses = list(dict.fromkeys(r["press"] for r in rows))
    cell = {(r["press"], r["compression_ratio"]): r for r in rows}
    full = cell.get((FULL_CACHE, 0.0))
    lines = [
        f"# KV-cache compression: {meta['model']}",
        "",
        f"Data: {meta['data']}; {'query-aware' if meta['query_aware'] else 'query-agnostic'}; "
        f"n = {rows[0]['n']} samples; commit {meta['commit']}.",
        "",
        f"Reproduce: `{meta['command']}`",
        "",
        "## Score (mean over samples) with 95% interval",
        "",
        "| press | " + " | ".join(f"ratio {q:g}" for q in ratios) + " |",
        "|---|" + "---:|" * len(ratios),
    ]
    if full:
        lines.append(f"| full cache | {_score(full)} |" + " |" * (len(ratios) - 1))
    for press in presses:
        if press == FULL_CACHE:
            continue
        best = [
            max(cell[(p, q)]["accuracy"] for p in presses if (p, q) in cell and p != FULL_CACHE)
            for q in ratios
        ]
        marks = [
            ("**" if cell[(press, q)]["accuracy"] == b else "")
            + _score(cell[(press, q)])
            + ("**" if cell[(press, q)]["accuracy"] == b else "")
            for q, b in zip(ratios, best, strict=True)
        ]
        lines.append(f"| {press} | " + " | ".join(marks) + " |")
    tasks = sorted({t for r in rows for t in r["by_task"]})
    for q in ratios:
        lines += ["", f"## Per task at ratio {q:g}", "", "| press | " + " | ".join(tasks) + " |"]
        lines.append("|---|" + "---:|" * len(tasks))
        if full:
            lines.append(
                "| full cache | " + " | ".join(f"{full['by_task'][t]['accuracy']:.3f}" for t in tasks) + " |"
            )
        for press in presses:
            if press != FULL_CACHE:
                by = cell[(press, q)]["by_task"]
                lines.append(f"| {press} | " + " | ".join(f"{by[t]['accuracy']:.3f}" for t in tasks) + " |")
    lines += [
        "",
        "## Cost and memory",
        "",
        COST_NOTE,
        "",
        "| press | ratio | agrees with full | seen | held | compression s | vs SnapKV | extra peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["press"] == FULL_CACHE:
            continue
        vs = r["compression_time_vs_snapkv"]
        lines.append(
            f"| {r['press']} | {r['compression_ratio']:g} | {_num(r['agreement_with_full_cache'])} | "
            f"{1 - r['realised_ratio']:.3f} | {r['held_bytes_fraction']:.3f} | "
            f"{r['compression_seconds_mean']:.3f} | "
            f"{_num(vs, '.2f')}× | {_num(r['compression_peak_extra_mib'], '.1f')} |"
        )
    lines += ["", "Press records (the repr of each press, its full configuration):", ""]
    lines += [
        f"- `{r['press']}@{r['compression_ratio']:g}`: `{r['press_repr']}`"
        for r in rows
        if r["press"] != FULL_CACHE
    ]
    return "\n".join(lines) + "\n"


def _score(row: dict) -> str:
    low, high = row["ci95"]
    return f"{row['accuracy']:.3f} [{low:.2f}, {high:.2f}]"


def _num(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


def write_report(directory: Path, meta: dict, rows: Sequence[dict]) -> list[Path]:
    """``results.json``, ``results.md`` and (with matplotlib) ``results.png`` in ``directory``."""
    paths = [directory / "results.json", directory / "results.md"]
    write_atomic(paths[0], (json.dumps({**meta, "results": list(rows)}, indent=1) + "\n").encode())
    write_atomic(paths[1], markdown(meta, rows).encode())
    try:
        n = rows[0]["n"] if rows else 0
        aware = "query-aware" if meta.get("query_aware") else "query-agnostic"
        plot_kv(rows, directory / "results.png", f"{meta['model']}, {n} samples, {aware}, 95% intervals")
        paths.append(directory / "results.png")
    except RCStatError:  # no matplotlib: the JSON and the table are the results
        pass
    return paths
