"""LAPE variants, the absolute rule, bootstrap, permutation null and KS distance.

The small tensor below is worked out by hand (3 languages x 2 layers x 4 neurons); the
planted data set has chosen neurons that fire for one language only.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import ks_2samp

from interp.errors import ConfigError, DataError
from interp.specialization import (
    NeuronCounts,
    NeuronSelection,
    SequenceCounts,
    bootstrap,
    ks_distance,
    ks_table,
    lape_entropy,
    make_scorer,
    permutation_null,
    score,
    scorer_names,
)
from interp.specialization import stats as stats_module

LANGS = ("en", "de", "sw")
TOKENS = np.array([100.0, 200.0, 50.0])
# counts[l, layer, neuron]; rates p = counts / TOKENS[l] are noted per neuron
COUNTS = np.array(
    [
        # en (100 tokens)
        [[10, 10, 0, 0], [30, 0, 50, 20]],
        # de (200 tokens)
        [[0, 20, 0, 40], [20, 0, 100, 20]],
        # sw (50 tokens)
        [[0, 5, 0, 5], [0, 5, 25, 10]],
    ],
    dtype=float,
)
# layer 0: n0 p=(.1, 0, 0)   H=0, en only
#          n1 p=(.1, .1, .1) H=log 3 (raw counts differ; rates are equal)
#          n2 dead           excluded
#          n3 p=(0, .2, .1)  q=(0, 2/3, 1/3)
# layer 1: n0 p=(.3, .1, 0)  q=(.75, .25, 0)
#          n1 p=(0, 0, .1)   H=0, sw only
#          n2 p=(.5, .5, .5) H=log 3
#          n3 p=(.2, .1, .2) q=(.4, .2, .4)
H_L1N0 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))  # 0.562
H_L0N3 = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))  # 0.637


def hand_counts(counts=COUNTS) -> NeuronCounts:
    return NeuronCounts(counts, TOKENS, LANGS)


def triples(selection: NeuronSelection) -> set[tuple[str, int, int]]:
    return set(selection.table[["language", "layer", "neuron"]].itertuples(index=False, name=None))


# --- the paper variant ---------------------------------------------------------------------


def test_paper_variant_by_hand():
    # budget int(8 * 0.25) = 2: the two zero-entropy neurons
    assert triples(score(hand_counts(), "lape-paper", top_frac=0.25)) == {
        ("en", 0, 0),
        ("sw", 1, 1),
    }
    # budget 3 adds the next lowest entropy, layer 1 neuron 0 (0.562), to argmax p = en
    assert triples(score(hand_counts(), "lape-paper", top_frac=0.375)) == {
        ("en", 0, 0),
        ("sw", 1, 1),
        ("en", 1, 0),
    }
    # budget 4 adds layer 0 neuron 3 (0.637) to de; the dead neuron never enters
    sel = score(hand_counts(), "lape-paper", top_frac=0.5)
    assert triples(sel) == {("en", 0, 0), ("sw", 1, 1), ("en", 1, 0), ("de", 0, 3)}
    row = sel.table.set_index(["layer", "neuron"])
    assert row.loc[(1, 0), "entropy"] == pytest.approx(H_L1N0)
    assert row.loc[(0, 3), "entropy"] == pytest.approx(H_L0N3)
    assert row.loc[(0, 3), "p"] == pytest.approx(0.2)
    assert row.loc[(0, 0), "entropy"] == 0


def test_dead_neuron_never_selected_even_with_a_full_budget():
    sel = score(hand_counts(), "lape-paper", top_frac=1.0)
    assert len(sel) == 7  # 8 neurons, one dead
    assert (0, 2) not in {(r.layer, r.neuron) for r in sel.table.itertuples()}


def test_summaries_by_hand():
    sel = score(hand_counts(), "lape-paper", top_frac=0.5)
    assert sel.per_language()["count"].tolist() == [2, 1, 1]  # en, de, sw
    per_layer = sel.per_layer().set_index(["language", "layer"])["count"]
    assert per_layer.to_dict() == {
        ("en", 0): 1,
        ("en", 1): 1,
        ("de", 0): 1,
        ("de", 1): 0,
        ("sw", 0): 0,
        ("sw", 1): 1,
    }
    cumulative = sel.cumulative().set_index(["language", "layer"])
    assert cumulative.loc[("all", 0), "cumulative"] == 2
    assert cumulative.loc[("all", 1), "cumulative"] == 4
    assert cumulative.loc[("all", 0), "share"] == 0.5
    assert cumulative.loc[("sw", 0), "share"] == 0
    assert sel.sets() == {"en": {(0, 0), (1, 0)}, "de": {(0, 3)}, "sw": {(1, 1)}}
    mask = sel.mask()
    assert mask.shape == (3, 2, 4) and mask.sum() == 4 and mask[2, 1, 1]


# --- Tang et al. ---------------------------------------------------------------------------


def test_tang_threshold_by_hand():
    # the 24 rates sorted: 9 zeros, 8 x .1, 3 x .2, .3, 3 x .5
    rates = hand_counts().rates()
    # order statistic k = round(.85 * 24) = 20 -> .2 ; linear: position .85 * 23 = 19.55
    # between the 20th (.2) and 21st (.3) values -> .2 + .55 * .1 = .255
    assert make_scorer("lape-tang", quantile=0.85).threshold(rates) == pytest.approx(0.2)
    linear = make_scorer("lape-tang", quantile=0.85, quantile_method="linear")
    assert linear.threshold(rates) == pytest.approx(0.255)
    assert make_scorer("lape-tang").threshold(rates) == pytest.approx(0.5)  # k = round(22.8)


def test_tang_variant_by_hand():
    # tau = .2 (k = round(.75 * 24) = 18). Only layer 1 neurons 0 (.3) and 2 (.5 x 3) exceed
    # it; the zero-entropy neurons (p = .1) get +inf and are skipped.
    sel = score(hand_counts(), "lape-tang", top_frac=0.25, quantile=0.75)
    assert triples(sel) == {("en", 1, 0), ("en", 1, 2), ("de", 1, 2), ("sw", 1, 2)}
    # budget 1: the lower entropy of the two (0.562 < log 3)
    sel = score(hand_counts(), "lape-tang", top_frac=0.125, quantile=0.75)
    assert triples(sel) == {("en", 1, 0)}
    # the default 95% quantile is .5 here and no rate exceeds it: nothing is specific
    assert len(score(hand_counts(), "lape-tang", top_frac=0.5)) == 0


# --- the absolute rule ---------------------------------------------------------------------


def test_absolute_rule_by_hand():
    # default: normalized entropy <= .5, i.e. H <= .5 * log 3 = .549 -> the two H = 0 neurons
    assert triples(score(hand_counts(), "absolute")) == {("en", 0, 0), ("sw", 1, 1)}
    # H <= .6 * log 3 = .659 admits layer 1 n0 (.562) and layer 0 n3 (.637), for every
    # language holding >= 10% of the firing mass
    wide = score(hand_counts(), "absolute", max_entropy=0.6)
    assert triples(wide) == {
        ("en", 0, 0),
        ("sw", 1, 1),
        ("en", 1, 0),
        ("de", 1, 0),
        ("de", 0, 3),
        ("sw", 0, 3),
    }
    # ratio 2: p must be twice the best other language -> one language per neuron
    assert triples(score(hand_counts(), "absolute", max_entropy=0.6, ratio=2.0)) == {
        ("en", 0, 0),
        ("sw", 1, 1),
        ("en", 1, 0),
        ("de", 0, 3),
    }
    # a minimum rate of .15 drops the neurons firing on 10% of tokens
    assert triples(score(hand_counts(), "absolute", max_entropy=0.6, min_rate=0.15)) == {
        ("en", 1, 0),
        ("de", 0, 3),
    }


def test_absolute_rule_can_fall_where_the_budget_cannot():
    shared = COUNTS.copy()
    shared[:, 1, 1] = [10, 20, 5]  # the sw-only neuron now fires at .1 everywhere
    before, after = hand_counts(), hand_counts(shared)
    assert len(score(before, "absolute")) == 2
    assert len(score(after, "absolute")) == 1
    assert len(score(before, "lape-paper", top_frac=0.25)) == 2
    assert len(score(after, "lape-paper", top_frac=0.25)) == 2  # the budget is refilled


# --- registry and bad input ----------------------------------------------------------------


def test_registry_lists_the_three_rules():
    assert {"lape-paper", "lape-tang", "absolute"} <= set(scorer_names())
    with pytest.raises(ConfigError, match="lape-paper"):
        make_scorer("lape")
    with pytest.raises(ConfigError, match="top_frac"):
        make_scorer("lape-paper", quantile=0.9)
    with pytest.raises(ConfigError):
        make_scorer("lape-paper", top_frac=0)


def test_nan_counts_are_refused_with_their_place():
    bad = COUNTS.copy()
    bad[1, 1, 2] = np.nan
    with pytest.raises(DataError, match=r"language de, layer 1, neuron 2"):
        hand_counts(bad)


def test_zero_tokens_names_the_language():
    with pytest.raises(DataError, match=r"\bsw\b"):
        NeuronCounts(np.zeros((3, 2, 4)), np.array([100.0, 200.0, 0.0]), LANGS)


def test_mismatched_shapes_are_refused():
    with pytest.raises(DataError, match="shapes disagree"):
        NeuronCounts(COUNTS, TOKENS[:2], LANGS)
    with pytest.raises(DataError, match="shapes disagree"):
        NeuronCounts(COUNTS, TOKENS, LANGS[:2])
    with pytest.raises(DataError, match=r"\[languages, layers, neurons\]"):
        NeuronCounts(COUNTS[0], TOKENS, LANGS)
    with pytest.raises(DataError, match="more tokens than were seen"):
        NeuronCounts(COUNTS * 10, TOKENS, LANGS)


def test_importing_does_not_load_torch_or_pandas_early():
    code = (
        "import sys, interp.specialization as s; assert 'pandas' not in sys.modules;"
        "import interp.specialization.stats, interp.specialization.heads,"
        " interp.specialization.reference; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- a planted ground truth ----------------------------------------------------------------

PLANTED = {("en", 0, 3), ("en", 1, 7), ("de", 0, 11), ("de", 1, 20), ("sw", 0, 30), ("sw", 1, 35)}
N_LAYERS, N_NEURONS, N_SEQ, SEQ_LEN = 2, 40, 40, 50


def planted_sequences(seed: int = 0) -> SequenceCounts:
    """Background neurons fire at one rate (.2-.4) in every language; planted ones at .6 in
    their language and never elsewhere."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.4, size=(N_LAYERS, N_NEURONS))
    labels = np.repeat(np.arange(len(LANGS)), N_SEQ)
    rate = np.broadcast_to(base, (labels.size, N_LAYERS, N_NEURONS)).copy()
    for lang, layer, neuron in PLANTED:
        rate[:, layer, neuron] = np.where(labels == LANGS.index(lang), 0.6, 0.0)
    counts = rng.binomial(SEQ_LEN, rate)
    return SequenceCounts(counts, np.asarray(LANGS)[labels], np.full(labels.size, SEQ_LEN), LANGS)


