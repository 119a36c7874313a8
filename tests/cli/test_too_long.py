"""Rows too long for the model and lengths the work cannot have (issue 30): every benchmark skips a row
too long for the model before any work and reports it as it reports a malformed record (``--strict``:
the error); a decoding timing past the model's length and a ``--context-tokens`` the file cannot fill
are refused in one line before the work (the latter before the model loads)."""

from __future__ import annotations

import json

import pytest

from rcstat import cli
from tests.cli.test_errors import fail
from tests.helpers import QUOTESUM_ROW, write_jsonl

FACTS = "The Rhine rises in the Swiss Alps. Marie Curie won two Nobel Prizes. Honey never spoils. "
LONG = "word " * 600  # the tiny checkpoint takes 512 positions
BENCHES = {  # a good row, the same row too long, the command line before --data
    "kv": (
        {"context": FACTS, "question": "Where?", "answers": ["Alps"]},
        {"context": LONG, "question": "Where?", "answers": ["Alps"]},
        ["bench", "kv", "--press", "streaming_llm", "--compression-ratio", "0.5", "--max-new-tokens", "2"],
    ),
    "decoding": (
        {"context": FACTS * 2, "question": "Repeat it."},
        {"context": LONG, "question": "Repeat it."},
        [
            "bench",
            "decoding",
            "--press",
            "knorm",
            "--budget",
            "16",
            "--interval",
            "4",
            "--max-new-tokens",
            "4",
        ],
    ),
    "citations": (
        QUOTESUM_ROW,
        {**QUOTESUM_ROW, "source2": LONG},
        ["bench", "citations", "--dataset", "quotesum", "--margin", "0"],
    ),
    "attribution": (
        QUOTESUM_ROW,
        {**QUOTESUM_ROW, "source2": LONG},
        ["bench", "attribution", "--dataset", "quotesum", "--method", "rcstat"],
    ),
}


@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_a_row_too_long_for_the_model_is_skipped_and_reported(bench, tiny_checkpoint, tmp_path, capsys):
    good, long, argv = BENCHES[bench]
    data = write_jsonl(tmp_path / "d.jsonl", [good, long])
    argv = [*argv, "--model", tiny_checkpoint, "--data", data]
    assert cli.main([*argv, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    warned = [line for line in err.splitlines() if "warning" in line]
    assert len(warned) == 1 and warned[0].startswith(f"rcstat: warning: {data}: record 2 skipped: needs ")
    assert warned[0].endswith("tokens; the model allows 512") and "Traceback" not in err
    (skipped,) = json.loads(out)["skipped"]
    assert skipped["record"] == 2 and skipped["reason"].endswith("the model allows 512")
    line = fail([*argv, "--strict"], capsys, alone=False)  # before any work
    assert line.startswith(f"rcstat: error: {data}:2: needs ") and line.endswith("the model allows 512")
    write_jsonl(tmp_path / "d.jsonl", [long])
    assert cli.main(argv) == 2  # nothing left: the warning of the row, then the error
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"rcstat: error: {data}: no usable ") and "record 1: needs " in err[-1]
    assert err[-2].startswith(f"rcstat: warning: {data}: record 1 skipped")


def test_a_timing_past_the_model_length_is_refused_before_the_work(tiny_checkpoint, tmp_path, capsys):
    good, _, argv = BENCHES["decoding"]
    data = write_jsonl(tmp_path / "d.jsonl", [good])
    out = tmp_path / "run"
    argv = [*argv, "--model", tiny_checkpoint, "--data", data, "--output", str(out), "--timing-tokens", "500"]
    line = fail(argv, capsys, alone=False)
    assert "timing 500 tokens after the first sample's prompt (" in line
    assert line.endswith("; the model allows 512 (--timing-tokens)")
    assert not (out / "log.jsonl").exists()


def test_a_context_length_the_file_cannot_fill_is_refused_before_the_model_loads(
    tiny_checkpoint, tmp_path, capsys, monkeypatch
) -> None:
    import rcstat.models.loading as loading

    data = write_jsonl(tmp_path / "d.jsonl", [QUOTESUM_ROW, {**QUOTESUM_ROW, "question": "Who else?"}])
    argv = ["bench", "attribution", "--dataset", "quotesum", "--data", data, "--model", tiny_checkpoint]
    with monkeypatch.context() as patch:
        patch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the model loaded"))
        line = fail([*argv, "--context-tokens", "100000"], capsys)
    assert line.startswith(f"rcstat: error: {data}: its passages fill at most ")
    assert line.endswith("context tokens per example, not 100000 (--context-tokens)")
    assert cli.main([*argv, "--context-tokens", "20", "--format", "json"]) == 0  # within reach: runs
    result = json.loads(capsys.readouterr().out)
    low, high = result["context_tokens_range"]
    assert result["context_tokens"] == 20 and 20 <= low <= high


def test_generate_past_the_model_length_is_refused_before_the_work(tiny_checkpoint, tmp_path, capsys):
    context, out = tmp_path / "c.txt", tmp_path / "g.json"
    context.write_text(FACTS * 2)
    argv = [
        "generate",
        "--context",
        str(context),
        "--query",
        "Repeat it.",
        "--press",
        "none",
        "--model",
        tiny_checkpoint,
    ]
    line = fail(
        [*argv, "--max-new-tokens", "500", "--format", "json", "--output", str(out)], capsys, alone=False
    )
    assert "new tokens need" in line and line.endswith("positions; the model allows 512") and not out.exists()
