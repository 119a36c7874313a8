"""How close a compressed generation stays to the full cache's own: agreement until the first
divergence, ROUGE-L, and the full-cache model's negative log-likelihood of it.

``lcs_length`` is the bit-parallel longest common subsequence (Hyyrö 2004): one pass over the
candidate with big-integer bit vectors as long as the reference, ``O(n·m / 64)`` word operations —
fast enough for thousands of 1k-token pairs, and tested against the quadratic dynamic programme.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import DynamicCache


def lcs_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b``."""
    if not a or not b:
        return 0
    masks: dict[int, int] = {}
    for j, token in enumerate(b):
        masks[token] = masks.get(token, 0) | (1 << j)
    full = (1 << len(b)) - 1
    v = full
    for token in a:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def rouge_l(candidate: Sequence[int], reference: Sequence[int]) -> float:
    """ROUGE-L F1 of two token sequences (1 when both are empty)."""
    if not candidate and not reference:
        return 1.0
    common = lcs_length(candidate, reference)
    if common == 0:
        return 0.0
    precision, recall = common / len(candidate), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def agreement(candidate: Sequence[int], reference: Sequence[int]) -> float:
    """The share of ``reference`` that ``candidate`` reproduces before it first differs."""
    same = 0
    for x, y in zip(candidate, reference, strict=False):
        if x != y:
            break
        same += 1
    return same / len(reference) if reference else 1.0


def continuation_nll(model, prompt: torch.Tensor, continuations: Sequence[Sequence[int]]) -> list[float]:
    """Mean negative log-likelihood per token of each continuation after ``prompt`` (1-D), under the
    model with its full cache, teacher-forced: the prompt runs once, the continuations as one batch
    (right-padded; padding never precedes a scored token). ``nan`` for an empty continuation."""
    device = next(model.parameters()).device
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        first = model(prompt[None].to(device), past_key_values=cache, logits_to_keep=1).logits[0, -1]
        longest = max((len(c) for c in continuations), default=0)
        if longest == 0:
            return [math.nan] * len(continuations)
        cache.batch_repeat_interleave(len(continuations))
        ids = torch.zeros(len(continuations), longest, dtype=torch.long, device=device)
        for r, tokens in enumerate(continuations):
            ids[r, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        start = prompt.shape[-1]
        positions = torch.arange(start, start + longest, device=device).expand(len(continuations), -1)
        logits = model(ids, past_key_values=cache, position_ids=positions).logits  # predicts ids[:, 1:]
    out = []
    for r, tokens in enumerate(continuations):
        if not tokens:
            out.append(math.nan)
            continue
        steps = torch.cat([first[None], logits[r, : len(tokens) - 1]]).float().log_softmax(-1)
        target = torch.tensor(tokens, device=device)
        out.append(float(-steps.gather(-1, target[:, None]).mean()))
    return out
