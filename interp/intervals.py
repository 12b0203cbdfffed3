"""Percentile intervals of bootstrap and null samples: the one place their tails are cut."""

from __future__ import annotations

import numpy as np


def percentile_interval(
    samples: np.ndarray, ci: float = 0.95, *, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The central `ci` interval of `samples` along `axis`: (low, high) percentiles."""
    tail = 100 * (1 - ci) / 2
    low, high = np.percentile(samples, [tail, 100 - tail], axis=axis)
    return low, high


def finite_interval(samples: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """The interval of the finite values of a 1-D sample; NaNs when none are finite."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    low, high = percentile_interval(samples, ci)
    return float(low), float(high)
