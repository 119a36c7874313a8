"""The support benchmark: its summary against brute-force references on a small synthetic set, and a
stopped run that resumes without redoing examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rcstat.evaluation.attribution import support as bench
from rcstat.evaluation.attribution.data import Example, Target
from rcstat.evaluation.attribution.support_summary import (
    Sentences,
    auroc,
    auroc_ci,
    choose_threshold,
    citation_rows,
    draws,
    gate_rows,
)


def synthetic(seed: int = 3, examples: int = 12) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(examples):
        backed = [
            {"support": float(rng.choice([0.1, 0.3, rng.normal(0.4, 0.3)])), "gold": [1], "ranked": [1]}
            for _ in range(rng.integers(0, 4))
        ]
        kinds = rng.choice(["other-topic", "swap-number", "swap-name"], size=rng.integers(0, 3))
        unbacked = [
            {"kind": str(k), "support": float(rng.choice([0.1, rng.normal(0, 0.2)])), "ranked": [0]}
            for k in kinds
        ]
        out.append({"backed": backed, "unbacked": unbacked})
    return out


def brute_auroc(pos: list[float], neg: list[float]) -> float:
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auroc_and_interval_match_brute_force() -> None:
    results = synthetic()
    sentences = Sentences.of(results)
    kinds = ["other-topic", "swap-name"]
    pos = [s["support"] for r in results for s in r["backed"]]
    neg = [s["support"] for r in results for s in r["unbacked"] if s["kind"] in kinds]
    assert len(pos) > 5 and len(neg) > 3 and len(set(pos) & set(neg)) > 0  # ties present
    assert auroc(np.array(pos), np.array(neg)) == pytest.approx(brute_auroc(pos, neg), abs=1e-12)

    weights = draws(len(results), resamples=300, seed=7)
    value, ci = auroc_ci(sentences, kinds, weights)
    assert value == pytest.approx(brute_auroc(pos, neg), abs=1e-12)
    picks = np.random.default_rng(7).integers(0, len(results), size=(300, len(results)))
    reference = []
    for row in picks:  # the same draws, each resample's sentences listed one by one
        p = [s["support"] for i in row for s in results[i]["backed"]]
        n = [s["support"] for i in row for s in results[i]["unbacked"] if s["kind"] in kinds]
        if p and n:
            reference.append(brute_auroc(p, n))
    assert ci == pytest.approx(list(np.percentile(reference, [2.5, 97.5])), abs=1e-12)


def test_gate_and_threshold_match_brute_force() -> None:
    results = synthetic(seed=5, examples=20)
    sentences = Sentences.of(results)
    backed = [s["support"] for r in results for s in r["backed"]]
    threshold = choose_threshold(np.array(backed), recall=0.8)
    grid = [t / 100 for t in range(-300, 300)]
    assert threshold == max(t for t in grid if sum(b >= t for b in backed) >= 0.8 * len(backed))

    rows = gate_rows(sentences, threshold, draws(len(results), resamples=50))
    unbacked = [s for r in results for s in r["unbacked"]]
    flagged = [s for s in unbacked if s["support"] < threshold]
    wrongly = [b for b in backed if b < threshold]
    total = rows[-1]
    assert total["recall"]["value"] == pytest.approx(len(flagged) / len(unbacked))
    assert total["precision"]["value"] == pytest.approx(len(flagged) / (len(flagged) + len(wrongly)))
    assert rows[0]["value"] == pytest.approx(sum(b >= threshold for b in backed) / len(backed))

    off, on = citation_rows(results, threshold)
    assert off["citations"] == len(backed) and on["citations"] == sum(b >= threshold for b in backed)
    assert off["unbacked_citing"] == len(unbacked)
    assert on["unbacked_citing"] == sum(s["support"] >= threshold for s in unbacked)


def test_a_stopped_run_resumes_without_redoing_examples(tmp_path, monkeypatch) -> None:
    examples = [Example(f"q{i}", (f"c{i}", "x"), f"r{i}.", (Target(0, 2, frozenset({0})),)) for i in range(5)]
    others = examples[2:] + examples[:2]
    done: list[str] = []

    def record(attributor, example, other, margin):
        if len(done) == 3 and stop:
            raise KeyboardInterrupt
        done.append(example.query)
        return {"backed": [], "unbacked": [], "other": other.query}

    monkeypatch.setattr(bench, "example_record", record)
    log = tmp_path / "log.jsonl"
    stop = True
    with pytest.raises(KeyboardInterrupt):
        bench.run_support_bench(None, None, examples, others, log=log, header={"slice": 1})
    assert done == ["q0", "q1", "q2"] and len(log.read_text().splitlines()) == 4
    stop = False
    records = bench.run_support_bench(None, None, examples, others, log=log, header={"slice": 1})
    assert done == ["q0", "q1", "q2", "q3", "q4"]  # the first three not run again
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["results"]["other"] for r in records] == ["q2", "q3", "q4", "q0", "q1"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["slice"] == 1 and [line["index"] for line in lines[1:]] == [0, 1, 2, 3, 4]
