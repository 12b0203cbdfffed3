"""Cross-lingual representation alignment per layer (after Blum et al. 2025, arXiv 2508.11017).

    from interp.representations import measure_alignment, compare_alignment
    base = measure_alignment(model, tokenizer, facts.split("test"), ["de", "ja"], n_boot=1000)
    base.table   # language, layer, metric, group, value, lo, hi, n, chance
    tuned = measure_alignment(tuned_model, tokenizer, facts.split("test"), ["de", "ja"])
    compare_alignment(base, tuned)   # language, layer, metric, group, baseline, value, delta,
                                     #   lo, hi, p_value, n  (paired over the same facts)
    vectors = fact_vectors(model, tokenizer, facts, ["en", "de"])  # or vectors_from_inputs
    align(vectors).table             # the same from vectors held in memory

For parallel texts of the same facts in English and in language L (each fact's statement, or
its question prompt), one vector per fact and residual index is read (`residual.py`: the mean
over the statement's tokens, or the prompt's last token), each language's matrix is
mean-centred at each layer (its mean vector over the facts subtracted), and two measures are
computed per (L, layer):

- `retrieval`: the share of facts whose nearest English vector (cosine) is the same fact's
  (L's vector as query, all English vectors as candidates; a tie among k nearest counts 1/k).
  Chance is 1 / n. With `by` (e.g. `item_exposure` classes of the (fact, L) items) it is also
  reported per group, over the group's queries against the same full candidate set.
- `cka`: linear CKA between L's and English's [facts, hidden] matrices (Kornblith et al.
  2019): ||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F), 1 for matrices equal up to rotation
  and isotropic scale; independent of the hidden sizes, so any two models compare. Its
  `chance` is the mean CKA over NULL_PERMUTATIONS shuffles of the fact pairing: CKA is far
  from 0 for unpaired rows when the facts are not many next to the hidden size.

Intervals: percentile bootstrap over facts. One resample of the facts serves every language
and layer (and, in `compare_alignment`, both checkpoints), drawn from `seed` alone, so two
runs on the same facts with the same seed are paired. Retrieval is resampled as the per-fact
hits against the full candidate set (a resample with repeated facts would shrink the
candidate set and inflate accuracy); CKA is recomputed on every resample, centring included,
from the facts' Gram matrices with the resample's multiplicities as weights (exactly the CKA
of the resampled matrices with duplicated rows). Per group, queries are resampled within the
group. Resamples with repeated facts have fewer distinct facts, which raises CKA (its
finite-sample bias): the CKA interval sits slightly above the estimate and can miss it where
CKA is low (on the organism, n = 374 and hidden 128: by 0.01 in the median); paired changes
(`compare_alignment`) largely cancel this.

Memory: `measure_alignment` holds English's and one other language's [facts, layers, hidden]
vectors at a time, plus per layer the [facts, facts] Gram matrices; nothing per token.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.intervals import percentile_interval

if TYPE_CHECKING:
    from interp.facts.schema import FactSet

__all__ = [
    "ALIGNMENT_COLUMNS",
    "COMPARE_COLUMNS",
    "Alignment",
    "FactVectors",
    "align",
    "bootstrap_weights",
    "compare_alignment",
    "cka_replicates",
    "fact_texts",
    "fact_vectors",
    "item_groups",
    "linear_cka",
    "measure_alignment",
    "retrieval_hits",
    "vectors_from_inputs",
]

ALIGNMENT_COLUMNS = ["language", "layer", "metric", "group", "value", "lo", "hi", "n", "chance"]
COMPARE_COLUMNS = [
    "language",
    "layer",
    "metric",
    "group",
    "baseline",
    "value",
    "delta",
    "lo",
    "hi",
    "p_value",
    "n",
]
METRICS = ("retrieval", "cka")
TEXTS = ("statement", "question")
ALL = "all"  # the group of every fact
NULL_PERMUTATIONS = 20  # shuffles of the fact pairing behind CKA's chance level
TIE_TOLERANCE = 1e-5  # cosines this close to the best count as tied (float32 rounding)
_BOOT_CHUNK = 256  # replicates per matrix product in the CKA bootstrap
_CACHE_BYTES = 1 << 29  # English's per-layer Gram terms kept for the next language up to this


# ---------------------------------------------------------------------------- vectors
@dataclass
class FactVectors:
    """One vector per fact, language and residual index.

    `vectors[language]`: float32 [facts, len(layers), hidden], rows in `fact_ids` order;
    `layers`: residual indices (0 = embeddings, i = after decoder layer i).
    """

    fact_ids: tuple[str, ...]
    vectors: dict[str, np.ndarray]
    layers: tuple[int, ...]
    text: str = "custom"
    position: str = "last"

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.vectors)


def fact_texts(
    facts: FactSet, language: str, text: str = "statement", *, prompt_template: str | None = None
) -> list[str]:
    """Each fact's statement in `language`, or its question prompt (`prompt_template`, default
    `interp.evaluate.scoring.PROMPT_TEMPLATE`), in `facts` order."""
    if text not in TEXTS:
        raise ConfigError(f"text={text!r}. Fix: use one of {', '.join(TEXTS)}")
    if prompt_template is None:
        from interp.evaluate.scoring import PROMPT_TEMPLATE

        prompt_template = PROMPT_TEMPLATE
    out = []
    for fact in facts:
        item = fact.items.get(language)
        if item is None:
            raise DataError(
                f"fact {fact.fact_id!r} has no item in {language!r}. Fix: restrict the facts "
                f"to those present in every language asked for"
            )
        if text == "statement":
            if not item.statement:
                raise DataError(
                    f"fact {fact.fact_id!r}, {language!r}: no statement. Fix: use text='question' "
                    "or facts built with statements (build_world gives them)"
                )
            out.append(item.statement)
        else:
            out.append(prompt_template.format(question=item.question))
    return out


def vectors_from_inputs(
    model: Any,
    tokenizer: Any,
    inputs: Mapping[str, Sequence[str | Sequence[int]]],
    fact_ids: Sequence[str],
    *,
    position: str = "last",
    layers: Iterable[int] | None = None,
    text: str = "custom",
    **kwargs: Any,
) -> FactVectors:
    """`FactVectors` of parallel inputs: `inputs[language][i]` (a string or token ids) is fact
    `fact_ids[i]` in that language. `kwargs` go to `iter_residuals` (batch_size, ...)."""
    from interp.representations.residual import _check_layers, iter_residuals

    keep = _check_layers(model, layers)
    vectors = {}
    for language, rows in inputs.items():
        if len(rows) != len(fact_ids):
            raise DataError(
                f"inputs[{language!r}] has {len(rows)} texts for {len(fact_ids)} fact ids. Fix: "
                "give one text per fact, in fact_ids order"
            )
        out = None
        for batch in iter_residuals(
            model, tokenizer, rows, position=position, layers=keep, **kwargs
        ):
            values = batch.vectors.numpy()
            if out is None:
                out = np.empty((len(rows), len(keep), values.shape[-1]), dtype=np.float32)
            out[batch.index] = values
        if out is None:
            raise DataError(f"inputs[{language!r}] is empty. Fix: give one text per fact")
        vectors[language] = out
    return FactVectors(tuple(map(str, fact_ids)), vectors, keep, text, position)


def _default_position(text: str, position: str | None) -> str:
    return position if position is not None else ("mean" if text == "statement" else "last")


def fact_vectors(
    model: Any,
    tokenizer: Any,
    facts: FactSet,
    languages: Iterable[str],
    *,
    text: str = "statement",
    position: str | None = None,
    prompt_template: str | None = None,
    layers: Iterable[int] | None = None,
    **kwargs: Any,
) -> FactVectors:
    """Vectors of every fact in each of `languages` (English is not added: list it).

    `text`: "statement" (default position "mean") or "question" (the scoring prompt, default
    position "last"). `kwargs` go to `iter_residuals` (batch_size, padding_side, device)."""
    languages = list(dict.fromkeys(languages))
    inputs = {
        code: fact_texts(facts, code, text, prompt_template=prompt_template) for code in languages
    }
    return vectors_from_inputs(
        model,
        tokenizer,
        inputs,
        [f.fact_id for f in facts],
        position=_default_position(text, position),
        layers=layers,
        text=text,
        **kwargs,
    )


# ---------------------------------------------------------------------------- measures
def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(axis=0, keepdims=True)


def retrieval_hits(queries: np.ndarray, candidates: np.ndarray, *, centre: bool = True):
    """Per query row i: 1 when candidate row i is its nearest by cosine, 1/k when it ties with
    k - 1 others for nearest (within TIE_TOLERANCE), else 0. Both [n, hidden], rows paired
    (row i of both is fact i). `centre`: subtract each matrix's mean row first (per-language
    mean-centring). Cosines in float32."""
    q = np.asarray(queries, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    if q.shape != c.shape or q.ndim != 2:
        raise DataError(
            f"retrieval needs two [n, hidden] matrices of one shape, got {q.shape} and "
            f"{c.shape}. Fix: pass the same facts in both languages"
        )
    if centre:
        q, c = _centred(q), _centred(c)
    q = (q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)).astype(np.float32)
    c = (c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-30)).astype(np.float32)
    hits = np.empty(len(q))
    for start in range(0, len(q), 2048):  # [chunk, n] similarities at a time
        sim = _mm(q[start : start + 2048], c.T)
        at_best = sim >= sim.max(axis=1, keepdims=True) - TIE_TOLERANCE
        own = at_best[np.arange(len(sim)), np.arange(start, start + len(sim))]
        hits[start : start + len(sim)] = own / at_best.sum(axis=1)
    return hits


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in float32 through torch, whose thread pool the model's forward passes use too
    (numpy's BLAS would start its own threads beside torch's on a shared machine)."""
    import torch

    left = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    right = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))
    return (left @ right).numpy()


