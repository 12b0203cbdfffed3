"""The model organism: a tiny Qwen2-architecture model trained from scratch on the mixture.

It knows facts in English and often fails to state them in other languages, the situation
the PolyFact paper studies, and it trains on a laptop CPU in minutes:

    facts, _ = build_world()
    result = train_organism(facts, "checkpoints/organism/base", PRESETS["default"])
    result.evaluation.metrics          # test-split accuracy, consistency, RankC with intervals

`train_organism` trains a byte-level BPE tokenizer on the mixture, builds a random model,
runs a plain AdamW loop (warm-up then cosine decay) over packed sequences, evaluates the
test facts with the paper's option log-likelihood protocol, and writes an HF folder plus a
manifest. Trainer state (model, optimizer, scheduler, step, RNG) is saved to
`partial_dir(out_dir)` every `save_every` steps and on Ctrl-C; a rerun resumes from it.
The data order is a pure function of (seed, step), so a resumed run retraces the same batches.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.errors import ConfigError, DataError
from interp.facts.schema import FactSet
from interp.io import fingerprint, load_state_file, save_state_file
from interp.train.checkpoints import check_output, partial_dir, save_checkpoint
from interp.train.corpus import Mixture, MixtureConfig, build_mixture, pack

if TYPE_CHECKING:
    import pandas as pd

FAMILIES = ("qwen2", "olmo2")
STATE_FILE = "trainer_state.safetensors"
LEGACY_STATE_FILES = ("trainer_state.pt",)  # pickles: never loaded
TOKENIZER_DIR = "tokenizer"


# The default mixture, found by small experiments (listed in the README): non-English trained
# languages state half of the train facts (twice each) and half of the held-out facts, ask
# 60% of the train facts, and code-switched English statements put 4 other languages' subject
# names into train facts' English context. Against MixtureConfig() (30% / 10% stated, none of
# the held-out facts) at 1,200 steps it raised held-out items read in L from 58% to 64% and
# items read only in English from 37% to 41% (mean of the 11 languages), English 86%.
DEFAULT_MIXTURE = MixtureConfig(
    statement_share={"trained": 0.5, "low": 0.5, "unseen": 0.03},
    statement_repeats=2,
    heldout_statement_share={"trained": 0.5, "low": 0.5},
    qa_share={"english": 1.0, "trained": 0.6, "low": 0.6, "unseen": 0.0},
    codeswitch_languages=4,
)


@dataclass(frozen=True)
class OrganismConfig:
    """Everything that decides the organism: tokenizer, architecture, optimisation, mixture."""

    family: str = "qwen2"  # or "olmo2"
    vocab_size: int = 6000
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4  # 16 heads in all; head analyses take the top 4 (AnalysisConfig)
    num_kv_heads: int = 2
    intermediate_size: int = 512
    seq_len: int = 128
    batch_size: int = 16
    lr: float = 5e-3
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    steps: int = 1100  # length of the schedule
    time_budget_s: float | None = None  # stop earlier when the wall time runs out
    # "auto": bf16 autocast where the CPU (or GPU) has native bf16, else float32; see
    # interp.runtime. Results are deterministic for a given precision.
    precision: str = "auto"
    attn_implementation: str = "sdpa"
    threads: int | None = None  # torch threads (None: the idle cores, adapted under load)
    seed: int = 0
    save_every: int = 100  # steps between resumable states
    log_every: int = 10  # steps between loss records in the manifest
    eval_split: str | None = "test"  # None: no evaluation after training
    eval_batch_size: int = 64
    n_boot: int = 1000
    mixture: MixtureConfig = field(default_factory=lambda: DEFAULT_MIXTURE)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(
                f"OrganismConfig.family={self.family!r}. Fix: use one of {', '.join(FAMILIES)}"
            )
        positive = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads")
        positive += ("intermediate_size", "seq_len", "batch_size", "steps", "save_every")
        bad = [f"{n}={getattr(self, n)}" for n in positive if getattr(self, n) < 1]
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            bad.append(
                f"lr={self.lr}, warmup_steps={self.warmup_steps}, min_lr_ratio={self.min_lr_ratio}"
            )
        if bad:
            raise ConfigError(f"OrganismConfig: invalid {'; '.join(bad)}. Fix: use positive sizes")
        from interp.runtime import PRECISIONS

        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"OrganismConfig.precision={self.precision!r}. Fix: one of {', '.join(PRECISIONS)}"
            )
        if isinstance(self.mixture, dict):  # from a config file
            object.__setattr__(self, "mixture", MixtureConfig(**self.mixture))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **changes: Any) -> OrganismConfig:
        """A copy with some fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PRESETS: dict[str, OrganismConfig] = {
    # seconds: for tests and quick checks of the whole path
    "smoke": OrganismConfig(
        vocab_size=600,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        num_kv_heads=1,
        intermediate_size=64,
        seq_len=64,
        batch_size=8,
        lr=1e-2,
        steps=30,
        warmup_steps=5,
        save_every=10,
        eval_batch_size=128,
        n_boot=100,
    ),
    # about 7 minutes on 2 cores (float32, AVX2): English held-out facts known, the same facts known
    # in the languages that stated them, partial transfer to the others (see DEFAULT_MIXTURE)
    "default": OrganismConfig(),
}


