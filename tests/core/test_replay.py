"""One recorded prefill replayed for many presses equals running each press in the forward pass."""

from __future__ import annotations

import pytest
import torch
from kvpress import (
    AdaKVPress,
    CapPress,
    ChunkKVPress,
    CompactorPress,
    CriticalAdaKVPress,
    CURPress,
    DMSPress,
    EntropyGatedChunkKVPress,
    ExpectedAttentionPress,
    KeyDiffPress,
    KnormPress,
    LagKVPress,
    LeverageScorePress,
    MergingPress,
    NonCausalAttnPress,
    ObservedAttentionPress,
    PyramidKVPress,
    SnapKVPress,
    StreamingLLMPress,
    TOVAPress,
)
from transformers import DynamicCache

from rcstat.errors import RCStatError
from rcstat.kv.replay import record_prefill, replay
from rcstat.presses import AutoRCPress, CrossLayerPress, RCStatPress, ThresholdPress, rc_press
from tests.helpers import greedy, tiny_model

CONTEXT, QUESTION, STEPS = 40, 5, 4

PRESSES = {
    "none": lambda: None,
    "rcstat-adaptive": lambda: rc_press(0.5, layer_adaptive=False, window_size=8),
    "rcstat-cross-layer": lambda: rc_press(0.5, layer_adaptive=True, window_size=8),
    "rcstat-auto-few": lambda: rc_press(0.5, window_size=8),  # FillPress: 6 KV heads in all
    "rcstat-auto-many": lambda: AutoRCPress(0.5, min_kv_heads=1, scorer_options={"window_size": 8}),
    "rcstat-fill": lambda: CrossLayerPress(
        RCStatPress(window_size=8, above_null=True), 0.5, also=KeyDiffPress()
    ),
    "rcstat-uniform": lambda: RCStatPress(compression_ratio=0.75, window_size=8),
    "rcstat-threshold": lambda: ThresholdPress(RCStatPress(window_size=8), 0.5),
    "rcstat-chunkkv": lambda: ChunkKVPress(RCStatPress(compression_ratio=0.5, window_size=8), chunk_length=4),
    "rcstat-critical-adakv": lambda: CriticalAdaKVPress(RCStatPress(compression_ratio=0.5, window_size=8)),
    "snapkv": lambda: SnapKVPress(compression_ratio=0.5, window_size=8),
    "critical-adakv": lambda: CriticalAdaKVPress(SnapKVPress(compression_ratio=0.5, window_size=8)),
    "chunkkv": lambda: ChunkKVPress(SnapKVPress(compression_ratio=0.5, window_size=8), chunk_length=4),
    "keydiff": lambda: KeyDiffPress(compression_ratio=0.5),
    "lagkv": lambda: LagKVPress(compression_ratio=0.5, lag_size=8, n_sink=2),
    "compactor": lambda: CompactorPress(compression_ratio=0.5, chunk_size=16, sketch_dimension=8),
    "adakv-snapkv": lambda: AdaKVPress(SnapKVPress(compression_ratio=0.5, window_size=8)),
    "streaming": lambda: StreamingLLMPress(compression_ratio=0.5, n_sink=4),
    "knorm": lambda: KnormPress(compression_ratio=0.5),
    "tova": lambda: TOVAPress(compression_ratio=0.5),
    "expected": lambda: ExpectedAttentionPress(compression_ratio=0.5, n_future_positions=4, n_sink=2),
    "pyramidkv": lambda: PyramidKVPress(compression_ratio=0.5, window_size=8),
    # kvpress 0.5.5
    "cur": lambda: CURPress(compression_ratio=0.5, local_window_size=8),
    "leverage": lambda: LeverageScorePress(compression_ratio=0.5, sketch_dimension=8),
    "non-causal-attention": lambda: NonCausalAttnPress(compression_ratio=0.5, chunk_size=16),
    "cap": lambda: CapPress(compression_ratio=0.5, n_future_positions=16),
    "entropy-gated-chunkkv": lambda: EntropyGatedChunkKVPress(
        SnapKVPress(compression_ratio=0.5, window_size=8), chunk_length=6, low_entropy_chunk_length=2
    ),
    "merging": lambda: MergingPress(SnapKVPress(compression_ratio=0.5, window_size=8)),
}


def decode(model: torch.nn.Module, cache: DynamicCache, question: torch.Tensor) -> tuple[list, torch.Tensor]:
    """Greedy decoding after the full context, the question one token at a time (PyramidKV's layers
    differ in length)."""
    return greedy(model, cache, question, CONTEXT, STEPS, one_token_at_a_time=True)


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3-gqa", "mistral-mha"])
def test_replay_equals_the_press_in_the_forward_pass(family: str) -> None:
    model = tiny_model(family)
    g = torch.Generator().manual_seed(7)
    # batch 1, as kvpress's pipeline decodes; layers of unequal length (PyramidKV) need it
    context = torch.randint(3, 128, (1, CONTEXT), generator=g)
    question = torch.randint(3, 128, (1, QUESTION), generator=g)
    record = record_prefill(model, context)
    for name, make in PRESSES.items():
        live = DynamicCache(config=model.config)
        press = make()
        torch.manual_seed(0)  # Compactor sketches keys with random projections
        with torch.no_grad():
            if press is None:
                model.get_decoder()(input_ids=context, past_key_values=live)
            else:
                with press(model):
                    model.get_decoder()(input_ids=context, past_key_values=live)
        want_tokens, want_logits = decode(model, live, question)

        torch.manual_seed(0)
        replayed = replay(record, make()).cache
        got_tokens, got_logits = decode(model, replayed, question)
        assert got_tokens == want_tokens, name
        torch.testing.assert_close(got_logits, want_logits, atol=1e-5, rtol=1e-5, msg=name)


