"""Per-language text corpora for activation statistics, LAHIS and ablations.

Three sources, one result (`Corpus`: language -> texts):
- `from_facts(facts)`: the facts' statements and questions, parallel across languages, so the
  content is the same in every language and only the language differs;
- `from_files(path)`: user text, a file per language (`<code>.txt` / `.jsonl` with a "text"
  field) or a folder per language holding such files;
- `from_datasets(name_or_path, column, language_column)`: a `datasets` folder or hub id.

`tokenize(corpus, tokenizer, seq_len, token_budget)` packs each language's texts into
fixed-length sequences (texts joined by the eos token), up to a token budget per language, and
reports tokens per language. Every language gets the same number of sequences where the text
allows, so per-language statistics rest on the same amount of evidence.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from interp import languages as lang_registry
from interp.errors import DataError

# Below this many tokens a language's firing rates are too noisy to rank neurons: the binomial
# standard error of a rate p from n tokens is sqrt(p(1-p)/n), about 0.016 at p=0.5, n=1000.
MIN_USEFUL_TOKENS = 1000


@dataclass
class Corpus:
    """Texts per language, plus where they came from."""

    texts: dict[str, list[str]]
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.texts)

    def check(self) -> Corpus:
        empty = [code for code, texts in self.texts.items() if not any(t.strip() for t in texts)]
        if empty:
            raise DataError(
                f"{self.source or 'corpus'}: no text at all for {' '.join(empty)}. Fix: add text "
                "for these languages or leave them out (--languages)"
            )
        return self

    def subset(self, languages: Iterable[str]) -> Corpus:
        languages = lang_registry.check_codes(languages, source=f"{self.source}: languages")
        missing = [code for code in languages if code not in self.texts]
        if missing:
            raise DataError(
                f"{self.source or 'corpus'}: no text for {' '.join(missing)} (it has "
                f"{' '.join(self.texts)}). Fix: add text for them or request fewer languages"
            )
        return Corpus({code: self.texts[code] for code in languages}, self.source, dict(self.meta))


def from_facts(
    facts, *, languages=None, split: str | None = None, kinds=("statement", "question")
) -> Corpus:
    """The facts' sentences, parallel across languages (the same facts in the same order)."""
    if split:
        facts = facts.split(split)
    languages = tuple(languages or facts.languages)
    texts: dict[str, list[str]] = {code: [] for code in languages}
    for fact in facts:
        for code in languages:
            item = fact.items[code]
            for kind in kinds:
                text = item.statement if kind == "statement" else item.question
                if text:
                    texts[code].append(text)
    return Corpus(
        texts, source=f"facts ({split or 'all splits'})", meta={"kinds": list(kinds)}
    ).check()


