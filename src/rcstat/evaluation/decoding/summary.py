"""Summaries of a decoding-benchmark run: one row per press × budget, with 95% intervals."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from rcstat.evaluation.decoding.bench import cell_key
from rcstat.evaluation.decoding.config import DecodingConfig
from rcstat.evaluation.intervals import interval, normal
from rcstat.presses.registry import FULL_CACHE


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.fmean(values) if values else None


def _with_interval(name: str, values: Sequence[float | None], bounded: bool = True) -> dict:
    values = [v for v in values if v is not None and not math.isnan(v)]
    ci = (list(interval(values)) if bounded else normal(values)) if values else None
    return {name: _mean(values), f"{name}_ci95": ci}


def summarise(config: DecodingConfig, records: Sequence[dict]) -> list[dict]:
    """Per cell: agreement with the full cache until the first divergence, ROUGE-L against it, the
    full-cache model's NLL of the generation (and its paired difference from the full cache's own),
    the task score, the KV bytes held (mean and peak share of an uncompressed cache), the peak entries
    per head, and the seconds of scoring and eviction per generated token; and the score per task."""
    rows = []
    for press, budget in config.cells:
        key = cell_key(press, budget)
        cells = [r["results"][key] for r in records]
        full = [r["results"][FULL_CACHE] for r in records]
        tokens = sum(c["tokens"] for c in cells)
        scores = [c["score"] for c in cells]
        rows.append(
            {
                "press": press,
                "budget": None if budget is None else budget.describe(),
                "n": len(cells),
                **_with_interval("agreement", [c["agreement"] for c in cells]),
                **_with_interval("rouge_l", [c["rouge_l"] for c in cells]),
                **_with_interval("nll", [c["nll"] for c in cells], bounded=False),
                **_with_interval(
                    "nll_minus_full",
                    [c["nll"] - f["nll"] for c, f in zip(cells, full, strict=True)],
                    bounded=False,
                ),
                **_with_interval("task_accuracy", scores),
                "by_task": {
                    task: _with_interval(
                        "task_accuracy", [r["results"][key]["score"] for r in records if r["task"] == task]
                    )
                    for task in sorted({r["task"] for r in records})
                },
                "held_bytes_fraction": _mean([c["held_fraction"] for c in cells]),
                "held_peak_fraction": max((c["held_peak_fraction"] for c in cells), default=None),
                "cache_tokens_peak": max((c["cache_tokens_peak"] for c in cells), default=None),
                "generated_tokens_mean": tokens / len(cells) if cells else None,
                "compress_seconds_per_token": sum(c["compress_seconds"] for c in cells) / tokens
                if tokens
                else None,
            }
        )
    return rows
