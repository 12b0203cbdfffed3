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

Unknown sections or fields are an error that names them and lists the known ones; a value of
the wrong type (`check_types`: the one place the type rules are written) or out of range is
an error naming the section, the field and the fix, raised when the config is made, so
`--dry-run` catches everything the real run would.
"""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from interp.errors import ConfigError

PRESETS = ("smoke", "default", "paper")
REGIMES = ("cpt", "sft", "grpo", "cpt-grpo")
REGIME_PARENTS = {"cpt": "base", "sft": "base", "grpo": "base", "cpt-grpo": "cpt"}


def check_run_name(run: Any) -> None:
    """A run name is one folder name under checkpoints/, figures/ and runs/."""
    bad = (
        not isinstance(run, str)
        or not run.strip()
        or run in (".", "..")
        or any(c in run for c in "/\\\0")
        or run.startswith("-")
    )
    if bad:
        raise ConfigError(
            f"run name {run!r}: must be one folder name (no '/' or '\\', not empty, '.' or "
            "'..', not starting with '-'). Fix: e.g. --run my-study"
        )


@dataclass(frozen=True)
class EvaluationConfig:
    """The evaluate stage: bootstrap resamples, scoring batch size, the split scored, and
    optionally a subset of languages."""

    n_boot: int = 1000
    batch_size: int = 64
    split: str = "test"
    languages: tuple[str, ...] | None = None

    def __post_init__(self):
        from interp.facts.schema import SPLITS

        problems = check_types(_field_types(EvaluationConfig), self.__dict__, "evaluation")
        if not problems:
            if self.n_boot < 0:
                problems.append(
                    f"evaluation.n_boot={self.n_boot}: must be >= 0. Fix: e.g. n_boot = 1000"
                )
            if self.batch_size < 1:
                problems.append(
                    f"evaluation.batch_size={self.batch_size}: must be >= 1. Fix: e.g. 64"
                )
            if self.split not in SPLITS:
                problems.append(
                    f"evaluation.split={self.split!r}: unknown split. Fix: one of "
                    f"{', '.join(SPLITS)}"
                )
        if problems:
            raise ConfigError("; ".join(problems))


# ---------------------------------------------------------------------------------------------
# the type rules, written once: every config section and CLI-given value goes through these


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(k) for k in typing.get_args(kind))
    if typing.get_origin(kind) in (tuple, list):
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        return f"a list of {_type_name(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    if kind is type(None):
        return "null"
    if isinstance(kind, type):
        return {
            "int": "an integer",
            "float": "a number",
            "str": "a string",
            "bool": "true/false",
        }.get(kind.__name__, kind.__name__)
    return str(kind).replace("typing.", "")


def _matches(value: Any, kind: Any) -> bool:
    """Whether `value` (from JSON/TOML/Python) fits the annotation `kind`. Strict where a
    loose reading would change the meaning: a bool is not a number, a float (even 3.0) is not
    an integer, a string is not a number."""
    origin = typing.get_origin(kind)
    if kind is Any or kind is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, k) for k in typing.get_args(kind))
    if origin is typing.Literal:
        return value in typing.get_args(kind)
    if kind is type(None) or kind is None:
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if origin in (tuple, list) or kind in (tuple, list):
        if not isinstance(value, list | tuple):
            return False
        args = typing.get_args(kind)
        if not args:
            return True
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return len(value) == len(args) and all(map(_matches, value, args))
        return all(_matches(v, args[0]) for v in value)
    if origin is dict or kind is dict:
        return isinstance(value, dict)
    if isinstance(kind, type) and hasattr(kind, "__dataclass_fields__"):
        return isinstance(value, kind | dict)  # a nested section, checked by its own class
    return True  # a type these rules do not cover: the stage's own class checks it


def check_types(kinds: dict[str, Any], values: dict[str, Any], section: str) -> list[str]:
    """One message per value of `values` that does not fit its annotation in `kinds`."""
    problems = []
    for key, value in values.items():
        if key not in kinds or _matches(value, kinds[key]):
            continue
        hint = ""
        if isinstance(value, str) and _matches(_number(value), kinds[key]):
            hint = f" (write {value} without quotes)"
        elif isinstance(value, float) and value.is_integer() and _matches(int(value), kinds[key]):
            hint = f" (write {int(value)})"
        problems.append(
            f"{section}.{key} = {value!r} is {_type_name(type(value))}; it must be "
            f"{_type_name(kinds[key])}. Fix: give {section}.{key} as {_type_name(kinds[key])}"
            f"{hint}"
        )
    return problems


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


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
        if not isinstance(self.regimes, list | tuple) or not all(
            isinstance(r, str) for r in self.regimes
        ):
            raise ConfigError(
                f"regimes={self.regimes!r}: must be a list of names. Fix: e.g. regimes = "
                f'["cpt", "sft"] (from {list(REGIMES)})'
            )
        unknown = [r for r in self.regimes if r not in REGIMES]
        if unknown:
            raise ConfigError(f"unknown regime(s) {unknown}. Fix: choose from {list(REGIMES)}")
        object.__setattr__(self, "regimes", tuple(self.regimes))
        check_run_name(self.run)
        for name in self.regimes:
            parent = REGIME_PARENTS[name]
            if parent != "base" and parent not in self.regimes:
                raise ConfigError(
                    f"regimes: {name!r} starts from {parent!r}, which this run does not train. "
                    f"Fix: add {parent!r} to regimes (or drop {name!r})"
                )
        problems = []
        for key in ("checkpoints_dir", "figures_dir", "runs_dir"):
            problems += check_types({key: str}, {key: getattr(self, key)}, "pipeline config")
        for key in ("base_model", "facts", "accelerate_config"):
            problems += check_types({key: str | None}, {key: getattr(self, key)}, "pipeline config")
        for section, cls in _stage_classes().items():
            values = getattr(self, section)
            if isinstance(values, dict):
                problems += check_types(_field_types(cls), values, section)
        if problems:
            raise ConfigError("; ".join(problems))
        for section in _stage_classes():
            self.stage_settings(section)  # each class's own ranges and names, checked now

    def stage_settings(self, section: str) -> Any:
        """The config object of one section (`world`, `organism`, `cpt`, `sft`, `grpo`,
        `analysis`, `evaluation`): its class's preset of this config's preset, updated by
        the section's fields."""
        from dataclasses import replace

        values = dict(getattr(self, section))
        cls = _stage_classes()[section]
        if section in ("cpt", "sft", "grpo"):
            return cls.preset(self.preset, **values)
        if section == "organism":
            from interp.train.organism import PRESETS as ORGANISM_PRESETS

            base = ORGANISM_PRESETS.get(self.preset, ORGANISM_PRESETS["default"])
            return replace(base, **values)  # None is a value here (eval_split=None)
        if section in ("world", "evaluation"):
            for name in ("languages", "relations", "split_fractions"):
                if isinstance(values.get(name), list):
                    values[name] = tuple(values[name])
        return cls(**values)

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
        what = "a folder, not a config file" if path.is_dir() else "no such config file"
        raise ConfigError(f"{path}: {what}. Fix: check the path")
    kind = "TOML" if path.suffix == ".toml" else "JSON"
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM is fine
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start}). Fix: save the config as UTF-8 {kind}"
        ) from None
    try:
        if path.suffix == ".toml":
            import tomllib

            values = tomllib.loads(text)
        else:
            values = json.loads(text)
    except ValueError as err:
        raise ConfigError(
            f"{path}: not valid {kind} ({err}). Fix: correct the file (.toml files are read as "
            "TOML, anything else as JSON)"
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: holds a {type(values).__name__}, not a table of settings. Fix: write "
            'sections and fields, e.g. {"organism": {"steps": 100}}'
        )
    return values


