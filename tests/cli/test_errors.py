"""Bad input to the commands: one line on stderr, exit code 2, no traceback, no output file.

Input files are read before any model is loaded, so these need no model: ``--model`` names a
missing directory, and a test would see that other error if a file were read too late.
"""

from __future__ import annotations

import io
import json
import sys

import pytest

from rcstat import cli
from rcstat.cli.progress import phases, progress

QUERY = ["--query", "Who won?"]


def fail(argv: list[str], capsys, stdin: bytes | None = None, monkeypatch=None, alone: bool = True) -> str:
    """Run the command expecting a one-line error; return that line.

    ``alone``: nothing else on stderr; otherwise only progress lines (``loading …``) precede it.
    """
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert "Traceback" not in err and ": error: " in lines[-1], err
    assert len(lines) == 1 if alone else all(line.endswith("…") for line in lines[:-1]), err
    return lines[-1]


FILES = [
    (None, "no such file"),
    (b"", "the file is empty"),
    (b" \n\n", "the file is empty"),
    (b"PK\x03\x04\x00\x00binary", "looks like a binary file"),
    ("Curie won.".encode("utf-16"), "UTF-16 text, expected UTF-8"),
    (b"Caf\xe9 au lait.", "not UTF-8 text (byte 3)"),
]


@pytest.mark.parametrize("command", ["attribute", "compress"])
@pytest.mark.parametrize(("content", "message"), FILES)
def test_bad_context_files(command, content, message, tmp_path, capsys) -> None:
    path, target = tmp_path / "context.txt", tmp_path / "out.html"
    if content is not None:
        path.write_bytes(content)
    argv = [command, "--context", str(path), *QUERY, "--model", str(tmp_path / "no-model")]
    line = fail([*argv, "--format", "html", "--output", str(target)], capsys)
    assert line.startswith(f"rcstat: error: {path}: {message}")
    assert not target.exists() and list(tmp_path.glob(".out.html*")) == []


@pytest.mark.parametrize("command", ["attribute", "compress"])
def test_output_that_cannot_be_a_file_fails_first(command, tmp_path, capsys) -> None:
    context = tmp_path / "context.txt"
    context.write_text("Curie won two Nobel Prizes.")
    argv = [command, "--context", str(context), *QUERY, "--model", str(tmp_path / "no-model")]
    line = fail([*argv, "--output", str(tmp_path)], capsys)
    assert line == f"rcstat: error: {tmp_path}: is a directory, expected a file name (--output)"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"text": "Curie won."}', '{"text": "Rhine"'], ":2: malformed JSON"),
        (['{"text": "a"}', "", "[1, 2]"], ":3: expected a JSON object, got list"),
        (['{"body": "a"}'], ":1: missing field `text`"),
        (['{"text": 3}'], ":1: `text`: input should be a valid string, got 3"),
        (['{"text": "a"}', '{"text": "  "}'], ":2: `text`: must not be empty, got '  '"),
    ],
)
def test_malformed_jsonl_names_the_line(lines, message, tmp_path, capsys, monkeypatch) -> None:
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "chunks.jsonl"
    path.write_bytes(data)
    argv = ["attribute", "--sources", str(path), *QUERY, "--model", str(tmp_path / "no-model")]
    assert fail(argv, capsys).startswith(f"rcstat: error: {path}{message}")
    argv[2] = "-"  # the same from standard input
    line = fail(argv, capsys, stdin=data, monkeypatch=monkeypatch)
    assert line.startswith(f"rcstat: error: standard input{message}")


def test_empty_stdin_is_named(tmp_path, capsys, monkeypatch) -> None:
    argv = ["compress", "--context", "-", *QUERY, "--model", str(tmp_path / "no-model")]
    assert fail(argv, capsys, stdin=b"", monkeypatch=monkeypatch) == (
        "rcstat: error: standard input: the file is empty"
    )


@pytest.mark.parametrize(
    "command", ["bench kv", "bench attribution --dataset verigran", "heads calibrate --dataset quotesum"]
)
def test_data_files_of_the_benchmarks(command, tmp_path, capsys) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"context": "c", "question": "q", "answers": ["a"]}\n{oops}\n')
    argv = [*command.split(), "--data", str(path), "--model", str(tmp_path / "no-model")]
    if command.startswith("heads"):
        argv += ["--output", str(tmp_path / "heads.json")]
    line = fail(argv, capsys)
    assert line.startswith(f"rcstat: error: {path}:") and (
        "malformed JSON" in line or "missing field" in line
    )
    assert not (tmp_path / "heads.json").exists()


