"""Presses by name: what ``rcstat compress --press``, ``rcstat bench kv`` and the demo build.

Each entry is a :class:`PressSpec`: how to build the press at a compression ratio and, where the
press is a scorer, how to build that scorer alone so that it can be thresholded
(:class:`~rcstat.presses.threshold_press.ThresholdPress`) the same way as RC. ``none`` is the
full cache. The registry imports kvpress only when a press is built, so the command line can
list it in its help at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rcstat.errors import RCStatError
from rcstat.options import check_number

FULL_CACHE = "none"
DEFAULT_RATIO = 0.5  # what `rcstat compress`, `rcstat bench kv` and the demo evict unless told


def _kvpress(name: str) -> Callable[..., Any]:
    import kvpress

    return getattr(kvpress, name)


def _rc(**options) -> Callable[[float], Any]:
    def make(ratio: float):
        from rcstat.presses.factory import rc_press

        return rc_press(ratio, **options)

    return make


def _rc_scorer(ratio: float = 0.0):
    from rcstat.presses.rcstat_press import RCStatPress

    return RCStatPress(compression_ratio=ratio)


def _scorer(name: str, **options) -> Callable[[float], Any]:
    """kvpress's scorer ``name`` at a ratio (``options``: its other settings)."""
    return lambda ratio=0.0: _kvpress(name)(compression_ratio=ratio, **options)


@dataclass(frozen=True)
class PressSpec:
    """How to build one named press: ``make(ratio)``; ``scorer()`` where it can be thresholded."""

    make: Callable[[float], Any]
    summary: str
    scorer: Callable[[], Any] | None = None

    @property
    def options(self) -> tuple[str, ...]:
        """The budget options this press takes."""
        return ("compression_ratio", "threshold") if self.scorer else ("compression_ratio",)


PRESSES: dict[str, PressSpec] = {
    "rcstat": PressSpec(_rc(), "RC, ranked across the heads of each layer (AdaKV)", _rc_scorer),
    "rcstat-layer": PressSpec(_rc(), "RC, ranked across the heads of each layer (AdaKV)", _rc_scorer),
    "rcstat-cross-layer": PressSpec(
        _rc(layer_adaptive=True), "RC, one threshold ranked across every layer and head", _rc_scorer
    ),
    "rcstat-uniform": PressSpec(_rc_scorer, "RC, the same budget for every head", _rc_scorer),
    "snapkv": PressSpec(_scorer("SnapKVPress"), "SnapKV", _scorer("SnapKVPress")),
    "adakv": PressSpec(
        lambda r: _kvpress("AdaKVPress")(_scorer("SnapKVPress")(r)),
        "AdaKV over SnapKV",
        _scorer("SnapKVPress"),
    ),
    "pyramidkv": PressSpec(_scorer("PyramidKVPress"), "PyramidKV (SnapKV, budgets shrinking with depth)"),
    "streaming_llm": PressSpec(_scorer("StreamingLLMPress"), "StreamingLLM", _scorer("StreamingLLMPress")),
    "observed_attention": PressSpec(_scorer("ObservedAttentionPress"), "H2O (observed attention)"),
    "tova": PressSpec(_scorer("TOVAPress"), "TOVA", _scorer("TOVAPress")),
    "knorm": PressSpec(_scorer("KnormPress"), "key norm", _scorer("KnormPress")),
    "expected_attention": PressSpec(
        _scorer("ExpectedAttentionPress"), "expected attention", _scorer("ExpectedAttentionPress")
    ),
    "random": PressSpec(_scorer("RandomPress", seed=0), "random"),
}


def press_names() -> tuple[str, ...]:
    """Every name :func:`make_press` takes, the full cache first."""
    return (FULL_CACHE, *PRESSES)


def parse_presses(names: Iterable[str]) -> list[str]:
    """Names checked against the registry (blank entries dropped); at least one."""
    chosen = [n.strip() for n in names if n.strip()]
    unknown = [n for n in chosen if n not in PRESSES and n != FULL_CACHE]
    if unknown or not chosen:
        raise RCStatError(
            f"unknown press {', '.join(unknown) or '(none given)'}; choose from {', '.join(press_names())}",
            option="press",
        )
    return chosen


def make_press(name: str, compression_ratio: float = DEFAULT_RATIO, threshold: float | None = None):
    """The press ``name`` at a ratio, or thresholded at τ (``None`` for the full cache)."""
    (name,) = parse_presses([name])
    if name == FULL_CACHE:
        return None
    spec = PRESSES[name]
    if threshold is None:
        check_number("compression_ratio", compression_ratio, low=0, high=1, high_open=True)
        return spec.make(compression_ratio)
    if spec.scorer is None:
        raise RCStatError(
            f"press {name} has no score to threshold; give it a compression ratio", option="threshold"
        )
    from rcstat.presses.threshold_press import ThresholdPress

    return ThresholdPress(spec.scorer(), threshold)
