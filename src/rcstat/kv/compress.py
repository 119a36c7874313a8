"""Answer a query from a compressed cache and account for what compression did (``rcstat compress``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from kvpress import BasePress, ObservedAttentionPress
from transformers import DynamicCache

from rcstat.errors import RCStatError, warn
from rcstat.kv.decode import greedy_answers
from rcstat.kv.kept import KeptTokens, masked_kept, protected, ragged_kept
from rcstat.kv.memory import cache_bytes
from rcstat.kv.ragged import RaggedCache, RaggedPress, ragged_attention
from rcstat.kv.replay import compress_live, record_prefill, replay
from rcstat.models.loading import model_limit
from rcstat.options import CacheKind, check_choice


@dataclass
class CompressionReport:
    """The answer, what was kept (overall, per layer and per token), bytes before and after, phase
    times; the full cache's answer where asked for, and the layers the ratio emptied."""

    press: str
    cache: CacheKind
    answer: str
    context_tokens: int
    kept_fraction: float
    kept_per_layer: list[float]
    bytes_full: int
    bytes_held: int
    seconds: dict[str, float]
    query_aware: bool = False
    full_answer: str | None = None
    kept_tokens: KeptTokens | None = None
    emptied_layers: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "press": self.press,
            "cache": self.cache,
            "answer": self.answer,
            "full_cache_answer": self.full_answer,
            "query_aware": self.query_aware,
            "context_tokens": self.context_tokens,
            "realised_ratio": 1 - self.kept_fraction,
            "realised_ratio_per_layer": [1 - k for k in self.kept_per_layer],
            "emptied_layers": self.emptied_layers,
            "kv_bytes_full": self.bytes_full,
            "kv_bytes_held": self.bytes_held,
            "seconds": self.seconds,
            "kept_tokens": self.kept_tokens.to_dict() if self.kept_tokens else None,
        }


@dataclass
class _Run:
    """What one way of compressing gives back."""

    answer: str
    kept: list[float]
    full_bytes: int
    held_bytes: int
    seconds: dict[str, float]
    heads: list[list[int] | None]
    sliding: list[bool]
    full_answer: str | None = None


# Presses the ragged cache cannot hold (it compresses inside the prefill, layer by layer), and why:
# each runs into kvpress's masked cache instead, with a warning.
_MASKED_ONLY: tuple[tuple[Callable[[BasePress, bool], bool], str], ...] = (
    (
        lambda press, live: hasattr(press, "prepare_replay"),
        "reads a pass of its own after the prefill: it is replayed on the recorded prefill into kvpress's "
        "masked cache",
    ),
    (
        lambda press, live: isinstance(press, ObservedAttentionPress),
        "reads the attention weights, which the model's fast attention does not return: it is replayed on "
        "the recorded prefill (weights recomputed one layer at a time) into kvpress's masked cache",
    ),
)


def _not_ragged(press: BasePress | None, live: bool) -> str | None:
    """Why ``press`` cannot run on the ragged cache (``None``: it can)."""
    return next((why for applies, why in _MASKED_ONLY if press is not None and applies(press, live)), None)