def preset(name: str) -> OrganismConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown organism preset {name!r}. Fix: use one of {sorted(PRESETS)}")
    return PRESETS[name]


@dataclass
class OrganismEvaluation:
    """Test-split results: tidy metrics with intervals, accuracy per relation, label overlap."""

    scores: pd.DataFrame  # score_options output, one row per (fact, language)
    metrics: pd.DataFrame  # interp.evaluate.metrics.evaluate output
    by_relation: pd.DataFrame  # relation x language accuracy (long format)
    overlap: pd.DataFrame  # accuracy of items whose answer equals / differs from English's

    def summary(self) -> dict[str, Any]:
        """The headline numbers as plain JSON values (for the manifest)."""

        def rows(metric: str) -> dict[str, dict[str, float]]:
            part = self.metrics[self.metrics["metric"] == metric]
            return {
                r.language: {
                    "value": round(r.value, 4),
                    "ci_low": round(r.ci_low, 4),
                    "ci_high": round(r.ci_high, 4),
                    "n": int(r.n),
                }
                for r in part.itertuples()
            }

        relation = self.by_relation.pivot(index="relation", columns="language", values="value")
        return {
            "group_accuracy": rows("group_accuracy"),
            "accuracy": rows("accuracy"),
            "total_consistency": rows("total_consistency").get("all"),
            "rankc_mean": rows("rankc_mean").get("all"),
            "accuracy_by_relation": {
                rel: {c: round(float(v), 4) for c, v in row.items()}
                for rel, row in relation.iterrows()
            },
            "label_overlap": self.overlap.round(4).to_dict("records"),
        }


@dataclass
class OrganismResult:
    """What `train_organism` returns: the checkpoint, its manifest and the evaluation."""

    checkpoint: Path
    manifest: dict[str, Any]
    evaluation: OrganismEvaluation | None  # None when trained with eval_split=None
    losses: list[tuple[int, float]]


