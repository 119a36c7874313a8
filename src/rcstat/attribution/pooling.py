"""Source scores from the kept logits of the chosen heads (docs/method.md §4, steps 2–4).

Shapes: ``K`` chosen heads, ``R`` response tokens (query rows), ``C`` context tokens, ``T`` rows
of the target span, ``S`` sources. A head's kept logits form a block ``(R, C + R)``: the response's
queries against the context keys, then against the response keys.
"""

from __future__ import annotations

import torch

from rcstat import stats
from rcstat.attribution.features import Features
from rcstat.attribution.scoring import Head, Scoring
from rcstat.errors import RCStatError

DECOMPOSABLE = ("independent", "min_y")  # E over a source = mean of E over its tokens


def span_y(block: torch.Tensor, rows: torch.Tensor, context: int) -> torch.Tensor:
    """Samples of ``Y_s(g, T)``: logits of the span's queries to the response keys at or before them."""
    causal = torch.arange(block.shape[-1] - context)[None, :] <= rows[:, None]  # (|T|, R)
    return block[:, rows, context:][:, causal]


def head_blocks(features: Features, heads: list[Head]) -> torch.Tensor:
    """The kept logits of ``heads``, ``(K, R, C + R)``."""
    out = []
    for layer, head in heads:
        if layer not in features.logits or head not in features.heads[layer]:
            raise RCStatError(f"head {layer}:{head} was not kept by the forward pass")
        out.append(features.logits[layer][features.heads[layer].index(head)])
    return torch.stack(out)


def contextualization(features: Features, head: Head, group: torch.Tensor | None = None):
    """``(x, y)`` of one kept head over the whole response: ``x`` = ``X_s(p1, g)`` (``p1``: the context
    tokens ``group``, all by default), ``y`` = ``Y_s(g, g)``, both flat."""
    block = head_blocks(features, [head])
    context = block.shape[-1] - block.shape[-2]
    keys = block[0, :, :context]
    x = (keys if group is None else keys[:, group]).flatten()
    return x, span_y(block, torch.arange(block.shape[-2]), context)[0]


def token_rc(features: Features, heads: list[Head], rows: torch.Tensor, scoring: Scoring) -> torch.Tensor:
    """Each context token's ``E[Z]`` per head, ``(K, C)``: ``X`` = its logits from the span's
    queries ``rows``, ``Y`` as ``scoring.y`` says."""
    block = head_blocks(features, heads)
    context = block.shape[-1] - block.shape[-2]
    if scoring.y == "row":
        return _pair_rc(block, rows, context, scoring).mean(1)
    y = _y(block, rows, context, scoring.y)  # (K, m)
    x = block[:, rows, :context].transpose(1, 2)  # (K, C, |T|)
    return stats.expected_rc(x, y[:, None, :], scoring.estimator)


def _pair_rc(block: torch.Tensor, rows: torch.Tensor, context: int, scoring: Scoring) -> torch.Tensor:
    """``E[Z]`` of every single pair (context token ``i``, span query ``j``), ``(K, |T|, C)``."""
    x = block[:, rows, :context]
    if scoring.y == "row":  # row j's Y: its logits to the response keys 0..j
        return stats.row_paired_rc(x, block[:, rows, context:], rows + 1, scoring.estimator)
    y = _y(block, rows, context, scoring.y)  # (K, m), shared by every pair
    return stats.expected_rc(x[..., None], y[:, None, None, :], scoring.estimator)


def _y(block: torch.Tensor, rows: torch.Tensor, context: int, which: str) -> torch.Tensor:
    return span_y(block, rows if which == "span" else torch.arange(block.shape[-2]), context)


def pool_tokens(tokens: torch.Tensor, groups: list[torch.Tensor], pool: str) -> torch.Tensor:
    """Source scores ``(..., S)`` from token scores ``(..., C)``: mean, sum or max over each group."""
    index = torch.cat(groups)
    owner = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor([len(g) for g in groups]))
    values = tokens[..., index]
    out = torch.zeros(*tokens.shape[:-1], len(groups), dtype=tokens.dtype)
    if pool == "max":
        return out.fill_(-torch.inf).scatter_reduce(-1, owner.expand_as(values), values, "amax")
    out.index_add_(-1, owner, values)
    if pool in ("mean", "sample"):
        out /= torch.tensor([len(g) for g in groups], dtype=tokens.dtype)
    return out


def normalise(scores: torch.Tensor, how: str) -> torch.Tensor:
    """Per head (row), across sources: ``none``, ``sum`` (to 1), ``max`` (to 1), ``zscore``.
    A head whose scores are all zero (or all equal, for ``zscore``) scores every source 0."""
    if how == "none":
        return scores
    if how == "zscore":
        centred = scores - scores.mean(-1, keepdim=True)
        spread = scores.std(-1, correction=0, keepdim=True)
        return torch.where(spread > 0, centred / spread.clamp_min(1e-30), 0.0)
    total = scores.sum(-1, keepdim=True) if how == "sum" else scores.amax(-1, keepdim=True)
    return torch.where(total > 0, scores / total.clamp_min(1e-30), 0.0)


def head_source_rc(
    features: Features, heads: list[Head], rows: torch.Tensor, groups: list[torch.Tensor], scoring: Scoring
) -> torch.Tensor:
    """``RC_h(S)`` for every chosen head and source, ``(K, S)``, before normalisation.

    With ``y="span", pool="sample"``, ``X = X_s(S, T)`` and ``Y = Y_s(g, T)`` (the method's step 2).
    """
    if scoring.pool == "query-max":
        block = head_blocks(features, heads)
        return pool_tokens(
            _pair_rc(block, rows, block.shape[-1] - block.shape[-2], scoring), groups, "max"
        ).mean(1)
    if scoring.pool != "sample" or scoring.estimator in DECOMPOSABLE or scoring.y == "row":
        return pool_tokens(token_rc(features, heads, rows, scoring), groups, scoring.pool)
    block = head_blocks(features, heads)
    context = block.shape[-1] - block.shape[-2]
    y = _y(block, rows, context, scoring.y)  # (K, m)
    x_tokens = block[:, rows, :context].transpose(1, 2)  # (K, C, |T|)
    return torch.stack(
        [stats.expected_rc(x_tokens[:, g].flatten(1), y, scoring.estimator) for g in groups], dim=1
    )


def source_scores(
    features: Features, heads: list[Head], rows: torch.Tensor, groups: list[torch.Tensor], scoring: Scoring
) -> torch.Tensor:
    """Score of every source (step 4): ``RC_h(S)``, normalised per head, averaged over the heads."""
    return normalise(head_source_rc(features, heads, rows, groups, scoring), scoring.normalise).mean(0)
