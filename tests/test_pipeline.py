"""The one-command pipeline: every stage on the smoke preset, caching, resuming, bad configs."""

from __future__ import annotations

import json
import time

import pytest

from interp.config import load_config
from interp.errors import ConfigError


def _config(tmp_path, **changes):
    return load_config(
        "smoke",
        checkpoints_dir=str(tmp_path / "checkpoints"),
        figures_dir=str(tmp_path / "figures"),
        runs_dir=str(tmp_path / "runs"),
        **changes,
    )


def test_interrupted_pipeline_resumes_and_a_rerun_only_reads(tmp_path, monkeypatch):
    from interp import pipeline

    config = _config(tmp_path)
    real_train = pipeline._train

    def fail_on_grpo(regime, *args, **kwargs):
        if regime == "grpo":
            raise KeyboardInterrupt("simulated interruption")
        return real_train(regime, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_train", fail_on_grpo)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_pipeline(config, progress=False)
    state = json.loads((tmp_path / "runs" / "smoke" / "state.json").read_text())
    assert list(state) == ["facts", "base", "cpt", "sft"]
    assert not (tmp_path / "checkpoints" / "smoke" / "grpo").exists()

    monkeypatch.setattr(pipeline, "_train", real_train)
    result = pipeline.run_pipeline(config, progress=False)
    assert result.skipped == ["facts", "base", "cpt", "sft"]
    assert set(result.checkpoints) == {"base", "cpt", "sft", "grpo", "cpt-grpo"}
    for name in result.checkpoints:
        assert (result.checkpoints[name] / "manifest.json").is_file()
    index = (tmp_path / "figures" / "smoke" / "index.md").read_text()
    assert "01_neuron_counts" in index and "08_recall" in index
    assert (tmp_path / "figures" / "smoke" / "paper-7b" / "index.md").is_file()
    # the change of every regime from base, with paired intervals, and accuracy by exposure
    import pandas as pd

    tables = tmp_path / "figures" / "smoke" / "tables"
    effects = pd.read_csv(tables / "regime_effects.csv")
    assert set(effects.checkpoint) == {"cpt", "sft", "grpo", "cpt-grpo"}
    assert (effects.ci_low <= effects.delta + 1e-12).all()
    assert (effects.delta <= effects.ci_high + 1e-12).all()
    exposure = pd.read_csv(tables / "exposure_accuracy.csv")
    assert set(exposure.checkpoint) == set(result.checkpoints)
    assert {"exposed", "english_only"} <= set(exposure.exposure)
    assert "10_learning_curves" in index and "11_exposure_accuracy" in index
    for name in ("cpt", "sft", "grpo"):
        manifest = json.loads((result.checkpoints[name] / "manifest.json").read_text())
        assert manifest["compute"]["dtype"] in ("float32", "bfloat16")
        assert manifest["learning_curve"], name
    assert (result.checkpoints["base"] / "exposure.parquet").is_file()
    assert list(result.summary.index) == ["base", "cpt", "sft", "grpo", "cpt-grpo"]
    # the summary's accuracy equals the evaluation table's (hand join)
    base_eval = result.evaluations["base"]
    value = base_eval.query("metric == 'total_consistency'").value.item()
    assert result.summary.loc["base", "total_consistency"].startswith(f"{100 * value:5.1f}")

    start = time.perf_counter()
    again = pipeline.run_pipeline(config, progress=False)
    assert again.skipped == list(pipeline.stages(config))
    assert time.perf_counter() - start < 30
    assert again.summary.equals(result.summary)

    # the figures rebuilt from the cached analyses and evaluations equal the fresh ones, byte
    # for byte; a deleted or truncated output reruns its stage
    import shutil

    figures = tmp_path / "figures" / "smoke"
    fresh = _files(figures)
    assert any(name.endswith(".png") for name in fresh) and "tables/summary.csv" in fresh
    shutil.rmtree(figures)
    rebuilt = pipeline.run_pipeline(config, progress=False)
    assert "figures" not in rebuilt.skipped and "score" in rebuilt.skipped
    assert _files(figures) == fresh
    reference = sorted((figures / "paper-7b").glob("*.png"))[0]
    reference.write_bytes(reference.read_bytes()[:100])  # a figure cut short
    (figures / "tables" / "summary.csv").unlink()
    repaired = pipeline.run_pipeline(config, progress=False)
    assert "figures" not in repaired.skipped
    assert _files(figures) == fresh


def _files(folder) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_config_errors_name_the_keys(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"organism": {"stepz": 3}, "colour": "red"}))
    with pytest.raises(ConfigError) as err:
        load_config("default", bad)
    assert "'organism.stepz'" in str(err.value) and "'colour'" in str(err.value)
    toml = tmp_path / "ok.toml"
    toml.write_text('run = "mine"\n[organism]\nsteps = 7\n')
    config = load_config("default", toml)
    # the file's field joins the preset's own (the default evaluates the base in its stage)
    assert config.run == "mine" and config.overrides["organism"] == {"eval_split": None, "steps": 7}
    assert config.organism.steps == 7 and config.organism.eval_split is None  # typed section
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config("huge")
    with pytest.raises(ConfigError, match="no such config file"):
        load_config("default", tmp_path / "missing.toml")


def test_paper_dry_run_validates_the_7b_plan():
    from interp.pipeline import dry_run

    report = dry_run(load_config("paper", world={"relations": ["currency"]}))
    assert report["checks"]["grpo"]["completions_per_step"] == 8 * 12
    assert report["checks"]["sft"]["config"]["lora"]["r"] == 64
    assert report["checks"]["sft"]["lora"]["modules"] == 196  # 7 projections x 28 layers


def test_analyses_on_different_corpora_warn_and_missing_outputs_name_their_command(tmp_path):
    from types import SimpleNamespace

    from interp.analysis import load_analysis
    from interp.errors import DataError, ModelError
    from interp.report import _warn_on_corpus_mismatch
    from interp.train.checkpoints import read_manifest

    analyses = {
        "base": SimpleNamespace(provenance={"corpus_fingerprint": "aaa"}),
        "grpo": SimpleNamespace(provenance={"corpus_fingerprint": "bbb"}),
    }
    with pytest.warns(
        UserWarning, match="different corpora.*base on corpus aaa; grpo on corpus bbb"
    ):
        _warn_on_corpus_mismatch(analyses)
    with pytest.raises(DataError, match="interp score"):
        load_analysis(tmp_path)
    with pytest.raises(ModelError, match="interp train"):
        read_manifest(tmp_path)
