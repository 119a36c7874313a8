"""RCStatPress (SPEC §3): scores against a slow reference, real eviction, masking, thresholds."""

from __future__ import annotations

import pytest
import torch
from kvpress.utils import compute_n_kept
from transformers import DynamicCache

from rcstat.errors import RCStatError
from rcstat.kv import RCStatPress
from rcstat.models.logits import LogitCapture
from tests.conftest import tiny_model
from tests.test_stats import REFERENCES

N, WINDOW, SINKS = 20, 4, 2


class RecordingPress(RCStatPress):
    """Keeps the scores of every layer, for the tests."""

    def score(self, module, *args, **kwargs) -> torch.Tensor:
        scores = super().score(module, *args, **kwargs)
        self.recorded = getattr(self, "recorded", {})
        self.recorded[module.layer_idx] = scores.clone()
        return scores


def prefill(model: torch.nn.Module, ids: torch.Tensor, press: RCStatPress | None) -> DynamicCache:
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        if press is None:
            model(ids, past_key_values=cache)
        else:
            with press(model):
                model(ids, past_key_values=cache)
    return cache


def inputs(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 128, (batch, N), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3", "phi3"])
@pytest.mark.parametrize(
    ("estimator", "reduce"), [("independent", "max"), ("upper", "mean"), ("lower", "max")]
)
def test_scores_equal_a_slow_reference(family: str, estimator: str, reduce: str) -> None:
    model = tiny_model(family)
    ids = inputs()
    press = RecordingPress(
        compression_ratio=0.5, estimator=estimator, window_size=WINDOW, sink_tokens=SINKS, gqa_reduce=reduce
    )
    prefill(model, ids, press)
    window = list(range(N - WINDOW, N))
    full: dict[int, torch.Tensor] = {}
    with LogitCapture(model, window, on_layer=full.__setitem__), torch.no_grad():
        model(ids)
    heads, kv_heads = model.config.num_attention_heads, model.config.num_key_value_heads
    for layer, lg in full.items():
        for b in range(2):
            for g in range(kv_heads):
                for i in range(SINKS, N - WINDOW):
                    per_head = []
                    for h in range(g * heads // kv_heads, (g + 1) * heads // kv_heads):
                        x = lg[b, h, :, i].tolist()
                        y = [float(lg[b, h, r, window[c]]) for r in range(WINDOW) for c in range(r + 1)]
                        per_head.append(REFERENCES[estimator](x, y))
                    want = max(per_head) if reduce == "max" else sum(per_head) / len(per_head)
                    got = float(press.recorded[layer][b, g, i])
                    assert got == pytest.approx(want, abs=1e-4), (layer, b, g, i)
        assert torch.isinf(press.recorded[layer][..., :SINKS]).all()
        assert torch.isinf(press.recorded[layer][..., N - WINDOW :]).all()


def test_uniform_ratio_really_shrinks_the_cache_and_keeps_window_and_sinks() -> None:
    model = tiny_model("llama-gqa")
    ids = inputs()
    full = prefill(model, ids, None)
    press = RCStatPress(compression_ratio=0.5, head_adaptive=False, window_size=WINDOW, sink_tokens=SINKS)
    cache = prefill(model, ids, press)
    n_kept = compute_n_kept(N, 0.5)
    for layer in range(model.config.num_hidden_layers):
        keys, original = cache.layers[layer].keys, full.layers[layer].keys
        assert keys.shape[-2] == n_kept
        torch.testing.assert_close(keys[..., :SINKS, :], original[..., :SINKS, :])
        torch.testing.assert_close(keys[..., -WINDOW:, :], original[..., -WINDOW:, :])
        assert press.kept[layer] == n_kept / N


@pytest.mark.parametrize("floor", [0.0, 0.5])
def test_head_adaptive_ratio_masks_across_heads_with_a_floor(floor: float) -> None:
    model = tiny_model("llama-gqa")
    press = RecordingPress(compression_ratio=0.5, window_size=WINDOW, sink_tokens=SINKS, head_floor=floor)
    prefill(model, inputs(), press)
    n_kept = compute_n_kept(N, 0.5)
    for attn in (layer.self_attn for layer in model.model.layers):
        batch, head, seq = attn.masked_key_indices
        assert len(seq) == 2 * model.config.num_key_value_heads * (N - n_kept)
        assert bool(((seq >= SINKS) & (seq < N - WINDOW)).all())  # never a sink or the window
        assert press.kept[attn.layer_idx] == pytest.approx(n_kept / N)
        scores = press.recorded[attn.layer_idx]
        evicted = torch.zeros_like(scores, dtype=torch.bool)
        evicted[batch, head, seq] = True
        for b in range(2):
            if floor == 0:  # a plain ranking across the heads of the layer
                assert scores[b][evicted[b]].max() <= scores[b][~evicted[b]].min()
            for h in range(model.config.num_key_value_heads):
                assert N - int(evicted[b, h].sum()) >= int(n_kept * floor)


def greedy(model: torch.nn.Module, ids: torch.Tensor, press: RCStatPress | None, steps: int = 6):
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        if press is None:
            out = model(ids, past_key_values=cache)
        else:
            with press(model):
                out = model(ids, past_key_values=cache)
        tokens, logits = [], []
        for _ in range(steps):
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            tokens.append(nxt)
            logits.append(out.logits[:, -1])
            out = model(nxt, past_key_values=cache)
    return torch.cat(tokens, 1), torch.stack(logits, 1)


def test_threshold_minus_infinity_changes_nothing() -> None:
    model = tiny_model("qwen2")
    ids = inputs(seed=3)
    want_tokens, want_logits = greedy(model, ids, None)
    press = RCStatPress(threshold=float("-inf"), window_size=WINDOW)
    got_tokens, got_logits = greedy(model, ids, press)
    assert torch.equal(got_tokens, want_tokens)
    torch.testing.assert_close(got_logits, want_logits)
    assert all(v == 1.0 for v in press.kept.values())


def test_threshold_evicts_exactly_the_low_scores() -> None:
    model = tiny_model("mistral")
    press = RecordingPress(threshold=0.5, window_size=WINDOW, sink_tokens=SINKS)
    prefill(model, inputs(), press)
    for attn in (layer.self_attn for layer in model.model.layers):
        scores = press.recorded[attn.layer_idx]
        evict = scores <= 0.5
        masked = getattr(attn, "masked_key_indices", None)
        got = torch.zeros_like(evict)
        if masked is not None:
            got[masked] = True
        assert torch.equal(got, evict)
        assert press.kept[attn.layer_idx] == pytest.approx(1 - float(evict.float().mean()))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"compression_ratio": 1.0},
        {"estimator": "median"},
        {"window_size": 0},
        {"pooling": 2},
        {"gqa_reduce": "min"},
        {"head_floor": 1.5},
    ],
)
def test_bad_options_are_clear_errors(kwargs: dict) -> None:
    with pytest.raises(RCStatError):
        RCStatPress(**kwargs)


def test_repr_is_the_experiment_record() -> None:
    text = repr(RCStatPress(compression_ratio=0.5, window_size=8))
    assert text.startswith("RCStatPress(compression_ratio=0.5, threshold=None, estimator='independent'")
    assert "kept" not in text
