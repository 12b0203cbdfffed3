"""The `interp train ...` command group: one subcommand per training regime.

`add_train_commands(subparsers)` adds the group to the main parser: the organism, and one
subcommand per regime of the registry (`interp.train.registry`), whose flags are its config
class's fields. Trainers are imported when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CHECKPOINTS = "checkpoints"


def _load_facts(path: str | None):
    """The fact set at `path`, else data/world, else the offline world built in memory."""
    from interp.facts import load_facts

    return load_facts(path)


def _add_common_output(parser: argparse.ArgumentParser, default_run: str) -> None:
    parser.add_argument(
        "--run",
        default=default_run,
        metavar="NAME",
        help=f"run name: the checkpoint goes to OUT/NAME/... (default: {default_run})",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_CHECKPOINTS,
        metavar="DIR",
        help=f"checkpoints folder (default: {DEFAULT_CHECKPOINTS})",
    )
    parser.add_argument(
        "--facts",
        metavar="PATH",
        help="PolyFact file or folder with statements and splits (default: build the offline "
        "world, about 1,000 facts in 22 languages)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing checkpoint of this run"
    )


# ------------------------------------------------------------------------------- organism
def train_organism_main(args: argparse.Namespace) -> int:
    """`interp train organism`: train the model organism and print its test-split results."""
    from interp.train.organism import preset, results_table, train_organism

    config = preset(args.preset).with_overrides(
        steps=args.steps, seed=args.seed, time_budget_s=args.time_budget, family=args.family
    )
    if args.threads is not None:
        config = config.with_overrides(threads=args.threads)
    facts = _load_facts(args.facts)
    out = Path(args.out) / args.run / "base"
    result = train_organism(facts, out, config, overwrite=args.overwrite, resume=not args.no_resume)
    manifest = result.manifest
    print(
        f"\n{out}: {manifest['steps']} steps, {manifest['tokens_seen']:,} tokens, "
        f"{manifest['train_seconds']:.0f} s training, {manifest['wall_time_s']:.0f} s in all, "
        f"final loss {manifest['final_loss']}"
    )
    print(
        f"{manifest['eval_split']} facts ({manifest['n_facts'][manifest['eval_split']]}), "
        "4 options, chance 0.25:\n"
    )
    print(results_table(result.evaluation))
    return 0


def add_organism_command(commands) -> None:
    from interp.train.organism import FAMILIES, PRESETS

    parser = commands.add_parser(
        "organism",
        help="train the tiny multilingual model organism from scratch (CPU, minutes)",
        description=(
            "Train a tiny Qwen2-architecture model from scratch on a multilingual fact corpus "
            "(English states every fact; other languages state some training facts), then "
            "evaluate test facts in every language with the option log-likelihood protocol. "
            "Writes OUT/RUN/base (HF model + tokenizer + manifest.json). An interrupted run "
            "resumes from OUT/RUN/base.partial/ when rerun with the same settings."
        ),
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="smoke: seconds, for checks; default: a few minutes on 2 cores (default: default)",
    )
    _add_common_output(parser, default_run="organism")
    parser.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default: preset)")
    parser.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="stop training after this much wall time even before --steps",
    )
    parser.add_argument("--seed", type=int, help="model and data-order seed (default: 0)")
    parser.add_argument("--family", choices=FAMILIES, help="architecture (default: qwen2)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: all cores; 1 is faster on a machine busy with other jobs)",
    )
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="discard a saved partial state of this run instead of continuing it",
    )
    parser.set_defaults(func=train_organism_main)


# ------------------------------------------------------------------------------- regimes
# Every plain field of a regime's config class is a flag (`--learning-rate`, `--max-steps`,
# `--target`, ...), so a regime or a field added to the registry appears here unchanged.
_ALIASES = {"max_steps": "--steps", "learning_rate": "--lr"}
_OWN_FLAGS = ("lora",)  # nested settings: --lora, --lora-r, --lora-alpha below


def train_regime_main(args: argparse.Namespace) -> int:
    """`interp train REGIME`: fine-tune a parent checkpoint and write OUT/RUN/NAME."""
    import json

    from interp.config import field_changes
    from interp.train.checkpoints import read_manifest
    from interp.train.registry import get_regime

    regime = get_regime(args.regime)
    changes = field_changes(args, args.field_flags)
    if args.lora:
        changes["lora"] = {"enabled": True, "r": args.lora_r, "alpha": args.lora_alpha}
    if regime.options is not None:
        changes.update(regime.options(args))
    config = regime.settings(args.preset, **changes)
    facts = _load_facts(args.facts)
    parent = Path(args.parent) if args.parent else Path(args.out) / args.run / "base"
    out = Path(args.out) / args.run / (args.name or regime.name)
    train = regime.train_function()
    checkpoint = train(
        parent, facts, out, config, overwrite=args.overwrite, resume=not args.no_resume
    )
    manifest = read_manifest(checkpoint)
    keep = (
        "parent",
        "steps",
        "wall_time_s",
        "final_train_loss",
        "first_mean_reward",
        "final_mean_reward",
    )
    print(json.dumps({k: manifest[k] for k in keep if k in manifest}, indent=2, default=str))
    print(f"\n{checkpoint}: evaluate with `interp eval {checkpoint}`")
    return 0


def add_regime_command(commands, regime) -> None:
    """`interp train NAME` for one registry entry: common flags, one flag per config field."""
    from interp.config import PRESETS, add_field_flags

    parser = commands.add_parser(
        regime.name,
        help=regime.help,
        description=regime.help[0].upper() + regime.help[1:] + ". Flags not given take the "
        "preset's values (shown: the default preset's).",
    )
    parser.add_argument("--parent", help="checkpoint to start from (default: OUT/RUN/base)")
    parser.add_argument("--name", help=f"checkpoint name under OUT/RUN (default: {regime.name})")
    parser.add_argument(
        "--preset",
        default="default",
        choices=PRESETS,
        help="smoke: seconds; default: the organism on a CPU; paper: the paper's 7B settings "
        "with LoRA",
    )
    _add_common_output(parser, default_run="organism")
    parser.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming a partial run"
    )
    parser.add_argument(
        "--lora", action="store_true", help="train LoRA adapters (merged before saving)"
    )
    parser.add_argument("--lora-r", type=int, default=64, help="LoRA rank (default: 64)")
    parser.add_argument("--lora-alpha", type=int, default=128, help="LoRA alpha (default: 128)")
    settings = parser.add_argument_group(f"{regime.config_class().__name__} fields")
    names = add_field_flags(
        settings,
        regime.config_class(),
        skip=_OWN_FLAGS,
        aliases=_ALIASES,
        example=regime.settings("default"),
    )
    if regime.add_options is not None:
        regime.add_options(settings)
    parser.set_defaults(func=train_regime_main, regime=regime.name, field_flags=names)


# ------------------------------------------------------------------------------- group
def add_train_commands(subparsers) -> argparse.ArgumentParser:
    """Add the `train` command group: the organism, then one subcommand per registered
    regime that has one (`interp.train.registry`)."""
    from interp.train.registry import command_regimes

    train = subparsers.add_parser(
        "train",
        help="train models: the organism, and fine-tuning regimes",
        description="Train the model organism or fine-tune a checkpoint.",
    )
    commands = train.add_subparsers(dest="train_command", metavar="REGIME")
    add_organism_command(commands)
    for regime in command_regimes():
        add_regime_command(commands, regime)
    return train
