"""Attribution benchmark data: VeriGran and QuoteSum JSONL, annotations stripped.

Both write attributed spans of the answer as ``[ n text ]``: ``text`` comes from source ``n``
(VeriGran: passage ``n - 1`` of ``passages``; QuoteSum: ``source{n}``). The brackets are not part
of what a model reads: :func:`strip_annotations` returns the plain response and the character
spans of the annotated texts in it, the ground truth.

Published sets carry flawed records. A record that does not fit its schema, or cannot be used (a
VeriGran chunk not in its summary, or there more than once; no annotation naming a passage), is
skipped with a warning and listed in :attr:`Loaded.skipped`, unless ``strict``; a chunk that
matches once only after a safe normalisation (Unicode NFKC, straight quotes, runs of spaces, quotes
around the chunk) is used and counted in :attr:`Loaded.recovered`. Spans are never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import StrictStr

from rcstat.errors import RCStatError
from rcstat.io import Records, Skipped, read_records, source_name
from rcstat.options import check_choice
from rcstat.schemas import Schema, Text

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
    """One response over its chunks, with the targets to attribute; a long-context example also
    says how many context tokens its chunks hold and at what depth its own chunks sit."""

    query: str
    chunks: tuple[str, ...]
    response: str
    targets: tuple[Target, ...]
    context_tokens: int | None = None
    depth: float | None = None
    record: int = field(default=0, compare=False)  # its (first) line in the data file


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


class VeriGranRecord(Schema):
    question: Text
    summary: Text
    chunk: Text
    passages: list[StrictStr]


class QuoteSumSources(Schema):
    """QuoteSum's titled sources (``title1..8``, ``source1..8``; empty where unused)."""

    title1: StrictStr = ""
    title2: StrictStr = ""
    title3: StrictStr = ""
    title4: StrictStr = ""
    title5: StrictStr = ""
    title6: StrictStr = ""
    title7: StrictStr = ""
    title8: StrictStr = ""
    source1: StrictStr = ""
    source2: StrictStr = ""
    source3: StrictStr = ""
    source4: StrictStr = ""
    source5: StrictStr = ""
    source6: StrictStr = ""
    source7: StrictStr = ""
    source8: StrictStr = ""


class QuoteSumRecord(QuoteSumSources):
    question: Text
    summary: Text


@dataclass
class Loaded:
    """The examples of a file, the records skipped, and how many were recovered by normalisation."""

    examples: list[Example]
    skipped: list[Skipped] = field(default_factory=list)
    recovered: int = 0
    pool: list[Example] = field(default_factory=list)  # every example of the file (distractors' source)
    name: str = ""  # the data file, as messages name it
    context_tokens: int | None = None  # the examples were given distractors to about this length

    def fitting(self, model, tokenizer, strict: bool = False) -> Loaded:
        """These examples but those too long for ``model`` (context, query and response as one
        sequence), each skipped and reported (:func:`rcstat.evaluation.fit.fitting`)."""
        from rcstat.attribution.features import sequence_length
        from rcstat.evaluation.fit import fitting
        from rcstat.models.loading import model_limit

        needed = [sequence_length(tokenizer, list(e.chunks), e.query, e.response) for e in self.examples]
        records = [e.record for e in self.examples]
        kept, skipped = fitting(
            self.examples, needed, model_limit(model), self.name, strict, records, "example"
        )
        return replace(self, examples=kept, skipped=sorted([*self.skipped, *skipped], key=lambda s: s.record))

    def record(self) -> dict:
        """What a run's results say about the data."""
        return {
            "skipped": [{"record": s.record, "reason": s.reason} for s in self.skipped],
            "recovered": self.recovered,
        }


_QUOTES = str.maketrans({c: '"' for c in "“”„‟«»"} | {c: "'" for c in "‘’‚‛"})


