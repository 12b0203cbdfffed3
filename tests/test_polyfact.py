"""The PolyFact reader and writer, on the paper's real sample files and on broken inputs."""

from __future__ import annotations

import json

import pytest

from interp.errors import DataError
from interp.facts import read_polyfact, write_polyfact, write_polyfact_json

SAMPLE_LANGUAGES = ("ar", "de", "en", "es", "fr", "ru", "zh")


@pytest.fixture(scope="module")
def samples(reference_dir):
    return reference_dir / "polyfact-samples"


def test_real_samples_group_into_100_facts_by_7_languages(samples):
    facts = read_polyfact(samples)
    assert len(facts) == 100
    assert sorted(facts.languages) == sorted(SAMPLE_LANGUAGES)
    # independent check: the raw files, item by item
    for code in SAMPLE_LANGUAGES:
        raw = json.loads((samples / f"polyfact_test_sample_{code}.json").read_text())
        by_id = {f.fact_id: f for f in facts}
        assert raw["n"] == len(raw["items"]) == 100
        for row in raw["items"]:
            item = by_id[row["fact_id"]].items[code]
            assert (
                item.answer_text
                == row["answer_text"]
                == row["options"]["ABCD"[row["answer_index"]]]
            )
            assert item.question == row["question"]
            assert item.split == "test"
            assert item.extra["llm_eval"] == row["llm_eval"]  # fields we do not model are kept
    fact = by_id["Q65978|P37|Q188"]
    assert fact.relation == "official language" and fact.property_id == "P37"
    assert fact.items["zh"].answer_text == "德语" and fact.items["en"].answer_text == "German"


def test_samples_round_trip_through_our_writer(samples, tmp_path):
    facts = read_polyfact(samples)
    write_polyfact(facts, tmp_path / "out")
    back = read_polyfact(tmp_path / "out")
    assert {f.fact_id: f for f in back} == {f.fact_id: f for f in facts}
    # and the release's per-language JSON layout, written by us, reads back too
    one = tmp_path / "polyfact_test_en.json"
    write_polyfact_json(facts.items(["en"]), one, language="en", split="test")
    again = read_polyfact(one)
    assert [i.question for i in again.items()] == [i.question for i in facts.items(["en"])]


def test_jsonl_and_language_subset(samples, tmp_path):
    rows = []
    for code in ("en", "de"):
        rows += json.loads((samples / f"polyfact_test_sample_{code}.json").read_text())["items"]
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    facts = read_polyfact(path)
    assert len(facts) == 100 and set(facts.languages) == {"en", "de"}
    only_en = read_polyfact(samples, languages=["en"])
    assert only_en.languages == ("en",) and len(only_en) == 100


def test_saved_datasets_folder(samples, tmp_path):
    from datasets import Dataset

    rows = json.loads((samples / "polyfact_test_sample_fr.json").read_text())["items"]
    for row in rows:  # the release stores nested eval fields; keep the core ones
        row.pop("llm_eval")
        row.pop("human_eval")
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    facts = read_polyfact(tmp_path / "ds")
    assert len(facts) == 100 and facts.languages == ("fr",)


# ----------------------------------------------------------------------------------- bad input
def _good_rows():
    rows = []
    for code, options in (
        ("en", ["Tokyo", "Paris", "Rome", "Oslo"]),
        ("de", ["Paris", "Tokio", "Oslo", "Rom"]),
    ):
        answer = 0 if code == "en" else 1
        rows.append(
            {
                "fact_id": "Q17|P36|Q1490",
                "language": code,
                "question": "?",
                "options": dict(zip("ABCD", options, strict=True)),
                "answer_index": answer,
                "answer_text": options[answer],
            }
        )
    return rows


def _write(tmp_path, rows, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _break(rows, kind):
    if kind == "missing field":
        del rows[1]["question"]
    elif kind == "index out of range":
        rows[1]["answer_index"] = 7
    elif kind == "answer not among options":
        rows[1]["answer_text"] = "Kyoto"
    elif kind == "duplicate":
        rows.append(dict(rows[1]))
    elif kind == "unknown language":
        rows[1]["language"] = "xx"
    elif kind == "partial fact":
        rows.append({**rows[0], "fact_id": "Q142|P36|Q90"})
    return rows


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing field", ["line 2", "'question'", "Fix"]),
        ("index out of range", ["line 2", "'answer_index'", "7", "out of range", "Fix"]),
        (
            "answer not among options",
            ["line 2", "'answer_text'", "Kyoto", "not among the options", "Fix"],
        ),
        ("duplicate", ["line 3", "duplicate", "Q17|P36|Q1490", "de", "line 2", "Fix"]),
        ("unknown language", ["line 2", "'language'", "'xx'", "Fix"]),
        ("partial fact", ["Q142|P36|Q90", "1 of 2", "missing de", "--skip-invalid"]),
    ],
)
def test_each_bad_input_gets_a_clear_error(tmp_path, kind, expected):
    path = _write(tmp_path, _break(_good_rows(), kind))
    with pytest.raises(DataError) as err:
        read_polyfact(path, languages=["en", "de"])
    message = str(err.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_skip_invalid_keeps_going_and_counts_by_reason(tmp_path):
    rows = _good_rows()
    for fid in ("Q1|P36|Q2", "Q3|P36|Q4", "Q5|P36|Q6"):
        rows += [{**r, "fact_id": fid} for r in _good_rows()]
    rows[3]["answer_index"] = 9  # fact Q1: its de item is bad, so the fact is incomplete too
    rows.append({**rows[0], "fact_id": "Q7|P36|Q8"})  # only in English
    rows.append(dict(rows[4]))  # a duplicate
    facts = read_polyfact(_write(tmp_path, rows), languages=["en", "de"], skip_invalid=True)
    skipped = facts.meta["skipped"]
    assert len(facts) == 3  # Q17, Q3, Q5
    assert skipped.counts == {
        "answer_index out of range": 1,
        "fact missing in some languages": 2,
        "duplicate (fact_id, language)": 1,
    }
    assert "skipped 4" in skipped.summary()


def test_options_misaligned_across_languages(tmp_path):
    rows = _good_rows()
    rows[0]["option_ids"] = ["Q1490", "Q90", "Q220", "Q585"]
    rows[1]["option_ids"] = ["Q90", "Q1490", "Q585", "Q999"]
    with pytest.raises(DataError, match="option_ids .* do not match"):
        read_polyfact(_write(tmp_path, rows))


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_polyfact(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .json or .jsonl files"):
        read_polyfact(tmp_path / "empty")


def test_writer_refuses_to_overwrite_and_leaves_nothing_partial(tmp_path, monkeypatch):
    from interp.facts import polyfact

    facts = read_polyfact(_write(tmp_path, _good_rows()))
    out = write_polyfact(facts, tmp_path / "out")
    with pytest.raises(DataError, match="already exists"):
        write_polyfact(facts, out)

    def boom(_records):
        raise RuntimeError("disk full")

    monkeypatch.setattr(polyfact, "_jsonl", boom)
    with pytest.raises(RuntimeError):
        write_polyfact(facts, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
