"""Read and write the PolyFact item format.

Reads the released format wherever a user has it: the per-language JSON files of the release
(an object with `items`, or a plain list), JSON Lines with the same fields, a folder of either,
a Hugging Face `datasets` folder saved with `save_to_disk`, or a hub id (where the user has
network). Items are validated, then grouped into facts by `fact_id` across languages.

Every bad input is a `DataError` naming the file, the place (line, item, field, option,
language) and the fix: bytes that are not UTF-8 (a UTF-8 byte-order mark is accepted), invalid
JSON, an empty file, an item that is not an object, a field of the wrong type (one rule for all
readers: `interp.facts.schema.check`), empty or repeated options, an answer index out of
range, a corrupt manifest.json or `datasets` folder, a path that does not exist. Under
`skip_invalid` bad items are left out and counted (`SkipReport`), never dropped silently.

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
from interp.errors import DataError, located
from interp.facts.loading import first_line, json_lines, read_text, resolve_source
from interp.facts.schema import (
    FILE_FIELDS,
    ITEM_FIELDS,
    MANIFEST_FIELDS,
    OPTION_LETTERS,
    SPLITS,
    Fact,
    FactSet,
    FieldError,
    QuestionItem,
    check,
    json_type,
    show,
)
from interp.io import atomic_directory, atomic_write_text

REQUIRED_FIELDS = tuple(name for name, (_kind, required) in ITEM_FIELDS.items() if required)
_KNOWN_FIELDS = frozenset(ITEM_FIELDS)
MANIFEST_FORMAT = "polyfact-jsonl"


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
    data: Any  # the item as parsed (a dict when well formed)
    source: str  # file name
    where: str  # "item 3" / "line 4"
    defaults: dict[str, Any]  # file-level fields (language, split) of the release's JSON files
    declared: bool = False  # defaults written in the file's header (vs. read off a folder name)
    error: _Invalid | None = None  # a row that could not even be parsed (invalid JSON line)


class _Object(dict):
    """A JSON object in which some key appeared more than once (json keeps the last)."""

    duplicate_keys: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen, dups = set(), []
    for key, _ in pairs:
        if key in seen and key not in dups:
            dups.append(key)
        seen.add(key)
    marked = _Object(obj)
    marked.duplicate_keys = tuple(dups)
    return marked


_DECODER = json.JSONDecoder(object_pairs_hook=_object_pairs)


def _loads(text: str) -> Any:
    return _DECODER.decode(text)


def _check_field(name: str, rule: tuple[str, bool], data: dict, source: str, where: str):
    """A field's value under the type rule; (None if absent/null and optional), or `_Invalid`."""
    kind, required = rule
    value = data.get(name)
    if value is None:
        if not required:
            return None
        state = "missing" if name not in data else "null"
        raise _Invalid(
            f"{state} field '{name}'",
            located(
                f"{state} field '{name}'" if state == "missing" else f"field '{name}' is null",
                source=source,
                where=where,
                fix=f"every item needs {', '.join(REQUIRED_FIELDS)}",
            ),
        )
    try:
        return check(kind, value)
    except FieldError as err:
        part = f", {err.part}" if err.part else ""
        raise _Invalid(
            f"{name} {err.category}",
            located(
                err.problem,
                source=source,
                where=", ".join(p for p in (where, f"field '{name}'{part}") if p),
                fix=err.fix,
            ),
        ) from None


def _file_error(path: Path, message: str, fix: str, where: str | None = None) -> DataError:
    return DataError(located(message, source=str(path), where=where, fix=fix))


