"""Answer a query from a compressed cache and account for what compression did (``rcstat compress``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from kvpress import BasePress

from rcstat.errors import RCStatError, warn
from rcstat.kv.decode import greedy_answers
from rcstat.kv.memory import cache_bytes
from rcstat.kv.ragged import RaggedCache, RaggedPress, ragged_attention
from rcstat.kv.replay import compress_live, record_prefill, replay
from rcstat.options import CacheKind, check_choice


@dataclass
class CompressionReport:
    """The answer, what was kept (overall and per layer), bytes before and after, and phase times."""

    press: str
    cache: CacheKind
    answer: str
    context_tokens: int
    kept_fraction: float
    kept_per_layer: list[float]
    bytes_full: int
    bytes_held: int
    seconds: dict[str, float]

    def to_dict(self) -> dict:
        return {
            "press": self.press,
            "cache": self.cache,
            "answer": self.answer,
            "context_tokens": self.context_tokens,
            "realised_ratio": 1 - self.kept_fraction,
            "realised_ratio_per_layer": [1 - k for k in self.kept_per_layer],
            "kv_bytes_full": self.bytes_full,
            "kv_bytes_held": self.bytes_held,
            "seconds": self.seconds,
        }


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
) -> CompressionReport:
    """Prefill the context, compress it with ``press`` (``None``: keep all), answer greedily.

    ``cache="ragged"`` compresses inside the prefill into a :class:`RaggedCache` (only kept entries
    are held); ``"masked"`` replays the press on a recorded prefill and keeps kvpress's masked cache.
    ``on_phase(name)`` is called as each phase starts (masked: ``prefill``, ``compress``,
    ``decode``; ragged: ``prefill and compress``, ``decode``).
    """
    from transformers import pipeline

    check_choice("cache", cache, CacheKind)
    if not query.strip():
        raise RCStatError("the query is empty", option="query")
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    text, question = (context + "\n" + query, "") if query_aware else (context, query)
    inputs = pipe.preprocess(text, [question], answer_prefix="", max_context_length=10**9)
    context_ids, question_ids = inputs["context_ids"], inputs["questions_ids"][0]
    limit = getattr(model.config, "max_position_embeddings", None)
    total = context_ids.shape[1] + question_ids.shape[1] + max_new_tokens
    if limit and total > limit:
        raise RCStatError(f"context and query need {total} tokens with the answer; the model allows {limit}")
    live = press is not None and type(press).compress is BasePress.compress  # its own passes (KVzip)
    if live and cache == "ragged":
        warn(
            f"{type(press).__name__} runs its own passes in the forward pass: "
            "its cache is kvpress's masked one"
        )
        cache = "masked"
    run = _live if live else _ragged if cache == "ragged" else _masked
    try:
        answer, kept, full_bytes, held_bytes, seconds = run(
            model, tokenizer, pipe, context_ids, question_ids, press, max_new_tokens, on_phase or _quiet
        )
    except AssertionError as err:  # kvpress checks its preconditions with assert
        raise RCStatError(f"{type(press).__name__} refused the context: {err}") from err
    return CompressionReport(
        press=repr(press),
        cache=cache,
        answer=answer.strip(),
        context_tokens=int(context_ids.shape[1]),
        kept_fraction=sum(kept) / len(kept),
        kept_per_layer=kept,
        bytes_full=full_bytes,
        bytes_held=held_bytes,
        seconds=seconds,
    )


def _quiet(name: str) -> None:
    pass


def _masked(model, tokenizer, pipe, context_ids, question_ids, press, max_new_tokens, phase):
    seconds = {}
    phase("prefill")
    start = time.perf_counter()
    record = record_prefill(model, context_ids)
    seconds["prefill"] = time.perf_counter() - start
    phase("compress")
    start = time.perf_counter()
    compressed = replay(record, press)
    seconds["compress"] = time.perf_counter() - start
    phase("decode")
    start = time.perf_counter()
    (answer,) = greedy_answers(model, tokenizer, question_ids, [compressed], max_new_tokens)
    seconds["decode"] = time.perf_counter() - start
    return answer, compressed.kept_per_layer(), record.held_bytes, compressed.held_bytes, seconds


def _live(model, tokenizer, pipe, context_ids, question_ids, press, max_new_tokens, phase):
    """A press that runs in the forward pass (nothing to replay on a record): kvpress's masked cache."""
    phase("prefill and compress")
    start = time.perf_counter()
    compressed = compress_live(model, context_ids, press)
    seconds = {"prefill and compress": time.perf_counter() - start}
    phase("decode")
    start = time.perf_counter()
    (answer,) = greedy_answers(model, tokenizer, question_ids, [compressed], max_new_tokens)
    seconds["decode"] = time.perf_counter() - start
    layers = compressed.cache.layers
    full = sum(
        (la.keys.nbytes + la.values.nbytes) * n // la.keys.shape[-2]
        for la, n in zip(layers, compressed.layer_lengths, strict=True)
    )
    return answer, compressed.kept_per_layer(), full, compressed.held_bytes, seconds


def _ragged(model, tokenizer, pipe, context_ids, question_ids, press, max_new_tokens, phase):
    cache = RaggedCache(model.config)
    wrapped = RaggedPress(press) if press is not None else None
    phase("prefill and compress")
    start = time.perf_counter()
    with wrapped(model) if wrapped else contextlib.nullcontext(), torch.no_grad():
        model.get_decoder()(input_ids=context_ids, past_key_values=cache)
    spent = wrapped.seconds if wrapped else 0.0
    seconds = {"prefill": time.perf_counter() - start - spent, "compress": spent}
    kept = [layer.kept_share() for layer in cache.layers]
    held = cache_bytes(cache)
    full = sum(_dense_bytes(layer, context_ids.shape[1]) for layer in cache.layers)
    phase("decode")
    start = time.perf_counter()
    with ragged_attention(model):
        answer = pipe.generate_answer(question_ids, cache, context_ids.shape[1], max_new_tokens)
    seconds["decode"] = time.perf_counter() - start
    return answer, kept, full, held, seconds


def _dense_bytes(layer, length: int) -> int:
    """Bytes of a full cache layer of ``length`` positions (keys and values)."""
    if not layer.ragged:
        return layer.keys.nbytes + layer.values.nbytes
    first_k, first_v = layer.k[0][0], layer.v[0][0]
    heads = len(layer.k) * len(layer.k[0])
    return heads * length * (first_k.shape[-1] + first_v.shape[-1]) * first_k.element_size()
