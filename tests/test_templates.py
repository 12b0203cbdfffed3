"""Templates: coverage, placeholders, punctuation, and hand-written sentences in several scripts."""

from __future__ import annotations

import string
import unicodedata

import pytest

from interp.errors import DataError
from interp.facts import templates
from interp.facts.templates import QUESTION_TEMPLATES, RELATIONS, STATEMENT_TEMPLATES
from interp.languages import ALL

# Written out by hand from the study's relation list (Wikidata property ids).
EXPECTED_RELATIONS = {
    "capital": "P36",
    "currency": "P38",
    "official language": "P37",
    "continent": "P30",
    "country": "P17",
}

# Each language's question and statement endings, as its writing convention has them.
QUESTION_END = {code: "?" for code in ALL} | {
    "zh": "？",
    "ja": "？",
    "ar": "؟",
    "fa": "؟",
    "el": ";",
}
QUESTION_END["fr"] = " ?"  # French sets a space before the question mark
STATEMENT_END = {code: "." for code in ALL} | {"zh": "。", "ja": "。", "bn": "।"}

# Languages whose particles are written against the name without a space (and do not depend on it).
JOINED_SCRIPTS = {"ja", "zh", "ko"}
GLUE = "'’-"


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _all_templates():
    for kind, table in (("question", QUESTION_TEMPLATES), ("statement", STATEMENT_TEMPLATES)):
        for relation, by_language in table.items():
            for language, template in by_language.items():
                yield kind, relation, language, template


def test_relations_and_their_order():
    assert list(RELATIONS.items()) == list(EXPECTED_RELATIONS.items())


@pytest.mark.parametrize("table", [QUESTION_TEMPLATES, STATEMENT_TEMPLATES])
def test_every_relation_in_every_language(table):
    assert list(table) == list(EXPECTED_RELATIONS)
    for relation, by_language in table.items():
        assert sorted(by_language) == sorted(ALL), relation


def test_placeholders_exactly_once():
    for kind, relation, language, template in _all_templates():
        expected = ["subject"] if kind == "question" else ["object", "subject"]
        assert sorted(_fields(template)) == expected, (kind, relation, language, template)


def test_punctuation_conventions():
    for kind, relation, language, template in _all_templates():
        end = QUESTION_END[language] if kind == "question" else STATEMENT_END[language]
        assert template.endswith(end), (kind, relation, language, template)
        # a single final mark: no other language's mark, nor a doubled one, before it
        assert template[: -len(end)].rstrip()[-1:] not in "?？؟;.。।", (kind, language, template)
        if kind == "question" and language == "es":
            assert template.startswith("¿"), (relation, template)


def test_clean_text():
    for kind, relation, language, template in _all_templates():
        where = (kind, relation, language, template)
        assert unicodedata.normalize("NFC", template) == template, where
        assert template == template.strip() and "  " not in template, where
        if language in ("ja", "zh"):
            assert " " not in template and "\u3000" not in template, where


def test_names_stand_alone_outside_joined_scripts():
    # No suffix or prefix glued to an inserted name: a glued one would have to agree with it
    # (Turkish and Hungarian vowel harmony, Hebrew prefixes, ...).
    for kind, relation, language, template in _all_templates():
        if language in JOINED_SCRIPTS:
            continue
        for field in _fields(template):
            before, after = template.split("{" + field + "}")
            # an apostrophe or hyphen still glues (Turkish "Japonya'nın", French "d'Osaka")
            before, after = before.rstrip(GLUE), after.lstrip(GLUE)
            assert not before[-1:].isalpha(), (kind, relation, language, template)
            assert not after[:1].isalpha(), (kind, relation, language, template)


