"""The ragged per-head cache decodes exactly as kvpress's masked cache, and holds only what it keeps."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from kvpress import AdaKVPress, SnapKVPress
from kvpress.pipeline import KVPressTextGenerationPipeline
from transformers import DynamicCache

from rcstat.errors import RCStatError
from rcstat.kv.memory import cache_bytes
from rcstat.kv.ragged import RaggedCache, RaggedLayer, RaggedPress, ragged_attention
from rcstat.models.logits import attention_layers
from rcstat.presses import rc_press
from tests.helpers import FAMILIES, Digits, greedy, tiny_model

CONTEXT, QUESTION, STEPS = 24, 3, 4


def _prefill(model, ids: torch.Tensor, cache) -> None:
    with torch.no_grad():
        model.get_decoder()(input_ids=ids, past_key_values=cache)


def _keep_sets(model, cache: DynamicCache, seed: int) -> list[torch.Tensor | None]:
    """Random keep-sets per full-attention layer, with an empty head and a head keeping everything."""
    g = torch.Generator().manual_seed(seed)
    keeps = []
    for index, layer in enumerate(cache.layers):
        if layer.is_sliding:  # kvpress's masks index a sliding layer's entries, which shift while decoding
            keeps.append(None)
            continue
        keep = torch.rand(layer.keys.shape[:3], generator=g) < 0.5
        if index == 0:
            keep[:, 0] = False
            keep[:, -1] = True
        keeps.append(keep)
    return keeps


def _decode(model, cache, question: torch.Tensor, ragged: bool) -> tuple[list, torch.Tensor]:
    """The question in one pass (several queries), then greedy steps, positions after the full context."""
    with ragged_attention(model) if ragged else torch.no_grad():
        return greedy(model, cache, question, CONTEXT, STEPS)


@pytest.mark.parametrize("family", FAMILIES)
def test_ragged_decoding_equals_kvpress_masked_decoding(family: str) -> None:
    model = tiny_model(family)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 128, (2, CONTEXT), generator=g)
    question = torch.randint(3, 128, (2, QUESTION), generator=g)
    cache = DynamicCache(config=model.config)
    _prefill(model, ids, cache)
    keeps = _keep_sets(model, cache, seed=4)
    masks = [None if k is None else torch.nonzero(~k, as_tuple=True) for k in keeps]
    ragged = RaggedCache.from_cache(copy.deepcopy(cache), masks)
    for layer, mask in zip(attention_layers(model), masks, strict=True):
        layer.module.masked_key_indices = mask  # kvpress's attention patch reads these
    try:
        want_tokens, want = _decode(model, cache, question, ragged=False)
    finally:
        for layer in attention_layers(model):
            layer.module.masked_key_indices = None
    got_tokens, got = _decode(model, ragged, question, ragged=True)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert got_tokens == want_tokens
    # appended entries carry their own positions; every head still holds only what it kept
    added = QUESTION + STEPS - 1
    for layer, keep in zip(ragged.layers, keeps, strict=True):
        for r in range(2):
            for h in range(len(layer.k[r])):
                _, _, pos = layer.entries(r, h)
                if keep is not None:
                    kept = torch.nonzero(keep[r, h]).flatten()
                    assert pos.tolist() == kept.tolist() + list(range(CONTEXT, CONTEXT + added))
                elif layer.sliding_window:
                    assert pos[-1] == CONTEXT + added - 1 and len(pos) <= layer.sliding_window
    if keeps[0] is not None:
        assert ragged.layers[0].entries(0, 0)[2].tolist() == list(range(CONTEXT, CONTEXT + added))


def test_ragged_press_holds_its_kept_fraction_and_answers_like_the_masked_cache() -> None:
    model = tiny_model("llama-gqa")
    g = torch.Generator().manual_seed(5)
    context = torch.randint(3, 128, (1, 40), generator=g)
    question = torch.randint(3, 128, (1, QUESTION), generator=g)
    model.generation_config.eos_token_id = -1
    pipe = SimpleNamespace(model=model, tokenizer=Digits(-1))
    answers, held = {}, {}
    for name, make in {
        "masked": lambda: rc_press(0.6, layer_adaptive=False, window_size=8),
        "ragged": lambda: RaggedPress(rc_press(0.6, layer_adaptive=False, window_size=8)),
    }.items():
        press = make()
        cache = RaggedCache(model.config) if name == "ragged" else DynamicCache(config=model.config)
        with press(model), torch.no_grad():
            model.get_decoder()(input_ids=context, past_key_values=cache)
        held[name] = cache_bytes(cache)
        with ragged_attention(model) if name == "ragged" else torch.no_grad():
            answers[name] = KVPressTextGenerationPipeline.generate_answer(pipe, question, cache, 40, 8)
        for layer in attention_layers(model):
            layer.module.masked_key_indices = None
    assert answers["ragged"] == answers["masked"]
    kept = (held["ragged"] - _positions_bytes(cache)) / held["masked"]
    assert abs(kept - 0.4) < 0.05


def _positions_bytes(cache: RaggedCache) -> int:
    return sum(t.untyped_storage().nbytes() for layer in cache.layers for row in layer.pos for t in row)


def test_shrinking_press_keeps_true_positions() -> None:
    model = tiny_model("qwen3-gqa")
    ids = torch.randint(3, 128, (1, 32), generator=torch.Generator().manual_seed(6))
    cache = RaggedCache(model.config)
    reference = DynamicCache(config=model.config)
    _prefill(model, ids, reference)
    inner = SnapKVPress(compression_ratio=0.5, window_size=8)
    with RaggedPress(inner)(model):
        _prefill(model, ids, cache)
    for full, layer in zip(reference.layers, cache.layers, strict=True):
        keys, _, pos = layer.entries(0, 1)
        assert (
            len(pos) == 16
            and pos.tolist() == sorted(pos.tolist())
            and pos[-8:].tolist() == list(range(24, 32))
        )
        torch.testing.assert_close(keys, full.keys[0, 1, pos])
    assert cache.get_seq_length() == 32


def test_generate_and_the_kvpress_pipeline_run_on_a_ragged_cache() -> None:
    model = tiny_model("mistral-mha")
    ids = torch.randint(3, 128, (1, 30), generator=torch.Generator().manual_seed(7))
    model.generation_config.eos_token_id = -1
    model.generation_config.pad_token_id = 0
    press = AdaKVPress(SnapKVPress(compression_ratio=0.5, window_size=8))
    masked = DynamicCache(config=model.config)
    with press(model), torch.no_grad():
        model.get_decoder()(input_ids=ids[:, :26], past_key_values=masked)
    want = model.generate(ids, past_key_values=masked, max_new_tokens=5, do_sample=False)
    for layer in attention_layers(model):
        layer.module.masked_key_indices = None
    ragged = RaggedCache(model.config)
    with RaggedPress(press)(model), torch.no_grad():
        model.get_decoder()(input_ids=ids[:, :26], past_key_values=ragged)
    with ragged_attention(model):
        got = model.generate(ids, past_key_values=ragged, max_new_tokens=5, do_sample=False)
    assert got.tolist() == want.tolist()
    assert ragged.get_seq_length() == 34  # the last token generated is not fed back
    # kvpress's pipeline removes an answer between questions by slicing ``layer.keys``
    KVPressTextGenerationPipeline._remove_answer_from_cache(None, ragged, [20] * len(ragged.layers))
    for layer in ragged.layers:
        assert layer.get_seq_length() == 20 and int(layer.entries(0, 0)[2].max()) < 20


def test_cache_bytes_count_what_is_held() -> None:
    model = tiny_model("llama-gqa")
    cache = DynamicCache(config=model.config)
    _prefill(model, torch.randint(3, 128, (1, 16)), cache)
    dense = sum(la.keys.nbytes + la.values.nbytes for la in cache.layers)
    assert cache_bytes(cache) == dense
    for layer in cache.layers:  # a trimmed view still holds its whole storage
        layer.keys, layer.values = layer.keys[:, :, :4], layer.values[:, :, :4]
    assert cache_bytes(cache) == dense


def test_ragged_press_errors_are_clear() -> None:
    model = tiny_model("llama-gqa")
    with pytest.raises(RCStatError, match="needs a press"):
        RaggedPress()
    with pytest.raises(RCStatError, match="RaggedCache"), RaggedPress(SnapKVPress(0.5))(model):
        _prefill(model, torch.randint(3, 128, (1, 16)), DynamicCache(config=model.config))
    layer = RaggedLayer()
    layer.keep(
        torch.zeros(1, 1, 2, 4),
        torch.zeros(1, 1, 2, 4),
        torch.ones(1, 1, 2, dtype=torch.bool),
        torch.arange(2).expand(1, 1, 2),
        2,
    )
    with pytest.raises(RCStatError, match="dense keys"):
        layer.keys[0]


def test_on_a_hybrid_model_the_ratio_covers_the_global_layers_and_sliding_layers_hold_their_window() -> None:
    """Gemma 3: the budget evicts the asked share of the global layers' entries (freed on the ragged
    cache); each sliding layer holds exactly its window, as uncompressed."""
    model = tiny_model("gemma3-gqa")
    context = torch.randint(3, 128, (1, 40), generator=torch.Generator().manual_seed(6))
    full = DynamicCache(config=model.config)
    _prefill(model, context, full)
    ragged = RaggedCache(model.config)
    with torch.no_grad(), RaggedPress(rc_press(0.6, window_size=4))(model):
        model.get_decoder()(input_ids=context, past_key_values=ragged)
    global_entries = kept_entries = 0
    for layer, uncompressed in zip(ragged.layers, full.layers, strict=True):
        held = [len(layer.entries(0, h)[2]) for h in range(len(layer.k[0]))]
        if layer.sliding_window:
            assert held == [uncompressed.keys.shape[-2]] * len(held)  # the whole window, untouched
        else:
            global_entries += 40 * len(held)
            kept_entries += sum(held)
    assert kept_entries == int(global_entries * (1 - 0.6))
