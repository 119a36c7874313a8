"""User files: every bad input is one clear RCStatError naming the file (and line)."""

from __future__ import annotations

import io
import sys

import pytest

from rcstat.errors import RCStatError
from rcstat.io import read_jsonl, read_text

FIELDS = ("context", "question", "answers")


def test_reads_jsonl_with_blank_lines(tmp_path) -> None:
    path = tmp_path / "data.jsonl"
    rows = [
        '{"context": "c", "question": "q", "answers": ["a"]}',
        "",
        '{"context": "d", "question": "r", "answers": []}',
    ]
    path.write_text("\n".join(rows) + "\n")
    assert [r["context"] for r in read_jsonl(path, required=FIELDS)] == ["c", "d"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b"\x00\x01binary", "binary file"),
        (b"bad \xff\xfe", "not UTF-8 text \\(byte 4\\)"),
        ("é".encode("utf-16"), "UTF-16 text, expected UTF-8"),
        (b'{"context": "c", "question": "q", "answers": []}\n{"context": \n', ":2: malformed JSON"),
        (b"[1, 2]\n", ":1: expected a JSON object"),
        (b'{"context": "c"}\n', r":1: missing field\(s\) question, answers"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(RCStatError, match=message):
        read_jsonl(path, required=FIELDS)


def test_missing_file_and_stdin(tmp_path, monkeypatch) -> None:
    with pytest.raises(RCStatError, match="no such file"):
        read_text(tmp_path / "nope.txt")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("héllo\n".encode())))
    assert read_text("-") == "héllo\n"


def test_write_atomic_whole_or_not_at_all(tmp_path) -> None:
    from rcstat.io import write_atomic

    target = tmp_path / "sub" / "out.json"
    write_atomic(target, b"{}\n")
    assert target.read_bytes() == b"{}\n"
    with pytest.raises(RCStatError, match="cannot write it"):
        write_atomic(tmp_path / "sub", b"x")  # a directory is in the way
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RCStatError, match="cannot write it"):
        write_atomic(blocker / "out.json", b"x")  # a file where a directory should be
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file", "out.json", "sub"]
