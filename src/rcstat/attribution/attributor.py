"""The attributor (docs/method.md §4, steps 3–4): heads with high expected RC score the sources of a span.

>>> attributor = Attributor.from_pretrained()                       # the embedded default model
>>> result = attributor.attribute(["Paris is in France.", "Rome is in Italy."], "Where is Rome?")
>>> result.response                                                  # generated when not given
>>> result.attributions(*result.find("Italy"), granularity="chunk").to_frame()

One forward pass gives the scores of every span at every granularity: ``attributions`` only
reduces the logits it kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rcstat.attribution.features import Features, Task, build_task, capture
from rcstat.attribution.pooling import source_scores
from rcstat.attribution.profile import Example, HeadProfile, calibrate, check_top_k, select_heads
from rcstat.attribution.scoring import Head, Scoring
from rcstat.attribution.sources import GRANULARITIES, Granularity, Source, split_context
from rcstat.errors import RCStatError, warn
from rcstat.models.loading import model_name
from rcstat.options import DEFAULT_GRANULARITY, check_choice

MAX_NEW_TOKENS = 128  # a generated response's length cap


@dataclass
class SpanAttribution:
    """Scores of the sources for one target span of the response."""

    target: tuple[int, int, str]
    sources: list[Source]
    scores: np.ndarray

    @property
    def ranking(self) -> np.ndarray:
        """Source indices, best first."""
        return np.argsort(-self.scores, kind="stable")

    def to_dict(self) -> dict:
        """The target and the sources, best first; ``source`` is the 1-based number printed as ``[n]``."""
        start, end, text = self.target
        return {
            "target": {"start": start, "end": end, "text": text},
            "sources": [
                {
                    "source": s.index + 1,
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "score": float(self.scores[s.index]),
                }
                for s in (self.sources[i] for i in self.ranking)
            ],
        }

    def to_frame(self):
        """A pandas DataFrame of the sources, best first, indexed by their 1-based numbers (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise RCStatError("to_frame needs pandas: pip install pandas") from None
        return pd.DataFrame(self.to_dict()["sources"]).set_index("source")


@dataclass
class Attribution:
    """One attributed response: its task, the heads used, and the sources at every granularity."""

    task: Task
    features: Features
    heads: list[Head]
    scoring: Scoring = field(default_factory=Scoring)
    sources: dict[str, list[Source]] = field(default_factory=dict)
    groups: dict[str, list[torch.Tensor]] = field(default_factory=dict)  # context-token indices

    @property
    def response(self) -> str:
        return self.task.response

    @property
    def context(self) -> str:
        return self.task.context

    def find(self, text: str) -> tuple[int, int]:
        """The character span of the first occurrence of ``text`` in the response (a warning when
        there are several)."""
        at = self.response.find(text)
        if not text or at < 0:
            raise RCStatError(f"{text!r} is not in the response", option="span_text")
        count = self.response.count(text)
        if count > 1:
            warn(f"{text!r} occurs {count} times in the response; the first is attributed")
        return at, at + len(text)

    def rows(self, start: int | None = None, end: int | None = None) -> torch.Tensor:
        """Indices of the response tokens overlapping the character span (all when not given)."""
        n = len(self.response)
        start, end = (0 if start is None else start), (n if end is None else end)
        if not 0 <= start < end <= n:
            raise RCStatError(f"span {start}:{end} is outside the response (0:{n})")
        rows = [i for i, (a, b) in enumerate(self.task.response_spans) if b > start and a < end]
        if not rows:
            raise RCStatError(f"span {start}:{end} holds no response token")
        return torch.tensor(rows)

    def attributions(
        self, start: int | None = None, end: int | None = None, granularity: Granularity = DEFAULT_GRANULARITY
    ) -> SpanAttribution:
        """Scores of every source for the response span ``[start, end)`` (the whole response by default)."""
        check_choice("granularity", granularity, Granularity)
        rows = self.rows(start, end)
        scores = source_scores(self.features, self.heads, rows, self.groups[granularity], self.scoring)
        a, b = self.task.response_spans[int(rows[0])][0], self.task.response_spans[int(rows[-1])][1]
        return SpanAttribution((a, b, self.response[a:b]), self.sources[granularity], scores.numpy())


class Attributor:
    """Attribute responses to their context with the heads of highest expected RC (docs/method.md §4).

    ``scoring`` (default :class:`Scoring`, whose repr records it) says how sources are scored; a
    ``profile`` (or the path of one) fixes the heads.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        scoring: Scoring | None = None,
        profile: HeadProfile | str | Path | None = None,
        max_new_tokens: int = MAX_NEW_TOKENS,
    ) -> None:
        if scoring is not None and not isinstance(scoring, Scoring):
            raise RCStatError(f"scoring must be a Scoring, got {type(scoring).__name__}", option="scoring")
        self.scoring = scoring or Scoring()
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.profile = HeadProfile.load(profile) if isinstance(profile, str | Path) else profile
        if model is not None:
            check_top_k(model, self.scoring.top_k)
            if self.profile is not None:
                self.profile.check(model, model_name(model))

    @property
    def estimator(self) -> str:
        return self.scoring.estimator

    @property
    def top_k(self) -> int:
        return self.scoring.top_k

    def __repr__(self) -> str:
        model = getattr(getattr(self.model, "config", None), "name_or_path", type(self.model).__name__)
        profile = f", profile={self.profile.model!r}/{self.profile.examples}" if self.profile else ""
        return f"Attributor({model!r}, {self.scoring!r}{profile})"

    @classmethod
    def from_pretrained(cls, name_or_path: str | None = None, **options) -> Attributor:
        """An attributor on a model id or path (the embedded default model when ``None``);
        ``options`` are the constructor's (``scoring``, ``profile``, ``max_new_tokens``)."""
        from rcstat.models import load_model

        model, tokenizer = load_model(name_or_path)
        return cls(model, tokenizer, **options)

    def calibrate(
        self,
        examples: Sequence[Example],
        name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> HeadProfile:
        """A head profile of this model over ``examples``, ranked with this attributor's estimator."""
        name = name or model_name(self.model)
        return calibrate(self.model, self.tokenizer, examples, name, self.estimator, progress)

    def attribute(self, context: str | list[str], query: str, response: str | None = None) -> Attribution:
        """One pass over context ⊕ query ⊕ response (generated greedily when ``None``)."""
        task = build_task(self.model, self.tokenizer, context, query, response, self.max_new_tokens)
        fixed = self.profile.top(self.top_k) if self.profile else None
        features = capture(self.model, task, self.estimator, heads=fixed)
        heads = fixed or select_heads(features.head_rc, self.top_k)
        return attribution(task, features, heads, scoring=self.scoring)


def attribution(
    task: Task,
    features: Features,
    heads: list[Head],
    granularities: tuple[str, ...] = GRANULARITIES,
    scoring: Scoring | None = None,
) -> Attribution:
    """Sources and their context-token groups at the granularities, for ``heads``."""
    scoring = scoring or Scoring(estimator=features.estimator, top_k=max(len(heads), 1))
    result = Attribution(task, features, heads, scoring)
    starts = torch.tensor([a for a, _ in task.context_spans])
    ends = torch.tensor([b for _, b in task.context_spans])
    for granularity in granularities:
        sources = split_context(task.context, granularity, task.chunk_spans, task.context_spans)
        groups = [torch.nonzero((ends > s.start) & (starts < s.end)).flatten() for s in sources]
        keep = [i for i, g in enumerate(groups) if len(g)]
        result.sources[granularity] = [
            Source(j, sources[i].text, sources[i].start, sources[i].end) for j, i in enumerate(keep)
        ]
        result.groups[granularity] = [groups[i] for i in keep]
    return result
