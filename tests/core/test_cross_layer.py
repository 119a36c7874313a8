"""One threshold across all layers (CrossLayerPress): the budget of the whole cache, the ranking, and the
same keep-sets live, replayed and on the ragged cache, on every family."""

from __future__ import annotations

import pytest
import torch
from kvpress import KeyDiffPress

from rcstat.errors import RCStatError
from rcstat.kv.memory import cache_bytes
from rcstat.kv.ragged import RaggedCache, RaggedPress, ragged_attention
from rcstat.kv.replay import record_prefill, replay
from rcstat.presses import CrossLayerPress, RCStatPress, rc_press
from tests.core.test_presses import RecordingPress, inputs, masked, prefill
from tests.helpers import FAMILIES, greedy, tiny_model

WINDOW = 4


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("ratio", [0.5, 0.8])
def test_the_whole_cache_keeps_its_share_ranked_across_layers(family: str, ratio: float) -> None:
    """Over every layer the press compresses (Gemma 3's sliding-window layers are left whole)."""
    model = tiny_model(family)
    recorder = RecordingPress(window_size=WINDOW)
    press = CrossLayerPress(recorder, ratio)
    cache = prefill(model, inputs(n=40), press)
    every = masked(model, cache)
    ranked = sorted(recorder.recorded)
    assert not any(every[i].any() for i in range(len(every)) if i not in ranked)
    evicted = [every[i] for i in ranked]
    total = sum(e[0].numel() for e in evicted)
    for b in range(2):  # per sequence: exactly the lowest-scoring share of every entry
        gone = torch.cat([e[b].flatten() for e in evicted])
        scores = torch.cat([recorder.recorded[i][b].flatten() for i in ranked])
        assert int(gone.sum()) == total - int(total * (1 - ratio))
        assert scores[gone].max() <= scores[~gone].min()
    protected = sum(int(torch.isinf(recorder.recorded[i][0]).sum()) for i in ranked)
    if protected <= int(total * (1 - ratio)):  # the budget covers the window and the sinks: all kept
        assert not any(e[..., -WINDOW:].any() for e in evicted)
    shares = [press.kept[i] for i in sorted(press.kept)]
    assert sum(s * e[0].numel() for s, e in zip(shares, evicted, strict=True)) / total == pytest.approx(
        int(total * (1 - ratio)) / total
    )


def test_layers_get_different_budgets() -> None:
    model = tiny_model("llama-gqa")
    press = rc_press(0.6, layer_adaptive=True, window_size=WINDOW)
    prefill(model, inputs(n=40), press)
    assert len({round(v, 3) for v in press.kept.values()}) > 1


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3-gqa", "mistral-mha", "gemma3-gqa"])
def test_live_replayed_and_ragged_keep_the_same_entries_and_answer_alike(family: str) -> None:
    """Gemma 3's sliding-window layers: kvpress's masks index entries that shift while decoding, so
    only the keep-sets are compared there (the ragged cache stores positions; see test_ragged)."""
    model = tiny_model(family)
    context = inputs(batch=1, n=40, seed=4)
    question = inputs(batch=1, n=3, seed=5)

    def press() -> CrossLayerPress:
        return CrossLayerPress(RCStatPress(window_size=WINDOW), 0.6)

    live = prefill(model, context, press())
    full_bytes = cache_bytes(live)
    live_masks = masked(model, live)
    want = greedy(model, live, question, 40, 4)
    replayed = replay(record_prefill(model, context), press())
    for layer, (got, mask) in enumerate(zip(live_masks, replayed.masks, strict=True)):
        evicted = torch.zeros_like(got)
        if mask is not None:
            evicted[mask] = True
        assert torch.equal(evicted, got), layer
    for layer in model.model.layers:
        layer.self_attn.masked_key_indices = None
    ragged = RaggedCache(model.config)
    with torch.no_grad(), RaggedPress(press())(model):
        model.model(input_ids=context, past_key_values=ragged)
    held = [layer.kept_share() for layer in ragged.layers]
    held_bytes = cache_bytes(ragged)  # before decoding grows it
    with ragged_attention(model):
        got = greedy(model, ragged, question, 40, 4)
    if family.startswith("gemma3"):
        return
    assert got[0] == want[0]
    torch.testing.assert_close(got[1], want[1], atol=1e-4, rtol=1e-4)
    full = sum(e.numel() for e in live_masks)
    assert sum(h * e.numel() for h, e in zip(held, live_masks, strict=True)) / full == pytest.approx(
        1 - sum(int(e.sum()) for e in live_masks) / full, abs=1e-6
    )
    kept = 1 - sum(int(e.sum()) for e in live_masks) / full
    assert held_bytes / full_bytes == pytest.approx(
        kept * (1 + 4 / (2 * 4 * model.config.head_dim)), rel=1e-3
    )


