"""The `interp train ...` command group: one subcommand per training regime.

`add_train_commands(subparsers)` adds the group to the main parser. Each regime is a
function in `REGIMES` that adds its own subcommand, so a new regime is one function and one
entry. Heavy imports happen inside the command functions, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
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
def _regime_class(name: str):
    from interp.train.cpt import CPTRegime
    from interp.train.grpo import GRPORegime
    from interp.train.sft import SFTRegime

    return {"cpt": CPTRegime, "sft": SFTRegime, "grpo": GRPORegime}[name]


def train_regime_main(args: argparse.Namespace) -> int:
    """`interp train cpt|sft|grpo`: fine-tune a parent checkpoint and write OUT/RUN/NAME."""
    import json

    from interp.train.checkpoints import read_manifest

    changes = {
        "max_steps": args.steps,
        "learning_rate": args.lr,
        "seed": args.seed,
        "threads": args.threads,
        "device": args.device,
    }
    if args.lora:
        changes["lora"] = {"enabled": True, "r": args.lora_r, "alpha": args.lora_alpha}
    for name in ("target", "reward", "num_generations", "prompt_format"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "all_correct_bonus", None) is not None:
        from interp.train.rewards import PAPER

        changes["reward_config"] = {**PAPER.__dict__, "all_correct_bonus": args.all_correct_bonus}
    config = _regime_class(args.regime).preset(
        args.preset, **{k: v for k, v in changes.items() if v is not None}
    )
    facts = _load_facts(args.facts)
    parent = Path(args.parent) if args.parent else Path(args.out) / args.run / "base"
    out = Path(args.out) / args.run / (args.name or args.regime)
    if args.regime == "cpt":
        from interp.train.cpt import train_cpt as train
    elif args.regime == "sft":
        from interp.train.sft import train_sft as train
    else:
        from interp.train.grpo import train_grpo as train
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


_REGIME_TEXT = {
    "cpt": "light continual pretraining on parallel 'xx: sentence' text of the facts",
    "sft": "supervised fine-tuning: question + options A-D, target = the letter (or the answer)",
    "grpo": "GRPO with the paper's joint cross-lingual reward (one rollout = every language)",
}


def _add_regime_command(commands, regime: str) -> None:
    parser = commands.add_parser(
        regime, help=_REGIME_TEXT[regime], description=_REGIME_TEXT[regime] + "."
    )
    parser.set_defaults(func=train_regime_main, regime=regime)
    parser.add_argument("--parent", help="checkpoint to start from (default: OUT/RUN/base)")
    parser.add_argument("--name", help=f"checkpoint name under OUT/RUN (default: {regime})")
    parser.add_argument(
        "--preset",
        default="default",
        choices=("smoke", "default", "paper"),
        help="smoke: seconds; default: the organism on a CPU; paper: the paper's 7B settings with LoRA",
    )
    _add_common_output(parser, default_run="organism")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the preset's epochs)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--lora", action="store_true", help="train LoRA adapters (merged before saving)"
    )
    parser.add_argument("--lora-r", type=int, default=64)
    parser.add_argument("--lora-alpha", type=int, default=128)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument(
        "--no-resume", action="store_true", help="start over instead of resuming a partial run"
    )
    if regime == "sft":
        parser.add_argument(
            "--target", choices=("letter", "answer"), help="default: letter (the paper)"
        )
    if regime == "grpo":
        parser.add_argument(
            "--reward", choices=("joint", "agreement"), help="default: joint (the paper)"
        )
        parser.add_argument("--num-generations", type=int, help="rollouts per fact (paper: 8)")
        parser.add_argument(
            "--all-correct-bonus",
            type=float,
            help="bonus when every language is correct (paper: 1)",
        )
        parser.add_argument(
            "--prompt-format",
            choices=("paper", "question"),
            help="paper: options + 'Return only the full answer text'; question: the organism's 'Question: ...\\nAnswer:'",
        )


# ------------------------------------------------------------------------------- group
# Each entry adds one `interp train <regime>` subcommand.
REGIMES: list[Callable] = [
    add_organism_command,
    *(
        lambda commands, r=regime: _add_regime_command(commands, r)
        for regime in ("cpt", "sft", "grpo")
    ),
]


def add_train_commands(subparsers) -> argparse.ArgumentParser:
    """Add the `train` command group (one subcommand per entry of REGIMES) to `subparsers`."""
    train = subparsers.add_parser(
        "train",
        help="train models: the organism, and fine-tuning regimes",
        description="Train the model organism or fine-tune a checkpoint.",
    )
    commands = train.add_subparsers(dest="train_command", metavar="REGIME")
    for add in REGIMES:
        add(commands)
    return train
