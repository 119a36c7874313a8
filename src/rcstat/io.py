"""User files: reading text and JSONL with clear errors (``-`` for stdin), checking records against
their schema, checking output paths before any work, and writing outputs whole or not at all."""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from rcstat.errors import RCStatError, warn

M = TypeVar("M")


def source_name(path: str | Path) -> str:
    """How messages name a file given on the command line (``-``: standard input)."""
    return "standard input" if str(path) == "-" else str(path)


def read_text(path: str | Path) -> str:
    """A UTF-8 text file (``-`` reads stdin); missing, unreadable, empty, binary or non-UTF-8 files
    and directories are errors."""
    name = source_name(path)
    if str(path) == "-":
        data = sys.stdin.buffer.read()
    else:
        file = Path(path)
        if file.is_dir():
            raise RCStatError(f"{path}: is a directory, expected a file")
        if not file.exists():
            raise RCStatError(f"{path}: no such file")
        try:
            data = file.read_bytes()
        except OSError as err:
            raise RCStatError(f"{path}: cannot read it ({err.strerror or err})") from None
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


def read_numbered(path: str | Path) -> list[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line; a line that is not a JSON object is an error."""
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
        records.append((number, record))
    return records


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict]:
    """One JSON object per non-blank line, each with the ``required`` keys; errors name the line."""
    needed = tuple(required)
    records = []
    for number, record in read_numbered(path):
        missing = [key for key in needed if key not in record]
        if missing:
            raise RCStatError(f"{source_name(path)}:{number}: missing field(s) {', '.join(missing)}")
        records.append(record)
    return records


def schema_reason(err: Any) -> str:
    """One line from a pydantic ``ValidationError``: the first field at fault, what it expects, what came."""
    first = err.errors()[0]
    # a union's member tags ("function-after[…]", "list[…]") are not fields
    where = ".".join(str(part) for part in first["loc"] if isinstance(part, int) or str(part).isidentifier())
    given = repr(first.get("input"))
    given = given if len(given) <= 40 else given[:37] + "…"
    if first["type"] == "missing":
        return f"missing field `{where}`"
    message = first["msg"].removeprefix("Value error, ")
    return (
        f"`{where}`: {message[0].lower()}{message[1:]}, got {given}" if where else f"{message}, got {given}"
    )


@dataclass(frozen=True)
class Skipped:
    """A record left out of a run, by its line number, and why."""

    record: int
    reason: str


@dataclass
class Records(Generic[M]):
    """The records of a file that fit their schema, and those a reader left out. Record numbers are
    line numbers. A reader calls :meth:`skip` for every record it cannot use (the schema's misfits
    already are), then :meth:`done`: when ``strict``, the first record left out, in file order, is
    the error; otherwise each was a warning."""

    name: str
    rows: list[tuple[int, M]]
    strict: bool = True
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, record: int, reason: str) -> None:
        """Leave a record out (with a warning unless strict)."""
        if not self.strict:
            warn(f"{self.name}: record {record} skipped: {reason}")
        self.skipped.append(Skipped(record, reason))

    def done(self) -> list[Skipped]:
        """The records left out, in file order; when strict, the first of them is the error."""
        self.skipped.sort(key=lambda s: s.record)
        if self.strict and self.skipped:
            raise RCStatError(f"{self.name}:{self.skipped[0].record}: {self.skipped[0].reason}")
        return self.skipped

    def require(self, kept: int, what: str = "record") -> None:
        """Fail when nothing is left to use."""
        self.done()
        if kept == 0:
            first = (
                f"; the first: record {self.skipped[0].record}: {self.skipped[0].reason}"
                if self.skipped
                else ""
            )
            raise RCStatError(f"{self.name}: no usable {what} ({len(self.skipped)} skipped{first})")


def read_records(path: str | Path, schema: type[M], strict: bool = True) -> Records[M]:
    """The JSONL records of ``path`` checked against ``schema`` (a pydantic model); the caller ends
    with :meth:`Records.done` (or :meth:`Records.require`)."""
    from pydantic import ValidationError

    records: Records[M] = Records(source_name(path), [], strict)
    for number, row in read_numbered(path):
        try:
            records.rows.append((number, schema.model_validate(row)))
        except ValidationError as err:
            records.skip(number, schema_reason(err))
    return records


def check_output_file(path: str | Path) -> None:
    """Before any work: ``path`` can be written as a file (its directory exists; it is absent or a
    regular file, never a directory, a device or another special file)."""
    target = Path(path)
    if not target.parent.is_dir():
        raise RCStatError(f"{path}: its directory {target.parent} does not exist")
    if target.is_dir():
        raise RCStatError(f"{path}: is a directory, expected a file name")
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        raise RCStatError(f"{path}: not a regular file; refusing to replace it")
    _check_writable(target.parent, path)


def _check_writable(directory: Path, path: str | Path) -> None:
    """A file can be created in ``directory`` (outputs are written whole: a new file renamed over)."""
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RCStatError(f"{path}: cannot write in {directory} (permission denied)")


def check_output_dir(path: str | Path) -> None:
    """Before any work: ``path`` is a directory, or can be made one (its parent exists)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise RCStatError(f"{path}: not a directory, expected a directory for the outputs")
    if not target.exists() and not target.parent.is_dir():
        raise RCStatError(f"{path}: its parent directory {target.parent} does not exist")
    _check_writable(target if target.exists() else target.parent, path)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±∞) replaced by ``None``, in lists and dicts too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON (what every output holds): a non-finite number is written as ``null``, never ``NaN``."""
    return json.dumps(finite(value), indent=indent, allow_nan=False)


def same_file(first: str | Path, second: str | Path) -> bool:
    """Whether two paths name one file (links followed; ``-``, standard input, names none)."""
    if "-" in (str(first), str(second)):
        return False
    a, b = Path(first), Path(second)
    try:
        return a.samefile(b) if a.exists() and b.exists() else a.resolve() == b.resolve()
    except OSError:
        return False


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file renamed over it); a target
    that is not a regular file is refused."""
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
            raise RCStatError(f"{path}: not a regular file; refusing to replace it")
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
