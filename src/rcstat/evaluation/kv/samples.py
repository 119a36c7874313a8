"""KV-benchmark samples: a context, a question and its acceptable answers, read from JSONL.

Data: JSONL with ``context``, ``question``, ``answers`` (acceptable strings) and optionally
``match`` (``any``: correct when the answer contains one of them; ``all``: the fraction of them it
contains, RULER's ``string_match_all``), ``answer_prefix`` (the start of the assistant's reply),
``max_new_tokens``, ``task`` (a family name for the per-task breakdown) and ``evidence`` (the
sentences of the context that carry the answer, for the oracle press). A record that does not
fit is skipped with a warning and reported (``strict``: it is the error).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StrictInt, StrictStr

from rcstat.io import Skipped, read_records
from rcstat.schemas import Schema, Text

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
    evidence: tuple[str, ...] = ()  # the context's sentences that carry the answer (for the oracle)
    record: int = field(default=0, compare=False)  # its line in the data file (0: built in)

    @property
    def key(self) -> str:
        """A short fingerprint of the sample, to check a resumed log against the data."""
        text = json.dumps([self.context, self.question, self.answers, self.answer_prefix])
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def score(self, text: str) -> float:
        found = [a.lower() in text.lower() for a in self.answers]
        return float(any(found)) if self.match == "any" else sum(found) / len(found)


class KVRecord(Schema):
    """One line of KV-benchmark JSONL."""

    context: Text
    question: Text
    answers: Annotated[
        list[Text], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(min_length=1)
    ]
    match: Match = "any"
    answer_prefix: StrictStr = ""
    max_new_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    task: Text = "data"
    evidence: tuple[Text, ...] = ()


class OpenRecord(KVRecord):
    """A record whose ``answers`` may be left out (the decoding benchmark scores fidelity without them)."""

    answers: Annotated[
        list[Text], BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(default_factory=list)
    ]


def load_samples(
    path: str | Path, limit: int | None = None, strict: bool = False, schema: type[KVRecord] = KVRecord
) -> tuple[list[Sample], list[Skipped]]:
    """Samples from KV-benchmark JSONL (see the module docstring), and the records skipped because
    they do not fit it (``strict``: the first misfit is the error); at least one must fit.
    ``schema``: :class:`OpenRecord` where answers are optional."""
    records = read_records(path, schema, strict)
    records.require(len(records.rows))
    samples = [
        Sample(
            row.context,
            row.question,
            tuple(row.answers),
            row.match,
            row.answer_prefix,
            row.max_new_tokens,
            row.task,
            tuple(row.evidence),
            number,
        )
        for number, row in records.rows
    ]
    return (samples[:limit] if limit else samples), records.skipped
