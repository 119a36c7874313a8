"""``SpanPress``: keep the neighbours of a key that scores high (docs/method.md §3, "spans").

RC peaks on the words a query matches, but the answer is often the token beside them (the number
after the asked key). This scorer wrapper gives every key the best score within ``radius`` positions
on either side (a max-pool over the inner scorer's scores), so a peak keeps its span. The inner
scorer's ``+inf`` entries (window, sinks) stay ``+inf`` and do not spread.

Cost: one ``max_pool1d`` over ``batch × kv_heads × n`` scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kvpress import ScorerPress
from torch import nn

from rcstat.errors import RCStatError
from rcstat.options import check_number


@dataclass
class SpanPress(ScorerPress):
    """Scores of ``press`` max-pooled over ``radius`` neighbours on each side; the repr is the record."""

    press: ScorerPress | None = None
    radius: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.press, ScorerPress):
            raise RCStatError("SpanPress needs a kvpress ScorerPress, e.g. SpanPress(press=RCStatPress())")
        check_number("radius", self.radius, low=0, integer=True)
        super().__post_init__()

    def post_init_from_model(self, model: nn.Module) -> None:
        self.press.post_init_from_model(model)

    def score(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> torch.Tensor:
        scores = self.press.score(module, hidden_states, keys, values, attentions, kwargs)
        if self.radius == 0:
            return scores
        kept = torch.isposinf(scores)
        flat = scores.masked_fill(kept, float("-inf")).reshape(-1, 1, scores.shape[-1]).float()
        pooled = F.max_pool1d(flat, 2 * self.radius + 1, stride=1, padding=self.radius)
        return pooled.reshape(scores.shape).to(scores.dtype).masked_fill(kept, float("inf"))
