"""Compression while generating: a kvpress scorer evicts from a ragged cache every ``interval`` steps,
so that the memory each sequence holds follows its budget while it generates (docs/method.md §3).

The sequence is a prompt ``p`` followed by a generated part ``g``. Right after the prefill, and then
every ``interval`` generated tokens, each cached key is scored against the most recent rows ``g'``
(the last ``history`` hidden states the layer saw, the prompt's last rows at first): for RC,
:meth:`RCStatPress.score` — its window is the last ``window_size`` of those rows, ``Y`` their own
causal logits. Any kvpress ``ScorerPress`` scores the same way, with the contract kvpress's
``DecodingPress`` gives it (a buffer of recent hidden states, the full keys). Each sequence then
keeps, by score, its :class:`Budget`: ``tokens`` entries per KV head on average, or the ``ratio``
of its full cache, or every entry scoring above τ. :data:`Scope` says how a budget is shared:
the same for every head (``head``, as kvpress's scorers), ranked across the heads of each layer
(``layer``, AdaKV's rule), across every layer and head (``model``, :class:`CrossLayerPress`'s), or
as the scorer decides once it has met the model (``auto``: :class:`AutoRCScorer`'s ``scope``). The
scorer meets the model first (``post_init_from_model``) and its ``compression_ratio`` is the share
each compression evicts.

The cache is a :class:`~rcstat.kv.ragged.RaggedCache`: what is evicted is freed at once, and each
kept head gets room for exactly ``interval`` more entries, so the bytes a sequence holds never
exceed its budget (for ``tokens``; for a ``ratio``, its share of the full cache) at any step.
Sequences of different lengths generate together (left-padded prefill; padding is dropped before
anything is scored or kept), each with its own compression and budget, and each generates what it
would alone. Sliding-window layers keep their window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from kvpress import ScorerPress
from torch import nn

from rcstat.errors import RCStatError
from rcstat.kv.ragged import RaggedCache, RaggedLayer, ragged_attention
from rcstat.kv.recent import Recent
from rcstat.models.logits import attach_rotary, attention_layers, is_sliding
from rcstat.options import DEFAULT_HISTORY, DEFAULT_INTERVAL, Scope, check_choice, check_number, check_room


@dataclass(frozen=True)
class Budget:
    """What one sequence may hold while it generates: ``tokens`` entries per KV head (on average over
    the heads and the compressed layers), the ``ratio`` of its full cache evicted, or every entry
    scoring above ``threshold``. Exactly one is given."""

    tokens: int | None = None
    ratio: float | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.tokens, self.ratio, self.threshold)) != 1:
            raise RCStatError(
                "give one budget: a token count, a compression ratio or a threshold", option="budget"
            )
        if self.tokens is not None:
            check_number("budget", self.tokens, low=1, integer=True)
        if self.ratio is not None:
            check_number("compression_ratio", self.ratio, low=0, high=1, high_open=True)
        if self.threshold is not None:
            check_number("threshold", self.threshold)

    def kept(self, length: int, interval: int) -> int | None:
        """Entries per head to keep when compressing a cache of ``length`` positions, so that after
        ``interval`` more it holds at most the budget (``None``: thresholded)."""
        if self.tokens is not None:
            return self.tokens - interval
        if self.ratio is not None:
            return max(1, math.floor((1 - self.ratio) * (length + interval)) - interval)
        return None

    def describe(self) -> str:
        if self.tokens is not None:
            return f"{self.tokens} tokens"
        return f"ratio {self.ratio:g}" if self.ratio is not None else f"τ={self.threshold:g}"


@dataclass
class DecodingCompression:
    """How one sequence's cache is compressed while it generates; the repr is the record.

    ``scorer``: a kvpress ``ScorerPress`` (its ratio set to the share each compression evicts);
    ``scope``: how the budget is shared (:data:`Scope`; ``auto``: the scorer's own ``scope``);
    ``interval``: generated tokens between compressions; ``history``: recent hidden states the
    scorer sees.
    """

    scorer: ScorerPress
    budget: Budget
    scope: Scope = "head"
    interval: int = DEFAULT_INTERVAL
    history: int = DEFAULT_HISTORY

    def __post_init__(self) -> None:
        if not isinstance(self.scorer, ScorerPress):
            raise RCStatError("compressing while generating needs a kvpress ScorerPress", option="press")
        check_choice("scope", self.scope, Scope)
        if self.scope == "auto" and not hasattr(self.scorer, "scope"):
            raise RCStatError(
                "scope auto needs a scorer that reads its scope from the model, not "
                f"{type(self.scorer).__name__}",
                option="scope",
            )
        check_number("interval", self.interval, low=1, integer=True)
        check_number("history", self.history, low=1, integer=True)
        if self.budget.tokens is not None:
            check_room(self.budget.tokens, self.interval)


@dataclass(frozen=True)
class Step:
    """One sequence's cache after a generated token (step 0: after the prompt): entries held per KV
    head on average, and bytes an uncompressed cache would hold (keys and values) and the ragged
    cache holds (keys and values, a 4-byte position per entry, and room allocated to grow into)."""

    step: int
    cache_tokens: float
    full_bytes: int
    held_bytes: int


@dataclass
class Generated:
    """What one sequence generated (up to its first end token, included), and its cache over time."""

    prompt_tokens: int
    tokens: list[int]
    steps: list[Step] = field(default_factory=list)
    compress_seconds: float = 0.0  # this sequence's scoring and eviction
    prefill_seconds: float = 0.0  # the batch's prefill
    decode_seconds: float = 0.0  # the batch's generation after the prefill, compression included
    clock: list[float] = field(default_factory=list)  # seconds after the prefill as each token came
    held_parts: dict[str, int] = field(default_factory=dict)  # the last step's held bytes, by part


@dataclass
class _Row:
    """Generation state of one sequence of the batch."""

    index: int
    pad: int  # left padding of its prompt
    length: int  # its positions so far (prompt and generated)
    compression: DecodingCompression | None
    out: Generated
    done: bool = False
    since: int = 0  # steps since its last compression


def generate(
    model: nn.Module,
    prompts: Sequence[torch.Tensor],
    compressions: Sequence[DecodingCompression | None],
    max_new_tokens: int,
    stop: Sequence[int] = (),
    on_token: Callable[[int, int], None] | None = None,
) -> list[Generated]:
    """Greedy generation of every prompt (1-D token ids), each with its own compression (``None``:
    the full cache), in one batch; each row stops at its first ``stop`` token.

    ``on_token(done, total)`` is called as each token of the batch comes (``total``:
    ``max_new_tokens``; when every row stopped early, a last call has ``total == done``). Returns per
    sequence the tokens and a :class:`Step` per generated token (and step 0).
    """
    if len(prompts) != len(compressions) or not prompts:
        raise RCStatError("give one compression (or None) per prompt")
    check_number("max_new_tokens", max_new_tokens, low=1, integer=True)
    device = next(model.parameters()).device
    lengths = [int(p.shape[-1]) for p in prompts]
    if min(lengths) == 0:
        raise RCStatError("a prompt of the batch is empty", option="prompts")
    for n, c in zip(lengths, compressions, strict=True):
        if c is not None and c.budget.tokens is not None and c.budget.tokens >= n:
            raise RCStatError(
                f"a budget of {c.budget.tokens} tokens is not below the prompt's {n}: nothing to compress",
                option="budget",
            )
    width = max(lengths)
    rows = [
        _Row(r, width - n, n, c, Generated(prompt_tokens=n, tokens=[]))
        for r, (n, c) in enumerate(zip(lengths, compressions, strict=True))
    ]
    history = max((c.history for c in compressions if c is not None), default=1)
    layers = {la.index: la.module for la in attention_layers(model)}
    cache = RaggedCache(model.config)
    recent = Recent(model, history)
    attach_rotary(model, layers.values())
    for c in {id(c): c for c in compressions if c is not None}.values():
        c.scorer.post_init_from_model(model)
    stops = set(stop)
    started = time.perf_counter()
    try:
        with torch.no_grad(), ragged_attention(model):
            out = _prefill(model, prompts, cache, recent, width, device)
            prefilled = time.perf_counter()
            for step in range(max_new_tokens + 1):
                for row in rows:
                    if row.done:
                        continue
                    if row.compression is not None and (step == 0 or row.since >= row.compression.interval):
                        began = time.perf_counter()
                        _compress(row, cache, layers, recent, width + step)
                        row.out.compress_seconds += time.perf_counter() - began
                        row.since = 0
                    row.out.steps.append(_measure(row, cache, step))
                if step == max_new_tokens:
                    break
                nxt = out.logits[:, -1].argmax(-1)
                now = time.perf_counter() - prefilled
                for row in rows:
                    if not row.done:
                        row.out.tokens.append(int(nxt[row.index]))
                        row.out.clock.append(now)
                        row.done = int(nxt[row.index]) in stops or step + 1 == max_new_tokens
                if on_token is not None:
                    last = all(row.done for row in rows) and step + 1 < max_new_tokens
                    on_token(step + 1, step + 1 if last else max_new_tokens)
                if all(row.done for row in rows):  # the last token is never fed: its step is the last
                    break
                for row in rows:
                    row.length += 1
                    row.since += 1
                position = torch.tensor([[row.length - 1] for row in rows], device=device)
                out = model(
                    input_ids=nxt[:, None],
                    position_ids=position,
                    cache_position=torch.tensor([width + step], device=device),
                    past_key_values=cache,
                    logits_to_keep=1,
                )
    finally:
        recent.remove()
    for row in rows:
        row.out.prefill_seconds, row.out.decode_seconds = prefilled - started, time.perf_counter() - prefilled
        row.out.held_parts = _parts(row, cache)
    return [row.out for row in rows]


def _prefill(model, prompts, cache: RaggedCache, recent: Recent, width: int, device) -> Any:
    """One left-padded prefill of the distinct prompts (a prompt several rows share runs once), its
    cache, logits and recent inputs then given to every row; padding is dropped before anything is
    scored or kept."""
    distinct: dict[tuple[int, ...], int] = {}
    source = torch.tensor([distinct.setdefault(tuple(p.tolist()), len(distinct)) for p in prompts])
    firsts = [prompts[int((source == u).nonzero()[0])] for u in range(len(distinct))]
    ids = torch.zeros(len(firsts), width, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for u, prompt in enumerate(firsts):
        ids[u, width - prompt.shape[-1] :], mask[u, width - prompt.shape[-1] :] = prompt.to(device), 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, logits_to_keep=1
    )
    source, keep = source.to(device), mask.bool()[source.to(device)]
    for layer in cache.layers:
        keys, values = layer.keys[source], layer.values[source]
        slots = torch.arange(width, device=device).expand(keys.shape[:3])
        layer.keep(keys, values, keep[:, None, :].expand(keys.shape[:3]), slots, width)
    recent.select(source)
    out.logits = out.logits[source]
    return out


def _measure(row: _Row, cache: RaggedCache, step: int) -> Step:
    held = entries = heads = full = 0
    for layer in cache.layers:
        counts = layer.count[row.index]
        entries += sum(counts)
        heads += len(counts)
        k, v = layer.k[row.index][0], layer.v[row.index][0]
        seen = min(row.length, layer.sliding_window) if layer.sliding_window else row.length
        full += len(counts) * seen * (k.shape[-1] + v.shape[-1]) * k.element_size()
        held += layer.row_bytes(row.index)
    return Step(step, entries / heads, full, held)


def _parts(row: _Row, cache: RaggedCache) -> dict[str, int]:
    """What one sequence's held bytes hold: the keys and values in use, their positions, and room
    allocated ahead for the entries of the next steps (the buffers grow by 1/16, or by ``interval``)."""
    used = positions = held = 0
    for layer in cache.layers:
        held += layer.row_bytes(row.index)
        for k, v, pos, n in zip(
            *(s[row.index] for s in (layer.k, layer.v, layer.pos, layer.count)), strict=True
        ):
            used += n * (k.shape[-1] * k.element_size() + v.shape[-1] * v.element_size())
            positions += n * pos.element_size()
    return {"keys_and_values": used, "positions": positions, "room_to_grow": held - used - positions}


def _compress(row: _Row, cache: RaggedCache, layers: dict, recent: Recent, slot: int) -> None:
    """Score one sequence's entries in every compressed layer, choose by its budget, evict."""
    c = row.compression
    seen = min(c.history, row.length)
    kept = c.budget.kept(row.length, c.interval)
    scored: list[tuple[RaggedLayer, torch.Tensor, list[int]]] = []
    for index, module in layers.items():
        layer = cache.layers[index]
        if is_sliding(module):
            continue
        if kept is not None:  # the share of the held entries this compression evicts (FillPress's cap)
            c.scorer.compression_ratio = max(0.0, 1 - kept / max(layer.count[row.index]))
        scores, counts = _scores(c.scorer, module, layer, row, recent, index, seen, slot)
        scored.append((layer, scores, counts))
    heads = sum(s.shape[0] for _, s, _ in scored)
    scope = c.scorer.scope if c.scope == "auto" else c.scope
    if kept is None:
        choice = [s > c.budget.threshold for _, s, _ in scored]
    elif scope == "head":
        choice = [_top(s, kept) for _, s, _ in scored]
    elif scope == "layer":
        choice = [_top(s.reshape(1, -1), kept * s.shape[0]).reshape(s.shape) for _, s, _ in scored]
    else:
        flat = torch.cat([s.reshape(-1) for _, s, _ in scored])
        chosen = _top(flat[None], kept * heads)[0]
        choice = list(chosen.split([s.numel() for _, s, _ in scored]))
        choice = [ch.reshape(s.shape) for ch, (_, s, _) in zip(choice, scored, strict=True)]
    for (layer, scores, counts), keep in zip(scored, choice, strict=True):
        width = scores.shape[-1]
        for head, n in enumerate(counts):  # every head anew: room for `interval` entries, no more
            index = torch.nonzero(keep[head, width - n :]).flatten()  # heads are left-padded to `width`
            layer.retain(row.index, head, index, room=c.interval)


def _scores(
    scorer: ScorerPress,
    module: nn.Module,
    layer: RaggedLayer,
    row: _Row,
    recent: Recent,
    index: int,
    seen: int,
    slot: int,
) -> tuple[torch.Tensor, list[int]]:
    """``(kv_heads, width)`` scores of one row's entries in one layer (heads left-padded to the
    longest, padding at ``-inf``), and each head's count."""
    r = row.index
    counts = list(layer.count[r])
    width = max(counts)
    held = [layer.entries(r, h) for h in range(len(counts))]
    keys = held[0][0].new_zeros(1, len(counts), width, held[0][0].shape[-1])
    values = held[0][1].new_zeros(1, len(counts), width, held[0][1].shape[-1])
    padding = torch.zeros(len(counts), width, dtype=torch.bool, device=keys.device)
    first = torch.zeros(len(counts), width, dtype=torch.long, device=keys.device)
    for h, ((k, v, pos), n) in enumerate(zip(held, counts, strict=True)):
        keys[0, h, width - n :], values[0, h, width - n :] = k, v
        padding[h, : width - n] = True
        first[h, width - n :] = pos.long() - row.pad  # positions in the sequence itself
    hidden, (cos, sin) = recent.rows(index, r, seen)
    kwargs = {
        "position_embeddings": (cos, sin),
        "cache_position": torch.arange(slot - seen, slot, device=keys.device),
        "attention_mask": None,
    }
    scores = scorer.score(module, hidden, keys, values, None, kwargs)[0].float()
    scores = scores.masked_fill(padding, float("-inf"))
    sinks = getattr(scorer, "sink_tokens", 0)
    if sinks and bool(padding.any()):  # the scorer protected its first columns: padding, here
        scores = scores.masked_fill(~padding & (first < sinks), float("inf"))
    return scores, counts


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Booleans marking the ``k`` highest of each row of ``scores`` (all when ``k`` covers them)."""
    keep = torch.zeros_like(scores, dtype=torch.bool)
    k = max(0, min(k, scores.shape[-1]))
    keep.scatter_(-1, scores.topk(k, dim=-1).indices, True)
    return keep & (scores > float("-inf"))
