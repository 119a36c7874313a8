"""Nothing a user gave is overwritten, corpus mode never loses, glues or shares a row, outputs that
cannot be written are refused before the work, and every JSON output is strict (issue 30)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rcstat.attribution import corpus
from rcstat.io import dumps
from rcstat.models.loading import ModelSource
from tests.cli.test_errors import fail
from tests.helpers import write_jsonl

ROWS = [
    {"id": "a", "query": "Who?", "context": "Ada wrote it. Bob read it.", "response": "Ada wrote it."},
    {"id": "b", "query": "Who read?", "sources": ["Ada wrote it.", "Bob read it."], "response": "Bob."},
    {"id": "bad", "context": "No query here."},
]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- no output overwrites an input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["generate", "--query", "q", "--context", "{f}", "--output", "{f}"], "--context"),
        (["compress", "--query", "q", "--context", "{f}", "--output", "{f}"], "--context"),
        (["attribute", "--data", "{f}", "--output", "{f}"], "--data"),
        (["attribute", "--sources", "{f}", "--query", "q", "--output", "{f}"], "--sources"),
        (["cite", "--context", "{f}", "--query", "q", "--output", "{f}"], "--context"),
        (["bench", "citations", "--dataset", "quotesum", "--data", "{f}", "--output", "{f}"], "--data"),
        (["bench", "attribution", "--dataset", "quotesum", "--data", "{f}", "--output", "{f}"], "--data"),
        (["heads", "at2", "--dataset", "quotesum", "--data", "{f}", "--output", "{f}"], "--data"),
        (
            [
                "heads",
                "calibrate",
                "--dataset",
                "quotesum",
                "--data",
                "{f}",
                "--output",
                "x.json",
                "--plot",
                "{f}",
            ],
            "--data",
        ),
    ],
)
def test_an_output_that_is_an_input_is_refused_up_front(argv, flag, tmp_path, capsys) -> None:
    given = tmp_path / "input.jsonl"
    given.write_text('{"id": 1}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(given)  # the same file by another name
    for output in (given, link):  # the output is the last argument
        line = fail([str(given) if arg == "{f}" else arg for arg in argv[:-1]] + [str(output)], capsys)
        assert f"is the {flag} file; refusing to overwrite an input" in line
        assert given.read_text() == '{"id": 1}\n'


# ---- corpus mode: its own errors file, no row glued, nothing of the user's replaced ----------------


def attribute(data: str, out: Path, checkpoint: str) -> dict:
    return corpus.attribute_corpus(data, out, ModelSource(checkpoint))


def test_each_corpus_output_has_its_own_errors_file(tiny_checkpoint, tmp_path) -> None:
    data = write_jsonl(tmp_path / "corpus.jsonl", ROWS)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert attribute(data, first, tiny_checkpoint)["errors_file"] == str(tmp_path / "first.errors.jsonl")
    attribute(write_jsonl(tmp_path / "good.jsonl", ROWS[:1]), second, tiny_checkpoint)
    assert [e["id"] for e in lines(tmp_path / "first.errors.jsonl")] == ["bad"]  # not wiped by the second
    assert lines(tmp_path / "second.errors.jsonl") == []


def test_an_output_named_errors_jsonl_survives_a_rerun(tiny_checkpoint, tmp_path) -> None:
    data = write_jsonl(tmp_path / "corpus.jsonl", ROWS)
    out = tmp_path / "errors.jsonl"
    attribute(data, out, tiny_checkpoint)
    written = out.read_bytes()
    summary = attribute(data, out, tiny_checkpoint)
    assert summary["already_done"] == 2 and summary["done"] == 0 and out.read_bytes() == written


def test_an_input_named_like_the_errors_file_is_refused(tiny_checkpoint, tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "out.errors.jsonl", ROWS)
    before = Path(data).read_bytes()
    argv = ["attribute", "--data", data, "--output", str(tmp_path / "out.jsonl"), "--model", tiny_checkpoint]
    assert "the output's errors file would overwrite the corpus" in fail(argv, capsys)
    assert Path(data).read_bytes() == before and not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("cut", ["whole row", "half a row"])
def test_a_resume_never_glues_two_rows(cut, tiny_checkpoint, tmp_path) -> None:
    data = write_jsonl(tmp_path / "corpus.jsonl", ROWS[:2])
    expected, out = tmp_path / "expected.jsonl", tmp_path / "out.jsonl"
    attribute(data, expected, tiny_checkpoint)
    first = expected.read_text().splitlines()[0]
    out.write_text(first if cut == "whole row" else first[: len(first) // 2])  # no newline at the end
    summary = attribute(data, out, tiny_checkpoint)
    assert summary["already_done"] == (1 if cut == "whole row" else 0)
    assert out.read_bytes() == expected.read_bytes()
    assert attribute(data, out, tiny_checkpoint)["already_done"] == 2  # and the run after that is fine


# ---- outputs that cannot be written are refused before the work ---------------------------------


@pytest.fixture
def read_only(monkeypatch, tmp_path) -> Path:
    """A directory that cannot be written (``os.access`` says so: tests may run as root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    return locked


def test_outputs_in_a_read_only_directory_are_refused_before_the_work(read_only, tmp_path, capsys) -> None:
    context = tmp_path / "c.txt"
    context.write_text("Ada wrote it.")
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    model = ["--model", str(tmp_path / "no-model")]  # the refusal comes before the model would load
    out = str(read_only / "out.json")
    for argv in (
        ["attribute", "--data", data, "--output", out],
        ["generate", "--context", str(context), "--query", "q", "--output", out],
        ["heads", "at2", "--dataset", "quotesum", "--data", data, "--output", out],
        ["bench", "citations", "--dataset", "quotesum", "--data", data, "--output", out],
        ["bench", "kv", "--data", data, "--output", str(read_only)],
        ["bench", "kv", "--data", data, "--output", str(read_only / "new")],
        ["bench", "decoding", "--data", data, "--output", str(read_only / "new")],
    ):
        line = fail([*argv, *model], capsys)
        assert line.startswith("rcstat: error:") and "(permission denied) (--output)" in line, argv
    assert list(read_only.iterdir()) == []


# ---- strict JSON -------------------------------------------------------------------------------


def test_json_outputs_are_strict() -> None:
    text = dumps({"a": float("nan"), "b": [1.0, float("inf"), -float("inf")], "c": {"d": 0.5}}, indent=1)
    assert json.loads(text) == {"a": None, "b": [1.0, None, None], "c": {"d": 0.5}}
    assert "NaN" not in text and "Infinity" not in text
