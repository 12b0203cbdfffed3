"""Per-neuron language tests, BH, the null-fdr scorer, calibrated thresholds and the budget null.

Ground truth is planted in per-sequence counts drawn in numpy: background neurons fire at a
common rate in every language, with beta-binomial spread between sequences (overdispersed:
tokens of a sequence are not independent) and a per-sequence activity level shared by all
neurons; planted neurons fire in their language(s) only. "No signal" data are one such pool
split into languages at random. scipy is the independent reference throughout.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from interp.errors import ConfigError, DataError
from interp.specialization.lape import Absolute, make_scorer, score
from interp.specialization.nulltest import (
    LayerStream,
    NullFdr,
    benjamini_hochberg,
    budget_null,
    calibrate_absolute,
    calibrated_absolute,
    f_sf,
    language_tests,
    t_sf,
)
from interp.specialization.stats import SequenceCounts

LANGS = ("en", "de", "ja", "ru")
PER_LANGUAGE, LAYERS, UNITS = 60, 3, 400
# (layer, unit, {language: mean rate}), 0 elsewhere unless given
PLANTED = [
    (0, 3, {"ja": 0.2}),
    (0, 17, {"ja": 0.1}),
    (1, 5, {"ja": 0.3}),
    (1, 40, {"de": 0.15}),
    (0, 8, {"de": 0.05}),
    (2, 100, {"ru": 0.25}),
    (2, 7, {"en": 0.1}),
    (1, 200, {"ja": 0.2, "ru": 0.2}),  # a two-language (script) neuron: both languages
    (2, 300, {"ja": 0.3, "en": 0.02, "de": 0.02, "ru": 0.02}),  # specific, not exclusive
]
TRUTH = {
    ("ja", 0, 3),
    ("ja", 0, 17),
    ("ja", 1, 5),
    ("de", 1, 40),
    ("de", 0, 8),
    ("ru", 2, 100),
    ("en", 2, 7),
    ("ja", 1, 200),
    ("ru", 1, 200),
    ("ja", 2, 300),
}
DEAD = (0, 0)


def _beta_binomial(rng, tokens, mean, rho):
    """Counts with per-sequence rates ~ Beta(mean, overdispersion rho); rate 0 where mean 0."""
    mean = np.broadcast_to(mean, np.broadcast_shapes(np.shape(mean), np.shape(tokens)))
    rate = np.zeros(mean.shape)
    on = mean > 0
    rate[on] = rng.beta(mean[on] * (1 - rho) / rho, (1 - mean[on]) * (1 - rho) / rho)
    return rng.binomial(np.broadcast_to(tokens, mean.shape), rate).astype(np.float64)


def _background(rng, n_seq, *, rho=0.05, lo=0.02, hi=0.5):
    tokens = rng.integers(64, 257, size=n_seq)
    base = np.exp(rng.uniform(np.log(lo), np.log(hi), size=(LAYERS, UNITS)))
    gain = rng.gamma(20.0, 1 / 20.0, size=(n_seq, 1, 1))  # per-sequence activity level
    mean = np.clip(base[None] * gain, 1e-4, 0.95)
    return _beta_binomial(rng, tokens[:, None, None], mean, rho), tokens


def planted(seed=0):
    rng = np.random.default_rng(seed)
    language = np.repeat(np.arange(len(LANGS)), PER_LANGUAGE)
    counts, tokens = _background(rng, language.size)
    for layer, unit, rates in PLANTED:
        mean = np.array([rates.get(code, 0.0) for code in LANGS])[language]
        counts[:, layer, unit] = _beta_binomial(rng, tokens, mean, 0.05)
    counts[:, DEAD[0], DEAD[1]] = 0.0
    return SequenceCounts(counts, language, tokens, LANGS)


def no_signal(seed, **kw):
    rng = np.random.default_rng(seed)
    counts, tokens = _background(rng, len(LANGS) * PER_LANGUAGE, **kw)
    language = rng.permutation(np.repeat(np.arange(len(LANGS)), PER_LANGUAGE))
    return SequenceCounts(counts, language, tokens, LANGS)


def triples(mask):
    return {(LANGS[a], int(b), int(c)) for a, b, c in zip(*np.nonzero(mask), strict=True)}


@pytest.fixture(scope="module")
def planted_seqs():
    return planted()


@pytest.fixture(scope="module")
def null_seqs():
    return [no_signal(100 + seed) for seed in range(10)]


# --- distributions and BH ----------------------------------------------------------------------


@pytest.mark.parametrize("d1,d2", [(1, 5), (3, 236), (11, 23988), (2, 10**6), (7, 3.5)])
def test_f_survival_matches_scipy(d1, d2):
    rng = np.random.default_rng(d1)
    f = np.concatenate([stats.f.rvs(d1, d2, size=2000, random_state=rng), [0, 1e-9, 50, 1e4]])
    ref = stats.f.sf(f, d1, d2)
    ours = f_sf(f, d1, d2)
    finite = ref > 1e-290
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-8, atol=0)
    assert f_sf(np.array([np.inf]), d1, d2)[0] == 0.0


@pytest.mark.parametrize("df", [1, 4.5, 59, 2000])
def test_t_survival_matches_scipy(df):
    t = np.concatenate([np.linspace(-30, 30, 601), [-1e6, 1e6, 0.0]])
    np.testing.assert_allclose(t_sf(t, df), stats.t.sf(t, df), rtol=1e-8, atol=1e-300)
    assert t_sf(np.array([np.inf, -np.inf]), df).tolist() == [0.0, 1.0]


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(0)
    p = np.round(rng.beta(0.3, 1.0, size=(6, 5, 7)), 2)  # rounded: many ties
    p[0, 0, :3] = 0.0
    p[1, 1, 1] = 1.0
    q = benjamini_hochberg(p)
    assert q.shape == p.shape and not np.isnan(q).any()
    np.testing.assert_allclose(
        q, stats.false_discovery_control(p, axis=None).reshape(p.shape), rtol=1e-12
    )
    for axis in (0, 1, 2):
        np.testing.assert_allclose(
            benjamini_hochberg(p, axis=axis),
            stats.false_discovery_control(p, axis=axis),
            rtol=1e-12,
        )
    flat = p.ravel()
    for value in np.unique(flat):  # tied p, tied q
        assert np.unique(q.ravel()[flat == value]).size == 1
    assert benjamini_hochberg(np.array([])).shape == (0,)
    with pytest.raises(DataError, match="NaN"):
        benjamini_hochberg(np.array([0.1, np.nan]))
    with pytest.raises(DataError):
        benjamini_hochberg(np.array([0.1, 1.5]))


# --- the tests against slow references ----------------------------------------------------------


def _equal_length(seed, n_lang=3, per_language=(12, 20, 15), units=25, tokens=100):
    rng = np.random.default_rng(seed)
    language = np.repeat(np.arange(n_lang), per_language)
    rate = rng.uniform(0.05, 0.4, size=(n_lang, units))
    rate[:, :5] = rate[0, :5]  # a few neurons with no language effect
    counts = _beta_binomial(rng, tokens, rate[language], 0.1)[:, None, :]
    return SequenceCounts(counts, language, np.full(language.size, tokens), LANGS[:n_lang])


def test_omnibus_is_one_way_anova_per_neuron():
    seqs = _equal_length(1)
    tests = language_tests(seqs)
    for unit in range(seqs.counts.shape[2]):
        groups = [seqs.counts[seqs.language == lang, 0, unit] for lang in range(3)]
        ref = stats.f_oneway(*groups)
        assert tests.f[0, unit] == pytest.approx(ref.statistic, rel=1e-9)
        assert tests.p[0, unit] == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)
    assert tests.df == (2, seqs.counts.shape[0] - 3)


def test_post_hoc_with_two_languages_is_welch():
    seqs = _equal_length(2, n_lang=2, per_language=(14, 25))
    tests = language_tests(seqs)
    for unit in range(seqs.counts.shape[2]):
        a = seqs.counts[seqs.language == 0, 0, unit]
        b = seqs.counts[seqs.language == 1, 0, unit]
        ref = stats.ttest_ind(a, b, equal_var=False)
        assert tests.t[0, 0, unit] == pytest.approx(ref.statistic, rel=1e-9)
        assert tests.t[1, 0, unit] == pytest.approx(-ref.statistic, rel=1e-9)
        df = min(a.size, b.size) - 1  # the conservative bound, not Satterthwaite's
        assert tests.p_above[0, 0, unit] == pytest.approx(stats.t.sf(ref.statistic, df), rel=1e-7)
        assert tests.p_two_sided[0, 0, unit] == pytest.approx(
            2 * stats.t.sf(abs(ref.statistic), df), rel=1e-7
        )
    assert tests.ratio[0] == pytest.approx(tests.rates[0] / tests.rates[1])


def test_post_hoc_against_a_per_neuron_loop():
    """Language vs the others pooled: the others' variance is stratified by language."""
    seqs = _equal_length(3, n_lang=4, per_language=(10, 18, 13, 21), units=12)
    tests = language_tests(seqs)
    n = seqs.tokens[0]
    for unit in range(12):
        groups = [seqs.counts[seqs.language == lang, 0, unit] / n for lang in range(4)]
        for lang in range(4):
            own = groups[lang]
            rest = [g for i, g in enumerate(groups) if i != lang]
            size = sum(g.size for g in rest)
            rest_mean = np.concatenate(rest).mean()
            var = own.var(ddof=1) / own.size + sum(
                (g.size / size) ** 2 * g.var(ddof=1) / g.size for g in rest
            )
            t = (own.mean() - rest_mean) / np.sqrt(var)
            df = min(own.size - 1, size - 3)
            assert tests.t[lang, 0, unit] == pytest.approx(t, rel=1e-9)
            assert tests.p_above[lang, 0, unit] == pytest.approx(stats.t.sf(t, df), rel=1e-7)
            assert tests.rest_rates[lang, 0, unit] == pytest.approx(rest_mean, rel=1e-12)


