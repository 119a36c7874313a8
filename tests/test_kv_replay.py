"""One recorded prefill replayed for many presses equals running each press in the forward pass."""

from __future__ import annotations

import pytest
import torch
from kvpress import (
    AdaKVPress,
    ExpectedAttentionPress,
    KnormPress,
    ObservedAttentionPress,
    PyramidKVPress,
    SnapKVPress,
    StreamingLLMPress,
    TOVAPress,
)
from transformers import DynamicCache

from rcstat.kv import RCStatPress
from rcstat.kv.replay import record_prefill, replay
from tests.conftest import tiny_model

CONTEXT, QUESTION, STEPS = 40, 5, 4

PRESSES = {
    "none": lambda: None,
    "rcstat-adaptive": lambda: RCStatPress(compression_ratio=0.5, window_size=8),
    "rcstat-uniform": lambda: RCStatPress(compression_ratio=0.75, window_size=8, head_adaptive=False),
    "rcstat-threshold": lambda: RCStatPress(threshold=0.5, window_size=8),
    "snapkv": lambda: SnapKVPress(compression_ratio=0.5, window_size=8),
    "adakv-snapkv": lambda: AdaKVPress(SnapKVPress(compression_ratio=0.5, window_size=8)),
    "streaming": lambda: StreamingLLMPress(compression_ratio=0.5, n_sink=4),
    "knorm": lambda: KnormPress(compression_ratio=0.5),
    "tova": lambda: TOVAPress(compression_ratio=0.5),
    "expected": lambda: ExpectedAttentionPress(compression_ratio=0.5, n_future_positions=4, n_sink=2),
    "pyramidkv": lambda: PyramidKVPress(compression_ratio=0.5, window_size=8),
}


def decode(model: torch.nn.Module, cache: DynamicCache, question: torch.Tensor) -> tuple[list, torch.Tensor]:
    """Greedy decoding after the context, positions continuing from the full context (as kvpress does).

    The question goes in one token at a time: PyramidKV's layers differ in length, and the model
    sizes its causal mask from layer 0.
    """
    tokens, logits = [], []
    start = CONTEXT
    with torch.no_grad():
        for j in range(QUESTION - 1):
            positions = torch.tensor([[start + j]]).expand(question.shape[0], -1)
            model(input_ids=question[:, j : j + 1], past_key_values=cache, position_ids=positions)
        ids, start = question[:, -1:], CONTEXT + QUESTION - 1
        for _ in range(STEPS):
            positions = torch.arange(start, start + ids.shape[1]).unsqueeze(0).expand(ids.shape[0], -1)
            out = model(input_ids=ids, past_key_values=cache, position_ids=positions)
            start += ids.shape[1]
            logits.append(out.logits[:, -1])
            ids = out.logits[:, -1:].argmax(-1)
            tokens.append(ids)
    return torch.cat(tokens, 1).tolist(), torch.stack(logits, 1)


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
        with torch.no_grad():
            if press is None:
                model.get_decoder()(input_ids=context, past_key_values=live)
            else:
                with press(model):
                    model.get_decoder()(input_ids=context, past_key_values=live)
        want_tokens, want_logits = decode(model, live, question)

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
    first = replay(record, RCStatPress(compression_ratio=0.5, head_adaptive=False))
    replay(record, SnapKVPress(compression_ratio=0.75, window_size=8))
    again = replay(record, RCStatPress(compression_ratio=0.5, head_adaptive=False))
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
    uniform = replay(record, RCStatPress(compression_ratio=0.5, window_size=8, head_adaptive=False))
    adaptive = replay(record, RCStatPress(compression_ratio=0.5, window_size=8))
    assert full.kept_fraction == 1.0 and full.masks == [None] * len(record.layers)
    assert uniform.kept_fraction == pytest.approx(0.5) and uniform.held_bytes == pytest.approx(
        full.held_bytes / 2
    )
    # head-adaptive budgets are masked: half is seen, all of it is still held
    assert adaptive.kept_fraction == pytest.approx(0.5, abs=0.03) and adaptive.held_bytes == full.held_bytes
