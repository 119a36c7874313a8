"""``RCStatPress``: evict cached keys whose expected RC against the window is low (SPEC §3).

At prefill, the last ``window_size`` tokens (the observation window) stand in for the generated
part ``g``. Per layer and query head, ``Y`` is the window's causal logits to itself and ``X_i``
the window's logits to key ``i``; key ``i`` scores ``E[max(X_i − Y, 0)]`` — how far it stands
above the head's own self-contextualization floor, in logit units, so comparable across heads.

Two modes:

* **ratio** (``threshold=None``): keep ``1 − compression_ratio`` of the keys. With
  ``head_adaptive=True`` (default) keys are ranked across the KV heads of a layer with a floor of
  ``head_floor`` of the per-head budget, as kvpress's AdaKV does; with ``False``, top-k per head.
* **threshold**: evict every key whose score is ``≤ threshold``; budgets differ per head and per
  layer by themselves, and the realised ratio is recorded in :attr:`RCStatPress.kept`.

Memory: uniform top-k really shrinks the cache. Head-adaptive and threshold modes give each head
its own budget, which kvpress's cache cannot hold: their evicted entries are *masked* (kvpress's
``masked_key_indices``, read by its attention patch during decoding) and stay in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from kvpress import BasePress
from kvpress.utils import compute_n_kept
from torch import nn

from rcstat import stats
from rcstat.errors import RCStatError
from rcstat.models.logits import AttentionLayer, attention_layer, attention_layers, layer_queries, logits


@dataclass
class RCStatPress(BasePress):
    """KV eviction by expected relative contextualization (SPEC §3); the repr is the record."""

    compression_ratio: float = 0.0
    threshold: float | None = None
    estimator: stats.Estimator = "independent"
    window_size: int = 16
    sink_tokens: int = 4
    gqa_reduce: Literal["max", "mean"] = "max"
    head_adaptive: bool = True
    head_floor: float = 0.2
    pooling: int = 1

    def __post_init__(self) -> None:
        self.kept: dict[int, float] = {}  # layer -> kept fraction of the last compression
        self._layers: dict[int, AttentionLayer] = {}
        problems = []
        if not 0 <= self.compression_ratio < 1:
            problems.append(f"compression_ratio must be in [0, 1), got {self.compression_ratio}")
        if self.estimator not in stats.ESTIMATORS:
            problems.append(f"estimator must be one of {', '.join(stats.ESTIMATORS)}, got {self.estimator!r}")
        if self.window_size < 1 or self.sink_tokens < 0 or self.pooling < 1 or self.pooling % 2 == 0:
            problems.append("window_size ≥ 1, sink_tokens ≥ 0 and an odd pooling ≥ 1 are required")
        if self.gqa_reduce not in ("max", "mean"):
            problems.append(f"gqa_reduce must be 'max' or 'mean', got {self.gqa_reduce!r}")
        if not 0 <= self.head_floor <= 1:
            problems.append(f"head_floor must be in [0, 1], got {self.head_floor}")
        if problems:
            raise RCStatError("; ".join(problems))

    def post_init_from_model(self, model: nn.Module) -> None:
        self._layers = {layer.index: layer for layer in attention_layers(model)}
        self.kept.clear()

    def score(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> torch.Tensor:
        """Expected RC of every key, ``(batch, kv_heads, keys)``; window and sinks get ``+inf``."""
        layer = self._layers.get(module.layer_idx)
        if layer is None:  # score() called outside `with press(model)`
            layer = self._layers[module.layer_idx] = attention_layer(module)
        n = keys.shape[-2]
        w = min(self.window_size, hidden_states.shape[1], n)
        q = layer_queries(layer, hidden_states, kwargs["position_embeddings"], slice(-w, None))
        lg = logits(layer, q, keys)  # (batch, heads, w, n): rows are the last w positions
        window = range(n - w, n)
        y = stats.self_samples(lg, window, range(n), window, window)  # (batch, heads, w(w+1)/2)
        x = lg[..., : n - w].transpose(-1, -2)  # (batch, heads, n − w, w): one row per key
        rc = stats.expected_rc(x, y.unsqueeze(-2), self.estimator)
        b, h_kv = keys.shape[:2]
        grouped = rc.reshape(b, h_kv, -1, n - w)
        rc = grouped.amax(2) if self.gqa_reduce == "max" else grouped.mean(2)
        if self.pooling > 1 and rc.shape[-1] > 0:
            rc = F.avg_pool1d(rc, kernel_size=self.pooling, padding=self.pooling // 2, stride=1)
        scores = F.pad(rc, (0, w), value=float("inf"))
        scores[..., : self.sink_tokens] = float("inf")
        return scores

    def compress(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.threshold is None and self.compression_ratio == 0:
            return keys, values
        scores = self.score(module, hidden_states, keys, values, attentions, kwargs)
        n = scores.shape[-1]
        if self.threshold is not None:
            evict = scores <= self.threshold
        elif self.head_adaptive:
            evict = self._adaptive_evictions(scores, compute_n_kept(n, self.compression_ratio))
        else:
            n_kept = compute_n_kept(n, self.compression_ratio)
            index = scores.topk(n_kept, dim=-1).indices.sort(dim=-1).values
            index = index.unsqueeze(-1).expand(-1, -1, -1, keys.shape[-1])
            self.kept[module.layer_idx] = n_kept / n
            return keys.gather(2, index).contiguous(), values.gather(2, index).contiguous()
        self.kept[module.layer_idx] = 1.0 - float(evict.float().mean())
        if bool(evict.any()):
            module.masked_key_indices = torch.nonzero(evict, as_tuple=True)
        return keys, values

    def _adaptive_evictions(self, scores: torch.Tensor, n_kept: int) -> torch.Tensor:
        """Bottom keys across the KV heads of a layer, each head keeping ``head_floor · n_kept``."""
        b, h_kv, n = scores.shape
        ranked = scores.clone()
        n_safe = int(n_kept * self.head_floor)
        if n_safe > 0:
            ranked.scatter_(-1, ranked.topk(n_safe, dim=-1).indices, float("inf"))
        n_evicted = h_kv * (n - n_kept)
        evict = torch.zeros(b, h_kv * n, dtype=torch.bool, device=scores.device)
        evict.scatter_(1, (-ranked.reshape(b, -1)).topk(n_evicted, dim=-1).indices, True)
        return evict.reshape(b, h_kv, n)
