"""Supervised fine-tuning (SFT) on multiple-choice questions, in the paper's format.

Prompt = the question and its options A-D, "Question: ...\\nA. ...\\nB. ...\\nC. ...\\nD. ...
\\nAnswer:"; target = " B" (the correct letter, the paper's regime) or " <answer text>" (the
answer-text variant). TRL prompt/completion rows, so the loss covers only the completion (the
target and the eos TRL appends), never the prompt. One row per (fact, trained language).

    config = SFTRegime.preset("default")
    train_sft("checkpoints/org/base", facts, "checkpoints/org/sft", config)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from interp.errors import ConfigError
from interp.facts.schema import OPTION_LETTERS
from interp.train.cpt import fact_item, resolve_languages, select_facts
from interp.train.regimes import PAPER_LORA, RegimeConfig, run_trainer, sft_trainer

TARGETS = ("letter", "answer")
PROMPT_FORMATS = ("paper", "question")


@dataclass(frozen=True)
class SFTRegime(RegimeConfig):
    """SFT settings. target: "letter" (the paper) or "answer" (the answer text).
    prompt_format: "paper" (question and lettered options) or "question" ("Question: {q}\n
    Answer:", options hidden: the evaluation's own prompt, which the organism's corpus teaches).

    languages: None = the trained languages the facts have. fact_share: a seeded share of the
    split's facts (the paper used 40K of 95K).
    """

    target: str = "letter"
    prompt_format: str = "paper"
    languages: tuple[str, ...] | None = None
    fact_share: float = 1.0
    split: str | None = "train"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_steps": 3,
            "batch_size": 4,
            "max_length": 128,
            "learning_rate": 1e-3,
            "fact_share": 0.1,
            "logging_steps": 1,
        },
        # the organism: question-answer fine-tuning on 40% of the train facts in the 12 trained
        # languages, in the evaluation's own prompt, two epochs (its loss falls and flattens)
        "default": {
            "epochs": 2.0,
            "batch_size": 32,
            "fact_share": 0.4,
            "target": "answer",
            "prompt_format": "question",
            "max_length": 128,
            "learning_rate": 1e-3,
            "warmup": 0.05,
            "logging_steps": 5,
            "probe_points": 6,
            "probe_facts": 32,
        },
        "paper": {
            "learning_rate": 2e-5,
            "epochs": 1.0,
            "batch_size": 8,
            "gradient_accumulation_steps": 2,
            "max_length": 512,
            "lora": PAPER_LORA,
            "logging_steps": 10,
            "save_steps": 500,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target not in TARGETS:
            raise ConfigError(f"SFTRegime.target={self.target!r} must be one of {TARGETS}")
        if self.prompt_format not in PROMPT_FORMATS:
            raise ConfigError(
                f"SFTRegime.prompt_format={self.prompt_format!r} must be one of {PROMPT_FORMATS}"
            )
        if self.prompt_format == "question" and self.target == "letter":
            raise ConfigError(
                "SFTRegime: prompt_format='question' hides the options, so there is no letter "
                "to answer. Fix: target='answer', or prompt_format='paper'"
            )
        if not 0.0 < self.fact_share <= 1.0:
            raise ConfigError(f"SFTRegime.fact_share={self.fact_share} must be in (0, 1]")
        if self.languages is not None:
            object.__setattr__(self, "languages", tuple(self.languages))


def format_prompt(item: Any, prompt_format: str = "paper") -> str:
    """The paper's multiple-choice prompt, ending in "Answer:" (the target follows a space);
    "question": the evaluation's prompt with the options hidden."""
    if prompt_format == "question":
        from interp.evaluate.scoring import PROMPT_TEMPLATE

        return PROMPT_TEMPLATE.format(question=item.question)
    if len(item.options) != len(OPTION_LETTERS):
        from interp.errors import DataError

        raise DataError(
            f"fact {item.fact_id!r} ({item.language}): {len(item.options)} options, the SFT "
            f"prompt needs {len(OPTION_LETTERS)}. Fix: drop the item or give four options"
        )
    lines = [f"Question: {item.question}"]
    lines += [
        f"{letter}. {option}" for letter, option in zip(OPTION_LETTERS, item.options, strict=True)
    ]
    lines.append("Answer:")
    return "\n".join(lines)


def format_target(item: Any, target: str = "letter") -> str:
    """ " B" for the letter target, " <answer text>" for the answer variant."""
    if target == "letter":
        return " " + OPTION_LETTERS[item.answer_index]
    if target == "answer":
        return " " + item.answer_text
    raise ConfigError(f"unknown SFT target {target!r}. Fix: use one of {TARGETS}")


def sft_data_plan(facts: Any, config: SFTRegime) -> tuple[dict[str, int], int]:
    """(what the dry run reports of the data, how many rows it makes)."""
    rows = sft_rows(facts, config)
    return {"rows": len(rows)}, len(rows)


def sft_rows(facts: Any, config: SFTRegime) -> list[dict[str, str]]:
    """Prompt/completion rows, one per (fact, language), in a seeded random order."""
    source = "SFT data"
    languages = resolve_languages(facts, config.languages, source)
    chosen = select_facts(facts, config.split, config.fact_share, config.seed, source)
    rows = []
    for fact in chosen:
        for code in languages:
            item = fact_item(fact, code, source)
            rows.append(
                {
                    "prompt": format_prompt(item, config.prompt_format),
                    "completion": format_target(item, config.target),
                    "fact_id": fact.fact_id,
                    "language": code,
                }
            )
    random.Random(config.seed).shuffle(rows)
    return rows


def sft_dataset(rows: Sequence[dict[str, str]]):
    """A `datasets.Dataset` with "prompt" and "completion" (+ fact_id, language) columns."""
    from datasets import Dataset

    columns = {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
    return Dataset.from_dict(columns)


def sft_trl_config(config: SFTRegime, output_dir: str | Path):
    """The TRL SFTConfig: completion-only loss, no packing, sequences cut at `max_length`."""
    from trl import SFTConfig

    return SFTConfig(
        **config.training_arguments(
            str(output_dir),
            max_length=config.max_length,
            packing=False,
            padding_free=False,
            completion_only_loss=True,
        )
    )


def build_sft_trainer(
    model: Any,
    tokenizer: Any,
    output_dir: str | Path,
    rows: Sequence[dict[str, str]],
    config: SFTRegime,
    callbacks: Sequence[Any] = (),
):
    """An SFTTrainer on prompt/completion `rows` (the model is trained in place)."""
    dataset = sft_dataset(rows).remove_columns(["fact_id", "language"])
    args = sft_trl_config(config, output_dir)
    return sft_trainer(model, tokenizer, args, dataset, config, callbacks, "SFT data")


def train_sft(
    parent: str | Path,
    facts: Any,
    out_dir: str | Path,
    config: SFTRegime | None = None,
    *,
    tokenizer: Any = None,
    overwrite: bool = False,
    resume: bool = True,
    callbacks: Sequence[Any] = (),
    extra_manifest: dict[str, Any] | None = None,
) -> Path:
    """SFT from the HF model at `parent` on `facts`; returns the checkpoint folder.

    The data is built (and checked) before any model is loaded; bad input writes nothing.
    """
    from interp.io import fingerprint

    config = config or SFTRegime.preset("default")
    rows = sft_rows(facts, config)
    data_fp = fingerprint("sft", rows)
    summary = {
        "rows": len(rows),
        "facts": len({row["fact_id"] for row in rows}),
        "languages": sorted({row["language"] for row in rows}),
        "target": config.target,
    }
    return run_trainer(
        regime="sft",
        parent=parent,
        out_dir=out_dir,
        config=config,
        build_trainer=lambda model, tok, partial: build_sft_trainer(
            model, tok, partial, rows, config, callbacks
        ),
        data_fingerprint=data_fp,
        data_summary=summary,
        tokenizer=tokenizer,
        overwrite=overwrite,
        resume=resume,
        extra_manifest=extra_manifest,
        probe=(
            select_facts(facts, config.split, config.fact_share, config.seed, "SFT data"),
            resolve_languages(facts, config.languages, "SFT data"),
        ),
    )