def _ratio_f(y, n, labels, n_lang):
    """The ratio-estimator F for one neuron, written out per group (sequences of any length)."""
    m = np.bincount(labels, minlength=n_lang)
    big_y = np.bincount(labels, weights=y, minlength=n_lang)
    big_n = np.bincount(labels, weights=n, minlength=n_lang)
    rate = big_y / big_n
    within = np.sum((y - rate[labels] * n) ** 2)
    weight = big_n**2 / m
    pbar = np.sum(weight * rate) / weight.sum()
    between = np.sum(weight * (rate - pbar) ** 2)
    return (between / (n_lang - 1)) / (within / (y.size - n_lang))


def test_variable_lengths_agree_with_a_permutation_test():
    """Sequences of 20-400 tokens: the F p-value is the label-permutation p within MC error."""
    rng = np.random.default_rng(4)
    n_lang, per, units, n_perm = 3, 40, 6, 3000
    language = np.repeat(np.arange(n_lang), per)
    tokens = rng.integers(20, 401, size=language.size)
    rate = np.full((n_lang, units), 0.1)
    rate[:, 3:] += np.array([[0.0], [0.006], [0.012]])  # growing effects: mid-range p
    rate[:, 5] += np.array([0.0, 0.01, 0.02])
    counts = _beta_binomial(rng, tokens[:, None], rate[language], 0.08)
    seqs = SequenceCounts(counts[:, None, :], language, tokens, LANGS[:n_lang])
    tests = language_tests(seqs)
    shuffles = [rng.permutation(language) for _ in range(n_perm)]
    for unit in range(units):
        y = counts[:, unit]
        observed = _ratio_f(y, tokens, language, n_lang)
        assert tests.f[0, unit] == pytest.approx(observed, rel=1e-9)
        null = np.array([_ratio_f(y, tokens, perm, n_lang) for perm in shuffles])
        p_perm = (1 + np.sum(null >= observed)) / (1 + n_perm)
        se = np.sqrt(p_perm * (1 - p_perm) / n_perm)
        assert abs(tests.p[0, unit] - p_perm) < 4 * se + 0.02, (unit, tests.p[0, unit], p_perm)


