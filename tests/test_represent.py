"""The representation analyses of a checkpoint through one call, cached and reloaded."""

from __future__ import annotations

import pytest

from interp.analysis import AnalysisConfig, analyze
from interp.corpora import from_facts
from interp.errors import ConfigError
from interp.models.tiny import build_tiny
from interp.representations.run import (
    RepresentationConfig,
    load_representations,
    represent,
)
from tests.conftest import pick_facts

LANGS = ("en", "de", "ja")


@pytest.fixture(scope="module")
def study(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("represent")
    facts = pick_facts(world[0], LANGS, {"train": 30, "validation": 2, "test": 12})
    corpus = from_facts(facts, split="train")
    texts = [t for code in corpus.languages for t in corpus.texts[code]]
    model = build_tiny(
        root / "model", "qwen2", texts=texts, vocab_size=600, hidden_size=32, intermediate_size=64
    )
    config = AnalysisConfig(
        seq_len=32,
        token_budget=2048,
        n_boot=0,
        n_perm=0,
        lahis_samples=0,
        ablation=False,
        scorers=("lape-paper",),
        top_frac=0.05,
    )
    analysis = analyze(model, corpus, config=config, progress=False)
    return model, facts, analysis


def test_every_analysis_in_one_call_and_reloaded(study, tmp_path):
    model, facts, analysis = study
    config = RepresentationConfig(
        facts=8,
        n_boot=20,
        steering_strengths=(0.0, 4.0),
        fallback_fractions=(0.0, 1.0),
        max_new_tokens=2,
    )
    rep = represent(
        model, facts, config=config, analysis=analysis, out_dir=tmp_path / "r", progress=False
    )
    assert set(rep.tables) == {"alignment", "lens", "patching", "steering", "fallback"}
    alignment = rep.tables["alignment"]
    assert set(alignment.language) == {"de", "ja"} and set(alignment.metric) >= {"retrieval", "cka"}
    assert (alignment.lo <= alignment.hi).all()
    # the same 8 facts for every analysis
    assert len(rep.provenance["facts"]) == 8
    patching = rep.tables["patching"]
    assert (patching[patching.metric == "delta_log_likelihood"].n == 8).all()
    steering = rep.tables["steering"]
    assert set(steering.strength) == {0.0, 4.0} and set(steering.language) == {"en"}
    again = represent(
        model, facts, config=config, analysis=analysis, out_dir=tmp_path / "r", progress=False
    )
    assert again.from_cache
    for name, table in rep.tables.items():
        assert load_representations(tmp_path / "r").tables[name].equals(table)


def test_without_an_analysis_steering_is_skipped_and_bad_settings_refused(study, tmp_path):
    model, facts, _ = study
    config = RepresentationConfig(facts=4, n_boot=10, analyses=("lens", "steering"))
    rep = represent(model, facts, config=config, out_dir=tmp_path / "s", progress=False)
    assert set(rep.tables) == {"lens"} and "steering" in rep.provenance["skipped"]
    with pytest.raises(ConfigError, match="unknown"):
        RepresentationConfig(analyses=("lens", "telepathy"))
    with pytest.raises(ConfigError, match="English"):
        represent(model, facts, config=config, languages=["de", "ja"], progress=False)


def test_the_represent_command(study, tmp_path, capsys):
    from interp.cli import main
    from interp.facts import write_polyfact

    model, facts, _ = study
    write_polyfact(facts, tmp_path / "facts")
    argv = ["represent", str(model), "--facts", str(tmp_path / "facts"), "--n-facts", "4"]
    argv += ["--analyses", "lens", "alignment", "--no-ablation", "--lahis-samples", "0"]
    argv += ["--n-boot", "5", "--n-perm", "0", "--token-budget", "512", "--seq-len", "32"]
    assert main([*argv, "--out", str(tmp_path / "analysis")]) == 0
    out = capsys.readouterr().out
    assert "lens (" in out and "alignment (" in out and "retrieval" in out
    assert main([*argv, "--analyses", "telepathy", "--out", str(tmp_path / "analysis")]) == 1
    assert "unknown" in capsys.readouterr().err


def test_representations_draw_figures_14_to_18(study, tmp_path):
    from interp.report import representations as steps
    from interp.report.common import ReportInputs, _Writer

    model, facts, analysis = study
    config = RepresentationConfig(
        facts=6,
        n_boot=10,
        steering_strengths=(0.0, 4.0),
        fallback_fractions=(0.0, 1.0),
        max_new_tokens=2,
    )
    rep = represent(
        model, facts, config=config, analysis=analysis, out_dir=tmp_path / "r", progress=False
    )
    inputs = ReportInputs(
        analyses={"base": analysis, "again": analysis},
        evaluations={},
        baseline="base",
        scorer="lape-paper",
        representations={"base": rep, "again": rep},
    )
    writer = _Writer(tmp_path / "fig", ("png",), 20)
    for draw in (
        steps.draw_alignment,
        steps.draw_lens,
        steps.draw_patching,
        steps.draw_steering,
        steps.draw_fallback,
    ):
        draw(writer, inputs)
    report = writer.report
    for name in ("14_alignment", "15_logit_lens", "16_patching", "17_steering", "18_fallback"):
        assert name in report.figures and len(report.readings[name]) > 40, name
    assert "chance" in report.readings["14_alignment"]
    assert "strength 0 -> 4" in report.readings["17_steering"]
