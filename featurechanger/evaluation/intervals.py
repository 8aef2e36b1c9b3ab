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


def mean(values: np.ndarray, bounds: tuple[float, float] = (-math.inf, math.inf)) -> Estimate:
    """Mean of per-image values with a normal interval (the evaluation uses 1,000+ images).

    The interval is cut to `bounds`, the range the values can take (a share of attributes kept
    lies in [0, 1], and so does its mean), which a normal interval over few images can exceed.
    """
    samples = np.asarray(values, dtype=np.float64)
    n = len(samples)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    average = float(samples.mean())
    half = Z95 * float(samples.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    low, high = bounds
    return Estimate(average, max(low, average - half), min(high, average + half), n)