def _read_text_file(path: Path) -> list[str]:
    if path.suffix == ".jsonl":
        texts = []
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    texts.append(str(json.loads(line)["text"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise DataError(
                        f"{path}, line {lineno}: expected a JSON object with a 'text' field. "
                        'Fix: one {"text": ...} object per line, or use a .txt file'
                    ) from None
        return texts
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def from_files(path: str | os.PathLike, *, languages=None) -> Corpus:
    """User text: `<path>/<code>.txt|.jsonl`, or `<path>/<code>/*.txt|*.jsonl`."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(
            f"{root}: not a folder. Fix: give a folder with one file or subfolder per language"
        )
    texts: dict[str, list[str]] = {}
    for entry in sorted(root.iterdir()):
        code = entry.stem if entry.is_file() else entry.name
        if entry.is_file() and entry.suffix not in (".txt", ".jsonl"):
            continue
        if code not in lang_registry.LANGUAGES:
            raise DataError(
                f"{entry}: {code!r} is not a known language code. Fix: name files or folders by "
                f"ISO 639-1 code ({' '.join(lang_registry.ALL)})"
            )
        files = (
            [entry]
            if entry.is_file()
            else sorted(p for p in entry.rglob("*") if p.suffix in (".txt", ".jsonl"))
        )
        texts.setdefault(code, [])
        for file in files:
            texts[code].extend(_read_text_file(file))
    if not texts:
        raise DataError(
            f"{root}: no <code>.txt, <code>.jsonl or <code>/ entries. Fix: see `interp score --help`"
        )
    corpus = Corpus(texts, source=str(root))
    return (corpus.subset(languages) if languages else corpus).check()


def from_datasets(
    name_or_path: str,
    *,
    text_column: str = "text",
    language_column: str = "language",
    split: str = "train",
    languages=None,
) -> Corpus:
    """A `datasets` folder (save_to_disk) or hub id with a text and a language column."""
    from datasets import load_dataset, load_from_disk

    path = Path(name_or_path)
    data = load_from_disk(str(path)) if path.is_dir() else load_dataset(name_or_path)
    if hasattr(data, "keys"):
        if split not in data:
            raise DataError(
                f"{name_or_path}: no split {split!r} (has {list(data)}). Fix: pass split="
            )
        data = data[split]
    for column in (text_column, language_column):
        if column not in data.column_names:
            raise DataError(
                f"{name_or_path}: no column {column!r} (columns: {data.column_names}). "
                "Fix: pass text_column= / language_column="
            )
    texts: dict[str, list[str]] = {}
    for text, code in zip(data[text_column], data[language_column], strict=True):
        texts.setdefault(lang_registry.get(code).code, []).append(text)
    corpus = Corpus(texts, source=str(name_or_path))
    return (corpus.subset(languages) if languages else corpus).check()


@dataclass
class TokenizedCorpus:
    """Fixed-length token sequences per language (lists of ids, all `seq_len` long)."""

    sequences: dict[str, list[list[int]]]
    seq_len: int
    tokens: dict[str, int]  # tokens kept per language
    available: dict[str, int]  # tokens the text had per language

    def report(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "language": c,
                    "sequences": len(s),
                    "tokens": self.tokens[c],
                    "available": self.available[c],
                }
                for c, s in self.sequences.items()
            ]
        )


def tokenize(
    corpus: Corpus,
    tokenizer,
    *,
    seq_len: int = 128,
    token_budget: int | None = None,
    equalize: bool = True,
) -> TokenizedCorpus:
    """Pack each language's texts into `seq_len`-token sequences (texts joined by eos).

    `token_budget`: at most this many tokens per language. `equalize`: cut every language to
    the smallest language's number of sequences. A language below `MIN_USEFUL_TOKENS` warns
    with the rate standard error it implies; one with no full sequence is an error.
    """
    eos = tokenizer.eos_token_id
    sequences: dict[str, list[list[int]]] = {}
    available: dict[str, int] = {}
    for code, texts in corpus.texts.items():
        stream: list[int] = []
        limit = None if token_budget is None else token_budget
        for text in texts:
            stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
            if eos is not None:
                stream.append(eos)
            if limit is not None and len(stream) >= limit:
                break
        available[code] = len(stream)
        if limit is not None:
            stream = stream[:limit]
        n = len(stream) // seq_len
        if n == 0:
            raise DataError(
                f"{corpus.source}: language {code} has {len(stream)} tokens, fewer than one "
                f"sequence of {seq_len}. Fix: add text, or lower seq_len"
            )
        sequences[code] = [stream[i * seq_len : (i + 1) * seq_len] for i in range(n)]
    if equalize:
        n_min = min(len(s) for s in sequences.values())
        sequences = {code: seqs[:n_min] for code, seqs in sequences.items()}
    tokens = {code: len(seqs) * seq_len for code, seqs in sequences.items()}
    small = {code: n for code, n in tokens.items() if n < MIN_USEFUL_TOKENS}
    if small:
        worst = min(small.values())
        warnings.warn(
            f"{corpus.source}: few tokens for {', '.join(f'{c} ({n})' for c, n in small.items())}; "
            f"a firing rate near 0.5 from {worst} tokens has a standard error of about "
            f"{0.5 / worst**0.5:.3f}, so rankings of neurons by rate will be noisy. "
            "Fix: add text or raise the token budget",
            stacklevel=2,
        )
    return TokenizedCorpus(sequences, seq_len, tokens, available)
