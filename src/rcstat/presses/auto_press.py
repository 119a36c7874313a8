"""``AutoRCPress``: the default RC press, its recipe read from the model's structure (docs/method.md §3).

What decides is how many KV heads the compressed layers hold in all (global layers × KV heads per
layer; sliding-window layers are left whole):

- at least ``min_kv_heads`` (SmolLM2-135M: 30 layers × 3 KV heads = 90): RC ranked across every
  layer and head, one threshold for the whole cache (:class:`CrossLayerPress` over
  :class:`RCStatPress`): a key the window passes over in one head survives in the many others that
  look at it, and budget moves to the layers whose keys stand out;
- fewer (Gemma-3-270M: 3 global layers × 1 KV head = 3): :class:`FillPress`, every head keeping the
  same share, RC's signal first (capped) and KeyDiff's key diversity for the rest: with three KV
  heads, a key one head drops is gone from a third of what the model attends to, and moving budget
  between them starves a layer.

While generating (:class:`~rcstat.kv.generation.DecodingCompression` with scope ``"auto"``),
:class:`AutoRCScorer` applies the same rule: RC ranked across the model (scope ``"model"``) or
:class:`FillPress` within each head (scope ``"head"``). It is an option, not the registry's
``rcstat`` while generating: on Gemma-3-270M it measured behind RC across the model there
(benchmarks/decoding/gemma-3-270m).

The threshold (16) lies between the two families measured (3 and 90), on development data
(benchmarks/kv/dev, rounds 4–8): a model in between is untested. The choice is made when the press
meets the model (``with press(model)``); :attr:`chosen` is the recipe in use, its repr the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from kvpress import BasePress, ScorerPress
from torch import nn

from rcstat.errors import RCStatError
from rcstat.models.logits import attention_layers, is_sliding
from rcstat.options import Scope, check_number
from rcstat.presses.cross_layer_press import CrossLayerPress
from rcstat.presses.fill_press import FillPress
from rcstat.presses.rcstat_press import RCStatPress

MIN_KV_HEADS = 16  # compressed KV heads in all from which RC ranks across the model (fewer: FillPress)


def compressed_kv_heads(model: nn.Module) -> int:
    """The KV heads of the layers a press compresses: every global (not sliding-window) layer's."""
    return sum(la.num_kv_heads for la in attention_layers(model) if not is_sliding(la.module))


def recipe(
    kv_heads: int,
    compression_ratio: float,
    min_kv_heads: int = MIN_KV_HEADS,
    scorer: type[RCStatPress] = RCStatPress,
    **options,
) -> BasePress:
    """The RC press for a model whose compressed layers hold ``kv_heads`` KV heads in all;
    ``options`` go to its RC ``scorer`` (:class:`RCStatPress` or a subclass)."""
    if kv_heads >= min_kv_heads:
        return CrossLayerPress(scorer(**options), compression_ratio)
    return FillPress(compression_ratio, press=scorer(**{**options, "above_null": True}))


@dataclass
class AutoRCPress(BasePress):
    """RC across the model where it has many KV heads, :class:`FillPress` where it has few; the
    repr is the rule, :attr:`chosen` the recipe once the press has met the model."""

    compression_ratio: float = 0.0
    min_kv_heads: int = MIN_KV_HEADS
    scorer_options: dict = field(default_factory=dict)
    chosen: BasePress | None = field(default=None, init=False, repr=False)
    scorer = RCStatPress  # the RC scorer the recipe is built on (a class attribute, not a field)

    def __post_init__(self) -> None:
        check_number("compression_ratio", self.compression_ratio, low=0, high=1, high_open=True)
        check_number("min_kv_heads", self.min_kv_heads, low=1, integer=True)
        RCStatPress(**self.scorer_options)  # checks the options now, not when the model arrives

    def post_init_from_model(self, model: nn.Module) -> None:
        kv_heads = compressed_kv_heads(model)
        self.chosen = recipe(
            kv_heads, self.compression_ratio, self.min_kv_heads, self.scorer, **self.scorer_options
        )
        self.chosen.post_init_from_model(model)

    @property
    def pending(self) -> bool:
        """The chosen recipe waits for the last layer (as :class:`CrossLayerPress` does)."""
        return bool(getattr(self.chosen, "pending", False))

    def compress(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.chosen is None:
            raise RCStatError("AutoRCPress needs the model: use it as `with press(model): …`")
        if is_sliding(module):  # a sliding window bounds its layer already (as CrossLayerPress)
            return keys, values
        self.chosen.compression_ratio = self.compression_ratio
        return self.chosen.compress(module, hidden_states, keys, values, attentions, kwargs)


@dataclass
class AutoRCScorer(ScorerPress):
    """The default RC press's scorer while generating: once it has met the model, :attr:`chosen` is
    RC (:attr:`scope` ``"model"``: one ranking across every layer and head) where the compressed
    layers hold at least ``min_kv_heads`` KV heads, :class:`FillPress` (``"head"``) where they hold
    fewer. Its ``compression_ratio`` is the share a compression evicts (FillPress's cap reads it)."""

    compression_ratio: float = 0.0
    min_kv_heads: int = MIN_KV_HEADS
    scorer_options: dict = field(default_factory=dict)
    chosen: ScorerPress | None = field(default=None, init=False, repr=False)
    scope: Scope | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_number("min_kv_heads", self.min_kv_heads, low=1, integer=True)
        RCStatPress(**self.scorer_options)

    def post_init_from_model(self, model: nn.Module) -> None:
        """The prefill's :func:`recipe` for this model, as a scorer and the scope it shares a budget by."""
        press = recipe(compressed_kv_heads(model), 0.0, self.min_kv_heads, **self.scorer_options)
        across = isinstance(press, CrossLayerPress)
        self.chosen, self.scope = (press.press, "model") if across else (press, "head")
        self.chosen.post_init_from_model(model)

    def score(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> torch.Tensor:
        """The chosen scorer's ``(batch, kv_heads, keys)`` scores."""
        if self.chosen is None:
            raise RCStatError("AutoRCScorer needs the model: call post_init_from_model(model) first")
        self.chosen.compression_ratio = self.compression_ratio
        return self.chosen.score(module, hidden_states, keys, values, attentions, kwargs)
