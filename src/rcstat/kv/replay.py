"""One prefill, many presses: replay kvpress compression on a recorded prefill.

kvpress compresses each layer's cache in a forward hook *after* that layer's attention has run on
the full cache, so a prefill's activations do not depend on the press. :func:`record_prefill`
runs the context once and keeps, per layer, what a press's ``compress`` receives (the layer's
input, its rotary embeddings, its keys and values); :func:`replay` then builds the compressed
cache of any press from that record, at the cost of the press's own scoring only. A test shows
the result equals running the press in the forward pass.

The record holds each layer's input hidden states: ``layers × tokens × hidden`` floats (about
140 MB for 2k tokens on the default model). Presses that read the eager attention weights
(ObservedAttention) get them recomputed from the record one layer at a time (``heads × n × n``
for that layer only), so they run although the model's own forward stays sdpa.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from kvpress import BasePress, ObservedAttentionPress
from torch import nn
from transformers import Cache, DynamicCache

from rcstat.errors import RCStatError
from rcstat.kv.memory import cache_bytes
from rcstat.models.logits import (
    attach_rotary,
    attention_layer,
    attention_layers,
    is_sliding,
    layer_queries,
    logits,
)

Mask = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class LayerInputs:
    """What kvpress's hook hands to ``compress`` for one attention layer."""

    module: nn.Module
    hidden_states: torch.Tensor
    position_embeddings: tuple[torch.Tensor, torch.Tensor]
    cache_position: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor


@dataclass
class PrefillRecord:
    """A recorded prefill: per-layer compression inputs and the positions it covered (``length``; a
    sliding-window layer holds fewer entries)."""

    model: nn.Module
    layers: list[LayerInputs]
    length: int

    @property
    def held_bytes(self) -> int:
        """Bytes of the full cache (keys and values of every layer)."""
        return _bytes((la.keys, la.values) for la in self.layers)


def _bytes(pairs) -> int:
    return sum(t.numel() * t.element_size() for pair in pairs for t in pair)


