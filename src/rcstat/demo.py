"""A short, real demonstration of RC statistics (SPEC §1–2) on the embedded default model.

The model answers a question about numbered passages; one more forward pass over prompt ⊕
answer streams each layer's logits of the answer's queries; for every head, the expected RC of
each passage against the answer's self-contextualization is computed and reduced at once.
Passages are then scored by the heads whose RC of the whole context is highest (SPEC §4, step 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rcstat import stats
from rcstat.models.logits import LogitCapture

PASSAGES = (
    "The Rhine rises in the Swiss Alps and flows north through Germany to the North Sea.",
    "Marie Curie was the first person to win Nobel Prizes in two different sciences, "
    "physics in 1903 and chemistry in 1911.",
    "The Great Barrier Reef, off the coast of Queensland, is the largest coral reef system on Earth.",
    "Honey never spoils: archaeologists have found edible honey in ancient Egyptian tombs.",
    "Mount Kilimanjaro in Tanzania is the highest mountain in Africa, at 5,895 metres.",
)
QUESTION = "Which scientist won Nobel Prizes in two different sciences, and in which years?"


@dataclass
class DemoResult:
    """What the demo measured; ``to_dict`` is its machine-readable form."""

    model: str
    estimator: str
    question: str
    answer: str
    passages: list[str]
    passage_scores: list[float]
    top_heads: list[tuple[int, int, float]]
    bounds: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    answer_tokens: int = 0

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "estimator": self.estimator,
            "question": self.question,
            "answer": self.answer,
            "prompt_tokens": self.prompt_tokens,
            "answer_tokens": self.answer_tokens,
            "passages": [
                {"index": i + 1, "score": s, "text": p}
                for i, (p, s) in enumerate(zip(self.passages, self.passage_scores, strict=True))
            ],
            "top_heads": [{"layer": la, "head": h, "expected_rc": v} for la, h, v in self.top_heads],
            "bounds_top_head_best_passage": self.bounds,
        }


def build_prompt(tokenizer, passages: tuple[str, ...], question: str) -> tuple[str, list[tuple[int, int]]]:
    """Chat prompt with numbered passages, and each passage's character span in it."""
    marker = "\x00PASSAGES\x00"
    body = f"Answer from the passages.\n\n{marker}\nQuestion: {question}"
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": body}], tokenize=False, add_generation_prompt=True
    )
    head, tail = chat.split(marker)
    text, spans = head, []
    for i, passage in enumerate(passages):
        text += f"[{i + 1}] "
        spans.append((len(text), len(text) + len(passage)))
        text += passage + "\n"
    return text + tail, spans


def token_positions(offsets: list[tuple[int, int]], span: tuple[int, int]) -> list[int]:
    """Tokens whose characters overlap ``span``."""
    return [t for t, (a, b) in enumerate(offsets) if b > span[0] and a < span[1]]


def run_demo(
    model, tokenizer, model_name: str, estimator: str = "independent", top_k: int = 10
) -> DemoResult:
    """Generate an answer, then score passages and heads by expected RC in one streamed pass."""
    prompt, spans = build_prompt(tokenizer, PASSAGES, QUESTION)
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    prompt_ids = torch.tensor([enc["input_ids"]])
    with torch.no_grad():
        out = model.generate(
            prompt_ids,
            attention_mask=torch.ones_like(prompt_ids),
            max_new_tokens=48,
            do_sample=False,
            stop_strings=["\n\n"],
            tokenizer=tokenizer,
        )
    answer_ids = out[0, prompt_ids.shape[1] :].tolist()
    while answer_ids and (
        answer_ids[-1] == tokenizer.eos_token_id or not tokenizer.decode(answer_ids[-1:]).strip()
    ):
        answer_ids = answer_ids[:-1]  # the end-of-turn token and the "\n\n" that stopped generation
    if not answer_ids:
        answer_ids = tokenizer(" I don't know.", add_special_tokens=False).input_ids
    n_prompt = prompt_ids.shape[1]
    full = torch.tensor([enc["input_ids"] + answer_ids])
    rows = list(range(n_prompt, full.shape[1]))
    sources = [token_positions(enc["offset_mapping"], s) for s in spans]
    context = sorted({t for s in sources for t in s})

    per_layer: dict[int, torch.Tensor] = {}  # layer -> (heads, 1 + passages): E[Z] per segment
    keep_samples: dict[int, torch.Tensor] = {}

    def on_layer(index: int, logits: torch.Tensor) -> None:
        lg = logits[0]  # (heads, rows, keys)
        y = stats.self_samples(lg, rows, range(lg.shape[-1]), rows, rows)
        segments = [context, *sources]
        scores = [
            stats.expected_rc(stats.cross_samples(lg, rows, range(lg.shape[-1]), rows, seg), y, estimator)
            for seg in segments
        ]
        per_layer[index] = torch.stack(scores, dim=-1)
        keep_samples[index] = lg

    with LogitCapture(model, rows, on_layer=on_layer), torch.no_grad():
        model(full)

    table = torch.stack([per_layer[i] for i in sorted(per_layer)])  # (layers, heads, 1 + P)
    layers, heads = table.shape[:2]
    ctx = table[..., 0].reshape(-1)
    order = torch.argsort(ctx, descending=True)[:top_k]
    chosen = table.reshape(layers * heads, -1)[order, 1:]
    passage_scores = chosen.mean(0).tolist()
    top_heads = [(int(i) // heads, int(i) % heads, float(ctx[i])) for i in order]

    best_layer, best_head = top_heads[0][0], top_heads[0][1]
    best_passage = max(range(len(sources)), key=lambda p: passage_scores[p])
    lg = keep_samples[best_layer][best_head]
    x = stats.cross_samples(lg, rows, range(lg.shape[-1]), rows, sources[best_passage])
    y = stats.self_samples(lg, rows, range(lg.shape[-1]), rows, rows)
    bounds = {name: float(stats.expected_rc(x, y, name)) for name in stats.ESTIMATORS}
    return DemoResult(
        model=model_name,
        estimator=estimator,
        question=QUESTION,
        answer=tokenizer.decode(answer_ids).strip(),
        passages=list(PASSAGES),
        passage_scores=passage_scores,
        top_heads=top_heads,
        bounds=bounds,
        prompt_tokens=n_prompt,
        answer_tokens=len(answer_ids),
    )


def format_table(result: DemoResult) -> str:
    """Human-readable report of a :class:`DemoResult`."""
    lines = [
        f"model: {result.model}   estimator: {result.estimator}",
        f"question: {result.question}",
        f"answer: {result.answer}",
        f"({result.prompt_tokens} prompt tokens, {result.answer_tokens} answer tokens, one streamed pass)",
        "",
        f"passages scored by E[RC] over the top {len(result.top_heads)} heads:",
    ]
    best = max(result.passage_scores)
    for i, (passage, score) in enumerate(zip(result.passages, result.passage_scores, strict=True)):
        mark = "→" if score == best else " "
        lines.append(f" {mark} [{i + 1}] {score:7.3f}  {passage[:70]}{'…' if len(passage) > 70 else ''}")
    lines += ["", "top heads by E[RC] of the whole context against the answer:"]
    lines += [f"   layer {la:2d} head {h}: {v:.3f}" for la, h, v in result.top_heads[:5]]
    lines += ["", "the five estimators for the top head and the best passage (SPEC §2 ordering):"]
    lines.append("   " + "  ≤  ".join(f"{k} {v:.3f}" for k, v in result.bounds.items()))
    return "\n".join(lines)
