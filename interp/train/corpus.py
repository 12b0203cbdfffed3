"""The organism's pretraining mixture: which facts it reads, in which languages, how often.

The mixture reproduces the situation the PolyFact paper studies. English states every fact
(several times), the other trained languages state only a share of the facts (low-resource
languages a smaller share), unseen languages see only a little text, parallel entity-name
lines link the names of one entity across languages, and question-answer lines
("Question: {q}\\nAnswer: {answer}") show the question format for TRAIN facts only.
Held-out facts (validation and test) are never asked; a share of them is stated in some
non-English languages (`heldout_statement_share`), so the same test fact can be known in one
language from reading it there and in another only through English (transfer).
Code-switched English statements of TRAIN facts (the subject's label swapped for its label in
another trained language) link entity names inside a fact's context.

`Mixture.exposure()` records, for every (fact, language), what the model read: how many
statements and question-answer lines in that language. Evaluation splits accuracy by it.

Everything is a pure function of the facts, the `MixtureConfig` and its seed. Documents are
packed into fixed-length sequences, separated by the end-of-text token, in a fresh
document order each epoch (`PackedCorpus.blocks`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from interp import languages as langreg
from interp.errors import ConfigError, DataError
from interp.facts.schema import Fact, FactSet
from interp.io import fingerprint

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

QA_TEMPLATE = "Question: {question}\nAnswer: {answer}"
PARALLEL = "parallel"  # the `language` of a multi-language entity-name line
KINDS = ("statement", "qa", "names", "codeswitch")
# the kinds that put a fact into a language: reading one of these in L means "exposed in L"
EXPOSING_KINDS = ("statement", "qa")
ROLES = ("english", "trained", "low", "unseen")


@dataclass(frozen=True)
class MixtureConfig:
    """Rates of the pretraining mixture. Shares are of the TRAIN facts (exact counts, rounded).

    A role is english, trained (the other high-resource trained languages), low (low-resource
    trained languages) or unseen. Held-out facts are never asked; `heldout_statement_share` of
    them are stated in a language (exposed there), the rest only in English.
    """

    english_repeats: int = 5  # copies of every fact's English statement, all splits
    statement_share: dict[str, float] = field(
        default_factory=lambda: {"trained": 0.3, "low": 0.1, "unseen": 0.03}
    )
    statement_repeats: int = 1  # copies of each chosen non-English statement
    # share of the held-out (validation + test) facts stated in a language of each role
    heldout_statement_share: dict[str, float] = field(default_factory=dict)
    qa_share: dict[str, float] = field(
        default_factory=lambda: {"english": 1.0, "trained": 0.3, "low": 0.1, "unseen": 0.0}
    )
    qa_repeats: int = 1  # copies of each chosen question-answer line
    # share of the entities (with a label in a language) whose name line includes that language;
    # English is on every line, a line needs a second language
    name_share: dict[str, float] = field(
        default_factory=lambda: {"trained": 0.5, "low": 0.3, "unseen": 0.1}
    )
    name_repeats: int = 1
    # code-switched English statements per TRAIN fact: the subject's label in this many other
    # trained languages (one document each, languages drawn per fact)
    codeswitch_languages: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        counts = {
            "english_repeats": (self.english_repeats, 1),
            "statement_repeats": (self.statement_repeats, 1),
            "qa_repeats": (self.qa_repeats, 1),
            "name_repeats": (self.name_repeats, 0),
            "codeswitch_languages": (self.codeswitch_languages, 0),
        }
        bad = [f"{k}={v} (minimum {low})" for k, (v, low) in counts.items() if v < low]
        if bad:
            raise ConfigError(f"MixtureConfig: {', '.join(bad)}. Fix: raise these counts")
        for name in ("statement_share", "heldout_statement_share", "qa_share", "name_share"):
            shares = getattr(self, name)
            unknown = set(shares) - set(ROLES)
            bad = {k: v for k, v in shares.items() if not 0.0 <= float(v) <= 1.0}
            if unknown or bad:
                raise ConfigError(
                    f"MixtureConfig.{name}={shares}: roles must be among {ROLES} and shares "
                    "within [0, 1]. Fix: e.g. {'trained': 0.3, 'low': 0.1}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Document:
    """One training document: its text, what it is, its language and the fact behind it."""

    text: str
    kind: str  # statement | qa | names
    language: str  # a language code, or "parallel" for a multi-language name line
    fact_id: str | None = None
    split: str | None = None


@dataclass
class Mixture:
    """One epoch's documents (before shuffling) and the config that made them."""

    documents: list[Document]
    config: MixtureConfig
    languages: tuple[str, ...]
    data_fingerprint: str
    fact_splits: dict[str, str] = field(default_factory=dict)  # fact_id -> split, sorted ids

    def __len__(self) -> int:
        return len(self.documents)

    def texts(self) -> list[str]:
        return [d.text for d in self.documents]

    def exposure(self) -> pd.DataFrame:
        """What the model read of each fact in each language, one row per (fact, language).

        Columns: fact_id, language, split, statements, questions (documents of each kind in
        that language), exposed (read in that language at all; English is always exposed).
        Code-switched and name lines do not count: they carry names, not the fact in L.
        """
        import pandas as pd

        read: dict[tuple[str, str], dict[str, int]] = {}
        for doc in self.documents:
            if doc.kind in EXPOSING_KINDS and doc.fact_id is not None:
                row = read.setdefault((doc.fact_id, doc.language), {"statement": 0, "qa": 0})
                row[doc.kind] += 1
        rows = []
        for fact_id, split in self.fact_splits.items():
            for code in self.languages:
                counts = read.get((fact_id, code), {"statement": 0, "qa": 0})
                rows.append(
                    (
                        fact_id,
                        code,
                        split,
                        counts["statement"],
                        counts["qa"],
                        code == "en" or counts["statement"] + counts["qa"] > 0,
                    )
                )
        columns = ["fact_id", "language", "split", "statements", "questions", "exposed"]
        return pd.DataFrame(rows, columns=columns)

    def summary(self, tokenizer: Any | None = None) -> pd.DataFrame:
        """Documents (and tokens, with a tokenizer) per language and kind, one row per language."""
        import pandas as pd

        rows: dict[str, dict[str, int]] = {}
        lengths = (
            [len(ids) for ids in tokenizer(self.texts(), add_special_tokens=False)["input_ids"]]
            if tokenizer is not None
            else [0] * len(self.documents)
        )
        for doc, n_tokens in zip(self.documents, lengths, strict=True):
            row = rows.setdefault(doc.language, {"documents": 0, "tokens": 0})
            row["documents"] += 1
            row[doc.kind] = row.get(doc.kind, 0) + 1
            row["tokens"] += n_tokens
        order = [c for c in self.languages if c in rows] + [PARALLEL] * (PARALLEL in rows)
        frame = pd.DataFrame([{"language": c, **rows[c]} for c in order]).fillna(0)
        for column in ("documents", "tokens", *KINDS):
            if column in frame:
                frame[column] = frame[column].astype(int)
        if tokenizer is None:
            frame = frame.drop(columns="tokens")
        else:
            frame["token_share"] = (frame["tokens"] / max(1, frame["tokens"].sum())).round(4)
        return frame


