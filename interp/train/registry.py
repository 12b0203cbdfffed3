"""The training regimes, each registered once. The `interp train` commands, the pipeline's
config sections and type checks, its plan, its dry run and its training stages all read
this table, so a new regime is one `register_regime` call:

    from interp.train.registry import Regime, register_regime
    register_regime(Regime(
        name="dpo",
        config="my_package.dpo:DPORegime",     # a RegimeConfig subclass (presets, checks)
        train="my_package.dpo:train_dpo",      # train(parent, facts, out, settings, ...) -> Path
        help="direct preference optimisation on the facts",
    ))

A regime's config class and function are named as "module:attribute" (or given as objects)
and imported when first used, so `interp --help` imports no trainer.

An entry with `uses` is a pipeline stage that trains with another regime's settings and
function from a different parent (`cpt-grpo`: GRPO started from the CPT checkpoint); it has
no `interp train` command of its own.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interp.errors import ConfigError

BASE = "base"  # the checkpoint every chain of regimes starts from


def resolve(target: Any) -> Any:
    """An object given directly, or "module:attribute" imported now."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Regime:
    """One training regime (or one pipeline stage of a regime, with `uses`).

    name: the `interp train` subcommand, the pipeline stage, the checkpoint folder.
    config: its settings class: `preset(name, **changes)`, `to_dict()`, a `device` field.
    train: `train(parent, facts, out, settings, *, overwrite, resume) -> Path`.
    help: one line for `--help` and the plan.
    parent: the stage the pipeline starts it from.
    uses: another regime whose config section and train function this stage uses.
    plan: `plan(facts, settings) -> dict`, a dry-run check that needs no model (GRPO's batch
        layout); None: the trainer dry run of `interp.train.regimes.dry_run` on a given model.
    data_plan: for that trainer dry run, `data_plan(facts, settings) -> (report, sequences)`.
    add_options: extra `interp train NAME` flags that are not plain config fields.
    options: turns those flags into config changes: `options(args) -> dict`.
    """

    name: str
    config: Any
    train: Any
    help: str
    parent: str = BASE
    uses: str | None = None
    plan: Any = None
    data_plan: Any = None
    add_options: Callable[[argparse.ArgumentParser], None] | None = None
    options: Callable[[argparse.Namespace], dict[str, Any]] | None = None

    @property
    def section(self) -> str:
        """The pipeline config section holding its settings."""
        return self.uses or self.name

    @property
    def command(self) -> bool:
        """Whether it has its own `interp train` subcommand."""
        return self.uses is None

    def method(self) -> Regime:
        """The regime whose settings and function this one trains with."""
        return get_regime(self.uses) if self.uses else self

    def config_class(self) -> type:
        return resolve(self.method().config)

    def train_function(self) -> Callable[..., Any]:
        return resolve(self.method().train)

    def plan_function(self) -> Callable[..., Any] | None:
        method = self.method()
        return resolve(method.plan) if method.plan is not None else None

    def data_plan_function(self) -> Callable[..., Any]:
        return resolve(self.method().data_plan)

    def settings(self, preset: str, **changes: Any) -> Any:
        return self.config_class().preset(preset, **changes)


REGIMES: dict[str, Regime] = {}


def register_regime(regime: Regime) -> Regime:
    """Add a regime; its name must be new, and its parent and `uses` registered already."""
    if regime.name in REGIMES or regime.name == BASE:
        raise ConfigError(f"a regime named {regime.name!r} is already registered")
    for role, other in (("parent", regime.parent), ("uses", regime.uses)):
        if other is not None and other != BASE and other not in REGIMES:
            raise ConfigError(
                f"regime {regime.name!r}: its {role} {other!r} is not a registered regime. "
                f"Fix: register {other!r} first (known: {', '.join(REGIMES)})"
            )
    REGIMES[regime.name] = regime
    return regime


def unregister_regime(name: str) -> None:
    """Remove a regime (and nothing that depends on it may stay registered)."""
    dependants = [r.name for r in REGIMES.values() if name in (r.parent, r.uses)]
    if dependants:
        raise ConfigError(f"regimes {dependants} depend on {name!r}; remove them first")
    REGIMES.pop(name, None)


def get_regime(name: str) -> Regime:
    if name not in REGIMES:
        raise ConfigError(f"unknown regime {name!r}. Fix: choose from {', '.join(REGIMES)}")
    return REGIMES[name]


def regime_names() -> tuple[str, ...]:
    return tuple(REGIMES)


def command_regimes() -> tuple[Regime, ...]:
    """The regimes with an `interp train` subcommand."""
    return tuple(r for r in REGIMES.values() if r.command)


def config_sections() -> dict[str, Regime]:
    """Config section -> the regime that owns it (one per regime with a command)."""
    return {r.section: r.method() for r in REGIMES.values()}


# ---------------------------------------------------------------------------------------------
# the built-in regimes


def _grpo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all-correct-bonus",
        type=float,
        help="reward bonus when every language is correct (paper: 1)",
    )


def _grpo_changes(args: argparse.Namespace) -> dict[str, Any]:
    if getattr(args, "all_correct_bonus", None) is None:
        return {}
    from interp.train.rewards import PAPER

    return {"reward_config": {**PAPER.__dict__, "all_correct_bonus": args.all_correct_bonus}}


register_regime(
    Regime(
        name="cpt",
        config="interp.train.cpt:CPTRegime",
        train="interp.train.cpt:train_cpt",
        data_plan="interp.train.cpt:cpt_data_plan",
        help="light continual pretraining on parallel 'xx: sentence' text of the facts",
    )
)
register_regime(
    Regime(
        name="sft",
        config="interp.train.sft:SFTRegime",
        train="interp.train.sft:train_sft",
        data_plan="interp.train.sft:sft_data_plan",
        help="supervised fine-tuning: question + options A-D, target = the letter (or the answer)",
    )
)
register_regime(
    Regime(
        name="grpo",
        config="interp.train.grpo:GRPORegime",
        train="interp.train.grpo:train_grpo",
        help="GRPO with the paper's joint cross-lingual reward (one rollout = every language)",
        plan="interp.train.grpo:grpo_plan",
        add_options=_grpo_options,
        options=_grpo_changes,
    )
)
register_regime(
    Regime(
        name="cpt-grpo",
        config=None,
        train=None,
        help="GRPO started from the CPT checkpoint",
        parent="cpt",
        uses="grpo",
    )
)
