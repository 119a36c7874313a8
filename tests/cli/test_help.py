"""The command line answers ``--help`` at once: building its parsers imports none of the model stack."""

from __future__ import annotations

import subprocess
import sys

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
