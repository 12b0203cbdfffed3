"""The whole study in one call: facts -> base -> CPT / SFT / GRPO / CPT+GRPO -> evaluation ->
specialization scores -> comparison figures and a summary.

    from interp.config import load_config
    from interp.pipeline import run_pipeline
    result = run_pipeline(load_config("default"))
    result.summary            # one row per checkpoint

Every stage has a key: a hash of its settings and of the keys of the stages it reads. A stage
whose key matches the one recorded in `runs/<run>/state.json` (and whose output is there) is
skipped, so a re-run with nothing changed only reads results back. A stage is recorded only
after its output has landed (outputs are written atomically), so an interrupted pipeline
resumes at the first unfinished stage, and the trainers resume from their last saved step.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.config import PipelineConfig
from interp.io import atomic_write_json, fingerprint
from interp.languages import TRAINED
from interp.train.registry import get_regime


def stages(config: PipelineConfig) -> tuple[str, ...]:
    """The stages of a run, in order: its regimes between the base and the evaluation."""
    return ("facts", "base", *config.regimes, "evaluate", "score", "represent", "figures")


@dataclass
class PipelineResult:
    run: str
    checkpoints: dict[str, Path] = field(default_factory=dict)
    evaluations: dict[str, Any] = field(default_factory=dict)  # name -> metrics table
    scores: dict[str, Any] = field(default_factory=dict)  # name -> scores table
    analyses: dict[str, Any] = field(default_factory=dict)  # name -> Analysis
    representations: dict[str, Any] = field(default_factory=dict)  # name -> Representations
    report: Any = None
    summary: Any = None  # pandas DataFrame
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds this run
    skipped: list[str] = field(default_factory=list)  # stages reused from an earlier run


class _State:
    """`runs/<run>/state.json`: the key, output and output files of each finished stage.

    A stage counts as done only when its key matches and every file it recorded is still
    there with the size it had: a deleted or truncated output reruns the stage."""

    def __init__(self, path: Path):
        from interp.errors import DataError

        self.path = path
        try:
            self.stages = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (ValueError, UnicodeDecodeError):
            self.stages = None
        if not isinstance(self.stages, dict):
            raise DataError(
                f"{path}: not a pipeline state file (damaged). Fix: delete it; the next run "
                "redoes the stages whose outputs it cannot confirm"
            )

    def done(self, stage: str, key: str, output: Path | None = None) -> bool:
        entry = self.stages.get(stage)
        if not isinstance(entry, dict) or entry.get("key") != key:
            return False
        if output is None:
            return True
        if not Path(entry.get("output") or output).exists():
            return False
        recorded = entry.get("files")
        if recorded is None:  # written before file lists were kept: trust the folder
            return True
        present = _listing(output)
        return all(present.get(name) == size for name, size in recorded.items())

    def record(self, stage: str, key: str, output: Path | None, seconds: float) -> None:
        self.stages[stage] = {
            "key": key,
            "output": str(output) if output else None,
            "files": _listing(output) if output else None,
            "seconds": round(seconds, 2),
        }
        atomic_write_json(self.path, self.stages)


def _listing(path: Path) -> dict[str, int]:
    """Relative name -> size of every file at or below `path`."""
    path = Path(path)
    if path.is_file():
        return {path.name: path.stat().st_size}
    if not path.is_dir():
        return {}
    return {
        str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()
    }


def _say(text: str) -> None:
    print(text, flush=True)


def plan(config: PipelineConfig) -> list[dict[str, Any]]:
    """What each stage would run, with its settings, without loading any model."""
    from dataclasses import asdict

    stages = [
        {
            "stage": "facts",
            "source": config.facts or "offline world",
            "settings": asdict(config.world),
        }
    ]
    if config.base_model:
        stages.append({"stage": "base", "model": config.base_model, "training": "none (given)"})
    else:
        stages.append(
            {
                "stage": "base",
                "training": "organism",
                "settings": config.organism.to_dict(),
            }
        )
    for name in config.regimes:
        regime = get_regime(name)
        stages.append(
            {
                "stage": name,
                "regime": regime.method().name,
                "parent": regime.parent,
                "help": regime.help,
                "settings": config.regime_settings(name).to_dict(),
            }
        )
    stages.append({"stage": "evaluate", "settings": asdict(config.evaluation)})
    stages.append({"stage": "score", "settings": config.analysis.identity()})
    stages.append({"stage": "represent", "settings": config.representations.identity()})
    stages.append({"stage": "figures", "out": str(Path(config.figures_dir) / config.run)})
    return stages


def dry_run(config: PipelineConfig) -> dict[str, Any]:
    """Validate the whole plan here, without weights: configs, data, LoRA targets against the
    model's shape, the accelerate file, GRPO batch layout."""
    from interp.facts import load_facts
    from interp.train.regimes import dry_run as regime_dry_run

    stages = plan(config)  # every stage's settings first: cheap, and no data read yet
    facts = load_facts(config.facts) if config.facts else _build_world(config)
    model = config.base_model or "organism"
    report: dict[str, Any] = {
        "run": config.run,
        "facts": len(facts),
        "stages": stages,
        "checks": {},
    }
    for name in config.regimes:
        regime = get_regime(name)
        settings = config.regime_settings(name)
        check = regime.plan_function()
        if check is not None:
            report["checks"][name] = check(facts, settings)
        elif config.base_model:
            report["checks"][name] = regime_dry_run(
                regime.method().name,
                config.base_model,
                facts,
                settings,
                accelerate_config=config.accelerate_config_path(),
            )
        else:
            report["checks"][name] = {"model": model, "ok": True}
    return report