BUDGET = {"top_frac": 6 / (N_LAYERS * N_NEURONS)}  # exactly the six planted neurons


def test_planted_neurons_recovered_exactly():
    totals = planted_sequences().totals()
    assert triples(score(totals, "lape-paper", **BUDGET)) == PLANTED
    assert triples(score(totals, "lape-tang", **BUDGET)) == PLANTED
    assert triples(score(totals, "absolute")) == PLANTED


def test_bootstrap_intervals_cover_the_planted_truth():
    seqs = planted_sequences()
    for name, params in (("lape-paper", BUDGET), ("absolute", {})):
        result = bootstrap(seqs, name, n_boot=200, seed=1, **params)
        per_language = result.per_language.set_index("language")
        for lang in LANGS:
            assert per_language.loc[lang, "lo"] <= 2 <= per_language.loc[lang, "hi"]
        per_layer = result.per_layer.set_index(["language", "layer"])
        for lang in LANGS:
            for layer in range(N_LAYERS):
                assert per_layer.loc[(lang, layer), "lo"] <= 1 <= per_layer.loc[(lang, layer), "hi"]
        assert (result.stability["stability"] > 0.95).all()


def borderline_rule(seqs: SequenceCounts) -> dict[str, float]:
    """An absolute rule that admits the 20% least uniform background neurons, so that the
    counts vary between replicates."""
    normalized = lape_entropy(seqs.totals().rates()) / math.log(len(LANGS))
    return {"max_entropy": float(np.quantile(normalized, 0.2)), "min_share": 0.3}


