"""Attribution over a corpus: one JSONL row in, one JSONL row out, resumable, nothing lost.

Each input row holds an ``id``, a ``context`` (text) or ``sources`` (chunks), a ``query``, and
optionally a ``response`` (generated when absent), ``spans`` (``[start, end]`` character spans of
the response; the whole response when absent) and a ``granularity``. Each output row is what
``rcstat attribute --format json`` prints, plus the ``id`` (with ``spans``: one ``{"target",
"sources"}`` per span under ``spans``). A rerun skips the ids already in the output; a last line cut
short by an interruption is dropped first (a whole last row missing only its newline gets it). A
row that cannot be attributed (a missing field, a context over the model's length, a span outside the
response) goes to the output's own errors file beside it (``out.jsonl``: ``out.errors.jsonl``), with
its line number and the reason, and the run goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StrictInt, StrictStr, ValidationError, model_validator

from rcstat.attribution.scoring import Scoring
from rcstat.distributed import HERE, Workers, map_items, reach, require_ray
from rcstat.errors import RCStatError
from rcstat.io import dumps, read_numbered, same_file, schema_reason, source_name, write_atomic
from rcstat.models.loading import ModelSource
from rcstat.options import DEFAULT_GRANULARITY, Granularity
from rcstat.schemas import Schema, Text


class CorpusRow(Schema):
    """One row of a corpus to attribute."""

    id: StrictStr | StrictInt
    query: Text
    context: Text | None = None
    sources: list[Text] | None = None
    response: Text | None = None
    spans: list[Annotated[list[StrictInt], Field(min_length=2, max_length=2)]] | None = None  # [start, end]
    granularity: Granularity | None = None  # the run's default when absent

    @model_validator(mode="after")
    def _one_context(self) -> CorpusRow:
        if (self.context is None) == (self.sources is None):
            raise ValueError("give either `context` or `sources`")
        return self


@dataclass(frozen=True)
class Item:
    """A row to attribute: where it stands in the input, and what it holds (or why it cannot)."""

    line: int
    id: Any
    row: CorpusRow | None = None
    error: str | None = None


def read_corpus(path: str | Path) -> list[Item]:
    """Every row of the corpus, checked; a row that does not fit is an item with its ``error``."""
    items, seen = [], set()
    for line, raw in read_numbered(path):
        key = raw.get("id")
        try:
            row = CorpusRow.model_validate(raw)
        except ValidationError as err:
            items.append(Item(line, key, error=schema_reason(err)))
            continue
        if row.id in seen:
            items.append(Item(line, row.id, error=f"id {row.id!r} is used by an earlier row"))
            continue
        seen.add(row.id)
        items.append(Item(line, row.id, row))
    return items


def attribute_item(attributor, item: Item, model_name: str, granularity: Granularity) -> dict:
    """The output row of one item (at its own granularity, else ``granularity``), or ``{"line", "id",
    "error"}`` when it cannot be attributed."""
    if item.error is not None:
        return {"line": item.line, "id": item.id, "error": item.error}
    row = item.row
    granularity = row.granularity or granularity
    try:
        result = attributor.attribute(
            row.context if row.sources is None else row.sources, row.query, row.response
        )
        record: dict = {
            "id": row.id,
            "model": model_name,
            "response": result.response,
            "granularity": granularity,
        }
        if row.spans is None:
            return {**record, **result.attributions(granularity=granularity).to_dict()}
        spans = [result.attributions(a, b, granularity=granularity).to_dict() for a, b in row.spans]
        return {**record, "spans": spans}
    except RCStatError as err:
        return {"line": item.line, "id": row.id, "error": str(err)}


class AttributorFactory:
    """A picklable job for :func:`rcstat.distributed.map_items`: loads the model once per worker."""

    def __init__(
        self,
        source: ModelSource,
        scoring: Scoring,
        profile: str | None = None,
        granularity: Granularity = DEFAULT_GRANULARITY,
    ) -> None:
        self.source, self.scoring, self.profile, self.granularity = source, scoring, profile, granularity

    def __call__(self) -> Callable[[Item], dict]:
        from rcstat.attribution.attributor import Attributor
        from rcstat.models.loading import model_name

        model, tokenizer = self.source.load()
        attributor = Attributor(model, tokenizer, scoring=self.scoring, profile=self.profile)
        name = model_name(model)
        return lambda item: attribute_item(attributor, item, name, self.granularity)


class Output:
    """A JSONL output written row by row (each row whole, flushed to disk), resumable by ``id``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.done: set = set()
        if self.path.exists():
            self._resume()

    def _resume(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError) as err:
            raise RCStatError(f"{self.path}: cannot read it to resume ({err})") from None
        for number, line in enumerate(lines, start=1):
            last = number == len(lines) and not line.endswith("\n")
            try:
                self.done.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                if last:  # the write an interruption cut short: dropped, the row is done again
                    write_atomic(self.path, "".join(lines[:-1]).encode())
                    return
                raise RCStatError(f"{self.path}:{number}: not a row of an attribution output") from None
            if last:  # a whole row without its newline: the next row must not be glued to it
                append(self.path, "\n")

    def write(self, row: dict) -> None:
        append(self.path, dumps(row) + "\n")


