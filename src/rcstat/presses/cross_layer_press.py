"""``CrossLayerPress``: one threshold over the scores of every layer, chosen to meet a budget for the
whole cache (docs/method.md §3).

Ratio mode elsewhere keeps the same share in every layer (AdaKV ranks across the heads of one
layer). RC's scores are in logit units above each head's own self-contextualization floor, so they
compare across layers too, as the paper's thresholds assume: a layer whose keys stand out keeps more,
one whose keys do not keeps less. This press scores each layer as the prefill reaches it and decides
after the last layer: it evicts, per sequence of the batch, the ``compression_ratio`` share of all
entries of all layers and heads with the lowest scores (the scorer's ``+inf`` window and sinks are
never among them while the budget allows), by masking (kvpress's ``masked_key_indices``, or freed by
:class:`~rcstat.kv.ragged.RaggedPress`).

With ``also``, a second scorer (a query-independent one such as KeyDiff, for what no window query
looks at) shares the budget, as ``combine`` says:

- ``fill`` (the default): the first scorer decides wherever it has a signal — entries scoring above 0
  (RC above its head's null level, :class:`RCStatPress` with ``above_null``) rank first, by that
  score across layers — and the second scorer orders the rest by its percentile within each head
  (so the rest is shared out as evenly across heads as the second scorer's own budgets would be);
- ``union``: each scorer's scores become ranks across all entries, and an entry keeps the better of
  its two, so the kept set is the union of both tops (each keeps about half where they disagree).

Cost: the full cache exists until the prefill ends (as for every kvpress press, whose hooks run
after each layer's attention), and the scores of every layer are held until then:
``layers × kv_heads × n`` floats (about 0.5 MB for 1k tokens on the default model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from kvpress import BasePress, ScorerPress
from torch import nn

from rcstat.errors import RCStatError
from rcstat.models.logits import attention_layers, is_sliding
from rcstat.options import Combine, check_choice, check_number


@dataclass
class CrossLayerPress(BasePress):
    """Keep the top ``1 − compression_ratio`` of the whole cache by ``press.score``, ranked across every
    layer and head (per sequence); the repr is the record. :attr:`kept` holds each layer's share."""

    press: ScorerPress | None = None
    compression_ratio: float = 0.0
    also: ScorerPress | None = None
    combine: Combine = "fill"
    kept: dict[int, float] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.press, ScorerPress):
            raise RCStatError(
                "CrossLayerPress needs a kvpress ScorerPress, e.g. CrossLayerPress(RCStatPress())"
            )
        check_number("compression_ratio", self.compression_ratio, low=0, high=1, high_open=True)
        if self.also is not None and not isinstance(self.also, ScorerPress):
            raise RCStatError("CrossLayerPress's second scorer (also) must be a kvpress ScorerPress")
        check_choice("combine", self.combine, Combine)
        self._waiting: dict[int, tuple[nn.Module, torch.Tensor, torch.Tensor | None]] = {}
        self._last = -1

    def post_init_from_model(self, model: nn.Module) -> None:
        self.press.post_init_from_model(model)
        if self.also is not None:
            self.also.post_init_from_model(model)
        self._last = max(la.index for la in attention_layers(model) if not is_sliding(la.module))
        self._waiting.clear()
        self.kept.clear()

    @property
    def pending(self) -> bool:
        """Layers have been scored and wait for the decision made after the last one."""
        return bool(self._waiting)

    def compress(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.compression_ratio == 0 or is_sliding(module):  # a sliding window bounds its layer already
            return keys, values
        if self._last < 0:
            raise RCStatError("CrossLayerPress needs the model: use it as `with press(model): …`")
        scores = self.press.score(module, hidden_states, keys, values, attentions, kwargs)
        other = None
        if self.also is not None:
            other = self.also.score(module, hidden_states, keys, values, attentions, kwargs)
            other = COMBINE[self.combine][0](other.masked_fill(torch.isposinf(scores), float("inf")))
        self._waiting[module.layer_idx] = (module, scores, other)
        if module.layer_idx == self._last:
            self._decide()
        return keys, values

    def _decide(self) -> None:
        """Mask, per sequence, the lowest-scoring ``compression_ratio`` share of all layers' entries."""
        layers = sorted(self._waiting)
        modules = [self._waiting[i][0] for i in layers]
        scores = [self._waiting[i][1] for i in layers]
        flat = _flat(scores)  # (batch, all entries)
        if self.also is not None:
            flat = COMBINE[self.combine][1](flat, _flat([self._waiting[i][2] for i in layers]))
        n_evict = flat.shape[1] - max(1, int(flat.shape[1] * (1 - self.compression_ratio)))
        evict = torch.zeros_like(flat, dtype=torch.bool)
        evict.scatter_(1, (-flat).topk(n_evict, dim=1).indices, True)
        for module, part, layer_scores in zip(
            modules, evict.split([s[0].numel() for s in scores], dim=1), scores, strict=True
        ):
            mask = part.reshape(layer_scores.shape)
            self.kept[module.layer_idx] = 1.0 - float(mask.float().mean())
            module.masked_key_indices = torch.nonzero(mask, as_tuple=True) if bool(mask.any()) else None
        self._waiting.clear()


def _flat(scores: list[torch.Tensor]) -> torch.Tensor:
    """Every layer's ``(batch, heads, n)`` scores side by side: ``(batch, all entries)``."""
    return torch.cat([s.reshape(s.shape[0], -1).float() for s in scores], dim=1)


def _ranks(flat: torch.Tensor) -> torch.Tensor:
    """Each entry's rank among its sequence's entries (0 for the lowest), ``+inf`` kept as ``+inf``."""
    ranks = flat.argsort(dim=1).argsort(dim=1).float()
    return ranks.masked_fill(torch.isposinf(flat), float("inf"))


def _union(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The better of each entry's two ranks."""
    return torch.maximum(_ranks(first), _ranks(second))


def head_percentiles(scores: torch.Tensor) -> torch.Tensor:
    """Each entry's rank within its head over the head's entries, in ``[0, 1)``; ``+inf`` kept."""
    ranks = scores.argsort(dim=-1).argsort(dim=-1).float() / scores.shape[-1]
    return ranks.masked_fill(torch.isposinf(scores), float("inf"))


def _fill(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Entries the first scorer puts above 0 first (by its score), then the rest by the second's
    per-head percentile (``second``, in ``[0, 1)``)."""
    return torch.where(first > 0, 1 + first, second)


def _as_scored(scores: torch.Tensor) -> torch.Tensor:
    return scores


# how CrossLayerPress's two scorers share one budget: what each layer's second scores become (the
# first scorer's +inf already kept), then how the two flattened sets of scores combine
COMBINE = {"fill": (head_percentiles, _fill), "union": (_as_scored, _union)}
