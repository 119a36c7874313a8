"""The support benchmark's summary: the rule of "cites nothing" chosen on development data among
candidates on the per-token drops (:mod:`.support_rules`), the AUROC of its margin per kind of
unbacked sentence, and citation precision and recall with no gate, the previous rule and the chosen.

Input: the ``results`` of :func:`rcstat.evaluation.attribution.support.run_support_bench`'s records,
one per example (``backed``: support, per-token drops, gold and ranked sources of each annotated
sentence; ``unbacked``: kind, support, per-token drops and ranked sources of each probe). Intervals:
95% percentile bootstrap over examples (an example's sentences are drawn together: they share a
context and a response), a fixed seed. AUROC: the probability that a backed sentence's score exceeds
an unbacked one's (ties count one half).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rcstat.evaluation.attribution.citations import summarise_citations
from rcstat.evaluation.attribution.support_rules import (
    NAMES,
    RECALL,
    RULES,
    STEP,
    choose_rule,
    flagged,
    margin,
    statistics,
)

KINDS = ("other-topic", "swap-number", "swap-name")
SEED, RESAMPLES = 0, 2000


@dataclass(frozen=True)
class Sentences:
    """Every sentence of a set of examples: its example (0-based), kind (``backed`` or an unbacked
    kind) and the candidate statistics of its per-token drops and null drops (:mod:`.support_rules`;
    ``nan`` for the null drops where a log has none)."""

    example: np.ndarray
    kind: np.ndarray
    stats: dict[str, np.ndarray]
    examples: int

    @classmethod
    def of(cls, results: Sequence[dict]) -> Sentences:
        rows = [
            (
                e,
                "backed" if part == "backed" else s["kind"],
                statistics(s.get("drops"), s.get("null_drops"), s.get("logprobs"), s.get("overlap")),
            )
            for e, r in enumerate(results)
            for part in ("backed", "unbacked")
            for s in r[part]
        ]
        stats = {name: np.array([r[2][name] for r in rows], float) for name in NAMES}
        example, kind = np.array([r[0] for r in rows], int), np.array([r[1] for r in rows], str)
        return cls(example, kind, stats, len(results))

    def where(self, kinds: Sequence[str]) -> np.ndarray:
        return np.isin(self.kind, list(kinds))


def draws(examples: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """Bootstrap weights ``(resamples, examples)``: how often each example is drawn in each resample."""
    picks = np.random.default_rng(seed).integers(0, examples, size=(resamples, examples))
    return np.stack([np.bincount(row, minlength=examples) for row in picks]).astype(float)


def _percentiles(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    return [float(v) for v in np.percentile(values, [2.5, 97.5])] if len(values) else [math.nan, math.nan]


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(positive > negative) + P(tie) / 2 over all pairs (``nan`` when either side is empty)."""
    if not len(positive) or not len(negative):
        return math.nan
    pairs = np.sign(positive[:, None] - negative[None, :])
    return float((pairs.mean() + 1) / 2)


def auroc_ci(
    sentences: Sentences, score: np.ndarray, kinds: Sequence[str], weights: np.ndarray
) -> tuple[float, list[float]]:
    """AUROC of ``score`` (one per sentence), backed against ``kinds``, and its bootstrap interval
    over ``weights`` (:func:`draws`)."""
    backed, unbacked = sentences.where(["backed"]), sentences.where(kinds)
    pairs = (np.sign(score[backed][:, None] - score[unbacked][None, :]) + 1) / 2
    wb, wu = weights[:, sentences.example[backed]], weights[:, sentences.example[unbacked]]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.einsum("ri,ij,rj->r", wb, pairs, wu) / (wb.sum(1) * wu.sum(1))
    return auroc(score[backed], score[unbacked]), _percentiles(values)


def _ratio(hit: np.ndarray, of: np.ndarray, sentences: Sentences, weights: np.ndarray) -> dict:
    """``sum(hit) / sum(of)`` over sentences, with its bootstrap interval over examples."""
    per = [np.bincount(sentences.example[m], minlength=sentences.examples) for m in (hit, of)]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (weights @ per[0]) / (weights @ per[1])
    n, d = int(hit.sum()), int(of.sum())
    return {"value": n / d if d else math.nan, "ci95": _percentiles(values), "hits": n, "of": d}


def gate_rows(sentences: Sentences, rule: dict[str, float], weights: np.ndarray) -> list[dict]:
    """Precision and recall of "cites nothing" (:func:`.support_rules.flagged` by ``rule``) per
    unbacked kind and for all together, against the backed sentences; and the backed sentences kept."""
    below, backed = flagged(sentences.stats, rule), sentences.where(["backed"])
    rows = [{"kind": "backed kept", **_ratio(backed & ~below, backed, sentences, weights)}]
    for name, kinds in [*((k, [k]) for k in KINDS), ("all unbacked", list(KINDS))]:
        unbacked = sentences.where(kinds)
        rows.append(
            {
                "kind": name,
                "precision": _ratio(unbacked & below, (unbacked | backed) & below, sentences, weights),
                "recall": _ratio(unbacked & below, unbacked, sentences, weights),
            }
        )
    return rows


def auroc_rows(sentences: Sentences, rule: dict[str, float], weights: np.ndarray) -> list[dict]:
    """AUROC of ``rule``'s margin (:func:`.support_rules.margin`) per unbacked kind and for all."""
    score, rows = margin(sentences.stats, rule), []
    for name, kinds in [*((k, [k]) for k in KINDS), ("all unbacked", list(KINDS))]:
        value, ci = auroc_ci(sentences, score, kinds, weights)
        n = int(sentences.where(kinds).sum())
        rows.append(
            {
                "kind": name,
                "auroc": value,
                "ci95": ci,
                "backed": int((sentences.kind == "backed").sum()),
                "unbacked": n,
            }
        )
    return rows


