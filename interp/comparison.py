"""Compare any checkpoints: evaluate and analyse each one (cached with the checkpoint, as the
pipeline does), save what the report reads, and draw every comparison figure and table.

    from interp.comparison import compare_checkpoints, redraw
    report = compare_checkpoints({"base": "ckpt/base", "grpo": "ckpt/grpo"}, facts, out="cmp")
    report = redraw("cmp")           # the same figures and tables from the saved inputs

The CLI: `interp compare base=DIR grpo=DIR --out cmp`, then `interp report cmp`.

`out` holds the report (figures, `tables/`, `summary.csv`, `index.md`) and `inputs/` with
what it was drawn from: per checkpoint its scores and metrics tables, and the exposure
classes, learning curves and warnings; `comparison.json` names each checkpoint's analysis
folder (with the checkpoint, or under `inputs/` for a hub id). The report is always drawn from
the saved inputs, so `redraw` reproduces it byte for byte.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import ConfigError, DataError

MANIFEST = "comparison.json"
INPUTS = "inputs"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+")


@dataclass
class ComparisonInputs:
    """Everything `interp.report.write_report` reads, for checkpoints in report order."""

    baseline: str
    analyses: dict[str, Any]  # name -> interp.analysis.Analysis
    evaluations: dict[str, Any]  # name -> metrics table
    scores: dict[str, Any]  # name -> scores table
    exposure: Any = None  # item exposure classes of the baseline, if it recorded them
    curves: dict[str, Any] = field(default_factory=dict)  # name -> LearningCurve.frame()
    warnings: list[str] = field(default_factory=list)
    n_boot: int = 1000
    representations: dict[str, Any] = field(default_factory=dict)  # name -> Representations


def parse_entries(texts: Sequence[str]) -> dict[str, str]:
    """`NAME=PATH_OR_HUB_ID` arguments -> {name: source}, in the given order."""
    entries: dict[str, str] = {}
    for text in texts:
        name, sep, source = str(text).partition("=")
        if not sep or not name or not source:
            raise ConfigError(
                f"{text!r}: a checkpoint is given as NAME=PATH_OR_HUB_ID. Fix: e.g. "
                "base=checkpoints/default/base grpo=Qwen/Qwen2.5-7B"
            )
        if not set(name) <= _NAME_CHARS:
            raise ConfigError(
                f"{text!r}: the name {name!r} has characters other than letters, digits and "
                "-_.+ (it names files). Fix: a short name such as base or grpo-lr3e4"
            )
        if name in entries:
            raise ConfigError(
                f"{text!r}: the name {name!r} is given twice ({entries[name]} and {source}). "
                "Fix: give each checkpoint its own name"
            )
        if source.startswith("paper:"):
            raise ConfigError(
                f"{text!r}: the paper's published 7B results are drawn by `interp pipeline` "
                "(figures/<run>/paper-7b/), not compared as checkpoints here. Fix: give a "
                "checkpoint folder or hub id"
            )
        entries[name] = source
    if not entries:
        raise ConfigError("no checkpoints to compare. Fix: give NAME=PATH at least once")
    return entries


def compare_checkpoints(
    entries: Mapping[str, str | os.PathLike],
    facts,
    *,
    out: str | os.PathLike,
    baseline: str | None = None,
    corpus=None,
    heldout=None,
    analysis_config=None,
    split: str = "test",
    n_boot: int = 1000,
    batch_size: int = 16,
    device: str | None = None,
    progress: bool = True,
    representation_config=None,
):
    """Evaluate (`split` of `facts`) and analyse (`corpus`, default the facts' train split;
    `heldout` for the ablations, default its test split) every checkpoint, save the inputs
    into `out`, and draw the report there with `baseline` (default: the first) as reference.
    `representation_config` (an `interp.representations.run.RepresentationConfig`) adds the
    representation analyses (figures 14-18). Returns the `interp.report.Report`."""
    from interp import corpora
    from interp.analysis import AnalysisConfig, analyze
    from interp.evaluate.run import evaluate_checkpoint
    from interp.languages import TRAINED
    from interp.models.loading import check_checkpoint, check_device

    entries = {name: str(source) for name, source in entries.items()}
    baseline = baseline or next(iter(entries))
    if baseline not in entries:
        raise ConfigError(
            f"baseline {baseline!r} is not among the checkpoints {list(entries)}. Fix: "
            "--baseline one of these names"
        )
    analysis_config = analysis_config or AnalysisConfig()
    check_device(device, allow_auto=True)
    check_device(analysis_config.device, allow_auto=True)
    checked = {name: Path(check_checkpoint(source)) for name, source in entries.items()}
    check_same_shape(checked)  # before any work: neuron and head sets must line up
    out = Path(out)
    if corpus is None:
        analysed = [c for c in TRAINED if c in facts.languages] or list(facts.languages)
        corpus = corpora.from_facts(facts, split="train", languages=analysed)
        if heldout is None:
            heldout = corpora.from_facts(facts, split="test", languages=analysed)

    analyses, evaluations, scores, folders = {}, {}, {}, {}
    for name, checkpoint in checked.items():
        local = checkpoint.is_dir()
        result = evaluate_checkpoint(
            checkpoint,
            facts,
            split=split,
            batch_size=batch_size,
            n_boot=n_boot,
            device=device,
            progress=progress,
        )
        evaluations[name], scores[name] = result.metrics, result.scores
        analysis = analyze(
            checkpoint,
            corpus,
            heldout=heldout,
            config=analysis_config,
            out_dir=None if local else out / INPUTS / name / "analysis",
            progress=progress,
        )
        analyses[name] = analysis
        folders[name] = str(analysis.folder)
    exposure = heldout_exposure(checked[baseline], facts, split)
    representations = {}
    if representation_config is not None:
        from interp.representations.run import represent

        for name, checkpoint in checked.items():
            representations[name] = represent(
                checkpoint,
                facts,
                config=representation_config,
                analysis=analyses[name],
                exposure=exposure,
                out_dir=None if checkpoint.is_dir() else out / INPUTS / name / "representations",
                progress=progress,
            )
    inputs = ComparisonInputs(
        baseline=baseline,
        analyses=analyses,
        evaluations=evaluations,
        scores=scores,
        exposure=exposure,
        curves=learning_curves(checked),
        warnings=compute_warnings(checked),
        n_boot=n_boot,
        representations=representations,
    )
    save_inputs(inputs, out, sources=entries, analysis_folders=folders)
    return redraw(out)


def save_inputs(
    inputs: ComparisonInputs,
    out: str | os.PathLike,
    *,
    sources: Mapping[str, str],
    analysis_folders: Mapping[str, str],
) -> Path:
    """Write `inputs/` and `comparison.json` into `out` (the analyses stay where they are)."""
    from interp.evaluate.run import _to_parquet
    from interp.io import atomic_directory, atomic_write_json

    out = Path(out)
    names = list(inputs.analyses)
    with atomic_directory(out / INPUTS, overwrite=True) as tmp:
        for name in names:
            (tmp / name).mkdir()
            _to_parquet(inputs.scores[name], tmp / name / "scores.parquet")
            inputs.evaluations[name].to_parquet(tmp / name / "metrics.parquet")
            if name in inputs.curves:
                inputs.curves[name].to_parquet(tmp / name / "curve.parquet")
            for part, folder in (
                ("analysis", Path(analysis_folders[name])),
                ("representations", _representation_folder(inputs, name)),
            ):
                inside = out / INPUTS / name / part
                if (
                    folder is not None
                    and folder.absolute() == inside.absolute()
                    and folder.is_dir()
                ):
                    os.replace(folder, tmp / name / part)  # a hub model's: keep it
        if inputs.exposure is not None:
            inputs.exposure.to_parquet(tmp / "exposure.parquet")
    return atomic_write_json(
        out / MANIFEST,
        {
            "baseline": inputs.baseline,
            # analysis folders relative to `out`: the same file wherever the study lies
            "checkpoints": {
                name: {
                    "source": sources[name],
                    "analysis": os.path.relpath(
                        Path(analysis_folders[name]).absolute(), out.absolute()
                    ),
                    "representations": (
                        os.path.relpath(
                            _representation_folder(inputs, name).absolute(), out.absolute()
                        )
                        if name in inputs.representations
                        else None
                    ),
                }
                for name in names
            },
            "warnings": list(inputs.warnings),
            "n_boot": inputs.n_boot,
        },
    )


def _representation_folder(inputs: ComparisonInputs, name: str) -> Path | None:
    rep = inputs.representations.get(name)
    return Path(rep.folder) if rep is not None else None


def load_inputs(out: str | os.PathLike) -> ComparisonInputs:
    """What `save_inputs` wrote; a DataError naming what is missing, with the fix."""
    import pandas as pd

    from interp.analysis import load_analysis

    out = Path(out)
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise DataError(
            f"{out}: no {MANIFEST}, so no comparison here. Fix: run `interp compare NAME=PATH "
            f"... --out {out}` first (or give the folder it wrote)"
        )
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        checkpoints = dict(meta["checkpoints"])
        baseline = str(meta["baseline"])
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(
            f"{manifest}: damaged ({err}). Fix: rerun `interp compare ... --out {out}`"
        ) from None
    analyses, evaluations, scores, curves, representations = {}, {}, {}, {}, {}
    for name, entry in checkpoints.items():
        folder = out / INPUTS / name
        for part in ("scores.parquet", "metrics.parquet"):
            if not (folder / part).is_file():
                raise DataError(
                    f"{folder / part}: missing. Fix: rerun `interp compare ... --out {out}`"
                )
        scores[name] = pd.read_parquet(folder / "scores.parquet")
        evaluations[name] = pd.read_parquet(folder / "metrics.parquet")
        if (folder / "curve.parquet").is_file():
            curves[name] = pd.read_parquet(folder / "curve.parquet")
        analysis = folder / "analysis"
        analyses[name] = load_analysis(analysis if analysis.is_dir() else out / entry["analysis"])
        if entry.get("representations"):
            from interp.representations.run import load_representations

            inside = folder / "representations"
            representations[name] = load_representations(
                inside if inside.is_dir() else out / entry["representations"]
            )
    exposure_file = out / INPUTS / "exposure.parquet"
    return ComparisonInputs(
        baseline=baseline,
        analyses=analyses,
        evaluations=evaluations,
        scores=scores,
        exposure=pd.read_parquet(exposure_file) if exposure_file.is_file() else None,
        curves=curves,
        warnings=list(meta.get("warnings", [])),
        n_boot=int(meta.get("n_boot", 1000)),
        representations=representations,
    )


def redraw(out: str | os.PathLike, *, formats: Sequence[str] = ("png", "pdf"), dpi: int = 150):
    """Draw the report into `out` from the inputs saved there (nothing recomputed)."""
    from interp.report import write_report

    inputs = load_inputs(out)
    return write_report(
        inputs.analyses,
        inputs.evaluations,
        out,
        baseline=inputs.baseline,
        formats=formats,
        dpi=dpi,
        scores=inputs.scores,
        exposure=inputs.exposure,
        curves=inputs.curves,
        warnings=inputs.warnings,
        n_boot=inputs.n_boot,
        representations=inputs.representations,
    )


_SHAPE_FIELDS = ("model_type", "num_hidden_layers", "intermediate_size", "num_attention_heads")


def check_same_shape(checkpoints: Mapping[str, Path]) -> None:
    """A DataError naming two local checkpoints whose config.json differ in family or shape:
    their neurons and heads do not correspond, so no figure could compare them."""
    shapes = {}
    for name, path in checkpoints.items():
        config = Path(path) / "config.json"
        if config.is_file():  # a hub model is checked by the report, once loaded
            values = json.loads(config.read_text(encoding="utf-8"))
            values = values.get("text_config", values)  # multimodal configs nest the LM's
            shapes[name] = {key: values.get(key) for key in _SHAPE_FIELDS}
    if not shapes:
        return
    first, reference = next(iter(shapes.items()))
    for name, shape in shapes.items():
        differ = [
            f"{k} {reference[k]} vs {shape[k]}" for k in _SHAPE_FIELDS if shape[k] != reference[k]
        ]
        if differ:
            raise DataError(
                f"{first} and {name} are different models ({', '.join(differ)}): their neurons "
                "and heads do not correspond. Fix: compare checkpoints of one model (its base "
                "and its fine-tunes)"
            )


# ---------------------------------------------------------------------------------------------
# what the checkpoints recorded about themselves (the pipeline reads these too)


def heldout_exposure(base, facts, split: str):
    """The exposure classes of the evaluated items, from what the base model read (None when
    it recorded nothing, e.g. a hub model)."""
    from interp.evaluate.exposure import item_exposure, read_exposure

    table = read_exposure(base) if base is not None and Path(base).is_dir() else None
    return None if table is None else item_exposure(table, facts.split(split))


def _manifests(checkpoints: Mapping[str, Path]) -> dict[str, Any]:
    """checkpoint name -> its `Manifest`, for those that have one."""
    from interp.train.checkpoints import Manifest

    found = {name: Manifest.find(path) for name, path in checkpoints.items()}
    return {name: manifest for name, manifest in found.items() if manifest is not None}


def learning_curves(checkpoints: Mapping[str, Path]) -> dict[str, Any]:
    """checkpoint -> its learning curve frame, for the checkpoints that recorded one."""
    from interp.train.curves import LearningCurve

    curves = {}
    for name, manifest in _manifests(checkpoints).items():
        curve = LearningCurve.from_manifest(manifest)
        if curve is not None:
            curves[name] = curve.frame()
    return curves


def compute_warnings(checkpoints: Mapping[str, Path]) -> list[str]:
    """A line for each checkpoint trained in a precision its machine runs slowly."""
    from interp.runtime import ComputePlan, slow_precision_warning

    lines = []
    for name, manifest in _manifests(checkpoints).items():
        compute = manifest.compute
        if compute:
            fields = {k: compute[k] for k in ("device", "dtype", "threads", "reason")}
            text = slow_precision_warning(ComputePlan(**fields))
            if text:
                lines.append(f"{name}: {text}")
    return lines
