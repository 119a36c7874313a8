"""Answer a query from a compressed cache and account for what compression did (``rcstat compress``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kvpress import BasePress

from rcstat.errors import RCStatError
from rcstat.kv.decode import greedy_answers
from rcstat.kv.replay import record_prefill, replay


@dataclass
class CompressionReport:
    """The answer, what was kept (overall and per layer), bytes before and after, and phase times."""

    press: str
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
) -> CompressionReport:
    """Prefill the context, compress it with ``press`` (``None``: keep all), answer greedily."""
    from transformers import pipeline

    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    text, question = (context + "\n" + query, "") if query_aware else (context, query)
    inputs = pipe.preprocess(text, [question], answer_prefix="", max_context_length=10**9)
    context_ids, question_ids = inputs["context_ids"], inputs["questions_ids"][0]
    limit = getattr(model.config, "max_position_embeddings", None)
    total = context_ids.shape[1] + question_ids.shape[1] + max_new_tokens
    if limit and total > limit:
        raise RCStatError(f"context and query need {total} tokens with the answer; the model allows {limit}")
    seconds = {}
    start = time.perf_counter()
    record = record_prefill(model, context_ids)
    seconds["prefill"] = time.perf_counter() - start
    start = time.perf_counter()
    compressed = replay(record, press)
    seconds["compress"] = time.perf_counter() - start
    start = time.perf_counter()
    (answer,) = greedy_answers(model, tokenizer, question_ids, [compressed], max_new_tokens)
    seconds["decode"] = time.perf_counter() - start
    return CompressionReport(
        press=repr(press),
        answer=answer.strip(),
        context_tokens=record.length,
        kept_fraction=compressed.kept_fraction,
        kept_per_layer=compressed.kept_per_layer(),
        bytes_full=record.held_bytes,
        bytes_held=compressed.held_bytes,
        seconds=seconds,
    )
