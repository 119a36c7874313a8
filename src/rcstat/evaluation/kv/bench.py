"""The KV benchmark: presses × compression ratios on one model over a set of samples.

Each sample is prefilled once (:func:`rcstat.kv.replay.record_prefill`); every press and ratio is
replayed on that record, and all the resulting caches answer together in batched greedy decoding
(:mod:`rcstat.kv.decode`, equal to kvpress's ``generate_answer``). All presses see the same prompt,
positions and decoding. A run with a log file appends one line per finished sample and resumes
where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from kvpress import BasePress

from rcstat.distributed import HERE, Workers
from rcstat.errors import RCStatError
from rcstat.evaluation.kv.live import LiveRuns
from rcstat.evaluation.kv.oracle import ORACLE, OraclePress, evidence_positions
from rcstat.evaluation.kv.samples import Sample
from rcstat.evaluation.runlog import run_samples
from rcstat.kv.decode import greedy_answers
from rcstat.kv.evidence import evidence_kept
from rcstat.kv.memory import peak_extra_bytes
from rcstat.kv.replay import record_prefill, replay
from rcstat.models.loading import model_limit
from rcstat.models.logits import is_sliding
from rcstat.presses.registry import FULL_CACHE, PRESSES, parse_presses
from rcstat.presses.threshold_press import ThresholdPress


@dataclass(frozen=True)
class Cell:
    """One compressed cache per sample: a press at a target ratio, or thresholded at τ."""

    key: str  # "snapkv@0.5", "rcstat@t=1", "none@0": the cell's name in logs and rows
    press: str
    ratio: float | None
    threshold: float | None
    make: Callable[[], BasePress | None] = field(compare=False, repr=False)
    live: bool = False


@dataclass(frozen=True)
class Config:
    """What a run compares; a resumed run must have the same (its :meth:`record`).

    Every press runs at every ratio; presses named in ``thresholds`` also run thresholded at each of
    their τ (their scorer in :class:`~rcstat.presses.ThresholdPress`); ``none`` is the full cache."""

    presses: tuple[str, ...]
    ratios: tuple[float, ...]
    query_aware: bool
    max_new_tokens: int
    thresholds: tuple[tuple[str, tuple[float, ...]], ...] = ()
    factories: dict[str, Callable[[float], BasePress] | None] = field(default_factory=dict, repr=False)

    @classmethod
    def create(
        cls,
        presses: Sequence[str] | dict[str, Callable[[float], BasePress] | None],
        ratios: Sequence[float],
        query_aware: bool,
        max_new_tokens: int,
        thresholds: dict[str, Sequence[float]] | None = None,
    ) -> Config:
        """``presses``: names of the registry (and ``none``, ``oracle``), or a mapping name -> factory
        (a factory with ``live = True`` runs live, as the registry's live presses do)."""
        if isinstance(presses, dict):
            factories = dict(presses)
        else:
            factories = {p: _factory(p) for p in parse_presses(presses, extra=(ORACLE,))}
        for name in thresholds or {}:
            if name not in PRESSES or PRESSES[name].scorer is None:
                raise RCStatError(f"press {name} has no score to threshold", option="threshold")
        steps = tuple((name, tuple(values)) for name, values in (thresholds or {}).items())
        return cls(tuple(factories), tuple(ratios), query_aware, max_new_tokens, steps, factories)

    @property
    def cells(self) -> list[Cell]:
        out = []
        for name, make in self.factories.items():
            if name == FULL_CACHE:
                out.append(Cell(cell_key(FULL_CACHE, 0.0), name, 0.0, None, lambda: None))
                continue
            live = getattr(make, "live", name in PRESSES and PRESSES[name].live)
            out += [Cell(cell_key(name, r), name, r, None, partial(make, r), live) for r in self.ratios]
        for name, values in self.thresholds:
            scorer = PRESSES[name].scorer
            out += [
                Cell(f"{name}@t={t:g}", name, None, t, lambda s=scorer, t=t: ThresholdPress(s(), t))
                for t in values
            ]
        return out

    @property
    def labels(self) -> dict[str, str]:
        """Cell key -> the press's repr, the experiment record of that cell."""
        return {cell.key: repr(cell.make()) for cell in self.cells}

    def record(self) -> dict:
        keys = ("presses", "ratios", "query_aware", "max_new_tokens", "thresholds")
        return {**{k: getattr(self, k) for k in keys}, "labels": self.labels}


def cell_key(press: str, ratio: float) -> str:
    return f"{press}@{ratio:g}"


def _factory(name: str) -> Callable[[float], BasePress] | None:
    if name == ORACLE:
        return lambda ratio: OraclePress(compression_ratio=ratio)
    return None if name == FULL_CACHE else PRESSES[name].make


def run_kv_bench(
    model,
    tokenizer,
    samples: Sequence[Sample],
    config: Config,
    *,
    log: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: Workers = HERE,
) -> list[dict]:
    """Score every press × ratio on every sample; returns one record per sample (see :func:`summarise`).

    With ``log``, records already there are reused (same configuration and samples required) and
    new ones are appended as they finish. With ``workers`` on Ray, the samples run on its actors, each
    loading the model; the records and the log are the same as in one process.
    """
    from transformers import pipeline

    for r in config.ratios:
        if not 0 <= r < 1:
            raise RCStatError(f"compression ratios must be in [0, 1), got {r}", option="compression_ratio")
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    limit = model_limit(model)
    encoded = []  # tokenize and check every sample before any work, so a bad one fails at once
    for number, sample in enumerate(samples, start=1):
        context_ids, question_ids, budget = _encode(pipe, config, sample)
        total = context_ids.shape[1] + question_ids.shape[1] + budget
        if limit and total > limit:
            raise RCStatError(f"sample {number} needs {total} tokens; the model allows {limit}")
        encoded.append((number - 1, sample, context_ids, question_ids, budget))
    header, keys = {"config": config.record()}, [s.key for s in samples]
    return run_samples(
        model,
        tokenizer,
        _sample_record,
        (config,),
        encoded,
        log=log,
        header=header,
        keys=keys,
        progress=progress,
        workers=workers,
    )


def needed_tokens(model, tokenizer, samples: Sequence[Sample], config: Config) -> list[int]:
    """The positions each sample takes: its context, its question and its budget of new tokens."""
    from transformers import pipeline

    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    needed = []
    for sample in samples:
        context_ids, question_ids, budget = _encode(pipe, config, sample)
        needed.append(int(context_ids.shape[1] + question_ids.shape[1]) + budget)
    return needed


def _encode(pipe, config: Config, sample: Sample):
    """``(context_ids, question_ids, budget)``: a sample as the pipeline lays it out, and its new tokens."""
    context = sample.context + "\n" + sample.question if config.query_aware else sample.context
    question = "" if config.query_aware else sample.question
    inputs = pipe.preprocess(
        context, [question], answer_prefix=sample.answer_prefix, max_context_length=10**9
    )
    budget = min(sample.max_new_tokens or config.max_new_tokens, config.max_new_tokens)
    return inputs["context_ids"], inputs["questions_ids"][0], budget


def _sample_record(model, tokenizer, config: Config, index: int, sample: Sample, *encoded) -> dict:
    record = _run_sample(model, tokenizer, config, sample, *encoded)
    return {"index": index, "key": sample.key, "task": sample.task, **record}


def _run_sample(model, tokenizer, config: Config, sample: Sample, context_ids, question_ids, budget) -> dict:
    start = time.perf_counter()
    recorded = record_prefill(model, context_ids)
    prefill = time.perf_counter() - start
    evidence = evidence_positions(tokenizer, context_ids, sample.evidence)
    live = LiveRuns(model, context_ids)
    full_keys = [layer.keys for layer in recorded.layers]
    sliding = [is_sliding(layer.module) for layer in recorded.layers]
    names, caches, measures = [], [], {}
    for cell in config.cells:
        press = cell.make()
        if isinstance(press, OraclePress):
            if evidence is None:
                continue  # the oracle needs to know where the answer lies
            press = replace(press, evidence=evidence)
        torch.manual_seed(0)  # presses that sample (Compactor's sketches, random) do the same every run
        start = time.perf_counter()
        if cell.live:
            (compressed, run), extra = peak_extra_bytes(lambda press=press: live.compress(press))
            live.seconds.setdefault(run, time.perf_counter() - start)
            seconds = live.seconds[run]  # what producing this cell alone costs: the live run
        else:
            compressed, extra = peak_extra_bytes(lambda press=press: replay(recorded, press))
            seconds = time.perf_counter() - start if press is not None else 0.0
        names.append(cell.key)
        caches.append(compressed)
        measures[cell.key] = {
            "seconds": seconds,
            "extra_bytes": extra,
            "kept_fraction": compressed.kept_fraction,
            "kept_per_layer": [round(k, 4) for k in compressed.kept_per_layer()],
            "held_bytes": compressed.held_bytes,
        }
        if evidence is not None:  # how much of the answer's tokens each kind of layer still shows
            measures[cell.key]["evidence_kept"] = evidence_kept(compressed, full_keys, evidence, sliding)
        if cell.threshold is not None or cell.press == "rcstat":  # budgets that differ per head
            measures[cell.key]["kept_per_head"] = [
                [round(k, 3) for k in row] for row in compressed.kept_per_head()
            ]
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
