"""The fact schema: a fact is one (subject, relation, object) triple asked in many languages.

A `QuestionItem` is one multiple-choice question in one language, in the PolyFact item format
(fact_id, language, subject, relation, object, question, options A-D, answer_text,
answer_index) plus what PolyFact lacked: `option_ids`, the entity behind each option, so that
options stay aligned across languages although they are shuffled per language. A `Fact` groups
the items of one fact_id across languages; a `FactSet` is a list of facts with their languages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from interp.errors import DataError

OPTION_LETTERS = ("A", "B", "C", "D")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class QuestionItem:
    """One four-option question about one fact, in one language."""

    fact_id: str
    language: str
    question: str
    options: tuple[str, ...]
    answer_index: int
    subject: str = ""  # English label of the subject (PolyFact field)
    relation: str = ""  # relation name, e.g. "capital" (PolyFact field)
    object: str = ""  # English label of the object (PolyFact field)
    option_ids: tuple[str, ...] | None = None  # entity id behind each option, aligned to `options`
    property_id: str | None = None  # Wikidata property, e.g. "P36"
    subject_id: str | None = None
    object_id: str | None = None
    subject_label: str | None = None  # the subject's label in `language`
    statement: str | None = None  # declarative sentence stating the fact in `language`
    split: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields kept as read (llm_eval, ...)

    @property
    def answer_text(self) -> str:
        return self.options[self.answer_index]

    @property
    def answer_id(self) -> str | None:
        return None if self.option_ids is None else self.option_ids[self.answer_index]


@dataclass(frozen=True)
class Fact:
    """One fact and its question in every language it exists in."""

    fact_id: str
    relation: str
    items: Mapping[str, QuestionItem]  # language -> item
    property_id: str | None = None
    subject_id: str | None = None
    object_id: str | None = None
    split: str | None = None

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.items)

    @property
    def subject(self) -> str:
        return next(iter(self.items.values())).subject

    @property
    def object(self) -> str:
        return next(iter(self.items.values())).object

    def label(self, language: str, role: str = "object") -> str | None:
        """The subject's or object's label in one language (object = the correct option)."""
        item = self.items[language]
        return item.answer_text if role == "object" else item.subject_label


@dataclass
class FactSet:
    """A list of facts, each present in every one of `languages`."""

    facts: list[Fact]
    languages: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.facts)

    def __iter__(self) -> Iterator[Fact]:
        return iter(self.facts)

    def items(self, languages: Iterable[str] | None = None) -> Iterator[QuestionItem]:
        langs = self.languages if languages is None else tuple(languages)
        for fact in self.facts:
            for lang in langs:
                yield fact.items[lang]

    def split(self, name: str) -> FactSet:
        """The facts of one split (train / validation / test)."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}. Fix: use one of {', '.join(SPLITS)}")
        return FactSet([f for f in self.facts if f.split == name], self.languages, dict(self.meta))

    def relations(self) -> Counter:
        return Counter(f.relation for f in self.facts)

    def to_frame(self, languages: Iterable[str] | None = None):
        """A tidy table, one row per (fact, language)."""
        import pandas as pd

        rows = []
        for item in self.items(languages):
            rows.append(
                {
                    "fact_id": item.fact_id,
                    "language": item.language,
                    "relation": item.relation,
                    "split": item.split,
                    "subject": item.subject,
                    "object": item.object,
                    "subject_label": item.subject_label,
                    "question": item.question,
                    "options": item.options,
                    "option_ids": item.option_ids,
                    "answer_index": item.answer_index,
                    "answer_text": item.answer_text,
                    "statement": item.statement,
                }
            )
        return pd.DataFrame(rows)
