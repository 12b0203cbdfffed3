"""How stable LAHIS top-head sets are when each language's samples are resampled.

    from interp.specialization.head_stability import from_lahis, head_stability
    stab = from_lahis(result, frac=0.02, n_boot=200)     # result: a LahisResult
    stab = head_stability(scores, negative, languages)   # {language: [samples, layers, heads]}
    stab.heads          # language, layer, head, flat, importance, rank, selected, frequency, ...
    stab.overlap        # language, other, overlap, mean, lo, hi (every ordered pair)
    stab.mean_overlap, stab.mean_overlap_lo, stab.mean_overlap_hi

LAHIS keeps one value per sample and head, s = |g| m 1000 and n = [g m < 0], and importance =
mean(s) * mean(n) over a language's samples. A bootstrap replicate draws each language's
samples with replacement (as many as it has, languages independently), recomputes every
language's importance (float64, rounded to float32 as `lahis` stores it) and its top-k set
(the k rule and the tie rule of `interp.specialization.heads.top_heads`: the k largest, equal
values to the lower flat index), and the pairwise overlaps |top(a) & top(b)| / k of those sets.
Reported: each head's selection frequency (share of replicates with the head in its language's
top set), and percentile intervals (`interp.intervals.percentile_interval`) of every overlap
and of the mean off-diagonal overlap.

What this measures: the values are those of one run, where sample i saw the mask that the
AdamW steps of samples 0..i-1 left. Resampling them is a bootstrap of the aggregation over
samples given that run: the sampling variability of the mean and the frequency, not that of
the optimisation path (other samples or another order would move the mask differently), and
it treats samples as exchangeable although later ones see a mask the earlier ones moved. The
statistics are top-k selections, whose bootstrap distribution is biased (resampled sets are
noisier than the observed one, so overlaps lean towards chance): read the intervals as a
stability measure more than as calibrated confidence intervals. Selection frequencies are
centred on the data at hand: heads of equal i.i.d. distributions average k / heads only over
independent data sets, and within one data set range from 0 to well above it (30 samples,
16 heads, k = 4: up to about 0.8), so a high frequency alone does not show a specific head.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.intervals import percentile_interval
from interp.languages import check_codes
from interp.specialization.heads import HeadSelection, top_heads
from interp.specialization.lape import as_array

if TYPE_CHECKING:
    from interp.specialization.lahis import LahisResult

__all__ = ["HeadStability", "from_lahis", "head_stability"]

_CHUNK = 256  # replicates evaluated at once (memory: chunk x samples + chunk x heads floats)


@dataclass
class HeadStability:
    """Bootstrap stability of the top-k heads of each language.

    `heads`: one row per (language, layer, head): flat (layer * heads + head), the observed
    importance, mean_score and neg_freq, rank (0 = most important, ties to the lower flat
    index), selected (in the observed top k), frequency (share of replicates that select it).
    `overlap`: one row per ordered pair (language, other), diagonal included: the observed
    overlap, the replicates' mean and the percentile interval lo, hi.
    `mean_overlap` (lo, hi): the mean over ordered pairs of different languages (NaN with one
    language). `frequency`: the selection frequencies `[languages, layers, heads]`;
    `overlap_samples` `[n_boot, languages, languages]` and `mean_overlap_samples` `[n_boot]`:
    the replicates. `observed`: the top heads of the full samples (a `HeadSelection`).
    """

    heads: pd.DataFrame
    overlap: pd.DataFrame
    mean_overlap: float
    mean_overlap_lo: float
    mean_overlap_hi: float
    frequency: np.ndarray
    overlap_samples: np.ndarray
    mean_overlap_samples: np.ndarray
    observed: HeadSelection
    samples: dict[str, int]
    n_boot: int
    ci: float
    seed: int | None

    @property
    def languages(self) -> tuple[str, ...]:
        return self.observed.languages

    @property
    def k(self) -> int:
        return self.observed.k

    def overlap_matrix(self, column: str = "overlap") -> pd.DataFrame:
        """`[languages, languages]` matrix of one `overlap` column (overlap, mean, lo, hi)."""
        if column not in ("overlap", "mean", "lo", "hi"):
            raise ConfigError(f"column must be overlap, mean, lo or hi, got {column!r}")
        matrix = self.overlap.pivot(index="language", columns="other", values=column)
        return matrix.loc[list(self.languages), list(self.languages)].rename_axis(
            index=None, columns=None
        )


def head_stability(
    sample_scores_by_language: Mapping[str, Any] | Sequence[Any],
    sample_negative_by_language: Mapping[str, Any] | Sequence[Any],
    languages: Sequence[str] | None = None,
    *,
    frac: float = 0.02,
    k: int | None = None,
    min_heads: int = 4,
    n_boot: int = 200,
    seed: int | None = 0,
    ci: float = 0.95,
    importance: Any | None = None,
    source: str = "head stability",
) -> HeadStability:
    """Bootstrap the top-k heads of each language over its samples (see the module docstring).

    sample_scores_by_language / sample_negative_by_language: per language, `[samples, layers,
    heads]` arrays or tensors of |g| m 1000 and of g m < 0 (bool or 0/1), as a {language: array}
    mapping (in `languages` order, default the mapping's) or a sequence in `languages` order.
    k: `top_head_count(layers, heads, frac, min_heads)` unless given. importance: the observed
    `[languages, layers, heads]` importance to select from (default: computed from the samples);
    it must agree with the samples to float32 precision. seed: a language's replicates depend
    only on the seed, its code, its samples and n_boot, not on the other languages passed
    (None: fresh randomness).
    """
    if n_boot < 1:
        raise ConfigError(f"{source}: n_boot must be >= 1, got {n_boot}")
    if not 0 < ci < 1:
        raise ConfigError(f"{source}: ci must be in (0, 1), got {ci}")
    languages, scores = _per_language(sample_scores_by_language, languages, "scores", source)
    _, negative = _per_language(sample_negative_by_language, languages, "negative", source)
    scores, negative, (n_layers, n_heads) = _check_samples(scores, negative, languages, source)
    n_lang, size = len(languages), n_layers * n_heads
    shape = (n_lang, n_layers, n_heads)
    mean_score = np.stack([s.sum(axis=0) / s.shape[0] for s in scores])
    neg_freq = np.stack([g.sum(axis=0) / g.shape[0] for g in negative])
    from_samples = (mean_score * neg_freq).astype(np.float32)
    if importance is None:
        observed_importance = from_samples
    else:
        observed_importance = _check_importance(importance, from_samples, shape, source)
    # the k rule and its checks are top_heads' own (top_head_count unless k is given)
    observed = top_heads(
        observed_importance.reshape(shape),
        languages,
        frac=frac,
        k=k,
        min_heads=min_heads,
        source=source,
    )
    k = observed.k

    counts = np.zeros((n_lang, size), dtype=np.int64)
    overlap_samples = np.empty((n_boot, n_lang, n_lang))
    streams = [_stream(seed, lang) for lang in languages]
    for start in range(0, n_boot, _CHUNK):
        chunk = min(_CHUNK, n_boot - start)
        members = np.zeros((chunk, n_lang, size), dtype=bool)
        for lang in range(n_lang):
            weights = _resample_counts(streams[lang], chunk, scores[lang].shape[0])
            reps = _importance(weights, scores[lang], negative[lang])
            order = np.argsort(-reps, axis=1, kind="stable")[:, :k]
            np.put_along_axis(members[:, lang], order, True, axis=1)
        counts += members.sum(axis=0)
        flat = members.astype(np.float64)
        overlap_samples[start : start + chunk] = flat @ flat.transpose(0, 2, 1) / k
    frequency = (counts / n_boot).reshape(shape)

    off = ~np.eye(n_lang, dtype=bool)
    observed_overlap = observed.overlap().to_numpy(dtype=float)
    if n_lang > 1:
        mean_overlap = float(observed_overlap[off].mean())
        mean_overlap_samples = overlap_samples[:, off].mean(axis=1)
        low, high = percentile_interval(mean_overlap_samples, ci)
        mean_lo, mean_hi = float(low), float(high)
    else:
        mean_overlap = mean_lo = mean_hi = float("nan")
        mean_overlap_samples = np.full(n_boot, np.nan)
    return HeadStability(
        heads=_heads_table(
            languages, observed_importance, mean_score, neg_freq, frequency, k, n_heads
        ),
        overlap=_overlap_table(languages, observed_overlap, overlap_samples, ci),
        mean_overlap=mean_overlap,
        mean_overlap_lo=mean_lo,
        mean_overlap_hi=mean_hi,
        frequency=frequency,
        overlap_samples=overlap_samples,
        mean_overlap_samples=mean_overlap_samples,
        observed=observed,
        samples={lang: int(s.shape[0]) for lang, s in zip(languages, scores, strict=True)},
        n_boot=n_boot,
        ci=ci,
        seed=seed,
    )


def from_lahis(
    result: LahisResult,
    *,
    frac: float = 0.02,
    k: int | None = None,
    min_heads: int = 4,
    n_boot: int = 200,
    seed: int | None = 0,
    ci: float = 0.95,
) -> HeadStability:
    """`head_stability` of a `LahisResult`'s per-sample values; the observed top sets are
    those of its `importance` (what `result.top_heads` selects, with the same k)."""
    missing = [
        lang
        for lang in result.languages
        if lang not in result.sample_scores or lang not in result.sample_negative
    ]
    if missing:
        raise DataError(
            f"LAHIS result: no per-sample values for language(s) {', '.join(missing)}. Fix: "
            "rerun `lahis` (its results keep `sample_scores` and `sample_negative`)"
        )
    return head_stability(
        result.sample_scores,
        result.sample_negative,
        result.languages,
        frac=frac,
        k=k,
        min_heads=min_heads,
        n_boot=n_boot,
        seed=seed,
        ci=ci,
        importance=result.importance,
        source="LAHIS stability",
    )


# ---------------------------------------------------------------------------------------------
# helpers


def _importance(weights: np.ndarray, scores: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Importance `[replicates, heads]` (float32) of resample counts `[replicates, samples]`."""
    n = scores.shape[0]
    return ((weights @ scores) / n * ((weights @ negative) / n)).astype(np.float32)


def _stream(seed: int | None, language: str) -> np.random.Generator:
    """One language's resampling stream: the same whatever other languages are passed."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([seed, *language.encode()])


def _resample_counts(rng: np.random.Generator, chunk: int, n: int) -> np.ndarray:
    """How often each of n samples is drawn in each of `chunk` resamples of size n."""
    draws = rng.integers(0, n, size=(chunk, n)) + n * np.arange(chunk)[:, None]
    return np.bincount(draws.ravel(), minlength=chunk * n).reshape(chunk, n).astype(np.float64)


def _per_language(
    values: Any, languages: Sequence[str] | None, what: str, source: str
) -> tuple[tuple[str, ...], list[Any]]:
    if isinstance(values, Mapping):
        if languages is None:
            languages = tuple(values)
        languages = check_codes(languages, source=source)
        missing = [lang for lang in languages if lang not in values]
        if missing:
            raise DataError(
                f"{source}: no sample {what} for language(s) {', '.join(missing)}. Fix: one "
                "[samples, layers, heads] array per language"
            )
        return languages, [values[lang] for lang in languages]
    if languages is None:
        raise ConfigError(
            f"{source}: sample {what} given as a sequence; pass `languages` (one code per "
            "entry, in order) or a {language: array} mapping"
        )
    languages = check_codes(languages, source=source)
    items = list(values)
    if len(items) != len(languages):
        raise DataError(
            f"{source}: {len(items)} arrays of sample {what} for {len(languages)} languages. "
            "Fix: one [samples, layers, heads] array per language, in `languages` order"
        )
    return languages, items


def _check_samples(
    scores: list[Any], negative: list[Any], languages: Sequence[str], source: str
) -> tuple[list[np.ndarray], list[np.ndarray], tuple[int, int]]:
    """Flat float64 `[samples, layers * heads]` scores and 0/1 negatives; (layers, heads)."""
    out_scores, out_negative, shape = [], [], None
    for lang, score, neg in zip(languages, scores, negative, strict=True):
        score, neg = as_array(score), as_array(neg)
        where = f"{source}, language {lang}"
        if score.ndim != 3 or score.shape[0] < 1:
            raise DataError(
                f"{where}: sample scores must be [samples, layers, heads] with at least one "
                f"sample, got shape {tuple(score.shape)}"
            )
        if neg.shape != score.shape:
            raise DataError(
                f"{where}: sample negatives of shape {tuple(neg.shape)} for scores of shape "
                f"{tuple(score.shape)}. Fix: one g m < 0 flag per sample score"
            )
        if shape is None:
            shape = score.shape[1:]
        elif score.shape[1:] != shape:
            raise DataError(
                f"{where}: [layers, heads] = {list(score.shape[1:])}, other languages have "
                f"{list(shape)}. Fix: the values of one model"
            )
        if not np.isfinite(score).all():
            sample, layer, head = np.argwhere(~np.isfinite(score))[0]
            raise DataError(
                f"{where}, sample {sample}, layer {layer}, head {head}: score is "
                f"{score[sample, layer, head]}. Fix: recompute that language's LAHIS values"
            )
        if not np.isin(neg, (0.0, 1.0)).all():
            raise DataError(f"{where}: sample negatives must be booleans (or 0/1)")
        out_scores.append(score.reshape(score.shape[0], -1))
        out_negative.append(neg.reshape(neg.shape[0], -1))
    return out_scores, out_negative, (int(shape[0]), int(shape[1]))


def _check_importance(
    importance: Any, from_samples: np.ndarray, shape: tuple[int, int, int], source: str
) -> np.ndarray:
    values = as_array(importance)
    if values.shape != shape:
        raise DataError(
            f"{source}: importance of shape {tuple(values.shape)} for per-sample values of "
            f"shape [languages, layers, heads] = {list(shape)}"
        )
    values = values.reshape(from_samples.shape)
    scale = float(np.abs(from_samples).max()) if from_samples.size else 0.0
    if not np.allclose(values, from_samples, rtol=1e-5, atol=1e-6 * scale):
        lang, head = np.unravel_index(np.abs(values - from_samples).argmax(), values.shape)
        raise DataError(
            f"{source}: the importance is not mean(score) * frequency(negative) of the "
            f"per-sample values (row {lang}, flat head {head}: {values[lang, head]} against "
            f"{from_samples[lang, head]}). Fix: pass the per-sample values of the same run"
        )
    return values


def _heads_table(
    languages: Sequence[str],
    importance: np.ndarray,
    mean_score: np.ndarray,
    neg_freq: np.ndarray,
    frequency: np.ndarray,
    k: int,
    n_heads: int,
) -> pd.DataFrame:
    n_lang, size = importance.shape
    order = np.argsort(-importance, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(size)[None, :].repeat(n_lang, axis=0), axis=1)
    flat = np.arange(size)
    return pd.DataFrame(
        {
            "language": np.repeat(np.asarray(languages, dtype=object), size),
            "layer": np.tile(flat // n_heads, n_lang),
            "head": np.tile(flat % n_heads, n_lang),
            "flat": np.tile(flat, n_lang),
            "importance": importance.astype(np.float64).ravel(),
            "mean_score": mean_score.ravel(),
            "neg_freq": neg_freq.ravel(),
            "rank": rank.ravel().astype(np.int64),
            "selected": (rank < k).ravel(),
            "frequency": frequency.ravel(),
        }
    )


def _overlap_table(
    languages: Sequence[str], observed: np.ndarray, samples: np.ndarray, ci: float
) -> pd.DataFrame:
    n_lang = len(languages)
    low, high = percentile_interval(samples, ci)
    codes = np.asarray(languages, dtype=object)
    return pd.DataFrame(
        {
            "language": np.repeat(codes, n_lang),
            "other": np.tile(codes, n_lang),
            "overlap": observed.ravel(),
            "mean": samples.mean(axis=0).ravel(),
            "lo": low.ravel(),
            "hi": high.ravel(),
        }
    )