@pytest.mark.parametrize(
    ("relation", "language", "subject", "expected"),
    [
        ("capital", "zh", "日本", "日本的首都是哪座城市？"),
        ("capital", "en", "Japan", "What is the capital of Japan?"),
        ("currency", "de", "Japan", "Welche Währung hat das Land Japan?"),
        ("country", "ru", "Осака", "В какой стране находится город Осака?"),
        ("continent", "ja", "日本", "日本はどの大陸にありますか？"),
        ("capital", "ar", "اليابان", "ما هي عاصمة اليابان؟"),
        ("capital", "es", "Japón", "¿Cuál es la capital de Japón?"),
        ("capital", "tr", "Japonya", "Japonya ülkesinin başkenti neresidir?"),
        ("capital", "el", "Ιαπωνία", "Ποια είναι η πρωτεύουσα της χώρας Ιαπωνία;"),
    ],
)
def test_questions_written_by_hand(relation, language, subject, expected):
    assert templates.question(relation, language, subject) == expected


@pytest.mark.parametrize(
    ("relation", "language", "subject", "obj", "expected"),
    [
        ("capital", "en", "Japan", "Tokyo", "The capital of Japan is Tokyo."),
        ("capital", "de", "Japan", "Tokio", "Die Hauptstadt des Landes Japan ist Tokio."),
        ("capital", "ru", "Япония", "Токио", "Столица страны Япония — Токио."),
        ("capital", "ja", "日本", "東京", "日本の首都は東京です。"),
        ("capital", "ar", "اليابان", "طوكيو", "عاصمة اليابان هي طوكيو."),
        ("capital", "tr", "Japonya", "Tokyo", "Tokyo, Japonya ülkesinin başkentidir."),
        ("currency", "zh", "日本", "日元", "日本的货币是日元。"),
        (
            "official language",
            "fr",
            "Japon",
            "japonais",
            "Dans le pays Japon, on parle officiellement japonais.",
        ),
        ("continent", "bn", "জাপান", "এশিয়া", "জাপান দেশটি এশিয়া মহাদেশে অবস্থিত।"),
    ],
)
def test_statements_written_by_hand(relation, language, subject, obj, expected):
    assert templates.statement(relation, language, subject, obj) == expected


def test_labels_are_inserted_verbatim():
    # Braces inside a label are text, not placeholders.
    assert templates.question("capital", "en", "A{b}") == "What is the capital of A{b}?"
    assert templates.statement("country", "zh", "{x}", "{y}") == "{x}位于{y}。"


def test_unknown_relation_names_it_and_lists_the_known_ones():
    with pytest.raises(DataError) as caught:
        templates.question("capitol", "en", "Japan")
    message = str(caught.value)
    assert "'capitol'" in message
    assert all(repr(name) in message for name in EXPECTED_RELATIONS)
    with pytest.raises(DataError, match="'birthplace'"):
        templates.statement("birthplace", "en", "Japan", "Tokyo")


def test_unknown_language_names_it_and_lists_the_known_ones():
    with pytest.raises(DataError) as caught:
        templates.statement("capital", "xx", "Japan", "Tokyo")
    message = str(caught.value)
    assert "'xx'" in message and "en de id pt" in message and "vi" in message
    with pytest.raises(DataError, match="'it'"):
        templates.question("capital", "it", "Giappone")


def test_empty_label_is_refused():
    with pytest.raises(DataError, match="subject"):
        templates.question("capital", "en", " ")
    with pytest.raises(DataError, match="object"):
        templates.statement("capital", "en", "Japan", "")


def test_english_country_names_take_the_article_where_english_does():
    from interp.facts.templates import question, statement

    assert question("capital", "en", "United States") == "What is the capital of the United States?"
    assert question("capital", "en", "Japan") == "What is the capital of Japan?"
    assert (
        statement("continent", "en", "Netherlands", "Europe")
        == "The Netherlands is located in Europe."
    )
    assert (
        statement("country", "en", "Majuro", "Marshall Islands")
        == "Majuro is located in the Marshall Islands."
    )
    # only English: other languages get the label as it is
    assert (
        question("capital", "de", "Vereinigte Staaten")
        == "Was ist die Hauptstadt des Landes Vereinigte Staaten?"
    )
