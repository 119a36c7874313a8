"""Attribution methods of the benchmark, by name: RC and its baselines (docs/method.md §4).

A :class:`Method` says what a method is (its kind, which heads, how attention is pooled); how each
kind scores chunks is in :mod:`rcstat.evaluation.attribution.scorers`. This registry imports
nothing heavy, so the command line lists it in its help at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rcstat.errors import RCStatError

Kind = Literal["rc", "attention", "hidden-state", "contextcite", "random", "at2"]
HeadSet = Literal["top", "least", "calibrated", "all"]
OWN_PASS: tuple[Kind, ...] = ("contextcite", "random")  # kinds that do not read the shared forward pass


@dataclass(frozen=True)
class Method:
    """One attribution method: its kind, the heads it reads, and how attention is pooled."""

    summary: str
    kind: Kind
    heads: HeadSet | None = None
    pool: Literal["sum", "query-max"] = "sum"

    @property
    def own_pass(self) -> bool:
        """Does not read the example's shared forward pass (its time is its own)."""
        return self.kind in OWN_PASS

    @property
    def needs_profile(self) -> bool:
        return self.heads == "calibrated"

    @property
    def needs_weights(self) -> bool:
        return self.kind == "at2"


METHODS: dict[str, Method] = {
    "rcstat": Method("RC of the example's top heads by expected RC", "rc", "top"),
    "rcstat-calibrated": Method("RC of a head profile's top heads", "rc", "calibrated"),
    "attention": Method("post-softmax attention of RC's heads, summed over a chunk", "attention", "top"),
    "attention-query-max": Method(
        "post-softmax attention of RC's heads, pooled as RC pools", "attention", "top", "query-max"
    ),
    "attention-all": Method("post-softmax attention of every head, summed over a chunk", "attention", "all"),
    "least-rc": Method("RC of the heads of lowest expected RC", "rc", "least"),
    "hidden-state": Method("cosine of the middle layer's hidden states", "hidden-state"),
    "contextcite": Method("ContextCite (context-cite 0.0.4): its own ablation passes", "contextcite"),
    "at2": Method("AT2: attention of every head, weighted by head weights learned from ablations", "at2"),
    "random": Method("random scores", "random"),
}


def check_methods(methods: Sequence[str]) -> None:
    """Known names, at least one."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise RCStatError(
            f"unknown method {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}",
            option="method",
        )
