"""The statistics of RCStat (docs/method.md §2): samples of X and Y, and estimators of E[Z].

Everything here is pure tensor math on logits; nothing knows about models.

Shapes. An estimator takes ``x`` of shape ``(*bx, n)`` and ``y`` of shape ``(*by, m)``: the last
dimension holds the samples, the leading ones are batch dimensions (layers, heads, candidates…)
that broadcast against each other. The result has the broadcast batch shape. When ``y`` is shared
by many candidates (``by`` has a 1 where ``bx`` does not) it is sorted once and never copied per
candidate, so scoring ``C`` candidates of ``n`` values against one ``y`` of ``m`` values costs

===============  ==========================================  ============
estimator        time                                        extra memory
===============  ==========================================  ============
``jensen``       O(C·n + m)                                  O(C)
``min_y``        O(C·n + m)                                  O(C·n)
``independent``  O(m log m + C·n · count)                    O(C·n + m)
``lower``        O(m log m + C·n log n + C·n · count)        O(C·n + m)
``upper``        same as ``lower``                           O(C·n + m)
===============  ==========================================  ============

``count`` is the cost of ``#{y < x}`` for one x: O(log m) by binary search, O(1) on average with
the bucketed search used for large inputs (see ``_SortedY``).

They satisfy ``jensen ≤ lower ≤ independent ≤ upper ≤ min_y`` for every pair of samples.
Inputs in half precision are promoted to float32; float64 stays float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from rcstat.options import Estimator, choices

ESTIMATORS: tuple[str, ...] = choices(Estimator)  # in the order of the bounds


# --------------------------------------------------------------------------------------------
# Samples (docs/method.md §2)
# --------------------------------------------------------------------------------------------


def _as_index(positions: Sequence[int] | torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(positions, dtype=torch.long, device=device).reshape(-1)


def _block(
    logits: torch.Tensor,
    query_positions: Sequence[int] | torch.Tensor,
    key_positions: Sequence[int] | torch.Tensor,
    queries: torch.Tensor,
    keys: torch.Tensor,
) -> torch.Tensor:
    """The ``(..., |queries|, |keys|)`` block of ``logits`` at the given absolute positions."""
    block = logits.index_select(-2, _rows_of(query_positions, queries, logits.device))
    return block.index_select(-1, _rows_of(key_positions, keys, logits.device))


def cross_samples(
    logits: torch.Tensor,
    query_positions: Sequence[int] | torch.Tensor,
    key_positions: Sequence[int] | torch.Tensor,
    queries: Sequence[int] | torch.Tensor,
    keys: Sequence[int] | torch.Tensor,
) -> torch.Tensor:
    """Samples of the cross-contextualization ``X_s(p1, g')`` (docs/method.md §2).

    ``logits`` has shape ``(..., r, c)``: rows are the absolute query positions
    ``query_positions``, columns the absolute key positions ``key_positions``. Returns
    ``f(i, j)`` for every ``i`` in ``keys`` (p1) and ``j`` in ``queries`` (g'), flattened into the
    last dimension, shape ``(..., |g'|·|p1|)``; every pair has equal weight.
    """
    q_abs, k_abs = _as_index(queries, logits.device), _as_index(keys, logits.device)
    return _block(logits, query_positions, key_positions, q_abs, k_abs).flatten(-2)


def self_samples(
    logits: torch.Tensor,
    query_positions: Sequence[int] | torch.Tensor,
    key_positions: Sequence[int] | torch.Tensor,
    queries: Sequence[int] | torch.Tensor,
    keys: Sequence[int] | torch.Tensor,
) -> torch.Tensor:
    """Samples of the self-contextualization ``Y_s(g1, g')`` (docs/method.md §2).

    Like :func:`cross_samples` but over causal pairs only: key ``i`` in ``keys`` (g1), query ``j``
    in ``queries`` (g'), ``i ≤ j``, the diagonal included. Raises if no pair is causal.
    """
    q_abs, k_abs = _as_index(queries, logits.device), _as_index(keys, logits.device)
    causal = k_abs.unsqueeze(0) <= q_abs.unsqueeze(1)
    if not bool(causal.any()):
        raise ValueError("Y is empty: no key of g1 precedes or equals a query of g'")
    return _block(logits, query_positions, key_positions, q_abs, k_abs)[..., causal]


def _rows_of(
    positions: Sequence[int] | torch.Tensor,
    wanted: Sequence[int] | torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """Indices into ``positions`` of each absolute position in ``wanted`` (all must be present)."""
    pos = _as_index(positions, device)
    want = _as_index(wanted, device)
    order = torch.argsort(pos)
    sorted_pos = pos[order]
    idx = torch.searchsorted(sorted_pos, want).clamp(max=max(len(pos) - 1, 0))
    if len(pos) == 0 or not bool((sorted_pos[idx] == want).all()):
        missing = sorted(set(want.tolist()) - set(pos.tolist()))
        raise ValueError(f"positions {missing[:8]} are not among the computed logits")
    return order[idx]


# --------------------------------------------------------------------------------------------
# Estimators of E[Z] = E[max(X - Y, 0)] (docs/method.md §2)
# --------------------------------------------------------------------------------------------


def _promote(t: torch.Tensor) -> torch.Tensor:
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        return t.to(torch.float32)
    return t


def _fold(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Align batch dims so that a ``y`` shared by many candidates is processed once.

    Returns ``xf`` of shape ``(*b, k, n)``, ``yf`` of shape ``(*b, m)`` and ``unfold``, which maps
    a per-candidate result of shape ``(*b, k)`` back to the broadcast batch shape of x and y.
    """
    if x.shape[-1] == 0 or y.shape[-1] == 0:
        raise ValueError("estimators need at least one sample of X and one of Y")
    dtype = torch.promote_types(_promote(x).dtype, _promote(y).dtype)
    x, y = x.to(dtype), y.to(dtype)
    batch = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    nd = len(batch)
    x = x.reshape((1,) * (nd - x.dim() + 1) + x.shape).expand(*batch, x.shape[-1])
    y = y.reshape((1,) * (nd - y.dim() + 1) + y.shape)
    shared = [d for d in range(nd) if y.shape[d] == 1 and batch[d] > 1]
    own = [d for d in range(nd) if d not in shared]
    xf = x.permute(*own, *shared, nd)
    kept_shape = [batch[d] for d in own]
    shared_shape = [batch[d] for d in shared]
    xf = xf.reshape(*kept_shape, math.prod(shared_shape), x.shape[-1])
    yf = y.expand(*[batch[d] if d in own else 1 for d in range(nd)], y.shape[-1])
    yf = yf.reshape(*kept_shape, y.shape[-1])
    inverse = [0] * nd
    for new, old in enumerate(own + shared):
        inverse[old] = new

    def unfold(r: torch.Tensor) -> torch.Tensor:
        return r.reshape(tuple(kept_shape + shared_shape)).permute(tuple(inverse))

    return xf, yf, unfold


class _SortedY:
    """Sorted ``y`` with prefix sums: counts below a value, partial sums, integrals of Q_Y.

    ``count_below`` is the hot spot of the sort-based estimators. For many queries it first maps
    values to ``buckets_per_sample · m`` equal-width buckets spanning ``[min y, max y]``. The map is
    monotone, so every y of a lower bucket is below x and every y of a higher bucket above it: the
    count is the number of y in lower buckets plus a comparison with the few y sharing x's bucket
    (y beyond that bucket compare false by themselves). Exact; when a bucket holds more than
    ``max_bucket_scan`` values (heavy ties) it falls back to a binary search.
    """

    buckets_per_sample = 64
    max_bucket_scan = 8
    min_samples = 32  # below this many y (or 4 queries per y) a binary search is as fast

    def __init__(self, y: torch.Tensor) -> None:
        self.m = y.shape[-1]
        self.sorted = torch.sort(y, dim=-1).values.contiguous()
        zero = torch.zeros_like(self.sorted[..., :1])
        self.prefix = torch.cat([zero, torch.cumsum(self.sorted, dim=-1)], dim=-1)
        self._buckets: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int] | None = None

    def _bucket_index(self, values: torch.Tensor, low: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        count = self.buckets_per_sample * self.m
        return ((values - low) * scale).floor_().clamp_(0, count - 1).long()

    def _bucket_table(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """``(low, scale, first, padded, scan)``: ``first[b]`` = #{y in buckets < b}."""
        if self._buckets is None:
            count = self.buckets_per_sample * self.m
            low = self.sorted[..., :1]
            scale = count / (self.sorted[..., -1:] - low)
            scale = torch.where(torch.isfinite(scale) & (scale > 0), scale, 1.0)  # any scale > 0 is exact
            own = self._bucket_index(self.sorted, low, scale)
            sizes = torch.zeros(*own.shape[:-1], count + 1, dtype=torch.long, device=own.device)
            sizes.scatter_add_(-1, own + 1, torch.ones_like(own))
            first = torch.cumsum(sizes, dim=-1)
            scan = int(sizes.max())
            pad = torch.full_like(self.sorted[..., :1], float("inf")).expand(*own.shape[:-1], scan)
            padded = torch.cat([self.sorted, pad], dim=-1)
            self._buckets = (low, scale, first, padded, scan)
        return self._buckets

    def count_below(self, x: torch.Tensor) -> torch.Tensor:
        """``#{b : y_b < x}`` for every value of ``x`` (shape ``(*b, k, n)``), exactly."""
        flat = x.reshape(*x.shape[:-2], -1).contiguous()
        if self.m >= self.min_samples and flat.shape[-1] >= 4 * self.m:
            low, scale, first, padded, scan = self._bucket_table()
            if scan <= self.max_bucket_scan:
                start = torch.gather(first, -1, self._bucket_index(flat, low, scale))
                count = start.clone()
                for step in range(scan):
                    count += torch.gather(padded, -1, start + step if step else start) < flat
                return count.reshape(x.shape)
        return torch.searchsorted(self.sorted, flat, side="left").reshape(x.shape)

    def sum_below(self, count: torch.Tensor) -> torch.Tensor:
        """Sum of the ``count`` smallest values of y."""
        flat = count.reshape(*count.shape[:-2], -1)
        return torch.gather(self.prefix, -1, flat).reshape(count.shape)

    def integral(self, u: torch.Tensor) -> torch.Tensor:
        """``G(u) = ∫₀ᵘ Q_Y(v) dv`` at the points ``u`` (1-D, in [0, 1]): shape ``(*b, len(u))``.

        Q_Y is the left-continuous quantile function; G is piecewise linear with knots at j/m.
        """
        scaled = u * self.m
        k = torch.floor(scaled).long().clamp(0, self.m - 1)
        base = self.prefix.index_select(-1, k)
        return (base + (scaled - k) * self.sorted.index_select(-1, k)) / self.m


def jensen(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(mean x − mean y)^+``: a lower bound on E[Z] for every coupling (docs/method.md §2)."""
    xf, yf, unfold = _fold(x, y)
    return unfold((xf.mean(-1) - yf.mean(-1, keepdim=True)).clamp_min(0))


def min_y(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``mean_a (x_a − min y)^+``: the cheapest upper bound (docs/method.md §2)."""
    xf, yf, unfold = _fold(x, y)
    floor = yf.amin(-1, keepdim=True).unsqueeze(-1)
    return unfold((xf - floor).clamp_min(0).mean(-1))


def independent(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(1/nm) Σ_a Σ_b (x_a − y_b)^+``: E[Z] for independent X and Y (docs/method.md §2)."""
    xf, yf, unfold = _fold(x, y)
    ys = _SortedY(yf)
    below = ys.count_below(xf)
    per_value = (below * xf - ys.sum_below(below)).clamp_min(0)  # Σ_b (x − y_b)^+ ≥ 0, up to rounding
    return unfold(per_value.mean(-1) / ys.m)


def _quantile_setup(xf: torch.Tensor, yf: torch.Tensor) -> tuple[torch.Tensor, _SortedY, torch.Tensor]:
    """Sorted x, sorted y, and the grid ``i/n`` (i = 0..n) of the x-quantile steps."""
    ys = _SortedY(yf)
    xs = torch.sort(xf, dim=-1).values
    n = xs.shape[-1]
    grid = torch.arange(n + 1, dtype=xs.dtype, device=xs.device) / n
    return xs, ys, grid


def lower(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``∫₀¹ (Q_X(u) − Q_Y(u))^+ du``: the comonotone coupling, min over couplings (docs/method.md §2).

    Exact on the merged grid of both step functions: on the u-interval ``(i/n, (i+1)/n]`` of
    ``x_(i)`` the integrand is positive exactly for ``u ≤ c/m``, ``c = #{y < x_(i)}``, and
    ``∫ Q_Y`` up to ``c/m`` is the prefix sum of the ``c`` smallest y over m.
    """
    xf, yf, unfold = _fold(x, y)
    xs, ys, grid = _quantile_setup(xf, yf)
    count = ys.count_below(xs)
    reach = count.to(xs.dtype) / ys.m
    start, stop = grid[:-1], grid[1:]
    g = ys.integral(grid).unsqueeze(-2)  # G at the grid, shared by every candidate
    end = torch.minimum(reach, stop)
    g_end = torch.where(reach < stop, ys.sum_below(count) / ys.m, g[..., 1:])
    area = xs * (end - start) - (g_end - g[..., :-1])
    return unfold(torch.where(end > start, area.clamp_min(0), 0).sum(-1))  # each term ≥ 0 up to rounding


def upper(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``∫₀¹ (Q_X(u) − Q_Y(1−u))^+ du``: the countermonotone coupling, max over couplings.

    The bound from the marginals alone (docs/method.md §2). On the u-interval of ``x_(i)`` the integrand is
    positive exactly for ``u ≥ 1 − c/m``; there ``∫ Q_Y(1 − u) du = G(1 − begin) − G(1 − stop)``.
    """
    xf, yf, unfold = _fold(x, y)
    xs, ys, grid = _quantile_setup(xf, yf)
    count = ys.count_below(xs)
    reach = count.to(xs.dtype) / ys.m
    start, stop = grid[:-1], grid[1:]
    g = ys.integral((1.0 - grid).clamp_min(0)).unsqueeze(-2)  # G(1 − i/n)
    begin = torch.maximum(1.0 - reach, start)
    g_begin = torch.where(1.0 - reach > start, ys.sum_below(count) / ys.m, g[..., :-1])
    area = xs * (stop - begin) - (g_begin - g[..., 1:])
    return unfold(torch.where(begin < stop, area.clamp_min(0), 0).sum(-1))  # each term ≥ 0 up to rounding


_IMPLEMENTATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "jensen": jensen,
    "lower": lower,
    "independent": independent,
    "upper": upper,
    "min_y": min_y,
}


def expected_rc(x: torch.Tensor, y: torch.Tensor, estimator: Estimator = "independent") -> torch.Tensor:
    """Estimate ``E[Z] = E[max(X − Y, 0)]`` from samples with the named estimator (docs/method.md §2)."""
    try:
        fn = _IMPLEMENTATIONS[estimator]
    except KeyError:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}") from None
    return fn(x, y)


def row_paired_rc(
    x: torch.Tensor, y: torch.Tensor, counts: torch.Tensor, estimator: Estimator = "independent"
) -> torch.Tensor:
    """``E[Z]`` of each logit ``x`` against the Y sample of its own query row ([ours], docs/method.md §4).

    ``x`` is ``(*b, T, C)``: the logits of ``T`` query rows to ``C`` keys. ``y`` is ``(*b, T, M)``:
    each row's self-contextualization logits, of which the first ``counts[t]`` (≥ 1) are valid (the
    rest is ignored). Coupling X and Y through the query removes each row's own offset (a query of
    large norm raises all its logits), as a softmax does. With one X value per pair the coupling
    bounds coincide: ``lower``, ``independent`` and ``upper`` give ``mean_b (x − y_b)^+``, ``jensen``
    ``(x − mean y)^+`` and ``min_y`` ``(x − min y)^+``. Returns ``(*b, T, C)``.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    if int(counts.min()) < 1 or int(counts.max()) > y.shape[-1]:
        raise ValueError("every row needs between 1 and M samples of Y")
    dtype = torch.promote_types(_promote(x).dtype, _promote(y).dtype)
    x, y, counts = x.to(dtype), y.to(dtype), counts.to(y.device)
    valid = torch.arange(y.shape[-1], device=y.device) < counts[:, None]  # (T, M)
    n = counts.to(dtype)[:, None]  # (T, 1)
    if estimator == "jensen":
        return (x - torch.where(valid, y, 0).sum(-1, keepdim=True) / n).clamp_min(0)
    if estimator == "min_y":
        return (x - torch.where(valid, y, torch.inf).amin(-1, keepdim=True)).clamp_min(0)
    ys = _SortedY(torch.where(valid, y, torch.inf))  # invalid entries sort last, never below an x
    below = ys.count_below(x[..., None, :])  # ≤ counts[t]; its prefix sums are finite up to there
    return ((below * x[..., None, :] - ys.sum_below(below))[..., 0, :] / n).clamp_min(0)
