"""Per-neuron tests of language dependence, an FDR scorer and thresholds calibrated on a null.

With a fixed budget (the LAPE variants) the number of selected neurons is fixed, so a label
permutation null of per-language counts tests almost nothing, and the absolute rule's fixed
thresholds are constants that may suit no model. This module tests every neuron instead.

`language_tests(seqs)` gives, for every unit of every layer at once (vectorised; the work
streams over layers and blocks of sequences), a p-value for "this neuron's firing rate depends
on the language", valid against the label-shuffled null, plus per-language post-hoc tests
(language l vs the other languages pooled) and effect sizes.

The omnibus test: a one-way ANOVA over sequences
-----------------------------------------------
Sequence s (of language g_s) has y_s firings over n_s counted tokens. Under H0 the language
labels are exchangeable across sequences, so the sequences of every language are draws from
one distribution: equal means AND equal variances, whatever the dependence between the tokens
of a sequence. The sequences are therefore the observations, and a one-way ANOVA on them
is the natural test: its homoscedasticity assumption holds exactly under this null, and it
needs no model of the token-level dependence, because the spread of sequences within a
language measures it (overdispersion included). A token-level chi-square or binomial test
treats tokens as independent and is anti-conservative by the design effect 1 + (n - 1) rho
(large for 1024-token sequences). Kruskal-Wallis would be valid too, but it sorts every
neuron's sequences and most of its values are tied zeros; the ANOVA needs only sums and sums
of squares per language (one pass over the counts).

Sequences (or chunks of sequences) may differ in length, so each language's rate is the ratio
estimator p_l = Y_l / N_l (Y_l = sum of y_s, N_l = sum of n_s over its m_l sequences) and its
variance the sequence-robust (cluster) one, m_l sigma^2 / N_l^2 with sigma^2 = Var(y_s - p n_s):

    W   = sum_s (y_s - p_{g_s} n_s)^2                 within, S - L degrees of freedom
    w_l = N_l^2 / m_l,  pbar = sum_l w_l p_l / sum_l w_l
    B   = sum_l w_l (p_l - pbar)^2                    between, L - 1 degrees of freedom
    F   = (B / (L - 1)) / (W / (S - L))  ~  F(L - 1, S - L) under H0.

With sequences of equal length this is exactly the classical one-way ANOVA F on per-sequence
counts (scipy.stats.f_oneway). The F reference distribution rests on the central limit theorem
over sequences: accurate with a few tens of sequences per language (the tests check it
against label permutations; on the default organism's counts with shuffled labels, 4.9% of
p fall below 0.05 and 0.93% below 0.01, over 200 shuffles); neurons that fire in a handful of
sequences only get a conservative p (one bursty sequence gives F ~ 1 whatever language holds
it).

Degenerate cases: a neuron that never fires gets F = 0, p = 1; zero within-language variance
with unequal rates (a neuron firing only in one language's sequences, on exactly the same
share of each, or never elsewhere with no spread) gives F = inf, p = 0 (not NaN); zero
variance and equal rates (fires on every token everywhere) gives p = 1. Differences of rates
below 1e-12 of the largest rate count as zero (rounding).

Post-hoc tests and effect sizes
-------------------------------
Language l vs the others pooled: d = p_l - p_{-l}, p_{-l} = (Y - Y_l) / (N - N_l), with
Welch's unpooled variance: Var(p_l) from l's own sequences, Var(p_{-l}) from the other
languages' sequences about their own language's rate (a stratified estimator). Unpooled,
because post-hoc tests are read where the omnibus rejected, where variances do differ (a
language where a neuron fires more also varies more): a pooled variance would let a second,
noisy language pass. Degrees of freedom: the conservative bound min(m_l - 1, S - m_l - L + 1)
rather than Satterthwaite's per-neuron estimate (one reference distribution per language).
`p_above` is one-sided (l fires more than the others), `p_two_sided` two-sided. The effect size
is the fold change `ratio` = p_l / p_{-l} (0/0 counts as 1).

Selection: `NullFdr` ("null-fdr")
----------------------------------
1. Benjamini-Hochberg over the omnibus p of every neuron of every layer (dead ones included,
   as the budget counts them), at level `fdr`: R of M neurons are language-dependent.
2. Within each of the R neurons, BH over its L one-sided post-hoc p at level fdr * R / M
   (Benjamini & Bogomolov 2014, selective inference on families: controls the average
   within-family FDR over the selected families).
3. Specificity (the effect size): a significant language l is assigned when it fires at least
   `min_ratio` times as often as the other languages pooled (p_l >= k p_{-l}) and at least
   `min_ratio` times as often as any language not assigned. With enough tokens a rate of 0.5
   vs 0.4 is significant but not language-specific; a fold change says how specific, in the
   same terms in which the post-hoc test is made, does not depend on the number of languages,
   and lets a neuron belong to a group of languages (a script) when the group stands apart.
   A "not-English" neuron (equal rates in 11 languages, 0 in English) is not selected: each
   of its languages is only 1.1x the others pooled. Default k = 2.
No budget: the count can rise or fall between checkpoints.

Other tools
-----------
`benjamini_hochberg(p, axis=None)`: BH-adjusted q-values (scipy's false_discovery_control).
`calibrate_absolute(seqs)` / `calibrated_absolute(seqs)`: thresholds of the absolute rule
read off the label-shuffled null (see `calibrate_absolute`: they bound chance selections, not
specificity, so give them a `ratio` too). `budget_null(seqs, "lape-paper")`:
for fixed-budget scorers, a null for what the budget leaves free, the selected set's mean
normalised entropy and each language's share of the set.

Input: `SequenceCounts` (stats.py), or a `LayerStream` that hands over one layer
[sequences, units] at a time (any numeric dtype, e.g. int32 as the accumulator stores it), so
a model whose per-sequence counts do not fit in memory as float64 can be tested layer by
layer. Memory: one layer, one float64 block of `block_rows` sequences and O(languages x
layers x units) results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.specialization.lape import (
    Absolute,
    NeuronScorer,
    NeuronSelection,
    lape_entropy,
    make_scorer,
    register_scorer,
    scorer_params,
)
from interp.specialization.stats import SequenceCounts

__all__ = [
    "AbsoluteCalibration",
    "BudgetNull",
    "LayerStream",
    "NeuronTests",
    "NullFdr",
    "benjamini_hochberg",
    "budget_null",
    "calibrate_absolute",
    "calibrated_absolute",
    "f_sf",
    "language_tests",
    "t_sf",
]

# rate differences below this share of the largest rate are rounding, not signal
_RATE_TOL = 1e-12
# within sums of squares below this share of sum(y^2) are recomputed from residuals ...
_SS_CHECK = 1e-6
# ... and, recomputed, below this share they are rounding: zero
_SS_ZERO = 1e-24
# float64 values per block of the permutation matmuls
_BLOCK_VALUES = 8_000_000


# ---------------------------------------------------------------------------------------------
# distributions: the regularized incomplete beta function (no scipy at run time)


_TINY = 1e-300
_EPS = 1e-15


def _beta_cf(a: float, b: float, x: np.ndarray) -> np.ndarray:
    """Continued fraction of I_x(a, b) (modified Lentz); fast for x < (a + 1) / (a + b + 2).

    Elements leave the iteration as they converge, so the cost is set by the slowest ones,
    about sqrt(max(a, b)) iterations near the switch point and a few in the tails.
    """
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d[np.abs(d) < _TINY] = _TINY
    d = 1.0 / d
    h = d.copy()
    index = np.arange(x.size)
    out = np.empty_like(x)
    max_iter = 200 + 20 * int(math.sqrt(max(a, b)))
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d[np.abs(d) < _TINY] = _TINY
            c = 1.0 + aa / c
            c[np.abs(c) < _TINY] = _TINY
            d = 1.0 / d
            delta = d * c
            h *= delta
        done = np.abs(delta - 1.0) < _EPS
        if m == max_iter:
            done[:] = True
        if done.any():
            out[index[done]] = h[done]
            keep = ~done
            index, x, c, d, h = index[keep], x[keep], c[keep], d[keep], h[keep]
            if index.size == 0:
                break
    return out


def _betainc(a: float, b: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Regularized incomplete beta I_x(a, b) for scalars a, b > 0; y = 1 - x, given
    separately so that both tails keep their precision."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = np.empty(x.shape)
    out[x <= 0] = 0.0
    out[y <= 0] = 1.0
    inner = (x > 0) & (y > 0)
    flip = inner & (x > (a + 1.0) / (a + b + 2.0))
    direct = inner & ~flip
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    for mask, aa, bb, xx, yy, flipped in ((direct, a, b, x, y, False), (flip, b, a, y, x, True)):
        if not mask.any():
            continue
        xs, ys = xx[mask], yy[mask]
        value = np.exp(aa * np.log(xs) + bb * np.log(ys) - log_beta) / aa * _beta_cf(aa, bb, xs)
        out[mask] = 1.0 - value if flipped else value
    return np.clip(out, 0.0, 1.0)


def f_sf(f: np.ndarray, d1: float, d2: float) -> np.ndarray:
    """P(F > f) for F ~ F(d1, d2); f >= 0, inf allowed (p = 0)."""
    f = np.asarray(f, dtype=np.float64)
    out = np.ones(f.shape)
    out[np.isposinf(f)] = 0.0
    finite = (f > 0) & np.isfinite(f)
    if finite.any():
        r = d2 / (d1 * f[finite])  # x = d2 / (d2 + d1 f) = r / (1 + r)
        out[finite] = _betainc(d2 / 2.0, d1 / 2.0, r / (1.0 + r), 1.0 / (1.0 + r))
    return out


def _t_tails(t: np.ndarray, df: float) -> tuple[np.ndarray, np.ndarray]:
    """(P(T > t), P(|T| > |t|)) for Student's T with df degrees of freedom; t may be +-inf."""
    t = np.asarray(t, dtype=np.float64)
    two = np.ones(t.shape)
    two[np.isinf(t)] = 0.0
    finite = (t != 0) & np.isfinite(t)
    if finite.any():
        r = df / (t[finite] * t[finite])  # x = df / (df + t^2) = r / (1 + r)
        two[finite] = _betainc(df / 2.0, 0.5, r / (1.0 + r), 1.0 / (1.0 + r))
    return np.where(t > 0, 0.5 * two, 1.0 - 0.5 * two), two


