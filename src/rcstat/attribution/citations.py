"""Citations: the response with ``[n]`` after each sentence, for the sources it came from.

Each sentence of the response is attributed on its own (one forward pass serves them all) and cites
every source scoring within ``margin`` of its best source, provided that best source stands at least
``margin`` above the median source: a sentence whose sources all score alike — nothing stands out —
cites nothing. RC's scores are in logit units (with the default :class:`Scoring`: how far a source's
best key stands above each query token's lowest self-contextualization logit, averaged over the
sentence's tokens); their level varies from response to response, so the rule reads differences
only. The default margin was chosen on development data (``benchmarks/attribution/citations``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rcstat.attribution.attributor import Attribution
from rcstat.attribution.sources import Source, sentence_spans
from rcstat.errors import RCStatError
from rcstat.options import DEFAULT_CITE_MARGIN, Granularity, check_number


@dataclass(frozen=True)
class CitedSentence:
    """One sentence of the response (its character span) and the sources it cites, best first."""

    text: str
    start: int
    end: int
    citations: tuple[int, ...]


@dataclass
class Citations:
    """A response split into sentences, each with its citations, and the sources they index."""

    response: str
    sentences: list[CitedSentence]
    sources: list[Source]
    margin: float

    def text(self) -> str:
        """The response with ``[n]`` (1-based source numbers) after each cited sentence."""
        out, last = "", 0
        for s in self.sentences:
            out += self.response[last : s.end]
            if s.citations:
                out += " " + "".join(f"[{i + 1}]" for i in s.citations)
            last = s.end
        return out + self.response[last:]

    def to_dict(self) -> dict:
        return {
            "response": self.response,
            "margin": self.margin,
            "sentences": [
                {"text": s.text, "start": s.start, "end": s.end, "citations": list(s.citations)}
                for s in self.sentences
            ],
            "sources": [
                {"index": s.index, "text": s.text, "start": s.start, "end": s.end} for s in self.sources
            ],
        }


def sentence_scores(
    result: Attribution, granularity: Granularity
) -> list[tuple[tuple[int, int], np.ndarray]]:
    """Each sentence of the response that holds a token, with every source's score for it."""
    if not result.response.strip():
        raise RCStatError("the response is empty: nothing to cite", option="response")
    out = []
    for start, end in sentence_spans(result.response):
        try:
            out.append(((start, end), result.attributions(start, end, granularity).scores))
        except RCStatError:  # a sentence of whitespace-only tokens: nothing to attribute
            continue
    return out


def choose(scores: np.ndarray, margin: float) -> tuple[int, ...]:
    """The sources within ``margin`` of the best, best first; none when the best is less than
    ``margin`` above the median source."""
    best = float(scores.max())
    if best < float(np.median(scores)) + margin:
        return ()
    order = np.argsort(-scores, kind="stable")
    return tuple(int(i) for i in order if scores[i] >= best - margin)


def cite(
    result: Attribution, margin: float = DEFAULT_CITE_MARGIN, granularity: Granularity | None = None
) -> Citations:
    """Citations of ``result``'s response: chunks when the context was given as chunks, else its
    sentences (``granularity`` overrides)."""
    check_number("margin", margin)
    if granularity is None:
        granularity = "chunk" if len(result.task.chunk_spans) > 1 else "sentence"
    sentences = [
        CitedSentence(result.response[a:b], a, b, choose(scores, margin))
        for (a, b), scores in sentence_scores(result, granularity)
    ]
    return Citations(result.response, sentences, result.sources[granularity], margin)
