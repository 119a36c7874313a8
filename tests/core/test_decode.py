"""Batched greedy decoding of many compressed caches equals kvpress's own decoding, press by press."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from kvpress import ObservedAttentionPress
from kvpress.pipeline import KVPressTextGenerationPipeline

from rcstat.kv.decode import greedy_answers
from rcstat.kv.replay import record_prefill, replay
from tests.core.test_replay import CONTEXT, PRESSES, QUESTION, decode
from tests.helpers import Digits, tiny_model

STEPS = 6


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3-gqa", "mistral-mha"])
def test_batched_answers_equal_kvpress_generate_answer(family: str) -> None:
    model = tiny_model(family)
    g = torch.Generator().manual_seed(11)
    context = torch.randint(3, 128, (1, CONTEXT), generator=g)
    question = torch.randint(3, 128, (1, QUESTION), generator=g)
    record = record_prefill(model, context)
    # kvpress's own decoding fails on PyramidKV's unequal layers (the causal mask is sized from
    # layer 0): compared below with a question fed token by token instead
    presses = {k: v for k, v in PRESSES.items() if k != "pyramidkv"}
    presses["observed"] = lambda: ObservedAttentionPress(compression_ratio=0.5)
    full = greedy_answers(model, Digits(-1), question, [replay(record, None)], STEPS)[0].split()
    # stop on a token the full cache emits mid-answer, so that rows stop at different steps
    model.generation_config.eos_token_id = int(full[2])
    tokenizer = Digits(int(full[2]))
    pipe = SimpleNamespace(model=model, tokenizer=tokenizer)
    want = []
    for make in presses.values():
        torch.manual_seed(0)  # Compactor sketches keys with random projections
        compressed = replay(record, make())  # leaves the press's masks on the modules, as live
        want.append(
            KVPressTextGenerationPipeline.generate_answer(pipe, question, compressed.cache, CONTEXT, STEPS)
        )
    got = greedy_answers(
        model,
        tokenizer,
        question,
        [seeded(lambda make=make: replay(record, make())) for make in presses.values()],
        STEPS,
    )
    assert got == want
    assert len(set(got)) > 2  # the presses really differ, and some stopped early
    assert all(getattr(la.module, "masked_key_indices", None) is None for la in record.layers)


def test_unequal_layer_lengths_are_padded_with_masked_entries() -> None:
    model = tiny_model("llama-gqa")
    g = torch.Generator().manual_seed(12)
    context = torch.randint(3, 128, (1, CONTEXT), generator=g)
    question = torch.randint(3, 128, (1, QUESTION), generator=g)
    record = record_prefill(model, context)
    pyramid = replay(record, PRESSES["pyramidkv"]())
    assert len(set(pyramid.lengths())) > 1
    model.generation_config.eos_token_id = -1
    want, _ = decode(model, replay(record, PRESSES["pyramidkv"]()).cache, question)
    got = greedy_answers(model, Digits(-1), question, [pyramid, replay(record, None)], 4)
    assert got[0] == " ".join(map(str, want[0]))


def seeded(fn):
    torch.manual_seed(0)
    return fn()


def test_sliding_window_layers_decode_as_the_model_does_and_stay_whole() -> None:
    """Gemma 3: presses leave the sliding-window layers whole; batched decoding keeps their window."""
    from transformers import DynamicCache

    from rcstat.presses import rc_press
    from tests.helpers import greedy

    model = tiny_model("gemma3-gqa")  # sliding window 5: the window slides within the answer
    g = torch.Generator().manual_seed(13)
    context = torch.randint(3, 128, (1, CONTEXT), generator=g)
    question = torch.randint(3, 128, (1, QUESTION), generator=g)
    model.generation_config.eos_token_id = -1
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        model.get_decoder()(input_ids=context, past_key_values=cache)
    want, _ = greedy(model, cache, question, CONTEXT, STEPS)
    record = record_prefill(model, context)
    compressed = replay(record, rc_press(0.5, layer_adaptive=True, window_size=4))
    sliding = [la.module.is_sliding for la in record.layers]
    assert [mask is None for mask, s in zip(compressed.masks, sliding, strict=True) if s] == [True] * sum(
        sliding
    )
    assert all(mask is not None for mask, s in zip(compressed.masks, sliding, strict=True) if not s)
    got = greedy_answers(model, Digits(-1), question, [replay(record, None), compressed], STEPS)
    assert got[0] == " ".join(map(str, want[0]))
    assert compressed.kept_per_layer()[0] == 1.0 and compressed.kept_fraction < 1.0
