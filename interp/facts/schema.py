"""The fact schema: a fact is one (subject, relation, object) triple asked in many languages.

A `QuestionItem` is one multiple-choice question in one language, in the PolyFact item format
(fact_id, language, subject, relation, object, question, options A-D, answer_text,
answer_index) plus what PolyFact lacked: `option_ids`, the entity behind each option, so that
options stay aligned across languages although they are shuffled per language. A `Fact` groups
the items of one fact_id across languages; a `FactSet` is a list of facts with their languages.
"""

from __future__ import annotations

import json
import math
import numbers
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


# ------------------------------------------------------------------------------ the type rule
# One rule for the type of every field the readers take from a file (PolyFact items, the header
# of the release's JSON files, our manifest.json, rows of a `datasets` folder, corpus lines):
#
#   integer  a JSON integer. A float with no fractional part (1.0) is ACCEPTED as that integer:
#            pandas and Arrow store an integer column that holds a null as float64, so files
#            written from a DataFrame carry 1.0 for 1. Refused: 1.5, NaN, Infinity, booleans
#            (true is not 1 here, although Python says so), strings ("1"), null, lists, objects.
#   count    an integer as above that is 0 or more.
#   text     a string with at least one non-space character. Refused: "", "   ", null, numbers,
#            booleans (a number is not silently turned into the string "1").
#   string   any string, "" included (optional labels such as `subject`).
#   options  four options A-D: an object {"A": ..., "D": ...} or a list of four; each option is
#            text, and no two options are equal (compared without surrounding spaces).
#   id list  a list of text, no two equal (e.g. `option_ids`).
#   code list  a list of text (language codes; the codes themselves are checked by the caller).
#   string list  a list of strings, "" included.
#   count map  an object whose values are counts (e.g. facts per split in manifest.json).
#   object   a JSON object.
#
# `check(kind, value)` applies the rule; a null or absent field is the caller's to judge
# (required or optional), so `check` never sees None as a valid value.