def t_sf(t: np.ndarray, df: float) -> np.ndarray:
    """P(T > t) for Student's T with df degrees of freedom; t may be +-inf."""
    return _t_tails(t, df)[0]


# ---------------------------------------------------------------------------------------------
# multiple testing


def benjamini_hochberg(p: Any, *, axis: int | None = None) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same shape as `p`.

    axis=None: one family of all entries; an int: one family per slice along that axis
    (as scipy.stats.false_discovery_control(p, axis=axis)). q_(i) = min_{j >= i} n p_(j) / j,
    capped at 1; tied p get the same q. p must lie in [0, 1] with no NaN.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise DataError(
            "benjamini_hochberg: p-values must lie in [0, 1] with no NaN; got "
            f"{int(np.isnan(p).sum())} NaN, min {np.nanmin(p)}, max {np.nanmax(p)}"
        )
    if axis is None:
        return benjamini_hochberg(p.ravel(), axis=0).reshape(p.shape)
    moved = np.moveaxis(p, axis, -1)
    n = moved.shape[-1]
    order = np.argsort(moved, axis=-1, kind="stable")
    ranked = np.take_along_axis(moved, order, axis=-1) * (n / np.arange(1, n + 1))
    ranked = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(moved)
    np.put_along_axis(q, order, np.minimum(ranked, 1.0), axis=-1)
    return np.moveaxis(q, -1, axis)


