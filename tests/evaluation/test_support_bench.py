"""The support benchmark: its summary against brute-force references on a small synthetic set, and a
stopped run that resumes without redoing examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rcstat.errors import RCStatError
from rcstat.evaluation.attribution import support as bench
from rcstat.evaluation.attribution.data import Example, Target
from rcstat.evaluation.attribution.support_rules import fit, flagged, margin, statistics
from rcstat.evaluation.attribution.support_summary import (
    Sentences,
    auroc,
    auroc_ci,
    citation_rows,
    draws,
    gate_rows,
)
from rcstat.options import DEFAULT_CITE_OVERLAP, DEFAULT_CITE_SUPPORT, MEASURED_CITE_LOGPROB

LOGS = Path(__file__).parents[2] / "benchmarks" / "attribution" / "support" / "logs"


def sentence(rng: np.random.Generator, centre: float, **rest) -> dict:
    """A logged sentence: 1–6 per-token drops around ``centre`` (on a coarse grid, so ties occur)."""
    drops = [float(x) for x in np.round(rng.normal(centre, 0.8, size=rng.integers(1, 7)), 1)]
    return {"support": float(np.mean(drops)), "drops": drops, **rest}


def synthetic(seed: int = 3, examples: int = 12) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(examples):
        backed = [
            sentence(rng, float(rng.choice([0.1, 0.4, 0.8])), gold=[1], ranked=[1])
            for _ in range(rng.integers(0, 4))
        ]
        kinds = rng.choice(["other-topic", "swap-number", "swap-name"], size=rng.integers(0, 3))
        unbacked = [sentence(rng, float(rng.choice([0.0, 0.3])), kind=str(k), ranked=[0]) for k in kinds]
        out.append({"backed": backed, "unbacked": unbacked})
    return out


def brute_auroc(pos: list[float], neg: list[float]) -> float:
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_statistics_of_the_drops_match_brute_force() -> None:
    drops = [0.5, -2.0, 3.0, 0.25, -1.0]
    stats = statistics(drops)
    assert stats["mean"] == pytest.approx(sum(drops) / 5) and stats["min"] == -2.0 and stats["max"] == 3.0
    assert stats["low3"] == pytest.approx((-2.0 - 1.0 + 0.25) / 3)
    assert stats["top3"] == pytest.approx((3.0 + 0.5 + 0.25) / 3)
    short = statistics([1.0, -1.0])  # fewer than three tokens: the mean of them all
    assert short["low3"] == short["top3"] == short["mean"] == 0.0


def test_null_statistics_are_those_of_the_null_drops_and_nan_without() -> None:
    stats = statistics([0.5, -2.0], [1.0, 3.0, -0.5])
    assert stats["null_mean"] == pytest.approx(3.5 / 3) and stats["null_min"] == -0.5
    assert stats["null_max"] == 3.0 and stats["mean"] == -0.75
    old = statistics([0.5, -2.0])  # a log before the null drops
    assert all(np.isnan(old[f"null_{k}"]) for k in ("mean", "min", "max")) and old["max"] == 0.5
    sentences = Sentences.of(
        [{"backed": [{"drops": [1.0], "null_drops": [2.0]}, {"drops": [1.0]}], "unbacked": []}]
    )
    assert sentences.stats["null_mean"][0] == 2.0 and np.isnan(sentences.stats["null_mean"][1])
    assert not flagged(sentences.stats, {"null_mean": 5.0})[1]  # nan: no threshold flags it


def test_an_extended_earlier_record_has_a_full_runs_null_drops(tiny_checkpoint) -> None:
    """Null drops from an earlier record's logged log-probabilities (one pass per response) equal a
    full run's (the whole context cut in :func:`token_logprobs`), and the rest of the record is kept."""
    from rcstat.attribution.attributor import Attributor
    from rcstat.models.loading import load_model

    model, tokenizer = load_model(tiny_checkpoint)
    response = "Curie won the prize in 1911. The Rhine rises in the Alps."
    chunks = ("Marie Curie won the chemistry prize in 1911.", "The Rhine rises in the Alps.", "Honey keeps.")
    example = Example(
        "Tell me facts.", chunks, response, (Target(0, 28, frozenset({0})), Target(29, 57, frozenset({1})))
    )
    other = Example("Food?", ("Bread is baked in Paris ovens.",), "Bread is baked daily in Paris ovens.", ())
    full = bench.example_record(Attributor(model, tokenizer), example, other, 0.1)
    assert len(full["backed"]) == 2 and [s["kind"] for s in full["unbacked"]] == [
        "swap-number",
        "other-topic",
    ]
    earlier = json.loads(json.dumps(full))
    for s in earlier["backed"] + earlier["unbacked"]:
        del s["null_drops"]
    extended = bench.extend_record(model, tokenizer, example, other, earlier)
    for part in ("backed", "unbacked"):
        for a, b in zip(extended[part], full[part], strict=True):
            assert a["null_drops"] == pytest.approx(b["null_drops"], abs=2e-5)
            assert {k: v for k, v in a.items() if k != "null_drops"} == {
                k: v for k, v in b.items() if k != "null_drops"
            }
            assert len(a["null_drops"]) == len(a["drops"])


