"""One prefill, many presses: replay kvpress compression on a recorded prefill (issue 3).

kvpress compresses each layer's cache in a forward hook *after* that layer's attention has run on
the full cache, so a prefill's activations do not depend on the press. :func:`record_prefill`
runs the context once and keeps, per layer, what a press's ``compress`` receives (the layer's
input, its rotary embeddings, its keys and values); :func:`replay` then builds the compressed
cache of any press from that record, at the cost of the press's own scoring only. A test shows
the result equals running the press in the forward pass.

The record holds each layer's input hidden states: ``layers × tokens × hidden`` floats (about
140 MB for 2k tokens on the default model). Presses that need attention weights
(ObservedAttention) cannot be replayed, as those would be ``n × n`` per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from kvpress import BasePress
from torch import nn
from transformers import DynamicCache

from rcstat.errors import RCStatError
from rcstat.models.logits import attention_layers


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
    """A recorded prefill: per-layer compression inputs and the full cache's length."""

    model: nn.Module
    layers: list[LayerInputs]

    @property
    def length(self) -> int:
        return self.layers[0].keys.shape[-2]


def record_prefill(model: nn.Module, input_ids: torch.Tensor, **forward_kwargs: Any) -> PrefillRecord:
    """Run the prefill once, uncompressed, keeping what every press's ``compress`` would receive.

    Like kvpress's pipeline, the prefill runs the decoder without the LM head.
    """
    seen: dict[int, dict[str, Any]] = {}

    def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
        seen[module.layer_idx] = {
            "module": module,
            "hidden_states": kwargs["hidden_states"],
            "position_embeddings": kwargs["position_embeddings"],
            "cache_position": kwargs["cache_position"],
        }

    handles = [la.module.register_forward_hook(hook, with_kwargs=True) for la in attention_layers(model)]
    cache = DynamicCache(config=model.config)
    try:
        with torch.no_grad():
            model.get_decoder()(input_ids=input_ids, past_key_values=cache, **forward_kwargs)
    finally:
        for handle in handles:
            handle.remove()
    layers = [
        LayerInputs(keys=cache.layers[i].keys, values=cache.layers[i].values, **seen[i]) for i in sorted(seen)
    ]
    return PrefillRecord(model=model, layers=layers)


def replay(record: PrefillRecord, press: BasePress | None) -> DynamicCache:
    """The cache ``press`` would leave after the recorded prefill (``None``: the full cache).

    Per-head masks that a press sets (``module.masked_key_indices``) are set as in a real run, so
    decoding from the returned cache behaves as after ``with press(model): model(...)``.
    """
    model = record.model
    cache = DynamicCache(config=model.config)
    if press is not None:
        press.post_init_from_model(model)
    for layer in record.layers:
        layer.module.masked_key_indices = None  # what kvpress's attention patch does at prefill
        keys, values = layer.keys, layer.values
        if press is not None:
            kwargs = {
                "position_embeddings": layer.position_embeddings,
                "cache_position": layer.cache_position,
                "past_key_values": cache,
            }
            try:
                with torch.no_grad():
                    keys, values = press.compress(
                        layer.module, layer.hidden_states, keys, values, None, kwargs
                    )
            except AssertionError as err:  # kvpress checks its preconditions with assert
                raise RCStatError(f"{type(press).__name__} refused the recorded prefill: {err}") from err
        cache.update(keys, values, layer.module.layer_idx)
    return cache