def test_bootstrap_matches_a_loop_over_explicit_resamples(monkeypatch):
    # small chunks so the vectorised path is split across several chunks
    monkeypatch.setattr(stats_module, "_CHUNK_VALUES", 3 * 2 * 40 * 7)
    seqs = planted_sequences(seed=3)
    params = borderline_rule(seqs)
    n_boot, seed = 25, 7
    result = bootstrap(seqs, "absolute", n_boot=n_boot, seed=seed, **params)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(seqs.language == i) for i in range(len(LANGS))]
    draws = [rng.integers(0, m.size, size=(n_boot, m.size)) for m in members]
    expected = []
    for b in range(n_boot):
        counts = np.stack(
            [seqs.counts[m[d[b]]].sum(axis=0) for m, d in zip(members, draws, strict=True)]
        )
        tokens = np.array([seqs.tokens[m[d[b]]].sum() for m, d in zip(members, draws, strict=True)])
        sel = score(NeuronCounts(counts, tokens, LANGS), "absolute", **params)
        expected.append(sel.per_language()["count"].to_numpy())
    expected = np.array(expected)
    assert expected.std(axis=0).max() > 0  # the check is not vacuous
    np.testing.assert_array_equal(result.samples.sum(axis=2), expected)
    lo, hi = np.percentile(expected, [2.5, 97.5], axis=0)
    frame = result.per_language.set_index("language")
    np.testing.assert_allclose(frame.loc[list(LANGS), "lo"], lo)
    np.testing.assert_allclose(frame.loc[list(LANGS), "hi"], hi)


