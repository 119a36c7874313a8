"""``RCStatPress``: a kvpress scorer — each cached key's expected RC against the window (docs/method.md §3).

The last ``window_size`` tokens (the observation window) stand in for the generated part ``g``.
Per layer and query head, ``Y`` is the window's causal logits to itself and ``X_i`` the window's
logits to key ``i``; key ``i`` scores ``E[max(X_i − Y, 0)]``: how far it stands above the head's
own self-contextualization floor, in logit units, so scores compare across heads and layers.

It is a ``ScorerPress``: it computes :meth:`RCStatPress.score` and nothing else, so every kvpress
wrapper composes with it — ``AdaKVPress(RCStatPress())`` ranks keys across the heads of a layer,
``ThresholdPress(RCStatPress(), 0.0)`` evicts every key scoring ≤ τ, ``DecodingPress(RCStatPress())``
compresses while generating, ``ChunkKVPress``, ``BlockPress``, ``KeyRerotationPress``,
``CriticalKVPress``… On its own it keeps the top ``1 − compression_ratio`` keys of every head (a
uniform budget, which really shrinks kvpress's cache). :func:`rcstat.presses.rc_press` builds the
composition the README recommends.

Cost per layer: the window's queries (``w`` rows) against all ``n`` keys, ``heads × w × n`` logits,
then one estimator call with ``Y`` shared by every key (see :mod:`rcstat.stats` for its cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kvpress import ScorerPress
from kvpress.utils import compute_n_kept
from torch import nn

from rcstat import stats
from rcstat.errors import RCStatError
from rcstat.models.logits import (
    AttentionLayer,
    attention_layer,
    attention_layers,
    layer_queries,
    logits,
    window_position_embeddings,
)
from rcstat.options import Estimator, GqaReduce, check_choice, check_number


class InOrder:
    """A kvpress ``ScorerPress`` mixin: ``compress`` keeps the kept entries in their original order
    (sinks first, window last), so a later compression while decoding still finds both where it
    looks (kvpress's own keeps them in score order)."""

    def compress(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``ScorerPress.compress`` with the kept entries in their original order."""
        if self.compression_ratio == 0:
            return keys, values
        scores = self.score(module, hidden_states, keys, values, attentions, kwargs)
        n_kept = compute_n_kept(keys.shape[-2], self.compression_ratio)
        index = scores.topk(n_kept, dim=-1).indices.sort(dim=-1).values
        index = index.unsqueeze(-1).expand(-1, -1, -1, keys.shape[-1])
        return keys.gather(2, index).contiguous(), values.gather(2, index).contiguous()


@dataclass
class RCStatPress(InOrder, ScorerPress):
    """Expected relative contextualization of every key (a kvpress scorer); the repr is the record.

    ``estimator``: the bound or estimate of ``E[Z]`` (:data:`rcstat.stats.Estimator`);
    ``window_size``: the queries that stand in for ``g``; ``sink_tokens``: first entries always
    kept; ``gqa_reduce``: how the query heads of a KV head combine; ``pooling``: an odd moving
    average over neighbouring keys (1: none).
    """

    compression_ratio: float = 0.0
    estimator: Estimator = "independent"
    window_size: int = 16
    sink_tokens: int = 4
    gqa_reduce: GqaReduce = "max"
    pooling: int = 1
    above_null: bool = False

    def __post_init__(self) -> None:
        check_number("compression_ratio", self.compression_ratio, low=0, high=1, high_open=True)
        check_choice("estimator", self.estimator, Estimator)
        check_choice("gqa_reduce", self.gqa_reduce, GqaReduce)
        check_number("window_size", self.window_size, low=1, integer=True)
        check_number("sink_tokens", self.sink_tokens, low=0, integer=True)
        check_number("pooling", self.pooling, low=1, integer=True)
        if self.pooling % 2 == 0:
            raise RCStatError(
                f"pooling must be odd (a window centred on each key), got {self.pooling}", option="pooling"
            )
        self._layers: dict[int, AttentionLayer] = {}

    def post_init_from_model(self, model: nn.Module) -> None:
        self._layers = {layer.index: layer for layer in attention_layers(model)}

    def score(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> torch.Tensor:
        """Expected RC of every key, ``(batch, kv_heads, keys)``; the window and the sinks get ``+inf``.

        The window is the last ``w`` rows of ``hidden_states``, which are the last ``w`` entries of
        ``keys`` (at prefill, and in the buffer kvpress's ``DecodingPress`` hands over).
        """
        layer = self._layers.get(module.layer_idx)
        if layer is None:  # score() called outside `with press(model)`
            layer = self._layers[module.layer_idx] = attention_layer(module)
        n = keys.shape[-2]
        w = min(self.window_size, hidden_states.shape[1], n)
        if n == w:  # nothing but the window (a short sliding-window layer): all kept
            return torch.full(keys.shape[:3], float("inf"), device=keys.device)
        rope = window_position_embeddings(module, hidden_states, kwargs, w)
        q = layer_queries(layer, hidden_states[:, -w:], rope, slice(None))
        lg = logits(layer, q, keys)  # (batch, heads, w, n): rows are the last w entries
        window = range(n - w, n)
        y = stats.self_samples(lg, window, range(n), window, window)  # (batch, heads, w(w+1)/2)
        rc = self.key_rc(module, hidden_states, keys, lg[..., : n - w], y)
        if self.above_null:  # (batch, heads, 1): the RC of a key drawn like the window's own
            rc = rc - stats.expected_rc(y.unsqueeze(-2), y.unsqueeze(-2), self.estimator)
        b, h_kv = keys.shape[:2]
        grouped = rc.reshape(b, h_kv, -1, n - w)
        rc = grouped.amax(2) if self.gqa_reduce == "max" else grouped.mean(2)
        if self.pooling > 1 and rc.shape[-1] > 0:
            rc = F.avg_pool1d(rc, kernel_size=self.pooling, padding=self.pooling // 2, stride=1)
        scores = F.pad(rc, (0, w), value=float("inf"))
        scores[..., : self.sink_tokens] = float("inf")
        return scores

    def key_rc(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        """``E[Z]`` of every key before the window, per query head ``(batch, heads, n − w)``, from the
        window's logits to those keys ``x`` ``(batch, heads, w, n − w)`` and its self samples ``y``."""
        return stats.expected_rc(x.transpose(-1, -2), y.unsqueeze(-2), self.estimator)
