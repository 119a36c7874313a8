"""An oracle bound for eviction: keep the tokens that carry the answer, then the most recent ones.

For tasks that know where their answer lies (needle, multikey, multivalue, vartrack: a sample's
``evidence`` sentences), :class:`OraclePress` keeps exactly the answer-bearing tokens, the sinks and
the window, and fills the rest of each head's budget with the most recent tokens. What it scores
says what eviction could reach at that ratio on this model: a low score for a press beside a high
one for the oracle is the scorer's fault, not the model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from kvpress import ScorerPress
from torch import nn

ORACLE = "oracle"


@dataclass
class OraclePress(ScorerPress):
    """Answer-bearing tokens (``evidence``: token positions), sinks and window first, then recency."""

    compression_ratio: float = 0.0
    window_size: int = 16
    sink_tokens: int = 4
    evidence: tuple[int, ...] = field(default=(), repr=False)

    def score(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> torch.Tensor:
        b, h, n, _ = keys.shape
        scores = torch.arange(n, dtype=torch.float32, device=keys.device) / n  # recency, in [0, 1)
        scores[[p for p in self.evidence if p < n]] = 2.0
        scores[: self.sink_tokens] = float("inf")
        scores[max(0, n - self.window_size) :] = float("inf")
        return scores.expand(b, h, n)


def evidence_positions(
    tokenizer, context_ids: torch.Tensor, evidence: Sequence[str]
) -> tuple[int, ...] | None:
    """The positions of the tokens of ``context_ids`` that overlap each evidence text (found once in
    the decoded context), or ``None`` when there is no evidence or it cannot be placed."""
    if not evidence:
        return None
    text = tokenizer.decode(context_ids[0])
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if enc["input_ids"] != context_ids[0].tolist():
        return None  # the decoded text does not tokenize back to the same ids: offsets would lie
    positions: set[int] = set()
    for piece in evidence:
        at = text.find(piece)
        if at < 0 or text.find(piece, at + 1) >= 0:
            return None
        end = at + len(piece)
        positions |= {t for t, (a, b) in enumerate(enc["offset_mapping"]) if b > at and a < end}
    return tuple(sorted(positions))
