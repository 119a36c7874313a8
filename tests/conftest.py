"""Test configuration: the hub is off, every family of tiny model is a fixture, and so is a tiny
checkpoint saved with the embedded tokenizer (for the commands)."""

from __future__ import annotations

import os

import pytest

from rcstat.models import embedded
from tests.helpers import FAMILIES, save_tiny_checkpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach for the hub


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A 3-layer random Llama with the default model's tokenizer and chat template (needs it prepared)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded.prepare_default_model())
    return save_tiny_checkpoint(
        tmp_path_factory.mktemp("tiny"),
        tokenizer,
        LlamaForCausalLM,
        LlamaConfig,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )


@pytest.fixture(scope="session")
def tiny_gemma3(tiny_checkpoint: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 3-layer random Gemma 3 (sliding, global, sliding; window 5) with the tiny checkpoint's tokenizer."""
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    return save_tiny_checkpoint(
        tmp_path_factory.mktemp("gemma3"),
        AutoTokenizer.from_pretrained(tiny_checkpoint),
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        head_dim=16,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    )