def _stage_classes() -> dict[str, type]:
    """Each config section's class (its fields, types and ranges)."""
    from interp.analysis import AnalysisConfig
    from interp.facts.world import WorldConfig
    from interp.train.cpt import CPTRegime
    from interp.train.grpo import GRPORegime
    from interp.train.organism import OrganismConfig
    from interp.train.sft import SFTRegime

    return {
        "world": WorldConfig,
        "organism": OrganismConfig,
        "cpt": CPTRegime,
        "sft": SFTRegime,
        "grpo": GRPORegime,
        "analysis": AnalysisConfig,
        "evaluation": EvaluationConfig,
    }


def _stage_fields() -> dict[str, set[str]]:
    """The known fields of each section, from the stage config classes themselves."""
    return {name: {f.name for f in fields(cls)} for name, cls in _stage_classes().items()}


def check_keys(values: dict[str, Any], *, source: str) -> None:
    """Unknown top-level keys or section fields -> one error naming all of them, with the
    known keys of the places where they were found."""
    top = {f.name for f in fields(PipelineConfig)}
    sections = _stage_fields()
    problems, known = [], []
    unknown_top = [k for k in values if k not in top]
    if unknown_top:
        problems.append(f"unknown key(s) {', '.join(repr(k) for k in unknown_top)}")
        known.append(f"top-level keys: {', '.join(sorted(top))}")
    for section, names in sections.items():
        given = values.get(section) or {}
        if not isinstance(given, dict):
            problems.append(f"'{section}' must be a table of fields, not {given!r}")
            known.append(f"[{section}] holds fields, e.g. {', '.join(sorted(names)[:3])}")
            continue
        unknown = [k for k in given if k not in names]
        if unknown:
            problems.append(f"unknown key(s) {', '.join(repr(f'{section}.{k}') for k in unknown)}")
            known.append(f"[{section}] fields: {', '.join(sorted(names))}")
    if problems:
        raise ConfigError(
            f"{source}: {'; '.join(problems)}. Fix: use known keys ({'; '.join(known)})"
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
    try:
        return PipelineConfig(**values)
    except ConfigError as err:
        if path is None:
            raise
        raise ConfigError(f"{path} (with preset {preset!r}): {err}") from None
