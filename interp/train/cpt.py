"""Light continual pretraining (CPT) on parallel multi-way text, in the paper's form.

One document per fact (or per parallel line given by the caller): a line "xx: sentence" for each
trained language, in a random order per document, where the sentence is the fact's `statement`
in that language, so every document says the same thing in every language. Documents are
packed end to end (eos between them) into fixed-length sequences and trained with the causal
LM loss on every token (TRL SFTTrainer, `packing_strategy="wrapped"`).

    config = CPTRegime.preset("default")
    train_cpt("checkpoints/org/base", facts, "checkpoints/org/cpt", config)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from interp.errors import ConfigError, DataError
from interp.train.regimes import PAPER_LORA, RegimeConfig, run_trainer, sft_trainer


@dataclass(frozen=True)
class CPTRegime(RegimeConfig):
    """CPT settings. `max_length` is the packed sequence length.

    languages: None = the trained languages (`interp.languages.TRAINED`) that the facts have.
    fact_share: the share of the split's facts used (a seeded sample). repeats: how many times
    each fact appears (each time with its languages in a fresh random order).
    """

    languages: tuple[str, ...] | None = None
    fact_share: float = 1.0
    repeats: int = 1
    split: str | None = "train"  # None: every fact of the set

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "max_steps": 3,
            "batch_size": 4,
            "max_length": 64,
            "learning_rate": 1e-3,
            "fact_share": 0.1,
            "logging_steps": 1,
        },
        "default": {
            "batch_size": 16,
            "max_length": 128,
            "fact_share": 0.4,  # about 50 steps on the organism: under a minute on 2 CPU cores
            "epochs": 2.0,
            "learning_rate": 1e-3,
            "warmup": 0.05,
            "logging_steps": 2,
            "probe_points": 5,
            "probe_facts": 32,
        },
        "paper": {
            "learning_rate": 2e-5,
            "epochs": 1.0,
            "batch_size": 8,
            "gradient_accumulation_steps": 4,
            "max_length": 1024,
            "lora": PAPER_LORA,
            "logging_steps": 10,
            "save_steps": 500,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.fact_share <= 1.0:
            raise ConfigError(f"CPTRegime.fact_share={self.fact_share} must be in (0, 1]")
        if self.repeats < 1:
            raise ConfigError(f"CPTRegime.repeats={self.repeats} must be >= 1")
        if self.languages is not None:
            object.__setattr__(self, "languages", tuple(self.languages))


def resolve_languages(facts: Any, languages: Sequence[str] | None, source: str) -> tuple[str, ...]:
    """The languages to train on: the requested ones (all checked), or TRAINED ones present."""
    from interp.languages import TRAINED, check_codes

    if languages is None:
        chosen = tuple(code for code in TRAINED if code in facts.languages)
        if not chosen:
            raise DataError(
                f"{source}: the facts have none of the trained languages {list(TRAINED)} (they "
                f"have {list(facts.languages)}). Fix: pass languages=... explicitly"
            )
        return chosen
    check_codes(languages, source=source)
    return tuple(languages)


def select_facts(facts: Any, split: str | None, share: float, seed: int, source: str) -> list:
    """The facts of `split`, a seeded `share` of them, in their original order."""
    chosen = list(facts.split(split) if split is not None else facts)
    if not chosen:
        raise DataError(
            f"{source}: no facts in split {split!r}. Fix: build the facts with splits, or pick "
            "another split"
        )
    if share < 1.0:
        keep = max(1, round(share * len(chosen)))
        picked = set(random.Random(seed).sample(range(len(chosen)), keep))
        chosen = [fact for i, fact in enumerate(chosen) if i in picked]
    return chosen


def fact_item(fact: Any, language: str, source: str) -> Any:
    """The fact's item in `language`, or a DataError naming the fact and the fix."""
    item = fact.items.get(language)
    if item is None:
        raise DataError(
            f"{source}: fact {fact.fact_id!r} has no item in language {language!r} (it has "
            f"{sorted(fact.items)}). Fix: drop {language!r} from languages, or use facts that "
            "exist in every requested language"
        )
    return item


def parallel_lines(sentences: Mapping[str, str], rng: random.Random) -> list[str]:
    """'xx: sentence' for each language, in a random order (the paper's multi-way format)."""
    order = list(sentences)
    rng.shuffle(order)
    return [f"{code}: {sentences[code]}" for code in order]