def _rows_from_json(path: Path) -> Iterator[_Row]:
    text = read_text(path)
    if not text.strip():
        raise _file_error(path, "the file is empty", "write the items into it, or remove it")
    try:
        doc = _loads(text)
    except json.JSONDecodeError as err:
        raise _file_error(
            path,
            f"not valid JSON ({err.msg}, column {err.colno})",
            "repair the file, or give it the .jsonl suffix if it holds one JSON object per line",
            where=f"line {err.lineno}",
        ) from None
    header: dict[str, Any] = {}
    if isinstance(doc, dict):
        if getattr(doc, "duplicate_keys", ()):
            raise _file_error(
                path,
                f"the key {show(doc.duplicate_keys[0])} appears twice at the top level",
                "keep one",
            )
        if "items" not in doc:
            raise _file_error(
                path,
                "a JSON object without an 'items' list",
                "PolyFact JSON files hold {'language': ..., 'split': ..., 'items': [...]} or a "
                "plain list of items",
            )
        items = doc["items"]
        if not isinstance(items, list):
            raise _file_error(
                path,
                f"'items' is {json_type(items)}, not a list",
                'write the items as a JSON list: "items": [{...}, {...}]',
            )
        for name, rule in FILE_FIELDS.items():
            try:
                value = _check_field(name, rule, doc, str(path), "header")
            except _Invalid as err:
                raise DataError(str(err)) from None
            if value is not None:
                header[name] = value
        _check_header(path, header)
    elif isinstance(doc, list):
        items = doc
    else:
        raise _file_error(
            path,
            f"the top level is {json_type(doc)}; expected an object with an 'items' list or a "
            "list of items",
            'write {"items": [{...}, ...]} or [{...}, ...]',
        )
    if not items:
        raise _file_error(path, "the file holds no items", "add items, or remove the file")
    n = header.get("n")
    if n is not None and n != len(items):
        raise _file_error(
            path,
            f"the header says n = {n} but 'items' holds {len(items)} "
            f"item{'s' if len(items) != 1 else ''} (a truncated or edited file?)",
            "restore the missing items, or correct n",
        )
    defaults = {k: header[k] for k in ("language", "split") if k in header}
    for i, item in enumerate(items):
        yield _Row(item, str(path), f"item {i}", defaults, declared=True)


def _check_header(path: Path, header: dict[str, Any]) -> None:
    language, split = header.get("language"), header.get("split")
    if language is not None and language not in lang_registry.LANGUAGES:
        raise _file_error(
            path,
            f"unknown language code {show(language)}",
            f"use one of {' '.join(lang_registry.ALL)}",
            where="header, field 'language'",
        )
    if split is not None and split not in SPLITS:
        raise _file_error(
            path,
            f"unknown split {show(split)}",
            f"one of {', '.join(SPLITS)}",
            "header, field 'split'",
        )


