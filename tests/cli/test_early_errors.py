"""Errors that name the fix, and input checked before any model loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rcstat import cli
from rcstat.cli import attribute, bench_kv, cite, compress, generate


def error_line(argv: list[str], capsys) -> str:
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:  # argparse's usage errors
        code = exit_info.code
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def no_model(monkeypatch) -> None:
    """Loading a model fails the test: these errors come first."""

    def load(*_args, **_kwargs):
        raise AssertionError("the model was loaded")

    for module in (attribute, bench_kv, cite, compress, generate):
        monkeypatch.setattr(module, "load", load)


@pytest.fixture
def context(tmp_path) -> str:
    path = tmp_path / "context.txt"
    path.write_text("Curie won two Nobel Prizes.")
    return str(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compress", "--press", "snapkvv"], "unknown press snapkvv (did you mean snapkv?); choose from"),
        (["compress", "--press", "SnapKV"], "unknown press SnapKV (did you mean snapkv?); choose from"),
        (["generate", "--press", "knrom"], "unknown press knrom (did you mean knorm?); choose from"),
        (["compress", "--query", ""], "argument --query: expected some text, got ''"),
        (["generate", "--query", "  "], "argument --query: expected some text, got '  '"),
        (["cite", "--query", ""], "argument --query: expected some text, got ''"),
        (["attribute", "--query", ""], "argument --query: expected some text, got ''"),
    ],
)
def test_checked_before_the_model_loads(argv, message, context, no_model, capsys) -> None:
    given = argv if "--query" in argv else [*argv, "--query", "Who won?"]
    line = error_line([*given, "--context", context], capsys)
    assert line.startswith("rcstat") and ": error: " in line and message in line


def test_bench_press_names_are_checked_before_the_model_loads(no_model, capsys) -> None:
    line = error_line(["bench", "kv", "--task", "needle", "--press", "rcstat,SnapKV"], capsys)
    assert "unknown press SnapKV (did you mean snapkv?)" in line and line.endswith("(--press)")


def test_a_bad_press_name_is_refused_without_importing_the_model_stack(context) -> None:
    probe = (
        "import sys\nfrom rcstat import cli\n"
        f"code = cli.main(['compress', '--context', {context!r}, '--query', 'q', '--press', 'snapkvv'])\n"
        "print(code, sorted(m for m in ('torch', 'transformers', 'kvpress') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "2 []", done.stdout + done.stderr
    assert "did you mean snapkv?" in done.stderr


@pytest.mark.parametrize("command", ["attribute", "cite", "compress", "generate"])
def test_a_sentence_given_as_context_is_told_what_context_takes(command, no_model, capsys) -> None:
    sentence = "Curie won two Nobel Prizes"
    line = error_line([command, "--context", sentence, "--query", "Who won?"], capsys)
    assert line == (
        f"rcstat: error: {sentence}: no such file; --context takes a file path, or - for standard input, "
        "not the text itself"
    )


def test_a_missing_context_file_is_told_about_standard_input(tmp_path, no_model, capsys) -> None:
    missing = tmp_path / "notes.txt"
    line = error_line(["compress", "--context", str(missing), "--query", "q"], capsys)
    assert line.endswith(f"{missing}: no such file; --context takes a file path, or - for standard input")


@pytest.mark.parametrize("command", ["attribute", "cite"])
def test_plain_text_given_as_sources_is_sent_to_context(command, tmp_path, no_model, capsys) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Curie won two Nobel Prizes.\nShe was born in Warsaw.\n")
    line = error_line([command, "--sources", str(path), "--query", "Who won?"], capsys)
    assert line.startswith(f"rcstat: error: {path}:1: malformed JSON")
    assert line.endswith('--sources takes JSONL, one {"text": …} per line (plain text goes to --context)')
