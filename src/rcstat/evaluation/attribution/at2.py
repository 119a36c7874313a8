"""AT2, the learned single-pass baseline (Cohen-Wang et al., 2025, arXiv 2504.13752), as trained here.

AT2 learns one weight per attention head from ablation effects, then attributes in one pass. Here:
for each training example, ``ablations`` random masks each drop every chunk with probability ½ (at
least one kept), and the response's teacher-forced log-probability falls by ``Δ(mask)``
(:func:`rcstat.evaluation.attribution.bench.response_logprobs`, the faithfulness harness). A
source's score is ``Σ_h w_h · A_h(s)`` — each head's post-softmax attention from the response's
tokens to the source's tokens, summed over the source and averaged over the response tokens — and
the weights make the linear surrogate ``Δ(mask) ≈ b + Σ_s [s dropped] · score_s`` fit every mask of
every example, by ridge regression in closed form over all heads of all layers. (AT2 itself trains
the same surrogate with a correlation loss by gradient descent; the surrogate and the features are
its.) The weights are saved per model (JSON) and read back by the method ``at2``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rcstat.attribution.attributor import attribution
from rcstat.attribution.features import Features, build_task, capture
from rcstat.errors import RCStatError
from rcstat.evaluation.attribution.data import Example
from rcstat.io import read_text, write_atomic
from rcstat.models.loading import model_name
from rcstat.options import check_number


@dataclass(frozen=True)
class HeadWeights:
    """One weight per head (layers × heads), learned from ablations; saved per model (JSON)."""

    model: str
    weights: list[list[float]]
    examples: int
    ablations: int
    ridge: float
    method: str = "at2"

    def save(self, path: str | Path) -> None:
        write_atomic(path, (json.dumps(self.__dict__, indent=1) + "\n").encode())

    @classmethod
    def load(cls, path: str | Path) -> HeadWeights:
        """Saved weights, checked: a full layers × heads table of numbers."""
        text = read_text(path)  # its own errors (no such file…) as they are
        try:
            data = json.loads(text)
            weights = [[float(v) for v in row] for row in data["weights"]]
            loaded = cls(
                str(data["model"]),
                weights,
                int(data["examples"]),
                int(data["ablations"]),
                float(data["ridge"]),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise RCStatError(f"{path}: not AT2 head weights ({type(err).__name__}: {err})") from None
        if not weights or len({len(row) for row in weights}) != 1 or not weights[0]:
            raise RCStatError(f"{path}: not AT2 head weights (`weights` must be a full layers × heads table)")
        return loaded

    def check(self, model, name: str) -> None:
        shape = (model.config.num_hidden_layers, model.config.num_attention_heads)
        if (len(self.weights), len(self.weights[0])) != shape or self.model != name:
            raise RCStatError(
                f"the AT2 weights were trained on {self.model} ({len(self.weights)} × {len(self.weights[0])} "
                f"heads), not {name} ({shape[0]} × {shape[1]})",
                option="head_weights",
            )

    def tensor(self) -> torch.Tensor:
        return torch.tensor(self.weights)


def head_features(features: Features, groups: Sequence[torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
    """``(layers · heads, sources)``: each head's attention from the response tokens ``rows`` to each
    source's tokens, summed over the source and averaged over the rows."""
    per_layer = []
    for layer in sorted(features.attention):
        weights = features.attention[layer][:, rows].mean(1)  # (H, C)
        per_layer.append(torch.stack([weights[:, g].sum(-1) for g in groups], dim=-1))  # (H, S)
    return torch.cat(per_layer).float()


def at2_scores(weights: torch.Tensor, features: Features, groups, rows: torch.Tensor) -> torch.Tensor:
    """AT2's score of every source for the response tokens ``rows``."""
    return weights.reshape(-1) @ head_features(features, groups, rows)


def _masks(sources: int, count: int, rng: random.Random) -> list[list[bool]]:
    """``count`` keep-masks, each chunk kept with probability ½, never none."""
    masks = []
    while len(masks) < count:
        mask = [rng.random() < 0.5 for _ in range(sources)]
        if any(mask):
            masks.append(mask)
    return masks


def ablation_rows(model, tokenizer, example: Example, ablations: int, rng: random.Random):
    """``(X, y)`` of one example: per mask, the dropped sources' summed head features and the fall of
    the response's log-probability."""
    from rcstat.evaluation.attribution.bench import response_logprobs

    task = build_task(model, tokenizer, list(example.chunks), example.query, example.response)
    features = capture(model, task, "independent", heads=[], attention=True)
    groups = attribution(task, features, [], granularities=("chunk",)).groups["chunk"]
    if len(groups) != len(example.chunks):
        raise RCStatError("a chunk of the context holds no token")
    per_source = head_features(features, groups, torch.arange(len(task.response_positions)))
    full = float(response_logprobs(model, task).sum())
    xs, ys = [], []
    for mask in _masks(len(example.chunks), ablations, rng):
        kept = [c for c, keep in zip(example.chunks, mask, strict=True) if keep]
        ablated = build_task(model, tokenizer, kept, example.query, example.response)
        ys.append(full - float(response_logprobs(model, ablated).sum()))
        dropped = torch.tensor([0.0 if keep else 1.0 for keep in mask])
        xs.append(per_source @ dropped)
    return torch.stack(xs), torch.tensor(ys)


def fit_weights(x: torch.Tensor, y: torch.Tensor, ridge: float) -> torch.Tensor:
    """Ridge regression with an intercept: ``w`` minimising ``‖y − b − x w‖² + ridge ‖w‖²``."""
    x, y = x.double(), y.double()
    xc, yc = x - x.mean(0), y - y.mean()
    return torch.linalg.solve(xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ yc)


def train_at2(
    model,
    tokenizer,
    examples: Sequence[Example],
    ablations: int = 16,
    ridge: float = 1.0,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> HeadWeights:
    """Head weights from ``ablations`` random ablations of each example (ridge with an intercept)."""
    check_number("ablations", ablations, low=2, integer=True)
    check_number("ridge", ridge, low=0)
    if not examples:
        raise RCStatError("training AT2 needs at least one example")
    rng = random.Random(seed)
    xs, ys = [], []
    with torch.no_grad():
        for done, example in enumerate(examples, start=1):
            x, y = ablation_rows(model, tokenizer, example, ablations, rng)
            xs.append(x)
            ys.append(y)
            if progress:
                progress(done, len(examples))
    w = fit_weights(torch.cat(xs), torch.cat(ys), ridge)
    shape = (model.config.num_hidden_layers, model.config.num_attention_heads)
    return HeadWeights(model_name(model), w.reshape(shape).tolist(), len(examples), ablations, ridge)
