"""Summaries of a KV-benchmark run: one row per cell (press × ratio, or press × τ), with 95% intervals."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from rcstat.evaluation.intervals import interval
from rcstat.evaluation.kv.bench import Config


def _accuracy(scores: list[float]) -> dict:
    return {
        "accuracy": statistics.fmean(scores) if scores else float("nan"),
        "ci95": list(interval(scores)) if scores else [float("nan")] * 2,
        "n": len(scores),
    }


def _cost(cells: list[dict], records: list[dict], live: bool) -> float | None:
    """The work of a cell in prefills of its sample, mean over samples: a replayed press costs the
    prefill plus its compression; a live press's time is its whole prefill and extra passes."""
    costs = [
        (c["seconds"] + (0.0 if live else r["prefill_seconds"])) / r["prefill_seconds"]
        for c, r in zip(cells, records, strict=True)
        if r.get("prefill_seconds") and c["seconds"] is not None
    ]
    return statistics.fmean(costs) if costs else None


def _evidence(cells: list[dict]) -> dict[str, float] | None:
    """Mean share of the evidence kept, per layer kind, over the samples whose evidence is known."""
    kinds: dict[str, list[float]] = {}
    for c in cells:
        for kind, share in (c.get("evidence_kept") or {}).items():
            if share is not None:
                kinds.setdefault(kind, []).append(share)
    return {kind: statistics.fmean(v) for kind, v in sorted(kinds.items())} or None


def summarise(config: Config, records: Sequence[dict]) -> list[dict]:
    """One row per cell: accuracy with 95% interval, per task, agreement, time, memory, and the kept
    share per layer. A cell a sample did not run (the oracle without evidence) is left out of its n."""
    rows = []
    labels = config.labels
    for cell in config.cells:
        ran = [r for r in records if cell.key in r["results"]]
        cells = [r["results"][cell.key] for r in ran]
        agrees = [c["agrees"] for c in cells if c["agrees"] is not None]
        extra = [c["extra_bytes"] for c in cells if c["extra_bytes"] is not None]
        layers = [c["kept_per_layer"] for c in cells if "kept_per_layer" in c]
        heads = [c["kept_per_head"] for c in cells if "kept_per_head" in c]
        realised = 1 - statistics.fmean(c["kept_fraction"] for c in cells) if cells else None
        row = {
            "press": cell.press,
            "mode": "threshold" if cell.threshold is not None else "ratio",
            "compression_ratio": cell.ratio if cell.threshold is None else realised,
            "threshold": cell.threshold,
            **_accuracy([c["score"] for c in cells]),
            "by_task": {
                task: _accuracy([r["results"][cell.key]["score"] for r in ran if r["task"] == task])
                for task in sorted({r["task"] for r in ran})
            },
            "evidence_kept": _evidence(cells),
            "agreement_with_full_cache": statistics.fmean(agrees) if agrees else None,
            "realised_ratio": realised,
            "kept_per_layer": [statistics.fmean(k) for k in zip(*layers, strict=True)] if layers else None,
            "kept_per_head": (
                [
                    [round(statistics.fmean(k), 4) for k in zip(*rows, strict=True)]
                    for rows in zip(*heads, strict=True)
                ]
                if heads
                else None
            ),
            "held_bytes_fraction": (
                statistics.fmean(c["held_bytes"] / r["full_bytes"] for c, r in zip(cells, ran, strict=True))
                if cells
                else None
            ),
            "compression_seconds_mean": statistics.fmean(c["seconds"] for c in cells) if cells else None,
            "cost_in_prefills": _cost(cells, ran, cell.live),
            "compression_peak_extra_mib": max(extra) / 2**20 if extra else None,
            "press_repr": labels[cell.key],
            "live": cell.live,
        }
        rows.append(row)
    snapkv = {r["compression_ratio"]: r["compression_seconds_mean"] for r in rows if r["press"] == "snapkv"}
    for row in rows:
        base = snapkv.get(row["compression_ratio"]) if row["mode"] == "ratio" else None
        seconds = row["compression_seconds_mean"]
        row["compression_time_vs_snapkv"] = seconds / base if base and seconds is not None else None
    return rows
