"""The KV benchmark: presses × compression ratios on one model over a set of samples.

Each sample is prefilled once (:func:`rcstat.kv.replay.record_prefill`); every press and ratio is
replayed on that record, and all the resulting caches answer together in batched greedy decoding
(:mod:`rcstat.kv.decode`, equal to kvpress's ``generate_answer``). All presses see the same prompt,
positions and decoding. A run with a log file appends one line per finished sample and resumes
where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kvpress import BasePress

from rcstat.errors import RCStatError
from rcstat.evaluation.kv.samples import Sample
from rcstat.kv.decode import greedy_answers
from rcstat.kv.memory import peak_extra_bytes
from rcstat.kv.replay import record_prefill, replay
from rcstat.presses.registry import FULL_CACHE, PRESSES, parse_presses


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
        factories = (
            dict(presses) if isinstance(presses, dict) else {p: _factory(p) for p in parse_presses(presses)}
        )
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


def _factory(name: str) -> Callable[[float], BasePress] | None:
    return None if name == FULL_CACHE else PRESSES[name].make


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
    """The records of a log written by the same configuration on the same samples.

    A last line cut short (the write an interruption stopped) is dropped from the file; any other
    line that is not a record is refused with its number.
    """
    header = {"config": config.record()}
    if not log.exists():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps(header) + "\n", encoding="utf-8")
        return []
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    parsed = []
    for number, line in enumerate(lines, start=1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n") and number > 1:
                log.write_text("".join(lines[:-1]), encoding="utf-8")  # keep only whole records
                break
            raise RCStatError(
                f"{log}:{number}: not a record of this benchmark's log; use another output"
            ) from None
    if not parsed or parsed[0] != json.loads(json.dumps(header)):
        raise RCStatError(f"{log} was written by a run with other presses or options; use another output")
    records = parsed[1:]
    for number, record in enumerate(records, start=2):
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("index"), int)
            or "results" not in record
        ):
            raise RCStatError(f"{log}:{number}: not a record of this benchmark's log; use another output")
        if record["index"] >= len(samples) or samples[record["index"]].key != record.get("key"):
            raise RCStatError(
                f"{log}: sample {record['index']} differs from the data now; use another output"
            )
    return records