def language_role(code: str) -> str:
    """english, trained, low or unseen, from the language registry."""
    if code == "en":
        return "english"
    group = langreg.group(code)
    return {"trained-high": "trained", "trained-low": "low", "unseen": "unseen"}[group]


def facts_fingerprint(facts: FactSet) -> str:
    """A content hash of everything in the facts the mixture and the evaluation read."""
    rows = [
        (
            item.fact_id,
            item.language,
            fact.split,
            item.question,
            item.options,
            item.answer_index,
            item.option_ids,
            item.subject_label,
            item.statement,
        )
        for fact in facts
        for item in (fact.items[code] for code in facts.languages)
    ]
    return fingerprint("facts", sorted(facts.languages), sorted(rows, key=repr))


def _check_facts(facts: FactSet) -> None:
    if len(facts) == 0:
        raise DataError("facts: the fact set is empty. Fix: build or read some facts first")
    if "en" not in facts.languages:
        raise DataError(
            f"facts: languages {facts.languages} lack English ('en'), which states every fact in "
            "the mixture. Fix: include en"
        )
    langreg.check_codes(facts.languages, source="facts")
    for fact in facts:
        if fact.split not in ("train", "validation", "test"):
            raise DataError(
                f"facts: fact {fact.fact_id!r} has split {fact.split!r}. Fix: assign every fact "
                "to train, validation or test (build_world does)"
            )
        for code in facts.languages:
            if not fact.items[code].statement:
                raise DataError(
                    f"facts: fact {fact.fact_id!r} has no statement in {code!r}; the mixture "
                    "needs a declarative sentence per language. Fix: use facts from build_world "
                    "or a PolyFact folder written by write_polyfact"
                )


