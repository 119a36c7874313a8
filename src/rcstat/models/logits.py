"""The logit engine (docs/method.md §1): pre-softmax attention logits for chosen query rows.

``f(i, j) = <q_j, k_i> · scaling`` with exactly the tensors the model feeds to its softmax:
post-RoPE, post q/k-norm where the model has one, times the module's own ``scaling``, without the
mask. Under GQA the key of a query head is the key of its KV head. (Gemma 3 declares
``attn_logit_softcapping`` but does not apply it in attention; neither do we.)

The model's own forward keeps its fast attention (sdpa, flash…): queries are recomputed for the
requested rows only, from the layer's input, and keys are read from the KV cache (or recomputed
where the cache does not hold them all, as in sliding-window layers). Logits exist one layer at a
time, ``rows × keys`` per head, never ``n × n`` for all layers.

Two ways to use it:

* **during a forward pass** — :class:`LogitCapture` with ``on_layer``: forward hooks on the attention
  modules hand each layer's logits to a callback, which reduces them at once (this is also how a
  kvpress press uses the engine, through :func:`layer_queries` and :func:`logits`);
* **after a finished pass** — :class:`LogitCapture` without a callback stores only the rows'
  queries (a few KB per layer); :meth:`LogitCapture.logits` then combines them with the cached keys.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import torch
from kvpress.utils import extract_keys_and_values, get_prerope_key_states, get_prerope_query_states
from torch import nn

from rcstat.errors import RCStatError

Rows = Sequence[int] | torch.Tensor | slice
RopeFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class AttentionLayer:
    """One attention module and what the engine needs to know about it."""

    index: int
    module: nn.Module
    rope: RopeFn

    @property
    def num_heads(self) -> int:
        return self.module.config.num_attention_heads

    @property
    def num_kv_heads(self) -> int:
        return self.module.config.num_key_value_heads

    @property
    def scaling(self) -> float:
        return float(self.module.scaling)


def attention_layer(module: nn.Module, owner: str | None = None) -> AttentionLayer:
    """Check one attention module for what the engine needs and wrap it.

    Raises :class:`RCStatError` naming what is missing for an unsupported architecture.
    """
    missing = [a for a in ("config", "head_dim", "scaling", "layer_idx") if not hasattr(module, a)]
    if not (hasattr(module, "qkv_proj") or (hasattr(module, "q_proj") and hasattr(module, "k_proj"))):
        missing.append("q_proj/k_proj or qkv_proj")
    rope = getattr(sys.modules.get(type(module).__module__), "apply_rotary_pos_emb", None)
    if rope is None:
        missing.append("apply_rotary_pos_emb in its modeling module")
    if missing:
        raise RCStatError(
            f"{owner or type(module).__name__} is not supported: "
            f"{type(module).__name__} lacks {', '.join(missing)}"
        )
    return AttentionLayer(index=module.layer_idx, module=module, rope=rope)


def is_sliding(module: nn.Module) -> bool:
    """A sliding-window attention layer (Gemma 3's local layers): its cache holds only the window, so
    presses leave it whole, as kvpress does for Gemma 3."""
    return bool(getattr(module, "is_sliding", False) and getattr(module, "sliding_window", None))


def attention_layers(model: nn.Module) -> list[AttentionLayer]:
    """The attention modules of a decoder-only model, each checked by :func:`attention_layer`."""
    name = type(model).__name__
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    blocks = getattr(decoder, "layers", None)
    if blocks is None:
        raise RCStatError(f"{name} is not supported: no decoder with a `layers` list")
    layers = []
    for i, block in enumerate(blocks):
        module = getattr(block, "self_attn", None)
        if module is None:
            raise RCStatError(f"{name} is not supported: decoder layer {i} has no self_attn")
        layers.append(attention_layer(module, owner=name))
    return layers


def _select(t: torch.Tensor, rows: Rows, dim: int) -> torch.Tensor:
    if isinstance(rows, slice):
        return t[(slice(None),) * dim + (rows,)]
    index = torch.as_tensor(rows, dtype=torch.long, device=t.device).reshape(-1)
    index = torch.where(index < 0, index + t.shape[dim], index)
    return t.index_select(dim, index)


def layer_queries(
    layer: AttentionLayer,
    hidden_states: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    rows: Rows,
) -> torch.Tensor:
    """Post-norm, post-RoPE queries of ``rows`` of the layer's input: ``(batch, heads, r, d)``.

    ``rows`` index the sequence dimension of ``hidden_states`` (negative values count from its end).
    """
    q = get_prerope_query_states(layer.module, _select(hidden_states, rows, 1))
    cos, sin = (_select(t, rows, 1) for t in position_embeddings)
    return layer.rope(q, q, cos, sin)[0]


class LayerRotary(nn.Module):
    """The model's rotary module bound to one layer's type.

    Gemma 3 keeps a local and a global RoPE in one module whose ``forward`` needs the layer's type;
    kvpress's scorers call ``module.rotary_emb(x, positions)`` without it (kvpress 0.5.5's
    ExpectedAttention fails on Gemma 3 in its own pipeline). Bound, the call gives the layer's own.
    """

    def __init__(self, rotary: nn.Module, layer_type: str | None) -> None:
        super().__init__()
        self.rotary, self.layer_type = rotary, layer_type

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor, layer_type: str | None = None):
        return self.rotary(x, position_ids, layer_type=layer_type or self.layer_type)


def layer_rotary(rotary: nn.Module, module: nn.Module) -> nn.Module:
    """``rotary`` as attention ``module`` should call it (bound to its type where the model needs one)."""
    if not isinstance(rotary, LayerRotary) and "layer_type" in inspect.signature(rotary.forward).parameters:
        return LayerRotary(rotary, getattr(module, "layer_type", None))
    return rotary


def attach_rotary(model: nn.Module, modules: Iterable[nn.Module]) -> None:
    """Give each attention module the model's rotary module, bound to its layer's type, where
    kvpress's scorers read it (``module.rotary_emb``, as kvpress's press context attaches it)."""
    rotary = getattr(model.get_decoder(), "rotary_emb", None)
    if rotary is not None:
        for module in modules:
            module.rotary_emb = layer_rotary(rotary, module)


def window_position_embeddings(
    module: nn.Module, hidden_states: torch.Tensor, kwargs: dict[str, Any], w: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary ``(cos, sin)`` of the last ``w`` rows of ``hidden_states`` (the observation window).

    At prefill the forward's own embeddings cover every row, and the window is the sequence's end
    (kvpress's ``BlockPress`` hands blocks of rows with the whole sequence's embeddings: like
    kvpress's own scorers, the window then takes the sequence's last positions). kvpress's
    ``DecodingPress`` hands a buffer of recent hidden states with the embeddings of the current
    step only: the buffer's rows end at ``cache_position[-1]``, and their embeddings are recomputed
    with the layer's rotary module (kvpress attaches it as ``module.rotary_emb``).
    """
    cos, sin = kwargs["position_embeddings"]
    if cos.shape[1] >= hidden_states.shape[1]:
        return cos[:, -w:], sin[:, -w:]
    rotary = getattr(module, "rotary_emb", None)
    if rotary is None or kwargs.get("cache_position") is None:
        raise RCStatError("scoring a buffer of hidden states needs the layer's rotary_emb and cache_position")
    last = int(kwargs["cache_position"][-1])
    positions = torch.arange(last - w + 1, last + 1, device=hidden_states.device)
    rotary = layer_rotary(rotary, module)
    return rotary(hidden_states[:, -w:], positions[None].expand(hidden_states.shape[0], -1))


