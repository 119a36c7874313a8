"""Compression while generating (rcstat.kv.generation): the full cache generates what transformers does,
a batch what each sequence does alone, the first compression keeps what the prefill presses keep, and
the memory held never exceeds the budget at any step."""

from __future__ import annotations

import pytest
import torch
from kvpress import KnormPress

from rcstat.errors import RCStatError
from rcstat.kv import generation, recent
from rcstat.kv.generation import Budget, DecodingCompression, generate
from rcstat.kv.replay import record_prefill, replay
from rcstat.models.logits import attention_layers, is_sliding
from rcstat.presses import AutoRCPress, CrossLayerPress, RCStatPress
from rcstat.presses.auto_press import AutoRCScorer, compressed_kv_heads
from rcstat.presses.registry import decoding_names, make_decoding
from tests.helpers import FAMILIES, tiny_model

WINDOW = 4


def prompts(*lengths: int, seed: int = 0) -> list[torch.Tensor]:
    return [torch.randint(3, 128, (n,), generator=torch.Generator().manual_seed(seed + n)) for n in lengths]


def rc(budget: Budget, scope: str = "model", interval: int = 4) -> DecodingCompression:
    """RC with a budget; scope ``auto``: the default's rule (FillPress per head below 16 KV heads)."""
    options = {"window_size": WINDOW, "sink_tokens": 2}
    scorer = AutoRCScorer(scorer_options=options) if scope == "auto" else RCStatPress(**options)
    return DecodingCompression(scorer, budget, scope, interval)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_full_cache_generates_what_transformers_generates(family: str) -> None:
    model = tiny_model(family)
    batch = prompts(30, 21, 26)
    out = generate(model, batch, [None] * 3, 10)
    for prompt, got in zip(batch, out, strict=True):
        want = model.generate(
            prompt[None], max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0
        )
        assert got.tokens == want[0, len(prompt) :].tolist()


@pytest.mark.parametrize("family", ["llama-gqa", "gemma3-gqa", "qwen3-mha"])
def test_a_batch_generates_what_each_sequence_generates_alone(family: str) -> None:
    """Different lengths, compressions and budgets in one batch; padding is never scored or kept. In
    float64: in float32 a batch's matrix products round differently from one row's, and a random tiny
    model's near-ties then flip the odd token."""
    model = tiny_model(family).double()
    batch = prompts(48, 31, 40)
    batch.append(batch[0])  # a prompt two rows share is prefilled once
    setups = [
        lambda: rc(Budget(tokens=16)),
        lambda: rc(Budget(ratio=0.6), scope="layer", interval=3),
        lambda: DecodingCompression(KnormPress(), Budget(tokens=12), interval=2),
        lambda: None,
    ]
    together = generate(model, batch, [make() for make in setups], 24)
    for prompt, make, got in zip(batch, setups, together, strict=True):
        (alone,) = generate(model, [prompt], [make()], 24)
        assert got.tokens == alone.tokens and got.steps == alone.steps


@pytest.mark.parametrize("family", ["llama-gqa", "phi3-mha", "gemma3-gqa"])
@pytest.mark.parametrize("scope", ["head", "model"])
def test_the_first_compression_keeps_what_the_prefill_press_keeps(
    family: str, scope: str, monkeypatch
) -> None:
    """Right after the prefill, a budget of 40 with room for 8 keeps 32 of 64 entries per head on
    average: the entries RCStatPress (per head) or CrossLayerPress (across layers) keeps at ratio 0.5,
    replayed on a recorded prefill of the same prompt."""
    model = tiny_model(family)
    (prompt,) = prompts(64)
    (out,) = generate(model, [prompt], [rc(Budget(tokens=40), scope, interval=8)], 1)
    scorer = RCStatPress(0.5, window_size=WINDOW, sink_tokens=2)
    press = (
        scorer if scope == "head" else CrossLayerPress(RCStatPress(window_size=WINDOW, sink_tokens=2), 0.5)
    )
    compressed = replay(record_prefill(model, prompt[None]), press)
    sliding = [is_sliding(la.module) for la in attention_layers(model)]
    assert out.steps[0].cache_tokens == 32 or any(sliding)  # a sliding-window layer holds its window
    cache = _cache_after_first_compression(
        model, prompt, rc(Budget(tokens=40), scope, interval=8), monkeypatch
    )
    _assert_holds_what_was_kept(model, cache, compressed)


