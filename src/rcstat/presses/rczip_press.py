"""``RCZipPress``: RC over a reconstruction window — KVzip's extra pass, scored by relative
contextualization instead of attention (docs/method.md §3).

After the prefill, the model reads "Repeat the previous context exactly." and the context again
(kvpress's ``KVzipPress`` runs these passes, in chunks for long contexts, and ranks the scores of
every layer together). Each repeated row ``j`` stands in for a future query. Where KVzip scores key
``i`` by the attention row ``j`` pays it, RC scores it by how far the logit stands above the row's
own self-contextualization: ``max_j (f(i, j) − floor_j)``, max over the query heads of a KV head.
Cost: as KVzip's, 2–3 prefills of extra work; the logits of a repeat row against the context and
the repeat, one layer and a block of rows at a time.

Options (issue 27: where the first build differed from SPEC §3's prototype; the repr is the record):

- ``window``: the last ``window`` context tokens (query-aware: the question) are always kept, as the
  sinks are (the prototype kept 16, the default; 0 keeps none, as the first build did);
- ``prefix``: the chat template's prefix, which KVzip never scores (its first ``prefix_length``
  entries): ``"keep"`` (the default) keeps them as sinks, ``"zero"`` leaves them at KVzip's 0 (above
  every negative RC score: the first build), ``"evict"`` ranks them last (−inf), ``"score"`` scores
  them by RC like every other key;
- ``one_pass``: the whole context repeated in one pass, instead of KVzip's chunks of ``chunk_size``
  (each with its own "Repeat the part…" prompt and the previous chunk's last 8 tokens);
- ``floor``: ``"repeat"``, the mean of row ``j``'s causal logits over its pass's repeat, "Repeat…"
  prompt included (with ``one_pass`` the whole repeat: the prototype's); ``"row"``, over every key the
  row sees (context and causal repeat: the set KVzip's softmax normalises over, sinks included);
  ``"lse"``, the log-sum-exp of those logits: ``f(i, j) − floor_j`` is then the row's log attention
  weight, and the ranking KVzip's own (max over rows of the attention) up to its sinks (issue 27's
  Gemma diagnostic, benchmarks/kv/dev/rczip-gemma: RC's mean floor loses the answer in global layer
  11 where the attention keeps it);
- ``budget``: how many entries each layer keeps when ranked across layers: ``"rc"``, by RC's scores
  (KVzip's rule on RC's scale); ``"attention"``, by KVzip's own attention scores on the same passes
  (each row's log attention, ``f(i, j)`` less the row's log-sum-exp), RC still choosing which
  entries within each layer (issue 27: at 0.9 RC's ranking starved layers KVzip keeps).

kvpress's KVzip refuses Gemma 3; this press runs the passes itself there: each layer's rotary comes
from the forward (local or global), sliding-window layers are left whole (their window of the context
is put back after each repeat pass), and the budget is the global layers' share, ranked across them.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from kvpress import KVzipPress
from torch import nn
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizer

from rcstat.models.logits import attention_layer, attention_layers, is_sliding, layer_queries, logits

PREFIX = ("zero", "keep", "evict", "score")
FLOORS = ("repeat", "row", "lse")
BUDGETS = ("rc", "attention")
BLOCK = 256  # repeat rows scored at once: (heads × BLOCK × keys) logits, whatever the context's length


@dataclass
class RCZipPress(KVzipPress):
    """KVzip's reconstruction passes and cross-layer budget, keys scored by RC; the repr is the record."""

    window: int = 16
    prefix: str = "keep"
    one_pass: bool = False
    floor: str = "repeat"
    budget: str = "rc"

    def __post_init__(self) -> None:
        assert self.window >= 0, "window must be non-negative"
        assert self.prefix in PREFIX, f"prefix must be one of {PREFIX}"
        assert self.floor in FLOORS, f"floor must be one of {FLOORS}"
        assert self.budget in BUDGETS, f"budget must be one of {BUDGETS}"
        super().__post_init__()
        self._attention: dict[int, torch.Tensor] = {}  # budget="attention": per layer, KVzip's scores

    @contextmanager
    def __call__(self, model: PreTrainedModel) -> Generator:
        """KVzip's context (prefill, then the repeat passes and the eviction), on any supported model."""
        tokenizer = AutoTokenizer.from_pretrained(model.config.name_or_path)
        self.prefix_length, self._suffix_ids = _template(tokenizer)
        decoder = model.get_decoder()
        forward = decoder.forward

        def prefill(*args, **kwargs):
            self._context_ids, self._cache = kwargs["input_ids"], kwargs["past_key_values"]
            return forward(*args, **kwargs)

        decoder.forward = prefill
        try:
            try:
                yield
            finally:
                decoder.forward = forward
            if self.compression_ratio > 0 and self._context_ids is not None:
                self._windows = {
                    m.layer_idx: (c.keys, c.values, c.cumulative_length)
                    for m, c in zip(_modules(model), self._cache.layers, strict=True)
                    if is_sliding(m)
                }
                self._perform_kvzip_compression(model, tokenizer)
        finally:
            self._windows: dict[int, tuple] = {}
            self._attention = {}
            self._reset_internal_parameters()

    def forward_hook(self, module: nn.Module, input: list, kwargs: dict, output: list) -> list:
        """KVzip's scoring hook; a sliding-window layer gets its window of the context back instead."""
        if not is_sliding(module):
            return super().forward_hook(module, input, kwargs, output)
        cache = kwargs.get("past_key_values") or kwargs.get("past_key_value")
        layer = cache.layers[module.layer_idx]
        layer.keys, layer.values, layer.cumulative_length = self._windows[module.layer_idx]
        return output

    def _chunk_fn(self, ctx_ids: torch.Tensor, chunk_size: int) -> list[torch.Tensor]:
        """KVzip's chunks, or the whole context at once (``one_pass``)."""
        return [ctx_ids] if self.one_pass else super()._chunk_fn(ctx_ids, chunk_size)

    def score_kvzip(
        self,
        module: nn.Module,
        hidden_states: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        attentions: torch.Tensor | None,
        kwargs: dict,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score the chunk being reconstructed into ``score_val``; keep only the prefilled entries."""
        layer = attention_layer(module)
        rows = hidden_states.shape[1]
        first = self.prefix == "score" and self.start_idx == self.prefix_length
        lo = 0 if first else self.start_idx  # the first pass also scores the template's prefix
        queries = layer_queries(layer, hidden_states, kwargs["position_embeddings"], slice(None))
        seen = torch.arange(rows, device=keys.device)
        best = attention = None
        whole = self.floor != "repeat" or self.budget == "attention"  # logits of every context key
        for r in range(0, rows, BLOCK):
            q = queries[:, :, r : r + BLOCK]
            causal = seen[None, :] <= seen[r : r + BLOCK, None]  # (block, rows): the repeat below the row
            repeat = logits(layer, q, keys[:, :, -rows:])
            x = logits(
                layer, q, keys[:, :, : self.context_length] if whole else keys[:, :, lo : self.end_idx]
            )
            lse = (  # over every key the row sees: the context and the causal repeat
                torch.cat([x, repeat.masked_fill(~causal, float("-inf"))], dim=-1).logsumexp(-1)
                if self.floor == "lse" or self.budget == "attention"
                else None
            )
            if self.floor == "repeat":
                floor = repeat.masked_fill(~causal, 0).sum(-1) / causal.sum(-1)
            elif self.floor == "lse":
                floor = lse
            else:
                floor = (x.sum(-1) + repeat.masked_fill(~causal, 0).sum(-1)) / (causal.sum(-1) + x.shape[-1])
            x = x[..., lo : self.end_idx] if whole else x
            rc = (x - floor[..., None]).amax(dim=-2)  # (b, H, keys): the block's best row per key
            best = rc if best is None else torch.maximum(best, rc)
            if self.budget == "attention":  # the block's best log attention per key
                att = (x - lse[..., None]).amax(dim=-2)
                attention = att if attention is None else torch.maximum(attention, att)
        layer_idx = int(module.layer_idx)
        self.score_val[layer_idx][..., lo : self.end_idx] = _per_kv_head(best, layer).to(self.score_val.dtype)
        if attention is not None:
            held = self._attention.setdefault(layer_idx, torch.zeros_like(self.score_val[layer_idx]))
            held[..., lo : self.end_idx] = _per_kv_head(attention, layer).to(held.dtype)
        return keys[:, :, : self.context_length], values[:, :, : self.context_length]

    def _placed(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` (``(…, n)``, in place) with the sinks, the window and the unscored prefix placed."""
        top = scores.amax() + 1.0
        if self.window:
            scores[..., -self.window :] = top
        if self.prefix == "keep":
            scores[..., : self.prefix_length] = top
        elif self.prefix == "evict":
            scores[..., self.n_sink : self.prefix_length] = float("-inf")
        scores[..., : self.n_sink] = top + 1.0
        return scores

    def compress_post(self, model: nn.Module) -> None:
        """KVzip's eviction (the lowest scores of one ranking across the global layers, or ``layerwise``
        the same share of each), after placing the sinks, the window and the unscored prefix."""
        if self.compression_ratio == 0:
            return
        modules = _modules(model)
        scored = [m for m in modules if not is_sliding(m)]
        layers = [int(m.layer_idx) for m in scored]
        scores = self._placed(self.score_val[layers, 0])  # (layers, kv heads, n): batch 1
        per_layer, n = scores[0].numel(), scores.shape[-1]
        if self.layerwise:
            counts = [int(per_layer * self.compression_ratio)] * len(scored)
        else:
            ranked = (
                scores
                if self.budget == "rc"
                else self._placed(torch.stack([self._attention[i][0] for i in layers]))
            )
            pruned = torch.topk(-ranked.flatten(), int(ranked.numel() * self.compression_ratio)).indices
            counts = torch.bincount(pruned // per_layer, minlength=len(scored)).tolist()
        for module in modules:
            module.masked_key_indices = None  # a sliding-window layer is left whole
        for module, layer_scores, count in zip(scored, scores, counts, strict=True):
            index = torch.topk(-layer_scores.flatten(), count).indices.cpu()
            batch = torch.zeros(count, dtype=torch.long)
            module.masked_key_indices = (batch, index // n, index % n)


def _per_kv_head(scores: torch.Tensor, layer) -> torch.Tensor:
    """``(b, query heads, n)`` scores as ``(b, KV heads, n)``: the max over each KV head's query heads."""
    b, heads, n = scores.shape
    return scores.reshape(b, layer.num_kv_heads, heads // layer.num_kv_heads, n).amax(2)


def _modules(model: nn.Module) -> list[nn.Module]:
    return [layer.module for layer in attention_layers(model)]


def _template(tokenizer: PreTrainedTokenizer) -> tuple[int, torch.Tensor]:
    """The chat template's prefix length and the ids of its suffix (after the user's turn), as KVzip
    reads them: ``(0, "\n")`` without a template."""
    if tokenizer.chat_template is None:
        prefix, suffix = "", "\n"
    else:
        dummy = "dummy context"
        separator = "\n" + "#" * len(dummy)
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": dummy + separator}],
            add_generation_prompt=True,
            tokenize=False,
            enable_thinking=False,
        )
        context, suffix = text.split(separator)
        prefix = context.split(dummy)[0]
    ids = tokenizer.encode(prefix, return_tensors="pt", add_special_tokens=False)
    return ids.shape[-1], tokenizer.encode(suffix, return_tensors="pt", add_special_tokens=False)
