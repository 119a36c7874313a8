"""95% intervals for benchmark scores."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def interval(scores: Sequence[float]) -> tuple[float, float]:
    """95% interval of a mean score: Wilson for 0/1 scores, normal approximation otherwise."""
    n = len(scores)
    if all(s in (0.0, 1.0) for s in scores):
        return wilson(int(sum(scores)), n)
    if n < 2:
        return (0.0, 1.0)
    mean, half = statistics.fmean(scores), 1.959964 * statistics.stdev(scores) / math.sqrt(n)
    return (max(0.0, mean - half), min(1.0, mean + half))


def normal(values: Sequence[float]) -> list[float] | None:
    """95% normal-approximation interval of a mean (``None`` below two values)."""
    if len(values) < 2:
        return None
    mean, half = statistics.fmean(values), 1.959964 * statistics.stdev(values) / math.sqrt(len(values))
    return [mean - half, mean + half]