@pytest.mark.parametrize(
    ("family", "min_kv_heads"), [("llama-gqa", 1), ("llama-gqa", 16), ("gemma3-gqa", 16)]
)
def test_the_default_while_generating_keeps_what_its_prefill_recipe_keeps(
    family: str, min_kv_heads: int, monkeypatch
) -> None:
    """Scope ``auto`` (``AutoRCScorer``): RC across the model where the compressed layers
    hold ``min_kv_heads`` KV heads or more, FillPress per head where fewer; right after the prefill it
    keeps what the default prefill press (AutoRCPress) keeps at ratio 0.5, FillPress's cap included."""
    model = tiny_model(family)
    (prompt,) = prompts(64)
    options = {"window_size": WINDOW, "sink_tokens": 2}
    scorer = AutoRCScorer(min_kv_heads=min_kv_heads, scorer_options=options)
    compression = DecodingCompression(scorer, Budget(tokens=40), "auto", interval=8)
    cache = _cache_after_first_compression(model, prompt, compression, monkeypatch)
    assert scorer.scope == ("model" if compressed_kv_heads(model) >= min_kv_heads else "head")
    press = AutoRCPress(0.5, min_kv_heads=min_kv_heads, scorer_options=options)
    _assert_holds_what_was_kept(model, cache, replay(record_prefill(model, prompt[None]), press))


def test_scope_auto_needs_a_scorer_with_a_rule() -> None:
    with pytest.raises(RCStatError, match="scope auto"):
        DecodingCompression(KnormPress(), Budget(tokens=32), "auto")
    assert DecodingCompression(AutoRCScorer(), Budget(tokens=32), "auto").scope == "auto"


def _assert_holds_what_was_kept(model, cache, compressed) -> None:
    """Every compressed layer's ragged entries per head are the prefill press's kept keys."""
    for index, layer in enumerate(cache.layers):
        if is_sliding(attention_layers(model)[index].module):
            continue
        dense, mask = compressed.cache.layers[index].keys, compressed.masks[index]
        for head in range(dense.shape[1]):
            keys, _, _ = layer.entries(0, head)
            want = dense[0, head]
            if mask is not None:
                hidden = mask[2][(mask[0] == 0) & (mask[1] == head)]
                want = want[[i for i in range(want.shape[0]) if i not in set(hidden.tolist())]]
            assert torch.equal(keys, want), (index, head)


def _cache_after_first_compression(model, prompt, compression, monkeypatch):
    """The ragged cache of a one-token generation (the compression right after the prefill)."""

    seen = {}
    original = generation._measure

    def spy(row, cache, step):
        seen.setdefault("cache", cache)
        return original(row, cache, step)

    monkeypatch.setattr(generation, "_measure", spy)
    generate(model, [prompt], [compression], 1)
    return seen["cache"]