def cites(sentence: dict, rule: dict[str, float] | None) -> bool:
    """Whether a logged sentence passes ``rule`` (``None``: no gate)."""
    if rule is None:
        return True
    stats = statistics(
        sentence["drops"], sentence.get("null_drops"), sentence.get("logprobs"), sentence.get("overlap")
    )
    return all(stats[name] >= t for name, t in rule.items())


def describe(rule: dict[str, float]) -> str:
    """``rule`` as its readers see it: ``mean ≥ 0.01 and min ≥ -2.5``."""
    return " and ".join(f"{name} ≥ {t:g}" for name, t in rule.items())


def gated_counts(results: dict, rule: dict[str, float] | None) -> list[int]:
    """``[true citations, citations, gold cited, gold]`` of one example's backed sentences, each citing
    its ranked sources when it passes ``rule`` (``None``: always, no gate)."""
    row = [0, 0, 0, 0]
    for s in results["backed"]:
        cited = set(s["ranked"]) if cites(s, rule) else set()
        gold = set(s["gold"])
        row = [
            row[0] + len(cited & gold),
            row[1] + len(cited),
            row[2] + len(gold & cited),
            row[3] + len(gold),
        ]
    return row


def citation_rows(results: Sequence[dict], gates: dict[str, dict[str, float] | None]) -> list[dict]:
    """Citation precision and recall on backed sentences (95% Wilson, pooled) under each of ``gates``
    (name → rule, ``None``: off; :func:`rcstat.evaluation.attribution.citations.summarise_citations`),
    and how many unbacked sentences cite a source under each."""
    records = [{"counts": {name: gated_counts(r, rule) for name, rule in gates.items()}} for r in results]
    rows = summarise_citations(records, list(gates))
    unbacked = [s for r in results for s in r["unbacked"]]
    for row in rows:
        name = row.pop("margin")
        row["gate"] = name if gates[name] is None else f"{name} ({describe(gates[name])})"
        citing = [s["kind"] for s in unbacked if s["ranked"] and cites(s, gates[name])]
        row["unbacked_citing"], row["unbacked"] = len(citing), len(unbacked)
        row["unbacked_citing_by_kind"] = {
            k: f"{citing.count(k)}/{sum(s['kind'] == k for s in unbacked)}" for k in KINDS
        }
    return rows


def candidate_rows(sentences: Sentences, fitted: list[dict], weights: np.ndarray) -> list[dict]:
    """Each candidate rule fitted on development data: its thresholds, the backed sentences it keeps
    and the unbacked it flags per kind, and the AUROC of its margin per kind."""
    return [
        {
            "rule": describe(f["rule"]),
            "thresholds": f["rule"],
            "gate": gate_rows(sentences, f["rule"], weights),
            "auroc": auroc_rows(sentences, f["rule"], weights),
        }
        for f in fitted
    ]


def _pooled(slices: dict[str, Sequence[dict]]) -> dict[str, Sequence[dict]]:
    """``slices`` and, when there are several, all of them pooled."""
    if len(slices) < 2:
        return dict(slices)
    return {**slices, "pooled": [r for rs in slices.values() for r in rs]}


def text_blocks(slices: dict[str, Sequence[dict]], rule: dict[str, float]) -> dict[str, dict]:
    """On each slice and on them pooled: AUROC of ``rule``'s margin per kind and "cites nothing" under
    it (records of any statistics ``rule`` names, such as text-only overlaps; no citations)."""
    out = {}
    for name, results in _pooled(slices).items():
        sentences, weights = Sentences.of(results), draws(len(results))
        out[name] = {
            "examples": len(results),
            "auroc": auroc_rows(sentences, rule, weights),
            "gate": gate_rows(sentences, rule, weights),
        }
    return out


def held_out_blocks(
    held_out: dict[str, Sequence[dict]], rule: dict[str, float], previous: dict[str, float]
) -> dict[str, dict]:
    """On each held-out slice and on them pooled: :func:`text_blocks` of ``rule`` and of ``previous``,
    and citations with no gate, the previous rule and ``rule``."""
    gates = {"off": None, "previous": previous, "chosen": rule}
    before = text_blocks(held_out, previous)
    return {
        name: {
            **block,
            "auroc_previous": before[name]["auroc"],
            "gate_previous": before[name]["gate"],
            "citations": citation_rows(_pooled(held_out)[name], gates),
        }
        for name, block in text_blocks(held_out, rule).items()
    }


def summarise_support(
    dev: Sequence[dict], held_out: dict[str, Sequence[dict]], previous: dict[str, float]
) -> dict:
    """The rule chosen on ``dev`` (all development examples, pooled; :func:`.support_rules.choose_rule`)
    and its :func:`held_out_blocks` against ``previous``."""
    sentences = Sentences.of(dev)
    rule, fitted = choose_rule(sentences.stats, sentences.where(["backed"]))
    weights = draws(len(dev))
    out = {
        "rule": f"among {len(RULES)} candidate rules, thresholds on a {STEP:g} grid keeping dev recall of "
        f"backed sentences ≥ {RECALL}, the one flagging the most dev unbacked sentences (the previous, "
        "mean alone, unless another flags strictly more)",
        "chosen": rule,
        "previous": previous,
        "dev": {
            "examples": len(dev),
            "candidates": candidate_rows(sentences, fitted, weights),
        },
        "held_out": held_out_blocks(held_out, rule, previous),
    }
    return out