# --- planted ground truth ------------------------------------------------------------------------


def test_planted_neurons_are_found_exactly(planted_seqs):
    tests = language_tests(planted_seqs)
    for _code, layer, unit in TRUTH:
        assert tests.p[layer, unit] < 1e-3
    assert tests.p[DEAD] == 1.0 and (tests.p_above[:, DEAD[0], DEAD[1]] == 1.0).all()
    assert not np.isnan(tests.p).any() and not np.isnan(tests.p_above).any()
    mask = NullFdr().select_sequences(planted_seqs)
    assert mask.shape == (len(LANGS), LAYERS, UNITS)
    assert triples(mask) == TRUTH
    # the specific-not-exclusive neuron: ja fires 15x the others pooled
    assert tests.ratio[LANGS.index("ja"), 2, 300] > 10
    table = tests.table(mask)
    assert set(zip(table.language, table.layer, table.neuron, strict=True)) == TRUTH
    assert (table.q <= 0.05).all() and (table.ratio >= 2).all()
    selection = NullFdr().score(planted_seqs)
    assert {(a, b, c) for a, b, c, *_ in selection.table.itertuples(index=False)} == TRUTH


def test_planted_recovery_is_not_luck():
    for seed in range(1, 4):
        assert triples(NullFdr().select_sequences(planted(seed))) == TRUTH, seed


