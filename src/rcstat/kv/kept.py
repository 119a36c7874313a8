"""Which context tokens each layer of a compressed cache still holds (``rcstat compress``'s token strips).

Per layer, a count per context position: how many KV heads attention can still see it in (0 … the
model's KV heads). Read from a :class:`~rcstat.kv.ragged.RaggedCache` (each head's kept positions),
or from a masked :class:`~rcstat.kv.replay.Compressed` cache by matching its keys against the
uncompressed ones (:func:`rcstat.kv.evidence.kept_entries`). A layer that keeps nothing outside the
press's protected tokens (its sinks and its observation window) is *emptied*: its answer draws on
those alone, and a ratio that empties layers has gone too far for this context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rcstat.kv.evidence import kept_entries
from rcstat.kv.ragged import RaggedCache
from rcstat.kv.replay import Compressed


@dataclass
class KeptTokens:
    """``heads[layer][position]``: KV heads still holding each context token (``None``: a layer whose
    keys the press changed, so they cannot be matched); ``sliding`` layers hold a window by design."""

    tokens: list[str]
    kv_heads: int
    heads: list[list[int] | None]
    sliding: list[bool]

    def emptied(self, sinks: int = 0, window: int = 0) -> list[int]:
        """Layers (not sliding) that keep no token outside the first ``sinks`` and the last ``window``."""
        n = len(self.tokens)
        middle = slice(min(sinks, n), max(min(sinks, n), n - window))
        return [
            i
            for i, (counts, sliding) in enumerate(zip(self.heads, self.sliding, strict=True))
            if counts is not None and not sliding and not any(counts[middle])
        ]

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "kv_heads": self.kv_heads, "heads_per_layer": self.heads}


def _counts(kept: torch.Tensor, n: int) -> list[int]:
    """Heads holding each of ``n`` positions, from ``(kv_heads, m)`` booleans over the last ``m``."""
    counts = [0] * n
    counts[n - kept.shape[-1] :] = kept.sum(0).tolist()
    return counts


def ragged_kept(cache: RaggedCache, n: int) -> tuple[list[list[int] | None], list[bool]]:
    """Per layer of a one-row ragged cache after an ``n``-token prefill: heads holding each position."""
    heads: list[list[int] | None] = []
    for layer in cache.layers:
        if not layer.ragged:  # dense: every head holds every position its layer holds
            keys = layer.keys
            m = 0 if keys is None else min(n, keys.shape[-2])
            heads.append([0] * (n - m) + ([keys.shape[1]] * m if m else []))
            continue
        counts = torch.zeros(n, dtype=torch.long)
        for h in range(len(layer.pos[0])):
            pos = layer.pos[0][h][: layer.count[0][h]].long().cpu()
            counts[pos[pos < n]] += 1
        heads.append(counts.tolist())
    return heads, [bool(layer.sliding_window) for layer in cache.layers]


def masked_kept(
    compressed: Compressed, full_keys: Sequence[torch.Tensor] | None = None
) -> tuple[list[list[int] | None], list[bool]]:
    """Per layer of a masked cache: heads still seeing each position, matched against ``full_keys``
    (without them, only layers the press did not shrink are known)."""
    n = compressed.full_length
    sliding = [length < n for length in compressed.layer_lengths]
    if full_keys is not None:
        kept = kept_entries(compressed, full_keys)
    else:
        kept = []
        for layer, mask, length in zip(
            compressed.cache.layers, compressed.masks, compressed.layer_lengths, strict=True
        ):
            if layer.keys.shape[-2] != length:
                kept.append(None)
                continue
            seen = torch.ones(layer.keys.shape[:3], dtype=torch.bool, device=layer.keys.device)
            if mask is not None:
                seen[mask] = False
            kept.append(seen)
    return [None if k is None else _counts(k[0].cpu(), n) for k in kept], sliding


def protected(press: object) -> tuple[int, int]:
    """The sinks and observation window a press (or one it wraps) always keeps: ``(sinks, window)``."""
    sinks = window = 0
    seen: set[int] = set()
    while press is not None and id(press) not in seen:
        seen.add(id(press))
        sinks = max(sinks, int(getattr(press, "sink_tokens", 0) or 0))
        window = max(window, int(getattr(press, "window_size", 0) or 0))
        press = getattr(press, "press", None) or getattr(press, "scorer", None)
    return sinks, window
