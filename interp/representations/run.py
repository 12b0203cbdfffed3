"""The representation-level analyses of one checkpoint, kept as an artifact folder.

    from interp.representations.run import RepresentationConfig, represent
    rep = represent("checkpoints/default/grpo", facts, analysis=grpo_analysis)
    rep.tables["alignment"]    # language, layer, metric (retrieval, cka), group, value, lo, hi
    rep.tables["lens"]         # p / rank of the English and the L answer per layer
    rep.tables["patching"]     # English residual patched into L's prompt, per layer
    rep.tables["steering"]     # output script and accuracy per steering strength
    rep.tables["fallback"]     # accuracy and script as a language's neurons are zeroed

One seeded sample of the held-out facts serves every analysis (so checkpoints compare on the
same facts, paired). Steering and the fallback curve need the checkpoint's language neurons
and their mean activations: from its specialization `analysis` (`interp.analysis.analyze`),
and they are skipped without one. The folder (`<checkpoint>/representations/<key>/`) holds
one parquet per table and `provenance.json`; `key` hashes the model, the facts, the neuron
sets and the settings, so an unchanged call reloads it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

ANALYSES = ("alignment", "lens", "patching", "steering", "fallback")


@dataclass(frozen=True)
class RepresentationConfig:
    """Which analyses, on how many facts, with how many resamples."""

    facts: int = 120  # held-out facts sampled (seeded) for every analysis
    split: str = "test"
    analyses: tuple[str, ...] = ANALYSES
    neuron_scorer: str = "lape-paper"  # whose language neurons steering uses
    steering_strengths: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
    steering_prompt_language: str = "en"  # steer answers to English questions
    fallback_fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    max_new_tokens: int = 5
    n_boot: int = 200
    batch_size: int = 16
    seed: int = 0
    device: str | None = None

    def __post_init__(self):
        unknown = [a for a in self.analyses if a not in ANALYSES]
        if unknown:
            raise ConfigError(
                f"representations.analyses: unknown {unknown}. Fix: choose from {list(ANALYSES)}"
            )
        if self.facts < 2:
            raise ConfigError(f"representations.facts={self.facts}: must be >= 2")
        if self.n_boot < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ConfigError("representations: n_boot, batch_size and max_new_tokens must be >= 1")

    def identity(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("device")
        values.pop("batch_size")
        return values


@dataclass
class Representations:
    """What `represent` measured on one checkpoint: one tidy table per analysis."""

    folder: Path
    provenance: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    from_cache: bool = False


def sample_facts(facts, config: RepresentationConfig, languages):
    """The seeded sample of the split's facts every analysis and checkpoint uses."""
    import random

    from interp.facts.schema import FactSet

    pool = facts.split(config.split) if config.split else facts
    chosen = list(pool.facts)
    if len(chosen) > config.facts:
        chosen = sorted(random.Random(config.seed).sample(chosen, config.facts), key=chosen.index)
    return FactSet(chosen, tuple(languages))


