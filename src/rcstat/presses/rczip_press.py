"""``RCZipPress``: RC over a reconstruction window — KVzip's extra pass, scored by relative
contextualization instead of attention (docs/method.md §3).

After the prefill, the model reads "Repeat the previous context exactly." and the context again
(kvpress's ``KVzipPress`` runs these passes, in chunks for long contexts, and ranks the scores of
every layer together). Each repeated row ``j`` stands in for a future query. Where KVzip scores key
``i`` by the attention row ``j`` pays it, RC scores it by how far the logit stands above the row's
own self-contextualization: ``max_j (f(i, j) − mean Y_j)``, ``Y_j`` row ``j``'s causal logits inside
the repeat (attribution's row-paired ``Y`` and query-max pooling), max over the query heads of a KV
head. Cost: as KVzip's, 2–3 prefills of extra work; the logits of a repeat row against its chunk
and against the repeat, one layer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from kvpress import KVzipPress
from torch import nn

from rcstat.models.logits import attention_layer, layer_queries, logits


@dataclass
class RCZipPress(KVzipPress):
    """KVzip's reconstruction passes and cross-layer budget, keys scored by RC; the repr is the record."""

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
        queries = layer_queries(layer, hidden_states, kwargs["position_embeddings"], slice(None))
        x = logits(layer, queries, keys[:, :, self.start_idx : self.end_idx])  # (b, H, rows, chunk)
        y = logits(layer, queries, keys[:, :, -rows:])  # (b, H, rows, rows): the repeat, causal below
        causal = torch.ones(rows, rows, dtype=torch.bool, device=y.device).tril()
        floor = y.masked_fill(~causal, 0).sum(-1) / causal.sum(-1)  # mean of each row's own Y
        rc = (x - floor[..., None]).amax(dim=-2)  # (b, H, chunk): the best repeat row per key
        b, heads, chunk = rc.shape
        rc = rc.reshape(b, layer.num_kv_heads, heads // layer.num_kv_heads, chunk).amax(2)
        self.score_val[int(module.layer_idx)][..., self.start_idx : self.end_idx] = rc.to(
            self.score_val.dtype
        )
        return keys[:, :, : self.context_length], values[:, :, : self.context_length]
