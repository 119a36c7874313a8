"""Sources of a context (docs/method.md §4): tokens, sentences or caller-given chunks, with spans."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rcstat.options import Granularity, check_choice, choices

GRANULARITIES: tuple[str, ...] = choices(Granularity)

# a sentence ends at . ! ? (optionally followed by closing quotes or brackets) before whitespace,
# or at a line break; abbreviations of one capital letter ("J. Smith") do not end one
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])[.!?][\"')\]]*(?=\s)|\n+")


@dataclass(frozen=True)
class Source:
    """One source: its index, text, and character span ``[start, end)`` in the context."""

    index: int
    text: str
    start: int
    end: int


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (offline, rule-based), stripped of whitespace."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        piece = text[a:b]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((offset + a + lead, offset + a + len(piece.rstrip())))
    return out


def split_context(
    text: str,
    granularity: Granularity,
    chunks: list[tuple[int, int]] | None = None,
    tokens: list[tuple[int, int]] | None = None,
) -> list[Source]:
    """The sources of ``text`` at a granularity.

    ``chunks``: the caller's chunk spans (``chunk`` granularity; sentences are split inside each
    chunk so that no sentence crosses one); ``tokens``: the context's token spans (``token``).
    """
    if granularity == "chunk":
        spans = chunks or [(0, len(text))]
    elif granularity == "sentence":
        spans = [s for a, b in (chunks or [(0, len(text))]) for s in sentence_spans(text[a:b], a)]
    elif granularity == "token":  # without the whitespace a token carries
        spans = [
            (a + len(text[a:b]) - len(text[a:b].lstrip()), b - len(text[a:b]) + len(text[a:b].rstrip()))
            for a, b in (tokens or [])
            if text[a:b].strip()
        ]
    else:
        check_choice("granularity", granularity, Granularity)
    return [Source(i, text[a:b], a, b) for i, (a, b) in enumerate(spans)]