def _build_world(config: PipelineConfig):
    from interp.facts import build_world

    facts, _ = build_world(config.world)
    return facts


def run_pipeline(config: PipelineConfig, *, progress: bool = True) -> PipelineResult:
    """Run (or reuse) every stage; see the module docstring."""
    plan(config)  # every stage's settings checked before any work (as --dry-run does)
    _check_devices(config)  # a device this machine lacks: said now, not after training
    run = _Run(config, progress)
    started = time.perf_counter()
    facts = run.facts()
    run.base(facts)
    for name in config.regimes:
        run.regime(name, facts)
    evaluation_summary = run.evaluate(facts)
    run.score(facts)
    run.represent(facts)
    run.figures(facts)
    result = run.result
    for text in result.report.warnings if result.report is not None else ():
        _say(f"warning: {text}")  # also at the top of index.md
    result.summary = _summary(evaluation_summary, result)
    atomic_write_json(run.dir / "summary.json", result.summary.reset_index().to_dict("records"))
    _say(f"\npipeline {config.run}: {time.perf_counter() - started:.1f} s")
    return result


class _Run:
    """One pipeline run: a method per stage, each keyed by its settings and its inputs' keys
    (`keys`), skipped when `runs/<run>/state.json` holds that key and its output."""

    def __init__(self, config: PipelineConfig, progress: bool) -> None:
        self.config = config
        self.progress = progress
        self.dir = Path(config.runs_dir) / config.run
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.dir / "config.json", config.to_dict())
        self.state = _State(self.dir / "state.json")
        self.result = PipelineResult(run=config.run)
        self.keys: dict[str, str] = {}
        self.checkpoints_root = Path(config.checkpoints_dir) / config.run

    def stage(self, name: str, key: str, output: Path | None, work) -> Any:
        """`work(cached=...)`: reads the output back when cached, else makes it."""
        self.keys[name] = key
        if self.state.done(name, key, output):
            self.result.skipped.append(name)
            _say(f"[{name}] up to date ({key})")
            return work(cached=True)
        _say(f"[{name}] running ...")
        t0 = time.perf_counter()
        value = work(cached=False)
        seconds = time.perf_counter() - t0
        self.state.record(name, key, output, seconds)
        self.result.timings[name] = seconds
        _say(f"[{name}] done in {seconds:.1f} s")
        return value

    def checkpoint_keys(self) -> dict[str, str]:
        return {n: self.keys[n] for n in self.result.checkpoints}

    # ---- the stages ------------------------------------------------------------------------

    def facts(self):
        from interp.facts import read_polyfact, write_polyfact
        from interp.io import file_fingerprint

        config, facts_dir = self.config, self.dir / "facts"
        if config.facts:
            key = fingerprint("facts", file_fingerprint(config.facts))
        else:
            from interp.facts.world import _source_versions

            key = fingerprint("world", config.overrides.get("world", {}), _source_versions())

        def make(cached):
            if not cached:
                facts = read_polyfact(config.facts) if config.facts else _build_world(config)
                write_polyfact(facts, facts_dir, overwrite=True)
            return read_polyfact(facts_dir)

        return self.stage("facts", key, facts_dir, make)

    def base(self, facts) -> None:
        from interp.io import checkpoint_fingerprint

        config = self.config
        if config.base_model:
            base = Path(config.base_model)
            self.keys["base"] = fingerprint("given", checkpoint_fingerprint(base))
            self.result.checkpoints["base"] = base
            return
        from interp.train.organism import train_organism

        base = self.checkpoints_root / "base"

        def make(cached):
            if not cached:
                train_organism(
                    facts, base, config.organism, overwrite=base.exists(), progress=self.progress
                )
            return base

        key = fingerprint("base", self.keys["facts"], config.organism.to_dict())
        self.result.checkpoints["base"] = self.stage("base", key, base, make)

    def regime(self, name: str, facts) -> None:
        regime = get_regime(name)
        settings = self.config.regime_settings(name)
        parent = self.result.checkpoints[regime.parent]  # the config checked it comes first
        out = self.checkpoints_root / name
        key = fingerprint(name, self.keys[regime.parent], self.keys["facts"], settings.to_dict())

        def make(cached):
            if not cached:
                _train(regime.method().name, parent, facts, out, settings)
            return out

        self.result.checkpoints[name] = self.stage(name, key, out, make)

    def evaluate(self, facts):
        """Each checkpoint caches its own results; this stage gathers them."""
        from interp.evaluate.run import evaluate_checkpoint, summary_table

        evaluation, result = self.config.evaluation, self.result
        key = fingerprint("evaluate", self.checkpoint_keys(), _evaluation_identity(evaluation))

        def make(cached):
            for name, checkpoint in result.checkpoints.items():
                out = evaluate_checkpoint(
                    checkpoint,
                    facts,
                    split=evaluation.split,
                    languages=evaluation.languages,
                    batch_size=evaluation.batch_size,
                    n_boot=evaluation.n_boot,
                    progress=self.progress and not cached,
                )
                result.evaluations[name] = out.metrics
                result.scores[name] = out.scores
            table = summary_table(result.evaluations)
            atomic_write_json(
                self.dir / "evaluation.json", {"summary": table.reset_index().to_dict("records")}
            )
            return table

        return self.stage("evaluate", key, self.dir / "evaluation.json", make)

    def score(self, facts) -> None:
        from interp import corpora
        from interp.analysis import analyze

        analysis_config, result = self.config.analysis, self.result
        key = fingerprint("score", self.checkpoint_keys(), analysis_config.identity())
        # the paper analyses its 12 trained languages; unseen ones have too little text to rank
        analysed = [code for code in TRAINED if code in facts.languages] or list(facts.languages)
        corpus = corpora.from_facts(facts, split="train", languages=analysed)
        heldout = corpora.from_facts(facts, split="test", languages=analysed)

        def make(cached):
            for name, checkpoint in result.checkpoints.items():
                result.analyses[name] = analyze(
                    checkpoint,
                    corpus,
                    heldout=heldout,
                    config=analysis_config,
                    progress=self.progress and not cached,
                )
            return result.analyses

        self.stage("score", key, None, make)

    def represent(self, facts) -> None:
        """Alignment, logit lens, patching, steering, fallback per checkpoint (each caches
        its own folder; this stage gathers them)."""
        from interp import comparison
        from interp.representations.run import represent

        settings, result = self.config.representations, self.result
        key = fingerprint(
            "represent", self.keys["score"], self.checkpoint_keys(), settings.identity()
        )
        exposure = comparison.heldout_exposure(
            result.checkpoints.get("base"), facts, settings.split
        )

        def make(cached):
            for name, checkpoint in result.checkpoints.items():
                result.representations[name] = represent(
                    checkpoint,
                    facts,
                    config=settings,
                    analysis=result.analyses[name],
                    exposure=exposure,
                    progress=self.progress and not cached,
                )
            return result.representations

        self.stage("represent", key, None, make)

    def figures(self, facts) -> None:
        config, result = self.config, self.result
        figures_dir = Path(config.figures_dir) / config.run
        key = fingerprint(
            "figures-v9",
            self.keys["evaluate"],
            self.keys["score"],
            self.keys["represent"],
            _report_version(),
            str(_reference_dir()),
        )

        def make(cached):
            if cached:  # the figures and index.md are on disk already
                return None
            from interp.io import atomic_directory

            # the whole folder lands in one rename: never some figures of this run beside others
            with atomic_directory(figures_dir, overwrite=True) as tmp:
                report = self.draw(tmp, facts)
            return report.moved_to(figures_dir)

        result.report = self.stage("figures", key, figures_dir, make)

    def draw(self, out: Path, facts):
        """The same code as `interp compare`: save what the report reads, draw it from that
        (so `interp report FIGURES_DIR` redraws it byte for byte)."""
        from interp import comparison
        from interp.report import write_reference_report

        result, split = self.result, self.config.evaluation.split
        inputs = comparison.ComparisonInputs(
            baseline="base",
            analyses=result.analyses,
            evaluations=result.evaluations,
            scores=result.scores,
            exposure=comparison.heldout_exposure(result.checkpoints.get("base"), facts, split),
            curves=comparison.learning_curves(result.checkpoints),
            warnings=comparison.compute_warnings(result.checkpoints),
            n_boot=self.config.evaluation.n_boot,
            representations=result.representations,
        )
        comparison.save_inputs(
            inputs,
            out,
            sources={name: str(path) for name, path in result.checkpoints.items()},
            analysis_folders={name: a.folder for name, a in result.analyses.items()},
        )
        report = comparison.redraw(out)
        reference = _reference_dir()
        if reference is not None:  # the paper's 7B results through the same figures
            write_reference_report(out / "paper-7b", reference)
        return report


