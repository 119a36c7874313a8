"""Greedy answers from many compressed caches of one prefill, decoded together.

The caches that presses leave after one prefill differ only in which entries they kept. They are
stacked along the batch dimension and decoded in one greedy loop, so the model's weights are read
once per step for all of them (decoding on CPU is bound by reading weights: thirty caches cost
little more than one). Which entries each row and KV head may attend to is a boolean mask per
layer: what a head-adaptive press evicted (kvpress's ``masked_key_indices``) and what pads a
shorter layer to the longest are both excluded exactly. The mask is applied by an attention
function registered with ``transformers``' ``AttentionInterface`` (a per-head mask, GQA as a view)
that the model uses only while decoding here; kvpress's own fake-key masking cannot serve a batch
(it needs one key that every query of a row and head ignores, and fails to find one). The
decoding is kvpress's ``generate_answer`` (question at positions after the full context, greedy,
stop at an end token after the first), and a test shows equal answers to it, press by press.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import AttentionInterface, Cache
from transformers.cache_utils import DynamicLayer

from rcstat.errors import RCStatError
from rcstat.kv.replay import Compressed, Mask
from rcstat.models.logits import attention_layers

ATTENTION = "rcstat_masked"


def masked_attention(module: nn.Module, query, key, value, attention_mask, scaling=None, **kwargs):
    """Attention of new queries, causal among them (and within the window of a sliding-window layer,
    which presses leave whole), without the entries ``module.rcstat_keep`` marks False.

    ``rcstat_keep``: ``(batch, kv_heads, n)`` booleans for the first ``n`` cached entries; later
    entries (this call's own tokens) are kept. The model's own ``attention_mask`` is not used. GQA
    is a view (query heads grouped onto their KV head), so keys and values are never repeated.
    """
    b, heads, q, d = query.shape
    kv_heads, total = key.shape[1], key.shape[-2]
    group = heads // kv_heads
    positions = torch.arange(total, device=key.device)
    rows = torch.arange(total - q, total, device=key.device)[:, None]
    mask = positions[None, :] <= rows
    window = getattr(module, "sliding_window", None) if getattr(module, "is_sliding", False) else None
    if window:  # an uncompressed sliding-window layer: its entries are consecutive positions
        mask = mask & (positions[None, :] > rows - window)
    mask = mask[None, None]
    keep = getattr(module, "rcstat_keep", None)
    if keep is not None:
        padded = torch.ones(b, kv_heads, total, dtype=torch.bool, device=key.device)
        padded[..., : keep.shape[-1]] = keep
        mask = mask & padded[:, :, None, :]  # (b, kv_heads, q, total)
    mask = (
        mask.unsqueeze(2)
        .expand(-1, kv_heads, group, q, total)
        .reshape(mask.shape[0], kv_heads, group * q, total)
    )
    scale = module.scaling if scaling is None else scaling
    scores = torch.matmul(query.reshape(b, kv_heads, group * q, d), key.transpose(-1, -2)).float() * scale
    probs = scores.masked_fill(~mask, float("-inf")).softmax(-1).to(value.dtype)
    out = torch.matmul(probs, value).reshape(b, heads, q, value.shape[-1])
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, masked_attention)


def greedy_answers(
    model: nn.Module,
    tokenizer,
    question_ids: torch.Tensor,
    compressed: Sequence[Compressed],
    max_new_tokens: int,
    batch_size: int = 48,
) -> list[str]:
    """The greedy answer after ``question_ids`` from each compressed cache, ``batch_size`` at a time."""
    answers: list[str] = []
    for start in range(0, len(compressed), batch_size):
        group = compressed[start : start + batch_size]
        answers += _decode_group(model, tokenizer, question_ids, group, max_new_tokens)
    return answers


class _GrowingLayer(DynamicLayer):
    """A cache layer with room for ``room`` more tokens, written in place (no copy per step)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        super().__init__()
        b, h, n, _ = keys.shape
        self._keys = keys.new_empty(b, h, n + room, keys.shape[-1])
        self._values = values.new_empty(b, h, n + room, values.shape[-1])
        self._keys[:, :, :n], self._values[:, :, :n] = keys, values
        self.length = 0
        self.lazy_initialization(keys, values)
        self._advance(n)

    def _advance(self, count: int) -> None:
        self.length += count
        self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]

    def update(self, key_states, value_states, cache_kwargs=None):
        q = key_states.shape[-2]
        if self.length + q > self._keys.shape[-2]:
            raise RCStatError("decoding ran past the room reserved in the cache")
        self._keys[:, :, self.length : self.length + q] = key_states
        self._values[:, :, self.length : self.length + q] = value_states
        self._advance(q)
        return self.keys, self.values


