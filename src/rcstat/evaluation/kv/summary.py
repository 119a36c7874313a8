"""Summaries of a KV-benchmark run: one row per press × ratio, with 95% intervals."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from rcstat.evaluation.intervals import interval
from rcstat.evaluation.kv.bench import Config


def summarise(config: Config, records: Sequence[dict]) -> list[dict]:
    """One row per press × ratio: accuracy with 95% interval, per task, agreement, time, memory."""
    rows = []
    snapkv = {}
    for key, label in config.labels.items():
        press, ratio = key.split("@")
        cells = [r["results"][key] for r in records]
        scores = [c["score"] for c in cells]
        agrees = [c["agrees"] for c in cells if c["agrees"] is not None]
        extra = [c["extra_bytes"] for c in cells if c["extra_bytes"] is not None]
        tasks = sorted({r["task"] for r in records})
        by_task = {}
        for task in tasks:
            task_scores = [r["results"][key]["score"] for r in records if r["task"] == task]
            by_task[task] = {
                "accuracy": statistics.fmean(task_scores),
                "ci95": list(interval(task_scores)),
                "n": len(task_scores),
            }
        row = {
            "press": press,
            "compression_ratio": float(ratio),
            "accuracy": statistics.fmean(scores) if scores else float("nan"),
            "ci95": list(interval(scores)) if scores else [float("nan")] * 2,
            "n": len(scores),
            "by_task": by_task,
            "agreement_with_full_cache": statistics.fmean(agrees) if agrees else None,
            "realised_ratio": 1 - statistics.fmean(c["kept_fraction"] for c in cells) if cells else None,
            "held_bytes_fraction": (
                statistics.fmean(
                    c["held_bytes"] / r["full_bytes"] for c, r in zip(cells, records, strict=True)
                )
                if cells
                else None
            ),
            "compression_seconds_mean": statistics.fmean(c["seconds"] for c in cells) if cells else None,
            "compression_peak_extra_mib": max(extra) / 2**20 if extra else None,
            "press_repr": label,
        }
        if press == "snapkv":
            snapkv[ratio] = row["compression_seconds_mean"]
        rows.append(row)
    for row in rows:
        base = snapkv.get(f"{row['compression_ratio']:g}")
        seconds = row["compression_seconds_mean"]
        row["compression_time_vs_snapkv"] = seconds / base if base and seconds is not None else None
    return rows