def _rng(config: MixtureConfig, *keys: str) -> random.Random:
    """A generator per (seed, purpose, language or entity): draws never depend on input order."""
    return random.Random(":".join((str(config.seed), *keys)))


def _sample(rng: random.Random, population: Sequence[Any], share: float) -> list[Any]:
    """round(share * n) members, in population order (exact counts keep the rates checkable)."""
    k = round(share * len(population))
    chosen = set(rng.sample(range(len(population)), k))
    return [x for i, x in enumerate(population) if i in chosen]


def entity_names(facts: FactSet) -> dict[str, dict[str, str]]:
    """Every entity's label per language, from subjects and options: {entity id: {lang: label}}."""
    names: dict[str, dict[str, str]] = {}
    for fact in facts:
        for code in facts.languages:
            item = fact.items[code]
            if fact.subject_id and item.subject_label:
                names.setdefault(fact.subject_id, {}).setdefault(code, item.subject_label)
            for entity, label in zip(item.option_ids or (), item.options, strict=False):
                names.setdefault(entity, {}).setdefault(code, label)
    return names


def build_mixture(facts: FactSet, config: MixtureConfig | None = None) -> Mixture:
    """The documents of one epoch of the pretraining mixture (see the module docstring)."""
    config = config or MixtureConfig()
    _check_facts(facts)
    codes = facts.languages
    roles = {code: language_role(code) for code in codes}
    ordered = sorted(facts, key=lambda f: str(f.fact_id))  # the same facts read in any order
    train = [f for f in ordered if f.split == "train"]
    heldout = [f for f in ordered if f.split != "train"]
    docs: list[Document] = []

    def statement(fact: Fact, code: str) -> Document:
        return Document(fact.items[code].statement, "statement", code, fact.fact_id, fact.split)

    def qa(fact: Fact, code: str) -> Document:
        item = fact.items[code]
        text = QA_TEMPLATE.format(question=item.question, answer=item.answer_text)
        return Document(text, "qa", code, fact.fact_id, fact.split)

    for fact in ordered:  # English states every fact, held-out ones included
        docs.extend(statement(fact, "en") for _ in range(config.english_repeats))
    for code in codes:
        if code == "en":
            continue
        stated = _sample(
            _rng(config, "stated", code), train, config.statement_share.get(roles[code], 0.0)
        )
        stated += _sample(
            _rng(config, "stated-heldout", code),
            heldout,
            config.heldout_statement_share.get(roles[code], 0.0),
        )
        docs.extend(
            statement(fact, code) for fact in stated for _ in range(config.statement_repeats)
        )
    for code in codes:
        share = config.qa_share.get(roles[code], 0.0)
        for fact in _sample(_rng(config, "asked", code), train, share):
            docs.extend(qa(fact, code) for _ in range(config.qa_repeats))
    if config.codeswitch_languages:
        docs.extend(_codeswitched(train, codes, roles, config))
    names = entity_names(FactSet(ordered, codes))
    named = sorted(e for e in names if "en" in names[e])
    included = {  # per language, round(share * n) of the entities that have a label in it
        code: set(
            _sample(
                _rng(config, "names", code),
                [e for e in named if code in names[e]],
                config.name_share.get(roles[code], 0.0),
            )
        )
        for code in codes
        if code != "en"
    }
    for entity in named:
        chosen = [c for c in codes if c == "en" or entity in included[c]]
        if len(chosen) < 2:
            continue
        text = " | ".join(f"{code}: {names[entity][code]}" for code in chosen)
        docs.extend(Document(text, "names", PARALLEL) for _ in range(config.name_repeats))
    splits = {str(f.fact_id): f.split for f in ordered}
    return Mixture(docs, config, codes, facts_fingerprint(facts), splits)


