"""The offline world: real facts in 22 languages, valid distractors, deterministic output."""

from __future__ import annotations

from collections import defaultdict

import pytest

from interp import languages
from interp.facts import WorldConfig, build_world, read_polyfact, write_polyfact
from interp.text import normalize_answer


def _fact(facts, relation, subject_en):
    found = [f for f in facts if f.relation == relation and f.subject == subject_en]
    assert len(found) == 1, f"expected one {relation} fact about {subject_en}, found {len(found)}"
    return found[0]


def test_world_is_large_and_every_fact_in_all_22_languages(world):
    facts, report = world
    assert len(facts) >= 1000
    assert facts.languages == languages.ALL
    for fact in facts:
        assert tuple(fact.items) == languages.ALL
    # at least the five relations asked for, each with a real number of facts
    assert {"capital", "currency", "official language", "continent", "country"} <= set(
        facts.relations()
    )
    assert all(n >= 100 for n in facts.relations().values())
    assert sum(report.kept.values()) == len(facts)


@pytest.mark.parametrize(
    ("relation", "subject", "expected"),
    [
        # hand-checked labels, several scripts
        (
            "capital",
            "Japan",
            {"en": "Tokyo", "ja": "東京", "ru": "Токио", "zh": "东京", "ko": "도쿄", "de": "Tokio"},
        ),
        ("capital", "France", {"en": "Paris", "ar": "باريس", "el": "Παρίσι", "he": "פריז"}),
        (
            "currency",
            "Switzerland",
            {"en": "Swiss Franc", "de": "Schweizer Franken", "fr": "franc suisse"},
        ),
        ("currency", "Japan", {"zh": "日元", "en": "Japanese Yen"}),
        ("official language", "Japan", {"en": "Japanese", "ja": "日本語", "de": "Japanisch"}),
        ("continent", "Japan", {"en": "Asia", "de": "Asien", "ja": "アジア", "ru": "Азия"}),
        ("continent", "Brazil", {"en": "South America", "es": "Sudamérica"}),
        ("country", "Sydney", {"en": "Australia", "ru": "Австралия", "zh": "澳大利亚"}),
    ],
)
def test_known_facts_come_out_right(world, relation, subject, expected):
    fact = _fact(world[0], relation, subject)
    for code, label in expected.items():
        assert fact.items[code].answer_text == label, code


def test_questions_read_naturally_in_several_scripts(world):
    fact = _fact(world[0], "capital", "Japan")
    assert fact.items["zh"].question == "日本的首都是哪座城市？"
    assert fact.items["en"].question == "What is the capital of Japan?"
    assert fact.items["en"].statement == "The capital of Japan is Tokyo."
    for item in fact.items.values():
        assert item.subject_label in item.question
        assert item.answer_text in item.statement


def test_distractors_are_valid(world):
    facts, _ = world
    objects = defaultdict(set)
    for fact in facts:
        objects[fact.relation].add(fact.object_id)
    for fact in facts:
        ids = None
        for code, item in fact.items.items():
            assert len(item.options) == 4
            assert item.option_ids[item.answer_index] == fact.object_id
            # the same four entities behind the options in every language
            assert ids is None or set(item.option_ids) == ids
            ids = set(item.option_ids)
            assert len(ids) == 4
            # other objects of the same relation
            assert ids <= objects[fact.relation]
            # distinct after normalisation in every language
            normalized = {normalize_answer(o) for o in item.options}
            assert len(normalized) == 4, (fact.fact_id, code, item.options)


def test_options_are_shuffled_per_language(world):
    facts, _ = world
    positions = defaultdict(set)
    for fact in facts.facts[:200]:
        for item in fact.items.values():
            positions[fact.fact_id].add(item.answer_index)
    # with 22 independent shuffles the answer sits in one position everywhere almost never
    assert sum(len(p) > 1 for p in positions.values()) >= 195
    all_positions = [i.answer_index for i in facts.items()]
    for index in range(4):
        assert 0.2 < all_positions.count(index) / len(all_positions) < 0.3


def test_splits_disjoint_stratified_and_identical_across_languages(world):
    facts, _ = world
    split_of = {}
    for fact in facts:
        assert fact.split in ("train", "validation", "test")
        assert {item.split for item in fact.items.values()} == {fact.split}
        split_of[fact.fact_id] = fact.split
    sizes = {s: len(facts.split(s)) for s in ("train", "validation", "test")}
    assert sum(sizes.values()) == len(facts)
    assert len(set(f.fact_id for f in facts)) == len(facts)
    assert sizes["train"] > sizes["test"] > 0 and sizes["validation"] > 0
    for relation, n in facts.relations().items():
        n_test = sum(1 for f in facts.split("test") if f.relation == relation)
        assert abs(n_test - 0.1 * n) <= 1


def test_same_seed_gives_byte_identical_output(tmp_path):
    config = WorldConfig(seed=3, languages=("en", "ja", "sw"), relations=("currency", "continent"))
    a, _ = build_world(config)
    b, _ = build_world(config)
    write_polyfact(a, tmp_path / "a")
    write_polyfact(b, tmp_path / "b")
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert len(files) == 3 * 3 + 1
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    # another seed changes distractors or shuffles
    c, _ = build_world(
        WorldConfig(seed=4, languages=("en", "ja", "sw"), relations=("currency", "continent"))
    )
    assert [i.options for i in a.items()] != [i.options for i in c.items()]


def test_write_then_read_returns_the_same_facts(world, tmp_path):
    facts, _ = world
    write_polyfact(facts, tmp_path / "world")
    back = read_polyfact(tmp_path / "world")
    assert back.languages == facts.languages
    assert {f.fact_id: f for f in back} == {f.fact_id: f for f in facts}
    assert back.meta["n_facts"] == len(facts)
    assert back.meta["skipped"].total == 0


def test_drops_are_reported_with_reasons(world):
    _, report = world
    reasons = {why for (_rel, why) in report.dropped}
    assert any("currencies in use" in r for r in reasons)
    assert any("official languages" in r for r in reasons)
    assert "transcontinental country" in reasons
    as_dict = report.as_dict()
    assert sum(row["count"] for row in as_dict["dropped"]) == sum(report.dropped.values())