def layer_keys(
    layer: AttentionLayer,
    hidden_states: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Post-norm, post-RoPE keys recomputed from the layer's input: ``(batch, kv_heads, n, d)``."""
    k = get_prerope_key_states(layer.module, hidden_states)
    cos, sin = position_embeddings
    return layer.rope(k, k, cos, sin)[1]


def logits(layer: AttentionLayer, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """``f(i, j)`` for the given queries ``(b, H, r, d)`` and keys ``(b, H_kv, n, d)``: ``(b, H, r, n)``.

    Computed in float32 (or higher), with GQA handled by a view, not a copy of the keys.
    """
    dtype = torch.promote_types(queries.dtype, torch.float32)
    b, h, r, d = queries.shape
    h_kv, n = keys.shape[1], keys.shape[2]
    q = queries.to(dtype).reshape(b, h_kv, h // h_kv, r, d)
    out = torch.matmul(q, keys.to(dtype).unsqueeze(2).transpose(-1, -2)).reshape(b, h, r, n)
    return out * layer.scaling


def _forward_inputs(kwargs: dict[str, Any], args: tuple) -> tuple[torch.Tensor, Any, Any, Any]:
    hidden = kwargs.get("hidden_states", args[0] if args else None)
    pos = kwargs.get("position_embeddings")
    if hidden is None or pos is None:
        raise RCStatError("attention module called without hidden_states or position_embeddings")
    return hidden, pos, kwargs.get("past_key_values"), kwargs.get("cache_position")


def _total_length(hidden: torch.Tensor, cache_position: Any) -> int:
    return int(cache_position[-1]) + 1 if cache_position is not None else hidden.shape[1]


def _cache_keys(cache: Any, layer_index: int, total: int) -> torch.Tensor | None:
    """The layer's cached keys if the cache holds all ``total`` of them, else ``None``."""
    if cache is None:
        return None
    keys, _ = extract_keys_and_values(cache, layer_index)
    return keys if keys.shape[-2] == total else None


def _full_keys(layer: AttentionLayer, hidden: torch.Tensor, pos: Any, cache: Any, cache_position: Any):
    """All keys seen by this forward's queries: from the cache when it holds them all."""
    total = _total_length(hidden, cache_position)
    keys = _cache_keys(cache, layer.index, total)
    if keys is not None:
        return keys
    if total != hidden.shape[1]:
        raise RCStatError(
            f"layer {layer.index}: the cache does not hold all {total} keys (sliding window?) "
            "and earlier keys cannot be recomputed from this forward"
        )
    return layer_keys(layer, hidden, pos)


class LogitCapture:
    """Context manager: logits of ``rows`` against all keys, for every (or the chosen) layer.

    ``rows`` index the sequence dimension of each forward's input (negative counts from its end);
    for a prefill from an empty cache they are absolute positions. With ``on_layer`` the logits of
    each layer, ``(batch, heads, r, keys)``, go to ``on_layer(layer_index, logits)`` during the
    forward pass and are not kept. Without it, only the queries are kept, and :meth:`logits`
    computes a layer's logits after the pass from the cache (or from keys kept for layers whose
    cache does not hold every key).
    """

    def __init__(
        self,
        model: nn.Module,
        rows: Rows,
        on_layer: Callable[[int, torch.Tensor], None] | None = None,
        layers: Sequence[int] | None = None,
    ) -> None:
        chosen = None if layers is None else set(layers)
        self.layers = [la for la in attention_layers(model) if chosen is None or la.index in chosen]
        self.rows = rows
        self.on_layer = on_layer
        self.queries: dict[int, torch.Tensor] = {}
        self.keys: dict[int, torch.Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> LogitCapture:
        for layer in self.layers:
            self._handles.append(layer.module.register_forward_hook(self._hook(layer), with_kwargs=True))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, layer: AttentionLayer) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> None:
            hidden, pos, cache, cache_position = _forward_inputs(kwargs, args)
            with torch.no_grad():
                q = layer_queries(layer, hidden, pos, self.rows)
                if self.on_layer is not None:
                    self.on_layer(
                        layer.index, logits(layer, q, _full_keys(layer, hidden, pos, cache, cache_position))
                    )
                    return
                self.queries[layer.index] = q
                if _cache_keys(cache, layer.index, _total_length(hidden, cache_position)) is None:
                    self.keys[layer.index] = _full_keys(layer, hidden, pos, cache, cache_position)

        return hook

    def logits(self, layer_index: int, cache: Any = None) -> torch.Tensor:
        """Logits ``(batch, heads, r, keys)`` of a captured layer, after the forward pass."""
        if layer_index not in self.queries:
            raise RCStatError(f"no queries were captured for layer {layer_index}")
        layer = next(la for la in self.layers if la.index == layer_index)
        keys = self.keys.get(layer_index)
        if keys is None:
            if cache is None:
                raise RCStatError("pass the forward's cache (past_key_values) to compute logits")
            keys, _ = extract_keys_and_values(cache, layer_index)
        return logits(layer, self.queries[layer_index], keys)

    def iter_logits(self, cache: Any = None) -> Iterator[tuple[int, torch.Tensor]]:
        """``(layer_index, logits)`` for every captured layer, one layer in memory at a time."""
        for index in sorted(self.queries):
            yield index, self.logits(index, cache)
