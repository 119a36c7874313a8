"""Plots of attribution heads (needs matplotlib, the ``plot`` extra; imported only here, lazily).

- :func:`plot_profile`: a head profile as a layer × head heatmap of mean expected RC, with the
  top-K heads marked.
- :func:`plot_contextualization`: for one example and one head, the histograms of the
  cross-contextualization logits ``X`` (response queries → context keys) and the
  self-contextualization logits ``Y`` (response queries → earlier response keys), the picture of
  the paper's Figure 1: RC is how far X reaches above Y.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rcstat import stats
from rcstat.attribution.attributor import Head, HeadProfile, select_heads, span_y
from rcstat.attribution.features import Task, capture
from rcstat.errors import RCStatError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RCStatError("plots need matplotlib: pip install 'rcstat[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    """Written whole or not at all (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format=path.suffix.lstrip(".") or "png")
    os.replace(tmp, path)


def plot_profile(profile: HeadProfile, path: str | Path, top_k: int = 20) -> None:
    """A layer × head heatmap of the profile's mean expected RC; the ``top_k`` heads are boxed."""
    plt = _pyplot()
    values = torch.tensor(profile.head_rc)
    layers, heads = values.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * heads + 2.2), max(4.0, 0.22 * layers + 1.5)), dpi=90)
    image = ax.imshow(values.numpy(), aspect="auto", cmap="viridis", origin="lower")
    for layer, head in select_heads(values, min(top_k, values.numel())):
        ax.add_patch(plt.Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.2))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_xticks(range(heads))
    ax.set_title(
        f"{profile.model}: mean E[RC] ({profile.estimator}) over {profile.examples} examples\n"
        f"red boxes: the top {top_k} heads",
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, label="mean expected RC (logit units)")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def contextualization_samples(
    model, task: Task, head: Head | None = None, estimator: stats.Estimator = "independent"
) -> tuple[Head, torch.Tensor, torch.Tensor, float]:
    """``(head, x, y, E[RC])`` of one head over the whole response (its top head by E[RC] when
    ``head`` is None): ``x`` = ``X_s(p, g)``, ``y`` = ``Y_s(g, g)``."""
    if head is None:
        head = select_heads(capture(model, task, estimator, heads=[]).head_rc, 1)[0]
    layer, index = head
    layers = model.config.num_hidden_layers
    heads = model.config.num_attention_heads
    if not (0 <= layer < layers and 0 <= index < heads):
        raise RCStatError(f"no head {layer}:{index}: the model has {layers} layers of {heads} heads")
    features = capture(model, task, estimator, heads=[head])
    block = features.logits[layer][0][None]  # (1, R, C + R)
    context = block.shape[-1] - block.shape[-2]
    x = block[0, :, :context].flatten()
    y = span_y(block, torch.arange(block.shape[-2]), context)[0]
    return head, x, y, float(features.head_rc[layer, index])


def plot_contextualization(
    model,
    task: Task,
    path: str | Path,
    head: Head | None = None,
    estimator: stats.Estimator = "independent",
    title: str = "",
) -> Head:
    """Histograms of X (cross) and Y (self) logits of one head for one example; returns the head."""
    plt = _pyplot()
    head, x, y, rc = contextualization_samples(model, task, head, estimator)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=90)
    low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    bins = torch.linspace(low, high, 61).numpy()
    ax.hist(x.numpy(), bins=bins, density=True, alpha=0.55, label=f"X: response → context ({len(x)} logits)")
    ax.hist(y.numpy(), bins=bins, density=True, alpha=0.55, label=f"Y: response → response ({len(y)} logits)")
    ax.axvline(float(y.min()), color="C1", ls=":", lw=1, label="min Y")
    ax.set_xlabel("pre-softmax attention logit")
    ax.set_ylabel("density")
    layer, index = head
    ax.set_title(f"{title}layer {layer} head {index}: E[RC] = {rc:.2f} ({estimator})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return head
