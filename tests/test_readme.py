"""The README's library example runs as written (on the embedded default model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.realmodel
def test_readme_library_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    scores = namespace["scores"]
    assert len(scores) == 30
    n = namespace["n"]
    assert all(s.shape == (1, 9, n - 16) and bool(torch.isfinite(s).all()) for s in scores.values())
