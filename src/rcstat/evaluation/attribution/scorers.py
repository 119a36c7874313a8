"""How each kind of attribution method scores the chunks of one example for one span.

Every method reads what the example's single forward pass kept (:class:`Context`), except the
kinds that make their own passes (ContextCite) or read nothing (random).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from rcstat.attribution.features import Features, Task
from rcstat.attribution.pooling import pool_tokens, source_scores
from rcstat.attribution.scoring import Head, Scoring
from rcstat.errors import RCStatError
from rcstat.evaluation.attribution import contextcite
from rcstat.evaluation.attribution.at2 import at2_scores
from rcstat.evaluation.attribution.methods import METHODS, Method, check_methods


@dataclass
class Context:
    """What one example's pass gives to the methods."""

    task: Task
    features: Features
    groups: list[torch.Tensor]  # context-token indices of each chunk
    top: list[Head]
    least: list[Head]
    calibrated: list[Head] | None
    scoring: Scoring
    head_weights: torch.Tensor | None = None  # (layers, heads): AT2's
    state: dict[str, Any] = field(default_factory=dict)  # per method: what its kind prepared

    def heads(self, which: str) -> list[Head]:
        if which == "all":
            return [
                (la, h)
                for la in sorted(self.features.attention)
                for h in range(self.features.head_rc.shape[1])
            ]
        chosen = getattr(self, which)
        if chosen is None:
            raise RCStatError("this method needs a head profile", option="profile")
        return chosen


def pool_attention(weights: torch.Tensor, groups: list[torch.Tensor], pool: str = "sum") -> torch.Tensor:
    """Chunk scores from post-softmax weights ``(K, |T|, C)``, averaged over heads and queries:
    summed over a chunk's tokens (``sum``), or per query its best token's (``query-max``, RC's pooling)."""
    if pool == "query-max":
        return pool_tokens(weights, groups, "max").mean((0, 1))
    return pool_tokens(weights.mean((0, 1)), groups, "sum")


def _rc(method: Method, ctx: Context, rows: torch.Tensor, rng: random.Random, name: str) -> torch.Tensor:
    return source_scores(ctx.features, ctx.heads(method.heads), rows, ctx.groups, ctx.scoring)


def _attention(
    method: Method, ctx: Context, rows: torch.Tensor, rng: random.Random, name: str
) -> torch.Tensor:
    weights = torch.stack([ctx.features.attention[la][h][rows] for la, h in ctx.heads(method.heads)])
    return pool_attention(weights, ctx.groups, method.pool)  # weights: (K, |T|, C)


def _hidden(method: Method, ctx: Context, rows: torch.Tensor, rng: random.Random, name: str) -> torch.Tensor:
    context, response = ctx.features.hidden
    target = response[rows].mean(0)
    chunks = torch.stack([context[g].mean(0) for g in ctx.groups])
    return torch.nn.functional.cosine_similarity(chunks, target[None], dim=-1)


def _at2(method: Method, ctx: Context, rows: torch.Tensor, rng: random.Random, name: str) -> torch.Tensor:
    if ctx.head_weights is None:
        raise RCStatError("method at2 needs head weights (rcstat heads at2)", option="head_weights")
    return at2_scores(ctx.head_weights, ctx.features, ctx.groups, rows)


def _random(method: Method, ctx: Context, rows: torch.Tensor, rng: random.Random, name: str) -> torch.Tensor:
    return torch.tensor([rng.random() for _ in ctx.groups])


def _contextcite(
    method: Method, ctx: Context, rows: torch.Tensor, rng: random.Random, name: str
) -> torch.Tensor:
    start, end = ctx.task.response_spans[int(rows[0])][0], ctx.task.response_spans[int(rows[-1])][1]
    return torch.from_numpy(contextcite.contextcite_scores(ctx.state[name], start, end))


def _contextcite_citer(model, tokenizer, example, ablations: int):
    return contextcite.contextcite_citer(
        model, tokenizer, example.chunks, example.query, example.response, ablations
    )


@dataclass(frozen=True)
class KindImpl:
    """What a kind does: score a span; optionally check a dependency first and prepare per example."""

    score: Callable[..., torch.Tensor]
    require: Callable[[], Any] | None = None
    prepare: Callable[..., Any] | None = None  # (model, tokenizer, example, ablations) -> state


KINDS: dict[str, KindImpl] = {
    "rc": KindImpl(_rc),
    "attention": KindImpl(_attention),
    "hidden-state": KindImpl(_hidden),
    "contextcite": KindImpl(_contextcite, contextcite.require_contextcite, _contextcite_citer),
    "random": KindImpl(_random),
    "at2": KindImpl(_at2),
}


def kind(name: str) -> KindImpl:
    return KINDS[METHODS[name].kind]


def method_scores(name: str, ctx: Context, rows: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Chunk scores of one method for the response tokens ``rows``."""
    check_methods([name])
    return kind(name).score(METHODS[name], ctx, rows, rng, name)
