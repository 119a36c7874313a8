"""``rc_press``: the RC press a user asks for by its budget, composed from kvpress's parts."""

from __future__ import annotations

from kvpress import AdaKVPress, BasePress

from rcstat.errors import RCStatError
from rcstat.options import check_number
from rcstat.presses.auto_press import AutoRCPress
from rcstat.presses.cross_layer_press import CrossLayerPress
from rcstat.presses.rcstat_press import RCStatPress
from rcstat.presses.threshold_press import ThresholdPress

HEAD_FLOOR = 0.2  # AdaKV's alpha_safeguard: the share of a head's even budget it always keeps


def rc_press(
    compression_ratio: float = 0.0,
    *,
    threshold: float | None = None,
    layer_adaptive: bool | None = None,
    head_adaptive: bool = True,
    head_floor: float = HEAD_FLOOR,
    **scorer_options,
) -> BasePress:
    """The RC press for a budget. A ratio: by default the recipe the model's structure calls for
    (:class:`AutoRCPress`: RC ranked across every layer and head on a model whose compressed layers
    hold many KV heads, :class:`FillPress` on one with few; chosen on development data,
    docs/method.md §3); ranked across every layer and head on any model (``layer_adaptive=True``:
    :class:`CrossLayerPress`); across the heads of each layer (``layer_adaptive=False``:
    ``AdaKVPress`` with a ``head_floor``) or per head (``layer_adaptive=False, head_adaptive=False``:
    the bare scorer). Or a ``threshold`` τ for every layer and head.

    ``scorer_options`` go to :class:`RCStatPress` (``estimator``, ``window_size``, ``sink_tokens``,
    ``gqa_reduce``, ``pooling``).
    """
    if threshold is not None:
        if compression_ratio:
            raise RCStatError("give a compression ratio or a threshold, not both", option="threshold")
        return ThresholdPress(RCStatPress(**scorer_options), threshold)
    if layer_adaptive is None:
        return AutoRCPress(compression_ratio, scorer_options=scorer_options)
    if layer_adaptive:
        return CrossLayerPress(RCStatPress(**scorer_options), compression_ratio)
    scorer = RCStatPress(compression_ratio=compression_ratio, **scorer_options)
    if not head_adaptive:
        return scorer
    check_number("head_floor", head_floor, low=0, high=1)
    return AdaKVPress(scorer, alpha_safeguard=head_floor)
