"""What tests share: tiny random models of every supported family (built from configs in code, no
downloads), JSONL writers, tokenizer stand-ins and the greedy decoding loop."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

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


# one QuoteSum row: two annotated sentences, each from its own passage
QUOTESUM_ROW = {
    "question": "Who?",
    "summary": "[ 1 Ada wrote it. ] [ 2 Bo read it. ]",
    "title1": "A",
    "source1": "Ada wrote it.",
    "title2": "B",
    "source2": "Bo read it.",
}


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


def save_tiny_checkpoint(directory: Path, tokenizer, model_class, config_class, **options) -> str:
    """A 3-layer random causal LM (hidden 64, 4 query and 2 KV heads, seed 0) of ``model_class`` with
    ``tokenizer``, saved in ``directory``; ``options`` add to or change its config."""
    torch.manual_seed(0)
    config = config_class(
        **{
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            **options,
        }
    )
    model_class(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def write_jsonl(path: Path, rows: Iterable[dict]) -> str:
    """One JSON object per line; returns the path as a string."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


class Words:
    """A whitespace tokenizer: one token per word."""

    def __call__(self, text: str, add_special_tokens: bool = False):
        return type("Enc", (), {"input_ids": text.split()})()


class Digits:
    """Decodes token ids as words, dropping the end token (as ``skip_special_tokens`` does)."""

    def __init__(self, stop: int) -> None:
        self.stop = stop

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return " ".join(str(int(i)) for i in ids if int(i) != self.stop)


def greedy(
    model: torch.nn.Module,
    cache,
    question: torch.Tensor,
    start: int,
    steps: int,
    one_token_at_a_time: bool = False,
) -> tuple[list[list[int]], torch.Tensor]:
    """Greedy decoding after ``start`` cached positions (kvpress continues positions after the full
    context): the question in one pass (several queries), or one token at a time (a model sizes its
    causal mask from layer 0, which fails when layers differ in length), then ``steps`` greedy
    tokens. Returns the tokens per row and the logits of each step, ``(batch, steps, vocab)``."""
    tokens, logits, ids = [], [], question
    with torch.no_grad():
        if one_token_at_a_time:
            for j in range(question.shape[1] - 1):
                positions = torch.tensor([[start + j]]).expand(question.shape[0], -1)
                model(input_ids=question[:, j : j + 1], past_key_values=cache, position_ids=positions)
            ids, start = question[:, -1:], start + question.shape[1] - 1
        for _ in range(steps):
            positions = torch.arange(start, start + ids.shape[1]).unsqueeze(0).expand(ids.shape[0], -1)
            out = model(input_ids=ids, past_key_values=cache, position_ids=positions)
            start += ids.shape[1]
            logits.append(out.logits[:, -1])
            ids = out.logits[:, -1:].argmax(-1)
            tokens.append(ids)
    return torch.cat(tokens, 1).tolist(), torch.stack(logits, 1)
