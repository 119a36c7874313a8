"""The support benchmark's summary: AUROC of support per kind of unbacked sentence, the threshold of
"cites nothing" chosen on development data, and citation precision and recall with the gate.

Input: the ``results`` of :func:`rcstat.evaluation.attribution.support.run_support_bench`'s records,
one per example (``backed``: support, gold and ranked sources of each annotated sentence;
``unbacked``: kind, support and ranked sources of each probe). Intervals: 95% percentile bootstrap
over examples (an example's sentences are drawn together: they share a context and a response), a
fixed seed. AUROC: the probability that a backed sentence's support exceeds an unbacked one's (ties
count one half).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rcstat.evaluation.attribution.citations import summarise_citations

KINDS = ("other-topic", "swap-number", "swap-name")
SEED, RESAMPLES, RECALL = 0, 2000, 0.95


@dataclass(frozen=True)
class Sentences:
    """Every sentence of a set of examples: its example (0-based), support and kind (``backed`` or
    an unbacked kind)."""

    example: np.ndarray
    support: np.ndarray
    kind: np.ndarray
    examples: int

    @classmethod
    def of(cls, results: Sequence[dict]) -> Sentences:
        rows = [
            (e, s["support"], "backed" if part == "backed" else s["kind"])
            for e, r in enumerate(results)
            for part in ("backed", "unbacked")
            for s in r[part]
        ]
        example, support, kind = zip(*rows, strict=True) if rows else ((), (), ())
        return cls(np.array(example, int), np.array(support, float), np.array(kind, str), len(results))

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


def auroc_ci(sentences: Sentences, kinds: Sequence[str], weights: np.ndarray) -> tuple[float, list[float]]:
    """AUROC of backed against ``kinds`` and its bootstrap interval over ``weights`` (:func:`draws`)."""
    backed, unbacked = sentences.where(["backed"]), sentences.where(kinds)
    pairs = (np.sign(sentences.support[backed][:, None] - sentences.support[unbacked][None, :]) + 1) / 2
    wb, wu = weights[:, sentences.example[backed]], weights[:, sentences.example[unbacked]]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.einsum("ri,ij,rj->r", wb, pairs, wu) / (wb.sum(1) * wu.sum(1))
    return auroc(sentences.support[backed], sentences.support[unbacked]), _percentiles(values)


def _ratio(hit: np.ndarray, of: np.ndarray, sentences: Sentences, weights: np.ndarray) -> dict:
    """``sum(hit) / sum(of)`` over sentences, with its bootstrap interval over examples."""
    per = [np.bincount(sentences.example[m], minlength=sentences.examples) for m in (hit, of)]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (weights @ per[0]) / (weights @ per[1])
    n, d = int(hit.sum()), int(of.sum())
    return {"value": n / d if d else math.nan, "ci95": _percentiles(values), "hits": n, "of": d}


def choose_threshold(backed: np.ndarray, recall: float = RECALL) -> float:
    """The largest threshold on the 0.01 grid that keeps at least ``recall`` of the backed sentences
    (support ≥ threshold): the ``ceil(recall · n)``-th largest support, rounded down to 0.01."""
    need = math.ceil(recall * len(backed) - 1e-9)
    value = float(np.sort(backed)[::-1][need - 1])
    return math.floor(round(value * 100, 6)) / 100


def gate_rows(sentences: Sentences, threshold: float, weights: np.ndarray) -> list[dict]:
    """Precision and recall of "cites nothing" (support below ``threshold``) per unbacked kind and for
    all together, against the backed sentences; and the backed sentences kept (support ≥ threshold)."""
    below, backed = sentences.support < threshold, sentences.where(["backed"])
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


def auroc_rows(sentences: Sentences, weights: np.ndarray) -> list[dict]:
    rows = []
    for name, kinds in [*((k, [k]) for k in KINDS), ("all unbacked", list(KINDS))]:
        value, ci = auroc_ci(sentences, kinds, weights)
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


def gated_counts(results: dict, threshold: float | None) -> list[int]:
    """``[true citations, citations, gold cited, gold]`` of one example's backed sentences, each citing
    its ranked sources when its support reaches ``threshold`` (``None``: always, no gate)."""
    row = [0, 0, 0, 0]
    for s in results["backed"]:
        cited = set(s["ranked"]) if threshold is None or s["support"] >= threshold else set()
        gold = set(s["gold"])
        row = [
            row[0] + len(cited & gold),
            row[1] + len(cited),
            row[2] + len(gold & cited),
            row[3] + len(gold),
        ]
    return row


def citation_rows(results: Sequence[dict], threshold: float) -> list[dict]:
    """Citation precision and recall on backed sentences (95% Wilson, pooled) with the gate off and on
    (:func:`rcstat.evaluation.attribution.citations.summarise_citations`), and how many unbacked
    sentences cite a source either way."""
    gates = {"off": None, "on": threshold}
    records = [{"counts": {name: gated_counts(r, t) for name, t in gates.items()}} for r in results]
    rows = summarise_citations(records, list(gates))
    unbacked = [s for r in results for s in r["unbacked"]]
    for row in rows:
        t = gates[row.pop("margin")]
        row["gate"] = "off" if t is None else f"on (support ≥ {t:g})"
        citing = [s["kind"] for s in unbacked if s["ranked"] and (t is None or s["support"] >= t)]
        row["unbacked_citing"], row["unbacked"] = len(citing), len(unbacked)
        row["unbacked_citing_by_kind"] = {
            k: f"{citing.count(k)}/{sum(s['kind'] == k for s in unbacked)}" for k in KINDS
        }
    return rows


def summarise_support(dev: Sequence[dict], held_out: dict[str, Sequence[dict]], other: float) -> dict:
    """The threshold chosen on ``dev`` (all development examples, pooled) and, on each held-out slice
    and on them pooled: AUROC per kind, "cites nothing" at the chosen threshold and at ``other``, and
    citations with the gate off and on."""
    sentences = Sentences.of(dev)
    threshold = choose_threshold(sentences.support[sentences.where(["backed"])])
    out = {
        "rule": f"the largest threshold on the 0.01 grid keeping dev recall of backed sentences ≥ {RECALL}",
        "threshold": threshold,
        "dev": {
            "examples": len(dev),
            "auroc": auroc_rows(sentences, draws(len(dev))),
            "gate": gate_rows(sentences, threshold, draws(len(dev))),
        },
        "held_out": {},
    }
    slices = dict(held_out)
    if len(held_out) > 1:
        slices["pooled"] = [r for rs in held_out.values() for r in rs]
    for name, results in slices.items():
        sentences, weights = Sentences.of(results), draws(len(results))
        out["held_out"][name] = {
            "examples": len(results),
            "auroc": auroc_rows(sentences, weights),
            "gate": gate_rows(sentences, threshold, weights),
            "gate_other": gate_rows(sentences, other, weights),
            "citations": citation_rows(results, threshold),
        }
    return out
