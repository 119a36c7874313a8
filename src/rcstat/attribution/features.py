"""Attribution features from one forward pass (docs/method.md §4, steps 1–2).

:func:`build_task` lays a context, a query and a response out as one chat sequence and records
where every context token and response token sits, in tokens and in characters.
:func:`capture` runs the model once over it (its own fast attention) and keeps, per layer, the
logits of the response's queries against the context and response keys, ``heads × R × (C + R)``,
and each head's expected RC of the whole context against the whole response (for head
selection). Optionally it keeps post-softmax attention to the context and hidden states, for
the baselines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rcstat import stats
from rcstat.errors import RCStatError
from rcstat.models.loading import model_limit
from rcstat.models.logits import LogitCapture

INSTRUCTION = "Answer the query using the context."


@dataclass
class Task:
    """A context ⊕ query ⊕ response sequence and where its parts are."""

    context: str
    query: str
    response: str
    input_ids: torch.Tensor  # (1, n)
    context_positions: torch.Tensor  # (C,) token positions of context tokens
    context_spans: list[tuple[int, int]]  # (C,) their character spans in ``context``
    response_positions: torch.Tensor  # (R,)
    response_spans: list[tuple[int, int]]  # (R,) character spans in ``response``
    chunk_spans: list[tuple[int, int]]  # caller's chunks in ``context`` (one chunk if plain text)


def format_context(context: str | list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Plain text as is (one chunk); a list of chunks numbered ``[1] …`` one per line, with their spans."""
    if isinstance(context, str):
        if not context.strip():
            raise RCStatError("the context is empty")
        return context, [(0, len(context))]
    chunks = [c for c in context]
    if not chunks or not any(c.strip() for c in chunks):
        raise RCStatError("the context is empty")
    text, spans = "", []
    for i, chunk in enumerate(chunks):
        text += f"[{i + 1}] "
        spans.append((len(text), len(text) + len(chunk)))
        text += chunk + "\n"
    return text.rstrip("\n"), spans


def _prompt(tokenizer, context: str, query: str) -> tuple[str, int]:
    """The prompt (in the chat template; a base model without one gets the plain text after its start
    token) and the character offset of the context in it."""
    marker = "\x00CONTEXT\x00"
    body = f"{INSTRUCTION}\n\nContext:\n{marker}\n\nQuery: {query}"
    if getattr(tokenizer, "chat_template", None):
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": body}], tokenize=False, add_generation_prompt=True
        )
    else:
        chat = f"{tokenizer.bos_token or ''}{body}\n\nAnswer:"
    head, tail = chat.split(marker)
    return head + context + tail, len(head)


def sequence_length(tokenizer, context: str | list[str], query: str, response: str) -> int:
    """Tokens of the sequence :func:`build_task` lays out for a given response (no model needed)."""
    prompt, _ = _prompt(tokenizer, format_context(context)[0], query)
    return sum(len(tokenizer(text, add_special_tokens=False).input_ids) for text in (prompt, response))


