"""The report step: every figure, its reading, summary.csv and skipped inputs, on planted data."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interp.analysis import Analysis
from interp.errors import ConfigError, DataError
from interp.specialization.heads import top_heads
from interp.specialization.lape import score
from interp.specialization.stats import SequenceCounts, bootstrap, specialization_index

pytest.importorskip("matplotlib")

from interp.report import verdict, write_reference_report, write_report  # noqa: E402
from interp.specialization.nulltest import NullFdr  # noqa: E402
from interp.specialization.scripts import script_class_counts, script_class_table  # noqa: E402

LANGS = ("en", "de", "id", "ar", "bn", "sw", "ca", "el")  # trained high/low, unseen ca el
N_LAYERS, N_NEURONS, N_HEADS = 3, 32, 4
N_SEQ, SEQ_TOKENS = 6, 200


def sequence_counts(specific: float, seed: int, n_neurons: int = N_NEURONS) -> SequenceCounts:
    """Per-sequence firing counts where neuron j < 2 * len(LANGS) fires mostly for language
    j // 2 with strength `specific` (0 = no language preference)."""
    rng = np.random.default_rng(seed)
    rates = np.full((len(LANGS), N_LAYERS, n_neurons), 0.01)
    for j in range(2 * len(LANGS)):
        rates[j // 2, :, j] += 0.6 * specific
    rates[:, :, 2 * len(LANGS) :] = rng.uniform(0.05, 0.3, size=n_neurons - 2 * len(LANGS))
    language = np.repeat(np.arange(len(LANGS)), N_SEQ)
    counts = rng.binomial(SEQ_TOKENS, rates[language])
    return SequenceCounts(counts, language, np.full(len(language), SEQ_TOKENS), LANGS)


class ReloadedBootstrap:
    """What `load_analysis` gives back: only the tables of a bootstrap."""

    def __init__(self, result):
        self.per_language = result.per_language
        self.per_layer = result.per_layer


def ablation_table(seed: int) -> pd.DataFrame:
    """Own language hurt most (planted), plus one random-control repeat."""
    rng = np.random.default_rng(seed)
    rows = []
    for control in ("selected", "random"):
        for masked in LANGS:
            for lang in LANGS:
                own = masked == lang and control == "selected"
                rows.append(
                    {
                        "masked": masked,
                        "language": lang,
                        "control": control,
                        "repeat": 0,
                        "loss_delta": (1.0 if own else 0.0) + rng.uniform(0, 0.1),
                    }
                )
    return pd.DataFrame(rows)


def make_analysis(
    specific: float,
    seed: int,
    *,
    reloaded: bool = False,
    heads: bool = True,
    ablation: bool = True,
    n_neurons: int = N_NEURONS,
    languages: tuple[str, ...] = LANGS,
    null_fdr: bool = False,
) -> Analysis:
    seqs = sequence_counts(specific, seed, n_neurons)
    counts = seqs.totals()
    if languages != LANGS:  # same data, other labels: a language mismatch
        from interp.specialization.lape import NeuronCounts

        counts = NeuronCounts(counts.counts, counts.tokens, languages)
    neurons, boots = {}, {}
    for name, params in (("lape-paper", {"top_frac": 0.05}), ("absolute", {})):
        neurons[name] = score(counts, name, **params)
        if languages == LANGS:
            result = bootstrap(seqs, name, n_boot=40, seed=0, **params)
            boots[name] = ReloadedBootstrap(result) if reloaded else result
    classes = {}
    if null_fdr:
        neurons["null-fdr"] = NullFdr().score(seqs)
        classify = partial(script_class_counts, languages=languages)
        boots["null-fdr"] = bootstrap(seqs, "null-fdr", n_boot=20, seed=0, summarize=classify)
        classes["null-fdr"] = script_class_table(
            neurons["null-fdr"].mask(), boots["null-fdr"].summary_samples, languages
        )
    rng = np.random.default_rng(seed + 100)
    importance = rng.random((len(languages), N_LAYERS, N_HEADS))
    return Analysis(
        folder=Path("."),
        provenance={
            "languages": list(languages),
            "shape": {"num_layers": N_LAYERS, "intermediate_size": n_neurons, "num_heads": 4},
        },
        counts=counts,
        neurons=neurons,
        bootstrap=boots,
        head_importance=importance if heads else None,
        heads=top_heads(importance, languages, k=3) if heads else None,
        ablation={"neurons": ablation_table(seed), "heads": ablation_table(seed + 1)}
        if ablation
        else {},
        index=specialization_index(seqs, n_boot=40) if languages == LANGS else None,
        script_classes=classes,
    )


def exposure_classes(n_facts: int = 40) -> pd.DataFrame:
    """Planted: even facts were read in every language, odd ones only in English."""
    rows = [
        (f"f{f}", lang, "exposed" if lang == "en" or f % 2 == 0 else "english_only")
        for f in range(n_facts)
        for lang in LANGS
    ]
    return pd.DataFrame(rows, columns=["fact_id", "language", "exposure"])


def learning_curves() -> dict[str, pd.DataFrame]:
    steps = np.arange(1, 21)
    return {
        "sft": pd.DataFrame(
            {
                "step": steps,
                "loss": 2.0 / steps,
                "reward": np.nan,
                "train_accuracy": np.where(steps % 5 == 0, steps / 25, np.nan),
            }
        ),
        "grpo": pd.DataFrame(  # flat: the report must warn about it
            {"step": steps, "loss": 0.0, "reward": 1.0, "train_accuracy": np.nan}
        ),
    }


def scores_table(skill: float, seed: int, n_facts: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    answers = np.random.default_rng(7).integers(4, size=n_facts)
    return pd.DataFrame(
        [
            {
                "fact_id": f"f{f}",
                "language": lang,
                "answer_index": int(answers[f]),
                "scores": (rng.normal(size=4) + skill * np.eye(4)[answers[f]]).tolist(),
                "option_ids": ("a", "b", "c", "d"),
            }
            for f in range(n_facts)
            for lang in LANGS
        ]
    )


@pytest.fixture(scope="module")
def study():
    from interp.evaluate.metrics import evaluate

    analyses = {
        "base": make_analysis(1.0, 0),
        "sft": make_analysis(1.0, 0, reloaded=True, ablation=False),  # same data as base
        "grpo": make_analysis(0.08, 2),  # planted: language preference almost gone
    }
    del analyses["grpo"].ablation["heads"]
    scores = {"base": scores_table(0.5, 0), "sft": scores_table(1.0, 1), "grpo": scores_table(4, 2)}
    classes = exposure_classes()
    evaluations = {
        name: evaluate(table, n_boot=60, exposure=classes) for name, table in scores.items()
    }
    return analyses, evaluations, scores


@pytest.fixture(scope="module")
def report(study, tmp_path_factory):
    analyses, evaluations, scores = study
    out = tmp_path_factory.mktemp("report")
    return write_report(
        analyses,
        evaluations,
        out,
        dpi=30,
        scores=scores,
        exposure=exposure_classes(),
        curves=learning_curves(),
        n_boot=60,
    )


EXPECTED = [
    "01_neuron_counts",
    "01_neuron_counts_absolute",
    "02_layer_heatmap",
    "03_cumulative",
    "04_reassignment_sft",
    "04_reassignment_grpo",
    "05_head_layers",
    "06_head_overlap",
    "07_dark_diagonal_neurons_base",
    "07_dark_diagonal_neurons_grpo",
    "07_dark_diagonal_heads_base",
    "08_recall",
    "09_specialization_vs_consistency",
    "09_specialization_vs_rankc",
    "10_learning_curves",
    "11_exposure_accuracy",
]


def test_every_figure_is_written_and_indexed(report):
    assert list(report.figures) == EXPECTED
    assert report.skipped == {
        "07_dark_diagonal_neurons_sft": "no neurons ablation for sft",
        "07_dark_diagonal_heads_sft": "no heads ablation for sft",
        "07_dark_diagonal_heads_grpo": "no heads ablation for grpo",
    }
    index = report.index.read_text()
    lines = {line.split("**")[1]: line for line in index.splitlines() if line.startswith("- **")}
    for name in EXPECTED:
        png, pdf = report.out_dir / f"{name}.png", report.out_dir / f"{name}.pdf"
        assert report.figures[name] == [png, pdf]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pdf.read_bytes()[:5] == b"%PDF-"
        assert f"({png.name})" in lines[name] and f"({pdf.name})" in lines[name]
        reading = report.readings[name]
        assert len(reading) > 20 and lines[name].endswith(reading)
    for table in ("neuron_counts", "layer_heatmap", "ks", "evaluation", "summary"):
        assert (report.out_dir / "tables" / f"{table}.csv").is_file()
    # the flat GRPO curve is named among the warnings, the falling SFT loss is not
    warnings = index.split("## Warnings")[1].split("## Figures")[0]
    assert "grpo: its reward did not improve" in warnings and "sft:" not in warnings
    # the same lines reach the caller (the pipeline prints them in its log)
    assert [f"- {text}" for text in report.warnings] == [
        line for line in warnings.splitlines() if line.startswith("- ")
    ]
    assert "minimum detectable difference" in index


def test_summary_matches_the_inputs(report, study):
    analyses, evaluations, scores = study
    summary = pd.read_csv(report.out_dir / "summary.csv").set_index("checkpoint")
    assert list(summary.index) == ["base", "sft", "grpo"]
    for name, analysis in analyses.items():
        # specific (neuron, language) pairs, counted from the sets
        pairs = sum(len(s) for s in analysis.neurons["absolute"].sets().values())
        assert summary.loc[name, "specific_neurons_absolute"] == pairs
        # mean top-head overlap by hand: |A & B| / k over ordered pairs of languages
        sets = analysis.heads.sets()
        overlaps = [len(sets[a] & sets[b]) / 3 for a in LANGS for b in LANGS if a != b]
        assert summary.loc[name, "mean_top_head_overlap"] == pytest.approx(np.mean(overlaps))
    # unseen-language accuracy by hand: argmax per row, mean over ca and el
    table = scores["grpo"]
    correct = [
        int(np.argmax(s)) == a for s, a in zip(table["scores"], table["answer_index"], strict=True)
    ]
    by_lang = table.assign(correct=correct).groupby("language")["correct"].mean()
    assert summary.loc["grpo", "accuracy_unseen"] == pytest.approx(by_lang[["ca", "el"]].mean())
    # total consistency: right in all six trained languages at once, by hand
    trained = [c for c in LANGS if c not in ("ca", "el")]
    sft = scores["sft"]
    right = sft.assign(
        correct=[int(np.argmax(s)) == a for s, a in zip(sft.scores, sft.answer_index, strict=True)]
    )
    all_right = right[right.language.isin(trained)].groupby("fact_id")["correct"].all().mean()
    assert summary.loc["sft", "total_consistency"] == pytest.approx(all_right)
    row = evaluations["sft"].query("metric == 'total_consistency' and language == 'trained'")
    assert summary.loc["sft", "total_consistency_lo"] == pytest.approx(row.iloc[0]["ci_low"])
    for name, analysis in analyses.items():
        assert summary.loc[name, "specialization_index"] == pytest.approx(analysis.index.value)
    # planted: grpo's language preference is almost gone, so its index is lower
    assert (
        summary.loc["grpo", "specialization_index_hi"]
        < summary.loc["base", "specialization_index_lo"]
    )


def test_regime_effects_and_exposure_tables(report, study):
    _, evaluations, scores = study
    effects = pd.read_csv(report.out_dir / "tables" / "regime_effects.csv")
    assert list(effects.columns[:7]) == [
        "checkpoint",
        "metric",
        "group",
        "delta",
        "ci_low",
        "ci_high",
        "n",
    ]
    assert set(effects.checkpoint) == {"sft", "grpo"}

    # the accuracy change of the trained group, by hand: mean over de id ar bn sw
    def trained_accuracy(table):
        correct = [
            int(np.argmax(s)) == a for s, a in zip(table.scores, table.answer_index, strict=True)
        ]
        per = table.assign(c=correct).groupby("language")["c"].mean()
        return per[["de", "id", "ar", "bn", "sw"]].mean()

    row = effects.query("checkpoint == 'grpo' and metric == 'accuracy' and group == 'trained'")
    expected = trained_accuracy(scores["grpo"]) - trained_accuracy(scores["base"])
    assert row.iloc[0]["delta"] == pytest.approx(expected)
    assert row.iloc[0]["ci_low"] < expected < row.iloc[0]["ci_high"]
    assert {
        "accuracy_exposed",
        "accuracy_transfer",
        "english_anchored_consistency",
        "total_consistency",
        "rankc_mean",
    } <= set(effects.metric)
    exposure = pd.read_csv(report.out_dir / "tables" / "exposure_accuracy.csv")
    assert set(exposure.exposure) == {"exposed", "english_only"}
    base = exposure.query("checkpoint == 'base' and language == 'de'").set_index("exposure")
    table = scores["base"]
    de = table[table.language == "de"].copy()
    de["c"] = [int(np.argmax(s)) == a for s, a in zip(de.scores, de.answer_index, strict=True)]
    even = de.fact_id.str[1:].astype(int) % 2 == 0
    assert base.loc["exposed", "accuracy"] == pytest.approx(de[even].c.mean())
    assert base.loc["english_only", "accuracy"] == pytest.approx(de[~even].c.mean())


def test_readings_are_honest(report):
    summary = report.summary.set_index("checkpoint")
    reading = report.readings["01_neuron_counts_absolute"]
    base, sft, grpo = (summary.loc[c] for c in ("base", "sft", "grpo"))
    # sft has the same data as base: identical intervals, so no clear change
    sft_part, grpo_part = reading.split("; grpo vs base")
    assert sft_part.startswith(
        "sft vs base: absolute-criterion specific neurons "
        f"{base.specific_neurons_absolute:,.0f} \u2192 {sft.specific_neurons_absolute:,.0f}"
    )
    assert "no clear change" in sft_part and "+0%" in sft_part
    # grpo: planted loss of specificity; the intervals decide the wording
    assert grpo.specific_neurons_absolute_hi < base.specific_neurons_absolute_lo
    assert "clear decrease" in grpo_part
    assert (
        f"{base.specific_neurons_absolute:,.0f} \u2192 {grpo.specific_neurons_absolute:,.0f}"
        in grpo_part
    )
    dark = report.readings["07_dark_diagonal_neurons_grpo"]
    assert "own language rises most in 8 of 8 rows" in dark  # planted: own language + 1
    assert "Diagonal mean vs base:" in dark
    assert verdict(0.1, 0.2, 0.15, 0.3) == "no clear change"
    assert verdict(0.1, 0.2, 0.25, 0.3) == "clear increase"
    assert verdict(0.1, 0.2, np.nan, 0.3) is None


def test_missing_inputs_are_skipped(study, tmp_path):
    analyses = {
        "base": make_analysis(1.0, 0, heads=False, ablation=False),
        "grpo": make_analysis(0.3, 2, heads=False, ablation=False),
    }
    report = write_report(analyses, {}, tmp_path, formats=("png",), dpi=20)
    assert list(report.figures) == [
        "01_neuron_counts",
        "01_neuron_counts_absolute",
        "02_layer_heatmap",
        "03_cumulative",
        "04_reassignment_grpo",
    ]
    assert "LAHIS" in report.skipped["05_head_layers"]
    assert "no heads ablation" in report.skipped["07_dark_diagonal_heads"]
    assert "evaluation" in report.skipped["08_recall"]
    assert "specialization index" in report.skipped["09_specialization_vs_consistency"]
    index = (tmp_path / "index.md").read_text()
    assert "## Skipped" in index and "- **08_recall**: no evaluation tables" in index
    assert not (tmp_path / "05_head_layers.png").exists()
    assert not list(tmp_path.glob("*.pdf"))


def test_incomparable_checkpoints_raise(tmp_path):
    base = make_analysis(1.0, 0, heads=False, ablation=False)
    wider = make_analysis(1.0, 1, n_neurons=40, heads=False, ablation=False)
    with pytest.raises(DataError, match="different model shapes"):
        write_report({"base": base, "big": wider}, {}, tmp_path)
    wider.provenance = {}  # no provenance: compare's own check names the shapes
    with pytest.raises(DataError, match=r"different shapes .*\(3, 32\) vs \(3, 40\)"):
        write_report({"base": base, "big": wider}, {}, tmp_path)
    other = ("en", "de", "id", "ar", "bn", "sw", "ca", "ja")
    renamed = make_analysis(1.0, 0, heads=False, ablation=False, languages=other)
    with pytest.raises(DataError, match="cover different languages"):
        write_report({"base": base, "x": renamed}, {}, tmp_path)
    with pytest.raises(ConfigError, match="baseline 'base'"):
        write_report({"a": base}, {}, tmp_path)


def test_reference_report(reference_dir, tmp_path):
    root = reference_dir / "polyfact-results"
    report = write_reference_report(tmp_path, root, formats=("png",), dpi=20)
    expected = {
        "01_neuron_counts_olmo",
        "01_neuron_counts_qwen",
        "04_reassignment_olmo-base_to_olmo-grpo",
        "05_head_layers_paper",
        "06_head_overlap_paper",
        "05_head_layers_recomputed",
        "06_head_overlap_recomputed",
        "07_dark_diagonal_olmo-base",
    }
    assert expected <= set(report.figures) and report.skipped == {}
    for paths in report.figures.values():
        assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)
    # the largest per-language loss olmo-base -> olmo-grpo, counted from the raw JSON
    counts = {}
    for name in ("olmo-base", "olmo-grpo"):
        raw = json.loads((root / "lape" / name / "lape_results.json").read_text())
        counts[name] = pd.Series(
            [lang for layer in raw.values() for lang, ids in layer.items() for _ in ids]
        ).value_counts()
    delta = counts["olmo-grpo"] - counts["olmo-base"]
    lang = delta.idxmin()
    reading = report.readings["01_neuron_counts_olmo"]
    (grpo,) = [p for p in reading.split("; ") if p.startswith("olmo-grpo vs olmo-base:")]
    assert (
        f"largest loss {lang} {counts['olmo-base'][lang]:,} \u2192 {counts['olmo-grpo'][lang]:,}"
        in grpo
    )
    assert f"{counts['olmo-base'].sum():,} specific neurons in every checkpoint" in reading
    # the dark diagonal's hits, from the raw perplexities
    dark = json.loads((root / "dark-diagonal" / "olmo-base.json").read_text())
    hits = sum(
        max(dark["masked"][x], key=lambda lang: dark["masked"][x][lang] / dark["baseline"][lang])
        == x
        for x in dark["masked"]
    )
    assert f"in {hits} of 12 rows" in report.readings["07_dark_diagonal_olmo-base"]
    assert "06_head_overlap_paper" in (tmp_path / "index.md").read_text()


def test_change_readings_use_the_paired_intervals(report):
    """Figures 8 and 9 judge an evaluation change by its paired interval over facts (the
    regime-effects table), not by whether two checkpoints' own intervals overlap."""
    effects = pd.read_csv(report.out_dir / "tables" / "regime_effects.csv")
    row = effects.query(
        "checkpoint == 'grpo' and metric == 'english_anchored_consistency' and group == 'trained'"
    ).iloc[0]
    word = (
        "clear increase"
        if row.ci_low > 0
        else "clear decrease"
        if row.ci_high < 0
        else "no clear change"
    )
    expected = (
        f"paired change {100 * row.delta:+.1f} [{100 * row.ci_low:+.1f}, "
        f"{100 * row.ci_high:+.1f}] points; {word}"
    )
    grpo_part = report.readings["09_specialization_vs_consistency"].split("grpo: ")[1]
    assert expected in grpo_part
    recall = report.readings["08_recall"]
    assert "total consistency (the 12 trained languages)" in recall
    assert recall.count("paired change") == 4  # 2 checkpoints x (total consistency, RankC)


def test_null_fdr_counts_get_their_figure_and_summary_column(tmp_path):
    """A budget-free scorer's count can move: figure 1 for null-fdr, its reading, and the
    summary column with the bootstrap interval, equal to the selections themselves."""
    analyses = {
        "base": make_analysis(1.0, 0, heads=False, ablation=False, null_fdr=True),
        "grpo": make_analysis(0.0, 2, heads=False, ablation=False, null_fdr=True),
    }
    report = write_report(analyses, {}, tmp_path, formats=("png",), dpi=20)
    assert "01_neuron_counts_null_fdr" in report.figures
    assert (
        "null-fdr (FDR 5%, 2-fold) specific neurons" in report.readings["01_neuron_counts_null_fdr"]
    )
    summary = report.summary.set_index("checkpoint")
    for name, analysis in analyses.items():
        assert summary.loc[name, "specific_neurons_null_fdr"] == len(
            analysis.neurons["null-fdr"].table
        )
        all_row = analysis.bootstrap["null-fdr"].per_language.set_index("language").loc["all"]
        assert summary.loc[name, "specific_neurons_null_fdr_lo"] == all_row["lo"]
    # planted: base's neurons are more specific than grpo's, so it has more of them
    assert (
        summary.loc["base", "specific_neurons_null_fdr"]
        > summary.loc["grpo", "specific_neurons_null_fdr"]
    )
    assert (tmp_path / "tables" / "neuron_counts_null_fdr.csv").is_file()
    # figure 12: every planted neuron is for one language; the five Latin-script languages'
    # are language-level, those of Arabic, Bengali and Greek (scripts no other language here
    # has) cannot be told from their script
    classes = pd.read_csv(tmp_path / "tables" / "script_vs_language.csv").set_index(
        ["checkpoint", "class"]
    )
    per_language = N_LAYERS * 2
    assert classes.loc[("base", "language"), "count"] == 5 * per_language
    assert classes.loc[("base", "script-or-language"), "count"] == 3 * per_language
    assert classes.loc[("base", "script"), "count"] == classes.loc[("base", "mixed"), "count"] == 0
    assert (classes.xs("grpo", level="checkpoint")["count"] == 0).all()
    assert "base: language 30" in report.readings["12_script_vs_language"]


def test_causal_overlaps_get_figure_13(tmp_path):
    """Figure 13 and its table from the analyses' causal overlaps, read back exactly."""

    def overlaps(shared: int) -> dict[str, pd.DataFrame]:
        rows = [(lang, 4, 4, shared, shared / (8 - shared)) for lang in LANGS]
        rows.append(
            ("all", 4 * len(LANGS), 4 * len(LANGS), shared * len(LANGS), shared / (8 - shared))
        )
        frame = pd.DataFrame(rows, columns=["language", "n_causal", "n_other", "shared", "jaccard"])
        return {"neurons:lape-paper": frame, "heads:lahis": frame}

    analyses = {
        "base": make_analysis(1.0, 0, heads=False, ablation=False),
        "grpo": make_analysis(1.0, 1, heads=False, ablation=False),
    }
    analyses["base"].causal_overlap = overlaps(0)
    analyses["grpo"].causal_overlap = overlaps(2)
    report = write_report(analyses, {}, tmp_path, formats=("png",), dpi=20)
    reading = report.readings["13_causal_vs_activation"]
    assert "base: neurons:lape-paper 0.00 (0 of 32)" in reading
    assert "grpo: neurons:lape-paper 0.33 (16 of 32), heads:lahis 0.33" in reading
    table = pd.read_csv(tmp_path / "tables" / "causal_vs_activation.csv")
    assert len(table) == 2 * 2 * (len(LANGS) + 1)
    # one checkpoint without causal sets: the figure is skipped, naming it
    analyses["grpo"].causal_overlap = {}
    report = write_report(analyses, {}, tmp_path / "b", formats=("png",), dpi=20)
    assert "grpo" in report.skipped["13_causal_vs_activation"]
