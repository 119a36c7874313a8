"""Evidence kept: which uncompressed entries a compressed cache still shows, for gathering and masking
presses, on a full-attention and a hybrid (sliding-window) model."""

from __future__ import annotations

import pytest
import torch
from kvpress import KeyRerotationPress, SnapKVPress, StreamingLLMPress

from rcstat.kv.evidence import evidence_kept, kept_entries
from rcstat.kv.replay import record_prefill, replay
from rcstat.models.logits import is_sliding
from rcstat.presses import rc_press
from tests.helpers import tiny_model

N = 40


def _record(family: str):
    model = tiny_model(family)
    ids = torch.randint(0, model.config.vocab_size, (1, N), generator=torch.Generator().manual_seed(1))
    return record_prefill(model, ids)


def _parts(record):
    return [la.keys for la in record.layers], [is_sliding(la.module) for la in record.layers]


def test_a_gathering_press_keeps_exactly_its_sinks_and_recent_tokens() -> None:
    record = _record("llama-gqa")
    keys, _ = _parts(record)
    kept = kept_entries(replay(record, StreamingLLMPress(compression_ratio=0.5, n_sink=4)), keys)
    expected = torch.zeros(N, dtype=torch.bool)
    expected[:4] = expected[-16:] = True
    for layer in kept:
        assert layer is not None
        assert torch.equal(layer[0, 0], expected) and torch.equal(layer[0, 1], expected)


def test_a_masking_press_keeps_what_it_did_not_mask() -> None:
    record = _record("llama-gqa")
    keys, _ = _parts(record)
    compressed = replay(record, rc_press(0.6, layer_adaptive=True, window_size=8))
    for layer, mask in zip(kept_entries(compressed, keys), compressed.masks, strict=True):
        expected = torch.ones_like(layer)
        if mask is not None:
            expected[mask] = False
        assert torch.equal(layer, expected)


def test_snapkv_kept_entries_are_its_top_scores() -> None:
    record = _record("qwen2-gqa")
    keys, _ = _parts(record)
    press = SnapKVPress(compression_ratio=0.5, window_size=8)
    kept = kept_entries(replay(record, press), keys)
    layer = record.layers[0]
    with torch.no_grad():
        kwargs = {"position_embeddings": layer.position_embeddings}
        scores = press.score(layer.module, layer.hidden_states, layer.keys, layer.values, None, kwargs)
    top = torch.zeros(scores.shape, dtype=torch.bool).scatter_(-1, scores.topk(N // 2, dim=-1).indices, True)
    assert torch.equal(kept[0], top)


def test_evidence_share_full_cache_recent_press_and_changed_keys() -> None:
    record = _record("llama-gqa")
    keys, sliding = _parts(record)
    middle, recent = [10, 11, 12], [N - 3, N - 2]
    assert evidence_kept(replay(record, None), keys, middle, sliding) == {"global": 1.0}
    streaming = replay(record, StreamingLLMPress(compression_ratio=0.5, n_sink=4))
    assert evidence_kept(streaming, keys, middle, sliding) == {"global": 0.0}
    assert evidence_kept(streaming, keys, middle + recent, sliding) == {"global": pytest.approx(0.4)}
    rerotated = replay(record, KeyRerotationPress(StreamingLLMPress(compression_ratio=0.5, n_sink=4)))
    assert evidence_kept(rerotated, keys, middle, sliding) == {"global": None}


def test_a_sliding_layer_loses_the_evidence_before_its_window() -> None:
    record = _record("gemma3-gqa")
    keys, sliding = _parts(record)
    assert sliding == [True, False, True]
    full = replay(record, None)
    assert evidence_kept(full, keys, [5, 6], sliding) == {"sliding": 0.0, "global": 1.0}
    window = record.layers[0].keys.shape[-2]
    assert evidence_kept(full, keys, [N - 1, 5], sliding) == {"sliding": 0.5, "global": 1.0}
    assert window < N
