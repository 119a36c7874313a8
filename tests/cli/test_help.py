"""The command line answers ``--help`` at once: building its parsers imports none of the model stack."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from rcstat import cli
from rcstat.cli.common import HelpFormatter

COMMANDS = [
    [],
    ["model", "prepare"],
    ["demo"],
    ["attribute"],
    ["cite"],
    ["compress"],
    ["generate"],
    ["heads", "calibrate"],
    ["heads", "plot"],
    ["heads", "histogram"],
    ["heads", "at2"],
    ["bench", "kv"],
    ["bench", "attribution"],
    ["bench", "decoding"],
    ["bench", "citations"],
    ["data", "fetch"],
]
PROBE = """
import contextlib, io, sys
from rcstat import cli
for argv in {commands!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        cli.main([*argv, "--help"])
print(sorted(m for m in ("torch", "transformers", "kvpress", "numpy", "pandas") if m in sys.modules))
"""


def test_help_of_every_command_imports_nothing_heavy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(commands=COMMANDS)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def help_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse's line breaks undone


def options(parser: argparse.ArgumentParser):
    """``(command, action)`` for every option of every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from options(sub)
        elif action.option_strings and action.dest not in ("help", "version"):
            yield parser.prog, action


def test_every_option_has_help_and_shows_its_default(capsys) -> None:
    formatter = HelpFormatter("rcstat")
    for prog, action in options(cli.build_parser()):
        assert action.help, (prog, action.option_strings)
        shown = " ".join(formatter._format_action(action).split())
        assert "default: None" not in shown and "default: False" not in shown, (prog, shown)
        has_default = action.default is not None and action.default is not False and action.default != []
        assert shown.count("(default: ") in ((1,) if has_default else (0, 1)), (prog, shown)
    for argv in COMMANDS:
        assert "%%" not in help_of(argv, capsys), argv


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compress"], "share of the cache to evict, in [0, 1) (default: 0.5)"),
        (["compress"], "--press PRESS one of: none, rcstat,"),
        (["generate"], "generated tokens between compressions (default: "),
        (["bench", "kv"], "built-in: context lengths, cycled (default: 1024)"),
        (["bench", "kv"], "with 95% Wilson intervals"),
        (["cite"], "--query QUERY the question the response answers"),
        (["compress"], "--query QUERY the question answered from the compressed cache"),
        (["generate"], "--query QUERY the prompt after the context"),
    ],
)
def test_help_shows_defaults_and_queries(argv, expected, capsys) -> None:
    assert expected in help_of(argv, capsys)


def test_format_has_one_vocabulary_and_text_is_kept(capsys) -> None:
    parser = cli.build_parser()
    formats = {prog: action.choices for prog, action in options(parser) if action.dest == "format"}
    assert all(choices[:2] == ("table", "json") for choices in formats.values()), formats
    for command in (["cite", "--context", "c.txt"], ["generate", "--context", "c.txt"], ["bench", "kv"]):
        extra = ["--task", "needle"] if command[0] == "bench" else ["--query", "q"]
        assert parser.parse_args([*command, *extra, "--format", "text"]).format == "table"


def test_version_comes_from_the_package_metadata(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"rcstat {version('rcstat')}"


def test_an_unknown_flag_points_to_the_commands_help(capsys) -> None:
    for argv, prog in [
        (["compress", "--context", "c.txt", "--query", "q", "--colour"], "rcstat compress"),
        (["bench", "kv", "--task", "needle", "--colour"], "rcstat bench kv"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and err == (
            f"{prog}: error: unrecognized arguments: --colour (see {prog} --help)"
        )
