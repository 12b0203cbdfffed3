"""Per-language corpora: parallel text from facts, user files, datasets; fixed-length packing."""

from __future__ import annotations

import json

import pytest

from interp.corpora import from_datasets, from_facts, from_files, tokenize
from interp.errors import DataError
from interp.facts import WorldConfig, build_world


class CharTokenizer:
    """One id per character: token counts are easy to compute by hand."""

    eos_token_id = 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


@pytest.fixture(scope="module")
def facts():
    return build_world(WorldConfig(languages=("en", "de", "ja"), relations=("currency",)))[0]


def test_facts_corpus_is_parallel(facts):
    corpus = from_facts(facts, split="test")
    n = len(facts.split("test"))
    assert corpus.languages == ("en", "de", "ja")
    for code in corpus.languages:
        assert len(corpus.texts[code]) == 2 * n
    first = facts.split("test").facts[0]
    assert corpus.texts["ja"][:2] == [first.items["ja"].statement, first.items["ja"].question]


def test_tokenize_packs_budget_and_equalizes():
    from interp.corpora import Corpus

    corpus = Corpus({"en": ["abcd"] * 10, "de": ["xy"] * 3}, source="hand")
    with pytest.warns(UserWarning, match="few tokens"):
        out = tokenize(corpus, CharTokenizer(), seq_len=4, token_budget=20)
    # en: (4 chars + eos) x 10 = 50 tokens, budget 20 -> 5 sequences; de: 3 x 3 = 9 -> 2
    assert out.available == {"en": 20, "de": 9}
    assert {c: len(s) for c, s in out.sequences.items()} == {"en": 2, "de": 2}
    assert out.sequences["de"][0] == [ord("x"), ord("y"), 0, ord("x")]
    assert out.tokens == {"en": 8, "de": 8}
    assert list(out.report().columns) == ["language", "sequences", "tokens", "available"]


def test_files_and_datasets_sources(tmp_path):
    (tmp_path / "en.txt").write_text("hello world\n\nsecond line\n")
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "a.jsonl").write_text(json.dumps({"text": "hallo welt"}) + "\n")
    corpus = from_files(tmp_path)
    assert corpus.texts == {"de": ["hallo welt"], "en": ["hello world", "second line"]}
    from datasets import Dataset

    Dataset.from_dict({"text": ["a", "b", "c"], "language": ["en", "sw", "en"]}).save_to_disk(
        str(tmp_path / "ds")
    )
    assert from_datasets(str(tmp_path / "ds")).texts == {"en": ["a", "c"], "sw": ["b"]}


def test_bad_corpora(tmp_path):
    from interp.corpora import Corpus

    with pytest.raises(DataError, match="no text at all for de"):
        Corpus({"en": ["a"], "de": ["  "]}, source="x").check()
    (tmp_path / "english.txt").write_text("hi")
    with pytest.raises(DataError, match="not a known language code"):
        from_files(tmp_path)
    with pytest.raises(DataError, match="fewer than one sequence"):
        tokenize(Corpus({"en": ["ab"]}, source="tiny"), CharTokenizer(), seq_len=64)