def test_null_fdr_is_a_registered_scorer_that_needs_sequences(planted_seqs):
    scorer = make_scorer("null-fdr", fdr=0.01, min_ratio=3.0)
    assert isinstance(scorer, NullFdr) and NullFdr.needs_sequences
    rates = planted_seqs.totals().rates()
    with pytest.raises(ConfigError, match="per-sequence counts"):
        scorer.select(rates)
    with pytest.raises(ConfigError):
        NullFdr(fdr=0)
    with pytest.raises(ConfigError):
        NullFdr(min_ratio=0.5)
    with pytest.raises(ConfigError, match="needs"):
        budget_null(planted_seqs, "null-fdr", n_perm=2)


# --- no language signal ---------------------------------------------------------------------------


def test_no_signal_selects_almost_nothing_and_p_values_are_uniform(null_seqs):
    p_values = []
    for seqs in null_seqs:
        tests = language_tests(seqs)
        mask = NullFdr().select_tests(tests)
        assert mask.any(axis=0).mean() <= 0.005
        p_values.append(tests.p.ravel())
    p = np.concatenate(p_values)  # 12,000 neurons
    assert 0.03 <= (p < 0.05).mean() <= 0.07
    assert 0.004 <= (p < 0.01).mean() <= 0.016
    assert 0.17 <= (p < 0.2).mean() <= 0.23
    assert 0.45 <= (p < 0.5).mean() <= 0.55


def test_a_token_level_test_would_be_anti_conservative(null_seqs):
    """Why sequences are the unit: Pearson's chi-square on token totals rejects far too often."""
    seqs = null_seqs[0]
    totals = seqs.totals()
    fires = totals.counts.reshape(len(LANGS), -1)
    table = np.stack([fires, totals.tokens[:, None] - fires])  # [fire/not, languages, units]
    p = np.array(
        [
            stats.chi2_contingency(table[:, :, u].T)[1]
            for u in range(table.shape[2])
            if fires[:, u].sum()
        ]
    )
    assert (p < 0.05).mean() > 0.3
    assert (language_tests(seqs).p < 0.05).mean() < 0.1


