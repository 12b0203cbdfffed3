"""Learning curves: merging trainer logs with the probe, and the improved/levelled verdict."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from interp.evaluate.effects import minimum_detectable_difference
from interp.train.curves import LearningCurve, curve_rows, curve_verdict


def test_curve_rows_merge_logs_and_probe_by_step():
    logs = [
        {"step": 1, "loss": 2.0},
        {"step": 2, "loss": 1.5, "reward": 0.5},
        {"step": 2, "learning_rate": 1e-3},  # no loss or reward: not a curve point
        {"train_runtime": 3.0},
    ]
    probe = [{"step": 0, "train_accuracy": 0.25}, {"step": 2, "train_accuracy": 0.5}]
    rows = curve_rows(logs, probe)
    assert rows == [
        {"step": 0, "train_accuracy": 0.25},
        {"step": 1, "loss": 2.0},
        {"step": 2, "loss": 1.5, "reward": 0.5, "train_accuracy": 0.5},
    ]
    curve = LearningCurve.from_manifest({"regime": "grpo", "learning_curve": rows})
    frame = curve.frame()
    assert list(frame.columns) == ["step", "loss", "reward", "train_accuracy"]
    assert curve.objective()[0] == "reward"  # GRPO's objective is its reward
    assert LearningCurve.from_manifest({"regime": "sft"}) is None


def test_verdict_by_hand():
    falling = [1.0 / (1 + 0.5 * k) for k in range(20)]  # a loss that falls and flattens
    check = curve_verdict(falling, higher_is_better=False)
    assert check["first"] == pytest.approx(sum(falling[:2]) / 2)
    assert check["last"] == pytest.approx(sum(falling[-2:]) / 2)
    assert check["improved"] and check["levelled"]
    straight = [1.0 - 0.04 * k for k in range(20)]  # still falling at the same pace
    check = curve_verdict(straight, higher_is_better=False)
    assert check["improved"] and not check["levelled"]
    flat = [3.0] * 20
    assert not curve_verdict(flat, higher_is_better=True)["improved"]
    # a reward that rises by less than 0.05 does not count as improved
    assert not curve_verdict([1.0] * 10 + [1.04] * 10, higher_is_better=True)["improved"]
    assert curve_verdict([1.0] * 10 + [2.0] * 10, higher_is_better=True)["improved"]
    few = curve_verdict([1.0, 0.5], higher_is_better=False)
    assert few["points"] == 2 and not few["improved"] and math.isnan(few["first"])


def test_minimum_detectable_difference_is_the_largest_half_width():
    effects = pd.DataFrame(
        {
            "checkpoint": ["sft", "grpo", "grpo"],
            "metric": ["english_anchored_consistency"] * 2 + ["accuracy"],
            "group": ["trained", "trained", "trained"],
            "ci_low": [-0.02, 0.01, -0.5],
            "ci_high": [0.02, 0.07, 0.5],
        }
    )
    assert minimum_detectable_difference(effects) == pytest.approx(0.03)
    assert math.isnan(minimum_detectable_difference(effects, group="unseen"))
