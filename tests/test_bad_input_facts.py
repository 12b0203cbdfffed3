"""Bad facts files and bad corpora end in one clear error through the real CLI.

Each case writes one broken input into tmp_path and runs `interp facts validate` and
`interp facts show` on it (corpora: `interp score CHECKPOINT --corpus DIR`). Every case must
return 1 and print one message that starts with "interp: error:", names the input, says where
(line, item, field, option, language), carries "Fix:", shows no traceback, and leaves nothing
written beside the input. The expected words are what the message must say about each input,
written here from the input, not copied from the output.

Positive controls: a UTF-8 byte-order mark is accepted and changes nothing; an integral float
(1.0) is accepted where an integer is required (the type rule in interp.facts.schema); the
paper's released items and our own written folders still load.
"""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

import pytest

from interp.cli import main
from interp.facts import read_polyfact, write_polyfact
from interp.facts.schema import FieldError, check

FACT = "Q17|P36|Q1490"
GOOD = [
    {
        "fact_id": FACT,
        "language": "en",
        "question": "What is the capital of Japan?",
        "options": {"A": "Tokyo", "B": "Paris", "C": "Rome", "D": "Oslo"},
        "answer_index": 0,
        "answer_text": "Tokyo",
    },
    {
        "fact_id": FACT,
        "language": "de",
        "question": "Was ist die Hauptstadt Japans?",
        "options": {"A": "Paris", "B": "Tokio", "C": "Oslo", "D": "Rom"},
        "answer_index": 1,
        "answer_text": "Tokio",
    },
]


def _line(row) -> bytes:
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _rows(**changes) -> list[dict]:
    """The two good items, the German one (line 2 / item 1) changed by `changes`."""
    rows = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is _DELETE:
            del rows[1][key]
        else:
            rows[1][key] = value
    return rows


_DELETE = object()
LINE1 = _line(GOOD[0])


def _jsonl(name: str, data: bytes):
    def write(tmp: Path):
        (tmp / name).write_bytes(data)
        return tmp / name

    return write


def _items(name: str, **changes):
    """A .jsonl file of the two items with the German one changed."""
    return _jsonl(name, b"".join(_line(r) for r in _rows(**changes)))


def _json(name: str, doc, *, raw: bytes | None = None):
    def write(tmp: Path):
        data = raw if raw is not None else json.dumps(doc, ensure_ascii=False).encode("utf-8")
        (tmp / name).write_bytes(data)
        return tmp / name

    return write


def _german_option_c(value):
    return _items("options.jsonl", options={"A": "Paris", "B": "Tokio", "C": value, "D": "Rom"})


# a Latin-1 file: "Köln" on line 4 of the pretty-printed document
LATIN1_DOC = json.dumps({"items": [{**GOOD[1], "question": "Köln?"}]}, ensure_ascii=False, indent=2)
LATIN1_LINE = next(i for i, line in enumerate(LATIN1_DOC.split("\n"), 1) if "Köln" in line)


# ------------------------------------------------------------------------- folders
def _world(tmp: Path, name: str = "world") -> Path:
    """A folder written by write_polyfact: 3 facts x (en, de), manifest.json beside the files."""
    rows = []
    for i, fact in enumerate((FACT, "Q142|P36|Q90", "Q183|P36|Q64")):
        rows += [{**r, "fact_id": fact, "split": "test" if i else "train"} for r in _rows()]
    (tmp / "rows.jsonl").write_bytes(b"".join(_line(r) for r in rows))
    facts = read_polyfact(tmp / "rows.jsonl")
    (tmp / "rows.jsonl").unlink()
    return write_polyfact(facts, tmp / name)


def _world_with(change):
    def write(tmp: Path):
        folder = _world(tmp)
        change(folder)
        return folder

    return write


def _manifest(**fields):
    def change(folder: Path):
        meta = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        meta.update(fields)
        (folder / "manifest.json").write_text(json.dumps(meta), encoding="utf-8")

    return _world_with(change)


def _manifest_text(text: str):
    return _world_with(lambda folder: (folder / "manifest.json").write_text(text))


def _saved_dataset(change):
    def write(tmp: Path):
        from datasets import Dataset

        folder = tmp / "ds"
        Dataset.from_list([{k: v for k, v in r.items()} for r in GOOD]).save_to_disk(str(folder))
        change(folder)
        return folder

    return write


