"""Attribution benchmark data: VeriGran and QuoteSum JSONL, annotations stripped.

Both write attributed spans of the answer as ``[ n text ]``: ``text`` comes from source ``n``
(VeriGran: passage ``n - 1`` of ``passages``; QuoteSum: ``source{n}``). The brackets are not part
of what a model reads: :func:`strip_annotations` returns the plain response and the character
spans of the annotated texts in it, the ground truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rcstat.errors import RCStatError
from rcstat.io import read_jsonl
from rcstat.options import check_choice

_ANNOTATION = re.compile(r"\[ (\d+) (.*?) \]", re.DOTALL)
Dataset = Literal["verigran", "quotesum"]
URLS = {
    "verigran": "https://github.com/Anirudh-Phukan/verifiability-granular",
    "quotesum": "https://github.com/google-research-datasets/QuoteSum",
}


@dataclass(frozen=True)
class Target:
    """A span of the response and the source chunks it is attributed to (0-based)."""

    start: int
    end: int
    gold: frozenset[int]


@dataclass(frozen=True)
class Example:
    """One response over its chunks, with the targets to attribute."""

    query: str
    chunks: tuple[str, ...]
    response: str
    targets: tuple[Target, ...]


def strip_annotations(text: str) -> tuple[str, list[tuple[int, int, int]]]:
    """The plain text and ``(start, end, n)`` for every annotated span in it."""
    plain, spans, last = "", [], 0
    for match in _ANNOTATION.finditer(text):
        plain += text[last : match.start()]
        inner = match.group(2)
        lead = len(inner) - len(inner.lstrip())
        spans.append((len(plain) + lead, len(plain) + len(inner.rstrip()), int(match.group(1))))
        plain += inner
        last = match.end()
    return plain + text[last:], spans


def load_examples(
    dataset: Dataset, path: str | Path, limit: int | None = None, skip: int = 0
) -> list[Example]:
    """Examples of ``verigran`` or ``quotesum`` JSONL; rows of one response share an example.

    ``skip`` examples are left out first, then at most ``limit`` are kept (in file order)."""
    check_choice("dataset", dataset, Dataset)
    loader = _verigran if dataset == "verigran" else _quotesum
    examples = loader(path)
    if not examples:
        raise RCStatError(f"{path}: no attributable example in {dataset} format (see {URLS[dataset]})")
    examples = examples[skip:]
    if not examples:
        raise RCStatError(f"{path}: no example left after skipping {skip}")
    return examples[:limit] if limit else examples


def _verigran(path: str | Path) -> list[Example]:
    grouped: dict[tuple, list[Target]] = {}
    keys: dict[tuple, tuple[str, tuple[str, ...], str]] = {}
    for number, row in enumerate(read_jsonl(path, required=("question", "summary", "chunk", "passages")), 1):
        passages = row["passages"]
        if not isinstance(passages, list) or not all(isinstance(p, str) for p in passages):
            raise RCStatError(f"{path}: record {number}: `passages` must be a list of strings")
        response, spans = strip_annotations(row["summary"])
        at = response.find(row["chunk"])
        if at < 0:
            raise RCStatError(f"{path}: record {number}: its `chunk` is not in the plain summary")
        end = at + len(row["chunk"])
        gold = frozenset(n - 1 for a, b, n in spans if a < end and b > at and 0 < n <= len(passages))
        if not gold:
            continue
        key = (row["question"], tuple(passages), response)
        keys[key] = key
        grouped.setdefault(key, []).append(Target(at, end, gold))
    return [Example(q, chunks, r, tuple(grouped[(q, chunks, r)])) for q, chunks, r in keys]


def _quotesum(path: str | Path) -> list[Example]:
    examples = []
    for row in read_jsonl(path, required=("question", "summary")):
        numbered = [(n, row.get(f"source{n}", "")) for n in range(1, 9)]
        kept = [(n, s) for n, s in numbered if s.strip()]
        position = {n: i for i, (n, _) in enumerate(kept)}
        response, spans = strip_annotations(row["summary"])
        targets = tuple(
            Target(a, b, frozenset({position[n]})) for a, b, n in spans if n in position and b > a
        )
        if targets:
            titled = tuple(f"(Title: {row.get(f'title{n}', '')}) {s}" for n, s in kept)
            examples.append(Example(row["question"], titled, response, targets))
    return examples
