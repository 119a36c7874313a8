"""The recent inputs of every attention layer, which a scorer reads while generating."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rcstat.models.logits import attention_layers

JOIN = 16  # chunks of recent inputs held before they are joined into one


class Recent:
    """The last ``size`` inputs (hidden states, rotary ``cos`` and ``sin``) of every attention layer,
    kept as the chunks each forward gave (appending costs nothing per step); every :data:`JOIN`
    chunks, or a chunk longer than ``size`` (the prefill), they are joined into one of at most
    ``size`` rows, so a step's cost and a read's do not grow with ``size``."""

    def __init__(self, model: nn.Module, size: int) -> None:
        self.size = size
        self.chunks: dict[int, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
        self.hooks = [
            la.module.register_forward_hook(self._hook(la.index), with_kwargs=True)
            for la in attention_layers(model)
        ]

    def _hook(self, index: int) -> Callable:
        def keep(module: nn.Module, args: tuple, kwargs: dict, output) -> None:
            hidden, (cos, sin) = kwargs["hidden_states"], kwargs["position_embeddings"]
            chunks = self.chunks.setdefault(index, [])
            chunks.append((hidden.detach(), cos.detach(), sin.detach()))
            if len(chunks) >= JOIN or hidden.shape[1] > self.size:
                chunks[:] = [
                    tuple(torch.cat(parts, 1)[:, -self.size :] for parts in zip(*chunks, strict=True))
                ]

        return keep

    def rows(
        self, index: int, row: int, count: int
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The last ``count`` inputs of batch row ``row`` to layer ``index``: hidden states and rope."""
        joined = [
            torch.cat([c[i][row : row + 1] for c in self.chunks[index]], 1)[:, -count:] for i in range(3)
        ]
        return joined[0], (joined[1], joined[2])

    def select(self, rows: torch.Tensor) -> None:
        """Keep ``rows`` of the batch (repeating a row that several sequences share)."""
        for chunks in self.chunks.values():
            chunks[:] = [tuple(t[rows] for t in chunk) for chunk in chunks]

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()