def represent(
    checkpoint: str | os.PathLike,
    facts,
    *,
    config: RepresentationConfig | None = None,
    analysis=None,
    languages=None,
    exposure: pd.DataFrame | None = None,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Representations:
    """Measure (or reload) the representation analyses of `checkpoint` on `facts`.

    languages: default the paper's trained languages the facts have. exposure: the organism's
    item classes (fact_id, language, exposure), to split alignment and the lens by them.
    analysis: the checkpoint's `Analysis` (its neuron sets and mean activations, for steering).
    """
    from interp.io import checkpoint_fingerprint, fingerprint
    from interp.languages import TRAINED
    from interp.models.loading import check_checkpoint, check_device

    config = config or RepresentationConfig()
    check_device(config.device, allow_auto=True)
    checkpoint = Path(check_checkpoint(checkpoint))
    languages = list(languages or [c for c in TRAINED if c in facts.languages])
    if "en" not in languages:
        raise ConfigError(
            f"representations need English among the languages (got {languages}): every "
            "analysis compares a language with English. Fix: include 'en'"
        )
    sample = sample_facts(facts, config, languages)
    neurons = _neuron_inputs(analysis, config)
    key = fingerprint(
        "representations-v1",
        checkpoint_fingerprint(checkpoint),
        [f.fact_id for f in sample.facts],
        languages,
        config.identity(),
        neurons["key"] if neurons else None,
    )
    folder = Path(out_dir) if out_dir else checkpoint / "representations" / key
    if (folder / "provenance.json").is_file():
        loaded = load_representations(folder)
        if loaded.provenance.get("key") == key:
            return loaded
    return _compute(checkpoint, sample, languages, config, neurons, exposure, key, folder, progress)


def _neuron_inputs(analysis, config: RepresentationConfig) -> dict[str, Any] | None:
    """The language neurons and their mean activations (post site), from an analysis."""
    if analysis is None or config.neuron_scorer not in analysis.neurons:
        return None
    means = Path(analysis.folder) / "means.safetensors"
    if not means.is_file():
        return None
    from interp.activations import load_accumulator

    return {
        "selection": analysis.neurons[config.neuron_scorer],
        "means": load_accumulator(means),
        "key": analysis.provenance.get("key"),
    }


def _compute(checkpoint, sample, languages, config, neurons, exposure, key, folder, progress):
    import torch

    from interp.models.loading import load_model, load_tokenizer

    torch.manual_seed(config.seed)
    model, _ = load_model(checkpoint, device=config.device)
    model.eval()
    tokenizer = load_tokenizer(checkpoint)
    common = {"n_boot": config.n_boot, "seed": config.seed}
    by = None
    if exposure is not None:
        by = exposure[exposure["fact_id"].isin({f.fact_id for f in sample.facts})]
    tables: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}
    if "alignment" in config.analyses:
        from interp.representations.alignment import measure_alignment

        tables["alignment"] = measure_alignment(
            model, tokenizer, sample, languages, by=by, batch_size=config.batch_size, **common
        ).table
    if "lens" in config.analyses:
        from interp.representations.lens import logit_lens

        tables["lens"] = logit_lens(
            model, tokenizer, sample, languages, by=by, batch_size=config.batch_size, **common
        ).table
    if "patching" in config.analyses:
        from interp.representations.patching import cross_lingual_patching

        tables["patching"] = cross_lingual_patching(
            model,
            tokenizer,
            sample,
            languages=languages,
            batch_size=config.batch_size,
            progress=progress,
            **common,
        ).table
    wanted = [a for a in ("steering", "fallback") if a in config.analyses]
    if wanted and neurons is None:
        for name in wanted:
            skipped[name] = (
                f"no {config.neuron_scorer} neurons with mean activations (pass the "
                "checkpoint's analysis)"
            )
    elif wanted:
        from interp.representations.steering import fallback_curve, steering_sweep

        selection, means = neurons["selection"], neurons["means"]
        has_units = [c for c in languages if selection.sets().get(c)]
        prompt = config.steering_prompt_language
        if "steering" in wanted:
            targets = [c for c in has_units if c != prompt]
            tables["steering"] = steering_sweep(
                model,
                tokenizer,
                sample,
                selection,
                means,
                targets=targets,
                languages=[prompt],
                strengths=config.steering_strengths,
                max_new_tokens=config.max_new_tokens,
                batch_size=config.batch_size,
                progress=progress,
                **common,
            ).table
        if "fallback" in wanted:
            tables["fallback"] = fallback_curve(
                model,
                tokenizer,
                sample,
                selection,
                languages=has_units,
                fractions=config.fallback_fractions,
                max_new_tokens=config.max_new_tokens,
                batch_size=config.batch_size,
                progress=progress,
                **common,
            ).table
    provenance = {
        "key": key,
        "checkpoint": str(checkpoint),
        "facts": [f.fact_id for f in sample.facts],
        "languages": languages,
        "config": asdict(config),
        "neuron_scorer": config.neuron_scorer if neurons else None,
        "skipped": skipped,
    }
    _save(folder, tables, provenance)
    return Representations(folder=folder, provenance=provenance, tables=tables)


def _save(folder: Path, tables: dict[str, pd.DataFrame], provenance: dict[str, Any]) -> None:
    from interp.io import atomic_directory, atomic_write_json

    with atomic_directory(folder, overwrite=True) as tmp:
        for name, table in tables.items():
            table.to_parquet(tmp / f"{name}.parquet")
        atomic_write_json(tmp / "provenance.json", provenance)


def load_representations(folder: str | os.PathLike) -> Representations:
    """Reload a folder `represent` wrote (no model needed)."""
    import pandas as pd

    from interp.errors import DataError

    folder = Path(folder)
    path = folder / "provenance.json"
    if not path.is_file():
        raise DataError(
            f"{folder}: no provenance.json, so no representation analyses here. Fix: run "
            "`interp represent` (or the pipeline) first"
        )
    try:
        provenance = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise DataError(f"{path}: damaged. Fix: delete {folder} and rerun") from None
    tables = {
        name: pd.read_parquet(folder / f"{name}.parquet")
        for name in ANALYSES
        if (folder / f"{name}.parquet").is_file()
    }
    return Representations(folder=folder, provenance=provenance, tables=tables, from_cache=True)