def _codeswitched(
    train: list[Fact], codes: Sequence[str], roles: dict[str, str], config: MixtureConfig
) -> list[Document]:
    """English statements of train facts with the subject's label in other trained languages.

    The label is swapped where it stands in the English sentence; facts whose English label
    does not occur verbatim in their statement (or whose label is the same in L) are skipped
    for that language.
    """
    others = [c for c in codes if roles[c] in ("trained", "low")]
    docs = []
    for fact in train:
        english = fact.items["en"]
        label = english.subject_label
        if not label or not others or label not in english.statement:
            continue
        rng = _rng(config, "codeswitch", str(fact.fact_id))
        picked = rng.sample(others, min(config.codeswitch_languages, len(others)))
        for code in picked:
            foreign = fact.items[code].subject_label
            if not foreign or foreign == label:
                continue
            text = english.statement.replace(label, foreign, 1)
            docs.append(Document(text, "codeswitch", code, fact.fact_id, fact.split))
    return docs


@dataclass
class PackedCorpus:
    """Tokenised documents, packed into `seq_len` blocks in a fresh order per epoch.

    Each epoch concatenates every document followed by `eos_id` in an order drawn from
    (seed, epoch) and cuts the stream into blocks, dropping the remainder, so every epoch has
    the same number of blocks and block k of epoch e is a pure function of (seed, e, k).
    """

    token_ids: list[list[int]]
    seq_len: int
    eos_id: int
    seed: int = 0
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        total = sum(len(ids) + 1 for ids in self.token_ids)
        if self.seq_len < 2 or total < self.seq_len:
            raise ConfigError(
                f"packing: {total} tokens cannot fill one block of seq_len={self.seq_len}. "
                "Fix: lower seq_len or add documents"
            )
        self.tokens_per_epoch = total
        self.blocks_per_epoch = total // self.seq_len

    def epoch(self, epoch: int) -> np.ndarray:
        """All blocks of one epoch, [blocks_per_epoch, seq_len] int64."""
        import numpy as np

        if epoch not in self._cache:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.token_ids))
            stream = np.fromiter(
                (t for i in order for t in (*self.token_ids[i], self.eos_id)),
                dtype=np.int64,
                count=self.tokens_per_epoch,
            )
            usable = self.blocks_per_epoch * self.seq_len
            self._cache = {epoch: stream[:usable].reshape(self.blocks_per_epoch, self.seq_len)}
        return self._cache[epoch]

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        """The blocks of training step `step` (0-based): global blocks step*B .. step*B+B-1."""
        import numpy as np

        rows = []
        for index in range(step * batch_size, (step + 1) * batch_size):
            epoch, position = divmod(index, self.blocks_per_epoch)
            rows.append(self.epoch(epoch)[position])
        return np.stack(rows)


def pack(mixture: Mixture, tokenizer: Any, seq_len: int, seed: int = 0) -> PackedCorpus:
    """Tokenise the mixture's documents and pack them (see `PackedCorpus`)."""
    ids = tokenizer(mixture.texts(), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return PackedCorpus([list(x) for x in ids], seq_len, eos, seed)