class RecordingKeyDiff(KeyDiffPress):
    """KeyDiff, keeping the scores of every layer."""

    def score(self, module, *args, **kwargs) -> torch.Tensor:
        scores = super().score(module, *args, **kwargs)
        self.recorded = {**getattr(self, "recorded", {}), module.layer_idx: scores.clone()}
        return scores


def test_a_second_scorer_competes_by_rank_and_keeps_the_union_of_both_tops() -> None:
    """``also``: an entry is kept when it ranks high under either scorer (ranks across every layer)."""
    model = tiny_model("llama-gqa")
    first, second = RecordingPress(window_size=WINDOW), RecordingKeyDiff()
    press = CrossLayerPress(first, 0.5, also=second, combine="union")
    cache = prefill(model, inputs(batch=1, n=40), press)
    evicted = masked(model, cache)
    layers = sorted(first.recorded)
    a = torch.cat([first.recorded[i][0].flatten() for i in layers])
    b = torch.cat([second.recorded[i][0].flatten() for i in layers])
    b = b.masked_fill(torch.isposinf(a), float("inf"))
    gone = torch.cat([evicted[i][0].flatten() for i in layers])

    def ranks(x: torch.Tensor) -> torch.Tensor:
        return x.argsort().argsort().float().masked_fill(torch.isposinf(x), float("inf"))

    best = torch.maximum(ranks(a), ranks(b))
    assert int(gone.sum()) == a.numel() - int(a.numel() * 0.5)
    assert best[gone].max() <= best[~gone].min()  # the kept set is the top of the better rank
    top_a = a >= a.kthvalue(a.numel() - a.numel() // 4).values  # each scorer's top quarter survives
    top_b = b >= b.kthvalue(b.numel() - b.numel() // 4).values
    assert not gone[top_a].any() and not gone[top_b].any()
    with pytest.raises(RCStatError, match="also"):
        CrossLayerPress(RCStatPress(), 0.5, also=object())


def test_fill_gives_the_first_scorers_signal_first_and_shares_the_rest_by_the_seconds_percentiles() -> None:
    model = tiny_model("llama-gqa")
    first, second = RecordingPress(window_size=WINDOW, above_null=True), RecordingKeyDiff()
    cache = prefill(model, inputs(batch=1, n=40), CrossLayerPress(first, 0.7, also=second))
    evicted = masked(model, cache)
    layers = sorted(first.recorded)
    a = torch.cat([first.recorded[i][0].flatten() for i in layers])
    pct = torch.cat(
        [
            (second.recorded[i][0].argsort(-1).argsort(-1).float() / 40)
            .masked_fill(torch.isposinf(first.recorded[i][0]), float("inf"))
            .flatten()
            for i in layers
        ]
    )
    gone = torch.cat([evicted[i][0].flatten() for i in layers])
    signal = (a > 0) & torch.isfinite(a)
    assert bool(signal.any()) and not bool(signal.all())
    order = torch.where(a > 0, 1 + a, pct)  # signal first by RC, then the rest by KeyDiff's percentile
    assert order[gone].max() <= order[~gone].min()
    if int(signal.sum()) <= int((~gone).sum()):  # the budget holds the whole signal: none of it goes
        assert not gone[signal].any()