def test_significant_but_not_specific():
    """0.5 vs 0.4 with 40k tokens per language: p tiny, but a 1.25-fold change is not specific."""
    rng = np.random.default_rng(5)
    language = np.repeat(np.arange(3), 20)
    tokens = np.full(language.size, 2000)
    rate = np.array([0.5, 0.4, 0.4])[language]
    counts = _beta_binomial(rng, tokens[:, None], np.repeat(rate[:, None], 8, axis=1), 0.002)
    seqs = SequenceCounts(counts[:, None, :], language, tokens, LANGS[:3])
    tests = language_tests(seqs)
    assert (tests.p < 1e-10).all()
    assert (tests.p_above[0] < 1e-6).all()
    assert not NullFdr().select_tests(tests).any()
    assert NullFdr(min_ratio=1.1).select_tests(tests)[0].all()  # the effect size decided
    # thresholds calibrated on the null alone control chance, not specificity: they take it
    calibrated = calibrated_absolute(seqs, n_perm=20, seed=0)
    assert calibrated.max_entropy > 0.99
    assert len(score(seqs.totals(), calibrated)) == 8
    with_ratio = calibrate_absolute(seqs, n_perm=20, seed=0, ratio=2.0)
    assert with_ratio.scorer.ratio == 2.0 and with_ratio.null_selected_share == 0.0
    assert len(score(seqs.totals(), with_ratio.scorer)) == 0


def test_degenerate_neurons_give_clean_p_values():
    language = np.repeat(np.arange(3), 5)
    tokens = np.full(15, 30)
    counts = np.zeros((15, 1, 6))
    counts[:, 0, 1] = 30  # fires on every token of every sequence: no language effect
    counts[language == 1, 0, 2] = 30  # every token in de, never elsewhere: zero variance
    counts[:, 0, 3] = 10  # a constant rate of 1/3 everywhere (rounding must not pass for signal)
    counts[language == 2, 0, 4] = [3, 5, 4, 6, 2]  # only in ja, spread within ja
    counts[0, 0, 5] = 12  # one bursty sequence
    tests = language_tests(SequenceCounts(counts, language, tokens, LANGS[:3]))
    assert not np.isnan(tests.p).any() and not np.isnan(tests.p_above).any()
    assert not np.isnan(tests.p_two_sided).any()
    assert tests.p[0, 0] == 1.0 and tests.p[0, 1] == 1.0 and tests.p[0, 3] == 1.0
    assert tests.p[0, 2] == 0.0 and tests.f[0, 2] == np.inf
    assert tests.p_above[1, 0, 2] == 0.0 and tests.p_above[0, 0, 2] == 1.0
    assert 0 < tests.p[0, 4] < 1e-3
    assert tests.p[0, 5] > 0.05
    assert (tests.p_above[:, 0, [0, 1, 3]] == 1.0).all()
    assert triples(NullFdr().select_tests(tests)) == {("de", 0, 2), ("ja", 0, 4)}


def test_too_few_sequences_and_bad_counts_are_refused():
    language = np.array([0, 0, 0, 1])
    with pytest.raises(DataError, match="fewer than 2 sequences"):
        language_tests(SequenceCounts(np.ones((4, 1, 2)), language, np.full(4, 5), LANGS[:2]))
    stream = LayerStream(
        layer=lambda i: -np.ones((4, 2), dtype=np.int32),
        num_layers=1,
        language=np.array([0, 0, 1, 1]),
        tokens=np.full(4, 5),
        languages=LANGS[:2],
    )
    with pytest.raises(DataError, match="layer 0"):
        language_tests(stream)
    with pytest.raises(DataError, match="expected numeric counts"):
        language_tests(
            LayerStream(
                lambda i: np.ones((3, 2)), 1, np.array([0, 0, 1, 1]), np.full(4, 5), LANGS[:2]
            )
        )


