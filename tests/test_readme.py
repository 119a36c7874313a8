"""The README's Python examples run as written, in order (on the embedded default model)."""

from __future__ import annotations

import re
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
