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
from rcstat.options import Scope, check_number

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


def _gaussian(ratio: float):
    from rcstat.presses.cross_layer_press import CrossLayerPress
    from rcstat.presses.gaussian_press import GaussianRCPress

    return CrossLayerPress(GaussianRCPress(), ratio)


def _fill(ratio: float):
    from kvpress import KeyDiffPress

    from rcstat.presses.cross_layer_press import CrossLayerPress
    from rcstat.presses.rcstat_press import RCStatPress

    return CrossLayerPress(RCStatPress(above_null=True), ratio, also=KeyDiffPress())


def _head_fill(ratio: float):
    from rcstat.presses.fill_press import FillPress

    return FillPress(ratio)


def _probe(ratio: float):
    from rcstat.presses.probe_press import ProbePress

    return ProbePress(ratio)


def _rczip(ratio: float):
    from rcstat.presses.rczip_press import RCZipPress

    return RCZipPress(compression_ratio=ratio)


def _scorer(name: str, **options) -> Callable[[float], Any]:
    """kvpress's scorer ``name`` at a ratio (``options``: its other settings)."""
    return lambda ratio=0.0: _kvpress(name)(compression_ratio=ratio, **options)


def _over(wrapper: str, scorer: str) -> Callable[[float], Any]:
    """kvpress's ``wrapper`` over its scorer ``scorer`` at a ratio (``AdaKVPress(SnapKVPress(r))``)."""
    return lambda ratio: _kvpress(wrapper)(_scorer(scorer)(ratio))


@dataclass(frozen=True)
class PressSpec:
    """How to build one named press: ``make(ratio)``; ``scorer()`` where it can be thresholded;
    ``live`` when its work is not in ``compress`` (it runs its own passes, as KVzip does), so that a
    benchmark runs it in the forward pass instead of replaying it on a recorded prefill."""

    make: Callable[[float], Any]
    summary: str
    scorer: Callable[[], Any] | None = None
    live: bool = False
    scope: Scope | None = None  # how its scorer shares a budget while generating; None: it cannot

    @property
    def options(self) -> tuple[str, ...]:
        """The budget options this press takes."""
        return ("compression_ratio", "threshold") if self.scorer else ("compression_ratio",)


