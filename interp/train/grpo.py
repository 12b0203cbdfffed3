"""The paper's GRPO regime on TRL 1.16: one rollout = an answer in every trained language.

How the paper's algorithm maps onto TRL's `GRPOTrainer`:
- the dataset holds one row per (fact, language); its prompt is the question, the options and
  "Return only the full answer text in {Language}. Do not return the letter." (`grpo_prompt`);
- `PolyFactGRPOTrainer` replaces TRL's row sampler with `FactGroupedSampler`, so the G
  completions of every language of a fact sit in one process's generation batch; completion j
  of each language forms rollout j;
- the reward (`interp.train.rewards.make_trl_reward("joint")`) gives the rollout's JOINT
  reward to each of its completions, so TRL's per-prompt standardisation (scale_rewards=
  "group") gives every language of rollout j the same advantage (R_j - mean) / (std + 1e-4),
  as in the paper (TRL uses the sample std; see `interp.train.rewards`);
- loss_type="grpo": -advantage x mean token log-probability per completion, averaged;
- no ratio clipping: `clip_epsilon=None` sets TRL's epsilon to 1e9, so clamp(ratio, 1 - eps,
  1 + eps) never binds. (With num_iterations=1 and steps_per_generation equal to
  gradient_accumulation_steps, as set here, the ratio is exactly 1 anyway and the loss
  gradient is -A x grad(mean log p), the paper's loss.) Give a number to clip;
- no KL: beta=0 (TRL then loads no reference model); give beta > 0 to add it.
The variant reward="agreement" is TRL's standard per-prompt GRPO with the agreement reward:
each language's completion is rewarded for naming the rollout's majority entity, and TRL
standardises each language's G completions separately.

The organism presets (`smoke`, `default`) prompt with "Question: {q}\nAnswer:" instead
(`prompt_format="question"`): the organism never learned to follow the paper's instruction
and answers it with prose in every language, so all rewards tie and GRPO gets no gradient.

`train_grpo(parent, facts, out, config)` runs it and writes `out` (HF folder + manifest).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from interp import languages as language_registry
from interp.errors import ConfigError, DataError
from interp.facts.schema import OPTION_LETTERS, FactSet, QuestionItem
from interp.train.regimes import PAPER_LORA, RegimeConfig
from interp.train.rewards import PAPER, RewardConfig, make_trl_reward

if TYPE_CHECKING:
    from trl import GRPOConfig, GRPOTrainer

INSTRUCTION = "Return only the full answer text in {language}. Do not return the letter."
NO_CLIP_EPSILON = 1e9  # TRL's epsilon that makes clamp(ratio, 1 - eps, 1 + eps) a no-op
REWARD_KINDS = ("joint", "agreement")
PROMPT_FORMATS = ("paper", "question")
SCALE_REWARDS = ("group", "batch", "none")
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


def grpo_prompt(item: QuestionItem, prompt_format: str = "paper") -> str:
    """The GRPO prompt for one language.

    "paper": question, lettered options and the paper's instruction, then "Answer:".
    "question": "Question: {q}\nAnswer:" with the options hidden, the format the model
    organism's corpus teaches (it continues the paper's prompt with prose, never an option,
    so every reward would be equal and GRPO would get no gradient).
    """
    if prompt_format not in PROMPT_FORMATS:
        raise ConfigError(
            f"prompt_format={prompt_format!r} is not known. Fix: use one of {PROMPT_FORMATS}"
        )
    if prompt_format == "question":
        return f"Question: {item.question}\nAnswer:"
    if len(item.options) > len(OPTION_LETTERS):
        raise DataError(
            f"fact {item.fact_id!r} ({item.language}): {len(item.options)} options, at most "
            f"{len(OPTION_LETTERS)} are supported"
        )
    options = "\n".join(
        f"{letter}. {text}" for letter, text in zip(OPTION_LETTERS, item.options, strict=False)
    )
    instruction = INSTRUCTION.format(language=language_registry.get(item.language).name)
    return f"Question: {item.question}\n{options}\n{instruction}\nAnswer:"


# --------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class GRPORegime(RegimeConfig):
    """The GRPO regime. `batch_size` counts FACTS per optimizer step (all processes together).

    Each step generates batch_size x languages x num_generations completions; with several
    processes, batch_size must be a multiple of their number (each process gets whole facts).
    `gradient_accumulation_steps` splits one step's completions into that many backward
    passes (memory), generated at once. `languages=None`: the trained languages (the paper's
    12) that the fact set has. `split`: the facts of that split only (None: all facts);
    `max_facts`: a seeded sample of at most that many facts.
    """

    learning_rate: float = 1e-5
    lr_scheduler: str = "cosine"
    warmup: float = 0.03
    batch_size: int = 1
    logging_steps: int = 1
    num_generations: int = 8
    languages: tuple[str, ...] | None = None
    reward: str = "joint"
    reward_config: RewardConfig = PAPER
    prompt_format: str = "paper"  # or "question" (the organism's format; see grpo_prompt)
    temperature: float = 0.7
    top_p: float = 0.95
    repetition_penalty: float = 1.3
    max_new_tokens: int = 48
    clip_epsilon: float | None = None  # None: no ratio clipping (the paper)
    beta: float = 0.0  # KL weight; 0 loads no reference model (the paper)
    scale_rewards: str = "group"
    loss_type: str = "grpo"
    num_iterations: int = 1
    split: str | None = "train"
    max_facts: int | None = None

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # The organism (hidden 128, 4 layers), full fine-tuning, one fact per step as in the
        # paper, prompted in its own question-answer format (it cannot follow the paper's
        # instruction). No repetition penalty: with the paper's prompt the options stand in
        # it, and a penalty on repeating prompt tokens keeps a tiny model from copying one.
        "smoke": {
            "max_steps": 4,
            "batch_size": 1,
            "num_generations": 4,
            "max_new_tokens": 8,
            "learning_rate": 1e-4,
            "warmup": 0.0,
            "repetition_penalty": 1.0,
            "prompt_format": "question",
        },
        # The organism: 4 facts per step (x 12 languages x 4 rollouts), three passes over a
        # pool of 36 train facts, so the mean reward of facts it has practised can rise and
        # level off within about two minutes (one pass over new facts only moves it by noise).
        # top_p=1.0: nucleus sampling sorts the vocabulary at every token, a third of the time.
        "default": {
            "epochs": 3.0,
            "max_facts": 36,
            "batch_size": 4,
            "num_generations": 4,
            "max_new_tokens": 10,
            "learning_rate": 3e-4,
            "top_p": 1.0,
            "repetition_penalty": 1.0,
            "prompt_format": "question",
            "probe_points": 5,
            "probe_facts": 36,
        },
        # Qwen2.5-7B / OLMo-2-1124-7B: 20K facts, one fact per step, LoRA r=64 alpha=128
        "paper": {
            "learning_rate": 1e-5,
            "lr_scheduler": "cosine",
            "warmup": 0.03,
            "epochs": 1.0,
            "batch_size": 1,
            "num_generations": 8,
            "max_new_tokens": 48,
            "max_facts": 20000,
            "lora": PAPER_LORA,
            "logging_steps": 10,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.reward_config, dict):  # from JSON / a CLI
            object.__setattr__(self, "reward_config", RewardConfig(**self.reward_config))
        if self.languages is not None:
            codes = language_registry.check_codes(
                tuple(self.languages), source="GRPORegime.languages"
            )
            object.__setattr__(self, "languages", tuple(codes))
        problems = []
        if self.prompt_format not in PROMPT_FORMATS:
            problems.append(f"prompt_format={self.prompt_format!r} must be one of {PROMPT_FORMATS}")
        if self.reward not in REWARD_KINDS:
            problems.append(f"reward={self.reward!r} must be one of {REWARD_KINDS}")
        if self.num_generations < 2:
            problems.append(f"num_generations={self.num_generations} must be >= 2 (G rollouts)")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens={self.max_new_tokens} must be >= 1")
        if not (self.temperature > 0 and 0 < self.top_p <= 1 and self.repetition_penalty > 0):
            problems.append("temperature > 0, 0 < top_p <= 1 and repetition_penalty > 0 needed")
        if self.clip_epsilon is not None and not self.clip_epsilon > 0:
            problems.append(f"clip_epsilon={self.clip_epsilon} must be > 0, or None (no clip)")
        if self.beta < 0:
            problems.append(f"beta={self.beta} must be >= 0")
        if self.scale_rewards not in SCALE_REWARDS:
            problems.append(f"scale_rewards={self.scale_rewards!r} must be one of {SCALE_REWARDS}")
        if self.loss_type not in LOSS_TYPES:
            problems.append(f"loss_type={self.loss_type!r} must be one of {LOSS_TYPES}")
        if self.num_iterations < 1:
            problems.append(f"num_iterations={self.num_iterations} must be >= 1")
        if self.max_facts is not None and self.max_facts < 1:
            problems.append(f"max_facts={self.max_facts} must be >= 1 or None")
        if problems:
            raise ConfigError("GRPORegime: " + "; ".join(problems))

    def per_device_batch(self, num_languages: int, num_processes: int = 1) -> int:
        """Completions per process per micro-batch; ConfigError when facts would split."""
        if num_processes < 1 or self.batch_size % num_processes:
            raise ConfigError(
                f"batch_size={self.batch_size} facts per step cannot be shared by "
                f"{num_processes} processes as whole facts. Fix: a batch_size that is a "
                f"multiple of {num_processes}"
            )
        per_process = (self.batch_size // num_processes) * num_languages * self.num_generations
        if per_process % self.gradient_accumulation_steps:
            raise ConfigError(
                f"one step gives each process {per_process} completions, which do not split "
                f"into gradient_accumulation_steps={self.gradient_accumulation_steps} equal "
                "micro-batches. Fix: a divisor of that number"
            )
        return per_process // self.gradient_accumulation_steps

    def grpo_arguments(
        self, output_dir: str | os.PathLike, num_languages: int, num_processes: int = 1
    ) -> GRPOConfig:
        """TRL's GRPOConfig for `num_languages` languages on `num_processes` processes."""
        from trl import GRPOConfig

        extra = {
            "per_device_train_batch_size": self.per_device_batch(num_languages, num_processes),
            "steps_per_generation": self.gradient_accumulation_steps,
            "num_generations": self.num_generations,
            "max_completion_length": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty,
            "beta": self.beta,
            "epsilon": NO_CLIP_EPSILON if self.clip_epsilon is None else self.clip_epsilon,
            "loss_type": self.loss_type,
            "scale_rewards": self.scale_rewards,
            "num_iterations": self.num_iterations,
            "remove_unused_columns": False,  # the reward reads fact_id, language, options ...
            "shuffle_dataset": True,
            "log_completions": False,
        }
        return GRPOConfig(**self.training_arguments(str(output_dir), **extra))


