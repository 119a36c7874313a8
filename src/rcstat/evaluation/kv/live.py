"""Presses that run in the forward pass (they cannot be replayed on a recorded prefill), run once per
sample and press: KVzip's reconstruction scores do not depend on the ratio, so one live run gives
the cache and the scores, and every other ratio is read from those scores by KVzip's own
``compress_post`` (the cells' time is the one live run's)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
from kvpress import BasePress, KVzipPress
from torch import nn

from rcstat.kv.replay import Compressed, compress_live
from rcstat.models.logits import attention_layers


@dataclass
class LiveRuns:
    """Live compressions of one sample's context, shared across the ratios of a KVzip-like press."""

    model: nn.Module
    context_ids: torch.Tensor
    runs: dict[str, tuple[Compressed, KVzipPress]] = field(default_factory=dict)  # cache, press state
    seconds: dict[str, float] = field(default_factory=dict)

    def compress(self, press: BasePress) -> tuple[Compressed, str]:
        """The cache ``press`` leaves, and the key its live run is filed under (for its time)."""
        if not isinstance(press, KVzipPress):
            return compress_live(self.model, self.context_ids, press), repr(press)
        key = repr(replace(press, compression_ratio=0.0))
        if key not in self.runs:
            states: list[KVzipPress] = []
            post = press.compress_post

            def capture(model: nn.Module) -> None:
                state = copy.copy(press)  # as compress_post sees it (the run resets it afterwards)
                state.score_val = press.score_val.clone()
                states.append(state)
                post(model)

            press.compress_post = capture
            compressed = compress_live(self.model, self.context_ids, press)
            del states[0].compress_post  # the class's own again, for the copies made from it
            self.runs[key] = (compressed, states[0])
            return compressed, key
        first, state = self.runs[key]
        ran = copy.copy(state)  # this ratio, with the run's scores and the state it left (RC-zip's prefix)
        ran.compression_ratio, ran.score_val = press.compression_ratio, state.score_val.clone()
        ran.compress_post(self.model)  # the masks of this ratio, from the same scores
        masks = [getattr(layer.module, "masked_key_indices", None) for layer in attention_layers(self.model)]
        return replace(first, masks=masks), key
