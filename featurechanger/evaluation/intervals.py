"""Rates and means with 95% confidence intervals, as the evaluation reports them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% confidence interval over n samples."""

    value: float
    low: float
    high: float
    n: int


def proportion(successes: np.ndarray) -> Estimate:
    """Share of True among n outcomes, with Wilson's score interval (sound near 0% and 100%)."""
    outcomes = np.asarray(successes, dtype=bool)
    n = len(outcomes)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    share = float(outcomes.mean())
    denominator = 1 + Z95**2 / n
    centre = (share + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(share * (1 - share) / n + Z95**2 / (4 * n * n)) / denominator
    return Estimate(share, max(0.0, centre - half), min(1.0, centre + half), n)


def mean(values: np.ndarray) -> Estimate:
    """Mean of per-image values with a normal interval (the evaluation uses 1,000+ images)."""
    samples = np.asarray(values, dtype=np.float64)
    n = len(samples)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    average = float(samples.mean())
    half = Z95 * float(samples.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(average, average - half, average + half, n)
