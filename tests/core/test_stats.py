"""Estimators of docs/method.md §2 against brute-force references, and their ordering as a property."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rcstat import stats

# ---- brute-force references, written out independently of the implementation ----------------


def ref_independent(x: list[float], y: list[float]) -> float:
    return sum(max(a - b, 0.0) for a, b in itertools.product(x, y)) / (len(x) * len(y))


def ref_coupling(x: list[float], y: list[float], counter: bool) -> float:
    """Integrate (Q_X(u) − Q_Y(u or 1−u))^+ on the merged grid {i/n} ∪ {j/m}, in exact integers."""
    n, m = len(x), len(y)
    xs, ys = sorted(x), sorted(y, reverse=counter)
    ends = sorted({i * m for i in range(1, n + 1)} | {j * n for j in range(1, m + 1)})
    total, prev = 0.0, 0
    for e in ends:
        ix, iy = -(-e // m) - 1, -(-e // n) - 1  # ceil(e / m) - 1, ceil(e / n) - 1
        total += (e - prev) * max(xs[ix] - ys[iy], 0.0)
        prev = e
    return total / (n * m)


REFERENCES = {
    "jensen": lambda x, y: max(sum(x) / len(x) - sum(y) / len(y), 0.0),
    "lower": lambda x, y: ref_coupling(x, y, counter=False),
    "independent": ref_independent,
    "upper": lambda x, y: ref_coupling(x, y, counter=True),
    "min_y": lambda x, y: sum(max(a - min(y), 0.0) for a in x) / len(x),
}

# Values drawn from a small grid produce ties and equal samples often; floats cover the rest.
values = st.one_of(
    st.integers(-4, 4).map(float),
    st.floats(-50, 50, allow_nan=False, allow_infinity=False, width=64),
)
samples = st.lists(values, min_size=1, max_size=24)


@settings(max_examples=300, deadline=None)
@given(x=samples, y=samples)
def test_each_estimator_equals_its_reference(x: list[float], y: list[float]) -> None:
    tx, ty = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    for name in stats.ESTIMATORS:
        got = float(stats.expected_rc(tx, ty, name))
        assert got == pytest.approx(REFERENCES[name](x, y), abs=1e-6, rel=1e-9), name


@settings(max_examples=300, deadline=None)
@given(x=samples, y=samples)
@example(x=[-1.0, -7.050872373966925e-184], y=[-1.0, -1.191938878750403e-44])  # rounding below 0 once
def test_ordering_jensen_lower_independent_upper_min_y(x: list[float], y: list[float]) -> None:
    tx, ty = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    chain = [float(stats.expected_rc(tx, ty, name)) for name in stats.ESTIMATORS]
    for a, b in itertools.pairwise(chain):
        assert a <= b + 1e-9, chain
    assert all(v >= 0 for v in chain)


@settings(max_examples=100, deadline=None)
@given(x=samples, y=samples)
def test_all_zero_when_x_never_exceeds_y(x: list[float], y: list[float]) -> None:
    shift = max(x) - min(y)
    tx = torch.tensor(x, dtype=torch.float64) - max(shift, 0.0)  # now max x ≤ min y
    ty = torch.tensor(y, dtype=torch.float64)
    for name in stats.ESTIMATORS:
        assert float(stats.expected_rc(tx, ty, name)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", stats.ESTIMATORS)
def test_single_values(name: str) -> None:
    x, y = torch.tensor([3.0]), torch.tensor([1.0])
    assert float(stats.expected_rc(x, y, name)) == pytest.approx(2.0)


@pytest.mark.parametrize("name", stats.ESTIMATORS)
def test_batched_with_shared_y_equals_a_loop(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    # layers × heads × candidates × samples, with y shared by every candidate of a head
    x = torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64)
    y = torch.randn(2, 3, 1, 11, generator=g, dtype=torch.float64)
    got = stats.expected_rc(x, y, name)
    assert got.shape == (2, 3, 7)
    for i, j, c in itertools.product(range(2), range(3), range(7)):
        want = REFERENCES[name](x[i, j, c].tolist(), y[i, j, 0].tolist())
        assert float(got[i, j, c]) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("name", stats.ESTIMATORS)
def test_broadcast_both_ways(name: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, 6, generator=g, dtype=torch.float64)  # shared across dim 1
    y = torch.randn(1, 3, 9, generator=g, dtype=torch.float64)  # shared across dim 0
    got = stats.expected_rc(x, y, name)
    assert got.shape == (4, 3)
    for i, j in itertools.product(range(4), range(3)):
        want = REFERENCES[name](x[i, 0].tolist(), y[0, j].tolist())
        assert float(got[i, j]) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("name", stats.ESTIMATORS)
def test_float32_and_half_inputs(name: str) -> None:
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(3, 40, generator=g), torch.randn(3, 70, generator=g)
    want = stats.expected_rc(x.double(), y.double(), name)
    got32 = stats.expected_rc(x, y, name)
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), want, atol=1e-5, rtol=1e-5)
    got16 = stats.expected_rc(x.half(), y.half(), name)
    assert got16.dtype == torch.float32  # promoted, never computed in half


def test_unknown_estimator_and_empty_samples() -> None:
    with pytest.raises(ValueError, match="unknown estimator"):
        stats.expected_rc(torch.ones(2), torch.ones(2), "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one sample"):
        stats.expected_rc(torch.ones(0), torch.ones(2))


@settings(max_examples=200, deadline=None)
@given(
    y=st.lists(st.integers(-6, 6).map(float) | st.floats(-9, 9, width=32), min_size=1, max_size=60),
    x=st.lists(st.integers(-8, 8).map(float) | st.floats(-12, 12, width=32), min_size=1, max_size=300),
)
def test_bucketed_count_below_is_exact(x: list[float], y: list[float]) -> None:
    """The bucketed search (used for large inputs) against a binary search, with ties and repeats."""
    sorted_y = stats._SortedY(torch.tensor([y]))
    sorted_y.min_samples = 0
    xs = torch.tensor([x]).reshape(1, -1, 1).expand(1, len(x), 4)  # ≥ 4 queries per y
    want = torch.searchsorted(sorted_y.sorted, xs.reshape(1, -1).contiguous()).reshape(xs.shape)
    for scan in (0, 8, 10**6):  # fallback, default and always-bucketed paths
        sorted_y.max_bucket_scan = scan
        assert torch.equal(sorted_y.count_below(xs), want)


@pytest.mark.parametrize("name", stats.ESTIMATORS)
def test_large_inputs_take_the_bucketed_path_exactly(name: str) -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 200, 16, generator=g, dtype=torch.float64).round(decimals=1)  # ties with y
    y = torch.randn(3, 1, 120, generator=g, dtype=torch.float64).round(decimals=2)
    table = stats._SortedY(y.reshape(3, 120))
    assert table._bucket_table()[-1] <= table.max_bucket_scan  # the bucketed path is taken
    got = stats.expected_rc(x, y, name)
    for h, c in itertools.product(range(3), range(0, 200, 17)):
        want = REFERENCES[name](x[h, c].tolist(), y[h, 0].tolist())
        assert float(got[h, c]) == pytest.approx(want, abs=1e-9)


# ---- samples of X and Y ---------------------------------------------------------------------


def test_cross_and_self_samples_match_a_pair_loop() -> None:
    g = torch.Generator().manual_seed(3)
    query_positions, key_positions = [5, 6, 7, 8], list(range(9))
    logits = torch.randn(2, 4, 9, generator=g)  # heads × rows × keys
    p1, g_prime, g1 = [0, 2, 3], [6, 8], [5, 6, 7]
    x = stats.cross_samples(logits, query_positions, key_positions, g_prime, p1)
    want_x = [[logits[h, query_positions.index(j), i] for j in g_prime for i in p1] for h in range(2)]
    torch.testing.assert_close(x, torch.tensor(want_x))
    y = stats.self_samples(logits, query_positions, key_positions, g_prime, g1)
    pairs = [(i, j) for j in g_prime for i in g1 if i <= j]
    want_y = [[logits[h, query_positions.index(j), i] for i, j in pairs] for h in range(2)]
    assert sorted(y[0].tolist()) == sorted(float(v) for v in want_y[0])
    assert y.shape == (2, len(pairs))


def test_self_samples_full_generation_has_triangular_count() -> None:
    gen = list(range(10, 16))
    logits = torch.zeros(len(gen), 16)
    y = stats.self_samples(logits, gen, list(range(16)), gen, gen)
    assert y.shape[-1] == len(gen) * (len(gen) + 1) // 2


def test_samples_reject_positions_without_logits() -> None:
    logits = torch.zeros(2, 5)
    with pytest.raises(ValueError, match="not among the computed logits"):
        stats.cross_samples(logits, [3, 4], range(5), [2], [0])
    with pytest.raises(ValueError, match="Y is empty"):
        stats.self_samples(logits, [3, 4], range(5), [3], [4])


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.lists(values, min_size=1, max_size=6), samples), min_size=1, max_size=5),
    pad=values,
)
def test_row_paired_rc_is_each_rows_own_estimate(
    rows: list[tuple[list[float], list[float]]], pad: float
) -> None:
    """Each row's logits against that row's valid Y only (padding ignored), for every estimator."""
    width, c = max(len(y) for _, y in rows), max(len(x) for x, _ in rows)
    x = torch.tensor([xs + [0.0] * (c - len(xs)) for xs, _ in rows], dtype=torch.float64)
    y = torch.tensor([ys + [pad] * (width - len(ys)) for _, ys in rows], dtype=torch.float64)
    counts = torch.tensor([len(ys) for _, ys in rows])
    for name in stats.ESTIMATORS:
        got = stats.row_paired_rc(x[None], y[None], counts, name)[0]
        for t, (xs, ys) in enumerate(rows):
            for i, value in enumerate(xs):
                assert float(got[t, i]) == pytest.approx(REFERENCES[name]([value], ys), abs=1e-6, rel=1e-9)


def test_row_paired_rc_rejects_rows_without_y() -> None:
    with pytest.raises(ValueError, match="between 1 and M"):
        stats.row_paired_rc(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="unknown estimator"):
        stats.row_paired_rc(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([1, 2]), "median")


def test_row_paired_rc_promotes_mixed_and_half_inputs() -> None:
    x = torch.tensor([[1.0, 3.0]], dtype=torch.float16)
    y = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    got = stats.row_paired_rc(x, y, torch.tensor([2]))
    assert got.dtype == torch.float64 and got[0].tolist() == pytest.approx([0.25, 1.75])


def test_row_paired_rc_takes_the_bucketed_path_exactly() -> None:
    """Rows with ≥ 32 valid Y and many logits go through _SortedY's bucketed count; padding stays out."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 200, generator=gen, dtype=torch.float64) * 3
    y = torch.randn(2, 3, 40, generator=gen, dtype=torch.float64) * 3
    counts = torch.tensor([40, 35, 33])
    got = stats.row_paired_rc(x, y, counts)
    for t, n in enumerate(counts.tolist()):
        expected = stats.expected_rc(x[:, t, :, None], y[:, t, None, :n])  # one x per pair, its row's Y
        torch.testing.assert_close(got[:, t], expected)
