"""RC's variants for issue 26: spans around peaks (SpanPress) and the window's or the future queries' RC
(FutureRCPress), against brute-force references on a tiny model."""

from __future__ import annotations

import pytest
import torch
from kvpress import ScorerPress

from rcstat.errors import RCStatError
from rcstat.kv.replay import record_prefill
from rcstat.models.logits import attach_rotary, attention_layer, layer_queries, logits
from rcstat.presses.cross_layer_press import COMBINE
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


def test_above_null_subtracts_each_heads_null_level_before_the_gqa_reduction() -> None:
    """The null of a head is E[(Y − Y')^+] over pairs of its window samples (brute force here)."""
    model = tiny_model("llama-mha")  # one query head per KV head: no reduction mixes the heads
    ids = torch.randint(0, model.config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(4))
    layer = record_prefill(model, ids).layers[1]
    args = (layer.module, layer.hidden_states, layer.keys, layer.values, None)
    kwargs = {"position_embeddings": layer.position_embeddings}
    plain, relative = RCStatPress(window_size=6), RCStatPress(window_size=6, above_null=True)
    with torch.no_grad():
        a, b = plain.score(*args, kwargs), relative.score(*args, kwargs)
        lg = logits(attention_layer(layer.module), _queries(layer, 6), layer.keys)
    for h in range(a.shape[1]):
        y = torch.cat([lg[0, h, r, 34 : 35 + r] for r in range(6)])  # the window's causal logits
        null = (y[:, None] - y[None, :]).clamp_min(0).mean()
        torch.testing.assert_close(a[0, h, 4:34] - b[0, h, 4:34], null.expand(30), atol=1e-5, rtol=1e-5)
    assert torch.isinf(b[..., :4]).all() and torch.isinf(b[..., 34:]).all()


def _queries(layer, w: int) -> torch.Tensor:
    engine = attention_layer(layer.module)
    cos, sin = layer.position_embeddings
    return layer_queries(engine, layer.hidden_states[:, -w:], (cos[:, -w:], sin[:, -w:]), slice(None))


def test_fill_ranks_the_first_scorers_signal_first_then_the_second_by_rank() -> None:
    first = torch.tensor([[0.5, -1.0, 2.0, float("inf"), -0.2, 0.0]])
    second = torch.tensor([[0.0, 0.9, 0.1, 0.5, 0.3, 0.7]])  # percentiles within each head
    combined = COMBINE["fill"][1](first, second.masked_fill(torch.isposinf(first), float("inf")))
    order = combined.argsort(descending=True)[0].tolist()
    assert order == [3, 2, 0, 1, 5, 4]  # inf, then 2.0, 0.5 (above 0), then by the second: 0.9, 0.7, 0.3
