"""``FillPress``: RC decides where it has a signal, a query-independent scorer orders the rest, within
each head (docs/method.md §3).

Every head keeps the same share ``1 − compression_ratio`` of its entries (a kvpress ``ScorerPress``:
no budget moves between layers). Within a head, the keys RC puts above the head's null level
(:class:`RCStatPress` with ``above_null``: how far a key stands above a key drawn like the window's
own, in logit units) rank first, by RC, but they may take at most ``cap`` of the head's kept
budget; the rest of the budget goes by the second scorer's percentile within the head (KeyDiff's key
diversity by default: what no window query looks at). RC's window and sinks (``+inf``) are always kept.

Why: where the window's queries are not the question (query-agnostic), RC's signal is broad and can
fill a whole head's budget with what the window reads nearby, and a model with few KV heads in few
compressed layers (Gemma 3's three global layers, one KV head each) has no other head to hold the
rest. The cap leaves room for the keys the window does not look at; with the question in the window,
RC's signal is a few peaks well under the cap. Chosen on development data (benchmarks/kv/dev,
round 6).

Cost: both scorers' costs (RC's ``heads × w × n`` window logits, KeyDiff's ``kv_heads × n × d``), one
sort per head for the percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from kvpress import KeyDiffPress, ScorerPress
from kvpress.utils import compute_n_kept
from torch import nn

from rcstat.errors import RCStatError
from rcstat.options import check_number
from rcstat.presses.cross_layer_press import head_percentiles
from rcstat.presses.rcstat_press import InOrder, RCStatPress

DEFAULT_CAP = 0.5  # the share of a head's kept budget RC's signal may take (chosen on the dev seed)


def _rc_above_null() -> RCStatPress:
    return RCStatPress(above_null=True)


@dataclass
class FillPress(InOrder, ScorerPress):
    """RC's signal first (at most ``cap`` of each head's budget), ``also``'s percentile for the rest,
    the same share kept in every head; a kvpress scorer (kept entries in their original order), the
    repr is the record."""

    compression_ratio: float = 0.0
    press: ScorerPress = field(default_factory=_rc_above_null)
    also: ScorerPress = field(default_factory=KeyDiffPress)
    cap: float = DEFAULT_CAP

    def __post_init__(self) -> None:
        check_number("compression_ratio", self.compression_ratio, low=0, high=1, high_open=True)
        check_number("cap", self.cap, low=0, high=1)
        if not (isinstance(self.press, ScorerPress) and isinstance(self.also, ScorerPress)):
            raise RCStatError("FillPress needs two kvpress ScorerPress scorers (press and also)")

    def post_init_from_model(self, model: nn.Module) -> None:
        self.press.post_init_from_model(model)
        self.also.post_init_from_model(model)

    def room(self, n: int) -> int:
        """How many of a head's ``n`` entries RC's signal may take: ``cap`` of the kept budget."""
        return int(compute_n_kept(n, self.compression_ratio) * self.cap)

    def score(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> torch.Tensor:
        """``(batch, kv_heads, keys)``: ``1 + RC`` on the kept signal (``+inf`` window and sinks), the
        second scorer's percentile in ``[0, 1)`` elsewhere."""
        first = self.press.score(module, hidden_states, keys, values, attentions, kwargs).float()
        second = self.also.score(module, hidden_states, keys, values, attentions, kwargs).float()
        rest = head_percentiles(second.masked_fill(torch.isposinf(first), float("inf")))
        finite = first.masked_fill(torch.isposinf(first), float("-inf"))
        room = self.room(keys.shape[-2])
        signal = finite > 0
        if room < finite.shape[-1]:  # at most `room` signal entries per head, the best by RC
            cut = (
                finite.topk(room, dim=-1).values[..., -1:]
                if room
                else torch.full_like(finite[..., :1], torch.inf)
            )
            signal &= finite >= cut
        return torch.where(torch.isposinf(first), first, torch.where(signal, 1 + first, rest))