PRESSES: dict[str, PressSpec] = {
    "rcstat": PressSpec(
        _rc(),
        "RC, its recipe read from the model: ranked across every layer and head where the compressed "
        "layers hold many KV heads, rcstat-head-fill where they hold few (while generating: RC across "
        "the model on every model, measured ahead of the rule on Gemma 3)",
        _rc_scorer,
        scope="model",
    ),
    "rcstat-cross-layer": PressSpec(
        _rc(layer_adaptive=True),
        "RC, one threshold ranked across every layer and head",
        _rc_scorer,
        scope="model",
    ),
    "rcstat-layer": PressSpec(
        _rc(layer_adaptive=False),
        "RC, ranked across the heads of each layer (AdaKV)",
        _rc_scorer,
        scope="layer",
    ),
    "rcstat-uniform": PressSpec(_rc_scorer, "RC, the same budget for every head", _rc_scorer, scope="head"),
    "rcstat-probe": PressSpec(
        _probe,
        "rcstat with a probe pass: a fixed, task-blind question read after the prefill, each key "
        "scored by the larger of its RC against the window and the probe's ranking on the window's "
        "scale (about 1.06 prefills of work)",
    ),
    "rcstat-gauss": PressSpec(_gaussian, "RC against Gaussian future queries, ranked across layers"),
    "rcstat-fill": PressSpec(
        _fill, "RC where it rises above its head's null level, KeyDiff's key diversity for the rest"
    ),
    "rcstat-head-fill": PressSpec(
        _head_fill,
        "the same within each head, every head keeping the same share, RC's signal capped at half of it",
    ),
    "snapkv": PressSpec(_scorer("SnapKVPress"), "SnapKV", _scorer("SnapKVPress")),
    "adakv": PressSpec(_over("AdaKVPress", "SnapKVPress"), "AdaKV over SnapKV", _scorer("SnapKVPress")),
    "critical_adakv": PressSpec(
        _over("CriticalAdaKVPress", "SnapKVPress"), "CriticalAdaKV over SnapKV", _scorer("SnapKVPress")
    ),
    "chunkkv": PressSpec(_over("ChunkKVPress", "SnapKVPress"), "ChunkKV over SnapKV", _scorer("SnapKVPress")),
    "pyramidkv": PressSpec(_scorer("PyramidKVPress"), "PyramidKV (SnapKV, budgets shrinking with depth)"),
    "streaming_llm": PressSpec(
        _scorer("StreamingLLMPress"), "StreamingLLM", _scorer("StreamingLLMPress"), scope="head"
    ),
    "observed_attention": PressSpec(_scorer("ObservedAttentionPress"), "H2O (observed attention)"),
    "tova": PressSpec(_scorer("TOVAPress"), "TOVA", _scorer("TOVAPress"), scope="head"),
    "knorm": PressSpec(_scorer("KnormPress"), "key norm", _scorer("KnormPress"), scope="head"),
    "expected_attention": PressSpec(
        _scorer("ExpectedAttentionPress"),
        "expected attention",
        _scorer("ExpectedAttentionPress"),
        scope="head",
    ),
    "keydiff": PressSpec(
        _scorer("KeyDiffPress"), "KeyDiff (key diversity)", _scorer("KeyDiffPress"), scope="head"
    ),
    "lagkv": PressSpec(_scorer("LagKVPress"), "LagKV (lag-relative statistics)", _scorer("LagKVPress")),
    "compactor": PressSpec(
        _scorer("CompactorPress"), "Compactor (leverage + attention)", _scorer("CompactorPress")
    ),
    "kvzip": PressSpec(
        _scorer("KVzipPress"), "KVzip: context reconstruction, 2–3 prefills of work", live=True
    ),
    "kvzip+": PressSpec(
        _scorer("KVzipPress", kvzip_plus_normalization=True),
        "KVzip+ (normalised by ‖h‖ and ‖W_O v‖)",
        live=True,
    ),
    "rcstat-zip": PressSpec(_rczip, "RC over KVzip's reconstruction pass, ranked across layers", live=True),
    "random": PressSpec(_scorer("RandomPress", seed=0), "random"),
    # kvpress 0.5.5. The scorers below read the prefill whole (Leverage and NonCausalAttn assert it;
    # CUR's local windows and sinks, CAP's averaged future RoPE are positions of the prefill), so none
    # reruns while generating.
    "cur": PressSpec(
        _scorer("CURPress"), "CurDKV (key × value norms, locally normalised)", _scorer("CURPress")
    ),
    "leverage": PressSpec(
        _scorer("LeverageScorePress"),
        "leverage scores of the pre-RoPE keys (Compactor's first half)",
        _scorer("LeverageScorePress"),
    ),
    "non_causal_attention": PressSpec(
        _scorer("NonCausalAttnPress"),
        "non-causal chunked attention × ‖v‖ (Compactor's second half)",
        _scorer("NonCausalAttnPress"),
    ),
    "cap": PressSpec(_scorer("CapPress"), "CAPKV (query-anchored value capacity)", _scorer("CapPress")),
    "entropy_gated_chunkkv": PressSpec(
        _over("EntropyGatedChunkKVPress", "SnapKVPress"),
        "ChunkKV over SnapKV, spiky chunks cut to their best tokens",
        _scorer("SnapKVPress"),
    ),
    "merging": PressSpec(
        _over("MergingPress", "SnapKVPress"),
        "SnapKV, evicted values merged into their nearest kept key",
        _scorer("SnapKVPress"),
    ),
    "kvcompose": PressSpec(
        _scorer("KVComposePress"),
        "KVCompose: attention from a repeat of the context, one length per layer; 2 prefills of work",
        live=True,
    ),
    "kvgrad": PressSpec(
        _scorer("KVgradPress"),
        "KVgrad: KVzip's reconstruction × gradient attribution, 3–4 prefills of work",
        live=True,
    ),
}
# Left out, and why (the README lists them too): they need what an offline machine cannot fetch, or
# they do nothing at the prefill, or a compression ratio does not set what they keep.
UNAVAILABLE = {
    "duo_attention": "its head patterns are downloaded from GitHub, or computed on the fly from the BookSum "
    "dataset on the Hugging Face hub",
    "kvzap": "its scoring model's weights come from the Hugging Face hub",
    "qfilter": "its Q-Filters come from the Hugging Face hub",
    "expected_attention_stats": "its query statistics come from the Hugging Face hub",
    "cam": "it merges values while generating (a kvpress DecodingPress): nothing happens at the prefill",
    "fastkvzip": "its gates' weights come from the Hugging Face hub",
    "restorekv": "its restore embeddings and LoRA adapters come from the Hugging Face hub",
    "lukv": "its per-head budget curve is downloaded from GitHub, and exists for Llama-3.1-8B only",
    "finch": "it needs a delimiter token before the question, which it adds to the tokenizer and the "
    "model's embeddings; without a question (query-agnostic) it has no window",
    "simlayerkv": "it takes no compression ratio: a threshold decides which layers keep only sinks and "
    "the last 1024 tokens, so a context under 1029 tokens is not compressed",
    "think": "it prunes key channels, not tokens: the cache holds the same entries (zeroed channels)",
    "dms": "it takes a threshold, not a ratio, and works in its forward hook; thresholds of every "
    "scorer run as ThresholdPress (`--threshold`)",
}


