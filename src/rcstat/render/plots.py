"""Plots (need matplotlib, the ``plot`` extra; imported only here, lazily), written whole or not at all.

- :func:`plot_profile`: a head profile as a layer × head heatmap of mean expected RC, the top-K
  heads boxed;
- :func:`plot_contextualization`: one head's cross- (``X``, response → context) and
  self-contextualization (``Y``, response → earlier response) logits, the paper's Figure 1: RC is
  how far X reaches above Y;
- :func:`plot_kv`: score against compression ratio, one line per press, with 95% intervals;
- :func:`plot_frontier`: score against cost (prefills of work) at each ratio, one point per press.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from rcstat.attribution.profile import HeadProfile, select_heads
from rcstat.errors import RCStatError
from rcstat.presses.registry import FULL_CACHE


def pyplot():
    """matplotlib's pyplot on the Agg backend, or a clear error without the ``plot`` extra."""
    try:
        import matplotlib
    except ImportError:
        raise RCStatError("plots need matplotlib: pip install 'rcstat[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path, **options) -> None:
    """Written whole or not at all (a temporary file renamed into place), then closed; ``options``
    go to ``savefig``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        pyplot().close(fig)


def plot_profile(profile: HeadProfile, path: str | Path, top_k: int) -> None:
    """A layer × head heatmap of the profile's mean expected RC; the ``top_k`` heads are boxed."""
    plt = pyplot()
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
    save(fig, path)


def plot_contextualization(
    head: tuple[int, int],
    x: torch.Tensor,
    y: torch.Tensor,
    rc: float,
    estimator: str,
    path: str | Path,
    title: str = "",
) -> None:
    """Histograms of one head's X (cross) and Y (self) logits, as :func:`head_samples` gives them."""
    plt = pyplot()
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
    save(fig, path)


def _bars(row: dict) -> tuple[float, float]:
    """A row's interval as error bars below and above its score, never negative (an interval's end can
    sit a rounding error inside the score, as for a score of 1.0)."""
    low, high = row["ci95"]
    return max(0.0, row["accuracy"] - low), max(0.0, high - row["accuracy"])


def plot_kv(rows: Sequence[dict], path: Path, title: str, full_cache: str = FULL_CACHE) -> None:
    """Score vs. compression ratio: one line per press at its ratios (95% intervals as bars), and
    dashed lines for thresholded presses at the ratios their τ realised."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    for (press, mode), mine in _lines(rows).items():
        if press == full_cache:
            ax.axhline(mine[0]["accuracy"], color="black", linestyle="--", linewidth=1, label="full cache")
            continue
        x = [r["realised_ratio"] if mode == "threshold" else r["compression_ratio"] for r in mine]
        y = [r["accuracy"] for r in mine]
        err = list(zip(*(_bars(r) for r in mine), strict=True))
        bold = press.startswith("rcstat") or press == "oracle"
        ax.errorbar(
            x,
            y,
            yerr=err,
            marker="o" if mode == "ratio" else "^",
            linestyle="-" if mode == "ratio" else "--",
            capsize=3,
            linewidth=2.5 if bold else 1.2,
            color="0.35" if press == "oracle" else None,
            label=press if mode == "ratio" else f"{press}, τ sweep",
            zorder=3 if bold else 2,
        )
    ax.set_xlabel("compression ratio (share of the cache evicted; realised, for thresholds)")
    ax.set_ylabel("score")
    ax.set_title(title, fontsize=9, wrap=True)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, path)


def _lines(rows: Sequence[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows by (press, mode), each sorted along the x axis; cells no sample ran are left out."""
    lines: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row["n"]:
            lines.setdefault((row["press"], row.get("mode", "ratio")), []).append(row)
    for (_, mode), mine in lines.items():
        mine.sort(key=lambda r: r["realised_ratio"] if mode == "threshold" else r["compression_ratio"])
    return lines


def plot_frontier(
    runs: dict[str, Sequence[tuple[str, Sequence[dict]]]], ratios: Sequence[float], path: Path, title: str
) -> None:
    """Score against cost: one row of panels per setting, one panel per ratio; each run's presses as
    points at their ``cost_in_prefills`` (log scale) with 95% intervals, every run after the first
    (a subset) hollow; the full cache and the oracle of the first run as lines."""
    plt = pyplot()
    fig, axes = plt.subplots(
        len(runs), len(ratios), figsize=(4.2 * len(ratios), 3.6 * len(runs)), dpi=100, squeeze=False
    )
    colours: dict[str, object] = {}
    for axes_row, (setting, sources) in zip(axes, runs.items(), strict=True):
        for ax, ratio in zip(axes_row, ratios, strict=True):
            for i, (_, rows) in enumerate(sources):
                for row in rows:
                    if row["n"] and row.get("mode", "ratio") == "ratio":
                        _frontier_point(ax, row, ratio, first=i == 0, colours=colours)
            ax.set_xscale("log")
            ax.set_xticks([1, 1.5, 2, 3, 5, 8], ["1", "1.5", "2", "3", "5", "8"])
            ax.minorticks_off()
            ax.set_ylim(-0.03, 1.03)
            ax.set_title(f"{setting}, ratio {ratio:g}", fontsize=9)
            ax.set_xlabel("work, in prefills (log)")
            ax.set_ylabel("score")
            ax.grid(alpha=0.3)
    handles: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(
        handles.values(),
        handles.keys(),
        fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    fig.suptitle(f"{title}\n(dashed: full cache; dotted: oracle)", fontsize=9)
    fig.tight_layout()
    save(fig, path, bbox_inches="tight")


def _frontier_point(ax, row: dict, ratio: float, first: bool, colours: dict[str, object]) -> None:
    """One press's cell on a frontier panel (the full cache and the oracle as lines, first run only)."""
    press = row["press"]
    if press in (FULL_CACHE, "oracle"):
        if first and (press == FULL_CACHE or row["compression_ratio"] == ratio):
            ax.axhline(
                row["accuracy"],
                color="black" if press == FULL_CACHE else "0.5",
                linestyle="--" if press == FULL_CACHE else ":",
                linewidth=1,
            )
        return
    if row["compression_ratio"] != ratio or row.get("cost_in_prefills") is None:
        return
    colour = colours.setdefault(press, pyplot().get_cmap("tab20")(len(colours) % 20))
    ax.errorbar(
        row["cost_in_prefills"],
        row["accuracy"],
        yerr=[[bar] for bar in _bars(row)],
        marker="o" if press.startswith("rcstat") else "s",
        markersize=7 if press.startswith("rcstat") else 5,
        mfc=colour if first else "white",
        color=colour,
        capsize=2,
        linewidth=0.8,
        label=press,
    )
