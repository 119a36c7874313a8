"""The README's Python examples run as written, in order (on the embedded default model)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.realmodel
def test_readme_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    scores = namespace["scores"]
    assert len(scores) == 30
    n = namespace["n"]
    assert all(s.shape == (1, 9, n - 16) and bool(torch.isfinite(s).all()) for s in scores.values())
    assert "PELICAN" in namespace["answer"].upper()
    assert namespace["ragged_answer"] == namespace["answer"]


def readme_commands() -> list[list[str]]:
    """Every ``rcstat`` command line of the README's console sessions, continuation lines joined."""
    commands = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.removeprefix("$ ")
            if line.startswith(".venv/bin/rcstat "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_readme_sessions_are_valid_commands_on_bundled_files() -> None:
    """What the README shows typed parses, and its input files ship with the repository."""
    from rcstat import cli

    root = README.parent
    commands = readme_commands()
    assert ["demo", "--report", "rcstat-demo"] in commands  # what `make demo` runs
    assert "$(BIN)/rcstat demo --report rcstat-demo" in (root / "Makefile").read_text()
    assert any(c[0] == "attribute" and "html" in c for c in commands)
    parser = cli.build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        for name in ("context", "sources", "data"):
            path = getattr(args, name, None)
            assert path is None or path == "-" or (root / path).is_file(), (argv, path)
    png = root / "docs" / "report.png"
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size < 150_000
    assert "(docs/report.png)" in README.read_text()