def _saved_dataset_dict(change):
    def write(tmp: Path):
        from datasets import Dataset, DatasetDict

        folder = tmp / "dd"
        DatasetDict({"test": Dataset.from_list(GOOD)}).save_to_disk(str(folder))
        change(folder)
        return folder

    return write


def _saved_rows(rows):
    def write(tmp: Path):
        from datasets import Dataset

        Dataset.from_list(rows).save_to_disk(str(tmp / "ds"))
        return tmp / "ds"

    return write


def _remove_arrow(folder: Path):
    for file in folder.glob("*.arrow"):
        file.unlink()


def _missing(path: str, make: tuple[str, ...] = ()):
    """A path that does not exist (relative ones resolve in tmp_path, the test's cwd)."""

    def write(tmp: Path):
        for folder in make:
            (tmp / folder).mkdir()
        return path

    return write


def _folder_without_json(tmp: Path):
    (tmp / "facts").mkdir()
    (tmp / "facts" / "notes.txt").write_text("no items here")
    return tmp / "facts"


# (name, write the bad input into tmp_path and return the path to give, words the message says)
CASES = [
    # --- bytes that are not UTF-8 text: the file, the line, the byte offset
    (
        "non_utf8_bytes",
        _jsonl("facts.jsonl", LINE1 + b'{"fact_id": "\xff\xfe"}\n'),
        ["not valid UTF-8", "line 2", f"byte offset {len(LINE1) + 13}", "UTF-8"],
    ),
    (
        "latin1_encoded_json",
        _json("latin1.json", None, raw=LATIN1_DOC.encode("latin-1")),
        ["not valid UTF-8", f"line {LATIN1_LINE}", "UTF-8"],
    ),
    (
        "binary_png",
        _json("facts.json", None, raw=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
        ["binary"],
    ),
    (
        "nul_byte_in_line_2",
        _jsonl("facts.jsonl", LINE1 + b'{"fact_id": "a\x00"}\n'),
        ["binary", "line 2", f"byte offset {len(LINE1) + 14}"],
    ),
    ("utf16_file", _json("facts.json", None, raw=json.dumps(GOOD).encode("utf-16")), ["UTF-16"]),
    # --- JSON that is broken, empty or shaped wrong
    (
        "malformed_json",
        _json("facts.json", None, raw=b'[\n  {"fact_id": "x"},\n  {"fact_id": "y",}\n]'),
        ["not valid JSON", "line 3"],
    ),
    (
        "malformed_jsonl_line",
        _jsonl("facts.jsonl", LINE1 + b'{"fact_id": \n'),
        ["not valid JSON", "line 2"],
    ),
    ("empty_file", _jsonl("facts.jsonl", b""), ["empty"]),
    ("whitespace_only_file", _json("facts.json", None, raw=b"  \n\n\t"), ["empty"]),
    ("no_items", _json("facts.json", {"language": "en", "items": []}), ["no items"]),
    ("top_level_string", _json("facts.json", "hello"), ["top level", "string"]),
    ("object_without_items", _json("facts.json", {"language": "en"}), ["'items'"]),
    ("items_not_a_list", _json("facts.json", {"items": {"a": 1}}), ["'items'", "not a list"]),
    (
        "item_is_a_list",
        _jsonl("facts.jsonl", LINE1 + b'["Q17", "en"]\n'),
        ["line 2", "object", "list"],
    ),
    ("item_is_a_string", _json("facts.json", [GOOD[0], "Tokyo"]), ["item 1", "object", "string"]),
    (
        "item_is_a_number",
        _json("facts.json", {"items": [GOOD[0], 7]}),
        ["item 1", "object", "number"],
    ),
    ("item_is_null", _json("facts.json", [GOOD[0], None]), ["item 1", "object", "null"]),
    (
        "key_given_twice",
        _jsonl(
            "facts.jsonl",
            LINE1
            + _line(GOOD[1]).replace(b'"answer_index": 1', b'"answer_index": 3, "answer_index": 1'),
        ),
        ["line 2", "answer_index", "twice"],
    ),
    # --- the type rule: integers
    (
        "index_fraction",
        _items("facts.jsonl", answer_index=1.5),
        ["line 2", "'answer_index'", "1.5"],
    ),
    (
        "index_boolean",
        _items("facts.jsonl", answer_index=True),
        ["line 2", "'answer_index'", "true", "boolean"],
    ),
    (
        "index_string",
        _items("facts.jsonl", answer_index="1"),
        ["line 2", "'answer_index'", '"1"', "string"],
    ),
    (
        "index_nan",
        _jsonl(
            "facts.jsonl",
            LINE1 + _line(GOOD[1]).replace(b'"answer_index": 1', b'"answer_index": NaN'),
        ),
        ["line 2", "'answer_index'", "NaN"],
    ),
    ("index_null", _items("facts.jsonl", answer_index=None), ["line 2", "'answer_index'", "null"]),
    (
        "index_missing",
        _items("facts.jsonl", answer_index=_DELETE),
        ["line 2", "'answer_index'", "missing"],
    ),
    (
        "header_n_string",
        _json("facts.json", {"language": "de", "n": "1", "items": [GOOD[1]]}),
        ["header", "'n'", "string"],
    ),
    (
        "header_n_disagrees",
        _json("facts.json", {"language": "de", "n": 5, "items": [GOOD[1]]}),
        ["header", "5", "1 item"],
    ),
    ("fact_id_number", _items("facts.jsonl", fact_id=17), ["line 2", "'fact_id'", "string"]),
    # --- options
    ("option_empty", _german_option_c(""), ["line 2", "'options'", "option C", "empty"]),
    ("option_whitespace", _german_option_c("   "), ["line 2", "option C", "whitespace"]),
    ("option_null", _german_option_c(None), ["line 2", "option C", "null"]),
    ("option_number", _german_option_c(1990), ["line 2", "option C", "string"]),
    ("option_duplicate", _german_option_c("Paris "), ["line 2", "option C", "option A", "Paris"]),
    (
        "three_options",
        _items("facts.jsonl", options=["Paris", "Tokio", "Rom"], answer_text=_DELETE),
        ["line 2", "'options'", "four"],
    ),
    (
        "option_letter_e",
        _items("facts.jsonl", options={"A": "Paris", "B": "Tokio", "C": "Oslo", "E": "Rom"}),
        ["line 2", "'options'", '"E"'],
    ),
    # --- questions
    ("question_empty", _items("facts.jsonl", question=""), ["line 2", "'question'", "empty"]),
    (
        "question_whitespace",
        _items("facts.jsonl", question=" \t "),
        ["line 2", "'question'", "whitespace"],
    ),
    ("question_null", _items("facts.jsonl", question=None), ["line 2", "'question'", "null"]),
    (
        "question_missing",
        _items("facts.jsonl", question=_DELETE),
        ["line 2", "'question'", "missing"],
    ),
    # --- the answer
    (
        "index_too_large",
        _items("facts.jsonl", answer_index=4),
        ["line 2", "'answer_index'", "4", "out of range"],
    ),
    (
        "index_negative",
        _items("facts.jsonl", answer_index=-1),
        ["line 2", "'answer_index'", "-1", "out of range"],
    ),
    (
        "answer_text_elsewhere",
        _items("facts.jsonl", answer_text="Kyoto"),
        ["line 2", "'answer_text'", "Kyoto"],
    ),
    # --- languages, facts, files
    ("unknown_language", _items("facts.jsonl", language="xx"), ["line 2", "'language'", "'xx'"]),
    (
        "language_differs_from_header",
        _json("polyfact_en.json", {"language": "en", "items": GOOD}),
        ["item 1", "'language'", '"de"', '"en"'],
    ),
    (
        "same_fact_twice",
        _jsonl("facts.jsonl", LINE1 + _line(GOOD[1]) + _line(GOOD[1])),
        ["duplicate", "line 3", "line 2", "de"],
    ),
    (
        "fact_missing_a_language",
        _jsonl(
            "facts.jsonl", LINE1 + _line(GOOD[1]) + _line({**GOOD[0], "fact_id": "Q142|P36|Q90"})
        ),
        ["Q142|P36|Q90", "missing de", "line 3"],
    ),
    ("csv_file", _jsonl("facts.csv", b"fact_id,question\n"), ["'.csv'"]),
    ("folder_without_json", _folder_without_json, ["no .json or .jsonl"]),
    # --- a folder written by write_polyfact whose manifest.json is corrupt or contradicted
    (
        "manifest_invalid_json",
        _manifest_text('{"n_facts": 3,\n "languages": ]}'),
        ["manifest.json", "not valid JSON", "line 2"],
    ),
    ("manifest_a_list", _manifest_text("[]"), ["manifest.json", "list", "object"]),
    ("manifest_empty", _manifest_text(""), ["manifest.json", "empty"]),
    ("manifest_n_facts_string", _manifest(n_facts="3"), ["manifest.json", "'n_facts'", "string"]),
    ("manifest_n_facts_fraction", _manifest(n_facts=2.5), ["manifest.json", "'n_facts'", "2.5"]),
    (
        "manifest_languages_string",
        _manifest(languages="en de"),
        ["manifest.json", "'languages'", "list"],
    ),
    (
        "manifest_unknown_language",
        _manifest(languages=["en", "xx"]),
        ["manifest.json", "'languages'", "xx"],
    ),
    (
        "manifest_split_count_boolean",
        _manifest(splits={"test": True}),
        ["manifest.json", "'splits'", "boolean"],
    ),
    (
        "manifest_report_rows_wrong",
        _manifest(report={"dropped": "none"}),
        ["manifest.json", "'report'", "list"],
    ),
    (
        "manifest_language_file_deleted",
        _world_with(lambda folder: [p.unlink() for p in folder.rglob("de.jsonl")]),
        ["manifest.json", "de", "missing"],
    ),
    (
        "manifest_n_facts_disagrees",
        _manifest(n_facts=4),
        ["manifest.json", "n_facts", "4", "3 facts"],
    ),
    (
        "manifest_splits_disagree",
        _manifest(splits={"train": 2, "test": 1}),
        ["manifest.json", "train 2", "train 1"],
    ),
    # --- a `datasets` folder (save_to_disk) with corrupt metadata
    (
        "datasets_state_not_json",
        _saved_dataset(lambda d: (d / "state.json").write_text("{oops")),
        ["state.json", "not valid JSON", "line 1"],
    ),
    (
        "datasets_state_wrong_types",
        _saved_dataset(lambda d: (d / "state.json").write_text('{"_data_files": "data.arrow"}')),
        ["state.json", "'_data_files'"],
    ),
    ("datasets_arrow_missing", _saved_dataset(_remove_arrow), ["state.json", ".arrow", "missing"]),
    (
        "datasets_split_list_not_a_list",
        _saved_dataset_dict(lambda d: (d / "dataset_dict.json").write_text('{"splits": "test"}')),
        ["dataset_dict.json", "'splits'"],
    ),
    (
        "datasets_row_boolean_index",
        _saved_rows([{**r, "answer_index": bool(r["answer_index"])} for r in GOOD]),
        ["row 0", "'answer_index'", "false", "boolean"],
    ),
    # --- paths that do not exist: "no such file", never a hub lookup of a local-looking path
    ("missing_dot_relative", _missing("./nope.jsonl"), ["no such file"]),
    ("missing_parent_relative", _missing("../interp-no-such-folder/nope.jsonl"), ["no such file"]),
    ("missing_home", _missing("~/interp-no-such-file-8c1f.jsonl"), ["no such file"]),
    ("missing_nested", _missing("sub/dir/nope"), ["no such file"]),
    ("missing_json_suffix", _missing("nope.json"), ["no such file"]),
    ("missing_owner_is_local_folder", _missing("data/world", make=("data",)), ["no such file"]),
    ("missing_hub_like_offline", _missing("nobody-8c1f/nothing"), ["no such file"]),
]


def _tree(root: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    )


def _assert_clear_error(rc: int, err: str, name: str, expected: list[str]) -> None:
    assert rc == 1, err
    assert err.startswith("interp: error:"), err
    assert "Traceback" not in err, err
    assert name in err, (name, err)
    assert "Fix:" in err, err
    for words in expected:
        assert words in err, (words, err)


def test_the_matrix_is_large_and_names_are_unique():
    names = [name for name, _write, _expected in CASES]
    assert len(names) >= 25 and len(set(names)) == len(names)


@pytest.mark.parametrize("command", ["validate", "show"])
@pytest.mark.parametrize(("name", "write", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_facts_input_is_one_clear_error(
    tmp_path, monkeypatch, capsys, command, name, write, expected
):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path)
    before = _tree(tmp_path)
    capsys.readouterr()  # what writing the input printed (datasets' progress bars)
    rc = main(["facts", command, str(path)])
    captured = capsys.readouterr()
    _assert_clear_error(rc, captured.err, Path(str(path)).name, expected)
    assert "error" not in captured.out
    assert _tree(tmp_path) == before  # nothing half-written beside the input


def test_skip_invalid_counts_every_skipped_row(tmp_path, capsys):
    second = [{**r, "fact_id": "Q142|P36|Q90"} for r in GOOD]
    lines = [
        LINE1,
        _line(GOOD[1]),
        b'{"fact_id": \n',  # not JSON
        b"[1, 2]\n",  # not an object
        _line({**second[0], "answer_index": True}),  # type rule
        _line(second[1]),  # so this fact lacks en: incomplete
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(lines))
    assert main(["facts", "validate", str(path), "--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert "1 valid facts" in out
    assert "skipped 4" in out
    for reason in ("not valid JSON", "not an object", "answer_index", "missing in some languages"):
        assert reason in out, (reason, out)
    assert main(["facts", "show", str(path), "--skip-invalid"]) == 0
    assert "skipped 4" in capsys.readouterr().out


def test_skip_invalid_with_nothing_left_is_an_error_with_the_counts(tmp_path, capsys):
    path = tmp_path / "all_bad.jsonl"
    path.write_bytes(b'{"fact_id": \n[1]\n' + _line({**GOOD[0], "question": ""}))
    assert main(["facts", "validate", str(path), "--skip-invalid"]) == 1
    err = capsys.readouterr().err
    _assert_clear_error(1, err, path.name, ["no valid items", "skipped 3"])


def test_unknown_fact_for_show_is_an_error_not_another_fact(tmp_path, capsys):
    path = tmp_path / "facts.jsonl"
    path.write_bytes(LINE1 + _line(GOOD[1]))
    assert main(["facts", "show", str(path), "--fact", "Q17|P36|Q1491"]) == 1
    err = capsys.readouterr().err
    _assert_clear_error(1, err, path.name, ["Q17|P36|Q1491", FACT])


# ------------------------------------------------------------------------ positive controls
@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_utf8_byte_order_mark_is_accepted_and_changes_nothing(tmp_path, suffix, capsys):
    if suffix == ".jsonl":
        data = LINE1 + _line(GOOD[1])
    else:
        data = json.dumps({"items": GOOD}, ensure_ascii=False, indent=2).encode("utf-8")
    plain, marked = tmp_path / f"plain{suffix}", tmp_path / f"bom{suffix}"
    plain.write_bytes(data)
    marked.write_bytes(codecs.BOM_UTF8 + data)
    a, b = read_polyfact(plain), read_polyfact(marked)
    assert [f.items for f in a] == [f.items for f in b]
    assert b.facts[0].items["en"].fact_id == FACT  # no "\ufeff" glued to the first field
    assert main(["facts", "validate", str(marked)]) == 0
    assert "1 valid facts" in capsys.readouterr().out


def test_integral_float_is_accepted_as_an_integer(tmp_path):
    path = tmp_path / "floats.jsonl"
    path.write_bytes(b"".join(_line(r) for r in _rows(answer_index=1.0)))
    item = read_polyfact(path).facts[0].items["de"]
    assert item.answer_index == 1 and type(item.answer_index) is int
    assert item.answer_text == "Tokio"


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (1, 1),
        (1.0, 1),
        (0.0, 0),
        (1.5, None),
        (float("nan"), None),
        (float("inf"), None),
        (True, None),
        (False, None),
        ("1", None),
        (None, None),
        ([1], None),
    ],
)
def test_the_integer_rule(value, accepted):
    if accepted is None:
        with pytest.raises(FieldError):
            check("integer", value)
    else:
        assert check("integer", value) == accepted


def test_the_papers_released_items_still_load(reference_dir, capsys):
    samples = reference_dir / "polyfact-samples"
    facts = read_polyfact(samples)
    assert len(facts) == 100 and len(facts.languages) == 7
    assert facts.meta["skipped"].total == 0
    for path in [samples, *sorted(samples.glob("*.json"))[:2]]:
        assert main(["facts", "validate", str(path)]) == 0
        assert "100 valid facts" in capsys.readouterr().out


def test_our_written_folder_validates_and_hidden_leftovers_are_ignored(tmp_path, capsys):
    folder = _world(tmp_path)
    assert main(["facts", "validate", str(folder)]) == 0
    assert "3 valid facts in 2 languages" in capsys.readouterr().out
    # a temporary folder left by an interrupted write is not data
    leftover = folder / ".world.x.tmp" / "test"
    leftover.mkdir(parents=True)
    (leftover / "en.jsonl").write_bytes(b"not json\n")
    assert len(read_polyfact(folder)) == 3
    # asking for a language the folder still has works when another one's file is gone
    (folder / "test" / "de.jsonl").unlink()
    (folder / "train" / "de.jsonl").unlink()
    assert len(read_polyfact(folder, languages=["en"])) == 3


def test_saved_dataset_with_float_index_column_loads(tmp_path):
    from datasets import Dataset

    rows = [{**r, "answer_index": float(r["answer_index"])} for r in GOOD]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    facts = read_polyfact(tmp_path / "ds")
    assert facts.facts[0].items["de"].answer_text == "Tokio"


# ----------------------------------------------------------------------------------- corpora
def _corpus(files: dict[str, bytes | None]):
    def write(tmp: Path):
        root = tmp / "corpus"
        root.mkdir()
        for rel, data in files.items():
            target = root / rel
            if data is None:
                target.mkdir(parents=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        return root

    return write


def _not_a_corpus_folder(tmp: Path):
    (tmp / "corpus.txt").write_text("hello\n")
    return tmp / "corpus.txt"


CORPUS_CASES = [
    (
        "invalid_utf8_line_3",
        _corpus({"en.txt": b"hello\nworld\ncaf\xe9\n", "de.txt": b"hallo\n"}),
        ["en.txt", "line 3", "not valid UTF-8", "byte offset 15"],
    ),
    (
        "invalid_utf8_in_language_folder",
        _corpus({"en.txt": b"hi\n", "de/part.jsonl": b'{"text": "a"}\n{"text": "\xff"}\n'}),
        ["part.jsonl", "line 2", "not valid UTF-8"],
    ),
    ("binary_file", _corpus({"en.txt": b"\x00\x01\x02\x03"}), ["en.txt", "binary"]),
    ("utf16_file", _corpus({"en.txt": "hello\n".encode("utf-16")}), ["en.txt", "UTF-16"]),
    ("empty_folder", _corpus({}), ["no language"]),
    (
        "language_without_text",
        _corpus({"en.txt": b"hi\n", "de.txt": b"\n   \n"}),
        ["de.txt", "de", "no text"],
    ),
    (
        "language_folder_without_files",
        _corpus({"en.txt": b"hi\n", "de": None}),
        ["language de", ".txt"],
    ),
    (
        "unknown_code",
        _corpus({"english.txt": b"hi\n"}),
        ["english.txt", "'english'", "language code"],
    ),
    ("upper_case_code", _corpus({"EN.txt": b"hi\n"}), ["EN.txt", "'en'"]),
    ("region_code", _corpus({"pt_BR.txt": b"oi\n"}), ["pt_BR.txt", "'pt'"]),
    (
        "language_twice",
        _corpus({"en.txt": b"hi\n", "en.jsonl": b'{"text": "hi"}\n'}),
        ["en.txt", "en.jsonl", "twice"],
    ),
    (
        "language_file_wrong_type",
        _corpus({"en.txt": b"hi\n", "de.csv": b"a,b\n"}),
        ["de.csv", "'.csv'"],
    ),
    (
        "jsonl_without_text",
        _corpus({"en.jsonl": b'{"text": "a"}\n{"body": "b"}\n'}),
        ["en.jsonl", "line 2", "'text'"],
    ),
    (
        "jsonl_text_not_a_string",
        _corpus({"en.jsonl": b'{"text": 5}\n'}),
        ["en.jsonl", "line 1", "'text'", "string"],
    ),
    (
        "jsonl_text_null",
        _corpus({"en.jsonl": b'{"text": "a"}\n{"text": null}\n'}),
        ["en.jsonl", "line 2", "null"],
    ),
    (
        "jsonl_malformed",
        _corpus({"en.jsonl": b'{"text": "a"}\n{"text": \n'}),
        ["en.jsonl", "line 2", "not valid JSON"],
    ),
    ("missing_folder", _missing("./no-corpus-here"), ["no such folder"]),
    ("a_file_not_a_folder", _not_a_corpus_folder, ["not a folder"]),
]


@pytest.mark.parametrize(
    ("name", "write", "expected"), CORPUS_CASES, ids=[c[0] for c in CORPUS_CASES]
)
def test_bad_corpus_is_one_clear_error(tmp_path, monkeypatch, capsys, name, write, expected):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path)
    before = _tree(tmp_path)
    capsys.readouterr()  # what writing the input printed (datasets' progress bars)
    out = tmp_path / "analysis"
    rc = main(["score", str(tmp_path / "no-checkpoint"), "--corpus", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    _assert_clear_error(rc, err, Path(str(path)).name, expected)
    assert not out.exists()  # no partial analysis folder
    assert _tree(tmp_path) == before


def test_corpus_byte_order_mark_is_stripped_and_hidden_entries_skipped(tmp_path):
    from interp.corpora import from_files

    (tmp_path / "en.txt").write_bytes(codecs.BOM_UTF8 + b"hello\nworld\n")
    (tmp_path / "de.jsonl").write_bytes(codecs.BOM_UTF8 + b'{"text": "hallo"}\n')
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "README.md").write_text("notes")
    corpus = from_files(tmp_path)
    assert corpus.texts == {"de": ["hallo"], "en": ["hello", "world"]}


def test_corpus_from_datasets_names_the_row_of_a_bad_language(tmp_path):
    from datasets import Dataset

    from interp.corpora import from_datasets
    from interp.errors import DataError

    Dataset.from_dict({"text": ["a", "b"], "language": ["en", "english"]}).save_to_disk(
        str(tmp_path / "ds")
    )
    with pytest.raises(DataError) as err:
        from_datasets(str(tmp_path / "ds"))
    message = str(err.value)
    assert "row 1" in message and "'language'" in message and "english" in message
    assert "Fix:" in message
    with pytest.raises(DataError, match="no such"):
        from_datasets(os.path.join(".", "nowhere", "ds"))


# --------------------------------------------------------------- no hub lookups, no partial output
@pytest.mark.parametrize(
    "path",
    [
        "./nope.jsonl",
        "../nope",
        "/nowhere/at/all",
        "~/nope-8c1f",
        "a/b/c",
        "nope.json",
        "owner/name.jsonl",
        "data/world",  # data/ exists here, so this is a local path
        "win\\style\\path",
    ],
)
def test_a_local_looking_path_never_reaches_the_hub_loader(tmp_path, monkeypatch, path):
    import datasets

    from interp.corpora import from_datasets
    from interp.errors import DataError

    def no_hub(*args, **kwargs):
        raise AssertionError(f"hub loader called for {args}")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(DataError, match="no such file"):
        read_polyfact(path)
    with pytest.raises(DataError, match="no such datasets folder"):
        from_datasets(path)


def test_facts_build_that_fails_leaves_no_partial_out_folder(tmp_path, monkeypatch, capsys):
    from interp.errors import DataError
    from interp.facts import polyfact

    out = tmp_path / "world"
    args = ["facts", "build", "--out", str(out), "--languages", "en", "--relations", "currency"]

    def disk_full(_records):
        raise DataError(f"{out}: disk full. Fix: free some space")

    monkeypatch.setattr(polyfact, "_jsonl", disk_full)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("interp: error:") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a hidden temporary one
    assert main([*args[:-3], "xx"]) == 1  # an unknown language: refused before writing
    assert "xx" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_jsonl_line_endings_and_raw_line_separators_in_strings(tmp_path, newline):
    rows = _rows(question="Hauptstadt\u2028Japans?")  # U+2028 is legal raw inside a JSON string
    path = tmp_path / "facts.jsonl"
    path.write_bytes(b"".join(_line(r).rstrip(b"\n") + newline for r in rows))
    facts = read_polyfact(path)
    assert facts.facts[0].items["de"].question == "Hauptstadt\u2028Japans?"
