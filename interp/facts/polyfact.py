"""Read and write the PolyFact item format.

Reads the released format wherever a user has it: the per-language JSON files of the release
(an object with `items`, or a plain list), JSON Lines with the same fields, a folder of either,
a Hugging Face `datasets` folder saved with `save_to_disk`, or a hub id (where the user has
network). Items are validated, then grouped into facts by `fact_id` across languages.

Writes the suite's own facts in the same format (`<out>/<split>/<language>.jsonl` plus
`manifest.json`), with the extra fields PolyFact lacked (`option_ids`, `property_id`,
`subject_id`, `object_id`, `subject_label`, `statement`, `split`), so that whatever reads
PolyFact reads these files and the reverse.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp import languages as lang_registry
from interp.errors import DataError
from interp.facts.schema import OPTION_LETTERS, SPLITS, Fact, FactSet, QuestionItem
from interp.io import atomic_directory, atomic_write_text

REQUIRED_FIELDS = ("fact_id", "language", "question", "options", "answer_index")
_KNOWN_FIELDS = frozenset(
    {
        *REQUIRED_FIELDS,
        "answer_text",
        "subject",
        "relation",
        "object",
        "option_ids",
        "property_id",
        "subject_id",
        "object_id",
        "subject_label",
        "statement",
        "split",
    }
)


@dataclass
class SkipReport:
    """Items or facts left out under `skip_invalid`, counted by reason (nothing is dropped silently)."""

    counts: Counter = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)  # reason -> first full message

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] += 1
        self.first.setdefault(reason, message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.counts:
            return "nothing skipped"
        lines = [f"skipped {self.total}:"]
        for reason, n in self.counts.most_common():
            lines.append(f"  {n:6d}  {reason}   (first: {self.first[reason]})")
        return "\n".join(lines)


class _Invalid(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# ----------------------------------------------------------------------------------- reading
@dataclass
class _Row:
    data: dict[str, Any]
    source: str  # file name
    where: str  # "item 3" / "line 4"
    defaults: dict[str, Any]  # file-level fields (language, split) of the release's JSON files


def _rows_from_json(path: Path) -> Iterator[_Row]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}, line {err.lineno}: not valid JSON ({err.msg}). Fix: repair the file, "
            "or give it the .jsonl suffix if it holds one JSON object per line"
        ) from None
    if isinstance(doc, dict):
        if "items" not in doc or not isinstance(doc["items"], list):
            raise DataError(
                f"{path}: a JSON object without an 'items' list. Fix: PolyFact JSON files hold "
                "{'language': ..., 'split': ..., 'items': [...]} or a plain list of items"
            )
        defaults = {k: doc[k] for k in ("language", "split") if k in doc}
        items = doc["items"]
    elif isinstance(doc, list):
        defaults, items = {}, doc
    else:
        raise DataError(f"{path}: expected a JSON object or list, got {type(doc).__name__}")
    for i, item in enumerate(items):
        yield _Row(item, str(path), f"item {i}", defaults)


def _rows_from_jsonl(path: Path) -> Iterator[_Row]:
    defaults = {}
    if path.parent.name in SPLITS:  # our own layout: <out>/<split>/<language>.jsonl
        defaults["split"] = path.parent.name
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}, line {lineno}: not valid JSON ({err.msg}). Fix: one JSON object per line"
                ) from None
            yield _Row(data, str(path), f"line {lineno}", defaults)


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def _rows_from_datasets(obj, source: str) -> Iterator[_Row]:
    from datasets import DatasetDict

    parts = obj.items() if isinstance(obj, DatasetDict) else [(None, obj)]
    for split, dataset in parts:
        defaults = {"split": split} if split in SPLITS else {}
        for i, row in enumerate(dataset):
            yield _Row(dict(row), source, f"{split + ' ' if split else ''}row {i}", defaults)


def _iter_rows(source: str | os.PathLike) -> Iterator[_Row]:
    path = Path(source)
    if path.is_dir():
        if _is_saved_dataset(path):
            from datasets import load_from_disk

            yield from _rows_from_datasets(load_from_disk(str(path)), str(path))
            return
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in (".json", ".jsonl") and p.name != "manifest.json"
        )
        if not files:
            raise DataError(
                f"{path}: no .json or .jsonl files in this folder. Fix: point at PolyFact JSON / "
                "JSON Lines files, a folder of them, or a `datasets` folder"
            )
        for file in files:
            yield from _iter_rows(file)
    elif path.is_file():
        if path.suffix == ".jsonl":
            yield from _rows_from_jsonl(path)
        elif path.suffix == ".json":
            yield from _rows_from_json(path)
        else:
            raise DataError(f"{path}: unknown file type {path.suffix!r}. Fix: use .json or .jsonl")
    elif (
        "/" in str(source)
        and not str(source).startswith((".", "/"))
        and str(source).count("/") == 1
    ):
        # a hub id such as "jvonrad/PolyFact": only where the user has network access
        from datasets import load_dataset

        yield from _rows_from_datasets(load_dataset(str(source)), str(source))
    else:
        raise DataError(f"{source}: no such file or folder. Fix: check the path")


def _parse_item(row: _Row) -> QuestionItem:
    data = {**row.defaults, **row.data}
    place = f"{row.source}, {row.where}"
    if not isinstance(row.data, dict):
        raise _Invalid(
            "not an object", f"{place}: expected a JSON object, got {type(row.data).__name__}"
        )
    for name in REQUIRED_FIELDS:
        if data.get(name) in (None, ""):
            raise _Invalid(
                f"missing field '{name}'",
                f"{place}: missing field '{name}'. Fix: every item needs "
                f"{', '.join(REQUIRED_FIELDS)}",
            )
    fact_id = str(data["fact_id"])
    language = data["language"]
    if language not in lang_registry.LANGUAGES:
        raise _Invalid(
            "unknown language code",
            f"{place} (fact {fact_id}), field 'language': unknown code {language!r}. "
            f"Fix: use one of {' '.join(lang_registry.ALL)}",
        )
    options = data["options"]
    if isinstance(options, dict):
        if sorted(options) != list(OPTION_LETTERS):
            raise _Invalid(
                "options not A-D",
                f"{place} (fact {fact_id}), field 'options': keys {sorted(options)}, expected "
                f"{list(OPTION_LETTERS)}. Fix: give exactly four options A-D",
            )
        options = tuple(str(options[k]) for k in OPTION_LETTERS)
    elif isinstance(options, list | tuple) and len(options) == len(OPTION_LETTERS):
        options = tuple(str(o) for o in options)
    else:
        raise _Invalid(
            "options not A-D",
            f"{place} (fact {fact_id}), field 'options': expected four options A-D, got {options!r}",
        )
    try:
        answer_index = int(data["answer_index"])
    except (TypeError, ValueError):
        raise _Invalid(
            "answer_index not an integer",
            f"{place} (fact {fact_id}), field 'answer_index': {data['answer_index']!r} is not an "
            "integer. Fix: the 0-based index of the correct option",
        ) from None
    if not 0 <= answer_index < len(options):
        raise _Invalid(
            "answer_index out of range",
            f"{place} (fact {fact_id}), field 'answer_index': {answer_index} is out of range for "
            f"{len(options)} options. Fix: a 0-based index from 0 to {len(options) - 1}",
        )
    answer_text = data.get("answer_text")
    if answer_text is not None and answer_text != options[answer_index]:
        where = (
            "is not among the options"
            if answer_text not in options
            else f"is option {options.index(answer_text)}, not answer_index {answer_index}"
        )
        raise _Invalid(
            "answer_text does not match the options",
            f"{place} (fact {fact_id}), field 'answer_text': {answer_text!r} {where}. "
            "Fix: make answer_text equal options[answer_index]",
        )
    option_ids = data.get("option_ids")
    if option_ids is not None:
        option_ids = tuple(str(x) for x in option_ids)
        if len(option_ids) != len(options) or len(set(option_ids)) != len(option_ids):
            raise _Invalid(
                "bad option_ids",
                f"{place} (fact {fact_id}), field 'option_ids': need {len(options)} distinct entity "
                f"ids, one per option, got {list(option_ids)}",
            )
    split = data.get("split")
    if split is not None and split not in SPLITS:
        raise _Invalid(
            "unknown split",
            f"{place} (fact {fact_id}), field 'split': {split!r}. Fix: one of {', '.join(SPLITS)}",
        )
    return QuestionItem(
        fact_id=fact_id,
        language=language,
        question=str(data["question"]),
        options=options,
        answer_index=answer_index,
        subject=str(data.get("subject") or ""),
        relation=str(data.get("relation") or ""),
        object=str(data.get("object") or ""),
        option_ids=option_ids,
        property_id=data.get("property_id"),
        subject_id=data.get("subject_id"),
        object_id=data.get("object_id"),
        subject_label=data.get("subject_label"),
        statement=data.get("statement"),
        split=split,
        extra={k: v for k, v in row.data.items() if k not in _KNOWN_FIELDS},
    )


def _property_of(fact_id: str) -> str | None:
    parts = fact_id.split("|")
    return parts[1] if len(parts) == 3 else None


def _group(items: list[tuple[QuestionItem, str]], languages, skip_invalid, skipped, source):
    by_fact: dict[str, dict[str, QuestionItem]] = defaultdict(dict)
    origin: dict[tuple[str, str], str] = {}
    for item, place in items:
        key = (item.fact_id, item.language)
        if key in origin:
            message = (
                f"{place}: duplicate (fact_id, language) = ({item.fact_id}, {item.language}), "
                f"first seen at {origin[key]}. Fix: keep one item per fact and language"
            )
            if not skip_invalid:
                raise DataError(message)
            skipped.add("duplicate (fact_id, language)", message)
            continue
        origin[key] = place
        by_fact[item.fact_id][item.language] = item

    present = {lang for per_lang in by_fact.values() for lang in per_lang}
    if languages is None:
        languages = tuple(code for code in lang_registry.ALL if code in present)
    else:
        languages = lang_registry.check_codes(languages, source=f"{source}: requested languages")
        absent = [code for code in languages if code not in present]
        if absent:
            raise DataError(
                f"{source}: no items at all in requested language(s) {', '.join(absent)}; "
                f"languages present: {' '.join(sorted(present))}. Fix: request only those"
            )
    facts = []
    for fact_id, per_lang in by_fact.items():
        missing = [code for code in languages if code not in per_lang]
        if missing:
            have = [code for code in languages if code in per_lang]
            message = (
                f"{source}: fact {fact_id} is present in {len(have)} of {len(languages)} languages, "
                f"missing {' '.join(missing)}. Fix: add its items in those languages, request fewer "
                "languages, or pass --skip-invalid to leave such facts out"
            )
            if not skip_invalid:
                raise DataError(message)
            skipped.add("fact missing in some languages", message)
            continue
        try:
            facts.append(_make_fact(fact_id, {code: per_lang[code] for code in languages}, source))
        except _Invalid as err:
            if not skip_invalid:
                raise DataError(str(err)) from None
            skipped.add(err.reason, str(err))
    return facts, languages


def _make_fact(fact_id: str, items: dict[str, QuestionItem], source: str) -> Fact:
    first = next(iter(items.values()))
    splits = {item.split for item in items.values()} - {None}
    if len(splits) > 1:
        raise _Invalid(
            "fact split across splits",
            f"{source}: fact {fact_id} is in several splits {sorted(splits)}. Fix: a fact's "
            "languages must share one split",
        )
    with_ids = [item for item in items.values() if item.option_ids is not None]
    if with_ids:
        reference = with_ids[0]
        for item in with_ids[1:]:
            if (
                set(item.option_ids) != set(reference.option_ids)
                or item.answer_id != reference.answer_id
            ):
                raise _Invalid(
                    "options not aligned across languages",
                    f"{source}: fact {fact_id}, language {item.language}: option_ids "
                    f"{list(item.option_ids)} (answer {item.answer_id}) do not match language "
                    f"{reference.language} {list(reference.option_ids)} (answer {reference.answer_id}). "
                    "Fix: the same entities must stand behind the options in every language",
                )
    return Fact(
        fact_id=fact_id,
        relation=first.relation,
        items=items,
        property_id=first.property_id or _property_of(fact_id),
        subject_id=first.subject_id,
        object_id=first.object_id,
        split=splits.pop() if splits else None,
    )


def read_polyfact(
    source: str | os.PathLike,
    *,
    languages: Iterable[str] | None = None,
    skip_invalid: bool = False,
) -> FactSet:
    """Read PolyFact items (files, folder, `datasets` folder or hub id) into a `FactSet`.

    `languages`: keep only these (default: every language present); every fact must exist in
    all of them. With `skip_invalid`, bad items and incomplete facts are left out and counted
    in `factset.meta["skipped"]` (a `SkipReport`); otherwise the first problem raises a
    `DataError` naming the file, the item, the field and the fix.
    """
    skipped = SkipReport()
    wanted = None if languages is None else set(languages)
    parsed: list[tuple[QuestionItem, str]] = []
    for row in _iter_rows(source):
        place = f"{row.source}, {row.where}"
        try:
            item = _parse_item(row)
        except _Invalid as err:
            if not skip_invalid:
                raise DataError(str(err)) from None
            skipped.add(err.reason, str(err))
            continue
        if wanted is None or item.language in wanted:
            parsed.append((item, place))
    if not parsed:
        raise DataError(f"{source}: no valid items found. Fix: check the path and the format")
    facts, langs = _group(parsed, languages, skip_invalid, skipped, str(source))
    manifest = Path(source) / "manifest.json"
    meta = json.loads(manifest.read_text(encoding="utf-8")) if manifest.is_file() else {}
    meta["source_path"] = str(source)
    meta["skipped"] = skipped
    return FactSet(facts, langs, meta)


# ----------------------------------------------------------------------------------- writing
def item_to_record(item: QuestionItem) -> dict[str, Any]:
    """The PolyFact record of an item; our extra fields follow PolyFact's own."""
    record: dict[str, Any] = {
        "fact_id": item.fact_id,
        "language": item.language,
        "subject": item.subject,
        "relation": item.relation,
        "object": item.object,
        "question": item.question,
        "options": dict(zip(OPTION_LETTERS, item.options, strict=True)),
        "answer_text": item.answer_text,
        "answer_index": item.answer_index,
    }
    record.update(dict(item.extra))
    for name in (
        "option_ids",
        "property_id",
        "subject_id",
        "object_id",
        "subject_label",
        "statement",
        "split",
    ):
        value = getattr(item, name)
        if value is not None:
            record[name] = list(value) if isinstance(value, tuple) else value
    return record