class FieldError(ValueError):
    """A value that breaks the type rule: `problem` says how, `fix` what to write instead,
    `category` is a short name for counting skipped items, `part` names a part of the field
    (an option letter, a list position) where the problem lies."""

    def __init__(self, problem: str, fix: str, *, category: str, part: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.category = category
        self.part = part


def json_type(value: Any) -> str:
    """The JSON name of a value's type, with its article: 'a string', 'a boolean', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, numbers.Number):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def show(value: Any, limit: int = 60) -> str:
    """A value as JSON spells it (true, null, "1", 1.5), cut to `limit` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is(value: Any) -> str:
    """'"1" is a string' / 'is null': the start of a type complaint."""
    return "is null" if value is None else f"{show(value)} is {json_type(value)}"


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise FieldError(
            f"{show(value)} is a boolean, not an integer",
            "write the number itself, e.g. 1 (true and false are not numbers here)",
            category="not an integer",
        )
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        raise FieldError(
            f"{show(value)} is not a whole number",
            "write an integer, e.g. 1",
            category="not an integer",
        )
    if isinstance(value, str):
        raise FieldError(
            f"{show(value)} is a string, not an integer",
            "write the number without quotes, e.g. 1",
            category="not an integer",
        )
    raise FieldError(
        f"{_is(value)}, not an integer",
        "write an integer, e.g. 1",
        category="not an integer",
    )


def _count(value: Any) -> int:
    number = _integer(value)
    if number < 0:
        raise FieldError(
            f"{number} is negative", "write a count (0 or more)", category="negative count"
        )
    return number


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError(
            f"{_is(value)}, not a string",
            "write it as a JSON string, in double quotes",
            category="not a string",
        )
    return value


def _text(value: Any) -> str:
    text = _string(value)
    if not text.strip():
        raise FieldError(
            "is empty" if not text else f"is only whitespace ({show(text)})",
            "give the text, or leave the item out",
            category="empty",
        )
    return text


def _parts(value: Any, *, letters: bool) -> list[tuple[str, Any]]:
    """(name, value) of each entry of a list, or of an options object keyed A-D."""
    if letters and isinstance(value, Mapping):
        keys = list(value)
        if sorted(map(str, keys)) != list(OPTION_LETTERS):
            raise FieldError(
                f"keys {show(keys)}, expected exactly {show(list(OPTION_LETTERS))}",
                "give exactly four options A-D",
                category="not four options A-D",
            )
        return [(f"option {k}", value[k]) for k in OPTION_LETTERS]
    if not isinstance(value, list | tuple):
        raise FieldError(
            f"{_is(value)}, not " + ("four options A-D" if letters else "a list"),
            'write {"A": ..., "B": ..., "C": ..., "D": ...} or a list of four'
            if letters
            else "write a JSON list",
            category="not four options A-D" if letters else "not a list",
        )
    if letters and len(value) != len(OPTION_LETTERS):
        raise FieldError(
            f"{len(value)} options, expected four (A-D)",
            "give exactly four options",
            category="not four options A-D",
        )
    names = OPTION_LETTERS if letters else range(len(value))
    return [
        (f"option {n}" if letters else f"entry {n}", v) for n, v in zip(names, value, strict=False)
    ]


def _distinct_texts(value: Any, *, letters: bool) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    out = []
    for name, entry in _parts(value, letters=letters):
        if entry is None:
            raise FieldError(
                "is null",
                "give every option a text" if letters else "give every entry a value",
                category="null entry",
                part=name,
            )
        try:
            text = _text(entry)
        except FieldError as err:
            err.part = name
            raise
        key = text.strip()
        if key in seen:
            raise FieldError(
                f"{show(text)} is the same as {seen[key]}",
                "make the options distinct (four different answers)"
                if letters
                else "make the entries distinct",
                category="duplicate entries",
                part=name,
            )
        seen[key] = name
        out.append(text)
    return tuple(out)


def _options(value: Any) -> tuple[str, ...]:
    # the common case (an object A-D of four distinct texts) without the per-option walk
    if type(value) is dict and len(value) == len(OPTION_LETTERS):
        options = tuple(value.get(k) for k in OPTION_LETTERS)
        if all(type(o) is str for o in options) and len({o.strip() for o in options} - {""}) == 4:
            return options
    return _distinct_texts(value, letters=True)


def _id_list(value: Any) -> tuple[str, ...]:
    if (
        type(value) is list
        and all(type(v) is str and v.strip() for v in value)
        and len({v.strip() for v in value}) == len(value)
    ):
        return tuple(value)
    return _distinct_texts(value, letters=False)


def _code_list(value: Any) -> tuple[str, ...]:
    out = []
    for name, entry in _parts(value, letters=False):
        try:
            out.append(_text(entry))
        except FieldError as err:
            err.part = name
            raise
    return tuple(out)


def _string_list(value: Any) -> tuple[str, ...]:
    out = []
    for name, entry in _parts(value, letters=False):
        try:
            out.append(_string(entry))
        except FieldError as err:
            err.part = name
            raise
    return tuple(out)


def _count_map(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise FieldError(
            f"{_is(value)}, not an object",
            'write an object of counts, e.g. {"train": 10}',
            category="not an object",
        )
    out = {}
    for key, entry in value.items():
        try:
            out[str(key)] = _count(entry)
        except FieldError as err:
            err.part = f"key {show(key)}"
            raise
    return out


def _object(value: Any) -> Mapping:
    if not isinstance(value, Mapping):
        raise FieldError(
            f"{_is(value)}, not an object",
            "write a JSON object {...}",
            category="not an object",
        )
    return value


_KINDS = {
    "integer": _integer,
    "count": _count,
    "string": _string,
    "text": _text,
    "options": _options,
    "id list": _id_list,
    "code list": _code_list,
    "string list": _string_list,
    "count map": _count_map,
    "object": _object,
}


def check(kind: str, value: Any) -> Any:
    """`value` under the type rule for `kind` (normalized: 1.0 -> 1, options -> a tuple), or a
    `FieldError`."""
    # fast paths for the values nearly every item has; the same rule as the functions above
    if type(value) is str and (kind == "string" or (kind == "text" and value.strip())):
        return value
    if type(value) is int and kind == "integer":
        return value
    return _KINDS[kind](value)


# Every field a reader takes from a PolyFact item: (kind, required). Unknown fields are kept as
# they are (`QuestionItem.extra`).
ITEM_FIELDS: dict[str, tuple[str, bool]] = {
    "fact_id": ("text", True),
    "language": ("text", True),
    "question": ("text", True),
    "options": ("options", True),
    "answer_index": ("integer", True),
    "answer_text": ("string", False),
    "subject": ("string", False),
    "relation": ("string", False),
    "object": ("string", False),
    "option_ids": ("id list", False),
    "property_id": ("string", False),
    "subject_id": ("string", False),
    "object_id": ("string", False),
    "subject_label": ("string", False),
    "statement": ("string", False),
    "split": ("text", False),
}

# The file-level fields of the release's per-language JSON files ({"language", "split", "n",
# "items": [...]}); other header fields (dataset, label_schema, ...) are not read.
FILE_FIELDS: dict[str, tuple[str, bool]] = {
    "language": ("text", False),
    "split": ("text", False),
    "n": ("count", False),
    "seed": ("integer", False),
}

# The fields of the manifest.json that `write_polyfact` writes beside the files and that the
# reader checks the files against; other fields are kept as they are in `FactSet.meta`.
MANIFEST_FIELDS: dict[str, tuple[str, bool]] = {
    "format": ("text", False),
    "languages": ("code list", False),
    "n_facts": ("count", False),
    "splits": ("count map", False),
    "relations": ("count map", False),
    "config_fingerprint": ("text", False),
    "report": ("object", False),
    "seed": ("integer", False),
}
