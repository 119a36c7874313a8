"""Time per generated token, each press alone at each budget, against the full cache both as rcstat's
ragged cache holds it and as ``transformers`` holds it (a ``DynamicCache``, ``sdpa``), in one run.

Every configuration generates the same number of tokens from the same prompt (no stop token), one
after another in this process; the figures are seconds per token over all of them and over the last
quarter (where the full cache is longest), and their ratios to the full cache's.
"""

from __future__ import annotations

import time

import torch
from transformers import DynamicCache

from rcstat.kv.generation import generate
from rcstat.presses.registry import FULL_CACHE, make_decoding

TRANSFORMERS = "none (transformers DynamicCache)"


def _rates(clock: list[float]) -> tuple[float, float]:
    """Seconds per token over all tokens, and over the last quarter."""
    quarter = max(1, len(clock) // 4)
    tail = (clock[-1] - clock[-quarter - 1]) / quarter if len(clock) > quarter else clock[-1] / len(clock)
    return clock[-1] / len(clock), tail


def dense_clock(model, ids: torch.Tensor, tokens: int) -> list[float]:
    """Greedy generation with ``transformers``' own cache: seconds after the prefill per token."""
    cache, clock = DynamicCache(config=model.config), []
    with torch.no_grad():
        out = model(ids[None], past_key_values=cache, logits_to_keep=1)
        start = time.perf_counter()
        for _ in range(tokens):
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            clock.append(time.perf_counter() - start)
            out = model(nxt, past_key_values=cache, logits_to_keep=1)
    return clock


def time_per_token(model, ids: torch.Tensor, cells, interval: int | None, tokens: int) -> list[dict]:
    """One row per configuration: the full cache in ``transformers`` and in rcstat, then every cell."""
    rows = []
    for label, clock in [(TRANSFORMERS, dense_clock(model, ids, tokens))] + [
        (
            f"{press}@{budget.describe()}" if budget else FULL_CACHE,
            _ragged_clock(model, ids, press, budget, interval, tokens),
        )
        for press, budget in cells
    ]:
        overall, tail = _rates(clock)
        rows.append({"config": label, "seconds_per_token": overall, "last_quarter_seconds_per_token": tail})
    dense = rows[0]
    for row in rows:
        row["ratio_to_transformers"] = (
            row["last_quarter_seconds_per_token"] / dense["last_quarter_seconds_per_token"]
        )
    return rows


def _ragged_clock(model, ids, press, budget, interval, tokens) -> list[float]:
    compression = None if budget is None else make_decoding(press, budget, interval)
    (generated,) = generate(model, [ids], [compression], tokens)
    return generated.clock