def _stack(model: nn.Module, group: Sequence[Compressed], room: int) -> tuple[Cache, list[Mask | None]]:
    """One batched cache with ``room`` for new tokens; entries padding a shorter layer are masked like
    evicted ones."""
    layers: list[DynamicLayer] = []
    masks: list[Mask | None] = []
    for index in range(len(group[0].cache.layers)):
        length = max(item.cache.layers[index].keys.shape[-2] for item in group)
        keys, values, parts, row = [], [], [], 0
        for item in group:
            layer, mask = item.cache.layers[index], item.masks[index]
            b, h, n, _ = layer.keys.shape
            pad = (0, 0, 0, length - n)
            keys.append(torch.nn.functional.pad(layer.keys, pad))
            values.append(torch.nn.functional.pad(layer.values, pad))
            if mask is not None:
                parts.append((mask[0] + row, mask[1], mask[2]))
            if length > n:
                grid = torch.cartesian_prod(torch.arange(b), torch.arange(h), torch.arange(n, length))
                parts.append((grid[:, 0] + row, grid[:, 1], grid[:, 2]))
            row += b
        layers.append(_GrowingLayer(torch.cat(keys), torch.cat(values), room))
        masks.append(tuple(torch.cat(p) for p in zip(*parts, strict=True)) if parts else None)
    return Cache(layers=layers), masks


def _decode_group(
    model: nn.Module,
    tokenizer,
    question_ids: torch.Tensor,
    group: Sequence[Compressed],
    max_new_tokens: int,
) -> list[str]:
    cache, masks = _stack(model, group, question_ids.shape[1] + max_new_tokens)
    modules = [layer.module for layer in attention_layers(model)]
    batch = cache.layers[0].keys.shape[0]
    start = group[0].full_length
    stop = model.generation_config.eos_token_id
    stop = set(stop if isinstance(stop, list) else [stop])
    ids = question_ids.to(cache.layers[0].keys.device).expand(batch, -1)
    generated: list[torch.Tensor] = []
    before = model.config._attn_implementation
    try:
        for module, mask, layer in zip(modules, masks, cache.layers, strict=True):
            keep = torch.ones(layer.keys.shape[:3], dtype=torch.bool, device=layer.keys.device)
            if mask is not None:
                keep[mask] = False
            module.rcstat_keep = keep
        model.set_attn_implementation(ATTENTION)
        with torch.no_grad():
            for step in range(max_new_tokens):
                positions = torch.arange(start, start + ids.shape[1], device=ids.device).expand(batch, -1)
                out = model(input_ids=ids, past_key_values=cache, position_ids=positions, logits_to_keep=1)
                start += ids.shape[1]
                ids = out.logits[:, -1:].argmax(-1)
                generated.append(ids[:, 0])
                if step and all(_stopped(generated, row, stop) for row in range(batch)):
                    break
    finally:
        model.set_attn_implementation(before)
        for module in modules:
            module.rcstat_keep = None
    tokens = torch.stack(generated, 1).tolist()
    return [tokenizer.decode(_until_stop(row, stop), skip_special_tokens=True) for row in tokens]


def _stopped(generated: list[torch.Tensor], row: int, stop: set[int]) -> bool:
    return any(int(t[row]) in stop for t in generated[1:])


def _until_stop(row: list[int], stop: set[int]) -> list[int]:
    """Tokens up to and including the first stop token after the first (as kvpress stops)."""
    for j in range(1, len(row)):
        if row[j] in stop:
            return row[: j + 1]
    return row
