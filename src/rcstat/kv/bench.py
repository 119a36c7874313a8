"""The KV benchmark (issue 3): presses × compression ratios on one model over a dataset.

Each sample is prefilled once (:func:`rcstat.kv.replay.record_prefill`); every press and ratio is
replayed on that record, and all the resulting caches answer together in batched greedy decoding
(:mod:`rcstat.kv.decode`, equal to kvpress's ``generate_answer``). All presses see the same prompt,
positions and decoding.

Data: JSONL with ``context``, ``question``, ``answers`` (acceptable strings) and optionally
``match`` (``any``: correct when the answer contains one of them; ``all``: the fraction of them it
contains, RULER's ``string_match_all``), ``answer_prefix`` (the start of the assistant's reply),
``max_new_tokens`` and ``task`` (a family name for the per-task breakdown).

A run with a log file appends one line per finished sample and resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kvpress import (
    AdaKVPress,
    BasePress,
    ExpectedAttentionPress,
    KnormPress,
    ObservedAttentionPress,
    PyramidKVPress,
    RandomPress,
    SnapKVPress,
    StreamingLLMPress,
    TOVAPress,
)

from rcstat.errors import RCStatError
from rcstat.intervals import interval
from rcstat.io import read_jsonl
from rcstat.kv.decode import greedy_answers
from rcstat.kv.memory import peak_extra_bytes
from rcstat.kv.rcstat_press import RCStatPress
from rcstat.kv.replay import record_prefill, replay

# name -> press at a compression ratio (kvpress's defaults otherwise)
PRESSES: dict[str, Callable[[float], BasePress]] = {
    "rcstat": lambda r: RCStatPress(compression_ratio=r),
    "rcstat-uniform": lambda r: RCStatPress(compression_ratio=r, head_adaptive=False),
    "snapkv": lambda r: SnapKVPress(compression_ratio=r),
    "adakv": lambda r: AdaKVPress(SnapKVPress(compression_ratio=r)),
    "pyramidkv": lambda r: PyramidKVPress(compression_ratio=r),
    "streaming_llm": lambda r: StreamingLLMPress(compression_ratio=r),
    "observed_attention": lambda r: ObservedAttentionPress(compression_ratio=r),
    "tova": lambda r: TOVAPress(compression_ratio=r),
    "knorm": lambda r: KnormPress(compression_ratio=r),
    "expected_attention": lambda r: ExpectedAttentionPress(compression_ratio=r),
    "random": lambda r: RandomPress(compression_ratio=r, seed=0),
}
FULL_CACHE = "none"
Match = Literal["any", "all"]


@dataclass(frozen=True)
class Sample:
    context: str
    question: str
    answers: tuple[str, ...]
    match: Match = "any"
    answer_prefix: str = ""
    max_new_tokens: int | None = None
    task: str = "data"

    @property
    def key(self) -> str:
        """A short fingerprint of the sample, to check a resumed log against the data."""
        text = json.dumps([self.context, self.question, self.answers, self.answer_prefix])
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def score(self, text: str) -> float:
        found = [a.lower() in text.lower() for a in self.answers]
        return float(any(found)) if self.match == "any" else sum(found) / len(found)


@dataclass(frozen=True)
class Config:
    """What a run compares; a resumed run must have the same (its :meth:`record`)."""

    presses: tuple[str, ...]
    ratios: tuple[float, ...]
    query_aware: bool
    max_new_tokens: int
    factories: dict[str, Callable[[float], BasePress]] = field(repr=False)

    @classmethod
    def create(
        cls,
        presses: Sequence[str] | dict[str, Callable[[float], BasePress]],
        ratios: Sequence[float],
        query_aware: bool,
        max_new_tokens: int,
    ) -> Config:
        """``presses``: names from :data:`PRESSES` (and ``none``), or a mapping name -> press factory."""
        factories = dict(presses) if isinstance(presses, dict) else {p: PRESSES.get(p) for p in presses}
        return cls(tuple(factories), tuple(ratios), query_aware, max_new_tokens, factories)

    @property
    def labels(self) -> dict[str, str]:
        """Cell key (``press@ratio``) -> the press's repr, the experiment record of that cell."""
        labels = {
            cell_key(p, r): repr(make(r))
            for p, make in self.factories.items()
            if p != FULL_CACHE
            for r in self.ratios
        }
        if FULL_CACHE in self.factories:
            labels[cell_key(FULL_CACHE, 0.0)] = "None"
        return labels

    def record(self) -> dict:
        keys = ("presses", "ratios", "query_aware", "max_new_tokens")
        return {**{k: getattr(self, k) for k in keys}, "labels": self.labels}


