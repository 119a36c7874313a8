"""A short, real demonstration on the embedded default model: the attributor and an RC press at work.

The model answers a question about five passages (:class:`~rcstat.attribution.Attributor`, one
forward pass over prompt ⊕ answer); the passages are scored by the heads of highest expected RC;
the five estimators are compared on the top head and the best passage; then the same passages are
compressed by half with the default RC press and the question is answered again from the
compressed cache. Everything uses the library's own defaults (:class:`Scoring`, the press registry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rcstat import stats
from rcstat.attribution.attributor import Attribution, Attributor
from rcstat.attribution.pooling import contextualization
from rcstat.attribution.scoring import Scoring
from rcstat.kv.compress import CompressionReport, compress_and_answer
from rcstat.presses.registry import DEFAULT_RATIO, make_press

PASSAGES = (
    "The Rhine rises in the Swiss Alps and flows north through Germany to the North Sea.",
    "Marie Curie was the first person to win Nobel Prizes in two different sciences, "
    "physics in 1903 and chemistry in 1911.",
    "The Great Barrier Reef, off the coast of Queensland, is the largest coral reef system on Earth.",
    "Honey never spoils: archaeologists have found edible honey in ancient Egyptian tombs.",
    "Mount Kilimanjaro in Tanzania is the highest mountain in Africa, at 5,895 metres.",
)
QUESTION = "In which years did Marie Curie win her Nobel Prizes?"
MAX_NEW_TOKENS = 48
PRESS = "rcstat"


@dataclass
class DemoResult:
    """What the demo measured; :meth:`to_dict` is its machine-readable form."""

    model: str
    attribution: Attribution
    passage_scores: list[float]
    top_heads: list[tuple[int, int, float]]  # (layer, head, E[RC] of the context against the answer)
    bounds: dict[str, float]  # the five estimators, top head × best passage
    compression: CompressionReport | None = None
    question: str = QUESTION
    passages: list[str] = field(default_factory=lambda: list(PASSAGES))

    @property
    def scoring(self) -> Scoring:
        return self.attribution.scoring

    @property
    def answer(self) -> str:
        return self.attribution.response

    def to_dict(self) -> dict:
        task = self.attribution.task
        record = {
            "model": self.model,
            "scoring": repr(self.scoring),
            "question": self.question,
            "answer": self.answer,
            "prompt_tokens": int(task.response_positions[0]),
            "answer_tokens": len(task.response_positions),
            "passages": [
                {"index": i + 1, "score": s, "text": p}
                for i, (p, s) in enumerate(zip(self.passages, self.passage_scores, strict=True))
            ],
            "top_heads": [{"layer": la, "head": h, "expected_rc": v} for la, h, v in self.top_heads],
            "bounds_top_head_best_passage": self.bounds,
        }
        if self.compression is not None:
            record["compression"] = {"model": self.model, **self.compression.to_dict()}
        return record


def run_demo(
    model, tokenizer, model_name: str, scoring: Scoring | None = None, compress: bool = True
) -> DemoResult:
    """Answer, attribute the answer to the passages, compare the estimators, then (``compress``)
    answer again from a cache compressed by half."""
    attributor = Attributor(model, tokenizer, scoring=scoring, max_new_tokens=MAX_NEW_TOKENS)
    attribution = attributor.attribute(list(PASSAGES), QUESTION)
    span = attribution.attributions(granularity="chunk")
    head_rc = attribution.features.head_rc
    top_heads = [(la, h, float(head_rc[la, h])) for la, h in attribution.heads]
    best = int(span.ranking[0])
    x, y = contextualization(attribution.features, attribution.heads[0], attribution.groups["chunk"][best])
    bounds = {name: float(stats.expected_rc(x, y, name)) for name in stats.ESTIMATORS}
    compression = None
    if compress:
        press = make_press(PRESS, DEFAULT_RATIO)
        compression = compress_and_answer(
            model, tokenizer, "\n".join(PASSAGES), QUESTION, press, max_new_tokens=MAX_NEW_TOKENS
        )
    return DemoResult(model_name, attribution, span.scores.tolist(), top_heads, bounds, compression)
