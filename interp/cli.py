"""The `interp` command: a thin layer over the Python API.

Every subcommand imports what it needs when it runs, so `interp --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from interp.errors import InterpError
from interp.facts.loading import DEFAULT_WORLD


# --------------------------------------------------------------------------------- facts
def _facts_build(args) -> int:
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
    if out.exists() and not args.overwrite:
        from interp.facts.polyfact import read_manifest

        previous = read_manifest(out) or {}  # a damaged manifest is an error naming it
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
        present = sorted({fact.split for fact in facts.facts if fact.split})
        facts = facts.split(args.split)
        if not len(facts):
            raise InterpError(
                f"{args.path}: no facts in split {args.split!r} (splits here: "
                f"{', '.join(present) or 'none'}). Fix: --split one of those, or no --split"
            )
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


# --------------------------------------------------------------------------------- eval
def _eval(args) -> int:
    from interp.evaluate.run import evaluate_checkpoint, summary_table, write_results
    from interp.facts import load_facts
    from interp.models.loading import check_checkpoint, check_device

    # every input checked before the first checkpoint is scored (and cached)
    check_device(args.device, allow_auto=True)
    for checkpoint in args.checkpoints:
        check_checkpoint(checkpoint)
    facts = load_facts(args.facts)
    names = [Path(c).name for c in args.checkpoints]
    if len(set(names)) < len(names):  # base/base from two runs: use the fuller path
        names = [str(Path(c)) for c in args.checkpoints]
    results = {}
    for name, checkpoint in zip(names, args.checkpoints, strict=True):
        results[name] = evaluate_checkpoint(
            checkpoint,
            facts,
            split=args.split,
            languages=args.languages,
            batch_size=args.batch_size,
            n_boot=args.n_boot,
            device=args.device,
            cache=not args.no_cache,
        )
        cached = " (cached)" if results[name].from_cache else ""
        print(f"{checkpoint}: {len(results[name].scores)} items scored{cached}")
    print()
    print(summary_table({n: r.metrics for n, r in results.items()}).to_string())
    if args.out:
        print(
            f"\nwrote {write_results(results, args.out)}/metrics.parquet (tidy: metric, language, other, value, ci_low, ci_high, n, checkpoint)"
        )
    return 0


# --------------------------------------------------------------------------------- score / ablate
def _analysis_from_args(args):
    from interp.analysis import analyze

    corpus, heldout, config = _corpus_and_config(args)
    return analyze(
        args.checkpoint,
        corpus,
        heldout=heldout,
        config=config,
        out_dir=args.out,
        languages=args.languages,
    )


def _corpus_and_config(args):
    """(corpus, held-out corpus or None, AnalysisConfig) from the shared corpus options."""
    from interp import corpora
    from interp.analysis import AnalysisConfig
    from interp.facts import load_facts

    heldout = None
    if args.corpus == "facts":
        facts = load_facts(args.facts)
        corpus = corpora.from_facts(facts, split="train")
        heldout = corpora.from_facts(facts, split="test")
    elif args.corpus.startswith("datasets:"):
        corpus = corpora.from_datasets(
            args.corpus.removeprefix("datasets:"), split=args.corpus_split
        )
    else:
        corpus = corpora.from_files(args.corpus)
    if args.heldout:
        heldout = corpora.from_files(args.heldout)
    if args.languages is None:
        from interp.languages import TRAINED

        args.languages = [code for code in TRAINED if code in corpus.texts] or list(corpus.texts)
    from interp.config import field_changes

    config = AnalysisConfig(**field_changes(args, args.analysis_flags))
    if args.languages:
        corpus = corpus.subset(args.languages)
        heldout = heldout.subset(args.languages) if heldout is not None else None
    return corpus, heldout, config


# ------------------------------------------------------------------------------ compare
def _compare(args) -> int:
    from interp.comparison import compare_checkpoints, parse_entries
    from interp.facts import load_facts

    entries = parse_entries(args.entries)
    if args.baseline is not None and args.baseline not in entries:
        raise InterpError(
            f"--baseline {args.baseline!r} is not among the names {list(entries)}. Fix: "
            "--baseline one of these"
        )
    corpus, heldout, config = _corpus_and_config(args)
    out = Path(args.out or Path("comparisons") / "-vs-".join(entries))
    report = compare_checkpoints(
        entries,
        load_facts(args.facts),
        out=out,
        baseline=args.baseline,
        corpus=corpus,
        heldout=heldout,
        analysis_config=config,
        split=args.split,
        n_boot=args.eval_n_boot,
        batch_size=args.eval_batch_size,
        device=args.device,
        progress=not args.quiet,
        representation_config=_representation_config(args) if args.representations else None,
    )
    _print_report(report)
    return 0


def _representation_config(args):
    from interp.representations.run import RepresentationConfig

    shared = {k: getattr(args, k) for k in ("seed", "device", "n_boot")}
    return RepresentationConfig(**{k: v for k, v in shared.items() if v is not None})


def _report(args) -> int:
    from interp.comparison import redraw

    _print_report(redraw(args.folder))
    return 0


def _print_report(report) -> None:
    for text in report.warnings:
        print(f"warning: {text}")
    skipped = "".join(f"\n  skipped {name}: {why}" for name, why in report.skipped.items())
    print(
        f"{len(report.figures)} figures and {len(report.tables)} tables in {report.out_dir}/ "
        f"(index with a one-line reading of each: {report.index}){skipped}"
    )


def _score(args) -> int:
    import pandas as pd

    result = _analysis_from_args(args)
    where = "reloaded from" if result.from_cache else "wrote"
    tokens = result.provenance["tokens"]
    print(f"{where} {result.folder}")
    print(f"tokens per language: {' '.join(f'{c}={n}' for c, n in tokens.items())}\n")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("language-specific MLP neurons (95% bootstrap intervals over sequences):")
        print(result.summary().to_string(index=False))
        for name, table in result.permutation.items():
            print(f"\npermutation null ({name}, language labels shuffled across sequences):")
            print(table.round(3).to_string(index=False))
        if result.heads is not None:
            general = result.heads.general()
            heads = ", ".join(f"L{r.layer}H{r.head}" for r in general.itertuples()) or "none"
            print(
                f"\ntop {result.heads.k} heads per language (LAHIS); language-general heads: {heads}"
            )
            print("pairwise top-head overlap |top(a) & top(b)| / k:")
            print(result.heads.overlap().round(2).to_string())
    return 0


def _represent(args) -> int:
    import pandas as pd

    from interp.config import field_changes
    from interp.facts import load_facts
    from interp.representations.run import RepresentationConfig, represent

    analysis = _analysis_from_args(args)
    changes = field_changes(args, args.representation_flags)
    # seed, device and batch size: the same flags as the analysis's
    shared = {k: getattr(args, k) for k in ("seed", "device", "batch_size", "n_boot")}
    shared["facts"] = args.n_facts
    config = RepresentationConfig(**changes, **{k: v for k, v in shared.items() if v is not None})
    result = represent(
        args.checkpoint,
        load_facts(args.facts),
        config=config,
        analysis=analysis,
        languages=args.languages,
    )
    where = "reloaded from" if result.from_cache else "wrote"
    print(f"{where} {result.folder}")
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        for name, table in result.tables.items():
            print(f"\n{name} ({len(table)} rows; {result.folder / (name + '.parquet')}):")
            print(table.head(8).round(3).to_string(index=False))
    for name, why in result.provenance.get("skipped", {}).items():
        print(f"\nskipped {name}: {why}")
    return 0


def _ablate(args) -> int:
    result = _analysis_from_args(args)
    if args.units not in result.ablation:
        raise InterpError(
            f"no {args.units} ablation in {result.folder}. Fix: give held-out text (--heldout, or the "
            "default facts corpus) and, for heads, --lahis-samples > 0"
        )
    table = result.ablation[args.units]
    selected = table[table.control == "selected"]
    matrix = selected.pivot_table(index="masked", columns="language", values="loss_delta")
    print(
        f"loss increase when each language's {args.units} are ablated (rows) measured per language (columns):"
    )
    print(matrix.reindex(index=result.languages, columns=result.languages).round(4).to_string())
    random = table[table.control != "selected"]
    if len(random):
        control = random.pivot_table(index="masked", columns="language", values="loss_delta")
        print("\nrandom sets of the same per-layer size (control):")
        print(
            control.reindex(index=result.languages, columns=result.languages).round(4).to_string()
        )
    return 0


def _add_analysis_arguments(sub) -> None:
    sub.add_argument("checkpoint", help="HF model folder (or hub id)")
    _add_corpus_options(sub)
    sub.add_argument("--out", help="analysis folder (default: CHECKPOINT/analysis/<fingerprint>)")


def _add_corpus_options(sub) -> None:
    """The corpus and analysis settings `score`, `ablate` and `compare` share."""
    sub.add_argument(
        "--corpus",
        default="facts",
        help="'facts' (parallel statements and questions of the fact set, default), a folder with "
        "<code>.txt / <code>.jsonl / <code>/ per language, or datasets:NAME_OR_PATH",
    )
    sub.add_argument(
        "--corpus-split", default="train", help="split of a datasets corpus (default: train)"
    )
    sub.add_argument(
        "--heldout",
        help="folder of held-out text per language for ablations (default with facts: test split)",
    )
    sub.add_argument(
        "--facts",
        help="PolyFact path for --corpus facts (default: data/world, else the built-in world)",
    )
    sub.add_argument(
        "--languages", nargs="+", metavar="CODE", help="default: the trained languages present"
    )
    from interp.analysis import AnalysisConfig
    from interp.config import add_field_flags

    settings = sub.add_argument_group(
        "analysis settings (AnalysisConfig fields; the paper: --seq-len 1024 --token-budget "
        "2000000 --lahis-samples 500)"
    )
    names = add_field_flags(settings, AnalysisConfig)
    sub.set_defaults(analysis_flags=names)


# --------------------------------------------------------------------------------- pipeline
def _settings(assignments: list[str] | None) -> dict[str, Any]:
    """`--set SECTION.FIELD=VALUE` (or `--set KEY=VALUE`) as config overrides; VALUE is read
    as JSON where it parses (numbers, true, lists), else as a string. The config checks the
    names and types as it checks a file."""
    import json

    out: dict[str, Any] = {}
    for text in assignments or ():
        name, sep, raw = text.partition("=")
        if not sep or not name.strip():
            raise InterpError(
                f"--set {text!r}: expected SECTION.FIELD=VALUE. Fix: e.g. --set organism.steps=200"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        section, dot, key = name.strip().partition(".")
        if dot:
            out.setdefault(section, {})
            if not isinstance(out[section], dict):
                raise InterpError(f"--set {text!r}: {section!r} was also set as a value")
            out[section][key] = value
        else:
            out[section] = value
    return out


def _pipeline(args) -> int:
    import json

    from interp.config import load_config
    from interp.pipeline import dry_run, run_pipeline

    config = load_config(args.preset, args.config, run=args.run, **_settings(args.set))
    if args.dry_run:
        print(json.dumps(dry_run(config), indent=2, default=str))
        print(f"\nplan for run {config.run!r} is valid (nothing was trained or loaded)")
        return 0
    result = run_pipeline(config, progress=not args.quiet)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nsummary (test facts; accuracy and consistency in %, 95% bootstrap intervals):")
        print(result.summary.to_string())
    index = Path(config.figures_dir) / config.run / "index.md"
    if index.is_file():
        print(f"\nfigures: {index.parent}/  (index with a one-line reading of each: {index})")
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
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the Python traceback of an unexpected error (or set {DEBUG_ENV}=1)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (
        _add_facts_commands,
        _add_train_commands,
        _add_eval_command,
        _add_score_commands,
        _add_compare_commands,
        _add_pipeline_command,
    ):
        add(commands)
    return parser


def _add_facts_commands(commands) -> None:
    """`interp facts build | show | validate`."""
    facts = commands.add_parser("facts", help="build, show and validate parallel fact sets")
    facts_cmds = facts.add_subparsers(dest="facts_command", metavar="ACTION")

    build = facts_cmds.add_parser(
        "build",
        help="build the offline world (CLDR + GeoNames facts in 22 languages)",
        description="Build real parallel facts offline and write them in the PolyFact format.",
    )
    build.add_argument(
        "--out", default=str(DEFAULT_WORLD), help=f"output folder (default: {DEFAULT_WORLD})"
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
            default=str(DEFAULT_WORLD) if name == "show" else None,
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


def _add_train_commands(commands) -> None:
    """`interp train organism | REGIME` (interp.train.cli, from the registry)."""
    from interp.train.cli import add_train_commands

    add_train_commands(commands)


def _add_eval_command(commands) -> None:
    """`interp eval`."""
    evaluate = commands.add_parser(
        "eval",
        help="recall and cross-lingual consistency of one or more checkpoints",
        description=(
            "Score the four options of every question by log-likelihood after "
            "'Question: {q}\\nAnswer:' (per-token mean, the paper's protocol); report accuracy per "
            "language group, total consistency and mean RankC with 95% bootstrap intervals over facts."
        ),
    )
    evaluate.add_argument(
        "checkpoints", nargs="+", metavar="CHECKPOINT", help="HF model folders (or hub ids)"
    )
    evaluate.add_argument(
        "--facts", help="PolyFact path (default: data/world, else the built-in world)"
    )
    evaluate.add_argument(
        "--split", default="test", choices=("train", "validation", "test"), help="default: test"
    )
    evaluate.add_argument(
        "--languages", nargs="+", metavar="CODE", help="default: every language of the facts"
    )
    evaluate.add_argument(
        "--batch-size", type=int, default=16, help="questions per batch (default: 16)"
    )
    evaluate.add_argument(
        "--n-boot", type=int, default=1000, help="bootstrap resamples (default: 1000; 0 = none)"
    )
    evaluate.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    evaluate.add_argument("--out", help="also write all metrics to OUT/metrics.parquet and .csv")
    evaluate.add_argument(
        "--no-cache", action="store_true", help="score again even if cached results exist"
    )
    evaluate.set_defaults(func=_eval)


def _add_score_commands(commands) -> None:
    """`interp score` and `interp ablate`."""
    score = commands.add_parser(
        "score",
        help="language specialization of MLP neurons (LAPE, absolute) and attention heads (LAHIS)",
        description=(
            "Run the checkpoint over a per-language corpus, count neuron firing per language, score "
            "specific neurons (LAPE paper and Tang variants, an absolute criterion) with bootstrap "
            "intervals and a permutation null, rank heads with LAHIS, and ablate. Results are saved "
            "(safetensors, parquet, provenance) and reloaded when nothing changed."
        ),
    )
    _add_analysis_arguments(score)
    score.set_defaults(func=_score)

    ablate = commands.add_parser(
        "ablate",
        help="the dark diagonal: per-language loss when each language's neurons or heads are zeroed",
        description="Zero each language's specific neurons or top heads in turn and measure held-out loss in every language.",
    )
    _add_analysis_arguments(ablate)
    ablate.add_argument(
        "--units", default="neurons", choices=("neurons", "heads"), help="default: neurons"
    )
    ablate.set_defaults(func=_ablate)

    represent = commands.add_parser(
        "represent",
        help="alignment with English per layer, logit lens, patching, steering, fallback",
        description=(
            "The representation-level analyses of one checkpoint on held-out facts: "
            "cross-lingual retrieval and CKA per layer, the logit lens, English residuals "
            "patched into each language's prompt, steering with language neurons and their "
            "fallback curve (these two from the checkpoint's `interp score` analysis). Saved "
            "under CHECKPOINT/representations/<key>/ and reloaded when nothing changed."
        ),
    )
    _add_analysis_arguments(represent)
    from interp.config import add_field_flags
    from interp.representations.run import RepresentationConfig

    group = represent.add_argument_group("representation settings (RepresentationConfig fields)")
    # (seed, device, batch size and resamples: the analysis flags of the same names)
    names = add_field_flags(
        group, RepresentationConfig, skip=("facts", "batch_size", "seed", "device", "n_boot")
    )
    group.add_argument(
        "--n-facts",
        type=int,
        help=f"held-out facts sampled (default: {RepresentationConfig().facts})",
    )
    represent.set_defaults(func=_represent, representation_flags=names)


def _add_compare_commands(commands) -> None:
    """`interp compare` and `interp report`."""
    compare = commands.add_parser(
        "compare",
        help="evaluate, analyse and compare any checkpoints: every comparison figure and table",
        description=(
            "Evaluate and analyse each checkpoint (cached with it; a hub model's analysis under "
            "OUT/inputs/), then draw every comparison figure and table with index.md into OUT. "
            "`interp report OUT` redraws them from what OUT saved."
        ),
    )
    compare.add_argument(
        "entries",
        nargs="+",
        metavar="NAME=PATH",
        help="checkpoints to compare: a name, '=', a model folder or hub id",
    )
    compare.add_argument("--baseline", help="the reference checkpoint (default: the first)")
    compare.add_argument(
        "--split", default="test", choices=("train", "validation", "test"), help="evaluated split"
    )
    compare.add_argument(
        "--eval-n-boot", type=int, default=1000, help="evaluation bootstrap resamples (1000)"
    )
    compare.add_argument(
        "--eval-batch-size", type=int, default=16, help="questions per batch (default: 16)"
    )
    compare.add_argument("--out", help="report folder (default: comparisons/NAME-vs-NAME...)")
    compare.add_argument("--quiet", action="store_true", help="no progress bars")
    compare.add_argument(
        "--representations",
        action="store_true",
        help="also alignment, logit lens, patching, steering and fallback (figures 14-18)",
    )
    _add_corpus_options(compare)
    compare.set_defaults(func=_compare)

    report = commands.add_parser(
        "report",
        help="redraw a comparison's figures and tables from what it saved (nothing recomputed)",
    )
    report.add_argument("folder", help="the --out folder of `interp compare`")
    report.set_defaults(func=_report)


def _add_pipeline_command(commands) -> None:
    """`interp pipeline`."""
    pipeline = commands.add_parser(
        "pipeline",
        help="the whole study: facts, base, CPT/SFT/GRPO/CPT+GRPO, evaluation, scores, figures",
        description=(
            "Run every stage from facts to figures. Stages are cached by content hash (a re-run "
            "with nothing changed only reads results) and an interrupted run resumes at the first "
            "unfinished stage. Presets: smoke (seconds, for tests), default (the organism on a "
            "laptop CPU), paper (Qwen2.5-7B, LoRA; use --dry-run to validate the plan here)."
        ),
    )
    from interp.config import PRESETS

    pipeline.add_argument("--preset", default="default", choices=PRESETS, help="default: default")
    pipeline.add_argument(
        "--config", help="JSON or TOML file of overrides (unknown keys are an error)"
    )
    pipeline.add_argument(
        "--run",
        help="run name: checkpoints/RUN, figures/RUN, runs/RUN (default: the preset's name)",
    )
    pipeline.add_argument(
        "--set",
        action="append",
        metavar="SECTION.FIELD=VALUE",
        help="override one setting, as in a config file (repeatable; VALUE as JSON where it "
        "parses): e.g. --set organism.steps=200 --set grpo.learning_rate=1e-4 --set "
        "regimes='[\"sft\"]'. Sections: world, organism, evaluation, analysis and one per "
        "regime",
    )
    pipeline.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the plan without training or loading weights",
    )
    pipeline.add_argument("--quiet", action="store_true", help="no progress bars")
    pipeline.set_defaults(func=_pipeline)


DEBUG_ENV = "INTERP_DEBUG"
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure a user can cause ends in one line on stderr, exit 1
    (argparse: 2), no traceback; Ctrl-C says what is kept; an internal error says so and how
    to see its traceback (`--debug` or INTERP_DEBUG=1)."""
    import os

    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
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
        if debug:
            raise
        print(f"interp: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\ninterp: interrupted. {_interrupt_note(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as err:  # a path, a permission, a full disk: the user's to fix
        if debug:
            raise
        where = err.filename or "a file"
        print(
            f"interp: error: {where}: {err.strerror or err}. Fix: check that the path exists, "
            "is of the right kind and is writable, and that the disk has space",
            file=sys.stderr,
        )
        return 1
    except Exception as err:
        if debug:
            raise
        text = str(err).splitlines()[0][:300] if str(err) else ""
        print(
            f"interp: internal error: {type(err).__name__}: {text} (a bug in interp, not in "
            f"your input; rerun with --debug or {DEBUG_ENV}=1 for the traceback, and report it)",
            file=sys.stderr,
        )
        return 1


def _interrupt_note(args) -> str:
    """What an interrupted command kept, and how to go on."""
    if getattr(args, "command", None) == "pipeline":
        import json

        from interp.config import load_config

        try:
            config = load_config(args.preset, args.config, run=args.run, **_settings(args.set))
            state = Path(config.runs_dir) / config.run / "state.json"
            done = list(json.loads(state.read_text(encoding="utf-8"))) if state.is_file() else []
        except (InterpError, OSError, ValueError):
            done = []
        kept = f"Finished stages kept: {', '.join(done)}" if done else "No stage had finished"
        return (
            f"{kept}; a training stage keeps its last saved step. Nothing half-written was "
            "left. Rerun the same command to resume."
        )
    if getattr(args, "command", None) == "train":
        return (
            "The last saved training state is kept (saved every few steps and now). Rerun the "
            "same command to resume, or add --no-resume to start over."
        )
    return "Nothing half-written was left (results are written whole or not at all)."


if __name__ == "__main__":
    sys.exit(main())