def press_names() -> tuple[str, ...]:
    """Every name :func:`make_press` takes, the full cache first."""
    return (FULL_CACHE, *PRESSES)


def parse_presses(names: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Names checked against the registry (and ``extra`` names a caller adds); at least one."""
    chosen = [n.strip() for n in names if n.strip()]
    known = {*PRESSES, FULL_CACHE, *extra}
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        why = "; ".join(f"{n}: not offered here ({UNAVAILABLE[n]})" for n in unknown if n in UNAVAILABLE)
        named = ", ".join(_suggest(n, known) for n in unknown)
        raise RCStatError(
            f"unknown press {named or '(none given)'}; choose from "
            f"{', '.join([*press_names(), *extra])}" + (f" ({why})" if why else ""),
            option="press",
        )
    return chosen


def _suggest(name: str, known: Iterable[str]) -> str:
    """``name``, with the known name closest to it (ignoring case) as a "did you mean"."""
    import difflib

    lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), lower, n=1)
    return f"{name} (did you mean {lower[close[0]]}?)" if close else name


def decoding_names() -> tuple[str, ...]:
    """The presses that compress while generating (their scorers), the full cache first."""
    return (FULL_CACHE, *(name for name, spec in PRESSES.items() if spec.scope))


def make_decoding(name: str | Any, budget, interval: int | None = None):
    """The :class:`~rcstat.kv.generation.DecodingCompression` of press ``name`` at ``budget``
    (``None`` for the full cache); every ``interval`` generated tokens (its default when ``None``).
    ``name`` may be a kvpress scorer press itself (its budget shared per head)."""
    from rcstat.kv.generation import DecodingCompression

    extra = {"interval": interval} if interval is not None else {}
    if not isinstance(name, str):
        return DecodingCompression(name, budget, **extra)
    (name,) = parse_presses([name])
    if name == FULL_CACHE:
        return None
    spec = PRESSES[name]
    if spec.scope is None:
        raise RCStatError(
            f"press {name} cannot compress while generating (it has no scorer to rerun); choose from "
            f"{', '.join(decoding_names())}",
            option="press",
        )
    return DecodingCompression(spec.scorer(), budget, spec.scope, **extra)


def make_press(name: str | Any, compression_ratio: float = DEFAULT_RATIO, threshold: float | None = None):
    """The press ``name`` at a ratio, or thresholded at τ (``None`` for the full cache). ``name`` may
    be a press itself: returned as it is (its own ratio), or its scorer thresholded at τ."""
    if not isinstance(name, str):
        return name if threshold is None else _threshold(name, threshold)
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
    return _threshold(spec.scorer(), threshold)


def _threshold(scorer, threshold: float):
    from rcstat.presses.threshold_press import ThresholdPress

    return ThresholdPress(scorer, threshold)
