"""The attribution benchmark: VeriGran and QuoteSum parsing, its methods against brute force, its errors."""

from __future__ import annotations

import sys

import pytest
import torch

from rcstat import cli
from rcstat.attribution import HeadProfile
from rcstat.attribution.attributor import attribution
from rcstat.attribution.features import capture
from rcstat.attribution.profile import select_heads
from rcstat.attribution.scoring import Scoring
from rcstat.errors import RCStatError, RCStatWarning
from rcstat.evaluation.attribution.data import load_examples, strip_annotations
from tests.core.test_attribution import CONTEXT, RESPONSE, tiny_task
from tests.helpers import tiny_model, write_jsonl


def test_annotations_are_stripped_with_their_spans() -> None:
    plain, spans = strip_annotations("was filmed[ 24  at **Oheka Castle**. ] Then [ 2 Denitrification ] won.")
    assert plain == "was filmed at **Oheka Castle**. Then Denitrification won."
    assert [(plain[a:b], n) for a, b, n in spans] == [("at **Oheka Castle**.", 24), ("Denitrification", 2)]


def test_verigran_rows_of_one_response_share_an_example(tmp_path) -> None:
    summary = "Water boils at 100 C[ 2  at sea level. ] It freezes[ 1  at 0 C. ]"
    rows = [
        {
            "question": "q",
            "summary": summary,
            "chunk": "Water boils at 100 C at sea level.",
            "passages": ["A", "B"],
        },
        {"question": "q", "summary": summary, "chunk": "It freezes at 0 C.", "passages": ["A", "B"]},
    ]
    path = tmp_path / "vg.jsonl"
    write_jsonl(path, rows)
    (example,) = load_examples("verigran", path).examples
    assert example.response == "Water boils at 100 C at sea level. It freezes at 0 C."
    assert [(example.response[t.start : t.end], set(t.gold)) for t in example.targets] == [
        ("Water boils at 100 C at sea level.", {1}),
        ("It freezes at 0 C.", {0}),
    ]
    write_jsonl(path, [{**rows[0], "chunk": "not there"}])
    with pytest.raises(RCStatError, match=r"vg\.jsonl:1: its `chunk` is not in the plain summary"):
        load_examples("verigran", path, strict=True)
    warned = pytest.warns(RCStatWarning, match="record 1 skipped: its `chunk` is not")
    with warned, pytest.raises(RCStatError, match=r"no attributable example in verigran format \(1 records"):
        load_examples("verigran", path)