def compress_and_answer(
    model,
    tokenizer,
    context: str,
    query: str,
    press: BasePress | None,
    max_new_tokens: int = 64,
    query_aware: bool = False,
    cache: CacheKind = "ragged",
    on_phase: Callable[[str], None] | None = None,
    full_answer: bool = False,
) -> CompressionReport:
    """Prefill the context, compress it with ``press`` (``None``: keep all), answer greedily.

    ``cache="ragged"`` compresses inside the prefill into a :class:`RaggedCache` (only kept entries
    are held); ``"masked"`` replays the press on a recorded prefill and keeps kvpress's masked cache.
    ``full_answer``: also answer from the uncompressed cache (one more decode; ragged: and one more
    prefill). ``on_phase(name)`` is called as each phase starts (masked: ``prefill``, ``compress``,
    ``decode``; ragged: ``prefill and compress``, ``decode``; then ``full cache``). Layers left with
    nothing outside the press's sinks and window are warned about, once, and reported.
    """
    from transformers import pipeline

    check_choice("cache", cache, CacheKind)
    if not query.strip():
        raise RCStatError("the query is empty", option="query")
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    text, question = (context + "\n" + query, "") if query_aware else (context, query)
    inputs = pipe.preprocess(text, [question], answer_prefix="", max_context_length=10**9)
    context_ids, question_ids = inputs["context_ids"], inputs["questions_ids"][0]
    limit = model_limit(model)
    total = context_ids.shape[1] + question_ids.shape[1] + max_new_tokens
    if limit and total > limit:
        raise RCStatError(f"context and query need {total} tokens with the answer; the model allows {limit}")
    live = press is not None and type(press).compress is BasePress.compress  # its own passes (KVzip)
    reason = _not_ragged(press, live) if cache == "ragged" else None
    if reason:
        warn(f"{type(press).__name__} {reason}")
        cache = "masked"
    run = partial(_live, ragged=cache == "ragged") if live else _ragged if cache == "ragged" else _masked
    try:
        done = run(
            model, pipe, context_ids, question_ids, press, max_new_tokens, on_phase or _quiet, full_answer
        )
    except AssertionError as err:  # kvpress checks its preconditions with assert
        raise RCStatError(f"{type(press).__name__} refused the context: {err}") from err
    tokens = [tokenizer.decode([int(i)]) for i in context_ids[0]]
    kept_tokens = KeptTokens(tokens, _kv_heads(model), done.heads, done.sliding)
    emptied = kept_tokens.emptied(*protected(press)) if press is not None else []
    if emptied:
        warn(
            f"{len(emptied)} of {len(done.kept)} layers keep nothing but the press's sinks and window "
            f"(layers {', '.join(map(str, emptied))}): a lower ratio keeps some of the context in each"
        )
    return CompressionReport(
        press=repr(press),
        cache=cache,
        answer=done.answer.strip(),
        context_tokens=int(context_ids.shape[1]),
        kept_fraction=sum(done.kept) / len(done.kept),
        kept_per_layer=done.kept,
        bytes_full=done.full_bytes,
        bytes_held=done.held_bytes,
        seconds=done.seconds,
        query_aware=query_aware,
        full_answer=None if done.full_answer is None else done.full_answer.strip(),
        kept_tokens=kept_tokens,
        emptied_layers=emptied,
    )


def _quiet(name: str) -> None:
    pass


def _kv_heads(model) -> int:
    config = model.config
    return getattr(config, "num_key_value_heads", None) or config.num_attention_heads


def _timed(seconds: dict[str, float], name: str, phase: Callable[[str], None], fn: Callable):
    """``fn()``, announced as phase ``name`` and its seconds recorded under that name."""
    phase(name)
    start = time.perf_counter()
    result = fn()
    seconds[name] = time.perf_counter() - start
    return result


def _masked(model, pipe, context_ids, question_ids, press, max_new_tokens, phase, full) -> _Run:
    tokenizer, seconds = pipe.tokenizer, {}
    record = _timed(seconds, "prefill", phase, lambda: record_prefill(model, context_ids))
    compressed = _timed(seconds, "compress", phase, lambda: replay(record, press))
    (answer,) = _timed(
        seconds,
        "decode",
        phase,
        lambda: greedy_answers(model, tokenizer, question_ids, [compressed], max_new_tokens),
    )
    heads, sliding = masked_kept(compressed, [layer.keys for layer in record.layers])
    full_answer = None
    if full:
        (full_answer,) = _timed(
            seconds,
            "full cache",
            phase,
            lambda: greedy_answers(model, tokenizer, question_ids, [replay(record, None)], max_new_tokens),
        )
    kept = compressed.kept_per_layer()
    return _Run(answer, kept, record.held_bytes, compressed.held_bytes, seconds, heads, sliding, full_answer)


