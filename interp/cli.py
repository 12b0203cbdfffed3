"""The `interp` command: a thin layer over the Python API.

Every subcommand imports what it needs when it runs, so `interp --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from interp.errors import InterpError

DEFAULT_WORLD = "data/world"


# --------------------------------------------------------------------------------- facts
def _facts_build(args) -> int:
    import json

    from interp.facts import WorldConfig, build_world, read_polyfact, write_polyfact
    from interp.facts.summary import render
    from interp.io import fingerprint
    from interp.languages import ALL

    config = WorldConfig(
        seed=args.seed,
        languages=tuple(args.languages or ALL),
        **({"relations": tuple(args.relations)} if args.relations else {}),
    )
    key = fingerprint("world", config.__dict__, _package_version())
    out = Path(args.out)
    manifest = out / "manifest.json"
    if out.exists() and not args.overwrite:
        previous = json.loads(manifest.read_text()) if manifest.is_file() else {}
        if previous.get("config_fingerprint") == key:
            print(f"{out}: already built with the same settings (fingerprint {key}); reusing it.")
            print(render(read_polyfact(out)))
            return 0
        raise InterpError(
            f"{out} already exists and was built with other settings. "
            "Fix: pass --overwrite to replace it, or choose another --out"
        )
    start = time.perf_counter()
    facts, _report = build_world(config)
    facts.meta["config_fingerprint"] = key
    write_polyfact(facts, out, overwrite=args.overwrite)
    elapsed = time.perf_counter() - start
    print(render(facts))
    print(f"\nwrote {out}/ in {elapsed:.1f} s ({len(facts)} facts)")
    return 0


def _facts_show(args) -> int:
    from interp.facts import read_polyfact
    from interp.facts.summary import render

    facts = read_polyfact(args.path, languages=args.languages, skip_invalid=args.skip_invalid)
    if args.split:
        facts = facts.split(args.split)
    print(render(facts, example_fact=args.fact))
    return 0


def _facts_validate(args) -> int:
    from interp.facts import read_polyfact

    facts = read_polyfact(args.path, languages=args.languages, skip_invalid=args.skip_invalid)
    skipped = facts.meta["skipped"]
    print(
        f"{args.path}: {len(facts)} valid facts in {len(facts.languages)} languages "
        f"({' '.join(facts.languages)})"
    )
    print(skipped.summary())
    return 0


def _package_version() -> str:
    from interp import __version__

    return __version__


# --------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interp",
        description=(
            "Cross-lingual factual recall: build parallel facts, train CPT/SFT/GRPO, score how "
            "language-specific MLP neurons and attention heads are, compare checkpoints."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    facts = commands.add_parser("facts", help="build, show and validate parallel fact sets")
    facts_cmds = facts.add_subparsers(dest="facts_command", metavar="ACTION")

    build = facts_cmds.add_parser(
        "build",
        help="build the offline world (CLDR + GeoNames facts in 22 languages)",
        description="Build real parallel facts offline and write them in the PolyFact format.",
    )
    build.add_argument(
        "--out", default=DEFAULT_WORLD, help=f"output folder (default: {DEFAULT_WORLD})"
    )
    build.add_argument(
        "--seed", type=int, default=0, help="seed for distractors, shuffles, splits (default: 0)"
    )
    build.add_argument(
        "--languages", nargs="+", metavar="CODE", help="language codes (default: all 22)"
    )
    build.add_argument("--relations", nargs="+", metavar="NAME", help="relations (default: all)")
    build.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    build.set_defaults(func=_facts_build)

    for name, func, text in (
        ("show", _facts_show, "print a summary table of a fact set"),
        ("validate", _facts_validate, "check a PolyFact file or folder and report problems"),
    ):
        sub = facts_cmds.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument(
            "path",
            nargs="?" if name == "show" else None,
            default=DEFAULT_WORLD if name == "show" else None,
            help="PolyFact .json/.jsonl file, a folder of them, a `datasets` folder, or a hub id",
        )
        sub.add_argument("--languages", nargs="+", metavar="CODE", help="only these languages")
        sub.add_argument(
            "--skip-invalid",
            action="store_true",
            help="leave out bad items and incomplete facts, and report counts by reason",
        )
        if name == "show":
            sub.add_argument(
                "--split", choices=("train", "validation", "test"), help="only one split"
            )
            sub.add_argument(
                "--fact", metavar="FACT_ID", help="the fact to print in every language"
            )
        sub.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # a command group without an action: show its help
        target = parser
        if args.command:
            target = next(
                p
                for a in parser._subparsers._group_actions
                for n, p in a.choices.items()
                if n == args.command
            )
        target.print_help()
        return 2
    try:
        return func(args)
    except InterpError as err:
        print(f"interp: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
