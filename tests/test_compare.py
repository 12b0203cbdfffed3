"""Checkpoint comparison tables against hand computations, scipy and the raw 7B files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from interp import compare
from interp.errors import ConfigError, DataError
from interp.specialization.heads import top_heads
from interp.specialization.lape import NeuronCounts, NeuronSelection, score
from interp.specialization.stats import SequenceCounts, bootstrap

LANGS = ("en", "de", "sw")


def selection(assign: dict[tuple[int, int], tuple[str, ...]], layers=2, neurons=3, langs=LANGS):
    """A NeuronSelection from {(layer, neuron): languages}."""
    mask = np.zeros((len(langs), layers, neurons), dtype=bool)
    for (layer, neuron), codes in assign.items():
        for code in codes:
            mask[langs.index(code), layer, neuron] = True
    return NeuronSelection.from_mask(mask, None, langs, scorer="hand")


# ---------------------------------------------------------------------------------------------
# overlap and reassignment, worked out by hand


def test_jaccard_by_hand():
    assert compare.jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(2 / 4)
    assert compare.jaccard({1}, set()) == 0.0
    assert math.isnan(compare.jaccard(set(), set()))


BASE = {(0, 0): ("en",), (0, 1): ("de",), (1, 0): ("sw",), (1, 2): ("en",)}
# (0, 1) moves de -> en, (1, 0) loses sw, (1, 1) becomes sw, (1, 2) becomes en AND de (Tang)
TUNED = {(0, 0): ("en",), (0, 1): ("en",), (1, 1): ("sw",), (1, 2): ("en", "de")}


def test_jaccard_table_by_hand():
    table = compare.jaccard_table(selection(BASE), selection(TUNED)).set_index("language")
    # en: {(0,0), (1,2)} vs {(0,0), (0,1), (1,2)} -> 2 / 3; de: {(0,1)} vs {(1,2)} -> 0
    assert table.loc["en", "jaccard"] == pytest.approx(2 / 3)
    assert table.loc["de", "jaccard"] == 0.0
    assert table.loc["sw", "jaccard"] == 0.0
    assert list(table.loc["en", ["n_a", "n_b", "shared"]]) == [2, 3, 2]
    # pooled (unit, language) pairs: 4 and 5 rows, 2 shared -> 2 / 7
    assert table.loc["all", "jaccard"] == pytest.approx(2 / 7)


def test_reassignment_split_by_hand():
    matrix = compare.reassignment(selection(BASE), selection(TUNED), multi="split")
    ns = compare.NOT_SPECIFIC
    assert list(matrix.index) == ["en", "de", "sw", ns] == list(matrix.columns)
    expected = pd.DataFrame(0.0, index=matrix.index, columns=matrix.columns)
    expected.loc["en", "en"] = 1 + 0.5  # (0,0) stays; (1,2)'s unit split over en and de
    expected.loc["en", "de"] = 0.5
    expected.loc["de", "en"] = 1  # (0,1)
    expected.loc["sw", ns] = 1  # (1,0)
    expected.loc[ns, "sw"] = 1  # (1,1)
    expected.loc[ns, ns] = 1  # (0,2): never specific
    pd.testing.assert_frame_equal(matrix, expected, check_names=False)
    assert matrix.to_numpy().sum() == 2 * 3  # every neuron once


def test_reassignment_each_counts_every_pair():
    matrix = compare.reassignment(selection(BASE), selection(TUNED), multi="each")
    assert matrix.loc["en", "en"] == 2 and matrix.loc["en", "de"] == 1
    assert matrix.to_numpy().sum() == 7  # (1,2) counted twice
    summary = compare.reassignment_summary(
        compare.reassignment(selection(BASE), selection(TUNED))
    ).set_index("language")
    assert summary.loc["en"].to_dict() == pytest.approx(
        {"n_base": 2, "kept": 1.5, "moved": 0.5, "dropped": 0, "gained": 0, "kept_share": 0.75}
    )
    assert summary.loc["sw", "dropped"] == 1 and summary.loc["sw", "gained"] == 1
    with pytest.raises(ConfigError, match="multi"):
        compare.reassignment(selection(BASE), selection(TUNED), multi="max")


# ---------------------------------------------------------------------------------------------
# KS distance and counts


def random_counts(seed: int, langs=("en", "de", "id", "sw"), layers=6, neurons=40) -> NeuronCounts:
    rng = np.random.default_rng(seed)
    tokens = np.full(len(langs), 1000.0)
    rates = rng.beta(0.3, 3, size=(len(langs), layers, neurons))
    return NeuronCounts(np.round(rates * 1000), tokens, langs)


def test_ks_matches_scipy():
    sels = {
        "base": score(random_counts(0), top_frac=0.2),
        "ft": score(random_counts(1), top_frac=0.2),
    }
    table = compare.ks_compare(sels, "base").set_index("language")
    for lang in ("all", "en", "sw"):
        a, b = sels["base"].table, sels["ft"].table
        if lang != "all":
            a, b = a[a["language"] == lang], b[b["language"] == lang]
        expected = ks_2samp(a["layer"], b["layer"]).statistic
        assert table.loc[lang, "ks"] == pytest.approx(expected)


def test_counts_and_layer_deltas():
    sels = {"base": selection(BASE), "ft": selection(TUNED)}
    counts = compare.counts_table(sels, "base")
    ft = counts[counts["checkpoint"] == "ft"].set_index("language")
    assert ft["count"].to_dict() == {"en": 3, "de": 1, "sw": 1}
    assert ft["delta"].to_dict() == {"en": 1, "de": 0, "sw": 0}
    assert ft.loc["en", "ratio"] == pytest.approx(1.5)
    layers = compare.layer_table(sels, "base")
    row = layers[(layers["checkpoint"] == "ft") & (layers["language"] == "sw")]
    # sw: base has (1,0), ft has (1,1): layer 1 unchanged, layer 0 none either way
    assert row["delta"].tolist() == [0, 0]
    en = layers[(layers["checkpoint"] == "ft") & (layers["language"] == "en")]
    assert en["count"].tolist() == [2, 1] and en["delta"].tolist() == [1, 0]


def sequences(seed: int, scale: float = 1.0) -> SequenceCounts:
    rng = np.random.default_rng(seed)
    langs = ("en", "de", "sw")
    n_seq, layers, neurons = 30, 3, 20
    language = np.repeat(np.arange(3), n_seq // 3)
    rates = rng.beta(0.5, 3, size=(3, layers, neurons))
    counts = rng.binomial(50, np.clip(rates[language] * scale, 0, 1))
    return SequenceCounts(counts, language, np.full(n_seq, 50.0), langs)


def test_counts_table_bootstrap_intervals():
    seqs = sequences(0)
    same_a = bootstrap(seqs, "absolute", n_boot=40, seed=3, min_rate=0.05)
    same_b = bootstrap(seqs, "absolute", n_boot=40, seed=3, min_rate=0.05)
    table = compare.counts_table({"a": same_a, "b": same_b}, "a")
    b = table[table["checkpoint"] == "b"]
    # the same sequences resampled with the same seed: a paired difference of exactly zero
    assert (b["delta_lo"] == 0).all() and (b["delta_hi"] == 0).all()
    observed = same_a.per_language.set_index("language")
    a = table[table["checkpoint"] == "a"].set_index("language")
    assert a["lo"].to_dict() == observed.loc[list(a.index), "lo"].to_dict()
    other = bootstrap(seqs, "absolute", n_boot=40, seed=4, min_rate=0.05)
    table = compare.counts_table({"a": same_a, "c": other}, "a")
    c = table[table["checkpoint"] == "c"]
    assert (c["delta_hi"] - c["delta_lo"] > 0).any()  # unpaired resamples: real spread
    assert (c["delta"] == 0).all()


# ---------------------------------------------------------------------------------------------
# heads and ablation


def test_head_overlap_by_hand():
    # 3 languages, 1 layer x 3 heads, k = 1: en and de share head 0, sw picks head 2
    base = np.array([[[3.0, 1, 0]], [[2.0, 1, 0]], [[0.0, 1, 5]]])
    tuned = np.array([[[3.0, 1, 0]], [[2.0, 1, 0]], [[4.0, 1, 0]]])  # sw joins head 0
    sels = {
        "base": top_heads(base, LANGS, k=1),
        "ft": top_heads(tuned, LANGS, k=1),
    }
    table = compare.head_overlap_table(sels, "base")
    ft = table[table["checkpoint"] == "ft"].set_index(["language", "other"])
    assert ft.loc[("en", "de"), "overlap"] == 1.0
    assert ft.loc[("en", "sw"), "overlap"] == 1.0 and ft.loc[("en", "sw"), "delta"] == 1.0
    assert ft.loc[("de", "de"), "delta"] == 0.0
    jac = compare.jaccard_table(sels["base"], sels["ft"], names=("base", "ft"))
    assert jac.set_index("language")["jaccard"].to_dict() == pytest.approx(
        {"en": 1.0, "de": 1.0, "sw": 0.0, "all": 2 / 4}
    )
    summary = compare.specialization_summary(sels, "head_specificity").set_index("checkpoint")
    # off-diagonal overlaps: base 2 of 6 pairs share, ft all 6 -> 1 - 1/3 and 0
    assert summary["value"].to_dict() == pytest.approx({"base": 2 / 3, "ft": 0.0})
    layers = compare.head_layer_table(sels)
    assert layers["share"].sum() == pytest.approx(6.0)
    bigger = {"base": sels["base"], "k2": top_heads(tuned, LANGS, k=2)}
    with pytest.raises(DataError, match="different sizes k"):
        compare.head_overlap_table(bigger)


def test_ablation_matrix_forms_agree():
    tidy = pd.DataFrame(
        {
            "ablated": ["de", "de", "en", "en"],
            "measured": ["en", "de", "en", "de"],
            "value": [0.1, 0.9, 0.8, 0.2],
        }
    )
    matrix = compare.ablation_matrix(tidy)
    assert list(matrix.index) == ["en", "de"] == list(matrix.columns)  # the paper's order
    assert matrix.loc["de", "de"] == 0.9 and matrix.loc["en", "de"] == 0.2
    square = pd.DataFrame([[0.9, 0.1], [0.2, 0.8]], index=["de", "en"], columns=["de", "en"])
    pd.testing.assert_frame_equal(compare.ablation_matrix(square), matrix, check_names=False)
    later = tidy.assign(value=tidy["value"] + np.array([0.0, 0.5, -0.3, 0.0]))
    diff = compare.ablation_difference(tidy, later, names=("base", "ft"))
    assert diff.loc["de", "de"] == pytest.approx(0.5) and diff.loc["en", "en"] == pytest.approx(
        -0.3
    )
    assert diff.loc["en", "de"] == 0.0
    with pytest.raises(DataError, match="only in 'b'"):
        compare.matrix_difference(matrix, matrix.assign(sw=0.0), names=("a", "b"))


def test_ablation_matrix_from_the_published_dark_diagonal(reference_dir):
    from interp.specialization.ablation import reference_dark_diagonal

    root = reference_dir / "polyfact-results"
    raw = json.loads((root / "dark-diagonal" / "olmo-base.json").read_text())
    matrix = compare.ablation_matrix(reference_dark_diagonal(root=root), value="masked_ppl")
    assert matrix.shape == (12, 12)
    for masked in ("en", "bn", "zh"):
        for lang in ("en", "sw"):
            assert matrix.loc[masked, lang] == pytest.approx(raw["masked"][masked][lang])


# ---------------------------------------------------------------------------------------------
# recall and consistency


def scores_table(seed: int, n_facts: int = 40, langs=("en", "de", "sw", "ca")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    answers = np.random.default_rng(99).integers(4, size=n_facts)  # the same items everywhere
    rows = []
    for f in range(n_facts):
        answer = int(answers[f])
        for lang in langs:
            rows.append(
                {
                    "fact_id": f"f{f}",
                    "language": lang,
                    "answer_index": answer,
                    "scores": rng.normal(size=4).tolist(),
                    "option_ids": ("a", "b", "c", "d"),
                }
            )
    return pd.DataFrame(rows)


def test_metric_and_paired_deltas_agree():
    from interp.evaluate.metrics import evaluate

    scores = {"base": scores_table(0), "ft": scores_table(1)}
    metrics = ("accuracy", "total_consistency", "rankc")
    results = {k: evaluate(v, metrics=metrics, n_boot=0) for k, v in scores.items()}
    deltas = compare.metric_deltas(results, "base")
    paired = compare.paired_deltas(scores, "base", metrics=metrics, n_boot=20)
    assert set(paired["checkpoint"]) == {"ft"}
    keys = ["metric", "language", "other"]
    merged = deltas[deltas["checkpoint"] == "ft"].merge(paired, on=keys)
    assert len(merged) == len(paired) > 0
    np.testing.assert_allclose(merged["delta"], merged["difference"])
    acc = results["ft"].query("metric == 'accuracy' and language == 'en'")["value"].item()
    base = results["base"].query("metric == 'accuracy' and language == 'en'")["value"].item()
    row = deltas.query("checkpoint == 'ft' and metric == 'accuracy' and language == 'en'")
    assert row["delta"].item() == pytest.approx(acc - base)
    thesis = compare.thesis_table({"base": 10, "ft": (5, 4, 6), "other": 1}, results)
    assert thesis.set_index("checkpoint")["y"].to_dict() == pytest.approx(
        {
            k: v.query("metric == 'total_consistency' and language == 'all'")["value"].item()
            for k, v in results.items()
        }
    )
    assert thesis.attrs["dropped"] == ["other"]
    assert thesis.set_index("checkpoint").loc["ft", ["x", "x_lo", "x_hi"]].tolist() == [5, 4, 6]


# ---------------------------------------------------------------------------------------------
# bad inputs


def test_shape_mismatch_names_both_shapes():
    small = selection(BASE)
    wide = selection({(0, 5): ("en",)}, neurons=8)
    with pytest.raises(DataError, match=r"\(2, 3\) vs \(2, 8\)"):
        compare.counts_table({"a": small, "b": wide})
    with pytest.raises(DataError, match="different shapes"):
        compare.reassignment(small, wide)
    heads = top_heads(np.ones((3, 2, 2)), LANGS)
    with pytest.raises(DataError, match="mix neuron and head"):
        compare.jaccard_table(small, heads)


def test_language_mismatch_says_which():
    other = selection({(0, 0): ("en",)}, langs=("en", "de", "bn"))
    with pytest.raises(DataError, match="'b' lacks sw") as err:
        compare.jaccard_table(selection(BASE), other)
    assert "'a' lacks bn" in str(err.value)
    with pytest.raises(ConfigError, match="baseline 'c'"):
        compare.counts_table({"a": selection(BASE)}, "c")


def test_7b_shapes_refused(reference_dir):
    from interp.specialization.reference import load_lape

    root = reference_dir / "polyfact-results"
    with pytest.raises(DataError, match=r"\(32, 11008\) vs \(28, 18944\)"):
        compare.ks_compare(
            {"o": load_lape("olmo-base", root), "q": load_lape("qwen-base", root)}, "o"
        )


# ---------------------------------------------------------------------------------------------
# the paper's 7B results, against their raw JSON


def test_7b_overlap_and_reassignment_from_raw_json(reference_dir):
    from interp.specialization.reference import load_lape

    root = reference_dir / "polyfact-results"

    def raw(name):
        data = json.loads((root / "lape" / name / "lape_results.json").read_text())
        out: dict[str, set] = {}
        for layer, per_lang in data.items():
            for lang, neurons in per_lang.items():
                out.setdefault(lang, set()).update((int(layer), n) for n in neurons)
        return out

    a, b = raw("olmo-base"), raw("olmo-grpo")
    base, grpo = load_lape("olmo-base", root), load_lape("olmo-grpo", root)
    table = compare.jaccard_table(base, grpo).set_index("language")
    for lang in ("en", "bn", "zh"):
        assert table.loc[lang, "jaccard"] == pytest.approx(
            len(a[lang] & b[lang]) / len(a[lang] | b[lang])
        )
    matrix = compare.reassignment(base, grpo)
    assert matrix.to_numpy().sum() == 32 * 11008
    rows = matrix.drop(index=compare.NOT_SPECIFIC).sum(axis=1)
    assert rows.to_dict() == {lang: len(a[lang]) for lang in rows.index}
    assert matrix.loc["sw", "sw"] == len(a["sw"] & b["sw"])
    counts = compare.counts_table({"base": base, "grpo": grpo}, "base")
    grpo_en = counts.query("checkpoint == 'grpo' and language == 'en'")
    assert grpo_en["delta"].item() == len(b["en"]) - len(a["en"])