def _live(
    model, pipe, context_ids, question_ids, press, max_new_tokens, phase, full, ragged: bool = True
) -> _Run:
    """A press that runs in the forward pass (nothing to replay on a record, such as KVzip): its
    masked cache, then (``ragged``) only the entries it kept, copied into a :class:`RaggedCache` (the
    press's own tensors, KVzip's repeat behind its views, freed)."""
    seconds: dict[str, float] = {}
    n = context_ids.shape[1]

    def compress() -> tuple:
        compressed = compress_live(model, context_ids, press)
        cache = RaggedCache.from_cache(compressed.cache, compressed.masks, length=n) if ragged else None
        return compressed, cache

    compressed, cache = _timed(seconds, "prefill and compress", phase, compress)
    layers = compressed.cache.layers
    full_bytes = sum(
        (la.keys.nbytes + la.values.nbytes) * length // la.keys.shape[-2]
        for la, length in zip(layers, compressed.layer_lengths, strict=True)
    )
    heads, sliding = masked_kept(compressed)
    kept = compressed.kept_per_layer()
    if cache is None:
        held = compressed.held_bytes
        (answer,) = _timed(
            seconds,
            "decode",
            phase,
            lambda: greedy_answers(model, pipe.tokenizer, question_ids, [compressed], max_new_tokens),
        )
    else:
        del compressed, layers  # the press's tensors go; the ragged cache holds copies of the kept entries
        held = cache_bytes(cache)

        def decode() -> str:
            with ragged_attention(model):
                return pipe.generate_answer(question_ids, cache, n, max_new_tokens)

        answer = _timed(seconds, "decode", phase, decode)
    full_answer = (
        _full(model, pipe, context_ids, question_ids, max_new_tokens, phase, seconds) if full else None
    )
    return _Run(answer, kept, full_bytes, held, seconds, heads, sliding, full_answer)


def _ragged(model, pipe, context_ids, question_ids, press, max_new_tokens, phase, full) -> _Run:
    cache = RaggedCache(model.config)
    wrapped = RaggedPress(press) if press is not None else None
    phase("prefill and compress")
    start = time.perf_counter()
    with wrapped(model) if wrapped else contextlib.nullcontext(), torch.no_grad():
        model.get_decoder()(input_ids=context_ids, past_key_values=cache)
    spent = wrapped.seconds if wrapped else 0.0
    seconds = {"prefill": time.perf_counter() - start - spent, "compress": spent}
    n = context_ids.shape[1]
    kept = [layer.kept_share() for layer in cache.layers]
    held = cache_bytes(cache)
    full_bytes = sum(_dense_bytes(layer, n) for layer in cache.layers)
    heads, sliding = ragged_kept(cache, n)

    def decode() -> str:
        with ragged_attention(model):
            return pipe.generate_answer(question_ids, cache, n, max_new_tokens)

    answer = _timed(seconds, "decode", phase, decode)
    full_answer = (
        _full(model, pipe, context_ids, question_ids, max_new_tokens, phase, seconds) if full else None
    )
    return _Run(answer, kept, full_bytes, held, seconds, heads, sliding, full_answer)


def _full(model, pipe, context_ids, question_ids, max_new_tokens, phase, seconds) -> str:
    """The answer from the uncompressed cache: one more prefill and decode, timed as ``full cache``."""

    def answer() -> str:
        cache = DynamicCache(config=model.config)
        with torch.no_grad():
            model.get_decoder()(input_ids=context_ids, past_key_values=cache)
        return pipe.generate_answer(question_ids, cache, context_ids.shape[1], max_new_tokens)

    return _timed(seconds, "full cache", phase, answer)


def _dense_bytes(layer, length: int) -> int:
    """Bytes of a full cache layer of ``length`` positions (keys and values)."""
    if not layer.ragged:
        return layer.keys.nbytes + layer.values.nbytes
    first_k, first_v = layer.k[0][0], layer.v[0][0]
    heads = len(layer.k) * len(layer.k[0])
    return heads * length * (first_k.shape[-1] + first_v.shape[-1]) * first_k.element_size()