def _gram(x: np.ndarray) -> np.ndarray:
    """The Gram matrix of x's mean-centred rows, [n, n] float32 (products in float32, the
    centring in float64)."""
    x = _centred(x).astype(np.float32)
    return _mm(x, x.T)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two [n, features] matrices (rows paired; feature counts may differ),
    in float64 from the features: ||Yc' Xc||_F^2 / (||Xc' Xc||_F ||Yc' Yc||_F)."""
    x, y = _centred(x), _centred(y)
    if len(x) != len(y):
        raise DataError(f"CKA needs paired rows, got {len(x)} and {len(y)}")
    cross = np.linalg.norm(y.T @ x) ** 2
    denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / denom) if denom > 0 else float("nan")


@dataclass
class _Side:
    """One language's matrix at one layer, as the CKA bootstrap needs it: its centred Gram G,
    sum(G * G), and for each resample b (weights w_b): G w_b and w_b' (G * G) w_b."""

    gram: np.ndarray  # [n, n] float32
    self_sum: float
    wg: np.ndarray  # [B, n] float64
    quad: np.ndarray  # [B]

    @property
    def nbytes(self) -> int:
        return self.gram.nbytes + self.wg.nbytes + self.quad.nbytes


def _side(x: np.ndarray, weights: np.ndarray) -> _Side:
    gram = _gram(x)
    square = gram * gram
    wg, quad = np.empty(weights.shape), np.empty(len(weights))
    for start in range(0, len(weights), _BOOT_CHUNK):
        w = weights[start : start + _BOOT_CHUNK].astype(np.float32)
        wg[start : start + len(w)] = _mm(w, gram)
        quad[start : start + len(w)] = np.einsum("bi,bi->b", _mm(w, square), w, dtype=np.float64)
    return _Side(gram, float(np.sum(square, dtype=np.float64)), wg, quad)


