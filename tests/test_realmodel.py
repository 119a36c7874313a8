"""The few tests on the embedded default model (SmolLM2-135M-Instruct), prepared once per run."""

from __future__ import annotations

import itertools
import json
import time
from unittest import mock

import pytest
import torch
from transformers import DynamicCache

from rcstat import cli
from rcstat.models import embedded, load_model, tokenizers
from rcstat.models.logits import LogitCapture

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def prepared() -> str:
    return str(embedded.prepare_default_model())


@pytest.fixture(scope="module")
def default_model(prepared: str):
    return load_model(prepared)


def test_prepare_prints_the_directory_last_and_loads_fast(prepared: str, capsys) -> None:
    assert cli.main(["model", "prepare"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == prepared
    start = time.perf_counter()
    model, tokenizer = load_model()
    assert time.perf_counter() - start < 5.0
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == 2
    assert tokenizer("plain text").input_ids[0] != tokenizer.bos_token_id
    assert model.config.num_hidden_layers == 30 and model.config.num_key_value_heads == 3
    tokenizers.check_tokenizer(tokenizer)


def test_logits_equal_eager_on_a_1k_token_prompt(default_model) -> None:
    """Engine vs. the model's own eager softmax inputs, in the same forward and across kernels."""
    model, _ = default_model
    n = 1024
    ids = torch.randint(20, 49000, (1, n), generator=torch.Generator().manual_seed(0))
    rows = torch.cat([torch.arange(0, n - 64, 37), torch.arange(n - 64, n)])
    causal = torch.arange(n)[None, :] <= rows[:, None]

    def run(attn: str) -> tuple[LogitCapture, DynamicCache, list[torch.Tensor]]:
        reference: list[torch.Tensor] = []
        real_softmax = torch.nn.functional.softmax

        def spy(t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            if t.dim() == 4:
                reference.append(t[:, :, rows].detach().clone())
            return real_softmax(t, *args, **kwargs)

        cache = DynamicCache(config=model.config)
        model.set_attn_implementation(attn)
        try:
            patched = mock.patch("torch.nn.functional.softmax", spy)
            with patched, LogitCapture(model, rows) as capture, torch.no_grad():
                model(ids, past_key_values=cache)
        finally:
            model.set_attn_implementation("sdpa")
        return capture, cache, reference

    def worst(capture: LogitCapture, cache: DynamicCache, reference: list[torch.Tensor]) -> float:
        errors = [
            (capture.logits(i, cache) - want).abs()[..., causal].max() for i, want in enumerate(reference)
        ]
        return float(max(errors))

    eager_capture, eager_cache, reference = run("eager")
    assert len(reference) == 30
    assert worst(eager_capture, eager_cache, reference) <= 1e-4
    # With sdpa the model's own forward drifts from eager by float32 rounding, layer after layer
    # (about 4e-4 at 1k tokens); the engine adds nothing to that drift.
    sdpa_capture, sdpa_cache, none = run("sdpa")
    assert none == []  # sdpa never calls softmax: nothing was forced to eager
    assert worst(sdpa_capture, sdpa_cache, reference) <= 2e-3


def test_demo_finds_the_passage_the_answer_came_from(prepared: str, tmp_path, capsys) -> None:
    assert cli.main(["demo", "--format", "json", "--report", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert "Curie" in result["answer"]
    best = max(result["passages"], key=lambda p: p["score"])
    assert best["index"] == 2
    bounds = list(result["bounds_top_head_best_passage"].values())
    assert all(a <= b + 1e-6 for a, b in itertools.pairwise(bounds))
    # --report (what `make demo` passes): the same answer attributed, and the passages compressed
    assert f"report: {tmp_path / 'attribution.html'} and {tmp_path / 'compression.html'}" in err
    page = (tmp_path / "attribution.html").read_text()
    assert 'value="chunk" checked' in page and "Marie Curie was the first person" in page
    compression = result["compression"]
    assert compression["realised_ratio"] == pytest.approx(0.5, abs=0.02) and "Curie" in compression["answer"]
    assert (tmp_path / "compression.html").read_text().count('<rect class="bar"') == 30


def test_rcstat_press_in_the_kvpress_pipeline_keeps_the_needle(default_model) -> None:
    """Query-aware compression at ratio 0.5 on the default model: the answer survives."""
    from transformers import pipeline

    from rcstat import rc_press
    from rcstat.models.logits import attention_layers

    model, tokenizer = default_model
    filler = " ".join(
        f"Note {i}: the weather report for district {i} mentioned light rain and mild winds."
        for i in range(40)
    )
    needle = "The secret code word for the vault is PELICAN."
    context = filler[: len(filler) // 2] + " " + needle + " " + filler[len(filler) // 2 :]
    question = "What is the secret code word for the vault? Answer with the word only."
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    press = rc_press(0.5, window_size=16)
    answer = pipe(context + "\n" + question, question="", press=press, max_new_tokens=16)["answer"]
    assert "PELICAN" in answer.upper()
    assert type(press.chosen).__name__ == "CrossLayerPress"  # 30 layers × 3 KV heads: RC across the model
    inputs = pipe.preprocess(context + "\n" + question, [""], answer_prefix="", max_context_length=10**9)
    n = inputs["context_ids"].shape[1]
    heads = model.config.num_key_value_heads
    evicted = [len(layer.module.masked_key_indices[0]) / (heads * n) for layer in attention_layers(model)]
    assert 0.45 <= sum(evicted) / len(evicted) <= 0.55


def test_the_kvpress_pipeline_answers_from_a_ragged_cache_as_from_the_masked_one(default_model) -> None:
    """Two questions on one compressed context (kvpress trims each answer off the cache)."""
    from transformers import pipeline

    from rcstat import rc_press
    from rcstat.kv.memory import cache_bytes
    from rcstat.kv.ragged import RaggedCache, RaggedPress, ragged_attention

    model, tokenizer = default_model
    context = " ".join(
        f"Room {i} of the museum shows {animal}s." for i, animal in enumerate(["owl", "fox"] * 30)
    )
    questions = ["What does room 7 show?", "What does room 12 show?"]
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    masked_cache, ragged_cache = DynamicCache(config=model.config), RaggedCache(model.config)
    press = rc_press(0.6)
    masked = pipe(context, questions=questions, press=press, cache=masked_cache, max_new_tokens=12)["answers"]
    with ragged_attention(model):
        ragged = pipe(
            context, questions=questions, press=RaggedPress(press), cache=ragged_cache, max_new_tokens=12
        )["answers"]
    assert ragged == masked
    assert cache_bytes(ragged_cache) / cache_bytes(masked_cache) == pytest.approx(0.4, abs=0.03)


def test_a_chunk_copied_into_the_response_ranks_first(default_model) -> None:
    """Teacher-forced: the response repeats chunk 3 word for word; RC's top chunk is chunk 3."""
    from rcstat.attribution import Attributor

    model, tokenizer = default_model
    chunks = [
        "The Rhine rises in the Swiss Alps and flows north to the North Sea.",
        "Honey never spoils: edible honey was found in ancient Egyptian tombs.",
        "Mount Kilimanjaro in Tanzania is the highest mountain in Africa.",
        "The Great Barrier Reef is the largest coral reef system on Earth.",
    ]
    result = Attributor(model, tokenizer).attribute(chunks, "Tell me a fact.", response=chunks[2])
    assert result.attributions(granularity="chunk").ranking[0] == 2
    span = result.attributions(*result.find("Kilimanjaro"), granularity="chunk")
    assert span.ranking[0] == 2 and span.target[2].strip() == "Kilimanjaro"
    frame = span.to_frame()
    assert list(frame.columns) == ["text", "start", "end", "score"] and frame.index[0] == 3  # 1-based