def append(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` and flush it to disk."""
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise RCStatError(f"{path}: cannot write it ({err.strerror or err})") from None


def errors_file(output: str | Path) -> Path:
    """Where the rows of ``output`` that could not be attributed go: ``out.jsonl`` → ``out.errors.jsonl``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.errors.jsonl")


def attribute_corpus(
    data: str | Path,
    output: str | Path,
    source: ModelSource | None = None,
    scoring: Scoring | None = None,
    profile: str | None = None,
    granularity: Granularity = DEFAULT_GRANULARITY,
    workers: Workers = HERE,
    progress: Callable[[int, str], Callable[[int, int], None]] | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> dict:
    """Attribute the rows of ``data`` not in ``output`` yet with ``source``'s model, appending each
    result in the rows' order (errors to :func:`errors_file`), here or on Ray ``workers``; a
    row without its own granularity takes ``granularity``;
    returns how many rows were done, skipped as already there, and failed. ``source`` defaults to the
    embedded model, ``scoring`` to :class:`Scoring`'s defaults."""
    source, scoring = source or ModelSource(), scoring or Scoring()
    errors_path = errors_file(output)
    for path, what in ((output, "the output"), (errors_path, "the output's errors file")):
        if same_file(path, data):
            raise RCStatError(f"{path}: {what} would overwrite the corpus {data}", option="output")
    if profile:
        from rcstat.attribution.profile import HeadProfile

        HeadProfile.load(profile)  # a bad profile fails before any worker starts
    if workers.on_ray:
        require_ray()  # one line when the extra is missing
        source.check()  # a model that cannot load fails here, not in every worker
        if workers.address:
            reach(workers.address)  # a cluster that does not answer: one line within seconds
    factory = AttributorFactory(source, scoring, profile, granularity)
    items = read_corpus(data)
    out = Output(output)
    write_atomic(errors_path, b"")  # this run's errors: the rows in it are tried again
    todo = [item for item in items if item.id not in out.done or item.error is not None]
    say(f"attributing {len(todo)} of {len(items)} rows on {workers.describe()}…")
    update = progress(len(todo), "rows") if progress else None
    counts = {"rows": len(items), "already_done": len(items) - len(todo), "done": 0, "errors": 0}
    for number, result in enumerate(map_items(factory, todo, workers), start=1):
        if "error" in result:
            append(errors_path, dumps(result) + "\n")
            counts["errors"] += 1
        else:
            out.write(result)
            counts["done"] += 1
        if update:
            update(number, len(todo))
    return {**counts, "output": str(output), "errors_file": source_name(errors_path)}
