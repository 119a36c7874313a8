"""Live presses read at many ratios from one run equal one live run per ratio (KVzip, RC-zip)."""

from __future__ import annotations

import pytest
import torch

from rcstat.evaluation.kv.live import LiveRuns
from rcstat.kv.replay import compress_live
from rcstat.presses import make_press

pytestmark = pytest.mark.realmodel


@pytest.mark.parametrize("name", ["kvzip", "rcstat-zip"])
def test_one_live_run_serves_every_ratio(name: str) -> None:
    from rcstat.models import load_model

    model, tokenizer = load_model()
    text = " ".join(
        f"Room {i} of the museum shows a {animal}." for i, animal in enumerate(["owl", "fox"] * 10)
    )
    context_ids = tokenizer(text, return_tensors="pt").input_ids
    runs = LiveRuns(model, context_ids)
    for ratio in (0.5, 0.8):
        shared, _ = runs.compress(make_press(name, ratio))
        alone = compress_live(model, context_ids, make_press(name, ratio))
        for a, b in zip(shared.masks, alone.masks, strict=True):
            assert torch.equal(torch.stack(a), torch.stack(b))
        assert shared.kept_fraction == pytest.approx(1 - ratio, abs=0.01)
    assert len(runs.runs) == 1