def test_bootstrap_is_seedable():
    seqs = planted_sequences(seed=3)
    params = borderline_rule(seqs)
    a = bootstrap(seqs, "absolute", n_boot=20, seed=5, **params)
    b = bootstrap(seqs, "absolute", n_boot=20, seed=5, **params)
    c = bootstrap(seqs, "absolute", n_boot=20, seed=6, **params)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_permutation_null_puts_planted_neurons_near_zero():
    seqs = planted_sequences()
    n_perm = 200
    absolute = permutation_null(seqs, "absolute", n_perm=n_perm, seed=2)
    frame = absolute.per_language.set_index("language")
    assert (frame["observed"] == 2).all()
    assert (frame["null_mean"] < 0.1).all()
    assert (frame["null_hi"] == 0).all()
    np.testing.assert_allclose(frame["p_value"], 1 / (n_perm + 1))
    # A fixed budget fills its 6 slots under the null too, so per-language counts are not
    # distinguishable from chance. The shuffled planted neurons are bursty (all their firing
    # sits in 40 sequences), so chance still gives them the lowest entropies, but their
    # language is then random: about 1/3 each instead of 1 for the true language.
    paper = permutation_null(seqs, "lape-paper", n_perm=n_perm, seed=2, **BUDGET)
    assert paper.per_language["null_mean"].sum() == pytest.approx(6)
    assert (paper.per_language["p_value"] > 0.2).all()
    for lang, layer, neuron in PLANTED:
        assert paper.frequency[LANGS.index(lang), layer, neuron] < 0.45


