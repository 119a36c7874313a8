"""The attribution benchmark: methods × annotated spans, chunk top-1 accuracy and faithfulness.

Every example takes one forward pass that keeps what all methods need (RC logits of every head,
post-softmax attention, hidden states); each method then scores the chunks for each annotated
span of the response. Faithfulness is the drop in the span's log-probability (teacher-forced)
when a method's top-k chunks are removed from the context; larger is more faithful.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rcstat.attribution.attributor import attribution
from rcstat.attribution.features import Task, build_task, capture
from rcstat.attribution.profile import HeadProfile, check_top_k, select_heads
from rcstat.attribution.scoring import Scoring
from rcstat.distributed import HERE, Workers, map_model
from rcstat.errors import RCStatError
from rcstat.evaluation.attribution.at2 import HeadWeights
from rcstat.evaluation.attribution.data import Example
from rcstat.evaluation.attribution.methods import METHODS, check_methods
from rcstat.evaluation.attribution.scorers import Context, kind, method_scores
from rcstat.evaluation.intervals import normal, wilson
from rcstat.kv.memory import peak_extra_bytes
from rcstat.models.loading import model_name
from rcstat.options import DEFAULT_PLAIN_FORWARD, check_number


def response_logprobs(model, task: Task) -> torch.Tensor:
    """Log-probability of each response token given everything before it (teacher-forced), ``(R,)``:
    one pass, the vocabulary projection only where a response token is predicted."""
    positions = task.response_positions
    keep = task.input_ids.shape[1] - int(positions.min()) + 1  # the last `keep` positions predict them
    with torch.no_grad():
        logits = model(task.input_ids, logits_to_keep=keep).logits[0]
    logp = logits[positions - (task.input_ids.shape[1] - keep) - 1].log_softmax(-1)
    return logp.gather(-1, task.input_ids[0, positions][:, None])[:, 0]


@dataclass(frozen=True)
class ExampleRun:
    """What every example of a run does (picklable, so that Ray workers run it too)."""

    methods: tuple[str, ...]
    scoring: Scoring
    profile: HeadProfile | None
    head_weights: HeadWeights | None
    ablations: int
    ks: tuple[int, ...]
    seed: int
    plain_forward: bool  # also time one plain forward pass per example (the cost's unit)

    def __call__(self, model, tokenizer, index: int, example: Example, faithful: int) -> list[dict]:
        """One record per target span of example ``index``; log-prob drops on its first ``faithful``."""
        scoring, top_k = self.scoring, self.scoring.top_k
        rng = random.Random(self.seed * 1_000_003 + index)  # per example: the same on any worker
        start = time.perf_counter()
        task = build_task(model, tokenizer, list(example.chunks), example.query, example.response)
        layers = model.config.num_hidden_layers
        features, peak = peak_extra_bytes(
            lambda: capture(model, task, scoring.estimator, attention=True, hidden_layer=layers // 2)
        )
        pass_seconds = time.perf_counter() - start
        forward_seconds, forward_peak = (
            _plain_forward(model, task.input_ids) if self.plain_forward else (None, None)
        )
        result = attribution(task, features, [], granularities=("chunk",))
        ctx = Context(
            task,
            features,
            result.groups["chunk"],
            select_heads(features.head_rc, top_k),
            select_heads(features.head_rc, top_k, least=True),
            self.profile.top(top_k) if self.profile else None,
            scoring,
            self.head_weights.tensor() if self.head_weights else None,
        )
        if len(ctx.groups) != len(example.chunks):
            raise RCStatError("a chunk of the context holds no token")
        prepared: dict[str, float] = {}  # seconds each method's own per-example set-up took
        for name in self.methods:
            if kind(name).prepare:
                t0 = time.perf_counter()
                ctx.state[name] = kind(name).prepare(model, tokenizer, example, self.ablations)
                prepared[name] = time.perf_counter() - t0
        # per-token log-probs of the response, with all chunks and without each removed set: a
        # span's value is a sum over its rows, so one pass serves every span and method
        full: torch.Tensor | None = None
        ablated_logprobs: dict[frozenset[int], torch.Tensor] = {}
        records = []
        for number, target in enumerate(example.targets):
            rows = result.rows(target.start, target.end)
            record = {
                "example": index,
                "target": number,
                "chunks": len(example.chunks),
                "context_tokens": len(task.context_positions),
                "depth": example.depth,
                "pass_seconds": pass_seconds if number == 0 else 0.0,
                "pass_peak_bytes": peak if number == 0 else None,
                "forward_seconds": forward_seconds if number == 0 else None,
                "forward_peak_bytes": forward_peak if number == 0 else None,
                "methods": {},
            }
            for name in self.methods:
                t0 = time.perf_counter()
                scores = method_scores(name, ctx, rows, rng)
                seconds = time.perf_counter() - t0
                if number == 0:
                    seconds += prepared.get(name, 0.0)
                ranking = torch.argsort(scores, descending=True).tolist()
                entry = {"top": ranking[0], "correct": ranking[0] in target.gold, "seconds": seconds}
                if number < faithful:
                    full = response_logprobs(model, task) if full is None else full
                    for k in self.ks:
                        removed = frozenset(ranking[:k])
                        kept = [c for i, c in enumerate(example.chunks) if i not in removed]
                        if not kept:
                            continue
                        if removed not in ablated_logprobs:
                            ablated = build_task(model, tokenizer, kept, example.query, example.response)
                            ablated_logprobs[removed] = response_logprobs(model, ablated)
                        entry[f"drop@{k}"] = float(full[rows].sum() - ablated_logprobs[removed][rows].sum())
                record["methods"][name] = entry
            records.append(record)
        return records


def run_attribution_bench(
    model,
    tokenizer,
    examples: Sequence[Example],
    methods: Sequence[str],
    *,
    scoring: Scoring | None = None,
    profile: HeadProfile | None = None,
    head_weights: HeadWeights | None = None,
    faithfulness: int = 0,
    ablations: int = 32,
    ks: Sequence[int] = (1, 3),
    seed: int = 0,
    plain_forward: bool = DEFAULT_PLAIN_FORWARD,
    progress: Callable[[int, int], None] | None = None,
    workers: Workers = HERE,
) -> list[dict]:
    """One record per target span: each method's top chunk, correctness, log-prob drops, time.

    ``scoring`` (default :class:`Scoring`) is how ``rcstat``, ``rcstat-calibrated`` and ``least-rc``
    score chunks; its ``top_k`` heads are also those of ``attention``. ``contextcite`` runs
    ``ablations`` forward passes of its own per example (the first span's time holds them).
    With ``workers`` on Ray, the examples run on its actors, each loading the model; the records are
    the same as in one process.
    """
    scoring = scoring or Scoring()
    check_methods(methods)
    needing = [m for m in methods if METHODS[m].needs_profile]
    if needing and profile is None:
        raise RCStatError(f"method {needing[0]} needs a head profile", option="profile")
    check_top_k(model, scoring.top_k)
    if profile is not None:
        profile.check(model, model_name(model))
    if any(METHODS[m].needs_weights for m in methods):
        if head_weights is None:
            raise RCStatError("method at2 needs head weights (rcstat heads at2)", option="head_weights")
        head_weights.check(model, model_name(model))
    check_number("ablations", ablations, low=2, integer=True)
    for name in methods:
        if kind(name).require:
            kind(name).require()
    run = ExampleRun(
        tuple(methods), scoring, profile, head_weights, ablations, tuple(ks), seed, plain_forward
    )
    items, before = [], 0
    for index, example in enumerate(examples):  # log-prob drops on the run's first `faithfulness` spans
        items.append((index, example, max(0, faithfulness - before)))
        before += len(example.targets)
    results = map_model(model, tokenizer, run, (), items, workers)
    records: list[dict] = []
    for done, example_records in enumerate(results, start=1):
        records += example_records
        if progress:
            progress(done, len(examples))
    return records


def _plain_forward(model, ids: torch.Tensor) -> tuple[float, int | None]:
    """Seconds and peak extra memory of one plain forward pass over ``ids`` (the model's own
    attention, logits of the last position only): the unit the capture's cost is read in."""
    start = time.perf_counter()
    with torch.no_grad():
        _, peak = peak_extra_bytes(lambda: model(ids, logits_to_keep=1))
    return time.perf_counter() - start, peak


def _accuracy(correct: Sequence[bool]) -> dict:
    return {
        "accuracy": sum(correct) / len(correct),
        "ci95": list(wilson(sum(correct), len(correct))),
        "n": len(correct),
    }


def summarise(methods: Sequence[str], records: Sequence[dict], ks: Sequence[int] = (1, 3)) -> list[dict]:
    """Accuracy with a Wilson interval, mean log-prob drops with normal intervals, time per example."""
    rows = []
    examples = len({r["example"] for r in records})
    for name in methods:
        entries = [r["methods"][name] for r in records]
        correct = sum(e["correct"] for e in entries)
        row = {
            "method": name,
            "accuracy": correct / len(entries) if entries else math.nan,
            "ci95": list(wilson(correct, len(entries))),
            "n": len(entries),
            "examples": examples,
            # the shared pass counts for every method that reads it, plus its own scoring
            "seconds_per_example": (
                sum(
                    e["seconds"] + (0.0 if METHODS[name].own_pass else r["pass_seconds"])
                    for e, r in zip(entries, records, strict=True)
                )
                / examples
                if examples
                else math.nan
            ),
        }
        depths = sorted({r["depth"] for r in records if r.get("depth") is not None})
        if depths:
            row["by_depth"] = {
                str(d): _accuracy([r["methods"][name]["correct"] for r in records if r.get("depth") == d])
                for d in depths
            }
        for k in ks:
            drops = [e[f"drop@{k}"] for e in entries if f"drop@{k}" in e]
            row[f"logprob_drop@{k}"] = statistics.fmean(drops) if drops else None
            row[f"logprob_drop@{k}_ci95"] = normal(drops)
            row[f"logprob_drop@{k}_n"] = len(drops)
        rows.append(row)
    return rows
