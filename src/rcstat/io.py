"""Reading user files with clear errors: JSONL records and UTF-8 text, ``-`` for stdin."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from rcstat.errors import RCStatError


def read_text(path: str | Path) -> str:
    """A UTF-8 text file (``-`` reads stdin); missing, empty, binary or non-UTF-8 files are errors."""
    if str(path) == "-":
        data, name = sys.stdin.buffer.read(), "standard input"
    else:
        file = Path(path)
        if not file.is_file():
            raise RCStatError(f"{path}: no such file")
        data, name = file.read_bytes(), str(path)
    if b"\x00" in data:
        raise RCStatError(f"{name}: looks like a binary file, expected UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RCStatError(f"{name}: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise RCStatError(f"{name}: the file is empty")
    return text


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict]:
    """One JSON object per non-blank line, each with the ``required`` keys; errors name the line."""
    needed = tuple(required)
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise RCStatError(f"{path}:{number}: malformed JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise RCStatError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        missing = [key for key in needed if key not in record]
        if missing:
            raise RCStatError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        records.append(record)
    return records