# --------------------------------------------------------------------------------------------
# data


def grpo_languages(facts: FactSet, config: GRPORegime) -> tuple[str, ...]:
    """The languages every rollout answers in."""
    if config.languages is not None:
        return tuple(config.languages)
    trained = tuple(code for code in language_registry.TRAINED if code in facts.languages)
    if not trained:
        raise ConfigError(
            f"the facts have none of the trained languages {language_registry.TRAINED} (they "
            f"have {facts.languages}). Fix: set GRPORegime.languages"
        )
    return trained


def select_facts(facts: FactSet, config: GRPORegime) -> FactSet:
    """The facts GRPO trains on: `config.split` (if set), at most `config.max_facts`."""
    import random

    chosen = facts.split(config.split) if config.split is not None else facts
    if len(chosen) == 0:
        raise DataError(
            f"no facts in split {config.split!r} (of {len(facts)} facts). Fix: set "
            "GRPORegime.split=None to use every fact, or give facts with that split"
        )
    if config.max_facts is not None and len(chosen) > config.max_facts:
        keep = sorted(random.Random(config.seed).sample(range(len(chosen)), config.max_facts))
        chosen = FactSet([chosen.facts[i] for i in keep], chosen.languages, dict(chosen.meta))
    return chosen


def grpo_rows(
    facts: FactSet,
    languages: Sequence[str],
    *,
    need_ids: bool = False,
    prompt_format: str = "paper",
) -> list[dict]:
    """One row per (fact, language), languages in the given order; a DataError names any fact
    lacking a language (or, with `need_ids`, the entity ids of its options)."""
    rows = []
    for fact in facts:
        for lang in languages:
            item = fact.items.get(lang)
            if item is None:
                raise DataError(
                    f"fact {fact.fact_id!r} has no question in language {lang!r}; a GRPO rollout "
                    f"answers in every one of {', '.join(languages)}. Fix: drop the fact, or "
                    "train on fewer languages (GRPORegime.languages)"
                )
            if need_ids and item.option_ids is None:
                raise DataError(
                    f"fact {fact.fact_id!r}, language {lang!r}: no option_ids, which the "
                    "agreement reward needs to compare answers across languages. Fix: use "
                    "reward='joint', or facts that store the entity of each option"
                )
            rows.append(
                {
                    "prompt": grpo_prompt(item, prompt_format),
                    "fact_id": fact.fact_id,
                    "language": lang,
                    "options": list(item.options),
                    "answer_index": int(item.answer_index),
                    "option_ids": None if item.option_ids is None else list(item.option_ids),
                }
            )
    return rows