# ------------------------------------------------------------------------------- evaluation
def label_overlap(scores: pd.DataFrame, facts: FactSet) -> pd.DataFrame:
    """Accuracy per language group, split by whether the answer's label equals English's.

    Latin-script languages share many names with English, so an item whose correct option is
    spelt as in English can be answered by copying, not by knowing; reporting the two kinds
    apart keeps that out of the measured transfer. English itself is left out.
    """
    import numpy as np
    import pandas as pd

    from interp import languages as langreg
    from interp.evaluate.metrics import GROUPS

    english = {f.fact_id: f.items["en"].answer_text.casefold() for f in facts}
    answers = {(f.fact_id, c): f.items[c].answer_text.casefold() for f in facts for c in f.items}
    table = scores[scores["language"] != "en"].copy()
    if table.empty:
        return pd.DataFrame(columns=["group", "same_label", "accuracy", "n"])
    table["same_label"] = [
        answers[(fid, code)] == english[fid]
        for fid, code in zip(table["fact_id"], table["language"], strict=True)
    ]
    table["correct"] = [
        int(np.argmax(s)) == a for s, a in zip(table["scores"], table["answer_index"], strict=True)
    ]
    table["group"] = table["language"].map(langreg.group)
    out = (
        table.groupby(["group", "same_label"])["correct"]
        .agg(accuracy="mean", n="size")
        .reset_index()
    )
    rank = {g: i for i, g in enumerate(GROUPS)}
    out["_rank"] = out["group"].map(lambda g: rank.get(g, len(rank)))
    return out.sort_values(["_rank", "same_label"]).drop(columns="_rank").reset_index(drop=True)