# ---------------------------------------------------------------------------------------------
# input: per-sequence counts, whole or one layer at a time


@dataclass(frozen=True)
class LayerStream:
    """Per-sequence counts handed over one layer at a time.

    `layer(i)` returns layer i's counts `[sequences, units]` (numpy or torch, any numeric
    dtype: int32 counts are converted block by block, never the whole layer); the other fields
    are those of `SequenceCounts`. Use it when `[sequences, layers, units]` does not fit in
    memory as float64, e.g. layer(i) = fires[:, i, :] of a saved int32 tensor, or a loader.
    """

    layer: Callable[[int], Any]
    num_layers: int
    language: np.ndarray
    tokens: np.ndarray
    languages: tuple[str, ...]
    neuron_index: np.ndarray | None = None
    source: str = "per-sequence counts (by layer)"

    def __post_init__(self) -> None:
        if self.num_layers < 1:
            raise DataError(f"{self.source}: num_layers must be >= 1, got {self.num_layers}")
        # validate labels and tokens exactly as SequenceCounts does (no units)
        check = SequenceCounts(
            np.zeros((np.shape(self.tokens)[0] if np.ndim(self.tokens) else 0, 0, 0)),
            self.language,
            self.tokens,
            self.languages,
            source=self.source,
        )
        object.__setattr__(self, "language", check.language)
        object.__setattr__(self, "tokens", check.tokens)
        object.__setattr__(self, "languages", check.languages)
        if self.neuron_index is not None:
            object.__setattr__(self, "neuron_index", np.asarray(self.neuron_index, np.int64))

    @classmethod
    def of(cls, seqs: SequenceCounts | LayerStream) -> LayerStream:
        """A stream over `seqs` (a `SequenceCounts` is read layer by layer, without copies)."""
        if isinstance(seqs, LayerStream):
            return seqs
        if not isinstance(seqs, SequenceCounts):
            raise ConfigError(
                f"expected SequenceCounts or LayerStream, got {type(seqs).__name__}. Fix: wrap "
                "per-sequence counts [sequences, layers, units] in SequenceCounts"
            )
        counts = seqs.counts
        return cls(
            layer=lambda i: counts[:, i, :],
            num_layers=seqs.num_layers,
            language=seqs.language,
            tokens=seqs.tokens,
            languages=seqs.languages,
            neuron_index=seqs.neuron_index,
            source=seqs.source,
        )

    @property
    def num_sequences(self) -> int:
        return int(self.tokens.shape[0])

    def layers(self) -> Iterator[tuple[int, np.ndarray]]:
        """(layer index, [sequences, units] array in its own dtype), checked for shape."""
        units = None
        for i in range(self.num_layers):
            x = self.layer(i)
            if hasattr(x, "detach"):  # torch, without importing it
                x = x.detach().cpu().numpy()
            x = np.asarray(x)
            if x.ndim != 2 or x.shape[0] != self.num_sequences or x.dtype.kind not in "biuf":
                raise DataError(
                    f"{self.source}, layer {i}: expected numeric counts [{self.num_sequences} "
                    f"sequences, units], got {x.dtype} {tuple(x.shape)}. Fix: one row per "
                    "sequence, in the order of `language` and `tokens`"
                )
            if units is None:
                units = x.shape[1]
                if self.neuron_index is not None and self.neuron_index.shape != (units,):
                    raise DataError(
                        f"{self.source}: neuron_index has {self.neuron_index.size} entries for "
                        f"{units} units"
                    )
            elif x.shape[1] != units:
                raise DataError(
                    f"{self.source}, layer {i}: {x.shape[1]} units, layer 0 had {units}"
                )
            yield i, x

    def one_hot(self) -> np.ndarray:
        """[languages, sequences] membership (float64)."""
        one_hot = np.zeros((len(self.languages), self.num_sequences))
        one_hot[self.language, np.arange(self.num_sequences)] = 1.0
        return one_hot


def _bad_counts(source: str, layer: int, detail: str) -> DataError:
    return DataError(
        f"{source}, layer {layer}: {detail}. Fix: counts must be finite and >= 0; recollect them"
    )


def _blocks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


# ---------------------------------------------------------------------------------------------
# the tests


