"""The KV benchmark (issue 3): presses × compression ratios on one model over a dataset.

Each sample is prefilled once (:func:`rcstat.kv.replay.record_prefill`); every press and ratio is
then replayed on that record and answers greedily with kvpress's own ``generate_answer``, so all
presses see the same prompt, positions and decoding. Data: JSONL with ``context``, ``question``
and ``answers`` (acceptable strings; an answer counts as correct when it contains one of them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kvpress import (
    AdaKVPress,
    BasePress,
    ExpectedAttentionPress,
    KnormPress,
    RandomPress,
    SnapKVPress,
    StreamingLLMPress,
    TOVAPress,
)

from rcstat.errors import RCStatError
from rcstat.io import read_jsonl
from rcstat.kv.rcstat_press import RCStatPress
from rcstat.kv.replay import record_prefill, replay

# name -> press at a compression ratio. Not here yet: ObservedAttention (needs eager attention
# weights, n × n per layer) and PyramidKV (its unequal layer lengths break decoding a multi-token
# question with kvpress 0.5.5 on transformers 5.2).
PRESSES: dict[str, Callable[[float], BasePress]] = {
    "rcstat": lambda r: RCStatPress(compression_ratio=r),
    "rcstat-uniform": lambda r: RCStatPress(compression_ratio=r, head_adaptive=False),
    "snapkv": lambda r: SnapKVPress(compression_ratio=r),
    "adakv": lambda r: AdaKVPress(SnapKVPress(compression_ratio=r)),
    "streaming_llm": lambda r: StreamingLLMPress(compression_ratio=r),
    "tova": lambda r: TOVAPress(compression_ratio=r),
    "knorm": lambda r: KnormPress(compression_ratio=r),
    "expected_attention": lambda r: ExpectedAttentionPress(compression_ratio=r),
    "random": lambda r: RandomPress(compression_ratio=r, seed=0),
}
FULL_CACHE = "none"


@dataclass(frozen=True)
class Sample:
    context: str
    question: str
    answers: tuple[str, ...]


@dataclass
class Cell:
    """Results of one press at one ratio."""

    press: str
    compression_ratio: float
    record: str
    correct: list[bool] = field(default_factory=list)
    agrees: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        n = len(self.correct)
        low, high = wilson(sum(self.correct), n)
        return {
            "press": self.press,
            "compression_ratio": self.compression_ratio,
            "accuracy": sum(self.correct) / n if n else float("nan"),
            "ci95": [low, high],
            "agreement_with_full_cache": sum(self.agrees) / n if n else float("nan"),
            "n": n,
            "compression_seconds_mean": sum(self.seconds) / n if n else float("nan"),
            "press_repr": self.record,
        }


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def load_samples(path: str | Path, limit: int | None = None) -> list[Sample]:
    """Samples from generic KV-benchmark JSONL (``context``, ``question``, ``answers``)."""
    rows = read_jsonl(path, required=("context", "question", "answers"))
    samples = []
    for number, row in enumerate(rows, start=1):
        answers = row["answers"]
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
            raise RCStatError(f"{path}: record {number}: `answers` must be a non-empty list of strings")
        samples.append(Sample(str(row["context"]), str(row["question"]), tuple(answers)))
    return samples[:limit] if limit else samples


def parse_presses(names: Iterable[str]) -> list[str]:
    chosen = [n.strip() for n in names if n.strip()]
    unknown = [n for n in chosen if n not in PRESSES and n != FULL_CACHE]
    if unknown or not chosen:
        raise RCStatError(
            f"unknown press {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join([FULL_CACHE, *PRESSES])}"
        )
    return chosen


def run_kv_bench(
    model,
    tokenizer,
    samples: Sequence[Sample],
    presses: Sequence[str],
    ratios: Sequence[float],
    *,
    query_aware: bool = False,
    max_new_tokens: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> list[Cell]:
    """Accuracy, agreement with the full cache and compression time per press × ratio."""
    from transformers import pipeline

    for r in ratios:
        if not 0 <= r < 1:
            raise RCStatError(f"compression ratios must be in [0, 1), got {r}")
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    limit = getattr(model.config, "max_position_embeddings", None)
    cells = {(p, r): Cell(p, r, repr(PRESSES[p](r))) for p in presses if p != FULL_CACHE for r in ratios}
    if FULL_CACHE in presses:
        cells[(FULL_CACHE, 0.0)] = Cell(FULL_CACHE, 0.0, "None")
    encoded = []  # tokenize and check every sample before any work, so a bad one fails at once
    for number, sample in enumerate(samples, start=1):
        context = sample.context + "\n" + sample.question if query_aware else sample.context
        question = "" if query_aware else sample.question
        inputs = pipe.preprocess(context, [question], answer_prefix="", max_context_length=10**9)
        context_ids, question_ids = inputs["context_ids"], inputs["questions_ids"][0]
        total = context_ids.shape[1] + question_ids.shape[1] + max_new_tokens
        if limit and total > limit:
            raise RCStatError(f"sample {number} needs {total} tokens; the model allows {limit}")
        encoded.append((sample, context_ids, question_ids))
    for done, (sample, context_ids, question_ids) in enumerate(encoded):
        record = record_prefill(model, context_ids)

        def answer(press: BasePress | None, record=record, question_ids=question_ids) -> tuple[str, float]:
            start = time.perf_counter()
            cache = replay(record, press)
            spent = time.perf_counter() - start
            return pipe.generate_answer(question_ids, cache, record.length, max_new_tokens), spent

        reference, _ = answer(None)
        for (name, ratio), cell in cells.items():
            text, spent = (reference, 0.0) if name == FULL_CACHE else answer(PRESSES[name](ratio))
            cell.correct.append(any(a.lower() in text.lower() for a in sample.answers))
            cell.agrees.append(text.strip() == reference.strip())
            cell.seconds.append(spent)
        if progress:
            progress(done + 1, len(samples))
    return list(cells.values())
