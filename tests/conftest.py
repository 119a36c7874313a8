"""Tiny random models of every supported family, built from configs in code (no downloads)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach for the hub

COMMON = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=3,
    max_position_embeddings=256,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)


def _llama(kv_heads: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**COMMON, num_attention_heads=4, num_key_value_heads=kv_heads))


def _mistral(kv_heads: int) -> torch.nn.Module:
    from transformers import MistralConfig, MistralForCausalLM

    return MistralForCausalLM(
        MistralConfig(**COMMON, num_attention_heads=4, num_key_value_heads=kv_heads, sliding_window=None)
    )


def _qwen2(kv_heads: int) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return Qwen2ForCausalLM(Qwen2Config(**COMMON, num_attention_heads=4, num_key_value_heads=kv_heads))


def _qwen3(kv_heads: int) -> torch.nn.Module:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    return Qwen3ForCausalLM(
        Qwen3Config(**COMMON, num_attention_heads=4, num_key_value_heads=kv_heads, head_dim=24)
    )


def _phi3(kv_heads: int) -> torch.nn.Module:
    from transformers import Phi3Config, Phi3ForCausalLM

    return Phi3ForCausalLM(
        Phi3Config(**COMMON, num_attention_heads=4, num_key_value_heads=kv_heads, partial_rotary_factor=0.5)
    )


def _gemma3(kv_heads: int) -> torch.nn.Module:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        **COMMON,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        head_dim=16,
        query_pre_attn_scalar=20,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        attn_logit_softcapping=8.0,
    )
    return Gemma3ForCausalLM(config)


# family -> (builder, KV heads under GQA); every family is also built without GQA (4 KV heads)
BUILDERS: dict[str, tuple[Callable[[int], torch.nn.Module], int]] = {
    "llama": (_llama, 2),
    "mistral": (_mistral, 2),
    "qwen2": (_qwen2, 2),
    "qwen3": (_qwen3, 2),
    "phi3": (_phi3, 2),
    "gemma3": (_gemma3, 1),
}
FAMILIES = [f"{name}-{kind}" for name in BUILDERS for kind in ("gqa", "mha")]


def tiny_model(family: str, attn_implementation: str = "sdpa", seed: int = 0) -> torch.nn.Module:
    """``family`` is a name of :data:`BUILDERS`, optionally suffixed ``-gqa`` (default) or ``-mha``."""
    name, _, kind = family.partition("-")
    build, gqa_heads = BUILDERS[name]
    torch.manual_seed(seed)
    model = build(4 if kind == "mha" else gqa_heads)
    model.set_attn_implementation(attn_implementation)
    return model.eval()


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param