def cell_key(press: str, ratio: float) -> str:
    return f"{press}@{ratio:g}"


def load_samples(path: str | Path, limit: int | None = None) -> list[Sample]:
    """Samples from generic KV-benchmark JSONL (see the module docstring)."""
    rows = read_jsonl(path, required=("context", "question", "answers"))
    samples = []
    for number, row in enumerate(rows, start=1):
        answers = row["answers"]
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
            raise RCStatError(f"{path}: record {number}: `answers` must be a non-empty list of strings")
        match = row.get("match", "any")
        if match not in ("any", "all"):
            raise RCStatError(f"{path}: record {number}: `match` must be 'any' or 'all', got {match!r}")
        budget = row.get("max_new_tokens")
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise RCStatError(f"{path}: record {number}: `max_new_tokens` must be a positive integer")
        samples.append(
            Sample(
                str(row["context"]),
                str(row["question"]),
                tuple(answers),
                match,
                str(row.get("answer_prefix", "")),
                budget,
                str(row.get("task", "data")),
            )
        )
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
    config: Config,
    *,
    log: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Score every press × ratio on every sample; returns one record per sample (see :func:`summarise`).

    With ``log``, records already there are reused (same configuration and samples required) and
    new ones are appended as they finish.
    """
    from transformers import pipeline

    for r in config.ratios:
        if not 0 <= r < 1:
            raise RCStatError(f"compression ratios must be in [0, 1), got {r}")
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    limit = getattr(model.config, "max_position_embeddings", None)
    encoded = []  # tokenize and check every sample before any work, so a bad one fails at once
    for number, sample in enumerate(samples, start=1):
        budget = min(sample.max_new_tokens or config.max_new_tokens, config.max_new_tokens)
        context = sample.context + "\n" + sample.question if config.query_aware else sample.context
        question = "" if config.query_aware else sample.question
        inputs = pipe.preprocess(
            context, [question], answer_prefix=sample.answer_prefix, max_context_length=10**9
        )
        context_ids, question_ids = inputs["context_ids"], inputs["questions_ids"][0]
        total = context_ids.shape[1] + question_ids.shape[1] + budget
        if limit and total > limit:
            raise RCStatError(f"sample {number} needs {total} tokens; the model allows {limit}")
        encoded.append((sample, context_ids, question_ids, budget))
    records = _resume(log, config, samples) if log else []
    for index in range(len(records), len(encoded)):
        sample, context_ids, question_ids, budget = encoded[index]
        record = _run_sample(model, tokenizer, config, sample, context_ids, question_ids, budget)
        record = {"index": index, "key": sample.key, "task": sample.task, **record}
        records.append(record)
        if log:
            with log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if progress:
            progress(index + 1, len(encoded))
    return records


def _run_sample(model, tokenizer, config: Config, sample: Sample, context_ids, question_ids, budget) -> dict:
    start = time.perf_counter()
    recorded = record_prefill(model, context_ids)
    prefill = time.perf_counter() - start
    names, caches, measures = [], [], {}
    for key in config.labels:
        press, ratio = key.split("@")
        make = (lambda _ratio: None) if press == FULL_CACHE else config.factories[press]
        start = time.perf_counter()
        compressed, extra = peak_extra_bytes(
            lambda make=make, ratio=ratio: replay(recorded, make(float(ratio)))
        )
        seconds = time.perf_counter() - start if press != FULL_CACHE else 0.0
        names.append(key)
        caches.append(compressed)
        measures[key] = {
            "seconds": seconds,
            "extra_bytes": extra,
            "kept_fraction": compressed.kept_fraction,
            "held_bytes": compressed.held_bytes,
        }
    start = time.perf_counter()
    texts = greedy_answers(model, tokenizer, question_ids, caches, budget)
    decode = time.perf_counter() - start
    reference = texts[names.index(cell_key(FULL_CACHE, 0.0))] if FULL_CACHE in config.presses else None
    results = {
        key: {
            **measures[key],
            "answer": text,
            "score": sample.score(text),
            "agrees": None if reference is None else text.strip() == reference.strip(),
        }
        for key, text in zip(names, texts, strict=True)
    }
    return {
        "context_tokens": int(context_ids.shape[1]),
        "full_bytes": recorded.held_bytes,
        "prefill_seconds": prefill,
        "decode_seconds": decode,
        "results": results,
    }


def _resume(log: Path, config: Config, samples: Sequence[Sample]) -> list[dict]:
    header = {"config": config.record()}
    if not log.exists():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps(header) + "\n", encoding="utf-8")
        return []
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or lines[0] != json.loads(json.dumps(header)):
        raise RCStatError(f"{log} was written by a run with other presses or options; use another output")
    records = lines[1:]
    for record in records:
        if record["index"] >= len(samples) or samples[record["index"]].key != record["key"]:
            raise RCStatError(
                f"{log}: sample {record['index']} differs from the data now; use another output"
            )
    return records


def summarise(config: Config, records: Sequence[dict]) -> list[dict]:
    """One row per press × ratio: accuracy with 95% interval, per task, agreement, time, memory."""
    rows = []
    snapkv = {}
    for key, label in config.labels.items():
        press, ratio = key.split("@")
        cells = [r["results"][key] for r in records]
        scores = [c["score"] for c in cells]
        agrees = [c["agrees"] for c in cells if c["agrees"] is not None]
        extra = [c["extra_bytes"] for c in cells if c["extra_bytes"] is not None]
        tasks = sorted({r["task"] for r in records})
        by_task = {}
        for task in tasks:
            task_scores = [r["results"][key]["score"] for r in records if r["task"] == task]
            by_task[task] = {
                "accuracy": statistics.fmean(task_scores),
                "ci95": list(interval(task_scores)),
                "n": len(task_scores),
            }
        row = {
            "press": press,
            "compression_ratio": float(ratio),
            "accuracy": statistics.fmean(scores) if scores else float("nan"),
            "ci95": list(interval(scores)) if scores else [float("nan")] * 2,
            "n": len(scores),
            "by_task": by_task,
            "agreement_with_full_cache": statistics.fmean(agrees) if agrees else None,
            "realised_ratio": 1 - statistics.fmean(c["kept_fraction"] for c in cells) if cells else None,
            "held_bytes_fraction": (
                statistics.fmean(
                    c["held_bytes"] / r["full_bytes"] for c, r in zip(cells, records, strict=True)
                )
                if cells
                else None
            ),
            "compression_seconds_mean": statistics.fmean(c["seconds"] for c in cells) if cells else None,
            "compression_peak_extra_mib": max(extra) / 2**20 if extra else None,
            "press_repr": label,
        }
        if press == "snapkv":
            snapkv[ratio] = row["compression_seconds_mean"]
        rows.append(row)
    for row in rows:
        base = snapkv.get(f"{row['compression_ratio']:g}")
        seconds = row["compression_seconds_mean"]
        row["compression_time_vs_snapkv"] = seconds / base if base and seconds is not None else None
    return rows
