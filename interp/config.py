"""The pipeline's configuration: typed sections, one preset table, a file to override them.

    from interp.config import load_config
    config = load_config("default")                      # or "smoke", "paper"
    config = load_config("default", "my_run.json")       # a JSON or TOML file of overrides
    config.organism.steps, config.grpo.learning_rate     # each section a typed settings object

The sections (`sections()`) are the fixed ones (world, organism, evaluation, analysis) and one
per registered regime (`interp.train.registry`), so a new regime's settings are checked here
with no change to this file.

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

import argparse
import json
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from interp.errors import ConfigError


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


# ---------------------------------------------------------------------------------------------
# command-line flags from config fields: one flag per plain field, named after it


def _flag_kind(kind: Any) -> tuple[Any, str | None] | None:
    """(argparse type, nargs) for a field annotation a flag can carry, else None."""
    args = [k for k in typing.get_args(kind) if k is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        kind = args[0]  # X | None: the flag gives an X
    if kind in (int, float, str, bool):
        return kind, None
    if typing.get_origin(kind) is tuple:
        inner = [k for k in typing.get_args(kind) if k is not Ellipsis]
        if len(set(inner)) == 1 and inner[0] in (int, float, str):
            return inner[0], "+"
    return None


_METAVARS = {int: "N", float: "X", str: "TEXT"}


def add_field_flags(
    parser: Any,
    cls: type,
    *,
    skip: tuple[str, ...] = (),
    aliases: dict[str, str] | None = None,
    example: Any = None,
) -> list[str]:
    """Add `--field-name` for every plain field of the dataclass `cls` (numbers, strings,
    booleans, lists of them) not in `skip`; the help names the value of `example` (default:
    the class's defaults). Every flag defaults to None (not given); `field_changes` reads
    them back. Returns the field names given flags."""
    kinds = _field_types(cls)
    example = example if example is not None else cls()
    added = []
    for f in fields(cls):
        flag = _flag_kind(kinds[f.name])
        if f.name in skip or flag is None:
            continue
        kind, nargs = flag
        names = ["--" + f.name.replace("_", "-")]
        if aliases and f.name in aliases:
            names.append(aliases[f.name])
        value = getattr(example, f.name)
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
        options: dict[str, Any] = {"dest": f.name, "default": None}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options.update(type=kind, nargs=nargs, metavar=_METAVARS[kind])
        parser.add_argument(*names, help=f"default: {shown}", **options)
        added.append(f.name)
    return added


def field_changes(args: Any, names: list[str]) -> dict[str, Any]:
    """The fields whose flags were given, as config changes (lists become tuples)."""
    values = {name: getattr(args, name, None) for name in names}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# the config sections: one entry each; every registered regime adds its own


@dataclass(frozen=True)
class Section:
    """One config section: its settings class and how a preset and given fields make it."""

    name: str
    config: Any  # the class, or "module:Class" imported when first used
    build: Callable[[type, str, dict[str, Any]], Any]

    def config_class(self) -> type:
        from interp.train.registry import resolve

        return resolve(self.config)

    def settings(self, preset: str, values: dict[str, Any]) -> Any:
        cls = self.config_class()
        return self.build(cls, preset, _tuples(cls, values))


def _tuples(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """Lists from JSON/TOML become tuples where the field is a tuple (or a tuple or None)."""
    kinds = _field_types(cls)

    def is_tuple(kind: Any) -> bool:
        return any(
            k is tuple or typing.get_origin(k) is tuple for k in (kind, *typing.get_args(kind))
        )

    return {
        key: tuple(value) if isinstance(value, list) and is_tuple(kinds.get(key)) else value
        for key, value in values.items()
    }


def _plain(cls: type, preset: str, values: dict[str, Any]) -> Any:
    return cls(**values)


def _organism(cls: type, preset: str, values: dict[str, Any]) -> Any:
    from dataclasses import replace

    from interp.train.organism import PRESETS as ORGANISM_PRESETS

    base = ORGANISM_PRESETS.get(preset, ORGANISM_PRESETS["default"])
    return replace(base, **values)  # None is a value here (eval_split=None)


def _regime(cls: type, preset: str, values: dict[str, Any]) -> Any:
    return cls.preset(preset, **values)


_FIXED_SECTIONS = (
    Section("world", "interp.facts.world:WorldConfig", _plain),
    Section("organism", "interp.train.organism:OrganismConfig", _organism),
    Section("evaluation", "interp.config:EvaluationConfig", _plain),
    Section("analysis", "interp.analysis:AnalysisConfig", _plain),
    Section("representations", "interp.representations.run:RepresentationConfig", _plain),
)


def sections() -> dict[str, Section]:
    """Every config section: the fixed ones and one per registered regime."""
    from interp.train.registry import config_sections

    out = {section.name: section for section in _FIXED_SECTIONS}
    for name, regime in config_sections().items():
        out[name] = Section(name, regime.config, _regime)
    return out


def _default_regimes() -> tuple[str, ...]:
    from interp.train.registry import regime_names

    return regime_names()


@dataclass(frozen=True)
class PipelineConfig:
    """Everything `interp pipeline` runs.

    `overrides` holds each section's fields as given (by the preset table, a file, the
    caller); the section itself is a typed settings object, `config.organism`,
    `config.cpt`, `config.evaluation`, ...: its class's preset of this config's preset,
    updated by those fields, checked when the config is made.
    """

    preset: str = "default"
    run: str = "default"
    checkpoints_dir: str = "checkpoints"
    figures_dir: str = "figures"
    runs_dir: str = "runs"
    # the base model: None trains the organism; a local folder or hub id uses that model
    base_model: str | None = None
    facts: str | None = None  # a PolyFact path; None builds the offline world
    regimes: tuple[str, ...] = field(default_factory=_default_regimes)
    accelerate_config: str | None = None  # for the paper preset on several GPUs
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        from interp.train.registry import BASE, REGIMES

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
            parent = REGIMES[name].parent
            if parent != BASE and parent not in self.regimes:
                raise ConfigError(
                    f"regimes: {name!r} starts from {parent!r}, which this run does not train. "
                    f"Fix: add {parent!r} to regimes (or drop {name!r})"
                )
        problems = []
        for key in ("checkpoints_dir", "figures_dir", "runs_dir"):
            problems += check_types({key: str}, {key: getattr(self, key)}, "pipeline config")
        for key in ("base_model", "facts", "accelerate_config"):
            problems += check_types({key: str | None}, {key: getattr(self, key)}, "pipeline config")
        known = sections()
        for name, values in self.overrides.items():
            if name in known and isinstance(values, dict):
                problems += check_types(_field_types(known[name].config_class()), values, name)
        if problems:
            raise ConfigError("; ".join(problems))
        built = {
            name: section.settings(self.preset, dict(self.overrides.get(name) or {}))
            for name, section in known.items()
        }  # each class's own ranges, checked now
        object.__setattr__(self, "_settings", built)

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("_settings")
        if settings is not None and name in settings:
            return settings[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or section {name!r}")

    def stage_settings(self, section: str) -> Any:
        """The typed settings of one section (`world`, `organism`, `evaluation`, `analysis`,
        or a regime's: `cpt`, `sft`, `grpo`, ...)."""
        if section not in self._settings:
            raise ConfigError(f"no config section {section!r}. Known: {', '.join(self._settings)}")
        return self._settings[section]

    def regime_settings(self, regime: str) -> Any:
        """The settings a pipeline regime trains with (cpt-grpo: the grpo section)."""
        from interp.train.registry import get_regime

        return self.stage_settings(get_regime(regime).section)

    def to_dict(self) -> dict[str, Any]:
        """The config as a file would write it: top-level keys and one table per section."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "overrides"}
        values["regimes"] = list(self.regimes)
        return {**values, **{k: dict(v) for k, v in self.overrides.items()}}

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


# The presets, in one table: top-level keys and section fields over each class's own preset
# of the same name (OrganismConfig, CPTRegime, ... keep their smoke/default/paper values).
PRESET_VALUES: dict[str, dict[str, Any]] = {
    # about a minute on 2 cores: every stage, tiny sizes (tests use it)
    "smoke": {
        "run": "smoke",
        "world": {"languages": ["en", "de", "ja", "sw"], "relations": ["currency", "continent"]},
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
            "calibrate_absolute": True,
        },
        # (steering, the fallback curve and causal sets have tests of their own)
        "representations": {
            "analyses": ["alignment", "lens", "patching"],
            "facts": 8,
            "n_boot": 20,
            "steering_strengths": [0.0, 4.0],
            "fallback_fractions": [0.0, 1.0],
            "max_new_tokens": 2,
        },
    },
    "default": {
        "run": "default",
        # 35% of the facts held out (about 370): enough for a 3-point minimum detectable
        # difference in English-anchored consistency (the report states the one measured)
        "world": {"split_fractions": [0.6, 0.05, 0.35]},
        "organism": {"eval_split": None},  # the evaluate stage scores the base like the rest
        # 512 held-out tokens per language for each of the 25 dark-diagonal conditions: the
        # ablations are otherwise three quarters of the scoring time
        # the absolute rule's thresholds from this model's null: the fixed ones find nothing here
        "analysis": {
            "batch_size": 32,
            "ablation_tokens": 512,
            "calibrate_absolute": True,
            "causal": True,
        },
        # 60 held-out facts: alignment, lens and patching are cheap; steering and the
        # fallback curve generate for every target, strength and share (about a minute each)
        "representations": {
            "facts": 60,
            "batch_size": 32,
            "steering_strengths": [0.0, 2.0, 8.0],
            "fallback_fractions": [0.0, 0.5, 1.0],
            "max_new_tokens": 4,
        },
    },
    # Qwen2.5-7B with LoRA; the paper's analysis scale: 1024-token sequences, about 2M tokens
    # per language, 500 LAHIS samples of 512 tokens
    "paper": {
        "run": "paper",
        "base_model": "Qwen/Qwen2.5-7B",
        "evaluation": {"n_boot": 1000, "batch_size": 16, "split": "test"},
        "analysis": {
            "seq_len": 1024,
            "token_budget": 2_000_000,
            "lahis_samples": 500,
            "lahis_max_length": 512,
            "batch_size": 4,
            "calibrate_absolute": True,
        },
        "accelerate_config": "configs/accelerate/deepspeed_zero3.yaml",
    },
}
PRESETS = tuple(PRESET_VALUES)


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


def check_keys(values: dict[str, Any], *, source: str) -> None:
    """Unknown top-level keys or section fields -> one error naming all of them, with the
    known keys of the places where they were found."""
    known_sections = sections()
    section_fields = {
        name: {f.name for f in fields(section.config_class())}
        for name, section in known_sections.items()
    }
    top = {f.name for f in fields(PipelineConfig) if f.name != "overrides"} | set(known_sections)
    problems, known = [], []
    unknown_top = [k for k in values if k not in top]
    if unknown_top:
        problems.append(f"unknown key(s) {', '.join(repr(k) for k in unknown_top)}")
        known.append(f"top-level keys: {', '.join(sorted(top))}")
    for section, names in section_fields.items():
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
    values = {"preset": preset, **PRESET_VALUES[preset]}
    if path is not None:
        from_file = _read_file(path)
        check_keys(from_file, source=str(path))
        values = _merge(values, from_file)
    values = _merge(values, {k: v for k, v in overrides.items() if v is not None})
    check_keys(values, source="pipeline config")
    known = sections()
    given = {k: v for k, v in values.items() if k not in known}
    given["overrides"] = {k: v for k, v in values.items() if k in known}
    try:
        return PipelineConfig(**given)
    except ConfigError as err:
        if path is None:
            raise
        raise ConfigError(f"{path} (with preset {preset!r}): {err}") from None
