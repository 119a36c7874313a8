"""RC's variants for issue 26: spans around peaks (SpanPress) and the window's or the future queries' RC
(FutureRCPress), against brute-force references on a tiny model."""

from __future__ import annotations

import pytest
import torch
from kvpress import ScorerPress

from rcstat.errors import RCStatError
from rcstat.kv.replay import record_prefill
from rcstat.models.logits import attach_rotary
from rcstat.presses.future_rc_press import FutureRCPress
from rcstat.presses.gaussian_press import GaussianRCPress
from rcstat.presses.rcstat_press import RCStatPress
from rcstat.presses.span_press import SpanPress
from tests.helpers import tiny_model


class Fixed(ScorerPress):
    """Scores given in advance."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__(compression_ratio=0.0)
        self.scores = scores

    def score(self, module, hidden_states, keys, values, attentions, kwargs) -> torch.Tensor:
        return self.scores


def _span(scores: torch.Tensor, radius: int) -> torch.Tensor:
    return SpanPress(press=Fixed(scores), radius=radius).score(None, None, None, None, None, {})


def test_span_gives_each_key_the_best_score_within_its_radius() -> None:
    scores = torch.tensor([[[float("inf"), 0.0, 0.1, 5.0, 0.2, 0.0, 0.3, 0.0, float("inf")]]])
    got = _span(scores, 1)
    expected = torch.tensor([[[float("inf"), 0.1, 5.0, 5.0, 5.0, 0.3, 0.3, 0.3, float("inf")]]])
    assert torch.equal(got, expected)  # +inf (sinks, window) kept and not spread to neighbours
    assert torch.equal(_span(scores, 0), scores)


def test_span_matches_a_brute_force_window_max() -> None:
    scores = torch.randn(2, 3, 30)
    scores[..., :2] = float("inf")
    got = _span(scores, 3)
    for b in range(2):
        for h in range(3):
            for i in range(2, 30):
                finite = [scores[b, h, j] for j in range(max(0, i - 3), min(30, i + 4)) if j >= 2]
                assert got[b, h, i] == max(finite)


def test_span_needs_a_scorer() -> None:
    with pytest.raises(RCStatError, match="ScorerPress"):
        SpanPress(press=None)
    with pytest.raises(RCStatError, match="radius"):
        SpanPress(press=RCStatPress(), radius=-1)


@pytest.mark.parametrize("family", ["llama-gqa", "gemma3-gqa"])
def test_future_rc_is_the_larger_of_window_and_gaussian_rc(family: str) -> None:
    model = tiny_model(family)
    ids = torch.randint(0, model.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(2))
    record = record_prefill(model, ids)
    attach_rotary(model, [la.module for la in record.layers])  # what replay does for ExpectedAttention
    layer = next(la for la in record.layers if not getattr(la.module, "is_sliding", False))
    args = (layer.module, layer.hidden_states, layer.keys, layer.values, None)
    kwargs = {"position_embeddings": layer.position_embeddings, "cache_position": layer.cache_position}
    presses = [p(window_size=8) for p in (RCStatPress, GaussianRCPress, FutureRCPress)]
    for press in presses:
        press.post_init_from_model(model)
    with torch.no_grad():
        window, gauss, both = (p.score(*args, kwargs) for p in presses)
    assert torch.allclose(both, torch.maximum(window, gauss))
    assert bool((both[..., 4:-8] > window[..., 4:-8]).any())  # the Gaussian term speaks somewhere
    assert torch.isinf(both[..., :4]).all() and torch.isinf(both[..., -8:]).all()


def test_span_press_compresses_alone_to_its_ratio() -> None:
    model = tiny_model("llama-gqa")
    ids = torch.randint(0, model.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(3))
    layer = record_prefill(model, ids).layers[0]
    press = SpanPress(compression_ratio=0.5, press=RCStatPress(window_size=8))
    press.post_init_from_model(model)
    kwargs = {"position_embeddings": layer.position_embeddings, "cache_position": layer.cache_position}
    with torch.no_grad():
        keys, _ = press.compress(layer.module, layer.hidden_states, layer.keys, layer.values, None, kwargs)
    assert keys.shape[-2] == 20
