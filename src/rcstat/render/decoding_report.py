"""Reports of a decoding benchmark run: JSON, a markdown table, quality against budget per press, and
the KV bytes held against the decoding step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rcstat.errors import RCStatError
from rcstat.io import write_atomic
from rcstat.presses.registry import FULL_CACHE
from rcstat.render.plots import pyplot, save

METRICS = (
    ("task_accuracy", "task score"),
    ("agreement", "agreement with the full cache (until the first divergence)"),
    ("rouge_l", "ROUGE-L against the full cache's generation"),
    ("nll_minus_full", "NLL of the generation minus the full cache's own (full-cache model)"),
)
NOTE = (
    "Every press runs in rcstat's generation loop: right after the prefill and then every `interval` "
    "generated tokens, its kvpress scorer scores the cached keys against the last generated rows "
    "(the prompt's last rows at first) and the cache keeps the budget (entries per KV head, on average) "
    "less `interval`, with room for exactly `interval` more: memory held never exceeds the budget. "
    "*held* is the mean, over the steps, of the bytes held over an uncompressed cache's; *peak entries* "
    "the most entries per head at any step. *Scoring s/token* is the press's own scoring and eviction "
    "per generated token. NLL is the full-cache model's mean negative log-likelihood per token of the "
    "generation (teacher-forced), minus that of the full cache's own greedy generation (paired, 95% "
    "normal interval); the other intervals are 95% normal (Wilson for 0/1 scores)."
)


def _ci(row: dict, key: str, spec: str = ".3f") -> str:
    value, ci = row.get(key), row.get(f"{key}_ci95")
    if value is None:
        return "–"
    return f"{value:{spec}} [{ci[0]:{spec}}, {ci[1]:{spec}}]" if ci else f"{value:{spec}}"


def markdown(meta: dict, rows: Sequence[dict]) -> str:
    n = max((r["n"] for r in rows), default=0)
    lines = [
        f"# Compression while generating: {meta['model']}",
        "",
        f"Data: {meta['data']}; n = {n} samples; interval {meta['options']['interval']}; "
        f"at most {meta['options']['max_new_tokens']} new tokens; commit {meta['commit']}.",
        "",
        f"Reproduce: `{meta['command']}`",
        "",
        "| press | budget | task score | agreement | ROUGE-L | NLL − full | held | peak entries | "
        "scoring s/token |",
        "|---|---|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        held = "–" if r["held_bytes_fraction"] is None else f"{r['held_bytes_fraction']:.3f}"
        speed = r["compress_seconds_per_token"]
        lines.append(
            f"| {r['press']} | {r['budget'] or 'full'} | {_ci(r, 'task_accuracy')} | {_ci(r, 'agreement')} | "
            f"{_ci(r, 'rouge_l')} | {_ci(r, 'nll_minus_full')} | {held} | {r['cache_tokens_peak']:.0f} | "
            f"{'–' if speed is None else f'{speed:.4f}'} |"
        )
    tasks = sorted({t for r in rows for t in r["by_task"]})
    if len(tasks) > 1:
        lines += [
            "",
            "## Task score per task",
            "",
            "| press | budget | " + " | ".join(tasks) + " |",
            "|---|---|" + "---|" * len(tasks),
        ]
        for r in rows:
            lines.append(
                f"| {r['press']} | {r['budget'] or 'full'} | "
                + " | ".join(_ci(r["by_task"][t], "task_accuracy") for t in tasks)
                + " |"
            )
    if meta.get("timing"):
        lines += [
            "",
            "## Time per generated token (each configuration alone, one run)",
            "",
            "| configuration | s/token, all | s/token, last quarter | last quarter ÷ transformers' full |",
            "|---|---:|---:|---:|",
        ]
        for t in meta["timing"]:
            lines.append(
                f"| {t['config']} | {t['seconds_per_token']:.4f} | "
                f"{t['last_quarter_seconds_per_token']:.4f} | {t['ratio_to_transformers']:.2f} |"
            )
    skipped = meta.get("skipped") or []
    if skipped:
        lines += ["", f"Skipped records of the data ({len(skipped)}):", ""]
        lines += [f"- record {s['record']}: {s['reason']}" for s in skipped]
    lines += ["", NOTE]
    return "\n".join(lines) + "\n"


def plot_quality(rows: Sequence[dict], path: Path, title: str) -> None:
    """One panel per metric: each press's value against the budget, 95% intervals as bars."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(METRICS), figsize=(15, 3.8), dpi=110)
    full = next(r for r in rows if r["press"] == FULL_CACHE)
    for ax, (key, label) in zip(axes, METRICS, strict=True):
        for press in dict.fromkeys(r["press"] for r in rows if r["press"] != FULL_CACHE):
            mine = [r for r in rows if r["press"] == press and r.get(key) is not None]
            if not mine:
                continue
            x = list(range(len(mine)))
            y = [r[key] for r in mine]
            err = [
                [v - (r[f"{key}_ci95"] or [v, v])[0] for v, r in zip(y, mine, strict=True)],
                [(r[f"{key}_ci95"] or [v, v])[1] - v for v, r in zip(y, mine, strict=True)],
            ]
            ax.errorbar(
                x,
                y,
                yerr=err,
                marker="o",
                capsize=3,
                label=press,
                linewidth=2.5 if press.startswith("rcstat") else 1.2,
            )
            ax.set_xticks(x, [r["budget"] for r in mine], fontsize=7)
        if full.get(key) is not None and key != "nll_minus_full":
            ax.axhline(full[key], color="black", linestyle="--", linewidth=1, label="full cache")
        ax.set_title(label, fontsize=8, wrap=True)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)


def plot_memory(memory: dict, path: Path, title: str) -> None:
    """KV bytes held against the decoding step on the first sample, one line per configuration."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    for key, series in memory.items():
        if series["held_bytes"] is None:
            continue
        mib = [b / 2**20 for b in series["held_bytes"]]
        ax.plot(range(len(mib)), mib, label=key, linewidth=2 if key.startswith("rcstat") else 1)
    first = next(s for s in memory.values() if s["full_bytes"])
    ax.plot(
        range(len(first["full_bytes"])),
        [b / 2**20 for b in first["full_bytes"]],
        "k--",
        linewidth=1,
        label="uncompressed",
    )
    ax.set_xlabel("decoding step")
    ax.set_ylabel("KV MiB held")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, ncol=1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, path)


def write_decoding_report(directory: Path, result: dict) -> list[Path]:
    """``results.json``, ``results.md`` and (with matplotlib) ``quality.png`` and ``memory.png``."""
    rows = result["results"]
    paths = [directory / "results.json", directory / "results.md"]
    write_atomic(paths[0], (json.dumps(result, indent=1) + "\n").encode())
    write_atomic(paths[1], markdown(result, rows).encode())
    n = max((r["n"] for r in rows), default=0)
    try:
        plot_quality(rows, directory / "quality.png", f"{result['model']}, {n} samples, 95% intervals")
        plot_memory(
            result["memory_first_sample"], directory / "memory.png", f"{result['model']}, first sample"
        )
        paths += [directory / "quality.png", directory / "memory.png"]
    except RCStatError:  # no matplotlib: the JSON and the table are the results
        pass
    return paths