@pytest.mark.parametrize("scope", ["head", "layer", "model", "auto"])
def test_memory_held_never_exceeds_the_budget(scope: str) -> None:
    model = tiny_model("llama-gqa")
    batch = prompts(90, 70)
    budget, interval = 24, 6
    out = generate(model, batch, [rc(Budget(tokens=budget), scope, interval)] * 2, 40)
    layers, kv_heads = model.config.num_hidden_layers, model.config.num_key_value_heads
    entry = 2 * (model.config.hidden_size // model.config.num_attention_heads) * 4 + 4  # k, v, position
    for got in out:
        assert len(got.tokens) == 40 and len(got.steps) == 40  # step 0 and one per fed token
        for step in got.steps:
            assert step.cache_tokens <= budget
            assert step.held_bytes <= budget * layers * kv_heads * entry
        # compressed right after the prefill and every `interval` steps, down to budget − interval
        assert [s.cache_tokens for s in got.steps[: interval + 1]] == [18, 19, 20, 21, 22, 23, 18]


def test_a_ratio_is_held_against_the_growing_cache() -> None:
    model = tiny_model("llama-gqa")
    (out,) = generate(model, prompts(80), [rc(Budget(ratio=0.75), "head", 4)], 30)
    for step in out.steps:
        full = 80 + step.step
        assert step.cache_tokens <= 0.25 * full + 1e-9


def test_a_threshold_keeps_what_scores_above_it() -> None:
    model = tiny_model("llama-gqa")
    low, high = (
        generate(model, prompts(60), [rc(Budget(threshold=t), "head", 4)], 12)[0] for t in (-1e9, 1e9)
    )
    assert low.steps[0].cache_tokens == 60  # everything scores above -1e9
    assert high.steps[0].cache_tokens == WINDOW + 2  # only the window and the sinks (+inf)


def test_every_press_that_has_a_scorer_runs_while_generating() -> None:
    model = tiny_model("llama-gqa")
    for name in decoding_names():
        compression = make_decoding(name, Budget(tokens=20), 4)
        (out,) = generate(model, prompts(50), [compression], 12)
        assert len(out.tokens) == 12
        if compression is not None:
            assert max(s.cache_tokens for s in out.steps) <= 20


def test_generation_stops_at_a_stop_token() -> None:
    model = tiny_model("llama-gqa")
    (free,) = generate(model, prompts(30), [None], 10)
    stop = free.tokens[3]
    (stopped,) = generate(model, prompts(30), [None], 10, stop=[stop])
    assert stopped.tokens == free.tokens[: free.tokens.index(stop) + 1]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Budget(), "give one budget"),
        (lambda: Budget(tokens=8, ratio=0.5), "give one budget"),
        (lambda: Budget(tokens=0), "budget"),
        (lambda: rc(Budget(tokens=8), interval=8), "leaves no room for 8 steps"),
        (lambda: DecodingCompression(CrossLayerPress(RCStatPress()), Budget(tokens=8)), "ScorerPress"),
        (lambda: make_decoding("pyramidkv", Budget(tokens=8)), "cannot compress while generating"),
        (lambda: make_decoding("nope", Budget(tokens=8)), "unknown press nope"),
    ],
)
def test_bad_compressions_are_refused(make, message) -> None:
    with pytest.raises(RCStatError, match=message):
        make()


def test_bad_batches_are_refused() -> None:
    model = tiny_model("llama-gqa")
    with pytest.raises(RCStatError, match="not below the prompt's 20"):
        generate(model, prompts(20), [rc(Budget(tokens=20))], 4)
    with pytest.raises(RCStatError, match="a prompt of the batch is empty"):
        generate(model, [*prompts(20), torch.zeros(0, dtype=torch.long)], [None, None], 4)
    with pytest.raises(RCStatError, match="one compression"):
        generate(model, prompts(20), [None, None], 4)


def test_the_scorer_sees_exactly_the_last_history_inputs() -> None:
    """The recent inputs a scorer reads, joined and trimmed every few steps, equal the last ``history``
    inputs the layer saw (prompt rows, then generated ones): hidden states and rotary ``cos``."""
    model = tiny_model("llama-gqa")
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    read: list[tuple[torch.Tensor, ...]] = []

    def spy(module, args, kwargs, output) -> None:
        seen.append((kwargs["hidden_states"].detach(), kwargs["position_embeddings"][0].detach()))

    class Spy(KnormPress):
        def score(self, module, hidden_states, keys, values, attentions, kwargs):
            if module.layer_idx == 0:
                so_far = [torch.cat(parts, 1) for parts in zip(*seen, strict=True)]
                read.append((hidden_states, kwargs["position_embeddings"][0], *so_far))
            return super().score(module, hidden_states, keys, values, attentions, kwargs)

    history, interval = 12, 2 * recent.JOIN + 3
    hook = attention_layers(model)[0].module.register_forward_hook(spy, with_kwargs=True)
    try:
        generate(
            model, prompts(30), [DecodingCompression(Spy(), Budget(ratio=0.5), "head", interval, history)], 80
        )
    finally:
        hook.remove()
    assert len(read) == 3  # after the prefill, then twice more than JOIN steps later
    for hidden, cos, all_hidden, all_cos in read:
        assert hidden.shape[1] == history
        torch.testing.assert_close(hidden, all_hidden[:, -history:], rtol=0, atol=0)
        torch.testing.assert_close(cos, all_cos[:, -history:], rtol=0, atol=0)