def cpt_data_plan(facts: Any, config: CPTRegime) -> tuple[dict[str, int], int]:
    """(what the dry run reports of the data, about how many sequences it makes)."""
    data = cpt_documents(facts, config)
    characters = sum(len(d) for d in data)
    # about 4 characters per token for Latin scripts; a plan, not a promise
    sequences = max(1, characters // 4 // config.max_length)
    return {"documents": len(data), "characters": characters}, sequences


def cpt_documents(
    facts: Any,
    config: CPTRegime,
    *,
    parallel_texts: Iterable[Mapping[str, str]] = (),
) -> list[str]:
    """The CPT corpus: one multi-way document per fact (x repeats), then one per parallel text.

    `parallel_texts`: extra multi-way lines (language -> sentence, e.g. TED-like lines); each
    must hold every requested language.
    """
    source = "CPT data"
    languages = resolve_languages(facts, config.languages, source)
    chosen = select_facts(facts, config.split, config.fact_share, config.seed, source)
    rng = random.Random(config.seed)
    documents = []
    for _ in range(config.repeats):
        for fact in chosen:
            sentences = {}
            for code in languages:
                item = fact_item(fact, code, source)
                if not item.statement:
                    raise DataError(
                        f"{source}: fact {fact.fact_id!r} has no statement in {code!r}. Fix: "
                        "build facts with statements (build_world does) or drop the language"
                    )
                sentences[code] = item.statement
            documents.append("\n".join(parallel_lines(sentences, rng)))
    for index, text in enumerate(parallel_texts):
        missing = [code for code in languages if not text.get(code)]
        if missing:
            raise DataError(
                f"{source}: parallel text #{index} lacks languages {missing}. Fix: give every "
                "requested language, or drop the line"
            )
        documents.append("\n".join(parallel_lines({c: text[c] for c in languages}, rng)))
    return documents


def cpt_dataset(documents: Sequence[str]):
    """A `datasets.Dataset` with one "text" column (TRL's language-modelling format)."""
    from datasets import Dataset

    return Dataset.from_dict({"text": list(documents)})


def cpt_trl_config(config: CPTRegime, output_dir: str | Path):
    """The TRL SFTConfig for CPT: wrapped packing into `max_length` blocks, loss on all tokens."""
    from trl import SFTConfig

    return SFTConfig(
        **config.training_arguments(
            str(output_dir),
            max_length=config.max_length,
            packing=True,
            packing_strategy="wrapped",
            padding_free=False,
            dataset_text_field="text",
            completion_only_loss=False,
        )
    )


def build_cpt_trainer(
    model: Any,
    tokenizer: Any,
    output_dir: str | Path,
    documents,
    config,
    callbacks: Sequence[Any] = (),
):
    """An SFTTrainer for CPT on `documents` (the model is trained in place)."""
    args = cpt_trl_config(config, output_dir)
    return sft_trainer(
        model, tokenizer, args, cpt_dataset(documents), config, callbacks, "CPT data"
    )


def train_cpt(
    parent: str | Path,
    facts: Any,
    out_dir: str | Path,
    config: CPTRegime | None = None,
    *,
    parallel_texts: Iterable[Mapping[str, str]] = (),
    tokenizer: Any = None,
    overwrite: bool = False,
    resume: bool = True,
    callbacks: Sequence[Any] = (),
    extra_manifest: dict[str, Any] | None = None,
) -> Path:
    """CPT from the HF model at `parent` on `facts`' statements; returns the checkpoint folder.

    The data is built (and checked) before any model is loaded; bad input writes nothing.
    """
    from interp.io import fingerprint

    config = config or CPTRegime.preset("default")
    parallel_texts = list(parallel_texts)
    documents = cpt_documents(facts, config, parallel_texts=parallel_texts)
    languages = resolve_languages(facts, config.languages, "CPT data")
    data_fp = fingerprint("cpt", documents)
    summary = {
        "documents": len(documents),
        "languages": list(languages),
        "characters": sum(len(d) for d in documents),
        "parallel_texts": len(parallel_texts),
    }
    return run_trainer(
        regime="cpt",
        parent=parent,
        out_dir=out_dir,
        config=config,
        build_trainer=lambda model, tok, partial: build_cpt_trainer(
            model, tok, partial, documents, config, callbacks
        ),
        data_fingerprint=data_fp,
        data_summary=summary,
        tokenizer=tokenizer,
        overwrite=overwrite,
        resume=resume,
        extra_manifest=extra_manifest,
        probe=(
            select_facts(facts, config.split, config.fact_share, config.seed, "CPT data"),
            languages,
        ),
    )
