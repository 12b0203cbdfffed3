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

Text files must be UTF-8 (a byte-order mark is accepted and removed); invalid bytes, binary
files, a folder or language without text, an unknown or repeated language code and a path that
does not exist are `DataError`s naming the file, the line or the language, and the fix.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from interp import languages as lang_registry
from interp.errors import DataError, located
from interp.facts.loading import (
    first_line,
    json_lines,
    missing_path_error,
    read_text,
    resolve_source,
)
from interp.facts.schema import FieldError, check, json_type, show

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
    """The non-blank texts of one file: lines of a .txt, the "text" of each line of a .jsonl.
    UTF-8 (a byte-order mark is removed); anything else names the file and the line."""
    text = read_text(path)
    if path.suffix != ".jsonl":
        return [line for line in text.splitlines() if line.strip()]
    texts = []
    for lineno, line in enumerate(json_lines(text), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                located(
                    f"not valid JSON ({err.msg}, column {err.colno})",
                    source=str(path),
                    where=where,
                    fix='one {"text": ...} object per line, or use a .txt file',
                )
            ) from None
        if not isinstance(data, dict) or "text" not in data:
            got = "an object without a 'text' field" if isinstance(data, dict) else json_type(data)
            raise DataError(
                located(
                    f"expected a JSON object with a 'text' field, got {got}",
                    source=str(path),
                    where=where,
                    fix='one {"text": ...} object per line, or use a .txt file',
                )
            )
        try:
            value = check("string", data["text"])
        except FieldError as err:
            raise DataError(
                located(err.problem, source=str(path), where=f"{where}, field 'text'", fix=err.fix)
            ) from None
        if value.strip():
            texts.append(value)
    return texts


_TEXT_SUFFIXES = (".txt", ".jsonl")
_LAYOUT = (
    "one entry per language, named by ISO 639-1 code: <code>.txt (a text per line), "
    '<code>.jsonl ({"text": ...} per line) or a folder <code>/ of such files'
)


def _code_hint(name: str) -> str:
    for guess in (name.lower(), name.replace("_", "-").split("-")[0].lower()):
        if guess in lang_registry.LANGUAGES:
            return f"rename it to {guess!r}"
    return f"name files or folders by ISO 639-1 code ({' '.join(lang_registry.ALL)})"


def from_files(path: str | os.PathLike, *, languages=None) -> Corpus:
    """User text: `<path>/<code>.txt|.jsonl`, or `<path>/<code>/*.txt|*.jsonl`.

    Hidden entries are not read and other files (README.md, ...) are ignored, except a file
    named by a language code with another suffix (de.csv), which is an error, like an unknown
    code, a language given twice (en.txt and en/), a language folder without text files and
    a language with no text at all."""
    root = Path(os.path.expanduser(str(path)))
    if not root.exists():
        raise missing_path_error(path, what="folder")
    if not root.is_dir():
        raise DataError(
            located(
                "is a file, not a folder",
                source=str(root),
                fix=f"give the folder that holds the corpus: {_LAYOUT}",
            )
        )
    texts: dict[str, list[str]] = {}
    origin: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        code = entry.stem if entry.is_file() else entry.name
        if entry.is_file() and entry.suffix not in _TEXT_SUFFIXES:
            if code in lang_registry.LANGUAGES:
                raise DataError(
                    located(
                        f"a file for language {code} of unsupported type {entry.suffix!r}",
                        source=str(entry),
                        fix='save it as .txt (a text per line) or .jsonl ({"text": ...} per line)',
                    )
                )
            continue
        if code not in lang_registry.LANGUAGES:
            raise DataError(
                located(
                    f"{code!r} is not a known language code",
                    source=str(entry),
                    fix=_code_hint(code),
                )
            )
        if code in origin:
            raise DataError(
                located(
                    f"language {code} is given twice, by {origin[code].name} and {entry.name}",
                    source=str(root),
                    fix="keep one of them (merge the texts into one file or folder)",
                )
            )
        origin[code] = entry
        if entry.is_file():
            files = [entry]
        else:
            files = sorted(
                p
                for p in entry.rglob("*")
                if p.suffix in _TEXT_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(entry).parts)
            )
            if not files:
                raise DataError(
                    located(
                        f"the folder for language {code} holds no .txt or .jsonl files",
                        source=str(entry),
                        fix="put the language's text files in it, or remove the folder",
                    )
                )
        texts[code] = []
        for file in files:
            texts[code].extend(_read_text_file(file))
        if not texts[code]:
            names = ", ".join(f.name for f in files)
            raise DataError(
                located(
                    f"no text at all for {code} ({names}: empty or only blank lines)",
                    source=str(entry),
                    fix="add text for this language, or remove the entry",
                )
            )
    if not texts:
        raise DataError(
            located("no language files or folders in this folder", source=str(root), fix=_LAYOUT)
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

    resolved = resolve_source(name_or_path, what="datasets folder")
    try:
        if isinstance(resolved, Path):
            data = load_from_disk(str(resolved))
        else:
            data = load_dataset(resolved)
    except Exception as err:  # noqa: BLE001 -- any loader failure becomes a located error
        where = "a `datasets` folder" if isinstance(resolved, Path) else "a hub dataset id"
        raise DataError(
            located(
                f"not readable as {where} ({first_line(err)})",
                source=str(name_or_path),
                fix="give a folder written by save_to_disk, or a hub id (needs network)",
            )
        ) from None
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
    for i, (text, code) in enumerate(zip(data[text_column], data[language_column], strict=True)):
        where = f"row {i}"
        if code not in lang_registry.LANGUAGES:
            raise DataError(
                located(
                    f"unknown language code {show(code)}",
                    source=str(name_or_path),
                    where=f"{where}, column {language_column!r}",
                    fix=_code_hint(str(code)),
                )
            )
        try:
            text = check("string", text)
        except FieldError as err:
            raise DataError(
                located(
                    err.problem,
                    source=str(name_or_path),
                    where=f"{where}, column {text_column!r}",
                    fix=err.fix,
                )
            ) from None
        texts.setdefault(code, []).append(text)
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