@contextmanager
def recording(model: nn.Module) -> Iterator[dict[int, dict[str, Any]]]:
    """Within it, every forward of ``model``'s attention layers files what their ``compress`` would
    receive (but the keys and values) under the layer's index."""
    seen: dict[int, dict[str, Any]] = {}

    def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
        seen[module.layer_idx] = {
            "module": module,
            "hidden_states": kwargs["hidden_states"],
            "position_embeddings": kwargs["position_embeddings"],
            "cache_position": kwargs["cache_position"],
        }

    handles = [la.module.register_forward_hook(hook, with_kwargs=True) for la in attention_layers(model)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def as_record(model: nn.Module, seen: dict[int, dict[str, Any]], cache: Cache, length: int) -> PrefillRecord:
    """The record of a prefill of ``length`` positions that :func:`recording` saw and ``cache`` holds."""
    layers = [
        LayerInputs(keys=cache.layers[i].keys, values=cache.layers[i].values, **seen[i]) for i in sorted(seen)
    ]
    return PrefillRecord(model=model, layers=layers, length=length)


def record_prefill(model: nn.Module, input_ids: torch.Tensor, **forward_kwargs: Any) -> PrefillRecord:
    """Run the prefill once, uncompressed, keeping what every press's ``compress`` would receive.

    Like kvpress's pipeline, the prefill runs the decoder without the LM head.
    """
    cache = DynamicCache(config=model.config)
    with recording(model) as seen, torch.no_grad():
        model.get_decoder()(input_ids=input_ids, past_key_values=cache, **forward_kwargs)
    return as_record(model, seen, cache, int(input_ids.shape[1]))


def cache_of(record: PrefillRecord) -> DynamicCache:
    """A fresh cache holding the recorded prefill, as the prefill left it (a sliding-window layer
    holds its window and counts every position seen), so that a later pass continues it."""
    cache = DynamicCache(config=record.model.config)
    for layer in record.layers:
        cache.update(layer.keys, layer.values, layer.module.layer_idx)
        if is_sliding(layer.module):
            cache.layers[layer.module.layer_idx].cumulative_length = record.length
    return cache


@dataclass
class Compressed:
    """A press's cache after the prefill, with the per-head masks it set (``None`` per layer if none).

    kvpress frees entries only where a press shrinks every head alike; head-adaptive presses keep
    the tensors whole and *mask* entries (``masked_key_indices``: batch, head and position
    indices). :attr:`kept_fraction` counts what attention still sees, :attr:`held_bytes` what
    memory really holds. ``full_length`` is the number of positions seen; ``layer_lengths`` what each
    layer of the uncompressed cache holds (fewer in a sliding-window layer).
    """

    cache: DynamicCache
    masks: list[Mask | None]
    full_length: int
    layer_lengths: tuple[int, ...]

    def lengths(self) -> tuple[int, ...]:
        return tuple(layer.keys.shape[-2] for layer in self.cache.layers)

    @property
    def held_bytes(self) -> int:
        return cache_bytes(self.cache)

    def _seen(self) -> list[tuple[int, int]]:
        """Per layer: entries attention still sees, entries of the uncompressed layer."""
        out = []
        for layer, mask, full in zip(self.cache.layers, self.masks, self.layer_lengths, strict=True):
            b, h, n, _ = layer.keys.shape
            out.append((b * h * n - (0 if mask is None else int(mask[0].numel())), b * h * full))
        return out

    def kept_per_layer(self) -> list[float]:
        """Share of each layer's uncompressed cache that attention still sees."""
        return [seen / full for seen, full in self._seen()]

    def kept_per_head(self) -> list[list[float]]:
        """Share of each layer's and KV head's uncompressed entries still seen (mean over the batch)."""
        out = []
        for layer, mask, full in zip(self.cache.layers, self.masks, self.layer_lengths, strict=True):
            b, h, n, _ = layer.keys.shape
            seen = torch.full((b, h), float(n))
            if mask is not None:
                seen -= torch.zeros(b, h).index_put_(
                    (mask[0].cpu(), mask[1].cpu()), torch.ones(1), accumulate=True
                )
            out.append((seen.mean(0) / full).tolist())
        return out

    @property
    def kept_fraction(self) -> float:
        """Entries attention can still see, over the uncompressed cache's entries."""
        seen = self._seen()
        return sum(s for s, _ in seen) / sum(f for _, f in seen)


def _attention_weights(layer: LayerInputs) -> torch.Tensor:
    """The eager softmax weights of the recorded layer, ``(b, heads, n, n)``, from its logits."""
    engine = attention_layer(layer.module)
    queries = layer_queries(engine, layer.hidden_states, layer.position_embeddings, slice(None))
    scores = logits(engine, queries, layer.keys)
    n = scores.shape[-1]
    future = torch.ones(n, n, dtype=torch.bool, device=scores.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1).to(layer.keys.dtype)


def replay(record: PrefillRecord, press: BasePress | None) -> Compressed:
    """The cache ``press`` would leave after the recorded prefill (``None``: the full cache).

    The per-head masks a press sets are returned with the cache (and left on the modules, as
    after ``with press(model): model(...)``), so decoding behaves as in a live run. They are read
    after the last layer, so a press may decide an earlier layer's evictions later in the prefill.
    Presses whose work is in a forward hook rather than ``compress`` (``DMSPress``,
    ``DecodingPress``) cannot be replayed: run them live. A press with ``prepare_replay(record)``
    first runs a pass of its own on the record (:class:`~rcstat.presses.probe_press.ProbePress`).
    """
    model = record.model
    cache = DynamicCache(config=model.config)
    if press is not None:
        if type(press).compress is BasePress.compress:
            raise RCStatError(
                f"{type(press).__name__} works in its forward hook and cannot be replayed; run it live"
            )
        press.post_init_from_model(model)
        prepare = getattr(press, "prepare_replay", None)
        if prepare is not None:  # a press that reads a pass of its own after the prefill (ProbePress)
            prepare(record)
    attach_rotary(model, [layer.module for layer in record.layers])
    for layer in record.layers:
        layer.module.masked_key_indices = None  # what kvpress's attention patch does at prefill
    for layer in record.layers:
        keys, values = layer.keys, layer.values
        if press is not None and not is_sliding(layer.module):  # a sliding window bounds its layer already
            kwargs = {
                "position_embeddings": layer.position_embeddings,
                "cache_position": layer.cache_position,
                "past_key_values": cache,
            }
            try:
                with torch.no_grad():
                    weights = _attention_weights(layer) if isinstance(press, ObservedAttentionPress) else None
                    keys, values = press.compress(
                        layer.module, layer.hidden_states, keys, values, weights, kwargs
                    )
            except AssertionError as err:  # kvpress checks its preconditions with assert
                raise RCStatError(f"{type(press).__name__} refused the context: {err}") from err
        cache.update(keys, values, layer.module.layer_idx)
    masks = [getattr(layer.module, "masked_key_indices", None) for layer in record.layers]
    lengths = tuple(layer.keys.shape[-2] for layer in record.layers)
    return Compressed(cache=cache, masks=masks, full_length=record.length, layer_lengths=lengths)


# live presses that run on some model classes only (kvpress tests them there; on others they fail
# inside their own passes): the press's class -> the model classes it runs on
LIVE_ONLY_ON = {"KVComposePress": ("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM")}


def compress_live(model: nn.Module, context_ids: torch.Tensor, press: BasePress) -> Compressed:
    """The cache ``press`` leaves when it runs in the forward pass (for presses that run passes of
    their own, such as KVzip, and cannot be replayed), with the masks it set."""
    only = LIVE_ONLY_ON.get(type(press).__name__, ())
    if only and type(model).__name__ not in only:
        raise RCStatError(
            f"{type(press).__name__} runs on {', '.join(only)} only, not on {type(model).__name__}"
        )
    cache = DynamicCache(config=model.config)
    modules = [layer.module for layer in attention_layers(model)]
    for module in modules:
        module.masked_key_indices = None
    try:
        with torch.no_grad(), press(model):
            model.get_decoder()(input_ids=context_ids, past_key_values=cache)
    except RCStatError:
        raise
    except (AssertionError, ValueError) as err:  # kvpress checks its preconditions with assert or raise
        raise RCStatError(f"{type(press).__name__} refused the model or the context: {err}") from err
    masks = [getattr(module, "masked_key_indices", None) for module in modules]
    n = context_ids.shape[1]
    lengths = tuple(min(n, module.sliding_window - 1) if is_sliding(module) else n for module in modules)
    return Compressed(cache=cache, masks=masks, full_length=n, layer_lengths=lengths)