def _hsic(quad: np.ndarray, wa: np.ndarray, wb: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_ij w_i w_j Ac_ij Bc_ij per weight row (A, B centred with the row's weights), from
    quad = w'(A * B)w, wa = A w and wb = B w; weights [B, n] with rows summing to n."""
    total = weights.sum(axis=1)
    middle = (weights * wa * wb).sum(axis=1)
    a_total = (wa * weights).sum(axis=1)
    b_total = (wb * weights).sum(axis=1)
    return quad - 2 * middle / total + a_total * b_total / total**2


def _cka_point(a: _Side, b: _Side) -> float:
    cross = float(np.sum(a.gram * b.gram, dtype=np.float64))  # the Grams are centred already
    denom = np.sqrt(a.self_sum * b.self_sum)
    return cross / denom if denom > 0 else float("nan")


def _cka_null(a: _Side, b: _Side, permutations: Sequence[np.ndarray]) -> float:
    """Mean CKA with the facts of `a` shuffled against those of `b`: the level CKA takes when
    the rows are not paired (well above 0 when n is not large next to the hidden size)."""
    denom = np.sqrt(a.self_sum * b.self_sum)
    if denom <= 0 or not permutations:
        return float("nan")
    values = [np.sum(a.gram[p][:, p] * b.gram, dtype=np.float64) / denom for p in permutations]
    return float(np.mean(values))


def _cka_boot(a: _Side, b: _Side, weights: np.ndarray) -> np.ndarray:
    product = a.gram * b.gram
    quad = np.empty(len(weights))
    for start in range(0, len(weights), _BOOT_CHUNK):
        w = weights[start : start + _BOOT_CHUNK].astype(np.float32)
        quad[start : start + len(w)] = np.einsum("bi,bi->b", _mm(w, product), w, dtype=np.float64)
    cross = _hsic(quad, a.wg, b.wg, weights)
    aa = np.clip(_hsic(a.quad, a.wg, a.wg, weights), 0, None)
    bb = np.clip(_hsic(b.quad, b.wg, b.wg, weights), 0, None)
    denom = np.sqrt(aa * bb)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, cross / denom, np.nan)


def cka_replicates(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Linear CKA of x and y on each resample given as multiplicities `weights` [B, n]
    (row b: how often each fact is drawn): `linear_cka(x[idx], y[idx])`, centring included,
    computed from the n x n Gram matrices (products in float32: agreement to about 1e-6)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    return _cka_boot(_side(x, weights), _side(y, weights), weights)


# ---------------------------------------------------------------------------- resampling
def bootstrap_weights(n: int, n_boot: int, seed: int, key: str = ALL) -> np.ndarray:
    """Multiplicities [n_boot, n] of `n_boot` resamples of n items with replacement, drawn
    from (`seed`, `key`) alone: the same arguments give the same resamples in any run."""
    if n_boot < 0:
        raise ConfigError(f"n_boot={n_boot}: must be 0 or more")
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def item_groups(
    by: pd.DataFrame | None, fact_ids: Sequence[str], language: str, column: str | None = None
) -> np.ndarray | None:
    """The group label of each fact's item in `language` from a table with fact_id, language
    and one group column (e.g. `item_exposure`'s `exposure`); None-valued where absent."""
    if by is None:
        return None
    if column is None:
        others = [c for c in by.columns if c not in ("fact_id", "language")]
        if len(others) != 1:
            raise ConfigError(
                f"by: columns {list(by.columns)}; cannot tell the group column. Fix: pass "
                "by_column, or a table of fact_id, language and one group column"
            )
        column = others[0]
    missing = [c for c in ("fact_id", "language", column) if c not in by.columns]
    if missing:
        raise DataError(
            f"by: missing column(s) {', '.join(missing)}. Fix: pass a table of fact_id, language "
            "and the group column (e.g. interp.evaluate.exposure.item_exposure(...))"
        )
    rows = by[by["language"] == language]
    lookup = dict(zip(rows["fact_id"].astype(str), rows[column], strict=True))
    return np.array([lookup.get(str(f)) for f in fact_ids], dtype=object)


def _check_ci(n_boot: int, ci: float) -> None:
    if n_boot < 0:
        raise ConfigError(f"n_boot={n_boot}: must be 0 or more")
    if not 0 < ci < 1:
        raise ConfigError(f"ci={ci}: must lie strictly between 0 and 1")


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    lo, hi = percentile_interval(samples, ci)
    return float(lo), float(hi)


# ---------------------------------------------------------------------------- results
@dataclass
class Alignment:
    """Alignment of each language with English per layer.

    `table`: ALIGNMENT_COLUMNS, one row per (language, layer, metric, group).
    `hits`: fact_id, language, layer, hit (retrieval credit of each fact, for plots and
    other groupings). `replicates[(language, layer, metric, group)]`: the bootstrap
    replicates behind each interval (what `compare_alignment` pairs).
    """

    table: pd.DataFrame
    hits: pd.DataFrame
    fact_ids: tuple[str, ...]
    english: str
    n_boot: int
    ci: float
    seed: int
    replicates: dict[tuple[str, int, str, str], np.ndarray] = field(repr=False)
    point: dict[tuple[str, int, str, str], float] = field(repr=False)
    sizes: dict[tuple[str, int, str, str], int] = field(repr=False)


class _Builder:
    """Accumulates one language at a time into an `Alignment`."""

    def __init__(self, fact_ids, english, n_boot, ci, seed, by, by_column):
        _check_ci(n_boot, ci)
        self.fact_ids = tuple(map(str, fact_ids))
        self.english, self.n_boot, self.ci, self.seed = english, n_boot, ci, seed
        self.by, self.by_column = by, by_column
        self.weights = bootstrap_weights(len(self.fact_ids), n_boot, seed)
        rng = np.random.default_rng([int(seed), zlib.crc32(b"null")])
        self.permutations = [rng.permutation(len(self.fact_ids)) for _ in range(NULL_PERMUTATIONS)]
        self.rows: list[dict] = []
        self.hits: list[pd.DataFrame] = []
        self.replicates: dict = {}
        self.point: dict = {}
        self.sizes: dict = {}
        self.english_sides: dict[int, _Side] = {}  # per layer, while under _CACHE_BYTES
        self._cached = 0

    def _add(self, language, layer, metric, group, value, reps, n, chance):
        key = (language, int(layer), metric, str(group))
        lo, hi = _interval(reps, self.ci) if len(reps) else (float("nan"), float("nan"))
        self.rows.append(
            dict(zip(ALIGNMENT_COLUMNS, (*key, value, lo, hi, n, chance), strict=True))
        )
        self.replicates[key], self.point[key], self.sizes[key] = reps, value, n

    def add_language(self, language, x_lang, x_en, layers) -> None:
        n = len(self.fact_ids)
        if len(x_lang) != n or len(x_en) != n:
            raise DataError(
                f"{language!r}: {len(x_lang)} vectors, English {len(x_en)}, facts {n}. Fix: "
                "collect both languages over the same facts"
            )
        if n < 2:
            raise DataError(f"alignment needs at least 2 facts, got {n}")
        groups = item_groups(self.by, self.fact_ids, language, self.by_column)
        for k, layer in enumerate(layers):
            hits = retrieval_hits(x_lang[:, k], x_en[:, k])
            self._add(
                language,
                layer,
                "retrieval",
                ALL,
                float(hits.mean()),
                self.weights @ hits / n,
                n,
                1.0 / n,
            )
            if groups is not None:
                for group in sorted({g for g in groups if g is not None}, key=str):
                    members = np.flatnonzero(groups == group)
                    w = bootstrap_weights(len(members), self.n_boot, self.seed, str(group))
                    sub = hits[members]
                    self._add(
                        language,
                        layer,
                        "retrieval",
                        group,
                        float(sub.mean()),
                        w @ sub / len(members),
                        len(members),
                        1.0 / n,
                    )
            side_en = self.english_sides.get(layer)
            if side_en is None:
                side_en = _side(x_en[:, k], self.weights)
                if self._cached + side_en.nbytes <= _CACHE_BYTES:
                    self.english_sides[layer] = side_en
                    self._cached += side_en.nbytes
            side = _side(x_lang[:, k], self.weights)
            cka = _cka_point(side_en, side)
            reps = _cka_boot(side_en, side, self.weights) if self.n_boot else np.empty(0)
            null = _cka_null(side_en, side, self.permutations)
            self._add(language, layer, "cka", ALL, float(cka), reps, n, null)
            self.hits.append(
                pd.DataFrame(
                    {"fact_id": self.fact_ids, "language": language, "layer": layer, "hit": hits}
                )
            )

    def result(self) -> Alignment:
        table = pd.DataFrame(self.rows, columns=ALIGNMENT_COLUMNS)
        hits = (
            pd.concat(self.hits, ignore_index=True)
            if self.hits
            else pd.DataFrame(columns=["fact_id", "language", "layer", "hit"])
        )
        return Alignment(
            table,
            hits,
            self.fact_ids,
            self.english,
            self.n_boot,
            self.ci,
            self.seed,
            self.replicates,
            self.point,
            self.sizes,
        )


def align(
    vectors: FactVectors,
    *,
    english: str = "en",
    languages: Iterable[str] | None = None,
    by: pd.DataFrame | None = None,
    by_column: str | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> Alignment:
    """Retrieval accuracy and linear CKA of each language against `english`, per layer.

    `languages`: default every language of `vectors` but English. `by`: fact_id, language and
    a group column (e.g. `item_exposure(read_exposure(checkpoint), facts)`): retrieval is also
    reported per group of the (fact, language) items."""
    if english not in vectors.vectors:
        raise DataError(
            f"vectors have no {english!r} (languages: {list(vectors.languages)}). Fix: collect "
            f"{english!r} too, or pass english= the reference language"
        )
    codes = [c for c in (languages or vectors.languages) if c != english]
    missing = [c for c in codes if c not in vectors.vectors]
    if missing:
        raise DataError(f"vectors have no {missing}; they have {list(vectors.languages)}")
    builder = _Builder(vectors.fact_ids, english, n_boot, ci, seed, by, by_column)
    for code in codes:
        builder.add_language(code, vectors.vectors[code], vectors.vectors[english], vectors.layers)
    return builder.result()


def measure_alignment(
    model: Any,
    tokenizer: Any,
    facts: FactSet,
    languages: Iterable[str],
    *,
    english: str = "en",
    text: str = "statement",
    position: str | None = None,
    prompt_template: str | None = None,
    layers: Iterable[int] | None = None,
    by: pd.DataFrame | None = None,
    by_column: str | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    **kwargs: Any,
) -> Alignment:
    """`alignment` of `model` on `facts`, one language at a time next to English (memory:
    two languages' vectors). `kwargs` go to `iter_residuals` (batch_size, padding_side,
    device)."""
    codes = [c for c in dict.fromkeys(languages) if c != english]
    if not codes:
        raise ConfigError(f"languages: none besides {english!r}. Fix: name at least one other")
    common = dict(
        text=text, position=position, prompt_template=prompt_template, layers=layers, **kwargs
    )
    reference = fact_vectors(model, tokenizer, facts, [english], **common)
    builder = _Builder(reference.fact_ids, english, n_boot, ci, seed, by, by_column)
    for code in codes:
        other = fact_vectors(model, tokenizer, facts, [code], **common)
        builder.add_language(
            code, other.vectors[code], reference.vectors[english], reference.layers
        )
    return builder.result()


def compare_alignment(baseline: Alignment, other: Alignment) -> pd.DataFrame:
    """Change of every alignment measure from `baseline` to `other` (other - baseline), with
    paired percentile intervals: both runs must cover the same facts with the same n_boot and
    seed, so that replicate b of both is the same resample of facts.

    Returns COMPARE_COLUMNS; `p_value` = 2 min(P(d* <= 0), P(d* >= 0)), capped at 1."""
    if baseline.fact_ids != other.fact_ids:
        raise DataError(
            f"baseline and other cover different facts ({len(baseline.fact_ids)} vs "
            f"{len(other.fact_ids)}, or another order). Fix: measure both on the same FactSet"
        )
    if (baseline.n_boot, baseline.seed) != (other.n_boot, other.seed):
        raise ConfigError(
            f"n_boot/seed differ ({baseline.n_boot}/{baseline.seed} vs {other.n_boot}/"
            f"{other.seed}): the resamples would not be paired. Fix: measure both with the same"
        )
    rows = []
    for key, value in other.point.items():
        if key not in baseline.point:
            continue
        delta_reps = other.replicates[key] - baseline.replicates[key]
        lo, hi = _interval(delta_reps, other.ci) if len(delta_reps) else (np.nan, np.nan)
        finite = delta_reps[np.isfinite(delta_reps)]
        p = (
            min(1.0, 2 * min((finite <= 0).mean(), (finite >= 0).mean()))
            if finite.size
            else float("nan")
        )
        base = baseline.point[key]
        rows.append((*key, base, value, value - base, lo, hi, p, other.sizes[key]))
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)