def test_auroc_and_interval_match_brute_force() -> None:
    results = synthetic()
    sentences = Sentences.of(results)
    kinds = ["other-topic", "swap-name"]
    pos = [s["support"] for r in results for s in r["backed"]]
    neg = [s["support"] for r in results for s in r["unbacked"] if s["kind"] in kinds]
    assert len(pos) > 5 and len(neg) > 3
    assert auroc(np.array(pos), np.array(neg)) == pytest.approx(brute_auroc(pos, neg), abs=1e-12)

    weights = draws(len(results), resamples=300, seed=7)
    score = margin(sentences.stats, {"mean": 0.1})  # a one-statistic rule's margin ranks as it does
    value, ci = auroc_ci(sentences, score, kinds, weights)
    assert value == pytest.approx(brute_auroc(pos, neg), abs=1e-12)
    picks = np.random.default_rng(7).integers(0, len(results), size=(300, len(results)))
    reference = []
    for row in picks:  # the same draws, each resample's sentences listed one by one
        p = [s["support"] for i in row for s in results[i]["backed"]]
        n = [s["support"] for i in row for s in results[i]["unbacked"] if s["kind"] in kinds]
        if p and n:
            reference.append(brute_auroc(p, n))
    assert ci == pytest.approx(list(np.percentile(reference, [2.5, 97.5])), abs=1e-12)


def test_one_threshold_and_its_gate_match_brute_force() -> None:
    results = synthetic(seed=5, examples=20)
    sentences = Sentences.of(results)
    backed = [s["support"] for r in results for s in r["backed"]]
    rule = fit(sentences.stats, sentences.where(["backed"]), ["mean"], recall=0.8)
    grid = [t / 100 for t in range(-300, 300)]
    assert rule["mean"] == max(t for t in grid if sum(b >= t for b in backed) >= 0.8 * len(backed))

    rows = gate_rows(sentences, rule, draws(len(results), resamples=50))
    unbacked = [s for r in results for s in r["unbacked"]]
    caught = [s for s in unbacked if s["support"] < rule["mean"]]
    wrongly = [b for b in backed if b < rule["mean"]]
    total = rows[-1]
    assert total["recall"]["value"] == pytest.approx(len(caught) / len(unbacked))
    assert total["precision"]["value"] == pytest.approx(len(caught) / (len(caught) + len(wrongly)))
    assert rows[0]["value"] == pytest.approx(sum(b >= rule["mean"] for b in backed) / len(backed))

    gates = {"off": None, "on": rule}
    off, on = citation_rows(results, gates)
    assert off["citations"] == len(backed) and on["citations"] == sum(b >= rule["mean"] for b in backed)
    assert off["unbacked_citing"] == len(unbacked)
    assert on["unbacked_citing"] == sum(s["support"] >= rule["mean"] for s in unbacked)


def test_two_thresholds_match_a_grid_search() -> None:
    sentences = Sentences.of(synthetic(seed=11, examples=30))
    backed = sentences.where(["backed"])
    rule = fit(sentences.stats, backed, ["mean", "min"], recall=0.9)
    flags = flagged(sentences.stats, rule)
    allowed = int(backed.sum()) - int(np.ceil(0.9 * backed.sum() - 1e-9))
    assert (flags & backed).sum() <= allowed
    best = 0
    for t1 in np.arange(-3, 3, 0.01):  # every pair of grid thresholds, by brute force
        for t2 in [*np.arange(-6, 1, 0.01), -np.inf]:
            f = (sentences.stats["mean"] < t1) | (sentences.stats["min"] < t2)
            if (f & backed).sum() <= allowed:
                best = max(best, int((f & ~backed).sum()))
    assert (flags & ~backed).sum() == best
    one = flagged(sentences.stats, fit(sentences.stats, backed, ["mean"], recall=0.9))
    assert (flags & ~backed).sum() >= (one & ~backed).sum()  # a second term never flags fewer


