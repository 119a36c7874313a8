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
