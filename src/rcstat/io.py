"""User files: reading JSONL records and UTF-8 text with clear errors (``-`` for stdin), and
writing output files whole or not at all."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rcstat.errors import RCStatError


def source_name(path: str | Path) -> str:
    """How messages name a file given on the command line (``-``: standard input)."""
    return "standard input" if str(path) == "-" else str(path)


def read_text(path: str | Path) -> str:
    """A UTF-8 text file (``-`` reads stdin); missing, empty, binary or non-UTF-8 files are errors."""
    name = source_name(path)
    if str(path) == "-":
        data = sys.stdin.buffer.read()
    else:
        file = Path(path)
        if not file.is_file():
            raise RCStatError(f"{path}: no such file")
        data = file.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RCStatError(f"{name}: UTF-16 text, expected UTF-8")
    if b"\x00" in data:
        raise RCStatError(f"{name}: looks like a binary file, expected UTF-8 text")
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is dropped
    except UnicodeDecodeError as err:
        raise RCStatError(f"{name}: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise RCStatError(f"{name}: the file is empty")
    return text


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict]:
    """One JSON object per non-blank line, each with the ``required`` keys; errors name the line."""
    needed = tuple(required)
    records = []
    name = source_name(path)
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise RCStatError(f"{name}:{number}: malformed JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise RCStatError(f"{name}:{number}: expected a JSON object, got {type(record).__name__}")
        missing = [key for key in needed if key not in record]
        if missing:
            raise RCStatError(f"{name}:{number}: missing field(s) {', '.join(missing)}")
        records.append(record)
    return records


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file renamed over it)."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise RCStatError(f"{path}: cannot write it ({err.strerror or err})") from err
        raise
