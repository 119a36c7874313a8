"""KV-benchmark samples: a context, a question and its acceptable answers, read from JSONL.

Data: JSONL with ``context``, ``question``, ``answers`` (acceptable strings) and optionally
``match`` (``any``: correct when the answer contains one of them; ``all``: the fraction of them it
contains, RULER's ``string_match_all``), ``answer_prefix`` (the start of the assistant's reply),
``max_new_tokens`` and ``task`` (a family name for the per-task breakdown).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rcstat.errors import RCStatError
from rcstat.io import read_jsonl

Match = Literal["any", "all"]


@dataclass(frozen=True)
class Sample:
    context: str
    question: str
    answers: tuple[str, ...]
    match: Match = "any"
    answer_prefix: str = ""
    max_new_tokens: int | None = None
    task: str = "data"

    @property
    def key(self) -> str:
        """A short fingerprint of the sample, to check a resumed log against the data."""
        text = json.dumps([self.context, self.question, self.answers, self.answer_prefix])
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def score(self, text: str) -> float:
        found = [a.lower() in text.lower() for a in self.answers]
        return float(any(found)) if self.match == "any" else sum(found) / len(found)


def load_samples(path: str | Path, limit: int | None = None) -> list[Sample]:
    """Samples from generic KV-benchmark JSONL (see the module docstring)."""
    rows = read_jsonl(path, required=("context", "question", "answers"))
    samples = []
    for number, row in enumerate(rows, start=1):
        answers = row["answers"]
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
            raise RCStatError(f"{path}: record {number}: `answers` must be a non-empty list of strings")
        match = row.get("match", "any")
        if match not in ("any", "all"):
            raise RCStatError(f"{path}: record {number}: `match` must be 'any' or 'all', got {match!r}")
        budget = row.get("max_new_tokens")
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise RCStatError(f"{path}: record {number}: `max_new_tokens` must be a positive integer")
        samples.append(
            Sample(
                str(row["context"]),
                str(row["question"]),
                tuple(answers),
                match,
                str(row.get("answer_prefix", "")),
                budget,
                str(row.get("task", "data")),
            )
        )
    return samples[:limit] if limit else samples