def _jsonl(records: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in records)


def write_polyfact(facts: FactSet, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write `<out>/<split>/<language>.jsonl` and `<out>/manifest.json`, all or nothing.

    The folder is built beside the target and renamed into place, so an interrupted write
    leaves no partial output.
    """
    out = Path(out_dir)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        by_split: dict[str, list[Fact]] = defaultdict(list)
        for fact in facts:
            by_split[fact.split or "all"].append(fact)
        for split, split_facts in sorted(by_split.items()):
            (tmp / split).mkdir()
            for code in facts.languages:
                (tmp / split / f"{code}.jsonl").write_text(
                    _jsonl(item_to_record(f.items[code]) for f in split_facts), encoding="utf-8"
                )
        meta = {k: v for k, v in facts.meta.items() if k not in ("skipped", "source_path")}
        meta.update(
            {
                "format": "polyfact-jsonl",
                "languages": list(facts.languages),
                "n_facts": len(facts),
                "splits": {split: len(fs) for split, fs in sorted(by_split.items())},
                "relations": dict(sorted(facts.relations().items())),
            }
        )
        (tmp / "manifest.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    return out


def write_polyfact_json(
    items: Iterable[QuestionItem], path: str | os.PathLike, *, language: str, split: str, **header
) -> Path:
    """One language's items as a JSON object in the release's per-language file format."""
    records = [item_to_record(item) for item in items]
    doc = {
        "dataset": header.pop("dataset", "interp/world"),
        "language": language,
        "split": split,
        "n": len(records),
    }
    doc.update(header)
    doc["items"] = records
    atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    return Path(path)
