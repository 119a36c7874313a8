"""Long-context attribution sets: each example's chunks among distractor passages of other examples.

Retrieval-augmented answers come from 10–30 passages and thousands of tokens. Each example keeps its
own chunks, in their order and together, and gets passages of the file's other examples (drawn with a
fixed seed, never one of its own chunks) until its chunks hold about ``tokens`` tokens; its own
chunks go in at a depth that cycles over :data:`DEPTHS` from example to example (0: first, 1: last),
and the gold indices follow them. An example already longer than ``tokens`` gets no distractor (and
no depth). :func:`long_contexts` refuses a length the file's passages cannot fill.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from rcstat.errors import RCStatError
from rcstat.evaluation.attribution.data import Example, Loaded, Target

DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def with_distractors(
    examples: Sequence[Example], pool: Sequence[Example], tokenizer, tokens: int, seed: int = 0
) -> list[Example]:
    """``examples`` at about ``tokens`` context tokens each, distractors drawn from ``pool``."""
    length: dict[str, int] = {}

    def count(chunk: str) -> int:
        if chunk not in length:
            length[chunk] = len(tokenizer(chunk, add_special_tokens=False).input_ids) + 3  # "[n] " and "\n"
        return length[chunk]

    out = []
    for number, example in enumerate(examples):
        rng = random.Random(seed * 1_000_003 + number)
        own = set(example.chunks)
        others = list(dict.fromkeys(c for e in pool for c in e.chunks if c not in own))
        rng.shuffle(others)
        used = sum(count(c) for c in example.chunks)
        distractors = []
        for chunk in others:
            if used >= tokens:
                break
            distractors.append(chunk)
            used += count(chunk)
        depth = DEPTHS[number % len(DEPTHS)] if distractors else None
        at = round(depth * len(distractors)) if distractors else 0
        chunks = (*distractors[:at], *example.chunks, *distractors[at:])
        targets = tuple(Target(t.start, t.end, frozenset(g + at for g in t.gold)) for t in example.targets)
        out.append(replace(example, chunks=chunks, targets=targets, context_tokens=used, depth=depth))
    return out


def long_contexts(loaded: Loaded, tokenizer, tokens: int, seed: int = 0) -> Loaded:
    """``loaded`` with its examples at about ``tokens`` context tokens (:func:`with_distractors`);
    refused when the file's passages cannot fill that much (every example draws on all of them, so
    then none reaches it)."""
    examples = with_distractors(loaded.examples, loaded.pool, tokenizer, tokens, seed)
    held = [e.context_tokens or 0 for e in examples]
    if min(held) < tokens:
        raise RCStatError(
            f"{loaded.name}: its passages fill at most {max(held)} context tokens per example, not {tokens}",
            option="context_tokens",
        )
    return replace(loaded, examples=examples, context_tokens=tokens)