def test_the_library_default_is_the_mean_drops_threshold_fitted_on_the_development_logs() -> None:
    """The library keeps the mean rule (the dev choice, max and min, did not hold out: README); its
    threshold is the one the development logs fit for the mean drop alone."""
    dev = [
        json.loads(line)["results"]
        for log in sorted(LOGS.glob("dev-*.jsonl"))
        for line in log.read_text(encoding="utf-8").splitlines()[1:]
    ]
    assert len(dev) == 40
    sentences = Sentences.of(dev)
    rule = fit(sentences.stats, sentences.where(["backed"]), ["mean"], recall=0.95)  # the first round's
    assert rule == {"mean": DEFAULT_CITE_SUPPORT}


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


def test_whole_context_statistics_are_those_of_the_logged_logprobs() -> None:
    logprobs = [-0.5, -9.0, -2.0, -4.0]
    stats = statistics([0.1, 0.2, 0.3, 0.4], None, logprobs)
    assert stats["lp_mean"] == pytest.approx(-15.5 / 4) and stats["lp_min"] == -9.0
    assert stats["lp_low3"] == pytest.approx(-15.0 / 3) and np.isnan(stats["null_mean"])
    sentences = Sentences.of(
        [
            {
                "backed": [{"drops": [1.0], "logprobs": [-3.0]}],
                "unbacked": [{"drops": [1.0], "kind": "other-topic"}],
            }
        ]
    )
    assert sentences.stats["lp_low3"][0] == -3.0 and np.isnan(sentences.stats["lp_low3"][1])
    assert flagged(sentences.stats, {"lp_low3": -2.0}).tolist() == [True, False]  # nan flags nothing


def test_the_measured_logprob_point_is_the_committed_dev_choice() -> None:
    """``--min-logprob``'s documented point is the rule round 3 chose on development data."""
    results = json.loads((LOGS.parent / "results-v3.json").read_text(encoding="utf-8"))
    assert results["chosen"] == {"lp_low3": MEASURED_CITE_LOGPROB}


def test_the_library_gates_are_the_committed_round_4_candidate_that_held() -> None:
    """``rcstat cite``'s gates are round 4's library candidate (the previous rule and the dev-chosen
    rule's overlap term), and it held on every held-out log."""
    results = json.loads((LOGS.parent / "results.json").read_text(encoding="utf-8"))
    library = {"mean": DEFAULT_CITE_SUPPORT, "overlap": DEFAULT_CITE_OVERLAP}
    assert results["library_default"] == results["library_candidate"]["rule"] == library
    assert results["chosen"]["overlap"] == DEFAULT_CITE_OVERLAP
    assert all(v["holds"] for v in results["library_candidate_holds"].values())


def example(query: str, chunks: tuple[str, ...], response: str, gold: tuple[int, ...]) -> Example:
    return Example(query, chunks, response, (Target(0, len(response.split(". ")[0]) + 1, frozenset(gold)),))


def test_overlaps_are_those_of_each_backed_sentence_and_probe_and_pairs_refuse_shared_passages() -> None:
    from rcstat.attribution.support import overlap

    a = example("Who?", ("Curie won in 1911.", "Rain falls."), "Curie won in 1911. Rain falls.", (0,))
    b = example("What?", ("Honey never spoils in Egypt.",), "Honey never spoils in Egypt.", (0,))
    others = bench.pair([a, b])
    assert others == [b, a]
    found = bench.overlaps(a, b)
    assert found["backed"] == [{"overlap": overlap("Curie won in 1911.", "\n".join(a.chunks))}]
    kinds = [u["kind"] for u in found["unbacked"]]
    assert kinds == ["swap-number", "other-topic"]
    assert found["unbacked"][1]["overlap"] == 0.0  # honey, never, spoils, egypt: none in a's context
    assert 0 < found["unbacked"][0]["overlap"] < 1  # the swapped year is not in the context
    logged = {
        "backed": [{"drops": [0.1]}],
        "unbacked": [{"kind": k, "drops": [d]} for k, d in zip(kinds, (0.2, 0.3), strict=True)],
    }
    extended = bench.with_overlap(a, b, logged)
    assert [s["overlap"] for s in extended["unbacked"]] == [u["overlap"] for u in found["unbacked"]]
    assert extended["backed"][0]["drops"] == [0.1] and "overlap" not in logged["backed"][0]
    with pytest.raises(RCStatError, match="1 logged unbacked sentences, 2 now"):
        bench.with_overlap(a, b, {**logged, "unbacked": logged["unbacked"][:1]})
    c = example("Where?", ("Rain falls.",), "Rain falls.", (0,))
    with pytest.raises(RCStatError, match="shares its question or a passage"):
        bench.pair([a, c])
    stats = Sentences.of([extended]).stats
    assert stats["overlap"].tolist() == [
        found["backed"][0]["overlap"],
        *(u["overlap"] for u in found["unbacked"]),
    ]
    assert np.isnan(Sentences.of([{"backed": [{"overlap": 1.0}], "unbacked": []}]).stats["mean"][0])
