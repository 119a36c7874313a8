"""Rows a benchmark cannot use because they are too long for the model: skipped before any work and
reported as the records that do not fit their file's schema are (a warning each, listed in the run's
``skipped``; ``strict``: the first is the error; none left: an error)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from rcstat.io import Records, Skipped

T = TypeVar("T")


def fitting(
    items: Sequence[T],
    needed: Sequence[int],
    limit: int | None,
    name: str,
    strict: bool = False,
    records: Sequence[int] | None = None,
    what: str = "sample",
) -> tuple[list[T], list[Skipped]]:
    """The items whose ``needed`` positions fit in ``limit``, and those left out, numbered by
    ``records`` (their lines in the file ``name``; 0 or none: their place in ``items``, from 1)."""
    left_out: Records = Records(name, [], strict)
    kept = []
    for number, (item, n) in enumerate(zip(items, needed, strict=True), start=1):
        if limit and n > limit:
            record = (records[number - 1] if records else 0) or number
            left_out.skip(record, f"needs {n} tokens; the model allows {limit}")
        else:
            kept.append(item)
    left_out.require(len(kept), what)
    return kept, left_out.skipped


def merged(*skipped: Sequence[Skipped]) -> list[dict]:
    """The run's ``skipped`` entries: every record left out, in file order."""
    every = sorted((s for group in skipped for s in group), key=lambda s: s.record)
    return [{"record": s.record, "reason": s.reason} for s in every]