def _rows_from_jsonl(path: Path) -> Iterator[_Row]:
    defaults = {}
    if path.parent.name in SPLITS:  # our own layout: <out>/<split>/<language>.jsonl
        defaults["split"] = path.parent.name
    text = read_text(path)
    if not text.strip():
        raise _file_error(path, "the file is empty", "write the items into it, or remove it")
    for lineno, line in enumerate(json_lines(text), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            data = _loads(line)
        except json.JSONDecodeError as err:
            hint = (
                "a byte-order mark in the middle of the file (files joined with cat?): remove it"
                if line.startswith("\ufeff")
                else "one complete JSON object per line (a pretty-printed JSON document belongs "
                "in a .json file)"
            )
            message = located(
                f"not valid JSON ({err.msg}, column {err.colno})",
                source=str(path),
                where=where,
                fix=hint,
            )
            yield _Row(None, str(path), where, defaults, error=_Invalid("not valid JSON", message))
            continue
        yield _Row(data, str(path), where, defaults)


# --- `datasets` folders (save_to_disk): check the metadata before handing it to `datasets`
def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def _read_json_file(path: Path, what: str) -> Any:
    text = read_text(path)
    if not text.strip():
        raise _file_error(path, f"the {what} is empty", "restore it, or re-save the folder")
    try:
        return _loads(text)
    except json.JSONDecodeError as err:
        raise _file_error(
            path,
            f"the {what} is not valid JSON ({err.msg}, column {err.colno})",
            "restore it, or re-save the folder",
            where=f"line {err.lineno}",
        ) from None


def _check_saved_dataset(path: Path) -> None:
    fix = "re-save it with Dataset.save_to_disk / DatasetDict.save_to_disk"
    if (path / "dataset_dict.json").exists():
        meta_file = path / "dataset_dict.json"
        meta = _read_json_file(meta_file, "`datasets` split list")
        splits = meta.get("splits") if isinstance(meta, dict) else None
        if not isinstance(splits, list) or not all(isinstance(s, str) and s for s in splits):
            raise _file_error(
                meta_file,
                f'expected {{"splits": [names]}}, got {show(meta)}',
                fix,
                where="field 'splits'",
            )
        for split in splits:
            if not (path / split).is_dir():
                raise _file_error(
                    meta_file,
                    f"lists split {show(split)} but there is no folder {path / split}",
                    fix,
                )
            _check_saved_split(path / split, fix)
    else:
        _check_saved_split(path, fix)


def _check_saved_split(folder: Path, fix: str) -> None:
    state_file = folder / "state.json"
    if not state_file.exists():
        raise _file_error(folder, "a `datasets` split folder without state.json", fix)
    state = _read_json_file(state_file, "`datasets` state file")
    files = state.get("_data_files") if isinstance(state, dict) else None
    if not isinstance(files, list) or not all(
        isinstance(f, dict) and isinstance(f.get("filename"), str) for f in files
    ):
        raise _file_error(
            state_file,
            f"expected '_data_files': [{{\"filename\": ...}}], got {show(files)}",
            fix,
            where="field '_data_files'",
        )
    for entry in files:
        if not (folder / entry["filename"]).is_file():
            raise _file_error(
                state_file, f"lists {entry['filename']} but that file is missing", fix
            )
    info = folder / "dataset_info.json"
    if info.exists() and not isinstance(_read_json_file(info, "`datasets` info file"), dict):
        raise _file_error(info, "expected a JSON object", fix)


def _rows_from_saved_dataset(path: Path) -> Iterator[_Row]:
    _check_saved_dataset(path)
    from datasets import load_from_disk

    try:
        obj = load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001 -- any failure of the loader becomes a located error
        raise _file_error(
            path,
            f"not readable as a `datasets` folder ({first_line(err)})",
            "re-save it with save_to_disk, or point at PolyFact .json/.jsonl files",
        ) from None
    yield from _rows_from_datasets(obj, str(path))


def _rows_from_datasets(obj, source: str) -> Iterator[_Row]:
    from datasets import DatasetDict

    parts = obj.items() if isinstance(obj, DatasetDict) else [(None, obj)]
    for split, dataset in parts:
        defaults = {"split": split} if split in SPLITS else {}
        rows = iter(dataset)
        i = 0
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except Exception as err:  # noqa: BLE001 -- a corrupt arrow file, say
                raise DataError(
                    located(
                        f"cannot read row {i} ({first_line(err)})",
                        source=source,
                        where=f"split {split}" if split else None,
                        fix="re-save the dataset with save_to_disk",
                    )
                ) from None
            yield _Row(dict(row), source, f"{split + ' ' if split else ''}row {i}", defaults)
            i += 1


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _iter_rows(source: str | os.PathLike) -> Iterator[_Row]:
    resolved = resolve_source(source)
    if isinstance(resolved, str):  # may be a hub id such as "jvonrad/PolyFact" (needs network)
        yield from _rows_from_hub(resolved)
        return
    path = resolved
    if path.is_dir():
        if _is_saved_dataset(path):
            yield from _rows_from_saved_dataset(path)
            return
        # hidden entries (.ipynb_checkpoints, a `.name.xxx.tmp` left by an interrupted write)
        # are not data
        files = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in (".json", ".jsonl")
            and p.name != "manifest.json"
            and p.is_file()
            and not _is_hidden(p, path)
        )
        if not files:
            raise DataError(
                located(
                    "no .json or .jsonl files in this folder",
                    source=str(path),
                    fix="point at PolyFact JSON / JSON Lines files, a folder of them, or a "
                    "`datasets` folder",
                )
            )
        for file in files:
            yield from _iter_rows(file)
    elif path.suffix == ".jsonl":
        yield from _rows_from_jsonl(path)
    elif path.suffix == ".json":
        yield from _rows_from_json(path)
    else:
        raise DataError(
            located(
                f"unknown file type {path.suffix or '(no suffix)'!r}",
                source=str(path),
                fix="use .json (the release's files) or .jsonl (one item per line)",
            )
        )


def _rows_from_hub(name: str) -> Iterator[_Row]:
    from datasets import load_dataset

    try:
        obj = load_dataset(name)
    except Exception as err:  # noqa: BLE001 -- offline, unknown id, ...: one located error
        raise DataError(
            located(
                f"no such file or folder here, and loading it as a hub dataset id failed "
                f"({first_line(err)})",
                source=name,
                fix="check the path; for a hub id check the name and your network (HF_HUB_OFFLINE)",
            )
        ) from None
    yield from _rows_from_datasets(obj, name)


