"""The presses of kvpress 0.5.5 in the registry: each builds by name and keeps the share it is asked
for, replayed on a recorded prefill or (KVCompose, KVgrad) run live; those left out say why."""

from __future__ import annotations

import kvpress
import pytest
import torch

from rcstat.errors import RCStatError
from rcstat.evaluation.kv.live import LiveRuns
from rcstat.kv.replay import compress_live, record_prefill, replay
from rcstat.presses import PRESSES, make_press
from rcstat.presses.registry import UNAVAILABLE, decoding_names
from tests.helpers import tiny_model

# registry name -> the kvpress class it builds (the outer one, for a wrapper over SnapKV)
REPLAYED = {
    "cur": kvpress.CURPress,
    "leverage": kvpress.LeverageScorePress,
    "non_causal_attention": kvpress.NonCausalAttnPress,
    "cap": kvpress.CapPress,
    "entropy_gated_chunkkv": kvpress.EntropyGatedChunkKVPress,
    "merging": kvpress.MergingPress,
}
LIVE = {"kvcompose": kvpress.KVComposePress, "kvgrad": kvpress.KVgradPress}
CONTEXT = 96  # above SnapKV's default window of 64


def context(seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 128, (1, CONTEXT), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", [*REPLAYED, *LIVE])
def test_every_new_press_builds_by_name_at_its_ratio(name: str) -> None:
    press = make_press(name, 0.5)
    assert type(press) is {**REPLAYED, **LIVE}[name]
    assert press.compression_ratio == 0.5
    assert PRESSES[name].live == (name in LIVE)
    assert name not in decoding_names()  # they read the prefill whole: none reruns while generating


@pytest.mark.parametrize("ratio", [0.5, 0.75])
@pytest.mark.parametrize("name", list(REPLAYED))
def test_replayed_presses_keep_the_asked_share(name: str, ratio: float) -> None:
    record = record_prefill(tiny_model("llama-gqa"), context())
    torch.manual_seed(0)  # Leverage sketches its keys at random
    compressed = replay(record, make_press(name, ratio))
    assert compressed.kept_fraction == pytest.approx(1 - ratio, abs=0.01)
    assert compressed.held_bytes < record.held_bytes


@pytest.mark.parametrize("name", list(REPLAYED))
def test_replayed_presses_compress_gemma3_full_layers_and_leave_the_sliding_ones(name: str) -> None:
    record = record_prefill(tiny_model("gemma3-gqa"), context(1))
    torch.manual_seed(0)
    kept = replay(record, make_press(name, 0.5)).kept_per_layer()
    assert kept == pytest.approx([1.0, 0.5, 1.0], abs=0.01)  # layer types: sliding, full, sliding


def test_kvcompose_cannot_be_replayed_and_keeps_the_asked_share_live() -> None:
    """KVCompose scores in its own forward (a repeat of the context, eager weights): live only. Its
    structured selection keeps one length per layer, the same for every head, so memory shrinks."""
    model = tiny_model("llama-gqa")
    ids = context(2)
    record = record_prefill(model, ids)
    with pytest.raises(RCStatError, match="cannot be replayed"):
        replay(record, make_press("kvcompose", 0.5))
    runs = LiveRuns(model, ids)
    for ratio in (0.5, 0.75):
        compressed, _ = runs.compress(make_press("kvcompose", ratio))
        assert compressed.kept_fraction == pytest.approx(1 - ratio, abs=0.01)
        assert compressed.masks == [None] * model.config.num_hidden_layers
        assert compressed.held_bytes == pytest.approx((1 - ratio) * record.held_bytes, rel=0.02)
        assert len(set(compressed.lengths())) > 1  # budgets differ across layers
    assert model.config._attn_implementation == "sdpa"  # KVCompose ran eager and gave it back


@pytest.mark.parametrize("family", ["gemma3-gqa", "phi3-gqa"])
def test_kvcompose_refuses_a_model_it_does_not_run_on_in_one_line(family: str) -> None:
    """kvpress only warns there, then fails inside its own passes (Gemma 3: an IndexError)."""
    with pytest.raises(
        RCStatError, match="runs on LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM only"
    ):
        LiveRuns(tiny_model(family), context(2)).compress(make_press("kvcompose", 0.5))


@pytest.mark.realmodel
def test_kvgrad_runs_live_and_one_run_serves_every_ratio(tiny_checkpoint: str) -> None:
    """KVgrad is KVzip's reconstruction (it reads the tokenizer's chat template, hence the checkpoint):
    one live run's scores give every ratio, mask for mask as a live run per ratio."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    text = " ".join(
        f"Room {i} of the museum shows a {animal}." for i, animal in enumerate(["owl", "fox"] * 6)
    )
    ids = tokenizer(text, return_tensors="pt").input_ids
    runs = LiveRuns(model, ids)
    for ratio in (0.5, 0.8):
        shared, _ = runs.compress(make_press("kvgrad", ratio))
        alone = compress_live(model, ids, make_press("kvgrad", ratio))
        for a, b in zip(shared.masks, alone.masks, strict=True):
            assert torch.equal(torch.stack(a), torch.stack(b))
        assert shared.kept_fraction == pytest.approx(1 - ratio, abs=0.01)
    assert len(runs.runs) == 1
    kvzip = compress_live(model, ids, make_press("kvzip", 0.5))
    assert any(  # the gradient changes what is kept
        not torch.equal(torch.stack(a), torch.stack(b))
        for a, b in zip(runs.compress(make_press("kvgrad", 0.5))[0].masks, kvzip.masks, strict=True)
    )


@pytest.mark.parametrize("name", ["fastkvzip", "restorekv", "lukv", "finch", "simlayerkv", "think", "kvzap"])
def test_presses_left_out_say_why(name: str) -> None:
    assert name not in PRESSES
    with pytest.raises(RCStatError, match=f"{name}: not offered here"):
        make_press(name)
    assert not set(UNAVAILABLE) & set(PRESSES)