def build_task(
    model,
    tokenizer,
    context: str | list[str],
    query: str,
    response: str | None = None,
    max_new_tokens: int = 128,
) -> Task:
    """Lay out the sequence; generate the response greedily when not given (teacher-forced if given)."""
    if not query.strip():
        raise RCStatError("the query is empty", option="query")
    text, chunks = format_context(context)
    prompt, at = _prompt(tokenizer, text, query)
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    prompt_ids, offsets = enc["input_ids"], enc["offset_mapping"]
    ctx = [(t, a - at, b - at) for t, (a, b) in enumerate(offsets) if b > at and a < at + len(text)]
    limit = model_limit(model)
    if response is None:
        ids = torch.tensor([prompt_ids])
        if limit and ids.shape[1] + max_new_tokens > limit:
            raise RCStatError(f"the prompt has {ids.shape[1]} tokens; the model allows {limit}")
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False
            )
        response_ids = [t for t in out[0, ids.shape[1] :].tolist() if t != tokenizer.eos_token_id]
        pieces = [tokenizer.decode(response_ids[: i + 1]) for i in range(len(response_ids))]
        response = pieces[-1] if pieces else ""
        spans = [(len(a), len(b)) for a, b in zip(["", *pieces[:-1]], pieces, strict=True)]
    else:
        renc = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
        response_ids, spans = renc["input_ids"], [tuple(s) for s in renc["offset_mapping"]]
    if not response_ids or not response.strip():
        raise RCStatError("the response is empty")
    n = len(prompt_ids) + len(response_ids)
    if limit and n > limit:
        raise RCStatError(f"context, query and response need {n} tokens; the model allows {limit}")
    return Task(
        context=text,
        query=query,
        response=response,
        input_ids=torch.tensor([prompt_ids + response_ids]),
        context_positions=torch.tensor([t for t, _, _ in ctx]),
        context_spans=[(max(a, 0), min(b, len(text))) for _, a, b in ctx],
        response_positions=torch.arange(len(prompt_ids), n),
        response_spans=spans,
        chunk_spans=chunks,
    )


@dataclass
class Features:
    """What one pass over a :class:`Task` keeps (per layer ``l``; ``H`` heads, ``C`` context and
    ``R`` response tokens)."""

    logits: dict[int, torch.Tensor]  # l -> (H', R, C + R): response queries × (context ⊕ response) keys
    heads: dict[int, list[int]]  # l -> the heads kept in ``logits`` (all, or those asked for)
    head_rc: torch.Tensor  # (L, H) E[RC] of the whole context against the whole response
    estimator: str
    attention: dict[int, torch.Tensor] = field(default_factory=dict)  # l -> (H, R, C) softmax weights
    hidden: tuple[torch.Tensor, torch.Tensor] | None = None  # (C, d), (R, d) hidden states


def capture(
    model,
    task: Task,
    estimator: stats.Estimator,
    heads: list[tuple[int, int]] | None = None,
    attention: bool = False,
    hidden_layer: int | None = None,
) -> Features:
    """One forward pass; logits of all heads (or only ``heads``), plus the optional baselines' inputs."""
    rows = task.response_positions
    ctx = task.context_positions
    keys = torch.cat([ctx, rows])
    wanted: dict[int, list[int]] = {}
    for layer, head in heads or []:
        wanted.setdefault(layer, []).append(head)
    kept: dict[int, torch.Tensor] = {}
    kept_heads: dict[int, list[int]] = {}
    head_rc: dict[int, torch.Tensor] = {}
    weights: dict[int, torch.Tensor] = {}
    causal = torch.arange(task.input_ids.shape[1])[None, :] <= rows[:, None]  # (R, n)

    def on_layer(index: int, lg: torch.Tensor) -> None:
        lg = lg[0]  # (H, R, n)
        x = lg[:, :, ctx].flatten(1)
        y = stats.self_samples(lg, rows, range(lg.shape[-1]), rows, rows)
        head_rc[index] = stats.expected_rc(x, y, estimator)
        chosen = list(range(lg.shape[0])) if heads is None else wanted.get(index, [])
        if chosen:
            kept[index] = lg[chosen][:, :, keys].clone()
            kept_heads[index] = chosen
        if attention:
            weights[index] = lg.masked_fill(~causal, float("-inf")).softmax(-1)[:, :, ctx]

    with LogitCapture(model, rows, on_layer=on_layer), torch.no_grad():
        out = model(task.input_ids, output_hidden_states=hidden_layer is not None, logits_to_keep=1)
    hidden = None
    if hidden_layer is not None:
        states = out.hidden_states[hidden_layer][0]
        hidden = (states[ctx], states[rows])
    return Features(
        logits=kept,
        heads=kept_heads,
        head_rc=torch.stack([head_rc[i] for i in sorted(head_rc)]),
        estimator=estimator,
        attention=weights,
        hidden=hidden,
    )