def test_subset_of_neurons_with_full_counts():
    seqs = planted_sequences()
    full = seqs.totals()
    keep = np.array([3, 7, 11, 20, 30, 35, 0, 1])
    subset = SequenceCounts(
        seqs.counts[:, :, keep], seqs.language, seqs.tokens, LANGS, neuron_index=keep
    )
    with_full = bootstrap(subset, "lape-paper", n_boot=30, seed=0, full=full, **BUDGET)
    assert triples(with_full.observed) == triples(score(full, "lape-paper", **BUDGET))
    # without full counts the absolute rule needs none: neuron ids are the real ones
    alone = bootstrap(subset, "absolute", n_boot=30, seed=0)
    assert triples(alone.observed) == PLANTED
    assert (alone.stability["stability"] > 0.95).all()


def test_sequence_counts_refuse_a_language_without_sequences():
    seqs = planted_sequences()
    keep = seqs.language != LANGS.index("de")
    with pytest.raises(DataError, match=r"no sequences for language\(s\) de"):
        SequenceCounts(seqs.counts[keep], seqs.language[keep], seqs.tokens[keep], LANGS)
    with pytest.raises(DataError, match="shapes disagree"):
        SequenceCounts(seqs.counts, seqs.language[:-1], seqs.tokens, LANGS)


# --- KS distance ---------------------------------------------------------------------------


def test_ks_distance_equals_scipy_ks_2samp():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = NeuronSelection.from_mask(rng.random((3, 12, 30)) < 0.05, None, LANGS, scorer="x")
        b = NeuronSelection.from_mask(
            rng.random((3, 12, 30)) < np.linspace(0.01, 0.1, 12)[None, :, None],
            None,
            LANGS,
            scorer="x",
        )
        expected = ks_2samp(a.table["layer"], b.table["layer"]).statistic
        assert ks_distance(a, b) == pytest.approx(expected)
        en = ks_2samp(
            a.table.query("language == 'en'")["layer"], b.table.query("language == 'en'")["layer"]
        ).statistic
        assert ks_distance(a, b, language="en") == pytest.approx(en)
    table = ks_table({"a": a, "b": b}, baseline="a").set_index("language")
    assert table.loc["all", "ks"] == pytest.approx(ks_distance(a, b))


def test_ks_distance_refuses_an_empty_selection():
    empty = NeuronSelection.from_mask(np.zeros((3, 2, 4), bool), None, LANGS, scorer="x")
    full = score(hand_counts(), "lape-paper", top_frac=0.5)
    with pytest.raises(DataError, match="no neurons"):
        ks_distance(empty, full)


def test_specialization_index_by_hand_and_under_resampling():
    from interp.specialization.stats import SequenceCounts, specialization_index

    # 2 languages x 3 sequences of 100 tokens, one layer of 3 neurons:
    # neuron 0 fires only in en, neuron 1 equally in both, neuron 2 never (not active)
    language = np.array([0, 0, 0, 1, 1, 1])
    counts = np.zeros((6, 1, 3))
    counts[:3, 0, 0] = 30
    counts[:, 0, 1] = 20
    seqs = SequenceCounts(counts, language, np.full(6, 100.0), ("en", "de"))
    index = specialization_index(seqs, n_boot=0)
    # normalised entropies: neuron 0 -> 0, neuron 1 -> 1; mean over the 2 active = 0.5
    assert index.value == pytest.approx(0.5) and index.active == 2
    assert math.isnan(index.lo)
    # with noise between sequences the interval is not degenerate and covers the value
    rng = np.random.default_rng(0)
    noisy = counts + rng.integers(0, 8, size=counts.shape)
    result = specialization_index(
        SequenceCounts(noisy, language, np.full(6, 100.0), ("en", "de")), n_boot=200, seed=1
    )
    assert result.lo < result.value < result.hi and result.hi - result.lo > 0.005
    # a neuron made language-specific raises the index
    sharper = noisy.copy()
    sharper[3:, 0, 1] = 0
    more = specialization_index(
        SequenceCounts(sharper, language, np.full(6, 100.0), ("en", "de")), n_boot=0
    )
    assert more.value > result.value
