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


def _llama(kv_heads: int) -> Callable[[], torch.nn.Module]:
    def build() -> torch.nn.Module:
        from transformers import LlamaConfig, LlamaForCausalLM

        return LlamaForCausalLM(LlamaConfig(**COMMON, num_attention_heads=4, num_key_value_heads=kv_heads))

    return build


def _mistral() -> torch.nn.Module:
    from transformers import MistralConfig, MistralForCausalLM

    return MistralForCausalLM(
        MistralConfig(**COMMON, num_attention_heads=4, num_key_value_heads=2, sliding_window=None)
    )


def _qwen2() -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return Qwen2ForCausalLM(Qwen2Config(**COMMON, num_attention_heads=4, num_key_value_heads=2))


def _qwen3() -> torch.nn.Module:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    return Qwen3ForCausalLM(Qwen3Config(**COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=24))


def _phi3() -> torch.nn.Module:
    from transformers import Phi3Config, Phi3ForCausalLM

    return Phi3ForCausalLM(
        Phi3Config(**COMMON, num_attention_heads=4, num_key_value_heads=2, partial_rotary_factor=0.5)
    )


def _gemma3() -> torch.nn.Module:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        **COMMON,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=20,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        attn_logit_softcapping=8.0,
    )
    return Gemma3ForCausalLM(config)


FAMILIES: dict[str, Callable[[], torch.nn.Module]] = {
    "llama-gqa": _llama(2),
    "llama-mha": _llama(4),
    "mistral": _mistral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "phi3": _phi3,
    "gemma3": _gemma3,
}


def tiny_model(family: str, attn_implementation: str = "sdpa", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = FAMILIES[family]()
    model.set_attn_implementation(attn_implementation)
    return model.eval()


@pytest.fixture(params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest) -> str:
    return request.param
