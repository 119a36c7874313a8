"""The decoding benchmark: presses × budgets compressing while the model generates, against the full
cache's own generation of the same prompt.

Per sample, one batch generates the full cache's answer and every press × budget's
(:func:`rcstat.kv.generation.generate`; the shared prompt is prefilled once). Each compressed
generation is then compared with the full cache's: agreement until the first divergence, ROUGE-L,
and the full-cache model's mean negative log-likelihood of it (teacher-forced); the task's own score
where the sample has answers; the KV bytes held over its steps against an uncompressed cache's; and
the seconds its own scoring and eviction took per token. A run with a log resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from rcstat.distributed import HERE, Workers
from rcstat.errors import RCStatError
from rcstat.evaluation.decoding.config import DecodingConfig
from rcstat.evaluation.decoding.metrics import agreement, continuation_nll, rouge_l
from rcstat.evaluation.kv.samples import Sample
from rcstat.evaluation.runlog import run_samples
from rcstat.kv.generate import prompt_ids, stop_tokens
from rcstat.kv.generation import Budget, generate
from rcstat.models.loading import model_limit
from rcstat.presses.registry import FULL_CACHE, make_decoding


def cell_key(press: str, budget: Budget | None) -> str:
    return FULL_CACHE if budget is None else f"{press}@{budget.describe().replace(' tokens', '')}"


def run_decoding_bench(
    model,
    tokenizer,
    samples: Sequence[Sample],
    config: DecodingConfig,
    *,
    log: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: Workers = HERE,
) -> list[dict]:
    """One record per sample (see :func:`rcstat.evaluation.decoding.summary.summarise`); with ``log``,
    records already there are reused and new ones appended; on Ray ``workers`` the samples run on
    their actors, each loading the model."""
    encoded = []  # every prompt checked against every budget before any work
    limit = model_limit(model)
    for number, sample in enumerate(samples):
        ids = prompt_ids(model, tokenizer, sample.context, sample.question)
        if config.budgets and max(config.budgets) >= ids.shape[0]:
            raise RCStatError(
                f"sample {number + 1}'s prompt has {ids.shape[0]} tokens; a budget of {max(config.budgets)} "
                "is not below it",
                option="budget",
            )
        if limit and ids.shape[0] + config.max_new_tokens > limit:
            raise RCStatError(
                f"sample {number + 1} needs {ids.shape[0] + config.max_new_tokens} positions; "
                f"the model allows {limit}"
            )
        encoded.append((number, sample, ids))
    header, keys = {"config": config.record()}, [s.key for s in samples]
    return run_samples(
        model,
        tokenizer,
        _run_sample,
        (config,),
        encoded,
        log=log,
        header=header,
        keys=keys,
        progress=progress,
        workers=workers,
    )


def _run_sample(
    model, tokenizer, config: DecodingConfig, index: int, sample: Sample, ids: torch.Tensor
) -> dict:
    cells = config.cells
    compressions = [None if b is None else make_decoding(p, b, config.interval) for p, b in cells]
    start = time.perf_counter()
    out = generate(model, [ids] * len(cells), compressions, config.max_new_tokens, stop_tokens(model))
    seconds = time.perf_counter() - start
    nll = continuation_nll(model, ids, [g.tokens for g in out])
    reference = out[0].tokens
    results = {}
    for (press, budget), generated, loss in zip(cells, out, nll, strict=True):
        text = tokenizer.decode(generated.tokens, skip_special_tokens=True)
        shares = [s.held_bytes / s.full_bytes for s in generated.steps]
        results[cell_key(press, budget)] = {
            "tokens": len(generated.tokens),
            "agreement": agreement(generated.tokens, reference),
            "rouge_l": rouge_l(generated.tokens, reference),
            "nll": loss,
            "score": sample.score(text) if sample.answers else None,
            "held_fraction": sum(shares) / len(shares),
            "held_peak_fraction": max(shares),
            "cache_tokens_peak": max(s.cache_tokens for s in generated.steps),
            "compress_seconds": generated.compress_seconds,
            "held_bytes": [s.held_bytes for s in generated.steps] if index == 0 else None,
            "full_bytes": [s.full_bytes for s in generated.steps] if index == 0 else None,
            "text": text,
        }
    return {
        "index": index,
        "key": sample.key,
        "task": sample.task,
        "prompt_tokens": int(ids.shape[0]),
        "batch_seconds": seconds,
        "results": results,
    }
