"""``Scoring``: how attribution turns the chosen heads' logits into source scores (docs/method.md §4).

The one source of attribution's defaults: the attributor, the command line, calibration, the plots
and the demo all read them from here. Light on purpose (no torch), so the CLI builds its help fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcstat.options import Estimator, Normalisation, Pool, YRows, check_choice, check_number

Head = tuple[int, int]


@dataclass(frozen=True)
class Scoring:
    """How source scores are formed from the heads; its repr is the record, and its defaults are
    the defaults of every entry point (the attributor, the CLI, calibration, plots, the demo).

    ``estimator`` ranks the heads and scores the sources; ``top_k`` heads are kept. The rest are
    our options, not the paper's:

    - ``y``: ``span`` takes ``Y = Y_s(g, T)`` (the span's queries, the method's step 2);
      ``response`` takes ``Y_s(g, g)``, the causal logits of every response row; ``row`` pairs each
      logit ``f(i, j)`` with the causal self logits of its own query row ``j`` only
      (:func:`stats.row_paired_rc`), and a source's ``E[Z]`` is the mean over its pairs.
    - ``pool``: ``sample`` is ``E[Z]`` of the source's whole sample ``X_s(S, T)``; ``mean``, ``sum``
      and ``max`` pool the source's tokens' own ``E[Z]`` (each token's ``X`` is its logits from the
      span's queries). ``query-max`` scores each query row ``j`` of the span by the source's best
      token, the max over ``i ∈ S`` of the pair's ``E[(f(i, j) − Y)^+]``, and averages over rows.
    - ``normalise``: per head, across the sources, before the mean over heads: ``none``, ``sum``
      (scores of a head sum to 1), ``max`` (its best source scores 1), ``zscore``.
    """

    # defaults chosen on a selection split (QuoteSum dev examples 1–40 and VeriGran dev 31–70;
    # benchmarks/attribution): of its 608 variants, the best mean accuracy among those whose head
    # ranking is not decided by ties (jensen's gap is exactly 0 for ~263 of the model's 270 heads).
    # The method's literal reading is estimator="independent", y="span", pool="sample".
    estimator: Estimator = "min_y"
    top_k: int = 10
    y: YRows = "row"
    pool: Pool = "query-max"
    normalise: Normalisation = "none"

    def __post_init__(self) -> None:
        check_choice("estimator", self.estimator, Estimator)
        check_choice("y", self.y, YRows)
        check_choice("pool", self.pool, Pool)
        check_choice("normalise", self.normalise, Normalisation)
        check_number("top_k", self.top_k, low=1, integer=True)