def _parse_item(row: _Row) -> QuestionItem:
    if not isinstance(row.data, dict):
        raise _Invalid(
            "item not an object",
            located(
                f'expected a JSON object (one item: {{"fact_id": ..., "question": ...}}), got '
                f"{json_type(row.data)}{'' if row.data is None else ' ' + show(row.data, 40)}",
                source=row.source,
                where=row.where,
                fix="write each item as one JSON object",
            ),
        )
    duplicates = getattr(row.data, "duplicate_keys", ())
    if duplicates:
        raise _Invalid(
            "repeated key",
            located(
                f"the key {show(duplicates[0])} appears twice in this item (JSON keeps only the "
                "last, silently)",
                source=row.source,
                where=row.where,
                fix="keep one",
            ),
        )
    data = {**row.defaults, **row.data}
    source = row.source
    fact_id = _check_field("fact_id", ITEM_FIELDS["fact_id"], data, source, row.where)
    where = f"{row.where} (fact {fact_id})"
    if row.declared:
        for name, value in row.defaults.items():
            if name in row.data and row.data[name] != value:
                raise _Invalid(
                    f"{name} differs from the file's",
                    located(
                        f"{show(row.data[name])}, but the file's header says {show(value)}",
                        source=source,
                        where=f"{where}, field '{name}'",
                        fix=f"put the item in a file for {name} {show(row.data[name])}, or "
                        "correct the field",
                    ),
                )
    values = {}
    for name, rule in ITEM_FIELDS.items():
        if name != "fact_id":
            # an absent optional field needs no call
            values[name] = (
                None
                if rule[1] is False and data.get(name) is None
                else _check_field(name, rule, data, source, where)
            )
    language, options, answer_index = values["language"], values["options"], values["answer_index"]
    if language not in lang_registry.LANGUAGES:
        raise _Invalid(
            "unknown language code",
            located(
                f"unknown code {language!r}",
                source=source,
                where=f"{where}, field 'language'",
                fix=f"use one of {' '.join(lang_registry.ALL)}",
            ),
        )
    if not 0 <= answer_index < len(options):
        raise _Invalid(
            "answer_index out of range",
            located(
                f"{answer_index} is out of range for {len(options)} options",
                source=source,
                where=f"{where}, field 'answer_index'",
                fix=f"a 0-based index from 0 to {len(options) - 1}",
            ),
        )
    answer_text = values["answer_text"]
    if answer_text is not None and answer_text != options[answer_index]:
        if answer_text not in options:
            problem = f"{show(answer_text)} is not among the options"
        else:
            problem = (
                f"{show(answer_text)} is option {options.index(answer_text)}, not answer_index "
                f"{answer_index}"
            )
        raise _Invalid(
            "answer_text does not match the options",
            located(
                problem,
                source=source,
                where=f"{where}, field 'answer_text'",
                fix="make answer_text equal options[answer_index]",
            ),
        )
    option_ids = values["option_ids"]
    if option_ids is not None and len(option_ids) != len(options):
        raise _Invalid(
            "bad option_ids",
            located(
                f"need {len(options)} distinct entity ids, one per option, got {list(option_ids)}",
                source=source,
                where=f"{where}, field 'option_ids'",
                fix="give one entity id per option, in the options' order",
            ),
        )
    split = values["split"]
    if split is not None and split not in SPLITS:
        raise _Invalid(
            "unknown split",
            located(
                f"unknown split {show(split)}",
                source=source,
                where=f"{where}, field 'split'",
                fix=f"one of {', '.join(SPLITS)}",
            ),
        )
    return QuestionItem(
        fact_id=fact_id,
        language=language,
        question=values["question"],
        options=options,
        answer_index=answer_index,
        subject=values["subject"] or "",
        relation=values["relation"] or "",
        object=values["object"] or "",
        option_ids=option_ids,
        property_id=values["property_id"],
        subject_id=values["subject_id"],
        object_id=values["object_id"],
        subject_label=values["subject_label"],
        statement=values["statement"],
        split=split,
        extra={k: v for k, v in row.data.items() if k not in _KNOWN_FIELDS},
    )