def test_record_is_reusable_and_unchanged_by_replays() -> None:
    model = tiny_model("llama-gqa")
    record = record_prefill(
        model, torch.randint(3, 128, (1, CONTEXT), generator=torch.Generator().manual_seed(1))
    )
    before = [layer.keys.clone() for layer in record.layers]
    first = replay(record, RCStatPress(compression_ratio=0.5))
    replay(record, SnapKVPress(compression_ratio=0.75, window_size=8))
    again = replay(record, RCStatPress(compression_ratio=0.5))
    assert all(torch.equal(a, b.keys) for a, b in zip(before, record.layers, strict=True))
    assert record.length == CONTEXT
    assert all(
        torch.equal(a.keys, b.keys) for a, b in zip(first.cache.layers, again.cache.layers, strict=True)
    )


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3-gqa"])
def test_observed_attention_replayed_from_sdpa_equals_it_live_on_eager(family: str) -> None:
    """Eager weights recomputed from the record, one layer at a time, equal the eager forward's."""
    eager, sdpa = tiny_model(family, attn_implementation="eager"), tiny_model(family)
    context = torch.randint(3, 128, (1, CONTEXT), generator=torch.Generator().manual_seed(2))
    live = DynamicCache(config=eager.config)
    with torch.no_grad(), ObservedAttentionPress(compression_ratio=0.5)(eager):
        eager.get_decoder()(input_ids=context, past_key_values=live, output_attentions=True)
    replayed = replay(record_prefill(sdpa, context), ObservedAttentionPress(compression_ratio=0.5)).cache
    for want, got in zip(live.layers, replayed.layers, strict=True):
        assert got.keys.shape[-2] == CONTEXT // 2
        torch.testing.assert_close(got.keys, want.keys, atol=1e-5, rtol=1e-5)


def test_compressed_reports_kept_and_held_fractions() -> None:
    model = tiny_model("llama-gqa")
    record = record_prefill(
        model, torch.randint(3, 128, (1, CONTEXT), generator=torch.Generator().manual_seed(3))
    )
    full = replay(record, None)
    uniform = replay(record, RCStatPress(compression_ratio=0.5, window_size=8))
    adaptive = replay(record, rc_press(0.5, layer_adaptive=False, window_size=8))
    assert full.kept_fraction == 1.0 and full.masks == [None] * len(record.layers)
    assert uniform.kept_fraction == pytest.approx(0.5) and uniform.held_bytes == pytest.approx(
        full.held_bytes / 2
    )
    # head-adaptive budgets are masked: half is seen, all of it is still held
    assert adaptive.kept_fraction == pytest.approx(0.5, abs=0.03) and adaptive.held_bytes == full.held_bytes


def test_a_press_that_works_in_its_forward_hook_is_refused_clearly() -> None:
    record = record_prefill(tiny_model("llama-gqa"), torch.randint(3, 128, (1, CONTEXT)))
    with pytest.raises(RCStatError, match="DMSPress works in its forward hook"):
        replay(record, DMSPress(RCStatPress(), threshold=0.5))


def test_kept_shares_per_head_average_to_the_layers() -> None:
    model = tiny_model("llama-gqa")
    record = record_prefill(
        model, torch.randint(3, 128, (1, CONTEXT), generator=torch.Generator().manual_seed(5))
    )
    for press in (
        rc_press(0.5, layer_adaptive=True, window_size=8),
        ThresholdPress(RCStatPress(window_size=8), 0.5),
        None,
    ):
        compressed = replay(record, press)
        per_head = compressed.kept_per_head()
        assert [sum(h) / len(h) for h in per_head] == pytest.approx(compressed.kept_per_layer())
        assert len(per_head[0]) == model.config.num_key_value_heads
    assert (
        len(
            {
                tuple(h)
                for h in replay(record, rc_press(0.5, layer_adaptive=True, window_size=8)).kept_per_head()
            }
        )
        > 1
    )


def test_every_press_replays_on_gemma3_with_each_layer_its_own_rope() -> None:
    """Gemma 3's rotary module needs the layer's type; kvpress's ExpectedAttention calls it without
    one (it fails in kvpress's own pipeline), so the replay binds each layer's type to it."""
    from rcstat.models.logits import LayerRotary

    model = tiny_model("gemma3-gqa")
    context = torch.randint(3, 128, (1, CONTEXT), generator=torch.Generator().manual_seed(3))
    record = record_prefill(model, context)
    for make in PRESSES.values():
        torch.manual_seed(0)
        replay(record, make())  # raised AttributeError for "expected" before the binding
    rotary = model.get_decoder().rotary_emb
    x, positions = torch.randn(1, 6, 16), torch.arange(6)[None]
    for kind in ("sliding_attention", "full_attention"):
        got, want = LayerRotary(rotary, kind)(x, positions), rotary(x, positions, layer_type=kind)
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True)), kind
    with pytest.raises(AttributeError):
        rotary(x, positions)  # what kvpress's call does unbound