def _normalised(text: str) -> tuple[str, list[int]]:
    """``text`` in NFKC with straight quotes and single spaces, and where each character came from."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).translate(_QUOTES):
            if c.isspace():
                if out and out[-1] == " ":
                    continue
                c = " "
            out.append(c)
            origin.append(i)
    return "".join(out), origin


def _once(haystack: str, needle: str) -> int | str:
    """Where ``needle`` occurs in ``haystack`` if exactly once, else why not."""
    at = haystack.find(needle)
    if at < 0:
        return "not in"
    return at if haystack.find(needle, at + 1) < 0 else "more than once in"


def locate(summary: str, chunk: str) -> tuple[int, int, bool]:
    """``(start, end, recovered)`` of ``chunk`` in ``summary``: found exactly once, as is or after the
    safe normalisation; otherwise a ``ValueError`` saying why (a span is never guessed)."""
    at = _once(summary, chunk)
    if isinstance(at, int):
        return at, at + len(chunk), False
    plain, origin = _normalised(summary)
    wanted = _normalised(chunk)[0].strip().strip("\"'").strip()
    found = _once(plain, wanted) if wanted else "not in"
    if isinstance(found, int):
        return origin[found], origin[found + len(wanted) - 1] + 1, True
    where = "more than once in" if "more than once in" in (at, found) else "not in"
    raise ValueError(f"its `chunk` is {where} the plain summary")


def load_examples(
    dataset: Dataset, path: str | Path, limit: int | None = None, skip: int = 0, strict: bool = False
) -> Loaded:
    """Examples of ``verigran`` or ``quotesum`` JSONL; rows of one response share an example.

    ``skip`` examples are left out first, then at most ``limit`` are kept (in file order). Records
    that cannot be used are skipped (``strict``: the first is the error)."""
    check_choice("dataset", dataset, Dataset)
    if dataset == "verigran":
        loaded = _verigran(read_records(path, VeriGranRecord, strict))
    else:
        loaded = _quotesum(read_records(path, QuoteSumRecord, strict))
    if not loaded.examples:
        raise RCStatError(
            f"{source_name(path)}: no attributable example in {dataset} format "
            f"({len(loaded.skipped)} records skipped; see {URLS[dataset]})"
        )
    loaded.pool, loaded.name = loaded.examples, source_name(path)
    loaded.examples = loaded.examples[skip:]
    if not loaded.examples:
        raise RCStatError(f"{source_name(path)}: no example left after skipping {skip}", option="skip")
    loaded.examples = loaded.examples[:limit] if limit else loaded.examples
    return loaded


def _verigran(records: Records[VeriGranRecord]) -> Loaded:
    grouped: dict[tuple, list[Target]] = {}
    first: dict[tuple, int] = {}  # each example's first line
    recovered = 0
    for number, row in records.rows:
        response, spans = strip_annotations(row.summary)
        try:
            at, end, fixed = locate(response, row.chunk)
        except ValueError as err:
            records.skip(number, str(err))
            continue
        gold = frozenset(n - 1 for a, b, n in spans if a < end and b > at and 0 < n <= len(row.passages))
        if not gold:
            records.skip(number, "no annotation in its chunk names one of its passages")
            continue
        recovered += fixed
        key = (row.question, tuple(row.passages), response)
        first.setdefault(key, number)
        grouped.setdefault(key, []).append(Target(at, end, gold))
    examples = [Example(*key, tuple(targets), record=first[key]) for key, targets in grouped.items()]
    return Loaded(examples, records.done(), recovered)


def _quotesum(records: Records[QuoteSumRecord]) -> Loaded:
    examples = []
    for number, row in records.rows:
        kept = [n for n in range(1, 9) if getattr(row, f"source{n}").strip()]
        position = {n: i for i, n in enumerate(kept)}
        response, spans = strip_annotations(row.summary)
        targets = tuple(
            Target(a, b, frozenset({position[n]})) for a, b, n in spans if n in position and b > a
        )
        if not targets:
            records.skip(number, "no annotated span of its summary names a non-empty source")
            continue
        titled = tuple(f"(Title: {getattr(row, f'title{n}')}) {getattr(row, f'source{n}')}" for n in kept)
        examples.append(Example(row.question, titled, response, targets, record=number))
    return Loaded(examples, records.done())
