"""The pipeline's configuration: one dataclass, presets as instances, a file to override them.

    from interp.config import load_config
    config = load_config("default")                      # or "smoke", "paper"
    config = load_config("default", "my_run.json")       # a JSON or TOML file of overrides

A config file names sections and fields, e.g. (TOML)

    run = "big"
    [organism]
    steps = 1200
    [grpo]
    max_steps = 50
    [analysis]
    token_budget = 65536

Unknown sections or fields are an error that names them and lists the known ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from interp.errors import ConfigError

PRESETS = ("smoke", "default", "paper")
REGIMES = ("cpt", "sft", "grpo", "cpt-grpo")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything `interp pipeline` runs. Sections are plain dicts of field overrides for the
    stage's own config class (OrganismConfig, CPTRegime, SFTRegime, GRPORegime, AnalysisConfig),
    applied on top of that class's preset of the same name."""

    preset: str = "default"
    run: str = "default"
    checkpoints_dir: str = "checkpoints"
    figures_dir: str = "figures"
    runs_dir: str = "runs"
    # the base model: None trains the organism; a local folder or hub id uses that model
    base_model: str | None = None
    facts: str | None = None  # a PolyFact path; None builds the offline world
    regimes: tuple[str, ...] = REGIMES
    world: dict = field(default_factory=dict)  # WorldConfig fields (languages, relations, seed)
    organism: dict = field(default_factory=dict)
    cpt: dict = field(default_factory=dict)
    sft: dict = field(default_factory=dict)
    grpo: dict = field(default_factory=dict)
    evaluation: dict = field(
        default_factory=lambda: {"n_boot": 1000, "batch_size": 64, "split": "test"}
    )
    analysis: dict = field(default_factory=dict)
    accelerate_config: str | None = None  # for the paper preset on several GPUs

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}. Fix: one of {', '.join(PRESETS)}")
        unknown = [r for r in self.regimes if r not in REGIMES]
        if unknown:
            raise ConfigError(f"unknown regime(s) {unknown}. Fix: choose from {list(REGIMES)}")
        object.__setattr__(self, "regimes", tuple(self.regimes))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def accelerate_config_path(self) -> str | None:
        """The accelerate file, relative to the working folder or else to this checkout."""
        if self.accelerate_config is None:
            return None
        path = Path(self.accelerate_config)
        if not path.is_absolute() and not path.exists():
            beside = Path(__file__).resolve().parents[1] / path
            if beside.exists():
                return str(beside)
        return str(path)


def _preset_values(name: str) -> dict[str, Any]:
    if name == "smoke":  # about a minute on 2 cores: every stage, tiny sizes (tests use it)
        return {
            "preset": "smoke",
            "run": "smoke",
            "world": {
                "languages": ["en", "de", "ja", "sw"],
                "relations": ["currency", "continent"],
            },
            "organism": {"eval_split": None},
            "evaluation": {"n_boot": 100, "batch_size": 64, "split": "test"},
            "analysis": {
                "seq_len": 32,
                "token_budget": 1024,
                "n_boot": 20,
                "n_perm": 20,
                "lahis_samples": 2,
                "lahis_max_length": 32,
                "ablation_tokens": 512,
            },
        }
    if name == "paper":
        return {
            "preset": "paper",
            "run": "paper",
            "base_model": "Qwen/Qwen2.5-7B",
            "evaluation": {"n_boot": 1000, "batch_size": 16, "split": "test"},
            "analysis": {
                "seq_len": 1024,
                "token_budget": 2_000_000,
                "lahis_samples": 500,
                "lahis_max_length": 512,
                "batch_size": 4,
            },
            "accelerate_config": "configs/accelerate/deepspeed_zero3.yaml",
        }
    return {
        "preset": "default",
        "run": "default",
        # 35% of the facts held out (about 370): enough for a 3-point minimum detectable
        # difference in English-anchored consistency (the report states the one measured)
        "world": {"split_fractions": [0.6, 0.05, 0.35]},
        "organism": {"eval_split": None},  # the evaluate stage scores the base like the rest
        # 512 held-out tokens per language for each of the 25 dark-diagonal conditions: the
        # ablations are otherwise three quarters of the scoring time
        "analysis": {"batch_size": 32, "ablation_tokens": 512},
    }


def _read_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file. Fix: check the path")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except (ValueError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'} ({err})"
        ) from None


def _stage_fields() -> dict[str, set[str]]:
    """The known fields of each section, from the stage config classes themselves."""
    from interp.analysis import AnalysisConfig
    from interp.facts.world import WorldConfig
    from interp.train.cpt import CPTRegime
    from interp.train.grpo import GRPORegime
    from interp.train.organism import OrganismConfig
    from interp.train.sft import SFTRegime

    def names(cls):
        return {f.name for f in fields(cls)}

    return {
        "world": names(WorldConfig),
        "organism": names(OrganismConfig),
        "cpt": names(CPTRegime),
        "sft": names(SFTRegime),
        "grpo": names(GRPORegime),
        "analysis": names(AnalysisConfig),
        "evaluation": {"n_boot", "batch_size", "split", "languages"},
    }


def check_keys(values: dict[str, Any], *, source: str) -> None:
    """Unknown top-level keys or section fields -> one error naming all of them."""
    top = {f.name for f in fields(PipelineConfig)}
    problems = [f"'{k}'" for k in values if k not in top]
    sections = _stage_fields()
    for section, known in sections.items():
        given = values.get(section) or {}
        if not isinstance(given, dict):
            problems.append(f"'{section}' must be a table of fields")
            continue
        problems += [f"'{section}.{k}'" for k in given if k not in known]
    if problems:
        hint = "; ".join(f"[{s}] {', '.join(sorted(k))}" for s, k in sections.items())
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(problems)}. Known top-level keys: "
            f"{', '.join(sorted(top))}. Known section fields: {hint}"
        )


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def load_config(
    preset: str = "default", path: str | os.PathLike | None = None, **overrides
) -> PipelineConfig:
    """The preset, updated by the file at `path` (JSON or TOML), then by `overrides`."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}. Fix: one of {', '.join(PRESETS)}")
    values = _preset_values(preset)
    if path is not None:
        from_file = _read_file(path)
        check_keys(from_file, source=str(path))
        values = _merge(values, from_file)
    values = _merge(values, {k: v for k, v in overrides.items() if v is not None})
    check_keys(values, source="pipeline config")
    return PipelineConfig(**values)
