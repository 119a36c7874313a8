"""Attribution (docs/method.md §4) against a slow reference built from full eager logits, and its errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from rcstat.attribution.attributor import Attributor, attribution
from rcstat.attribution.features import Task, capture, format_context
from rcstat.attribution.pooling import head_source_rc, source_scores
from rcstat.attribution.profile import select_heads
from rcstat.attribution.scoring import Scoring
from rcstat.attribution.sources import sentence_spans, split_context
from rcstat.errors import RCStatError
from tests.core.test_logits import eager_logits
from tests.helpers import tiny_model

N, CONTEXT, RESPONSE = 34, range(4, 22), range(25, 34)


def tiny_task() -> Task:
    """A random sequence whose tokens 4–21 are a 3-chunk context (one character per token)."""
    ids = torch.randint(3, 128, (1, N), generator=torch.Generator().manual_seed(5))
    text = "aaaaaa\nbbbbbb\ncccc"  # chunk spans 0:6, 7:13, 14:18 (newlines are tokens too)
    return Task(
        context=text,
        query="q",
        response="r" * len(RESPONSE),
        input_ids=ids,
        context_positions=torch.tensor(list(CONTEXT)),
        context_spans=[(i, i + 1) for i in range(len(CONTEXT))],
        response_positions=torch.tensor(list(RESPONSE)),
        response_spans=[(i, i + 1) for i in range(len(RESPONSE))],
        chunk_spans=[(0, 6), (7, 13), (14, 18)],
    )


def brute_rc(x: list[float], y: list[float], estimator: str) -> float:
    if estimator == "independent":
        return sum(max(a - b, 0.0) for a, b in itertools.product(x, y)) / (len(x) * len(y))
    # upper: countermonotone coupling on the merged quantile grid, by brute force over a fine grid
    xs, ys = sorted(x), sorted(y)
    grid = 20000
    return (
        sum(
            max(
                xs[min(int(u / grid * len(xs)), len(xs) - 1)]
                - ys[min(int((1 - u / grid) * len(ys)), len(ys) - 1)],
                0,
            )
            for u in range(grid)
        )
        / grid
    )


@pytest.mark.parametrize("family", ["llama-gqa", "qwen3-gqa", "phi3-gqa"])
@pytest.mark.parametrize("estimator", ["independent", "upper"])
def test_scores_equal_a_slow_reference_from_eager_logits(family: str, estimator: str) -> None:
    model, task = tiny_model(family), tiny_task()
    features = capture(model, task, estimator, attention=True)
    reference = eager_logits(model, task.input_ids)
    heads = select_heads(features.head_rc, 4)
    result = attribution(task, features, heads)
    rows = torch.tensor([2, 3, 4, 5])  # a span of the response: its tokens 2..5
    got = head_source_rc(
        features,
        heads,
        rows,
        result.groups["chunk"],
        Scoring(estimator, y="span", pool="sample", normalise="none"),
    )
    span_rows = [RESPONSE[int(r)] for r in rows]
    for k, (layer, head) in enumerate(heads):
        f = reference[layer][0, head]
        y = [float(f[j, i]) for j in span_rows for i in RESPONSE if i <= j]
        for s, (a, b) in enumerate(task.chunk_spans):
            keys = [CONTEXT[t] for t in range(a, b)]
            x = [float(f[j, i]) for j in span_rows for i in keys]
            assert float(got[k, s]) == pytest.approx(
                brute_rc(x, y, estimator), abs=2e-3 if estimator == "upper" else 1e-4
            )
        # head selection used E[RC] of the whole context against the whole response
        whole_x = [float(f[j, i]) for j in RESPONSE for i in CONTEXT]
        whole_y = [float(f[j, i]) for j in RESPONSE for i in RESPONSE if i <= j]
        if estimator == "independent":
            assert float(features.head_rc[layer, head]) == pytest.approx(
                brute_rc(whole_x, whole_y, estimator), abs=1e-4
            )
        # post-softmax attention for the baselines: the eager softmax of the same rows
        weights = torch.softmax(reference[layer][0, head], -1)[list(RESPONSE)][:, list(CONTEXT)]
        torch.testing.assert_close(features.attention[layer][head], weights, atol=1e-5, rtol=1e-4)


def brute_normalise(scores: list[float], how: str) -> list[float]:
    if how == "sum":
        return [s / sum(scores) for s in scores] if sum(scores) > 0 else [0.0] * len(scores)
    if how == "max":
        return [s / max(scores) for s in scores] if max(scores) > 0 else [0.0] * len(scores)
    if how == "zscore":
        mean = sum(scores) / len(scores)
        sd = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
        return [(s - mean) / sd for s in scores] if sd > 0 else [0.0] * len(scores)
    return scores


@pytest.mark.parametrize(
    "scoring",
    [
        Scoring("independent", 3, "span", "sample", "none"),
        Scoring("independent", 3, "response", "sum", "sum"),
        Scoring("independent", 3, "span", "max", "zscore"),
        Scoring("min_y", 3, "response", "mean", "max"),
        Scoring("upper", 3, "response", "sample", "sum"),
        Scoring("upper", 3, "span", "max", "none"),
        Scoring("jensen", 3, "span", "sum", "zscore"),
        Scoring("independent", 3, "row", "max", "none"),
        Scoring("jensen", 3, "row", "sample", "zscore"),
        Scoring("min_y", 3, "row", "sum", "max"),
        Scoring("upper", 3, "row", "mean", "none"),
        Scoring("independent", 3, "row", "query-max", "zscore"),
        Scoring("jensen", 3, "response", "query-max", "none"),
        Scoring("min_y", 3, "span", "query-max", "sum"),
        Scoring(top_k=3),  # the defaults
    ],
    ids=repr,
)
def test_scoring_variants_equal_a_slow_reference(scoring: Scoring) -> None:
    """Every option of :class:`Scoring` (Y rows, pooling, per-head normalisation) by brute force."""
    model, task = tiny_model("llama-gqa"), tiny_task()
    features = capture(model, task, scoring.estimator)
    reference = eager_logits(model, task.input_ids)
    heads = select_heads(features.head_rc, scoring.top_k)
    result = attribution(task, features, heads, scoring=scoring)
    span = (2, 6)  # response characters 2..5 = response tokens 2..5
    got = result.attributions(*span, granularity="chunk").scores
    span_rows = [RESPONSE[i] for i in range(*span)]
    y_rows = span_rows if scoring.y == "span" else list(RESPONSE)

    def rc(x: list[float], y: list[float]) -> float:
        if scoring.estimator == "min_y":
            return sum(max(a - min(y), 0.0) for a in x) / len(x)
        if scoring.estimator == "jensen":
            return max(sum(x) / len(x) - sum(y) / len(y), 0.0)
        return brute_rc(x, y, scoring.estimator)

    per_head = []
    for layer, head in heads:
        f = reference[layer][0, head]
        y = [float(f[j, i]) for j in y_rows for i in RESPONSE if i <= j]
        chunk_scores = []
        for a, b in task.chunk_spans:
            keys = [CONTEXT[t] for t in range(a, b)]
            if scoring.pool == "query-max":  # per query row: the source's best pair; then the mean over rows
                own = {j: [float(f[j, r]) for r in RESPONSE if r <= j] for j in span_rows}
                best = [
                    max(rc([float(f[j, i])], own[j] if scoring.y == "row" else y) for i in keys)
                    for j in span_rows
                ]
                chunk_scores.append(sum(best) / len(best))
                continue
            if scoring.y == "row":  # every pair (i, j) against row j's own causal self logits
                pairs = {
                    i: [rc([float(f[j, i])], [float(f[j, r]) for r in RESPONSE if r <= j]) for j in span_rows]
                    for i in keys
                }
                tokens = [sum(v) / len(v) for v in pairs.values()]
                pooled = {"mean": sum(tokens) / len(tokens), "sum": sum(tokens), "max": max(tokens)}
                chunk_scores.append(pooled["mean" if scoring.pool == "sample" else scoring.pool])
                continue
            if scoring.pool == "sample":
                chunk_scores.append(rc([float(f[j, i]) for j in span_rows for i in keys], y))
                continue
            tokens = [rc([float(f[j, i]) for j in span_rows], y) for i in keys]
            pooled = {"mean": sum(tokens) / len(tokens), "sum": sum(tokens), "max": max(tokens)}
            chunk_scores.append(pooled[scoring.pool])
        per_head.append(brute_normalise(chunk_scores, scoring.normalise))
    expected = [sum(h[s] for h in per_head) / len(per_head) for s in range(len(task.chunk_spans))]
    tolerance = 2e-3 if scoring.estimator == "upper" else 1e-4
    assert got.tolist() == pytest.approx(expected, abs=tolerance * (10 if scoring.pool == "sum" else 1))


def test_scoring_options_are_checked_and_recorded() -> None:
    with pytest.raises(RCStatError, match="unknown pool 'median'"):
        Scoring(pool="median")
    with pytest.raises(RCStatError, match="unknown normalise"):
        Scoring(normalise="softmax")
    with pytest.raises(RCStatError, match=r"top_k must be in \[1, ∞\), got 0"):
        Scoring(top_k=0)
    with pytest.raises(RCStatError, match="scoring must be a Scoring"):
        Attributor(None, None, scoring={"pool": "max"})
    with pytest.raises(TypeError):
        Attributor(None, None, pooling="max")
    attributor = Attributor(
        tiny_model("llama-gqa"), None, scoring=Scoring(top_k=3, pool="max", normalise="sum")
    )
    assert attributor.scoring == Scoring(top_k=3, pool="max", normalise="sum")
    assert "pool='max'" in repr(attributor) and "normalise='sum'" in repr(attributor)
    # source_scores with no normalisation is the mean of head_source_rc over heads
    model, task = tiny_model("llama-gqa"), tiny_task()
    features = capture(model, task, "independent")
    heads = select_heads(features.head_rc, 2)
    groups = attribution(task, features, heads).groups["chunk"]
    rows = torch.tensor([0, 1])
    plain = Scoring(normalise="none")
    torch.testing.assert_close(
        source_scores(features, heads, rows, groups, plain),
        head_source_rc(features, heads, rows, groups, plain).mean(0),
    )


def test_token_sentence_and_chunk_scores_come_from_one_pass(monkeypatch) -> None:
    model, task = tiny_model("llama-gqa"), tiny_task()
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    features = capture(model, task, "independent")
    result = attribution(
        task, features, select_heads(features.head_rc, 3), scoring=Scoring(pool="mean", normalise="none")
    )
    for granularity, count in (("token", 16), ("sentence", 3), ("chunk", 3)):
        scores = result.attributions(0, 4, granularity=granularity)
        assert len(scores.scores) == len(result.sources[granularity]) == count
        assert sorted(scores.ranking.tolist()) == list(range(count))
    assert len(calls) == 1
    # a chunk's score under `independent` is the mean of its tokens' scores
    token = result.attributions(0, 4, granularity="token").scores
    chunk = result.attributions(0, 4, granularity="chunk").scores
    assert chunk[0] == pytest.approx(token[:6].mean(), rel=1e-5)


def test_spans_outside_the_response_and_empty_contexts_are_clear_errors() -> None:
    model, task = tiny_model("llama-gqa"), tiny_task()
    features = capture(model, task, "independent")
    result = attribution(task, features, select_heads(features.head_rc, 2))
    for start, end in ((0, 99), (5, 5), (-1, 3)):
        with pytest.raises(RCStatError, match="outside the response"):
            result.attributions(start, end)
    with pytest.raises(RCStatError, match="is not in the response"):
        result.find("zzz")
    with pytest.raises(RCStatError, match="unknown granularity"):
        result.attributions(granularity="paragraph")
    with pytest.raises(RCStatError, match="not kept"):
        head_source_rc(
            capture(model, task, "independent", heads=[(0, 1)]),
            [(1, 0)],
            torch.tensor([0]),
            result.groups["chunk"],
            Scoring(),
        )
    for empty in ("", "   ", [], ["", " "]):
        with pytest.raises(RCStatError, match="the context is empty"):
            format_context(empty)


def test_sentences_are_split_offline() -> None:
    text = 'Mr. J. Smith arrived. He said: "Hi!" Then left?\nNew line here.  Last one'
    spans = sentence_spans(text)  # an initial ("J.") does not end a sentence; "Mr." does (rule-based)
    assert [text[a:b] for a, b in spans] == [
        "Mr.",
        "J. Smith arrived.",
        'He said: "Hi!"',
        "Then left?",
        "New line here.",
        "Last one",
    ]
    chunks = split_context("One. Two.\nThree.", "sentence", chunks=[(0, 9), (10, 16)])
    assert [s.text for s in chunks] == ["One.", "Two.", "Three."]
    assert [s.text for s in split_context("ab cd", "token", tokens=[(0, 2), (2, 5)])] == ["ab", "cd"]


def test_profile_heatmap_and_contextualization_histograms_are_written(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from rcstat import stats
    from rcstat.attribution.profile import HeadProfile, head_samples
    from rcstat.render.plots import plot_contextualization, plot_profile

    model, task = tiny_model("llama-gqa"), tiny_task()
    profile = HeadProfile(
        "tiny", "independent", capture(model, task, "independent", heads=[]).head_rc.tolist(), 1
    )
    plot_profile(profile, tmp_path / "heads.png", top_k=3)
    head, x, y, rc = head_samples(model, task, "independent")
    assert head == select_heads(capture(model, task, "independent").head_rc, 1)[0]
    r, c = len(RESPONSE), len(CONTEXT)
    assert x.shape == (r * c,) and y.shape == (r * (r + 1) // 2,)
    assert rc == pytest.approx(float(stats.expected_rc(x, y, "independent")), rel=1e-5)
    assert head_samples(model, task, "independent", (1, 2))[0] == (1, 2)
    plot_contextualization(
        *head_samples(model, task, "independent", (1, 2)), "independent", tmp_path / "xy.png"
    )
    for name in ("heads.png", "xy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RCStatError, match="no head 9:0"):
        head_samples(model, task, "independent", (9, 0))
