"""FillPress (RC's capped signal first, a second scorer's percentile for the rest, per head) against a
brute-force keep set, and AutoRCPress's rule read from the model's structure."""

from __future__ import annotations

import pytest
import torch
from kvpress import ScorerPress
from kvpress.utils import compute_n_kept

from rcstat.errors import RCStatError
from rcstat.kv.replay import record_prefill, replay
from rcstat.models.logits import is_sliding
from rcstat.presses import AutoRCPress, CrossLayerPress, FillPress, make_press, rc_press
from rcstat.presses.auto_press import MIN_KV_HEADS, compressed_kv_heads, recipe
from tests.core.test_presses import inputs, masked, prefill
from tests.helpers import COMMON, tiny_model


class Fixed(ScorerPress):
    """A scorer that returns given scores."""

    def __init__(self, scores: torch.Tensor) -> None:
        self.compression_ratio, self.scores = 0.0, scores

    def score(self, *args, **kwargs) -> torch.Tensor:
        return self.scores


def brute_force_keep(first: torch.Tensor, second: torch.Tensor, kept: int, cap: float) -> set[int]:
    """One head: the +inf entries, then at most ``int(kept · cap)`` positive entries by ``first``, then
    the rest by ``second``, until ``kept`` entries."""
    n = first.numel()
    order = [i for i in range(n) if first[i] == float("inf")]
    signal = sorted((i for i in range(n) if 0 < first[i] < float("inf")), key=lambda i: -first[i])
    order += signal[: int(kept * cap)]
    order += sorted((i for i in range(n) if i not in order), key=lambda i: -second[i])
    return set(order[:kept])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("ratio", "cap"), [(0.25, 0.5), (0.5, 0.5), (0.75, 0.5), (0.9, 0.5), (0.75, 1.0), (0.5, 0.0)]
)
def test_fill_keeps_the_capped_signal_then_the_seconds_best(seed: int, ratio: float, cap: float) -> None:
    g = torch.Generator().manual_seed(seed)
    b, h, n = 2, 3, 100
    first = torch.randn(b, h, n, generator=g) + 0.3 * seed - 0.5  # from little signal to much
    first[..., :2] = first[..., -4:] = float("inf")  # sinks and window
    second = torch.rand(b, h, n, generator=g)
    press = FillPress(ratio, press=Fixed(first), also=Fixed(second), cap=cap)
    scores = press.score(None, None, torch.zeros(b, h, n, 8), None, None, {})
    kept = compute_n_kept(n, ratio)
    for i in range(b):
        for j in range(h):
            got = set(scores[i, j].topk(kept).indices.tolist())
            assert got == brute_force_keep(first[i, j], second[i, j], kept, cap)


def test_fill_checks_its_options() -> None:
    with pytest.raises(RCStatError, match="cap"):
        FillPress(0.5, cap=1.5)
    with pytest.raises(RCStatError, match="ScorerPress"):
        FillPress(0.5, also=object())


def _llama(layers: int, kv_heads: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        **{**COMMON, "num_hidden_layers": layers}, num_attention_heads=4, num_key_value_heads=kv_heads
    )
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize(
    ("model", "heads", "recipe"),
    [
        (lambda: _llama(3, 2), 6, FillPress),
        (lambda: _llama(4, 4), 16, CrossLayerPress),
        (lambda: tiny_model("gemma3-gqa"), 1, FillPress),  # one global layer of three, one KV head
        (lambda: tiny_model("gemma3-mha"), 4, FillPress),
    ],
)
def test_the_default_recipe_is_read_from_the_compressed_layers_kv_heads(
    model, heads: int, recipe: type
) -> None:
    model = model()
    assert compressed_kv_heads(model) == heads
    press = rc_press(0.5, window_size=4)
    assert isinstance(press, AutoRCPress)
    prefill(model, inputs(batch=1, n=40), press)
    assert type(press.chosen) is recipe
    assert (heads >= MIN_KV_HEADS) == (recipe is CrossLayerPress)


@pytest.mark.parametrize(
    ("family", "min_kv_heads"), [("llama-gqa", 16), ("llama-gqa", 1), ("gemma3-gqa", 16)]
)
def test_the_default_keeps_what_its_recipe_keeps_live_and_replayed(family: str, min_kv_heads: int) -> None:
    """The same cache as the chosen recipe run alone, in the forward pass and replayed; Gemma 3's
    sliding-window layers are left whole."""
    model = tiny_model(family)
    context = inputs(batch=1, n=40, seed=3)
    make = lambda: AutoRCPress(0.6, min_kv_heads=min_kv_heads, scorer_options={"window_size": 4})  # noqa: E731
    got = prefill(model, context, make())
    alone = prefill(model, context, recipe(compressed_kv_heads(model), 0.6, min_kv_heads, window_size=4))
    full = prefill(model, context, None)
    replayed = replay(record_prefill(model, context), make()).cache
    for i, attn in enumerate(block.self_attn for block in model.model.layers):
        want = full if is_sliding(attn) else alone
        torch.testing.assert_close(got.layers[i].keys, want.layers[i].keys)
        torch.testing.assert_close(replayed.layers[i].keys, want.layers[i].keys)
    for i, (a, b) in enumerate(zip(masked(model, got), masked(model, alone), strict=True)):
        assert torch.equal(a, b) or is_sliding(model.model.layers[i].self_attn)


def test_the_registry_names_each_recipe() -> None:
    assert isinstance(make_press("rcstat", 0.5), AutoRCPress)
    assert isinstance(make_press("rcstat-cross-layer", 0.5), CrossLayerPress)
    assert isinstance(make_press("rcstat-head-fill", 0.5), FillPress)
    assert recipe(
        1, 0.5, above_null=False, window_size=8
    ).press.above_null  # FillPress reads RC above its null
    with pytest.raises(RCStatError, match="model"):
        AutoRCPress(0.5).compress(None, None, None, None, None, {})