def test_layer_stream_matches_sequence_counts(planted_seqs):
    """int32 layers one at a time, labels out of order, small blocks: the same results."""
    order = np.random.default_rng(6).permutation(planted_seqs.counts.shape[0])
    shuffled = SequenceCounts(
        planted_seqs.counts[order],
        planted_seqs.language[order],
        planted_seqs.tokens[order],
        LANGS,
        neuron_index=np.arange(UNITS) + 1000,
    )
    layers = [shuffled.counts[:, i, :].astype(np.int32) for i in range(LAYERS)]
    stream = LayerStream(
        layer=lambda i: torch.from_numpy(layers[i]),
        num_layers=LAYERS,
        language=shuffled.language,
        tokens=shuffled.tokens,
        languages=LANGS,
        neuron_index=shuffled.neuron_index,
    )
    a = language_tests(planted_seqs)
    b = language_tests(stream, block_rows=7)
    c = language_tests(shuffled)
    for name in ("f", "p", "t", "p_above", "rates", "rest_rates"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(getattr(c, name), getattr(a, name), rtol=1e-9, atol=1e-300)
    table = b.table(NullFdr().select_tests(b))
    assert set(zip(table.language, table.layer, table.neuron - 1000, strict=True)) == TRUTH
    assert len(b.table(np.zeros(b.p.shape, dtype=bool))) == 0
    assert len(b.table()) == LAYERS * UNITS


# --- calibrated thresholds and the budget null -----------------------------------------------------


def test_calibrated_absolute_finds_the_planted_neurons(planted_seqs, null_seqs):
    calibration = calibrate_absolute(planted_seqs, n_perm=20, seed=0)
    scorer = calibration.scorer
    assert isinstance(scorer, Absolute) and 0 < scorer.max_entropy < 1
    assert calibration.null_selected_share <= calibration.quantile
    found = {
        (lang, int(layer), int(neuron))
        for lang, layer, neuron in score(planted_seqs.totals(), scorer)
        .table[["language", "layer", "neuron"]]
        .itertuples(index=False)
    }
    assert found >= TRUTH
    assert len(found - TRUTH) <= 0.005 * LAYERS * UNITS
    for seed, seqs in enumerate(null_seqs[:4]):
        selected = score(seqs.totals(), calibrated_absolute(seqs, n_perm=20, seed=seed))
        assert selected.table[["layer", "neuron"]].drop_duplicates().shape[0] < 0.005 * (
            LAYERS * UNITS
        )


def test_budget_null_tests_what_the_budget_leaves_free(planted_seqs, null_seqs):
    result = budget_null(planted_seqs, "lape-paper", n_perm=39, seed=0)
    assert len(result.observed) == 12  # the budget: 1% of 1,200 neurons
    assert result.entropy < result.null_entropy.min()
    assert result.p_entropy == pytest.approx(1 / 40)
    shares = result.per_language.set_index("language")
    assert shares["observed"].sum() == pytest.approx(1.0)
    assert shares.loc["ja", "observed"] > shares.loc["ja", "null_mean"]
    assert result.null_shares.shape == (39, len(LANGS))
    p_null = [
        budget_null(seqs, n_perm=39, seed=i).p_entropy for i, seqs in enumerate(null_seqs[:5])
    ]
    assert sum(p <= 0.05 for p in p_null) <= 1, p_null


def test_sequence_scorers_resample_sequences_in_the_bootstrap_and_the_null():
    """null-fdr through `stats.bootstrap` / `permutation_null`: each replicate tests its own
    resampled (or relabelled) sequences; a planted neuron's count is stable under the
    bootstrap and absent under shuffled labels."""
    from interp.specialization.stats import SequenceCounts, bootstrap, permutation_null

    rng = np.random.default_rng(5)
    n_lang, per, tokens = 4, 50, 64
    language = np.repeat(np.arange(n_lang), per)
    rates = rng.uniform(0.05, 0.3, size=(2, 60))
    counts = rng.binomial(tokens, np.broadcast_to(rates, (n_lang * per, 2, 60))).astype(float)
    counts[:, 1, 7] = 0
    counts[language == 2, 1, 7] = rng.binomial(tokens, 0.3, size=per)  # only in "ja"
    seqs = SequenceCounts(
        counts, language, np.full(n_lang * per, float(tokens)), ("en", "de", "ja", "sw")
    )
    boot = bootstrap(seqs, "null-fdr", n_boot=30, seed=1).per_language.set_index("language")
    assert boot.loc["ja", "observed"] == 1 and boot.loc["ja", "lo"] == boot.loc["ja", "hi"] == 1
    assert boot.loc["all", "observed"] == 1
    perm = permutation_null(seqs, "null-fdr", n_perm=30, seed=1).per_language
    perm = perm.set_index("language")
    assert perm.loc["ja", "null_hi"] == 0 and perm.loc["ja", "p_value"] < 0.05
    full = seqs.totals()
    with pytest.raises(ConfigError, match="leave out `full`"):
        bootstrap(seqs, "null-fdr", n_boot=2, full=full)
