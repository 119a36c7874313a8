"""The logit engine (docs/method.md §1) against each model's own eager pre-softmax logits."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from transformers import DynamicCache

from rcstat.errors import RCStatError
from rcstat.models.logits import LogitCapture, attention_layers
from tests.helpers import tiny_model


def eager_logits(model: torch.nn.Module, input_ids: torch.Tensor) -> list[torch.Tensor]:
    """The inputs of the eager softmax, layer by layer: the model's own logits plus its mask."""
    seen: list[torch.Tensor] = []
    real_softmax = torch.nn.functional.softmax

    def spy(t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if t.dim() == 4:
            seen.append(t.detach().clone())
        return real_softmax(t, *args, **kwargs)

    model.set_attn_implementation("eager")
    with mock.patch("torch.nn.functional.softmax", spy), torch.no_grad():
        model(input_ids)
    model.set_attn_implementation("sdpa")
    return seen


def allowed(model: torch.nn.Module, layer_index: int, n: int) -> torch.Tensor:
    """Where the eager mask is zero: causal, and inside the window for sliding layers."""
    i = torch.arange(n)
    mask = i[None, :] <= i[:, None]
    window = getattr(attention_layers(model)[layer_index].module, "sliding_window", None)
    if window:
        mask &= (i[:, None] - i[None, :]) < window
    return mask


@pytest.mark.parametrize("batch", [1, 2])
def test_logits_equal_eager_pre_softmax_logits(family: str, batch: int) -> None:
    model = tiny_model(family)
    n = 12
    input_ids = torch.randint(3, 128, (batch, n), generator=torch.Generator().manual_seed(0))
    reference = eager_logits(model, input_ids)
    assert len(reference) == len(attention_layers(model))
    assert model.config._attn_implementation == "sdpa"

    rows = list(range(n))
    cache = DynamicCache(config=model.config)
    with LogitCapture(model, rows) as capture, torch.no_grad():
        model(input_ids, past_key_values=cache)
    streamed: dict[int, torch.Tensor] = {}
    with LogitCapture(model, rows, on_layer=lambda i, t: streamed.__setitem__(i, t)), torch.no_grad():
        model(input_ids)

    for layer_index, want in enumerate(reference):
        got = capture.logits(layer_index, cache)
        ok = allowed(model, layer_index, n)
        assert got.shape == (batch, model.config.num_attention_heads, n, n)
        assert (got - want).abs()[..., ok].max() <= 1e-4, f"layer {layer_index}"
        assert (streamed[layer_index] - want).abs()[..., ok].max() <= 1e-4


def test_window_rows_and_negative_indices() -> None:
    model = tiny_model("llama-gqa")
    input_ids = torch.randint(3, 128, (1, 20), generator=torch.Generator().manual_seed(1))
    full, window = {}, {}
    with LogitCapture(model, range(20), on_layer=full.__setitem__), torch.no_grad():
        model(input_ids)
    with LogitCapture(model, [-4, -3, -2, -1], on_layer=window.__setitem__, layers=[1]), torch.no_grad():
        model(input_ids)
    assert sorted(window) == [1]
    torch.testing.assert_close(window[1], full[1][:, :, -4:])


def test_decoding_step_uses_the_cached_keys() -> None:
    model = tiny_model("qwen3")
    ids = torch.randint(3, 128, (1, 10), generator=torch.Generator().manual_seed(2))
    full = {}
    with LogitCapture(model, [9], on_layer=full.__setitem__), torch.no_grad():
        model(ids)
    cache = DynamicCache(config=model.config)
    step = {}
    with torch.no_grad():
        model(ids[:, :9], past_key_values=cache)
        with LogitCapture(model, [0], on_layer=step.__setitem__):
            model(ids[:, 9:], past_key_values=cache)
    for i in full:
        torch.testing.assert_close(step[i], full[i], atol=1e-5, rtol=1e-5)


def test_unsupported_model_gets_a_clear_error() -> None:
    class NoAttention(torch.nn.Module):
        def get_decoder(self) -> torch.nn.Module:
            return torch.nn.Module()

    with pytest.raises(RCStatError, match="not supported"):
        attention_layers(NoAttention())

    model = tiny_model("llama-gqa")
    del model.model.layers[0].self_attn.q_proj
    with pytest.raises(RCStatError, match="lacks q_proj/k_proj or qkv_proj"):
        attention_layers(model)


def test_after_pass_needs_the_cache() -> None:
    model = tiny_model("llama-gqa")
    cache = DynamicCache(config=model.config)
    with LogitCapture(model, [0]) as capture, torch.no_grad():
        model(torch.tensor([[5, 6, 7]]), past_key_values=cache)
    with pytest.raises(RCStatError, match="pass the forward's cache"):
        capture.logits(0)
    with pytest.raises(RCStatError, match="no queries were captured"):
        capture.logits(99, cache)


def test_engine_inside_a_kvpress_press() -> None:
    """A kvpress ScorerPress that scores keys by expected RC with the engine, as RCStatPress does."""
    from dataclasses import dataclass

    from kvpress import ScorerPress

    from rcstat import stats
    from rcstat.models.logits import attention_layers, layer_queries, logits

    window = 4

    @dataclass
    class TinyRCPress(ScorerPress):
        compression_ratio: float = 0.5

        def post_init_from_model(self, model: torch.nn.Module) -> None:
            self.layers = {la.index: la for la in attention_layers(model)}

        def score(self, module, hidden_states, keys, values, attentions, kwargs) -> torch.Tensor:
            layer = self.layers[module.layer_idx]
            q = layer_queries(layer, hidden_states, kwargs["position_embeddings"], slice(-window, None))
            lg = logits(layer, q, keys)  # (batch, heads, window, keys)
            n = keys.shape[-2]
            rows = list(range(n - window, n))
            y = stats.self_samples(lg, rows, range(n), rows, rows)
            rc = stats.expected_rc(lg.transpose(-1, -2), y.unsqueeze(-2))  # (batch, heads, keys)
            b, h_kv = keys.shape[:2]
            rc = rc.reshape(b, h_kv, -1, n).amax(2)  # GQA: max over the heads of a group
            rc[..., -window:] = rc.max() + 1  # keep the window
            self.last_scores = rc
            return rc

    model = tiny_model("llama-gqa")
    ids = torch.randint(3, 128, (2, 16), generator=torch.Generator().manual_seed(5))
    press = TinyRCPress()
    cache = DynamicCache(config=model.config)
    with press(model), torch.no_grad():
        model(ids, past_key_values=cache)
    assert cache.layers[0].keys.shape[-2] == 8  # half of the 16 keys evicted, for real

    captured = {}
    with LogitCapture(model, range(12, 16), on_layer=captured.__setitem__), torch.no_grad():
        model(ids)
    lg = captured[model.config.num_hidden_layers - 1]
    y = stats.self_samples(lg, range(12, 16), range(16), range(12, 16), range(12, 16))
    want = stats.expected_rc(lg.transpose(-1, -2), y.unsqueeze(-2)).reshape(2, 2, 2, 16).amax(2)
    torch.testing.assert_close(press.last_scores[..., :-window], want[..., :-window])