def grpo_dataset(facts: FactSet, languages: Sequence[str], config: GRPORegime | None = None):
    """`grpo_rows` as a `datasets.Dataset` (fact-major, languages in order)."""
    from datasets import Dataset

    return Dataset.from_list(config_rows(facts, languages, config or GRPORegime()))


def config_rows(facts: FactSet, languages: Sequence[str], config: GRPORegime) -> list[dict]:
    """`grpo_rows` with the prompt format and the option ids `config` asks for."""
    return grpo_rows(
        facts,
        languages,
        need_ids=config.reward == "agreement",
        prompt_format=config.prompt_format,
    )


# --------------------------------------------------------------------------------------------
# the trainer


@functools.cache
def polyfact_trainer_class() -> type[GRPOTrainer]:
    """The GRPOTrainer subclass with the fact-grouping sampler (subclass it to add hooks).

    Defined on first use so that importing this module does not import TRL; also reachable
    as `interp.train.grpo.PolyFactGRPOTrainer`.
    """
    from trl import GRPOTrainer

    from interp.train.sampler import FactGroupedSampler, check_rank_layout, fact_row_groups

    class _PolyFactGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose sampler keeps each fact's language rows together.

        `languages`: the languages of a rollout, in dataset order. Raises ConfigError when a
        process's generation batch (per_device_train_batch_size x steps_per_generation) does
        not hold whole facts, i.e. generation_batch_size / num_generations is not a multiple
        of the number of languages on every process.
        """

        def __init__(self, *args: Any, languages: Sequence[str], **kwargs: Any):
            self.rollout_languages = tuple(languages)
            super().__init__(*args, **kwargs)
            self.facts_per_process = check_rank_layout(
                per_rank_rows=self.args.per_device_train_batch_size
                * self.args.steps_per_generation,
                num_generations=self.num_generations,
                rows_per_fact=len(self.rollout_languages),
                num_processes=self.accelerator.num_processes,
            )
            dataset = self.train_dataset
            self.fact_rows = fact_row_groups(
                dataset["fact_id"], dataset["language"], self.rollout_languages
            )

        def _get_train_sampler(self, dataset=None):
            if dataset is not None and dataset is not self.train_dataset:
                rows = fact_row_groups(
                    dataset["fact_id"], dataset["language"], self.rollout_languages
                )
            else:
                rows = self.fact_rows
            return FactGroupedSampler(
                rows,
                num_generations=self.num_generations,
                facts_per_batch=self.facts_per_process * self.accelerator.num_processes,
                repeat_count=self.num_iterations * self.args.steps_per_generation,
                shuffle=self.shuffle_dataset,
                seed=self.args.seed,
            )

    _PolyFactGRPOTrainer.__name__ = _PolyFactGRPOTrainer.__qualname__ = "PolyFactGRPOTrainer"
    _PolyFactGRPOTrainer.__module__ = __name__
    return _PolyFactGRPOTrainer


def __getattr__(name: str):
    if name == "PolyFactGRPOTrainer":
        return polyfact_trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_grpo_trainer(
    model: Any,
    tokenizer: Any,
    facts: FactSet,
    config: GRPORegime,
    output_dir: str | os.PathLike,
    *,
    trainer_class: type | None = None,
    callbacks: Sequence[Any] | None = None,
) -> GRPOTrainer:
    """A ready PolyFactGRPOTrainer on `facts` (already selected; see `select_facts`)."""
    languages = grpo_languages(facts, config)
    dataset = grpo_dataset(facts, languages, config)
    num_processes = int(os.environ.get("WORLD_SIZE", "1"))
    args = config.grpo_arguments(output_dir, len(languages), num_processes)
    reward = make_trl_reward(
        config.reward,
        config.reward_config,
        languages=languages,
        num_generations=config.num_generations,
    )
    if getattr(model, "generation_config", None) is not None and tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    cls = trainer_class or polyfact_trainer_class()
    return cls(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=config.lora.peft_config(model),
        callbacks=list(callbacks or []),
        languages=languages,
    )


# --------------------------------------------------------------------------------------------
# a run: parent checkpoint in, checkpoint out


def reward_history(log_history: Sequence[dict]) -> list[dict[str, float]]:
    """(step, mean reward) of every logged training step that has a reward."""
    return [
        {"step": int(entry["step"]), "reward": float(entry["reward"])}
        for entry in log_history
        if "reward" in entry and "step" in entry
    ]


def data_fingerprint(rows: Sequence[dict]) -> str:
    """Content hash of the GRPO rows (fact, language, prompt, options, answer)."""
    from interp.io import fingerprint

    keys = ("fact_id", "language", "prompt", "options", "answer_index", "option_ids")
    return fingerprint("grpo", [[row[k] for k in keys] for row in rows])


def _reward_recorder(into: dict[str, Any]):
    """A TrainerCallback that writes the reward history into `into` when training ends."""
    from transformers import TrainerCallback

    class RewardRecorder(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            history = reward_history(state.log_history)
            into["reward_history"] = history
            into["first_mean_reward"] = history[0]["reward"] if history else None
            into["final_mean_reward"] = history[-1]["reward"] if history else None

    return RewardRecorder()


def grpo_plan(facts: FactSet, config: GRPORegime, num_processes: int = 1) -> dict[str, Any]:
    """What a GRPO run would do, checked without loading a model (for dry runs)."""
    chosen = select_facts(facts, config)
    languages = grpo_languages(chosen, config)
    rows = config_rows(chosen, languages, config)
    per_device = config.per_device_batch(len(languages), num_processes)
    steps_per_epoch = len(chosen) // config.batch_size  # a partial last batch of facts is dropped
    if steps_per_epoch < 1:
        raise ConfigError(
            f"batch_size={config.batch_size} facts per step but only {len(chosen)} facts. "
            "Fix: a smaller batch_size"
        )
    steps = (
        config.max_steps
        if config.max_steps > 0
        else math.ceil(steps_per_epoch * config.epochs - 1e-9)
    )
    return {
        "rows": len(rows),
        "facts": len(chosen),
        "languages": list(languages),
        "completions_per_step": config.batch_size * len(languages) * config.num_generations,
        "per_device_train_batch_size": per_device,
        "steps": steps,
    }


def train_grpo(
    parent_dir: str | os.PathLike,
    facts: FactSet,
    out_dir: str | os.PathLike,
    config: GRPORegime | None = None,
    *,
    overwrite: bool = False,
    resume: bool = True,
    trainer_class: type | None = None,
    callbacks: Sequence[Any] = (),
    extra_manifest: dict[str, Any] | None = None,
) -> Path:
    """GRPO from the checkpoint `parent_dir` on `facts`; returns the checkpoint folder `out_dir`.

    The rows are built and checked before any model loads (a fact lacking a language is a
    DataError naming both). Loading, resuming from `<out_dir>.partial/` (`save_steps > 0`),
    merging LoRA and the atomic save with its manifest are `interp.train.regimes.run_trainer`;
    the manifest adds the reward history and the first and final mean reward. Under torchrun /
    accelerate launch every process calls this; the main one saves. `trainer_class`: a
    subclass of `polyfact_trainer_class()` to use instead.
    """
    from interp.io import checkpoint_fingerprint
    from interp.train.regimes import run_trainer

    config = config or GRPORegime.preset("default")
    chosen = select_facts(facts, config)
    languages = grpo_languages(chosen, config)
    rows = config_rows(chosen, languages, config)
    # run_trainer reads this dict after training; the recorder fills in the rewards by then
    manifest: dict[str, Any] = {
        "parent_fingerprint": checkpoint_fingerprint(parent_dir),
        **(extra_manifest or {}),
    }

    def build(model, tokenizer, partial):
        trainer = make_grpo_trainer(
            model,
            tokenizer,
            chosen,
            config,
            partial,
            trainer_class=trainer_class,
            callbacks=[_reward_recorder(manifest), *callbacks],
        )
        manifest["num_processes"] = trainer.accelerator.num_processes
        return trainer

    return run_trainer(
        regime="grpo",
        parent=parent_dir,
        out_dir=out_dir,
        config=config,
        build_trainer=build,
        data_fingerprint=data_fingerprint(rows),
        data_summary={
            "rows": len(rows),
            "facts": len(chosen),
            "languages": list(languages),
            "reward": config.reward,
        },
        overwrite=overwrite,
        resume=resume,
        extra_manifest=manifest,
        probe=(chosen, languages),
    )


__all__ = [
    "GRPORegime",
    "INSTRUCTION",
    "grpo_dataset",
    "grpo_languages",
    "grpo_plan",
    "config_rows",
    "grpo_prompt",
    "grpo_rows",
    "make_grpo_trainer",
    "polyfact_trainer_class",
    "select_facts",
    "train_grpo",
]
