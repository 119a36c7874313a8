"""The README's Python examples each run on their own (on the embedded default model)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_blocks() -> list[tuple[str, str]]:
    """``(id, code)`` of every ``python`` block, the id its index and the heading above it."""
    blocks, heading = [], "top"
    for part in re.split(r"(```python\n.*?```)", README.read_text(), flags=re.S):
        if part.startswith("```python\n"):
            slug = "-".join(re.findall(r"[a-z0-9]+", heading.lower())[:3])
            blocks.append((f"{len(blocks)}-{slug}", part.removeprefix("```python\n").removesuffix("```")))
        else:
            heading = next((h for h in reversed(re.findall(r"^#+ (.+)$", part, flags=re.M))), heading)
    return blocks


BLOCKS = readme_python_blocks()


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2 and BLOCKS[0][0] == "0-quick-start"
    assert len(BLOCKS[0][1].splitlines()) <= 20, "the quick start stays short"


@pytest.mark.realmodel
@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_readme_example_runs_on_its_own(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each block in a fresh namespace, from the repository root (as a user pastes it)."""
    monkeypatch.chdir(README.parent)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(code, "README.md", "exec"), namespace)
    if "kv" in namespace:  # the quick start
        assert "PELICAN" in namespace["kv"]["answer"].upper()
    if "scores" in namespace:
        scores, n = namespace["scores"], namespace["n"]
        assert len(scores) == 30
        assert all(s.shape == (1, 9, n - 16) and bool(torch.isfinite(s).all()) for s in scores.values())
    for name in ("answer", "ragged_answer"):
        if name in namespace:
            assert "PELICAN" in namespace[name].upper()


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
