"""Reports of a KV benchmark run: JSON, a markdown table and a plot of score vs. compression ratio."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rcstat.errors import RCStatError
from rcstat.io import write_atomic
from rcstat.presses.registry import FULL_CACHE
from rcstat.render.plots import plot_kv
from rcstat.render.text import evidence_text

COST_NOTE = (
    "Compression time is the press's scoring and pruning of one recorded prefill (all layers), per "
    "sample (live presses: their whole prefill and extra passes, marked *live*). *Prefills* is a "
    "cell's whole work in prefills of the same sample (a replayed press: the prefill plus its "
    "compression; a live press: its prefill and extra passes), the cost axis of the frontier. Extra "
    "peak memory is the resident high-water mark the compression added (Linux `VmHWM`, including "
    "the compressed cache it returns). "
    "*Seen* is the share of cache entries attention still sees; *held* is the share of the full cache's "
    "bytes still in memory: kvpress only **masks** what presses with per-head or per-layer budgets evict "
    "(rcstat, adakv, thresholds, kvzip…), so they hold everything here (`RaggedPress` frees it, see "
    "benchmarks/kv/memory). ObservedAttention's time includes recomputing the eager attention weights "
    "from the recorded prefill."
)
ORACLE_NOTE = (
    "The oracle keeps the tokens that carry the answer, the sinks and the window, then the most recent "
    "tokens; it runs only on tasks that know where their answer lies (its n is theirs)."
)


def _score(row: dict | None) -> str:
    if row is None or not row["n"]:
        return "–"
    low, high = row["ci95"]
    return f"{row['accuracy']:.3f} [{low:.2f}, {high:.2f}]"


def _md(name: str) -> str:
    """A press name inside a markdown table cell (``|`` escaped)."""
    return name.replace("|", "\\|")


def _num(value: float | None, spec: str = ".3f") -> str:
    return "–" if value is None else format(value, spec)


EVIDENCE_NOTE = (
    "*Evidence kept*: the share of the answer-bearing tokens (the oracle's positions, on the tasks that "
    "know them) that attention still sees after compression, over positions and KV heads, averaged over "
    "the layers of each kind: a low share means the press dropped the answer; a high share with a low "
    "score means it kept the answer and lost it anyway."
)


def _evidence_table(rows: Sequence[dict], presses: list[str], ratios: list[float]) -> list[str]:
    """Evidence kept per press and ratio (nothing when no task knows its evidence)."""
    cell = {(r["press"], r["compression_ratio"]): r for r in rows if r["mode"] == "ratio"}
    if not any(r.get("evidence_kept") for r in rows):
        return []
    hybrid = any("sliding" in (r.get("evidence_kept") or {}) for r in rows)
    kinds = " (global / sliding layers)" if hybrid else ""
    lines = ["", f"## Evidence kept{kinds}", "", EVIDENCE_NOTE, ""]
    lines += [
        "| press | " + " | ".join(f"ratio {q:g}" for q in ratios) + " |",
        "|---|" + "---:|" * len(ratios),
    ]
    lines += [
        f"| {_md(p)} | " + " | ".join(evidence_text(cell.get((p, q))) for q in ratios) + " |" for p in presses
    ]
    return lines


def markdown(meta: dict, rows: Sequence[dict]) -> str:
    """Accuracy per press (rows) and ratio (columns) with 95% intervals, then thresholds, per task,
    cost and memory, and every press's record."""
    ratio_rows = [r for r in rows if r["mode"] == "ratio" and r["press"] != FULL_CACHE]
    ratios = sorted({r["compression_ratio"] for r in ratio_rows})
    presses = list(dict.fromkeys(r["press"] for r in ratio_rows))
    cell = {(r["press"], r["compression_ratio"]): r for r in ratio_rows}
    full = next((r for r in rows if r["press"] == FULL_CACHE), None)
    n = max(r["n"] for r in rows)
    lines = [
        f"# KV-cache compression: {meta['model']}",
        "",
        f"Data: {meta['data']}; {'query-aware' if meta['query_aware'] else 'query-agnostic'}; "
        f"n = {n} samples; commit {meta['commit']}.",
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
    best = {
        q: max(r["accuracy"] for r in ratio_rows if r["compression_ratio"] == q and r["press"] != "oracle")
        for q in ratios
    }
    for press in presses:
        marks = []
        for q in ratios:
            row = cell.get((press, q))
            bold = row is not None and press != "oracle" and row["accuracy"] == best[q]
            marks.append(f"**{_score(row)}**" if bold else _score(row))
        suffix = f" (n = {cell[(press, ratios[0])]['n']})" if press == "oracle" else ""
        lines.append(f"| {_md(press)}{suffix} | " + " | ".join(marks) + " |")
    if any(r["press"] == "oracle" for r in ratio_rows):
        lines += ["", ORACLE_NOTE]
    lines += _evidence_table(rows, presses, ratios)
    lines += _thresholds(rows)
    tasks = sorted({t for r in rows for t in r["by_task"]})
    for q in ratios:
        lines += ["", f"## Per task at ratio {q:g}", "", "| press | " + " | ".join(tasks) + " |"]
        lines.append("|---|" + "---:|" * len(tasks))
        shown = ([("full cache", full)] if full else []) + [(p, cell.get((p, q))) for p in presses]
        for name, row in shown:
            by = row["by_task"] if row else {}
            values = [f"{by[t]['accuracy']:.3f}" if by.get(t, {}).get("n") else "–" for t in tasks]
            lines.append(f"| {_md(name)} | " + " | ".join(values) + " |")
    lines += [
        "",
        "## Cost and memory",
        "",
        COST_NOTE,
        "",
        "| press | ratio / τ | agrees with full | evidence kept | seen | held | compression s | vs SnapKV "
        "| prefills | extra peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["press"] == FULL_CACHE:
            continue
        at = f"τ={r['threshold']:g}" if r["mode"] == "threshold" else f"{r['compression_ratio']:g}"
        live = " (live)" if r.get("live") else ""
        lines.append(
            f"| {_md(r['press'])}{live} | {at} | {_num(r['agreement_with_full_cache'])} | "
            f"{evidence_text(r)} | "
            f"{_num(None if r['realised_ratio'] is None else 1 - r['realised_ratio'])} | "
            f"{_num(r['held_bytes_fraction'])} | {_num(r['compression_seconds_mean'])} | "
            f"{_num(r['compression_time_vs_snapkv'], '.2f')}× | {_num(r.get('cost_in_prefills'), '.2f')} | "
            f"{_num(r['compression_peak_extra_mib'], '.1f')} |"
        )
    lines += ["", "Press records (the repr of each press, its full configuration):", ""]
    lines += [f"- `{_cell(r)}`: `{r['press_repr']}`" for r in rows if r["press"] != FULL_CACHE]
    skipped = meta.get("skipped") or []
    if skipped:
        lines += ["", f"Skipped records of the data ({len(skipped)}): "]
        lines += [f"- record {s['record']}: {s['reason']}" for s in skipped]
    return "\n".join(lines) + "\n"


def _cell(row: dict) -> str:
    at = f"t={row['threshold']:g}" if row["mode"] == "threshold" else f"{row['compression_ratio']:g}"
    return f"{row['press']}@{at}"


def _thresholds(rows: Sequence[dict]) -> list[str]:
    """Thresholded presses: each τ with the realised ratio it gave and the score."""
    steps = [r for r in rows if r["mode"] == "threshold"]
    if not steps:
        return []
    lines = [
        "",
        "## Thresholds: score against the realised ratio",
        "",
        "Each press's scorer in `ThresholdPress`: every entry scoring ≤ τ is evicted, per head and layer, "
        "so the share evicted is whatever τ gives (the realised ratio, averaged over samples).",
        "",
        "| press | τ | realised ratio | score | n |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {_md(r['press'])} | {r['threshold']:g} | {r['realised_ratio']:.3f} | {_score(r)} | {r['n']} |"
        for r in steps
    ]
    return lines


def write_report(directory: Path, meta: dict, rows: Sequence[dict]) -> list[Path]:
    """``results.json``, ``results.md`` and (with matplotlib) ``results.png`` in ``directory``."""
    paths = [directory / "results.json", directory / "results.md"]
    write_atomic(paths[0], (json.dumps({**meta, "results": list(rows)}, indent=1) + "\n").encode())
    write_atomic(paths[1], markdown(meta, rows).encode())
    try:
        n = max(r["n"] for r in rows) if rows else 0
        aware = "query-aware" if meta.get("query_aware") else "query-agnostic"
        plot_kv(rows, directory / "results.png", f"{meta['model']}, {n} samples, {aware}, 95% intervals")
        paths.append(directory / "results.png")
    except RCStatError:  # no matplotlib: the JSON and the table are the results
        pass
    return paths
