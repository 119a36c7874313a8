"""An attribution benchmark run as a user asks for it (``rcstat bench attribution``).

Light to import (the command line builds its help from :class:`AttributionBench`); running imports the rest.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rcstat.attribution.scoring import Scoring
from rcstat.distributed import HERE, Workers, require_ray
from rcstat.evaluation.attribution.data import Dataset, Loaded, load_examples
from rcstat.evaluation.attribution.methods import check_methods
from rcstat.evaluation.provenance import git_commit
from rcstat.options import DEFAULT_PLAIN_FORWARD, check_choice, check_number


@dataclass(frozen=True)
class AttributionBench:
    """Methods × the annotated spans of a VeriGran or QuoteSum file; the fields are the run's record,
    and their defaults the command line's."""

    dataset: Dataset
    data: str
    methods: tuple[str, ...] = ("rcstat",)
    scoring: Scoring = field(default_factory=Scoring)
    profile: str | None = None
    head_weights: str | None = None
    faithfulness: int = 0
    ablations: int = 32
    seed: int = 0
    skip: int = 0
    limit: int | None = None
    strict: bool = False
    context_tokens: int | None = None
    plain_forward: bool = DEFAULT_PLAIN_FORWARD  # time one plain forward pass per example
    workers: Workers = field(default=HERE, compare=False)
    command: Sequence[str] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.workers.on_ray:
            require_ray()  # before the model loads: one line when the extra is missing
        check_choice("dataset", self.dataset, Dataset)
        check_methods(self.methods)
        check_number("faithfulness", self.faithfulness, low=0, integer=True)
        check_number("skip", self.skip, low=0, integer=True)
        check_number("ablations", self.ablations, low=2, integer=True)
        if self.context_tokens is not None:
            check_number("context_tokens", self.context_tokens, low=1, integer=True)

    def read(self, source=None) -> Loaded:
        """The examples (before any model loads, so a bad file fails at once), and what was skipped;
        with ``context_tokens`` and a :class:`~rcstat.models.loading.ModelSource`, its tokenizer
        gives them their distractors (a length the file cannot fill fails here too)."""
        loaded = load_examples(self.dataset, self.data, self.limit, self.skip, self.strict)
        if self.context_tokens and source is not None:
            from rcstat.evaluation.attribution.longcontext import long_contexts

            loaded = long_contexts(loaded, source.tokenizer(), self.context_tokens, self.seed)
        return loaded


def run(
    model,
    tokenizer,
    model_name: str,
    bench: AttributionBench,
    loaded: Loaded,
    progress: Callable[[int, str], Callable[[int, int], None]] | None = None,
) -> dict:
    """Run ``bench``: its metadata, one row per method (``results``) and one record per span.

    ``progress(total, unit)`` makes the callback told ``(done, total)`` as examples finish."""
    from rcstat.attribution.profile import HeadProfile
    from rcstat.evaluation.attribution.bench import run_attribution_bench, summarise

    if bench.context_tokens and loaded.context_tokens != bench.context_tokens:
        from rcstat.evaluation.attribution.longcontext import long_contexts

        loaded = long_contexts(loaded, tokenizer, bench.context_tokens, bench.seed)
    loaded = loaded.fitting(model, tokenizer, bench.strict)  # too long for the model: skipped, reported
    examples = loaded.examples
    from rcstat.evaluation.attribution.at2 import HeadWeights

    profile = HeadProfile.load(bench.profile) if bench.profile else None
    weights = HeadWeights.load(bench.head_weights) if bench.head_weights else None
    records = run_attribution_bench(
        model,
        tokenizer,
        examples,
        list(bench.methods),
        scoring=bench.scoring,
        profile=profile,
        head_weights=weights,
        faithfulness=bench.faithfulness,
        ablations=bench.ablations,
        seed=bench.seed,
        plain_forward=bench.plain_forward,
        progress=progress(len(examples), "examples") if progress else None,
        workers=bench.workers,
    )
    meta = {
        "model": model_name,
        "dataset": bench.dataset,
        "data": str(bench.data),
        "examples": len(examples),
        **loaded.record(),
        "skip": bench.skip,
        "context_tokens": bench.context_tokens,
        "top_k": bench.scoring.top_k,
        "estimator": bench.scoring.estimator,
        "scoring": repr(bench.scoring),
        "profile": bench.profile,
        "head_weights": bench.head_weights,
        "commit": git_commit(),
        "command": "rcstat " + shlex.join(bench.command),
        "workers": bench.workers.describe(),
    }
    firsts = [r for r in records if r["target"] == 0]  # one per example
    peaks = [r["pass_peak_bytes"] for r in firsts if r["pass_peak_bytes"] is not None]
    held = [r["context_tokens"] for r in firsts]  # what each example got, whatever was asked
    meta["context_tokens_mean"] = sum(held) / len(held) if held else None
    meta["context_tokens_range"] = [min(held), max(held)] if held else None
    meta["pass_peak_mib_mean"] = sum(peaks) / len(peaks) / 2**20 if peaks else None
    meta["pass_seconds_mean"] = sum(r["pass_seconds"] for r in firsts) / len(firsts) if firsts else None
    forward = [r["forward_seconds"] for r in firsts if r["forward_seconds"] is not None]
    meta["forward_seconds_mean"] = sum(forward) / len(forward) if forward else None
    plain = [r["forward_peak_bytes"] for r in firsts if r["forward_peak_bytes"] is not None]
    meta["forward_peak_mib_mean"] = sum(plain) / len(plain) / 2**20 if plain else None
    return {**meta, "results": summarise(list(bench.methods), records), "records": records}
