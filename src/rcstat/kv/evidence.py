"""Which entries of the uncompressed cache a compressed cache still shows, and so how much of a
sample's evidence (the answer-bearing tokens' positions) a press kept, per layer kind.

A press either masks entries (head-adaptive budgets: kvpress's ``masked_key_indices``) or gathers
the kept ones into a smaller tensor; either way a kept entry's key is a bit-exact copy of the
uncompressed one. Each key is fingerprinted by an integer hash of its bits (exact, independent of
summation order), and an uncompressed entry counts as kept where its fingerprint is among the
visible compressed entries of the same head. A layer whose compressed keys are not copies (a press
that re-rotates or merges keys) cannot be matched and is reported as ``None``.

Cost per layer: one hash of ``batch × kv_heads × n`` keys (``n × d`` integer multiply-adds) and a
sorted search per head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rcstat.kv.replay import Compressed

_INTS = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _fingerprints(keys: torch.Tensor) -> torch.Tensor:
    """``(…, n)`` int64 hashes of the bits of ``keys`` ``(…, n, d)``; equal keys, equal hashes."""
    bits = keys.detach().contiguous().view(_INTS[keys.element_size()]).long()
    coeffs = torch.randint(1, 2**31 - 1, (keys.shape[-1],), generator=torch.Generator().manual_seed(0))
    return (bits * coeffs.to(bits.device)).sum(-1)  # int64 wraps on overflow: still exact and ordered-free


def kept_entries(compressed: Compressed, full_keys: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
    """Per layer, ``(batch, kv_heads, m)`` booleans over the ``m`` entries of the uncompressed layer
    (``full_keys``): whether attention still sees each one; ``None`` where keys were changed."""
    out: list[torch.Tensor | None] = []
    for layer, mask, full in zip(compressed.cache.layers, compressed.masks, full_keys, strict=True):
        seen_fp, full_fp = _fingerprints(layer.keys), _fingerprints(full)
        visible = torch.ones(seen_fp.shape, dtype=torch.bool, device=seen_fp.device)
        if mask is not None:
            visible[mask] = False
        kept = torch.zeros(full_fp.shape, dtype=torch.bool, device=full_fp.device)
        matched = True
        for b in range(full_fp.shape[0]):
            for h in range(full_fp.shape[1]):
                shown = seen_fp[b, h][visible[b, h]]
                kept[b, h] = torch.isin(full_fp[b, h], shown)
                matched &= bool(torch.isin(shown, full_fp[b, h]).all())
        out.append(kept if matched else None)
    return out


def evidence_kept(
    compressed: Compressed,
    full_keys: Sequence[torch.Tensor],
    positions: Sequence[int],
    sliding: Sequence[bool],
) -> dict[str, float | None]:
    """Share of the evidence ``positions`` (over positions and KV heads) still seen, averaged over the
    layers of each kind (``"global"``, ``"sliding"``: a sliding layer holds only the last positions, so
    evidence before its window counts as lost); ``None`` for a kind whose keys could not be matched."""
    n = compressed.full_length
    shares: dict[str, list[float | None]] = {}
    for kept, full, is_sliding in zip(kept_entries(compressed, full_keys), full_keys, sliding, strict=True):
        kind = "sliding" if is_sliding else "global"
        if kept is None:
            shares.setdefault(kind, []).append(None)
            continue
        start = n - full.shape[-2]  # a sliding layer holds positions start … n − 1
        index = [p - start for p in positions if p >= start]
        held = float(kept[..., index].float().sum()) if index else 0.0
        shares.setdefault(kind, []).append(held / (len(positions) * kept.shape[0] * kept.shape[1]))
    return {
        kind: None if any(v is None for v in values) else sum(values) / len(values)  # type: ignore[misc]
        for kind, values in shares.items()
    }
