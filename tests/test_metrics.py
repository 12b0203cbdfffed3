"""Metrics on hand-built score tables: accuracy, total consistency, RankC, agreement, bootstrap."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd
import pytest

from interp.errors import DataError
from interp.evaluate import metrics as M


def row(fact_id, language, option_ids, scores, answer_index, relation="capital"):
    return {
        "fact_id": fact_id,
        "language": language,
        "relation": relation,
        "option_ids": tuple(option_ids),
        "scores": tuple(scores),
        "answer_index": answer_index,
    }


@pytest.fixture
def two_facts() -> pd.DataFrame:
    """2 facts x 2 languages x 4 options; the rankings are spelled out in the tests."""
    return pd.DataFrame(
        [
            # f1, en: A > B > C > D; answer A (index 0) -> correct, chooses A
            row("f1", "en", "ABCD", (4, 3, 2, 1), 0),
            # f1, de: B .9, D .5, C .3, A .1 -> B > D > C > A; answer A (index 1) -> wrong, chooses B
            row("f1", "de", "BADC", (0.9, 0.1, 0.5, 0.3), 1),
            # f2, en: D > C > B > A; answer D (index 3) -> correct
            row("f2", "en", "ABCD", (1, 2, 3, 4), 3),
            # f2, de: D 5, B 2, C 1, A 0 -> D > B > C > A; answer D (index 0) -> correct
            row("f2", "de", "DCBA", (5, 1, 2, 0), 0),
        ]
    )


def value(results, metric, language="all", other=""):
    hit = results[
        (results.metric == metric) & (results.language == language) & (results.other == other)
    ]
    assert len(hit) == 1, (metric, language, other)
    return hit.iloc[0]


def test_accuracy_consistency_agreement_by_hand(two_facts):
    results = M.evaluate(two_facts, n_boot=0)
    assert value(results, "accuracy", "en").value == 1.0
    assert value(results, "accuracy", "de").value == 0.5
    assert value(results, "accuracy", "de").n == 2
    # both languages are trained high-resource: group mean = (1 + 0.5) / 2
    assert value(results, "group_accuracy", "trained-high").value == 0.75
    assert value(results, "group_accuracy", "all").value == 0.75
    # f2 is correct in both, f1 only in en
    assert value(results, "total_consistency").value == 0.5
    # chosen entities: f1 A vs B (differ), f2 D vs D (agree)
    assert value(results, "agreement", "en", "de").value == 0.5
    assert value(results, "agreement_mean").value == 0.5


def test_rankc_by_hand(two_facts):
    z = math.exp(3) + math.exp(2) + math.exp(1) + math.exp(0)
    w = [math.exp(3) / z, math.exp(2) / z, math.exp(1) / z, 1 / z]
    # f1: en A>B>C>D, de B>D>C>A: |top1|=0, |top2 {A,B}&{B,D}|=1, |top3|=2 ({B,C}), |top4|=4
    f1 = w[0] * 0 / 1 + w[1] * 1 / 2 + w[2] * 2 / 3 + w[3] * 4 / 4
    # f2: en D>C>B>A, de D>B>C>A: top1 {D} 1, top2 {D,C}&{D,B} 1, top3 3, top4 4
    f2 = w[0] * 1 / 1 + w[1] * 1 / 2 + w[2] * 3 / 3 + w[3] * 4 / 4
    results = M.rankc(two_facts)
    assert value(results, "rankc", "en", "de").value == pytest.approx((f1 + f2) / 2, abs=1e-6)
    assert value(results, "rankc", "de", "en").value == pytest.approx((f1 + f2) / 2, abs=1e-6)
    assert value(results, "rankc_mean").value == pytest.approx((f1 + f2) / 2, abs=1e-6)
    matrix = M.pair_matrix(results, "rankc")
    assert list(matrix.index) == ["en", "de"]
    np.testing.assert_allclose(np.diag(matrix.to_numpy()), 1.0, atol=1e-6)


def test_rankc_weights_match_definition():
    n = 5
    expected = [math.exp(n - j) for j in range(1, n + 1)]
    expected = [e / sum(expected) for e in expected]
    np.testing.assert_allclose(M.rankc_weights(n), expected)


def slow_rankc(table, lang_a, lang_b):
    """RankC from the definition, with Python sets over entity ids."""
    n = len(table.iloc[0].scores)
    weights = [math.exp(n - j) for j in range(1, n + 1)]
    weights = [x / sum(weights) for x in weights]
    values = []
    for _, fact in table.groupby("fact_id"):
        by_lang = {r.language: r for r in fact.itertuples()}
        if lang_a not in by_lang or lang_b not in by_lang:
            continue
        ranked = {}
        for lang in (lang_a, lang_b):
            r = by_lang[lang]
            order = sorted(range(n), key=lambda i, r=r: -r.scores[i])
            ranked[lang] = [r.option_ids[i] for i in order]
        total = 0.0
        for j in range(1, n + 1):
            common = set(ranked[lang_a][:j]) & set(ranked[lang_b][:j])
            total += weights[j - 1] * len(common) / j
        values.append(total)
    return sum(values) / len(values)


def random_table(n_facts, languages, *, seed, p_correct=None, drop=0.0):
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(n_facts):
        entities = [f"Q{f}_{k}" for k in range(4)]
        for lang in languages:
            if drop and lang != languages[0] and rng.random() < drop:
                continue
            ids = list(rng.permutation(entities))
            scores = rng.normal(size=4)
            answer = ids.index(entities[0])
            if p_correct is not None:  # plant the outcome: correct with probability p
                top = answer if rng.random() < p_correct else (answer + 1) % 4
                scores[top] = scores.max() + 1.0
            rows.append(row(f"f{f}", lang, ids, scores, answer))
    return pd.DataFrame(rows)


def test_rankc_matches_set_implementation_on_random_data():
    table = random_table(30, ["en", "ru", "zh"], seed=1, drop=0.2)
    results = M.rankc(table)
    for a, b in product(["en", "ru", "zh"], repeat=2):
        assert value(results, "rankc", a, b).value == pytest.approx(
            slow_rankc(table, a, b), abs=1e-6
        )
    off = [slow_rankc(table, a, b) for a, b in product(["en", "ru", "zh"], repeat=2) if a != b]
    assert value(results, "rankc_mean").value == pytest.approx(np.mean(off), abs=1e-6)


def test_total_consistency_counts_only_facts_present_in_all_languages():
    table = random_table(50, ["en", "de", "sw"], seed=2, drop=0.3)
    results = M.total_consistency(table)
    wide = table.assign(
        ok=[np.argmax(s) == a for s, a in zip(table.scores, table.answer_index, strict=True)]
    )
    wide = wide.pivot(index="fact_id", columns="language", values="ok")
    complete = wide.dropna()
    expected = complete.astype(bool).all(axis=1).mean()
    got = value(results, "total_consistency")
    assert got.n == len(complete) < 50
    assert got.value == pytest.approx(expected)


def test_group_accuracy_is_mean_of_language_accuracies():
    table = random_table(40, ["en", "de", "sw", "bn", "ko"], seed=3, p_correct=0.6)
    results = M.evaluate(table, metrics=("accuracy", "group_accuracy"), n_boot=0)
    acc = {lang: value(results, "accuracy", lang).value for lang in ["en", "de", "sw", "bn", "ko"]}
    for lang, v in acc.items():
        part = table[table.language == lang]
        assert v == pytest.approx(
            np.mean(
                [np.argmax(s) == a for s, a in zip(part.scores, part.answer_index, strict=True)]
            )
        )
    assert value(results, "group_accuracy", "trained-high").value == pytest.approx(
        (acc["en"] + acc["de"]) / 2
    )
    assert value(results, "group_accuracy", "trained-low").value == pytest.approx(
        (acc["sw"] + acc["bn"]) / 2
    )
    assert value(results, "group_accuracy", "unseen").value == pytest.approx(acc["ko"])
    assert value(results, "group_accuracy", "all").value == pytest.approx(
        np.mean(list(acc.values()))
    )


def test_accuracy_by_relation(two_facts):
    table = two_facts.assign(relation=["capital", "capital", "currency", "currency"])
    results = M.accuracy(table, by="relation")
    de = results[results.language == "de"].set_index("relation").value
    assert de["capital"] == 0.0 and de["currency"] == 1.0


def test_bootstrap_contains_estimate_and_narrows_with_more_facts():
    widths = {}
    for n_facts in (40, 640):
        table = random_table(n_facts, ["en", "de"], seed=4, p_correct=0.6)
        results = M.evaluate(table, n_boot=400, seed=0)
        for r in results[results.metric != "rankc"].itertuples():
            if r.other == r.language:  # diagonal: constant 1
                continue
            assert r.ci_low <= r.value <= r.ci_high, r
        en = value(results, "accuracy", "en")
        widths[n_facts] = en.ci_high - en.ci_low
        # binomial standard error as an independent yardstick for the interval width
        se = math.sqrt(en.value * (1 - en.value) / n_facts)
        assert widths[n_facts] == pytest.approx(2 * 1.96 * se, rel=0.3)
    assert widths[640] < widths[40] / 2.5


def test_bootstrap_is_seeded_and_shares_resamples_across_languages():
    table = random_table(60, ["en"], seed=5, p_correct=0.5)
    copy = table.assign(language="fr")  # French answers exactly like English, fact by fact
    both = pd.concat([table, copy], ignore_index=True)
    a = M.evaluate(both, n_boot=300, seed=7)
    b = M.evaluate(both, n_boot=300, seed=7)
    c = M.evaluate(both, n_boot=300, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.ci_low, c.ci_low)
    en, fr = value(a, "accuracy", "en"), value(a, "accuracy", "fr")
    # the same resample of facts for both languages gives identical intervals
    assert (en.ci_low, en.ci_high) == (fr.ci_low, fr.ci_high)


def test_paired_bootstrap_difference():
    base = random_table(80, ["en", "de"], seed=6, p_correct=0.5)
    improved = base.copy()
    # fix exactly one wrong German answer: B gains 1/80 in de and can never lose in a resample
    wrong = [
        i
        for i, r in improved.iterrows()
        if r.language == "de" and np.argmax(r.scores) != r.answer_index
    ][0]
    scores = list(improved.at[wrong, "scores"])
    scores[improved.at[wrong, "answer_index"]] = max(scores) + 1
    improved.at[wrong, "scores"] = tuple(scores)
    result = M.paired_bootstrap(base, improved, metrics=("accuracy",), n_boot=300, seed=0)
    de = value(result, "accuracy", "de")
    assert de.difference == pytest.approx(1 / 80)
    assert de.value_b - de.value_a == pytest.approx(de.difference)
    # the resampled difference is k/80 with k ~ Binomial(80, 1/80) copies of that fact: never < 0
    assert de.ci_low == 0
    assert 1 / 80 < de.ci_high < 5 / 80
    en = value(result, "accuracy", "en")
    assert en.difference == 0 and en.ci_low == 0 and en.ci_high == 0 and en.p_value == 1.0
    same = M.paired_bootstrap(base, base, n_boot=50, seed=0)
    assert np.allclose(same.difference, 0) and np.allclose(same[["ci_low", "ci_high"]], 0)


def test_paired_bootstrap_rejects_different_items(two_facts):
    other = two_facts.copy()
    other.loc[0, "answer_index"] = 2
    with pytest.raises(DataError, match="answer_index"):
        M.paired_bootstrap(two_facts, other, metrics=("accuracy",), n_boot=10)


def test_missing_language_is_named(two_facts):
    with pytest.raises(DataError, match=r"'sw'.*languages present: en, de"):
        M.evaluate(two_facts, ["en", "sw"], n_boot=0)


def test_wrong_score_length_is_refused(two_facts):
    bad = two_facts.copy()
    bad.at[1, "scores"] = (0.1, 0.2, 0.3)
    with pytest.raises(DataError, match="wrong length.*'f1'.*'de'"):
        M.evaluate(bad, n_boot=0)


def test_bad_inputs_are_refused(two_facts):
    with pytest.raises(DataError, match="repeat"):
        M.evaluate(pd.concat([two_facts, two_facts.iloc[:1]]), n_boot=0)
    with pytest.raises(DataError, match="option_ids"):
        M.rankc(two_facts.drop(columns="option_ids"))
    # accuracy does not need entities
    assert value(M.accuracy(two_facts.drop(columns="option_ids")), "accuracy", "de").value == 0.5
    bad = two_facts.copy()
    bad.at[1, "option_ids"] = tuple("BAXC")
    with pytest.raises(DataError, match="different option entities"):
        M.rankc(bad)
    bad = two_facts.copy()
    bad.at[1, "answer_index"] = 0  # entity B in German, A in English
    with pytest.raises(DataError, match="correct entity"):
        M.rankc(bad)
    bad = two_facts.copy()
    bad.at[0, "answer_index"] = 4
    with pytest.raises(DataError, match="answer_index"):
        M.evaluate(bad, n_boot=0)
    with pytest.raises(DataError, match="unknown metric"):
        M.evaluate(two_facts, metrics=("bleu",))


def test_bootstrap_interval_matches_scipy():
    """The facts bootstrap of one language's accuracy against scipy.stats.bootstrap (percentile
    method) on the same 0/1 outcomes: the same interval up to resampling noise."""
    from scipy.stats import bootstrap

    table = random_table(300, ["en"], seed=11, p_correct=0.55)
    results = M.evaluate(table, n_boot=4000, seed=0)
    ours = value(results, "accuracy", "en")
    correct = np.array(
        [int(np.argmax(s)) == a for s, a in zip(table.scores, table.answer_index, strict=True)],
        dtype=float,
    )
    theirs = bootstrap(
        (correct,), np.mean, n_resamples=4000, method="percentile", random_state=1
    ).confidence_interval
    assert ours.value == pytest.approx(correct.mean())
    assert ours.ci_low == pytest.approx(theirs.low, abs=0.008)
    assert ours.ci_high == pytest.approx(theirs.high, abs=0.008)