def test_bad_head_profile(tmp_path, capsys) -> None:
    context = tmp_path / "context.txt"
    context.write_text("Curie won two Nobel Prizes.")
    argv = ["attribute", "--context", str(context), *QUERY, "--model", str(tmp_path / "no-model")]
    profile = tmp_path / "heads.json"
    assert fail([*argv, "--profile", str(profile)], capsys) == f"rcstat: error: {profile}: no such file"
    profile.write_bytes(b'{"model": "caf\xe9"}')
    assert "not UTF-8" in fail([*argv, "--profile", str(profile)], capsys)
    profile.write_text(json.dumps({"model": "m"}))
    assert "not a head profile" in fail([*argv, "--profile", str(profile)], capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compress", "--press", "h2o"], "unknown press h2o; choose from none, rcstat"),
        (
            ["compress", "--press", "pyramidkv", "--threshold", "1"],
            "press pyramidkv has no score to threshold",
        ),
        (["attribute", "--model", "/no/such/model"], "model path '/no/such/model' does not exist"),
        (["compress", "--model", "no-such-org/no-such-model"], "HF_HUB_OFFLINE is set"),
    ],
)
def test_unknown_press_or_model(argv, message, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network: the hub id fails at once
    context = tmp_path / "context.txt"
    context.write_text("Curie won two Nobel Prizes.")
    target = tmp_path / "out.json"
    line = fail([*argv, "--context", str(context), *QUERY, "--output", str(target)], capsys, alone=False)
    assert line.startswith("rcstat: error: ") and message in line
    assert not target.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["attribute", "--context", "c.txt", "--query", "q", "--granularity", "para"],
            "invalid choice: 'para'",
        ),
        (["attribute", "--context", "c.txt", "--query", "q", "--span", "1-4"], "expected START:END"),
        (["attribute", "--query", "q"], "one of the arguments --context --sources --data is required"),
        (["compress", "--context", "c.txt", "--query", "q", "--compression-ratio", "1.5"], "in [0, 1)"),
        (["compress", "--context", "c.txt", "--query", "q", "--format", "pdf"], "invalid choice: 'pdf'"),
        (["compress", "--context", "c.txt", "--query", "q", "--max-new-tokens", "0"], "positive integer"),
        (["bench", "kv", "--data", "d.jsonl", "--task", "needle"], "not allowed with argument"),
        (["bench", "magic"], "invalid choice: 'magic'"),
        (["attribute", "--context", "c.txt", "--query", "q", "--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_usage_errors_are_one_line(argv, message, capsys) -> None:
    line = fail(argv, capsys)
    assert line.startswith("rcstat") and ": error: " in line and message in line
    assert line.endswith("--help)")  # where to look instead of the usage dump


def test_every_command_has_help_with_examples(capsys) -> None:
    commands = [
        [],
        ["model"],
        ["model", "prepare"],
        ["demo"],
        ["bench"],
        ["bench", "kv"],
        ["bench", "attribution"],
        ["attribute"],
        ["compress"],
        ["heads"],
        ["heads", "calibrate"],
    ]
    for command in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([*command, "--help"])
        out = capsys.readouterr().out
        assert exit_info.value.code == 0 and "examples:\n  rcstat " in out, command
        name = command[-1] if command else "attribute"
        assert f"rcstat {' '.join(command)}".strip() in out and name in out


def test_progress_is_plain_lines_unless_stderr_is_a_terminal(monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, bar in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        with phases(2) as phase:
            phase("loading")
            phase("decoding")
        text = stream.getvalue()
        assert "loading" in text and "decoding" in text
        assert ("\r" in text and "2/2" in text) is bar
    # counted progress off a terminal: a plain line at most every `every` seconds, and the last one
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    update = progress(3, "samples", every=3600)
    for done in (1, 2, 3):
        update(done, 3)
    assert plain.getvalue().startswith("3/3 samples (") and plain.getvalue().count("\n") == 1
    assert "\r" not in plain.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["attribute", "--context", "c.txt", "--query", "q"],
        ["bench", "attribution", "--dataset", "quotesum", "--data", "d.jsonl"],
    ],
)
def test_attribution_commands_default_to_the_attributors_scoring(argv) -> None:
    """The CLI's defaults are Scoring()'s, so a default run is the run the benchmark chose."""
    from rcstat.attribution.scoring import Scoring

    args = cli.build_parser().parse_args(argv)
    assert Scoring(args.estimator, args.top_k, args.y, args.pool, args.normalise) == Scoring()
