"""Citations: the response with ``[n]`` after each sentence, for the sources that back it.

Each sentence of the response is attributed on its own (one forward pass serves them all); its
candidates are every source scoring within ``margin`` of its best source, provided that best source
stands at least ``margin`` above the median source (RC's scores are in logit units and their level
varies from response to response, so the rule reads differences only). RC ranks; it cannot say
whether the best source backs the sentence at all. With the model at hand (``attributor``), each
sentence also gets its support (:mod:`rcstat.attribution.support`: the fall in the log-probability
of its tokens when its candidates are cut from the context) and cites them only when the support
reaches ``min_support`` (and, on request, when its three least likely tokens average at least
``min_logprob`` with the whole context: its low log-probability). With or without the model, a
sentence cites only when the context holds at least ``min_overlap`` of its content words (its
overlap, :func:`rcstat.attribution.support.overlap`: a sentence on a topic the context does not
hold cites nothing). Sources are numbered from 1 everywhere a user reads them. The defaults were
chosen on development data (``benchmarks/attribution/citations``, ``benchmarks/attribution/support``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rcstat.attribution.attributor import Attribution, Attributor
from rcstat.attribution.sources import Source, sentence_spans
from rcstat.attribution.support import content_words, overlap, sentence_support
from rcstat.errors import RCStatError
from rcstat.options import (
    DEFAULT_CITE_MARGIN,
    DEFAULT_CITE_OVERLAP,
    DEFAULT_CITE_SUPPORT,
    Granularity,
    check_number,
)


@dataclass(frozen=True)
class Citation:
    """One cited source: its 1-based number (the ``n`` of ``[n]``) and its RC score (logit units)."""

    source: int
    score: float


@dataclass(frozen=True)
class CitedSentence:
    """One sentence of the response (its character span), its support and low log-probability
    (``None`` when not measured), its overlap with the context and the sources it cites, best first."""

    text: str
    start: int
    end: int
    citations: tuple[Citation, ...]
    support: float | None = None
    low_logprob: float | None = None
    overlap: float | None = None


@dataclass
class Citations:
    """A response split into sentences, each with its citations, and the sources they number."""

    response: str
    sentences: list[CitedSentence]
    sources: list[Source]
    margin: float
    min_support: float | None = None
    min_logprob: float | None = None
    min_overlap: float | None = None

    def text(self, scores: bool = False) -> str:
        """The response with ``[n]`` after each cited sentence; ``scores``: each citation's score and
        each sentence's support, low log-probability and overlap, ``unbacked`` where they were
        measured and nothing is cited."""
        out, last = "", 0
        for s in self.sentences:
            out += self.response[last : s.end]
            marks = "".join(
                f"[{c.source}: {c.score:.2f}]" if scores else f"[{c.source}]" for c in s.citations
            )
            if scores and (s.support is not None or s.overlap is not None):
                measured = [
                    f"{name} {value:{form}}"
                    for name, value, form in (
                        ("support", s.support, ".3f"),
                        ("low log-prob", s.low_logprob, ".2f"),
                        ("overlap", s.overlap, ".2f"),
                    )
                    if value is not None
                ]
                marks += f" ({', '.join(measured)}{'' if s.citations else ', unbacked'})"
            out += " " + marks.strip() if marks else ""
            last = s.end
        return out + self.response[last:]

    def to_dict(self) -> dict:
        return {
            "response": self.response,
            "margin": self.margin,
            "min_support": self.min_support,
            "min_logprob": self.min_logprob,
            "min_overlap": self.min_overlap,
            "sentences": [
                {
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "support": s.support,
                    "low_logprob": s.low_logprob,
                    "overlap": s.overlap,
                    "citations": [{"source": c.source, "score": c.score} for c in s.citations],
                }
                for s in self.sentences
            ],
            "sources": [
                {"source": s.index + 1, "text": s.text, "start": s.start, "end": s.end} for s in self.sources
            ],
        }

    def to_frame(self):
        """A pandas DataFrame, one row per citation (a sentence that cites nothing: one row with no
        source), with the sentence's support, low log-probability and overlap and the source's score
        and text (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise RCStatError("to_frame needs pandas: pip install pandas") from None
        rows = []
        for s in self.sentences:
            head = {
                "sentence": s.text,
                "start": s.start,
                "end": s.end,
                "support": s.support,
                "low_logprob": s.low_logprob,
                "overlap": s.overlap,
            }
            for c in s.citations or (None,):
                source = self.sources[c.source - 1].text if c else None
                rows.append({**head, "source": c and c.source, "score": c and c.score, "source_text": source})
        return pd.DataFrame(
            rows,
            columns=[
                "sentence",
                "start",
                "end",
                "support",
                "low_logprob",
                "overlap",
                "source",
                "score",
                "source_text",
            ],
        )


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
    """The sources (0-based) within ``margin`` of the best, best first; none when the best is less
    than ``margin`` above the median source."""
    best = float(scores.max())
    if best < float(np.median(scores)) + margin:
        return ()
    order = np.argsort(-scores, kind="stable")
    return tuple(int(i) for i in order if scores[i] >= best - margin)


def candidates(scores: np.ndarray, margin: float) -> tuple[int, ...]:
    """The sources whose cut measures a sentence's support: those ``choose`` cites, else the best."""
    return choose(scores, margin) or (int(np.argmax(scores)),)


def cite(
    result: Attribution,
    margin: float = DEFAULT_CITE_MARGIN,
    granularity: Granularity | None = None,
    *,
    attributor: Attributor | None = None,
    min_support: float = DEFAULT_CITE_SUPPORT,
    min_logprob: float | None = None,
    min_overlap: float | None = DEFAULT_CITE_OVERLAP,
) -> Citations:
    """Citations of ``result``'s response: chunks when the context was given as chunks, else its
    sentences (``granularity`` overrides). A sentence cites only when its overlap with the context
    reaches ``min_overlap`` (``None``: no text gate). With ``attributor`` (the one that made
    ``result``), each sentence's support and low log-probability are measured (``1 + sentences``
    more forward passes) and it cites only when its support reaches ``min_support`` and, when given,
    its low log-probability ``min_logprob``; without, citations follow the ranking and the overlap."""
    check_number("margin", margin)
    check_number("min_support", min_support)
    if min_logprob is not None:
        check_number("min_logprob", min_logprob)
    if min_overlap is not None:
        check_number("min_overlap", min_overlap, low=0, high=1)
    if granularity is None:
        granularity = "chunk" if len(result.task.chunk_spans) > 1 else "sentence"
    sources = result.sources[granularity]
    scored = sentence_scores(result, granularity)
    measured: list[tuple[float, float] | tuple[None, None]] = [(None, None)] * len(scored)
    if attributor is not None:
        cuts = [
            (span, [(sources[i].start, sources[i].end) for i in candidates(scores, margin)])
            for span, scores in scored
        ]
        measured = list(sentence_support(attributor.model, attributor.tokenizer, result, cuts))
    held, sentences = content_words(result.context), []
    for ((a, b), scores), (backing, low) in zip(scored, measured, strict=True):
        shared = overlap(result.response[a:b], held)
        backed = (
            (backing is None or backing >= min_support)
            and (min_logprob is None or low is None or low >= min_logprob)
            and (min_overlap is None or shared >= min_overlap)
        )
        cited = tuple(Citation(i + 1, float(scores[i])) for i in (choose(scores, margin) if backed else ()))
        sentences.append(CitedSentence(result.response[a:b], a, b, cited, backing, low, shared))
    gates = (None, None) if attributor is None else (min_support, min_logprob)
    return Citations(result.response, sentences, sources, margin, *gates, min_overlap)