def evaluate_organism(
    model: Any,
    tokenizer: Any,
    facts: FactSet,
    *,
    split: str = "test",
    batch_size: int = 64,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> OrganismEvaluation:
    """Score the facts of `split` in all their languages and compute the paper's metrics."""
    from interp.evaluate.metrics import accuracy, evaluate
    from interp.evaluate.scoring import score_options

    subset = facts.split(split)
    if len(subset) == 0:
        raise DataError(f"facts: no {split!r} facts to evaluate. Fix: use a fact set with splits")
    scores = score_options(
        model, tokenizer, subset.to_frame(), batch_size=batch_size, progress=progress
    )
    metrics = evaluate(scores, subset.languages, n_boot=n_boot, seed=seed)
    by_relation = accuracy(scores, subset.languages, by="relation")
    return OrganismEvaluation(scores, metrics, by_relation, label_overlap(scores, subset))


def exposure_summary(exposure: pd.DataFrame) -> list[dict[str, Any]]:
    """Per split and language: facts, and how many of them were read in that language."""
    table = (
        exposure.groupby(["split", "language"], sort=False)["exposed"]
        .agg(facts="size", exposed="sum")
        .reset_index()
    )
    table["exposed"] = table["exposed"].astype(int)
    return table.to_dict("records")


# ------------------------------------------------------------------------------- training
def _lr_lambda(config: OrganismConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine

    return factor


def _build_model(config: OrganismConfig, tokenizer: Any):
    import torch
    from transformers import AutoModelForCausalLM

    from interp.models.tiny import tiny_config

    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    model_config = tiny_config(
        config.family,
        len(tokenizer),
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        intermediate_size=config.intermediate_size,
        num_heads=config.num_heads,
        num_kv_heads=config.num_kv_heads,
        max_position_embeddings=max(512, config.seq_len),
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = AutoModelForCausalLM.from_config(
            model_config, dtype=torch.float32, attn_implementation=config.attn_implementation
        )
    model.generation_config.pad_token_id = model_config.pad_token_id
    return model


# settings that change how a run is watched or evaluated, not what it trains
_NOT_IN_RUN_KEY = (
    "threads",
    "precision",  # the run key holds the resolved dtype instead
    "time_budget_s",
    "save_every",
    "log_every",
    "eval_split",
    "eval_batch_size",
    "n_boot",
)


def _run_key(config: OrganismConfig, mixture: Mixture, dtype: str) -> str:
    """What a resumable state must match to be continued."""
    trained = {k: v for k, v in config.to_dict().items() if k not in _NOT_IN_RUN_KEY}
    return fingerprint("organism", trained, mixture.data_fingerprint, dtype)


_NO_RESUME = "pass resume=False (CLI: --no-resume) to start this model over"


def _load_state(work: Path) -> dict[str, Any] | None:
    """The resumable state in `work`, or None. Only safetensors states are read: a pickle
    (an older version's or anyone's) could run code when loaded, so it is refused."""
    for name in LEGACY_STATE_FILES:
        if (work / name).exists():
            raise DataError(
                f"{work / name}: a resume state in pickle format, which is not loaded (loading "
                f"a pickle can run code). Fix: {_NO_RESUME}"
            )
    path = work / STATE_FILE
    if not path.is_file():
        return None
    state = load_state_file(path, fix=_NO_RESUME)
    if not isinstance(state, dict) or "run_key" not in state:
        raise DataError(f"{path}: not an organism training state. Fix: {_NO_RESUME}")
    return state


def _prepare_tokenizer(mixture: Mixture, config: OrganismConfig, work: Path, reuse: bool):
    from interp.models.loading import load_tokenizer
    from interp.models.tiny import train_tokenizer

    tokenizer_dir = work / TOKENIZER_DIR
    if reuse and (tokenizer_dir / "tokenizer.json").is_file():
        return load_tokenizer(tokenizer_dir)
    shutil.rmtree(tokenizer_dir, ignore_errors=True)
    texts = list(dict.fromkeys(mixture.texts()))  # repeats add nothing to BPE statistics
    return train_tokenizer(texts, config.vocab_size, tokenizer_dir)


def train_organism(
    facts: FactSet,
    out_dir: str | os.PathLike,
    config: OrganismConfig | None = None,
    *,
    overwrite: bool = False,
    resume: bool = True,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> OrganismResult:
    """Train the organism on `facts` and write `out_dir` (HF model + tokenizer + manifest).

    `out_dir` is refused when it exists, unless `overwrite`. With `resume`, a matching state in
    `partial_dir(out_dir)` (same config and data) is continued; a state that does not match is
    an error that says what to do. `on_step(step, loss)` is called after every optimizer step
    (1-based step count); an exception it raises stops the run, leaving the last saved state.
    """
    import torch
    from tqdm.auto import tqdm

    config = config or PRESETS["default"]
    out = check_output(out_dir, overwrite=overwrite)
    work = partial_dir(out)
    state_path = work / STATE_FILE
    start_time = time.perf_counter()

    from interp.runtime import ThreadGovernor, compute_plan, slow_precision_warning

    mixture = build_mixture(facts, config.mixture)
    exposure = mixture.exposure()
    plan = compute_plan(config.precision, config.threads)
    warning = slow_precision_warning(plan)
    if warning:
        warnings.warn(f"organism: {warning}", stacklevel=2)
    key = _run_key(config, mixture, plan.dtype)
    previous = None
    if resume and work.exists():
        previous = _load_state(work)
    if previous is not None:
        if previous.get("run_key") != key:
            raise ConfigError(
                f"{work}: holds a run with another config or other facts. Fix: pass "
                "resume=False (CLI: --no-resume) to start over, or rerun with the same settings"
            )
    elif work.exists():
        shutil.rmtree(work)
    tokenizer = _prepare_tokenizer(mixture, config, work, reuse=previous is not None)
    packed = pack(mixture, tokenizer, config.seq_len, seed=config.seed)

    threads_before = torch.get_num_threads()
    torch.set_num_threads(plan.threads)
    governor = ThreadGovernor(plan.threads, enabled=config.threads is None)
    try:
        model = _build_model(config, tokenizer)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
        step, losses, trained_s, resumed_from = 0, [], 0.0, None
        if previous is not None:
            model.load_state_dict(previous["model"])
            optimizer.load_state_dict(previous["optimizer"])
            scheduler.load_state_dict(previous["scheduler"])
            torch.set_rng_state(previous["torch_rng"])
            step, losses, trained_s = previous["step"], previous["losses"], previous["trained_s"]
            resumed_from = step

        def save(done: int, seconds: float) -> None:
            save_state_file(
                state_path,
                {
                    "run_key": key,
                    "step": done,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "losses": losses,
                    "learning_curve": [{"step": step_, "loss": loss_} for step_, loss_ in losses],
                    "trained_s": seconds,
                },
            )

        model.train()
        loop_start = time.perf_counter()
        stopped = "steps"
        bar = tqdm(
            total=config.steps, initial=step, desc="organism", unit="step", disable=not progress
        )
        try:
            while step < config.steps:
                elapsed = trained_s + time.perf_counter() - loop_start
                if config.time_budget_s is not None and elapsed >= config.time_budget_s:
                    stopped = "time budget"
                    break
                batch = torch.from_numpy(packed.batch(step, config.batch_size))
                governor.update(step)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=plan.bf16):
                    loss = model(input_ids=batch, labels=batch, use_cache=False).loss
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                value = float(loss.detach())
                if step == 1 or step % config.log_every == 0 or step == config.steps:
                    losses.append((step, round(value, 5)))
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}")
                # also at the end, so a failure while evaluating costs no training
                if step % config.save_every == 0 or step == config.steps:
                    save(step, trained_s + time.perf_counter() - loop_start)
                if on_step is not None:
                    on_step(step, value)
        except KeyboardInterrupt:
            save(step, trained_s + time.perf_counter() - loop_start)
            raise
        finally:
            bar.close()
        trained_s += time.perf_counter() - loop_start

        model.eval()
        evaluation = None
        if config.eval_split is not None:  # the pipeline evaluates in its own stage instead
            evaluation = evaluate_organism(
                model,
                tokenizer,
                facts,
                split=config.eval_split,
                batch_size=config.eval_batch_size,
                n_boot=config.n_boot,
                seed=config.seed,
                progress=progress,
            )
    finally:
        torch.set_num_threads(threads_before)

    manifest = {
        "kind": "organism",
        "parent": None,
        "data_fingerprint": mixture.data_fingerprint,
        "corpus_fingerprint": fingerprint("corpus", mixture.texts()),
        "config": config.to_dict(),
        "compute": {**plan.to_dict(), "thread_changes": governor.history},
        "seed": config.seed,
        "steps": step,
        "stopped_by": stopped,
        "resumed_from": resumed_from,
        "tokens_seen": step * config.batch_size * config.seq_len,
        "train_seconds": round(trained_s, 2),
        "wall_time_s": round(time.perf_counter() - start_time, 2),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "n_facts": {s: len(facts.split(s)) for s in ("train", "validation", "test")},
        "languages": list(facts.languages),
        "mixture": mixture.summary(tokenizer).to_dict("records"),
        "exposure": exposure_summary(exposure),
        "tokens_per_epoch": packed.tokens_per_epoch,
        "final_loss": losses[-1][1] if losses else None,
        "losses": losses,
        "learning_curve": [{"step": step_, "loss": loss_} for step_, loss_ in losses],
        "eval_split": config.eval_split,
        "metrics": evaluation.summary() if evaluation is not None else None,
    }
    from interp.evaluate.exposure import EXPOSURE_FILE

    checkpoint = save_checkpoint(
        model, tokenizer, out, manifest, overwrite=overwrite, tables={EXPOSURE_FILE: exposure}
    )
    return OrganismResult(checkpoint, manifest, evaluation, losses)


# ------------------------------------------------------------------------------- reporting
def results_table(evaluation: OrganismEvaluation) -> str:
    """A plain-text table of the headline metrics, groups first, then languages."""
    metrics = evaluation.metrics
    lines = [f"{'metric':<18} {'language':<13} {'value':>6}  {'95% CI':<15} {'n':>5}"]
    picks = [
        ("group_accuracy", None),
        ("total_consistency", None),
        ("rankc_mean", None),
        ("accuracy", None),
    ]
    for metric, _ in picks:
        for r in metrics[metrics["metric"] == metric].itertuples():
            ci = "" if math.isnan(r.ci_low) else f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"
            lines.append(f"{metric:<18} {r.language:<13} {r.value:6.3f}  {ci:<15} {r.n:5d}")
    relation = evaluation.by_relation.pivot(index="relation", columns="language", values="value")
    lines += [
        "",
        "accuracy by relation:",
        relation[list(dict.fromkeys(evaluation.by_relation["language"]))].round(2).to_string(),
    ]
    lines += [
        "",
        "answer label equal to English's (same_label) or not:",
        evaluation.overlap.round(3).to_string(index=False),
    ]
    return "\n".join(lines)