def _check_devices(config: PipelineConfig) -> None:
    from interp.models.loading import check_device

    for name in config.regimes:
        check_device(config.regime_settings(name).device, allow_auto=True)
    check_device(config.analysis.device, allow_auto=True)
    check_device(config.representations.device, allow_auto=True)


def _evaluation_identity(evaluation) -> dict[str, Any]:
    """The evaluation settings that change results (the batch size does not)."""
    from dataclasses import asdict

    values = asdict(evaluation)
    values.pop("batch_size")
    return values


def _reference_dir():
    """The paper's published results beside the checkout (../shared/reference), if there."""
    from interp.errors import DataError
    from interp.specialization.reference import find_reference_dir

    try:
        return find_reference_dir()
    except DataError:
        return None


def _report_version() -> str:
    from interp import __version__

    return __version__


def _train(regime: str, parent: Path, facts, out: Path, settings) -> Path:
    """Train the registered regime `regime` (cpt, sft, grpo, ...) from `parent` into `out`."""
    train = get_regime(regime).train_function()
    return train(parent, facts, out, settings, overwrite=out.exists())


def _summary(evaluation_summary, result: PipelineResult):
    """Recall and consistency per checkpoint, with specialization counts beside them."""
    from interp.report.common import BUDGET_FREE

    table = evaluation_summary.copy()
    for name, analysis in result.analyses.items():
        for scorer in BUDGET_FREE:
            if scorer in analysis.neurons:
                table.loc[name, f"specific neurons ({scorer})"] = len(
                    analysis.neurons[scorer].table
                )
        if analysis.heads is not None:
            table.loc[name, "mean top-head overlap"] = round(analysis.heads.mean_overlap(), 3)
    return table
