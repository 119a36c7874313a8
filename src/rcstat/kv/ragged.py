"""A per-head variable-length KV cache, so head-adaptive eviction frees what it claims.

RC keeps a different number of entries per KV head (docs/method.md §3). kvpress holds such budgets by
*masking*: evicted entries stay in memory. :class:`RaggedCache` holds, per layer, row and KV head,
only the kept keys and values with their original positions, and grows by appending while
decoding (in place, with a little room: about 1/16 of a head's entries). Attention over it goes
through ``AttentionInterface`` (name :data:`ATTENTION`): each KV head attends to its own entries
with one ``scaled_dot_product_attention`` call for all of its query heads (GQA as rows), with no
padding at all; causality and sliding windows come from the stored positions. Tensors that are
not ragged (a dense prefill) go to the model's ``sdpa`` unchanged, so the implementation can stay
set for a whole ``generate`` or kvpress pipeline run (see :func:`ragged_attention`).

How keep-sets arrive: :class:`RaggedPress` wraps any kvpress press whose work is in ``compress``
(RCStatPress, AdaKV-wrapped scorers, plain scorers): during the prefill it runs the press on each
layer, reads what it kept (entries it masked, or which entries a shrinking press gathered), and
turns that layer of the :class:`RaggedCache` ragged. :meth:`RaggedCache.from_cache` converts an
existing (masked) cache.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from kvpress import BasePress
from kvpress.presses.base_press import is_prefilling
from torch import nn
from transformers import AttentionInterface, Cache
from transformers.cache_utils import DynamicLayer
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from rcstat.errors import RCStatError
from rcstat.kv.replay import Mask
from rcstat.models.logits import is_sliding

ATTENTION = "rcstat_ragged"


@dataclass
class _Trim:
    """What ``layer.keys[:, :, :n]`` gives on a ragged layer; assigning it back crops the layer to ``n``.

    kvpress's pipeline removes an answer from the cache this way after each question.
    """

    layer: RaggedLayer
    length: int | None = None

    def __getitem__(self, index: Any) -> _Trim:
        if not (isinstance(index, tuple) and len(index) == 3 and isinstance(index[2], slice)):
            raise RCStatError("a ragged cache layer has no dense keys; read it with RaggedLayer.entries()")
        return _Trim(self.layer, index[2].stop)


class RaggedLayer(DynamicLayer):
    """A ``DynamicLayer`` until :meth:`keep`; then per (row, KV head) buffers of the kept entries only."""

    def __init__(self, sliding_window: int | None = None) -> None:
        self.ragged = False
        super().__init__()
        self.sliding_window = sliding_window
        self.length = 0  # positions seen so far (the logical length), once ragged
        self.k: list[list[torch.Tensor]] = []  # [row][head]: (capacity, head_dim)
        self.v: list[list[torch.Tensor]] = []
        self.pos: list[list[torch.Tensor]] = []  # [row][head]: (capacity,) original positions
        self.count: list[list[int]] = []  # [row][head]: entries in use

    # kvpress reads and trims ``keys``/``values``; on a ragged layer they are crop handles.
    @property
    def keys(self) -> Any:
        return _Trim(self) if self.ragged else self._keys

    @keys.setter
    def keys(self, value: Any) -> None:
        if isinstance(value, _Trim):
            self.crop(value.length)
        else:
            self._keys = value

    @property
    def values(self) -> Any:
        return _Trim(self) if self.ragged else self._values

    @values.setter
    def values(self, value: Any) -> None:
        if not isinstance(value, _Trim):  # a crop is applied once, through ``keys``
            self._values = value

    def keep(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        keep: torch.Tensor,
        positions: torch.Tensor,
        length: int,
    ) -> None:
        """Hold only ``keys[b, h, keep[b, h]]`` (and values, positions) per row and head; drop the rest.

        ``positions``: ``(b, h, n)`` original positions of the given entries; ``length``: positions
        seen so far (the next token's position).
        """
        if self.sliding_window:  # entries no later query can see
            keep = keep & (positions > length - self.sliding_window)
        b, h = keys.shape[:2]
        self.k = [[keys[r, i][keep[r, i]] for i in range(h)] for r in range(b)]
        self.v = [[values[r, i][keep[r, i]] for i in range(h)] for r in range(b)]
        positions = positions.to(torch.int32)  # 4 bytes per entry beside 2 · head_dim values
        self.pos = [[positions[r, i][keep[r, i]] for i in range(h)] for r in range(b)]
        self.count = [[int(t.shape[0]) for t in row] for row in self.pos]
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self._keys = self._values = None
        self.length, self.ragged = length, True

    def entries(self, row: int, head: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keys, values and positions a head holds now."""
        n = self.count[row][head]
        return self.k[row][head][:n], self.v[row][head][:n], self.pos[row][head][:n]

    def update(self, key_states, value_states, cache_kwargs=None):
        if not self.ragged:
            return super().update(key_states, value_states, cache_kwargs)
        q = key_states.shape[-2]
        if self.sliding_window:
            self._drop_before(self.length - self.sliding_window + 1)
        new = torch.arange(self.length, self.length + q, device=key_states.device)
        for r in range(len(self.k)):
            for h in range(len(self.k[r])):
                self._append(r, h, key_states[r, h], value_states[r, h], new)
        self.length += q
        return self, self

    def _append(self, r: int, h: int, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor) -> None:
        n, q = self.count[r][h], k.shape[0]
        if n + q > self.k[r][h].shape[0]:
            room = n + q + max(16, (n + q) // 16)
            for store in (self.k, self.v, self.pos):
                grown = store[r][h].new_empty(room, *store[r][h].shape[1:])
                grown[:n] = store[r][h][:n]
                store[r][h] = grown
        self.k[r][h][n : n + q], self.v[r][h][n : n + q], self.pos[r][h][n : n + q] = k, v, pos
        self.count[r][h] = n + q

    def retain(self, row: int, head: int, index: torch.Tensor, room: int = 0) -> None:
        """Keep only entries ``index`` (ascending, into what the head holds now) of one row and head,
        in fresh buffers with ``room`` free slots: what is evicted is freed at once, and ``room``
        appended entries fit without growing."""
        n = int(index.shape[0])
        for store in (self.k, self.v, self.pos):
            kept = store[row][head].new_empty(n + room, *store[row][head].shape[1:])
            kept[:n] = store[row][head][index]
            store[row][head] = kept
        self.count[row][head] = n

    def row_bytes(self, row: int) -> int:
        """Bytes one row's buffers hold (keys, values, positions, room to grow included)."""
        if not self.ragged:
            return (self._keys[row].nbytes + self._values[row].nbytes) if self._keys is not None else 0
        return sum(t.nbytes for store in (self.k, self.v, self.pos) for t in store[row])

    def _drop_before(self, position: int) -> None:
        """Forget entries at positions below ``position`` (positions are ascending per head)."""
        for r, row in enumerate(self.pos):
            for h, pos in enumerate(row):
                n = self.count[r][h]
                cut = int(torch.searchsorted(pos[:n], position))
                if cut:
                    for store in (self.k, self.v, self.pos):
                        store[r][h][: n - cut] = store[r][h][cut:n].clone()
                    self.count[r][h] = n - cut

    def attend(self, query: torch.Tensor, scaling: float) -> torch.Tensor:
        """Attention of this step's queries ``(b, heads, q, d)``, each KV head over its own entries."""
        b, heads, q, _ = query.shape
        kv_heads = len(self.k[0])
        group = heads // kv_heads
        out = query.new_empty(b, heads, q, self.v[0][0].shape[-1])
        masked = q > 1 or bool(self.sliding_window)  # one query needs no mask without a window
        at = torch.arange(self.length - q, self.length, device=query.device) if masked else None
        for r in range(b):
            for h in range(kv_heads):
                keys, values, pos = self.entries(r, h)
                mask = None
                if masked:
                    mask = pos[None, :] <= at[:, None]
                    if self.sliding_window:
                        mask &= pos[None, :] > at[:, None] - self.sliding_window
                    mask = mask.repeat(group, 1)
                rows = query[r, h * group : (h + 1) * group].reshape(1, 1, group * q, -1)
                att = F.scaled_dot_product_attention(
                    rows, keys[None, None], values[None, None], mask, scale=scaling
                )
                out[r, h * group : (h + 1) * group] = att.reshape(group, q, -1)
        return out.transpose(1, 2).contiguous()

    def get_seq_length(self) -> int:
        return self.length if self.ragged else super().get_seq_length()

    def kept_share(self) -> float:
        """Entries held over the entries a full cache would hold now (1 while dense)."""
        if not self.ragged:
            return 1.0
        return sum(map(sum, self.count)) / (len(self.count) * len(self.count[0]) * self.length)

    def crop(self, max_length: int) -> None:
        if not self.ragged:
            return super().crop(max_length)
        if max_length < 0:
            max_length = self.length + max_length
        for r, row in enumerate(self.pos):
            for h, pos in enumerate(row):
                n = self.count[r][h] = int(torch.searchsorted(pos[: self.count[r][h]], max_length))
                for store in (self.k, self.v, self.pos):  # give back the room grown while decoding
                    store[r][h] = store[r][h][:n].clone()
        self.length = min(self.length, max_length)

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.ragged:
            raise RCStatError("a ragged cache cannot be repeated for beam search or sampling several outputs")
        super().batch_repeat_interleave(repeats)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.ragged:
            raise RCStatError("a ragged cache cannot select batch rows")
        super().batch_select_indices(indices)


class RaggedCache(Cache):
    """One :class:`RaggedLayer` per attention layer (sliding-window layers from ``config``)."""

    def __init__(self, config: Any | None = None) -> None:
        types = getattr(config, "layer_types", None) if config is not None else None
        if types is None:
            super().__init__(layer_class_to_replicate=RaggedLayer)
            return
        window = getattr(config, "sliding_window", None)
        super().__init__(layers=[RaggedLayer(window if t == "sliding_attention" else None) for t in types])

    @classmethod
    def from_cache(
        cls, cache: Cache, masks: Sequence[Mask | None] | None = None, length: int | None = None
    ) -> RaggedCache:
        """The entries of ``cache`` that ``masks`` (kvpress's ``masked_key_indices`` per layer) leave.

        ``length``: positions seen (the full context), for a cache a press shrank; entries of a
        shrunk layer get positions ``0..n-1`` (their true positions are not in the cache, and only
        sliding-window layers need them).
        """
        ragged = cls()
        for index, layer in enumerate(cache.layers):
            keys, values = layer.keys, layer.values
            b, h, n, _ = keys.shape
            seen = layer.get_seq_length() if length is None or layer.is_sliding else length
            first = seen - n if layer.is_sliding or n == seen else 0
            positions = torch.arange(first, first + n, device=keys.device).expand(b, h, n)
            keep = torch.ones(b, h, n, dtype=torch.bool, device=keys.device)
            mask = masks[index] if masks is not None else None
            if mask is not None:
                keep[mask] = False
            target = RaggedLayer(getattr(layer, "sliding_window", None) if layer.is_sliding else None)
            target.keep(keys, values, keep, positions, seen)
            ragged.layers.append(target)
        ragged.layer_class_to_replicate = None
        return ragged


def _attention(module: nn.Module, query, key, value, attention_mask, scaling=None, **kwargs):
    """``sdpa`` for dense tensors; per-head attention over a :class:`RaggedLayer` otherwise."""
    if isinstance(key, RaggedLayer):
        return key.attend(query, module.scaling if scaling is None else scaling), None
    return ALL_ATTENTION_FUNCTIONS["sdpa"](
        module, query, key, value, attention_mask, scaling=scaling, **kwargs
    )


AttentionInterface.register(ATTENTION, _attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


@contextlib.contextmanager
def ragged_attention(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` with the ragged-aware attention (``sdpa`` for everything dense), then restore."""
    before = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION)
    try:
        yield model
    finally:
        model.set_attn_implementation(before)


def _positions(kept: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Where each of a shrinking press's kept keys ``(b, h, k, d)`` sits in ``keys`` ``(b, h, n, d)``.

    Matched on a fixed random projection (nearest value), then checked entry by entry.
    """
    direction = torch.randn(keys.shape[-1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full = keys.double() @ direction.to(keys.device)
    part = kept.double() @ direction.to(keys.device)
    ordered, order = full.sort(-1)
    right = torch.searchsorted(ordered, part).clamp(max=full.shape[-1] - 1)
    left = (right - 1).clamp(min=0)
    closer = (ordered.gather(-1, left) - part).abs() < (ordered.gather(-1, right) - part).abs()
    positions = order.gather(-1, torch.where(closer, left, right))
    found = keys.gather(2, positions[..., None].expand(-1, -1, -1, keys.shape[-1]))
    if not torch.allclose(found, kept):
        raise RCStatError("the press changed the keys it kept; RaggedPress needs presses that select entries")
    return positions


@dataclass
class RaggedPress(BasePress):
    """Run ``press`` at the prefill and let a :class:`RaggedCache` hold only what it kept.

    Each layer turns ragged as soon as the press has decided its evictions; a press that decides
    after the last layer (``press.pending`` while it waits, as :class:`CrossLayerPress` does) leaves
    the layers dense until then.
    """

    press: BasePress | None = None
    seconds: float = field(default=0.0, init=False, repr=False)  # spent in the press, last prefill

    def __post_init__(self) -> None:
        if self.press is None:
            raise RCStatError("RaggedPress needs a press to wrap, e.g. RaggedPress(RCStatPress(0.5))")
        self._waiting: list[tuple[nn.Module, RaggedLayer, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def post_init_from_model(self, model: nn.Module) -> None:
        self.press.post_init_from_model(model)
        self.seconds = 0.0
        self._waiting.clear()

    def forward_hook(self, module: nn.Module, input: list, kwargs: dict, output: list):
        hidden_states, cache = kwargs["hidden_states"], kwargs["past_key_values"]
        if not is_prefilling(kwargs["cache_position"], hidden_states.shape[1]):
            return output
        layer = cache.layers[module.layer_idx]
        if not isinstance(layer, RaggedLayer):
            raise RCStatError("RaggedPress needs past_key_values=RaggedCache(model.config)")
        began = time.perf_counter()
        keys, values = layer.keys, layer.values
        module.masked_key_indices = None
        if is_sliding(module):  # the window bounds the layer: it keeps what the window keeps
            kept_keys, kept_values = keys, values
        else:
            kept_keys, kept_values = self.press.compress(
                module, hidden_states, keys, values, output[1], kwargs
            )
        self._waiting.append((module, layer, keys, kept_keys, kept_values))
        if not getattr(self.press, "pending", False):
            for waiting in self._waiting:
                _hold(*waiting)
            self._waiting.clear()
        self.seconds += time.perf_counter() - began
        return output


def _hold(
    module: nn.Module,
    layer: RaggedLayer,
    keys: torch.Tensor,
    kept_keys: torch.Tensor,
    kept_values: torch.Tensor,
) -> None:
    """Turn ``layer`` ragged with what the press kept of ``keys``: the entries it gathered, less those
    it masked on ``module`` (whose mask is then cleared)."""
    masked = getattr(module, "masked_key_indices", None)
    module.masked_key_indices = None
    b, h, n, _ = kept_keys.shape
    keep = torch.ones(b, h, n, dtype=torch.bool, device=keys.device)
    if masked is not None:
        keep[masked] = False
    if n == keys.shape[-2]:
        positions = torch.arange(n, device=keys.device).expand(b, h, n)
    else:  # a press that gathered its kept entries: find where they came from
        positions, order = _positions(kept_keys, keys).sort(-1)
        kept_keys, kept_values = (
            t.gather(2, order[..., None].expand_as(t)) for t in (kept_keys, kept_values)
        )
        keep = keep.gather(2, order)
    layer.keep(kept_keys, kept_values, keep, positions, keys.shape[-2])
