"""Generate from a prompt while compressing, and account for the cache over the generation
(``rcstat generate``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rcstat.errors import RCStatError
from rcstat.kv.generation import DecodingCompression, Generated, generate
from rcstat.models.loading import model_limit
from rcstat.presses.registry import FULL_CACHE


@dataclass
class GenerationReport:
    """The text, the compression's record, and the cache's entries and bytes at every step."""

    text: str
    press: str
    compression: DecodingCompression | None
    generated: Generated

    def to_dict(self) -> dict:
        g, c = self.generated, self.compression
        tokens = max(1, len(g.tokens))
        return {
            "text": self.text,
            "press": self.press,
            "compression": repr(c) if c else None,
            "budget": c.budget.describe() if c else None,
            "interval": c.interval if c else None,
            "prompt_tokens": g.prompt_tokens,
            "generated_tokens": len(g.tokens),
            "seconds_per_token": g.decode_seconds / tokens,
            "compress_seconds": g.compress_seconds,
            "prefill_seconds": g.prefill_seconds,
            "steps": [vars(step) for step in g.steps],
            "held_bytes_last_step": g.held_parts,
        }


def prompt_ids(model, tokenizer, context: str, query: str) -> torch.Tensor:
    """The prompt of a generation, 1-D: the context and then the query, in the model's chat template
    where it has one (as kvpress's pipeline builds a query-aware prompt)."""
    from transformers import pipeline

    if not query.strip():
        raise RCStatError("the query is empty", option="query")
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tokenizer)
    inputs = pipe.preprocess(context + "\n" + query, [""], answer_prefix="", max_context_length=10**9)
    return torch.cat([inputs["context_ids"], inputs["questions_ids"][0]], dim=1)[0]


def generate_text(
    model,
    tokenizer,
    context: str,
    query: str,
    compression: DecodingCompression | None = None,
    press: str | None = None,
    max_new_tokens: int = 256,
    on_token: Callable[[int, int], None] | None = None,
) -> GenerationReport:
    """Greedy generation after ``context`` and ``query``, compressing the cache with ``compression``
    (``None``: the full cache) from the prefill on; stops at the model's end token.

    ``press``: the label the report carries (default: the scorer's class name, or ``none``);
    ``on_token(done, total)``: progress, as :func:`rcstat.kv.generation.generate` gives it."""
    ids = prompt_ids(model, tokenizer, context, query)
    limit = model_limit(model)
    if limit and ids.shape[0] + max_new_tokens > limit:
        raise RCStatError(
            f"the prompt and {max_new_tokens} new tokens need {ids.shape[0] + max_new_tokens} positions; "
            f"the model allows {limit}"
        )
    (generated,) = generate(model, [ids], [compression], max_new_tokens, stop_tokens(model), on_token)
    text = tokenizer.decode(generated.tokens, skip_special_tokens=True)
    if press is None:
        press = type(compression.scorer).__name__ if compression is not None else FULL_CACHE
    return GenerationReport(text.strip(), press, compression, generated)


def stop_tokens(model) -> list[int]:
    """The model's end tokens."""
    stop = model.generation_config.eos_token_id
    return [] if stop is None else list(stop) if isinstance(stop, list) else [stop]