def _property_of(fact_id: str) -> str | None:
    parts = fact_id.split("|")
    return parts[1] if len(parts) == 3 else None


def _group(
    items: list[tuple[QuestionItem, str]], languages, skip_invalid, skipped, source, seen=None
):
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
                f"languages present: {' '.join(sorted(seen or present)) or 'none'}. "
                "Fix: request only those"
            )
    facts = []
    for fact_id, per_lang in by_fact.items():
        missing = [code for code in languages if code not in per_lang]
        if missing:
            have = [code for code in languages if code in per_lang]
            message = (
                f"{source}: fact {fact_id} is present in {len(have)} of {len(languages)} languages, "
                f"missing {' '.join(missing)} (its {have[0]} item: {origin[(fact_id, have[0])]}). "
                "Fix: add its items in those languages, request fewer "
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


# ------------------------------------------------------------------------------ manifest.json
def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest.json that `write_polyfact` wrote in `folder` (None if there is none),
    checked: valid JSON, an object, the known fields of the right types (`MANIFEST_FIELDS`),
    known language codes. Anything else is a `DataError` naming manifest.json and the field."""
    path = Path(os.path.expanduser(str(folder))) / "manifest.json"
    if not path.is_file():
        return None
    fix = "restore it, or rebuild the folder (interp facts build --overwrite)"
    text = read_text(path)
    if not text.strip():
        raise _file_error(path, "the manifest is empty", fix)
    try:
        meta = _loads(text)
    except json.JSONDecodeError as err:
        raise _file_error(
            path,
            f"the manifest is not valid JSON ({err.msg}, column {err.colno})",
            fix,
            where=f"line {err.lineno}",
        ) from None
    if not isinstance(meta, dict):
        raise _file_error(path, f"the manifest is {json_type(meta)}, not a JSON object", fix)
    for name, rule in MANIFEST_FIELDS.items():
        try:
            value = _check_field(name, rule, meta, str(path), "")
        except _Invalid as err:
            raise DataError(str(err)) from None
        if value is not None and name in ("languages", "n_facts", "splits", "relations"):
            meta[name] = list(value) if name == "languages" else value
    if meta.get("format") not in (None, MANIFEST_FORMAT):
        raise _file_error(
            path,
            f"format {show(meta['format'])} is not {MANIFEST_FORMAT!r}",
            "point at a folder written by `interp facts build` / write_polyfact, or remove "
            "this manifest.json if it is not one",
            where="field 'format'",
        )
    codes = meta.get("languages") or []
    unknown = [c for c in codes if c not in lang_registry.LANGUAGES]
    if unknown or len(set(codes)) != len(codes):
        problem = (
            f"unknown language code(s) {', '.join(map(show, unknown))}"
            if unknown
            else f"a language listed twice in {show(codes)}"
        )
        raise _file_error(path, problem, fix, where="field 'languages'")
    bad_splits = [s for s in meta.get("splits") or {} if s not in (*SPLITS, "all")]
    if bad_splits:
        raise _file_error(
            path,
            f"unknown split(s) {', '.join(map(show, bad_splits))}",
            fix,
            where="field 'splits'",
        )
    _check_report(path, meta.get("report"), fix)
    return meta


def _check_report(path: Path, report, fix: str) -> None:
    """The build report kept in the manifest (shown by `interp facts show`)."""
    if report is None or report.get("dropped") is None:
        return
    dropped = report["dropped"]
    rules = {"relation": "text", "reason": "text", "count": "count", "examples": "string list"}
    if not isinstance(dropped, list):
        raise _file_error(
            path, f"{json_type(dropped)}, not a list", fix, where="field 'report', 'dropped'"
        )
    for i, row in enumerate(dropped):
        where = f"field 'report', 'dropped' entry {i}"
        if not isinstance(row, dict):
            raise _file_error(path, f"{json_type(row)}, not an object", fix, where=where)
        for name, kind in rules.items():
            if row.get(name) is None:
                raise _file_error(path, f"no '{name}'", fix, where=where)
            try:
                check(kind, row[name])
            except FieldError as err:
                part = f", {err.part}" if err.part else ""
                raise _file_error(
                    path, err.problem, fix, where=f"{where}, '{name}'{part}"
                ) from None


def _check_against_manifest(
    meta: dict[str, Any],
    facts: list[Fact],
    seen: set[str],
    wanted: set[str] | None,
    folder: str,
    skip_invalid: bool,
) -> None:
    """The files must hold what manifest.json says was written: a language file deleted or a
    split folder moved away would otherwise read as a smaller, silently different fact set."""
    manifest = Path(folder) / "manifest.json"
    fix = "restore the missing files, or rebuild the folder (interp facts build --overwrite)"
    missing = [
        code
        for code in meta.get("languages") or []
        if code not in seen and (wanted is None or code in wanted)
    ]
    if missing:
        raise DataError(
            located(
                f"lists language(s) {' '.join(missing)}, but the folder holds no "
                f"items in {' '.join(missing)} (a language file is missing or was moved)",
                source=str(manifest),
                fix=fix,
            )
        )
    if skip_invalid:  # the counts differ by what was skipped, which the SkipReport states
        return
    n_facts = meta.get("n_facts")
    if n_facts is not None and n_facts != len(facts):
        raise DataError(
            located(
                f"says n_facts = {n_facts}, but the files hold {len(facts)} facts",
                source=str(manifest),
                fix=fix,
            )
        )
    splits = meta.get("splits")
    if splits is not None:
        have = Counter(f.split or "all" for f in facts)
        differ = {s for s in set(splits) | set(have) if splits.get(s, 0) != have.get(s, 0)}
        if differ:
            said = ", ".join(f"{s} {splits.get(s, 0)}" for s in sorted(differ))
            found = ", ".join(f"{s} {have.get(s, 0)}" for s in sorted(differ))
            raise DataError(
                located(
                    f"says facts per split {said}, but the files hold {found}",
                    source=str(manifest),
                    fix=fix,
                )
            )


# ----------------------------------------------------------------------------------- reading
def read_polyfact(
    source: str | os.PathLike,
    *,
    languages: Iterable[str] | None = None,
    skip_invalid: bool = False,
) -> FactSet:
    """Read PolyFact items (files, folder, `datasets` folder or hub id) into a `FactSet`.

    `languages`: keep only these (default: every language present); every fact must exist in
    all of them. With `skip_invalid`, bad items (and invalid JSON Lines lines) and incomplete
    facts are left out and counted in `factset.meta["skipped"]` (a `SkipReport`); otherwise the
    first problem raises a `DataError` naming the file, the item, the field and the fix.
    Problems of a whole file (not UTF-8, not JSON, empty, a corrupt manifest.json) always raise.
    """
    if languages is not None:
        languages = lang_registry.check_codes(languages, source=f"{source}: requested languages")
    folder = Path(os.path.expanduser(str(source)))
    manifest = read_manifest(folder) if folder.is_dir() else None
    skipped = SkipReport()
    wanted = None if languages is None else set(languages)
    parsed: list[tuple[QuestionItem, str]] = []
    seen: set[str] = set()
    for row in _iter_rows(source):
        place = f"{row.source}, {row.where}"
        try:
            if row.error is not None:
                raise row.error
            item = _parse_item(row)
        except _Invalid as err:
            if not skip_invalid:
                raise DataError(str(err)) from None
            skipped.add(err.reason, str(err))
            continue
        seen.add(item.language)
        if wanted is None or item.language in wanted:
            parsed.append((item, place))
    if not parsed and (wanted is None or not seen):
        raise DataError(
            located(
                "no valid items found",
                source=str(source),
                fix="repair the items (run without --skip-invalid to see the first problem)"
                if skipped.total
                else "check the path and the format",
            )
            + (f"\n{skipped.summary()}" if skipped.total else "")
        )
    facts, langs = _group(parsed, languages, skip_invalid, skipped, str(source), seen)
    if not facts:
        raise DataError(
            located(
                f"no complete facts left in {' '.join(langs)}",
                source=str(source),
                fix="request fewer languages, or repair the items",
            )
            + f"\n{skipped.summary()}"
        )
    if manifest is not None:
        _check_against_manifest(manifest, facts, seen, wanted, str(folder), skip_invalid)
    meta = dict(manifest) if manifest else {}
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
