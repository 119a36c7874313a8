"""``ThresholdPress``: evict every cached entry whose score is at most τ, for any kvpress scorer.

The paper's form of RC eviction (docs/method.md §3): no budget is set; each head and layer keeps
what clears the threshold, so budgets differ by themselves and the realised ratio is read after
the prefill (:attr:`ThresholdPress.compression_ratio`). Any ``ScorerPress`` can be thresholded the
same way, so baselines are compared on equal terms (their scores have their own units).

kvpress's ``DMSPress`` also thresholds a scorer, but in its forward hook, strictly below τ, and
never within its most recent ``sliding_window_size`` (128) tokens: RC's score of a key needs the
queries that follow it, so the scorer's own window and sinks (scored ``+inf``) are what protects
entries here. Per-head budgets are held by masking (kvpress's ``masked_key_indices``); wrap the
press in :class:`rcstat.kv.ragged.RaggedPress` to free what it evicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from kvpress import BasePress, ScorerPress
from torch import nn

from rcstat.errors import RCStatError


@dataclass
class ThresholdPress(BasePress):
    """Evict entries with ``press.score(...) ≤ threshold`` (per head and layer); the repr is the record."""

    press: ScorerPress | None = None
    threshold: float = 0.0
    evicted: dict[int, float] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.press, ScorerPress):
            raise RCStatError(
                "ThresholdPress needs a kvpress ScorerPress, e.g. ThresholdPress(RCStatPress())"
            )
        if math.isnan(self.threshold) or self.threshold == math.inf:
            raise RCStatError(
                f"threshold must be a number below +inf, got {self.threshold}", option="threshold"
            )

    def post_init_from_model(self, model: nn.Module) -> None:
        self.press.post_init_from_model(model)
        self.evicted.clear()

    @property
    def compression_ratio(self) -> float:
        """The share of entries evicted by the last prefill, averaged over layers (0 before one)."""
        return sum(self.evicted.values()) / len(self.evicted) if self.evicted else 0.0

    def compress(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.press.score(module, hidden_states, keys, values, attentions, kwargs)
        evict = scores <= self.threshold
        self.evicted[module.layer_idx] = float(evict.float().mean())
        if bool(evict.any()):
            module.masked_key_indices = torch.nonzero(evict, as_tuple=True)
        return keys, values
