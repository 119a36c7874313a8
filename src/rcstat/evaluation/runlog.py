"""A benchmark's resumable log: a header line (the run's configuration), then one record per finished
sample, appended as it finishes.

A rerun with the same configuration on the same samples reuses the records already there and goes on
after them. A last line cut short (the write an interruption stopped) is dropped from the file; any
other line that is not a record, another configuration, or a record of another sample is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rcstat.distributed import HERE, Workers, map_model
from rcstat.errors import RCStatError
from rcstat.io import dumps, read_jsonl

REFUSED = "not a record of this benchmark's log; use another output"


def resume(log: Path, header: dict, keys: Sequence[str]) -> list[dict]:
    """The records of ``log`` written with ``header`` on samples whose keys are ``keys`` (a new log
    holds the header only); each record has its sample's ``index`` and ``key``."""
    header = json.loads(dumps(header))
    if not log.exists():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(dumps(header) + "\n", encoding="utf-8")
        return []
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    parsed = []
    for number, line in enumerate(lines, start=1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n") and number > 1:
                log.write_text("".join(lines[:-1]), encoding="utf-8")  # keep only whole records
                break
            raise RCStatError(
                f"{log}:{number}: not a record of this benchmark's log; use another output"
            ) from None
    if not parsed or parsed[0] != header:
        raise RCStatError(f"{log} was written by a run with other presses or options; use another output")
    records = parsed[1:]
    for number, record in enumerate(records, start=2):
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("index"), int)
            or "results" not in record
        ):
            raise RCStatError(f"{log}:{number}: not a record of this benchmark's log; use another output")
        if record["index"] >= len(keys) or keys[record["index"]] != record.get("key"):
            raise RCStatError(
                f"{log}: sample {record['index']} differs from the data now; use another output"
            )
    return records


def records(log: Path) -> list[dict]:
    """Every sample record of ``log`` as written (the header line skipped), for reading a finished or
    stopped run without its configuration."""
    return [r for r in read_jsonl(log) if "results" in r]


def append(log: Path, record: dict) -> None:
    """Add one finished sample's record (one whole line)."""
    with log.open("a", encoding="utf-8") as handle:
        handle.write(dumps(record) + "\n")


def run_samples(
    model,
    tokenizer,
    fn: Callable[..., dict],
    args: tuple,
    items: Sequence[tuple[Any, ...]],
    *,
    log: Path | None,
    header: dict,
    keys: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    workers: Workers = HERE,
) -> list[dict]:
    """One record per item, ``fn(model, tokenizer, *args, *item)``, in order: those in ``log`` reused,
    the rest run here or on Ray ``workers`` and appended to ``log`` as they finish."""
    records = resume(log, header, keys) if log else []
    for record in map_model(model, tokenizer, fn, args, items[len(records) :], workers):
        records.append(record)
        if log:
            append(log, record)
        if progress:
            progress(len(records), len(items))
    return records