@dataclass(frozen=True)
class NeuronTests:
    """Per-unit tests of language dependence (see the module docstring for the statistics).

    Omnibus, `[layers, units]`: `f` (F statistic, inf when the within variance is 0 and rates
    differ) and `p`. Post-hoc, language l vs the others pooled, `[languages, layers, units]`:
    `t` (Welch), `p_above` (one-sided, l fires more), `p_two_sided`. Effect sizes,
    `[languages, layers, units]`: `rates` p_l, `rest_rates` p_{-l} and the property `ratio`
    p_l / p_{-l}. `df` = (L - 1, S - L) of the F test; `df_language[l]` of l's t test.
    `sequences` and `tokens` per language. `neuron_index` names units as in SequenceCounts.
    """

    languages: tuple[str, ...]
    f: np.ndarray
    p: np.ndarray
    t: np.ndarray
    p_above: np.ndarray
    p_two_sided: np.ndarray
    rates: np.ndarray
    rest_rates: np.ndarray
    df: tuple[int, int]
    df_language: np.ndarray
    sequences: np.ndarray
    tokens: np.ndarray
    neuron_index: np.ndarray | None = None

    @property
    def num_layers(self) -> int:
        return self.p.shape[0]

    @property
    def num_units(self) -> int:
        return self.p.shape[1]

    @property
    def ratio(self) -> np.ndarray:
        """Fold change p_l / p_{-l} `[languages, layers, units]`; 0/0 = 1, x/0 = inf."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.rates / self.rest_rates
        ratio[(self.rates == 0) & (self.rest_rates == 0)] = 1.0
        return ratio

    def entropy(self) -> np.ndarray:
        """Normalised LAPE entropy H / log(L) `[layers, units]` of the rates; inf if dead."""
        return lape_entropy(self.rates) / math.log(len(self.languages))

    def q(self) -> np.ndarray:
        """BH q-values of the omnibus p over all units of all layers `[layers, units]`."""
        return benjamini_hochberg(self.p)

    def table(self, mask: np.ndarray | None = None) -> pd.DataFrame:
        """A tidy table of selected units.

        `mask`: `[languages, layers, units]` (one row per selected (language, unit), e.g. a
        `NullFdr` selection) or `[layers, units]` (one row per unit, its language the one of
        highest rate); None = every unit. Columns language, layer, neuron (named by
        `neuron_index` when set), rate, rest_rate, ratio, entropy (normalised), f, p, q (BH
        over all units), t, p_language (one-sided post-hoc p of that language).
        """
        n_lang = len(self.languages)
        if mask is None:
            mask = np.ones(self.p.shape, dtype=bool)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape == self.p.shape:
            layer, unit = np.nonzero(mask)
            lang = self.rates[:, layer, unit].argmax(axis=0) if layer.size else layer
        elif mask.shape == (n_lang, *self.p.shape):
            lang, layer, unit = np.nonzero(mask)
        else:
            raise DataError(
                f"mask has shape {mask.shape}; expected {self.p.shape} (units) or "
                f"{(n_lang, *self.p.shape)} (languages x units)"
            )
        neuron = unit if self.neuron_index is None else self.neuron_index[unit]
        return pd.DataFrame(
            {
                "language": np.asarray(self.languages, dtype=object)[lang],
                "layer": layer.astype(np.int64),
                "neuron": np.asarray(neuron, dtype=np.int64),
                "rate": self.rates[lang, layer, unit],
                "rest_rate": self.rest_rates[lang, layer, unit],
                "ratio": self.ratio[lang, layer, unit],
                "entropy": self.entropy()[layer, unit],
                "f": self.f[layer, unit],
                "p": self.p[layer, unit],
                "q": self.q()[layer, unit],
                "t": self.t[lang, layer, unit],
                "p_language": self.p_above[lang, layer, unit],
            }
        )


class _Moments:
    """Per-language sums of y, n*y and y^2 of one layer, streaming over blocks of sequences.

    Rows are visited language by language (in label order, `order`), a block of at most
    `block_rows` rows at a time, converted to float64 into one reused buffer. Plain numpy
    reductions (no BLAS): a one-hot matmul would spend L multiply-adds per count where one
    add is needed, and small multithreaded BLAS calls stall on a busy machine. For integer
    counts every sum is exact.
    """

    def __init__(self, stream: LayerStream, block_rows: int | None) -> None:
        self.stream = stream
        language = stream.language
        self.order = np.argsort(language, kind="stable")
        self.sorted = bool(np.array_equal(self.order, np.arange(language.size)))
        counts = np.bincount(language, minlength=len(stream.languages))
        self.bounds = np.concatenate([[0], np.cumsum(counts)])
        self.block_rows = block_rows

    def __call__(self, x: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_lang, n_units = len(self.stream.languages), x.shape[1]
        rows = self.block_rows or max(8, 500_000 // max(n_units, 1))
        buffer = np.empty((rows, n_units))
        sums = np.zeros((3, n_lang, n_units))  # y, n y, y^2
        check = x.dtype.kind in "if"  # unsigned and bool counts cannot be negative
        tokens = self.stream.tokens
        for lang in range(n_lang):
            for start in range(self.bounds[lang], self.bounds[lang + 1], rows):
                stop = min(start + rows, self.bounds[lang + 1])
                index = self.order[start:stop]
                block = buffer[: stop - start]
                np.copyto(block, x[start:stop] if self.sorted else x[index])
                if check:
                    lowest = block.min()
                    if not lowest >= 0:
                        raise _bad_counts(self.stream.source, layer, f"a count is {lowest}")
                y = block.sum(axis=0)
                sums[0, lang] += y
                n = tokens[index]
                if n[0] == n[-1] and (n == n[0]).all():
                    sums[1, lang] += n[0] * y
                else:
                    sums[1, lang] += np.einsum("i,ij->j", n, block)
                sums[2, lang] += np.einsum("ij,ij->j", block, block)
        if not np.isfinite(sums).all():
            raise _bad_counts(self.stream.source, layer, "counts are not finite")
        return sums[0], sums[1], sums[2]


def language_tests(
    seqs: SequenceCounts | LayerStream, *, block_rows: int | None = None
) -> NeuronTests:
    """Test every unit for a language-dependent firing rate (omnibus F and post-hoc t).

    Vectorised over units: per layer, sums and sums of squares per language, read in blocks
    of `block_rows` sequences (default: about 500k values, 4 MB, per block); then the
    statistics of every unit at once. See the module docstring.
    """
    stream = LayerStream.of(seqs)
    n_lang, n_seq = len(stream.languages), stream.num_sequences
    one_hot = stream.one_hot()
    n = stream.tokens
    m = one_hot.sum(axis=1)  # sequences per language
    if (m < 2).any():
        few = [lang for lang, k in zip(stream.languages, m, strict=True) if k < 2]
        raise DataError(
            f"{stream.source}: language(s) {', '.join(few)} have fewer than 2 sequences; a "
            "test needs the spread between sequences. Fix: collect more sequences (or smaller "
            "chunks) for them"
        )
    tokens = one_hot @ n  # N_l
    nn = one_hot @ (n * n)  # sum of n^2 per language
    moments = _Moments(stream, block_rows)
    suspect_block = max(16, 4_000_000 // max(n_seq, 1))
    d1, d2 = n_lang - 1, n_seq - n_lang
    weight = (tokens * tokens / m)[:, None]  # w_l
    robust = (m / (m - 1))[:, None]  # small-sample factor of the cluster variance
    df_language = np.minimum(m - 1, n_seq - m - (n_lang - 1)).astype(np.float64)

    f_layers, t_layers, flat_layers, rate_layers, rest_layers = [], [], [], [], []
    for layer, x in stream.layers():
        y_sum, ny_sum, yy_sum = moments(x, layer)
        rate = y_sum / tokens[:, None]
        within = yy_sum - 2.0 * rate * ny_sum + rate * rate * nn[:, None]
        # where the expansion cancels (nearly constant rates), recompute from residuals
        suspect = np.flatnonzero(((yy_sum > 0) & (within < _SS_CHECK * yy_sum)).any(axis=0))
        for cols in _blocks(suspect.size, suspect_block):
            units = suspect[cols]
            values = np.array(x[:, units], dtype=np.float64)
            values -= n[:, None] * rate[:, units][stream.language]
            within[:, units] = one_hot @ (values * values)
            within[:, units] = np.where(
                within[:, units] <= _SS_ZERO * yy_sum[:, units], 0.0, within[:, units]
            )
        within = np.maximum(within, 0.0)
        scale = rate.max(axis=0)  # the largest rate: differences below _RATE_TOL of it are 0

        # omnibus F
        pbar = (weight * rate).sum(axis=0) / weight.sum()
        dev = rate - pbar
        dev[np.abs(dev) <= _RATE_TOL * scale] = 0.0
        between = (weight * dev * dev).sum(axis=0)
        within_total = within.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (between / d1) / (within_total / d2)
        f[between == 0] = 0.0
        f[(between > 0) & (within_total == 0)] = np.inf
        f_layers.append(f)

        # post-hoc: l vs the others pooled, Welch variances
        y_rest = y_sum.sum(axis=0) - y_sum
        rest = y_rest / (tokens.sum() - tokens)[:, None]
        var_part = within * robust  # N_l^2 Var(p_l)
        var_rest = np.empty_like(var_part)
        for lang in range(n_lang):
            var_rest[lang] = np.delete(var_part, lang, axis=0).sum(axis=0)
        variance = (
            var_part / (tokens * tokens)[:, None]
            + var_rest / ((tokens.sum() - tokens) ** 2)[:, None]
        )
        diff = rate - rest
        diff[np.abs(diff) <= _RATE_TOL * np.maximum(rate, rest)] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = diff / np.sqrt(variance)
        flat = (variance == 0) & (diff == 0)
        t[variance == 0] = np.copysign(np.inf, diff[variance == 0])
        t[flat] = 0.0
        t_layers.append(t)
        flat_layers.append(flat)
        rate_layers.append(rate)
        rest_layers.append(rest)

    f = np.stack(f_layers)
    t = np.stack(t_layers, axis=1)
    rates = np.stack(rate_layers, axis=1)
    rest_rates = np.stack(rest_layers, axis=1)
    p = f_sf(f, d1, d2)
    p_above = np.empty_like(t)
    p_two = np.empty_like(t)
    for lang in range(n_lang):
        p_above[lang], p_two[lang] = _t_tails(t[lang], df_language[lang])
    # no variation at all (never fires, or the same constant rate everywhere): no evidence
    flat = np.stack(flat_layers, axis=1)
    p_above[flat] = 1.0
    p_two[flat] = 1.0
    return NeuronTests(
        languages=stream.languages,
        f=f,
        p=p,
        t=t,
        p_above=p_above,
        p_two_sided=p_two,
        rates=rates,
        rest_rates=rest_rates,
        df=(d1, d2),
        df_language=df_language,
        sequences=m.astype(np.int64),
        tokens=tokens,
        neuron_index=stream.neuron_index,
    )


# ---------------------------------------------------------------------------------------------
# the scorer


@register_scorer
@dataclass(frozen=True)
class NullFdr:
    """Significant at FDR `fdr` AND at least `min_ratio`-fold specific (module docstring).

    Needs per-sequence counts: use `select_sequences(seqs)` (or `select_tests(tests)` to reuse
    `language_tests`), not `select(rates)`. `min_rate` optionally asks an assigned language to
    fire on at least that share of its tokens.
    """

    name: ClassVar[str] = "null-fdr"
    needs_sequences: ClassVar[bool] = True
    fdr: float = 0.05
    min_ratio: float = 2.0
    min_rate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.fdr < 1:
            raise ConfigError(f"fdr must be in (0, 1), got {self.fdr!r}")
        if not self.min_ratio >= 1:
            raise ConfigError(
                f"min_ratio is a fold change (language vs the others), >= 1; got {self.min_ratio!r}"
            )
        if not 0 <= self.min_rate <= 1:
            raise ConfigError(f"min_rate must be in [0, 1], got {self.min_rate!r}")

    def select(self, rates: np.ndarray) -> np.ndarray:
        raise ConfigError(
            "the null-fdr scorer tests each neuron against the spread between sequences, so it "
            "needs per-sequence counts, not pooled rates. Fix: call "
            "NullFdr().select_sequences(SequenceCounts(...)) (the scorer's needs_sequences is "
            "True), or pick a rates scorer (lape-paper, lape-tang, absolute)"
        )

    def select_sequences(self, seqs: SequenceCounts | LayerStream) -> np.ndarray:
        """Boolean `[languages, layers, units]`: the language(s) each selected unit is for."""
        return self.select_tests(language_tests(seqs))

    def select_tests(self, tests: NeuronTests) -> np.ndarray:
        """The selection from precomputed `language_tests`."""
        n_lang = len(tests.languages)
        mask = np.zeros((n_lang, *tests.p.shape), dtype=bool)
        significant = benjamini_hochberg(tests.p) <= self.fdr
        selected, total = int(significant.sum()), significant.size
        if selected == 0:
            return mask
        # within each selected neuron, BH over its languages at fdr * R / M (Benjamini-Bogomolov)
        above = benjamini_hochberg(tests.p_above[:, significant], axis=0) <= (
            self.fdr * selected / total
        )
        rates = tests.rates[:, significant]
        ratio = tests.ratio[:, significant]
        assigned = above & (ratio >= self.min_ratio) & (rates >= self.min_rate) & (rates > 0)
        # ... and at least min_ratio times any language not assigned (dropping one raises the
        # bar for the others: repeat until nothing changes, at most L rounds)
        for _ in range(n_lang):
            reference = np.where(assigned, -np.inf, rates).max(axis=0)
            kept = assigned & (rates >= self.min_ratio * reference)
            if np.array_equal(kept, assigned):
                break
            assigned = kept
        mask[:, significant] = assigned
        return mask

    def score(self, seqs: SequenceCounts | LayerStream) -> NeuronSelection:
        """The selection as a `NeuronSelection` (entropy in nats, p = the language's rate)."""
        tests = language_tests(seqs)
        return _selection(self.select_tests(tests), tests, self)


def _selection(mask: np.ndarray, tests: NeuronTests, scorer: NeuronScorer) -> NeuronSelection:
    selection = NeuronSelection.from_mask(
        mask, tests.rates, tests.languages, scorer=scorer.name, params=scorer_params(scorer)
    )
    if tests.neuron_index is not None:
        selection.table["neuron"] = tests.neuron_index[selection.table["neuron"].to_numpy()]
        selection.num_neurons = int(tests.neuron_index.max()) + 1
    return selection


# ---------------------------------------------------------------------------------------------
# label permutations


def _permuted_rates(
    stream: LayerStream, labels: np.ndarray, block_units: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Per layer, rates `[n_rep, languages, units]` under each row of `labels` `[n_rep, S]`."""
    n_rep, n_seq = labels.shape
    n_lang = len(stream.languages)
    weights = np.zeros((n_rep, n_lang, n_seq))
    rows = np.arange(n_rep)[:, None]
    weights[rows, labels, np.arange(n_seq)[None]] = 1.0
    tokens = weights @ stream.tokens  # [n_rep, L]
    weights = weights.reshape(n_rep * n_lang, n_seq)
    block = block_units or max(16, _BLOCK_VALUES // max(n_seq, n_rep * n_lang))
    for layer, x in stream.layers():
        counts = np.empty((n_rep * n_lang, x.shape[1]))
        for cols in _blocks(x.shape[1], block):
            counts[:, cols] = weights @ np.asarray(x[:, cols], dtype=np.float64)
        yield layer, counts.reshape(n_rep, n_lang, -1) / tokens[:, :, None]


def _shuffles(stream: LayerStream, n_perm: int, seed: int | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(stream.language) for _ in range(n_perm)])


def _normalised_entropy(rates: np.ndarray, axis: int) -> np.ndarray:
    """H / log(L) over `axis`; inf where every rate is 0."""
    rates = np.moveaxis(rates, axis, 0)
    return lape_entropy(rates) / math.log(rates.shape[0])


# ---------------------------------------------------------------------------------------------
# thresholds of the absolute rule, calibrated on the label-shuffled null


@dataclass(frozen=True)
class AbsoluteCalibration:
    """Thresholds of the absolute rule read off the label-shuffled null.

    `scorer`: the calibrated `Absolute`. `null_selected_share`: share of all (permutation,
    neuron) pairs that the calibrated rule selects under the null (<= `quantile` by
    construction, the false-positive rate per neuron). `null_active`: null neurons whose rate
    reached `min_rate` in some language, the pool the quantiles were taken over.
    """

    scorer: Absolute
    quantile: float
    n_perm: int
    seed: int | None
    null_selected_share: float
    null_active: int
    null_neurons: int

    def to_frame(self) -> pd.DataFrame:
        row = {
            "max_entropy": self.scorer.max_entropy,
            "min_share": self.scorer.min_share,
            "min_rate": self.scorer.min_rate,
            "quantile": self.quantile,
            "n_perm": self.n_perm,
            "null_selected_share": self.null_selected_share,
            "null_active": self.null_active,
            "null_neurons": self.null_neurons,
        }
        return pd.DataFrame([row])


def calibrate_absolute(
    seqs: SequenceCounts | LayerStream,
    *,
    n_perm: int = 20,
    quantile: float = 0.001,
    min_rate: float = 0.01,
    ratio: float | None = None,
    seed: int | None = 0,
) -> AbsoluteCalibration:
    """`max_entropy` and `min_share` of the absolute rule from `n_perm` label shuffles.

    The rule: shuffle the language labels across sequences `n_perm` times (group sizes kept)
    and pool the null neurons of every permutation that are active (rate >= `min_rate` in some
    language; the rule cannot select the others). Then

    - max_entropy = the largest value below the (k+1)-th smallest null normalised entropy,
      k = floor(quantile * active null neurons): at most a share `quantile` of the active null
      neurons reach it;
    - min_share = the smallest value above the (k+1)-th largest null top share max_l q_l.

    Either condition alone admits at most a share `quantile` of null neurons, so the rule
    selects at most that share of neurons under the null (reported as `null_selected_share`,
    measured on the same permutations), whatever the model, the number of sequences or the
    burstiness of its neurons. `min_rate` is kept as given (Absolute's default 0.01): a neuron
    seen firing a handful of times has no meaningful language distribution, and keeping such
    neurons in the pool would drag the entropy threshold down to theirs (in a shuffle, a
    neuron firing in one sequence has entropy 0). If more than `quantile` of the null neurons
    have entropy 0, max_entropy is 0 and the reported null share exceeds `quantile`.

    What this controls is chance, not specificity. The more tokens, the closer the null
    entropies are to 1 (shuffled languages fire at nearly the same rate) and so the threshold:
    on the default organism (81 sequences of 128 tokens per language) it is 0.997, and the
    calibrated rule selects 1,554 of 2,048 neurons, because nearly every neuron's rate differs
    somewhat between languages. For "specific", add an effect size: `ratio` (passed to
    `Absolute`: the language fires at least `ratio` times as often as any other; counted in
    `null_selected_share` too) or use `NullFdr`.
    """
    if n_perm < 1:
        raise ConfigError(f"n_perm must be >= 1, got {n_perm}")
    if not 0 < quantile < 1:
        raise ConfigError(f"quantile must be in (0, 1), got {quantile!r}")
    stream = LayerStream.of(seqs)
    labels = _shuffles(stream, n_perm, seed)
    entropy, top_share, top_rate, second = [], [], [], []
    for _layer, rates in _permuted_rates(stream, labels):
        total = rates.sum(axis=1)
        ordered = np.sort(rates, axis=1)
        entropy.append(_normalised_entropy(rates, axis=1))  # [n_perm, units]
        with np.errstate(divide="ignore", invalid="ignore"):
            top_share.append(np.where(total > 0, ordered[:, -1] / total, 0.0))
        top_rate.append(ordered[:, -1])
        second.append(ordered[:, -2])
    entropy = np.concatenate(entropy, axis=1).ravel()
    top_share = np.concatenate(top_share, axis=1).ravel()
    top_rate = np.concatenate(top_rate, axis=1).ravel()
    second = np.concatenate(second, axis=1).ravel()
    active = (top_rate >= min_rate) & (top_rate > 0)
    n_active = int(active.sum())
    if n_active == 0:
        raise DataError(
            f"{stream.source}: no neuron reaches min_rate={min_rate} in any language under "
            "shuffled labels. Fix: lower min_rate"
        )
    k = int(math.floor(quantile * n_active))
    ent = np.sort(entropy[active])
    share = np.sort(top_share[active])
    max_entropy = float(np.clip(np.nextafter(ent[k], -np.inf), 0.0, 1.0))
    min_share = float(np.clip(np.nextafter(share[n_active - 1 - k], np.inf), 0.0, 1.0))
    scorer = Absolute(max_entropy=max_entropy, min_rate=min_rate, min_share=min_share, ratio=ratio)
    # the rule selects a neuron iff its top language passes (the top has the largest share)
    chosen = active & (entropy <= max_entropy) & (top_share >= min_share)
    if ratio is not None:
        chosen &= top_rate >= ratio * second
    return AbsoluteCalibration(
        scorer=scorer,
        quantile=quantile,
        n_perm=n_perm,
        seed=seed,
        null_selected_share=float(chosen.mean()),
        null_active=n_active,
        null_neurons=int(entropy.size),
    )


def calibrated_absolute(
    seqs: SequenceCounts | LayerStream,
    *,
    n_perm: int = 20,
    quantile: float = 0.001,
    min_rate: float = 0.01,
    ratio: float | None = None,
    seed: int | None = 0,
) -> Absolute:
    """The `Absolute` scorer with thresholds from the null (`calibrate_absolute`)."""
    return calibrate_absolute(
        seqs, n_perm=n_perm, quantile=quantile, min_rate=min_rate, ratio=ratio, seed=seed
    ).scorer


# ---------------------------------------------------------------------------------------------
# a null for what a fixed budget leaves free


@dataclass
class BudgetNull:
    """What a fixed-budget selection can still show, against shuffled labels.

    `entropy`: mean normalised entropy (H / log L) of the selected neurons; `null_entropy`
    `[n_perm]` under shuffled labels; `p_entropy` = (1 + #{null <= observed}) / (1 + n_perm),
    one-sided (language structure lowers it). `per_language`: language, observed (share of
    the selected rows), null_mean, null_lo, null_hi (central 95%), p_value (two-sided: null at
    least as far from the null mean) and p_above (one-sided, null >= observed).
    `null_shares` `[n_perm, languages]`.
    """

    observed: NeuronSelection
    entropy: float
    null_entropy: np.ndarray
    p_entropy: float
    per_language: pd.DataFrame
    null_shares: np.ndarray
    n_perm: int
    seed: int | None


def _set_summary(mask: np.ndarray, entropy: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean normalised entropy of the selected neurons and each language's share of rows."""
    neurons = mask.any(axis=0)
    rows = mask.sum(axis=(1, 2)).astype(np.float64)
    mean = float(entropy[neurons].mean()) if neurons.any() else float("nan")
    shares = rows / rows.sum() if rows.sum() > 0 else np.full(rows.shape, np.nan)
    return mean, shares


def budget_null(
    seqs: SequenceCounts | LayerStream,
    scorer: str | NeuronScorer = "lape-paper",
    *,
    n_perm: int = 200,
    seed: int | None = 0,
    **params: Any,
) -> BudgetNull:
    """Null distributions of the selected set's mean entropy and language shares.

    With a fixed budget the number selected is fixed, but not how specific the selected
    neurons are nor how they divide among languages. Each permutation shuffles the language
    labels across sequences (group sizes kept), recomputes the rates of every unit and runs
    the scorer on them. The scorer sees the units of `seqs` only (a subset of neurons is
    scored as if it were the model).
    """
    if n_perm < 1:
        raise ConfigError(f"n_perm must be >= 1, got {n_perm}")
    scorer = make_scorer(scorer, **params)
    if getattr(scorer, "needs_sequences", False):
        raise ConfigError(
            f"budget_null runs a rates scorer on shuffled rates; {scorer.name!r} needs "
            "per-sequence counts. Fix: use language_tests for it"
        )
    stream = LayerStream.of(seqs)
    n_lang = len(stream.languages)
    labels = np.concatenate([stream.language[None], _shuffles(stream, n_perm, seed)])
    # replicates per pass: about _BLOCK_VALUES rates (and label weights) at a time
    n_units = np.shape(stream.layer(0))[1]
    per_rep = n_lang * max(stream.num_layers * n_units, stream.num_sequences)
    chunk = max(1, min(labels.shape[0], _BLOCK_VALUES // per_rep))
    entropies = np.empty(labels.shape[0])
    shares = np.empty((labels.shape[0], n_lang))
    observed = None
    for start in range(0, labels.shape[0], chunk):
        part = labels[start : start + chunk]
        rates = np.stack([r for _, r in _permuted_rates(stream, part)], axis=2)  # [n, L, layers, U]
        for offset, rep in enumerate(rates):
            mask = scorer.select(rep)
            entropies[start + offset], shares[start + offset] = _set_summary(
                mask, _normalised_entropy(rep, axis=0)
            )
            if start + offset == 0:
                observed = NeuronSelection.from_mask(
                    mask, rep, stream.languages, scorer=scorer.name, params=scorer_params(scorer)
                )
                if stream.neuron_index is not None:
                    index = stream.neuron_index
                    observed.table["neuron"] = index[observed.table["neuron"].to_numpy()]
                    observed.num_neurons = int(index.max()) + 1
    obs_entropy, obs_shares = entropies[0], shares[0]
    null_entropy, null_shares = entropies[1:], shares[1:]
    with np.errstate(invalid="ignore"):
        p_entropy = (1 + np.sum(null_entropy <= obs_entropy)) / (1 + n_perm)
        center = np.nanmean(null_shares, axis=0) if np.isfinite(null_shares).any() else obs_shares
        far = np.abs(null_shares - center) >= np.abs(obs_shares - center) - 1e-12
        per_language = pd.DataFrame(
            {
                "language": list(stream.languages),
                "observed": obs_shares,
                "null_mean": center,
                "null_lo": np.nanpercentile(null_shares, 2.5, axis=0),
                "null_hi": np.nanpercentile(null_shares, 97.5, axis=0),
                "p_value": (1 + far.sum(axis=0)) / (1 + n_perm),
                "p_above": (1 + (null_shares >= obs_shares - 1e-12).sum(axis=0)) / (1 + n_perm),
            }
        )
    if not np.isfinite(obs_entropy):
        p_entropy = float("nan")
    return BudgetNull(
        observed=observed,
        entropy=float(obs_entropy),
        null_entropy=null_entropy,
        p_entropy=float(p_entropy),
        per_language=per_language,
        null_shares=null_shares,
        n_perm=n_perm,
        seed=seed,
    )
