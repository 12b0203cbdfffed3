"""English-anchored and pairwise consistency, exposure accuracy, total consistency over the
trained languages and the calibrated score, against hand counts on a planted table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from interp.errors import DataError
from interp.evaluate.metrics import evaluate, paired_bootstrap
from interp.evaluate.scoring import calibrated_scores

# correct (1) or not (0) per fact and language; ko is an unseen language
CORRECT = {
    "f1": {"en": 1, "de": 1, "ja": 0, "ko": 1},
    "f2": {"en": 1, "de": 0, "ja": 0, "ko": 0},
    "f3": {"en": 0, "de": 1, "ja": 1, "ko": 0},
    "f4": {"en": 1, "de": 1, "ja": 1, "ko": 1},
}
EXPOSURE = {  # de/ja/ko: what the model read there (en is always exposed)
    "f1": {"de": "exposed", "ja": "english_only", "ko": "same_label"},
    "f2": {"de": "english_only", "ja": "exposed", "ko": "english_only"},
    "f3": {"de": "exposed", "ja": "exposed", "ko": "english_only"},
    "f4": {"de": "english_only", "ja": "english_only", "ko": "english_only"},
}


def table(correct=CORRECT) -> pd.DataFrame:
    rows = []
    for fact, by_language in correct.items():
        for code, right in by_language.items():
            # two options, the answer is option 0; the model prefers it when right
            scores = (0.0, -1.0) if right else (-1.0, 0.0)
            rows.append((fact, code, 0, scores, ("yes", "no")))
    return pd.DataFrame(
        rows, columns=["fact_id", "language", "answer_index", "scores", "option_ids"]
    )


def exposure_table() -> pd.DataFrame:
    rows = [(f, "en", "exposed") for f in EXPOSURE]
    rows += [(f, c, kind) for f, by in EXPOSURE.items() for c, kind in by.items()]
    return pd.DataFrame(rows, columns=["fact_id", "language", "exposure"])


def value(result: pd.DataFrame, metric: str, language: str, other: str = "") -> float:
    hit = result[
        (result.metric == metric) & (result.language == language) & (result.other == other)
    ]
    assert len(hit) == 1, (metric, language, other)
    return float(hit.iloc[0]["value"])


def test_english_anchored_and_pairwise_consistency_by_hand():
    result = evaluate(table(), n_boot=0, exposure=exposure_table())
    # English is right on f1 f2 f4; de right on f1 f4 of those; ja on f4; ko on f1 f4
    assert value(result, "english_anchored", "de") == pytest.approx(2 / 3)
    assert value(result, "english_anchored", "ja") == pytest.approx(1 / 3)
    assert value(result, "english_anchored", "ko") == pytest.approx(2 / 3)
    assert value(result, "english_anchored", "trained") == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert value(result, "english_anchored", "unseen") == pytest.approx(2 / 3)
    assert value(result, "english_anchored", "all") == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    assert not ((result.metric == "english_anchored") & (result.language == "en")).any()
    # de is right on f1 f3 f4: en right on f1 f4 of them; ja right on f3 f4
    assert value(result, "pairwise_consistency", "de", "en") == pytest.approx(2 / 3)
    assert value(result, "pairwise_consistency", "de", "ja") == pytest.approx(2 / 3)
    assert value(result, "pairwise_consistency", "en", "de") == pytest.approx(2 / 3)
    assert value(result, "pairwise_consistency", "ja", "ja") == 1.0
    n = result.set_index(["metric", "language", "other"])["n"]
    assert n[("english_anchored", "de", "")] == 3
    assert n[("pairwise_consistency", "ja", "de")] == 2


def test_total_consistency_over_trained_languages_and_all():
    result = evaluate(table(), n_boot=0)
    # all three trained languages (en de ja) right: f4 only; all four: f4 only
    assert value(result, "total_consistency", "trained") == pytest.approx(1 / 4)
    assert value(result, "total_consistency", "all") == pytest.approx(1 / 4)
    flipped = {f: {**by, "ko": 0} for f, by in CORRECT.items()}
    result = evaluate(table(flipped), n_boot=0)
    assert value(result, "total_consistency", "trained") == pytest.approx(1 / 4)
    assert value(result, "total_consistency", "all") == 0.0


def test_accuracy_by_exposure_by_hand():
    result = evaluate(table(), n_boot=0, exposure=exposure_table())
    # de: exposed f1 f3 (both right), english_only f2 f4 (f4 right)
    assert value(result, "accuracy_exposed", "de") == 1.0
    assert value(result, "accuracy_english_only", "de") == pytest.approx(1 / 2)
    # ja: exposed f2 f3 (f3 right), english_only f1 f4 (f4 right)
    assert value(result, "accuracy_exposed", "ja") == pytest.approx(1 / 2)
    assert value(result, "accuracy_english_only", "ja") == pytest.approx(1 / 2)
    # ko: same_label f1 (right); english_only f2 f3 f4 (f4 right)
    assert value(result, "accuracy_same_label", "ko") == 1.0
    assert value(result, "accuracy_english_only", "ko") == pytest.approx(1 / 3)
    # groups average their languages; a language without such items does not count
    assert value(result, "accuracy_exposed", "trained") == pytest.approx(0.75)
    assert value(result, "accuracy_same_label", "all") == 1.0
    assert not ((result.metric == "accuracy_same_label") & (result.language == "de")).any()
    with pytest.raises(DataError, match="unknown exposure"):
        evaluate(table(), n_boot=0, exposure=exposure_table().replace("exposed", "seen"))


def test_paired_bootstrap_of_anchored_consistency_moves_with_the_change():
    before = table()
    improved = {f: {**by, "ja": by["en"]} for f, by in CORRECT.items()}  # ja follows English
    after = table(improved)
    result = paired_bootstrap(
        before, after, metrics=("english_anchored",), n_boot=300, seed=1
    ).set_index(["metric", "language", "other"])
    row = result.loc[("english_anchored", "ja", "")]
    assert row.value_a == pytest.approx(1 / 3) and row.value_b == 1.0
    assert row.difference == pytest.approx(2 / 3)
    assert 0 <= row.ci_low < row.difference < row.ci_high <= 1  # 4 facts: wide, not empty
    assert result.loc[("english_anchored", "de", "")].difference == 0.0


def test_calibrated_scores_remove_the_option_prior():
    scores = pd.DataFrame(
        {
            "fact_id": ["f1"],
            "language": ["en"],
            "answer_index": [1],
            "scores": [(-1.0, -2.0)],
            "log_likelihood": [(-2.0, -4.0)],
            # option 0 is likely whatever is asked: after removing that, option 1 wins
            "neutral_log_likelihood": [(-0.5, -6.0)],
        }
    )
    out = calibrated_scores(scores)
    np.testing.assert_allclose(out.scores[0], (-1.5, 2.0))
    assert scores.scores[0] == (-1.0, -2.0)  # the input is left alone
    with pytest.raises(DataError, match="neutral_prompt"):
        calibrated_scores(scores.drop(columns="neutral_log_likelihood"))