def test_quotesum_sources_are_renumbered_without_empty_ones(tmp_path) -> None:
    row = {"question": "q", "summary": "[ 3 Ada ] and [ 1 Bob ] met."}
    row |= {f"source{n}": "" for n in range(1, 9)} | {f"title{n}": f"T{n}" for n in range(1, 9)}
    row |= {"source1": "Bob text", "source3": "Ada text"}
    path = tmp_path / "qs.jsonl"
    write_jsonl(path, [row])
    (example,) = load_examples("quotesum", path).examples
    assert example.chunks == ("(Title: T1) Bob text", "(Title: T3) Ada text")
    assert [(example.response[t.start : t.end], set(t.gold)) for t in example.targets] == [
        ("Ada", {1}),
        ("Bob", {0}),
    ]
    write_jsonl(path, [{**row, "summary": "no annotation"}])
    warned = pytest.warns(RCStatWarning, match="no annotated span of its summary names a non-empty source")
    with warned, pytest.raises(RCStatError, match="no attributable example in quotesum format"):
        load_examples("quotesum", path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "attribution", "--dataset", "verigran", "--data", "missing.jsonl"], "no such file"),
        (
            ["heads", "calibrate", "--dataset", "quotesum", "--data", "missing.jsonl", "--output", "p.json"],
            "no such",
        ),
    ],
)
def test_attribution_commands_fail_in_one_line(argv, message, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rcstat: error:") and message in err and "Traceback" not in err


def test_unknown_methods_and_missing_profiles_are_refused(tmp_path) -> None:
    from rcstat.evaluation.attribution.bench import run_attribution_bench

    with pytest.raises(RCStatError, match="unknown method magic"):
        run_attribution_bench(None, None, [], ["rcstat", "magic"])
    with pytest.raises(RCStatError, match="needs a head profile"):
        run_attribution_bench(None, None, [], ["rcstat-calibrated"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(RCStatError, match="not a head profile"):
        HeadProfile.load(tmp_path / "bad.json")


def test_contextcite_without_its_extra_is_a_clear_error(monkeypatch) -> None:
    from rcstat.evaluation.attribution.contextcite import require_contextcite

    monkeypatch.setitem(sys.modules, "context_cite", None)
    with pytest.raises(RCStatError, match=r"pip install 'rcstat\[contextcite\]'"):
        require_contextcite()


def test_attention_baselines_pool_post_softmax_weights_as_stated() -> None:
    """``attention`` sums a chunk's weights; ``attention-query-max`` takes, per query, its best token."""
    import random

    from rcstat.evaluation.attribution.scorers import Context, method_scores

    model, task = tiny_model("llama-gqa"), tiny_task()
    features = capture(model, task, "independent", attention=True)
    heads = select_heads(features.head_rc, 3)
    groups = attribution(task, features, heads).groups["chunk"]
    ctx = Context(task, features, groups, heads, heads, None, Scoring(top_k=3))
    rows = torch.tensor([1, 2, 3])
    w = [
        [[float(features.attention[la][h][r, i]) for i in range(len(CONTEXT))] for r in rows]
        for la, h in heads
    ]
    summed = [sum(w[k][t][i] for k in range(3) for t in range(3) for i in g.tolist()) / 9 for g in groups]
    best = [sum(max(w[k][t][i] for i in g.tolist()) for k in range(3) for t in range(3)) / 9 for g in groups]
    rng = random.Random(0)
    assert method_scores("attention", ctx, rows, rng).tolist() == pytest.approx(summed, abs=1e-6)
    assert method_scores("attention-query-max", ctx, rows, rng).tolist() == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("family", ["llama-gqa", "gemma3-gqa"])
def test_response_logprobs_equal_the_full_teacher_forced_pass(family: str) -> None:
    """Faithfulness reads per-token log-probs from one pass that projects only the response rows."""
    from rcstat.evaluation.attribution.bench import response_logprobs

    model, task = tiny_model(family), tiny_task()
    got = response_logprobs(model, task)
    with torch.no_grad():
        logp = model(task.input_ids).logits[0].log_softmax(-1)
    expected = [float(logp[p - 1, task.input_ids[0, p]]) for p in RESPONSE]
    assert got.tolist() == pytest.approx(expected, abs=1e-4)


def test_distractors_reach_the_length_and_the_gold_follows_its_chunk() -> None:
    from rcstat.evaluation.attribution.data import Example, Target
    from rcstat.evaluation.attribution.longcontext import DEPTHS, with_distractors
    from tests.helpers import Words

    pool = [
        Example(
            f"q{i}",
            tuple(f"chunk {i} {j} " + "w " * 8 for j in range(3)),
            "r",
            (Target(0, 1, frozenset({1})),),
        )
        for i in range(12)
    ]
    long = with_distractors(pool[:5], pool, Words(), tokens=120, seed=4)
    assert long == with_distractors(pool[:5], pool, Words(), tokens=120, seed=4)  # seeded
    for number, (short, out) in enumerate(zip(pool[:5], long, strict=True)):
        assert out.context_tokens >= 120 and out.depth == DEPTHS[number]
        (gold,) = out.targets[0].gold
        assert out.chunks[gold] == short.chunks[1]  # the gold index follows its chunk
        start = out.chunks.index(short.chunks[0])
        assert out.chunks[start : start + 3] == short.chunks  # its own chunks stay together, in order
        assert len(set(out.chunks)) == len(out.chunks)
        others = len(out.chunks) - 3
        assert start == round(out.depth * others)
    assert with_distractors(pool[:1], pool, Words(), tokens=5)[0].chunks == pool[0].chunks  # long already
    assert with_distractors(pool[:1], pool, Words(), tokens=5)[0].depth is None


def test_a_length_the_file_cannot_fill_is_refused() -> None:
    """Issue 30: --context-tokens beyond what the file's passages hold was run and recorded as asked."""
    from rcstat.errors import RCStatError
    from rcstat.evaluation.attribution.data import Example, Loaded, Target
    from rcstat.evaluation.attribution.longcontext import long_contexts
    from tests.helpers import Words

    target = (Target(0, 1, frozenset({0})),)
    pool = [Example("q", ("w " * 40,), "r", target), Example("p", ("v " * 5,), "r", target)]
    loaded = Loaded(pool, pool=pool, name="d.jsonl")  # 43 and 8 tokens: 51 in all
    with pytest.raises(RCStatError, match=r"d\.jsonl: its passages fill at most 51 context tokens per"):
        long_contexts(loaded, Words(), 52)
    filled = long_contexts(loaded, Words(), 51)
    assert [e.context_tokens for e in filled.examples] == [51, 51] and filled.context_tokens == 51


def test_at2_regression_recovers_known_weights_and_features_match_eager_attention() -> None:
    from rcstat.evaluation.attribution.at2 import fit_weights, head_features

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(400, 6, generator=gen)
    w = torch.tensor([0.5, -1.0, 2.0, 0.0, 3.0, -0.25])
    y = x @ w + 1.5 + 0.001 * torch.randn(400, generator=gen)
    assert torch.allclose(fit_weights(x, y, 0.0).float(), w, atol=0.01)
    assert fit_weights(x, y, 1e6).abs().max() < 0.05  # a large ridge shrinks every weight

    model, task = tiny_model("llama-gqa", attn_implementation="eager"), tiny_task()
    features = capture(model, task, "independent", heads=[], attention=True)
    groups = attribution(task, features, [], granularities=("chunk",)).groups["chunk"]
    rows = torch.arange(len(task.response_positions))
    got = head_features(features, groups, rows)
    with torch.no_grad():
        eager = model(task.input_ids, output_attentions=True).attentions  # per layer (1, H, n, n)
    for layer, weights in enumerate(eager):
        for h in range(weights.shape[1]):
            a = weights[0, h][task.response_positions][:, task.context_positions]  # (R, C)
            want = torch.stack([a[:, g].sum(-1).mean() for g in groups])
            assert torch.allclose(got[layer * weights.shape[1] + h], want, atol=1e-5)


def test_at2_weights_round_trip_and_refuse_bad_files(tmp_path) -> None:
    from rcstat.evaluation.attribution.at2 import HeadWeights

    model = tiny_model("llama-gqa")
    shape = (model.config.num_hidden_layers, model.config.num_attention_heads)
    weights = HeadWeights("tiny", [[0.1] * shape[1]] * shape[0], 3, 4, 1.0)
    weights.save(tmp_path / "w.json")
    assert HeadWeights.load(tmp_path / "w.json") == weights
    weights.check(model, "tiny")
    with pytest.raises(RCStatError, match="trained on tiny"):
        weights.check(model, "other")
    (tmp_path / "bad.json").write_text('{"model": "tiny", "weights": [[1, 2], [3]]}')
    with pytest.raises(RCStatError, match="not AT2 head weights"):
        HeadWeights.load(tmp_path / "bad.json")
