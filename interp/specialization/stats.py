"""Uncertainty for neuron selections: bootstrap intervals, a permutation null, KS distance.

Both resampling schemes work on per-sequence counts (`SequenceCounts`): the sequence is the
unit of resampling, because tokens of one sequence are not independent.

- `bootstrap`: resample sequences with replacement WITHIN each language (each language keeps
  its number of sequences), recompute rates and the whole selection, and report percentile
  intervals for every count (per language, per (language, layer)) and how often each selected
  neuron is selected again (`stability`).
- `permutation_null`: shuffle the language labels across sequences (group sizes kept),
  recompute, and report the null mean, its central 95% range and a one-sided p-value
  (1 + #{null >= observed}) / (1 + n_perm) per language. With a fixed budget (the LAPE
  variants) the null fills the budget too, so per-language counts barely differ from it; and
  under shuffling, neurons whose firing is concentrated in few sequences ("bursty") get the
  lowest entropies by chance. Use the absolute rule for a per-language test, and the
  per-neuron `frequency` to see which neurons chance alone selects.

Per-sequence counts for all neurons of a 7B model do not fit in memory; give a subset of
neurons (`neuron_index`) and, for the fixed-budget scorers, the full-sample `NeuronCounts`
as `full`: neurons outside the subset then keep their full-sample rates in every replicate,
so the budget and the quantile still apply to the whole model. Without `full`, the scorer sees
the subset alone. Cost: one scorer run per replicate, about 0.1 s on a 7B-sized grid
(32 x 11008 neurons, 12 languages) on one CPU core, plus the resampled sums.

`ks_distance` compares the layer distributions of two selections (the cumulative share of
selected neurons over depth): it is the two-sample Kolmogorov-Smirnov statistic on the layer
indices of the selected rows. Layers are discrete with many ties, so the usual asymptotic KS
p-value does not apply; use the resampling tools above for inference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.intervals import percentile_interval
from interp.languages import check_codes
from interp.specialization.lape import (
    NeuronCounts,
    NeuronScorer,
    NeuronSelection,
    _per_layer_frame,
    as_array,
    check_counts,
    make_scorer,
    scorer_params,
)

__all__ = [
    "BootstrapResult",
    "PermutationResult",
    "SequenceCounts",
    "bootstrap",
    "ks_distance",
    "ks_table",
    "permutation_null",
]

# replicates are evaluated in chunks of about this many float64 values
_CHUNK_VALUES = 16_000_000


@dataclass(frozen=True)
class SequenceCounts:
    """Per-sequence firing counts `[n_seq, layers, units]`, each sequence with a language.

    `language[s]` is a code from `languages` (or an index into it); `tokens[s]` the tokens of
    sequence s that were counted. `neuron_index[u]` names the neuron (within every layer) that
    unit u is, when only a subset was kept; None means units are all neurons 0..n-1.
    """

    counts: np.ndarray
    language: np.ndarray
    tokens: np.ndarray
    languages: tuple[str, ...]
    neuron_index: np.ndarray | None = None
    source: str = "per-sequence counts"

    def __post_init__(self) -> None:
        languages = check_codes(self.languages, source=self.source)
        counts = as_array(self.counts)
        tokens = as_array(self.tokens)
        if counts.ndim != 3:
            raise DataError(
                f"{self.source}: counts must be [sequences, layers, units], got shape "
                f"{tuple(counts.shape)}"
            )
        labels = np.asarray(self.language)
        if labels.dtype.kind in "iu":
            index = labels.astype(np.int64)
            if index.size and (index.min() < 0 or index.max() >= len(languages)):
                raise DataError(
                    f"{self.source}: language index out of range 0..{len(languages) - 1}"
                )
        else:
            position = {lang: i for i, lang in enumerate(languages)}
            unknown = sorted({str(x) for x in labels} - set(position))
            if unknown:
                raise DataError(
                    f"{self.source}: sequence languages {unknown} are not in languages "
                    f"{list(languages)}. Fix: list every language in `languages`"
                )
            index = np.array([position[str(x)] for x in labels], dtype=np.int64)
        n_seq = counts.shape[0]
        if index.shape != (n_seq,) or tokens.shape != (n_seq,):
            raise DataError(
                f"{self.source}: shapes disagree: counts {tuple(counts.shape)}, language "
                f"{tuple(index.shape)}, tokens {tuple(tokens.shape)}. Fix: one language label "
                "and one token count per sequence"
            )
        check_counts(
            counts,
            self.source,
            lambda i: f"sequence {i[0]} ({languages[index[i[0]]]}), layer {i[1]}, unit {i[2]}",
        )
        if not np.all(np.isfinite(tokens)) or np.any(tokens <= 0):
            seq = int(np.argmax(~np.isfinite(tokens) | (tokens <= 0)))
            raise DataError(
                f"{self.source}, sequence {seq} ({languages[index[seq]]}): tokens is "
                f"{tokens[seq]}; every sequence needs > 0 counted tokens. Fix: drop empty "
                "sequences"
            )
        per_language = np.bincount(index, minlength=len(languages))
        empty = [lang for lang, n in zip(languages, per_language, strict=True) if n == 0]
        if empty:
            raise DataError(
                f"{self.source}: no sequences for language(s) {', '.join(empty)}. Fix: collect "
                "sequences for them or drop them from `languages`"
            )
        neuron_index = self.neuron_index
        if neuron_index is not None:
            neuron_index = np.asarray(neuron_index, dtype=np.int64)
            if neuron_index.shape != (counts.shape[2],):
                raise DataError(
                    f"{self.source}: neuron_index has shape {neuron_index.shape}, expected "
                    f"({counts.shape[2]},): one neuron id per unit"
                )
            if len(np.unique(neuron_index)) != neuron_index.size or neuron_index.min() < 0:
                raise DataError(f"{self.source}: neuron_index must be distinct ids >= 0")
        object.__setattr__(self, "languages", languages)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "language", index)
        object.__setattr__(self, "neuron_index", neuron_index)

    @property
    def num_layers(self) -> int:
        return self.counts.shape[1]

    def totals(self) -> NeuronCounts:
        """Summed per language: `NeuronCounts` over the units."""
        n_lang = len(self.languages)
        one_hot = np.zeros((n_lang, self.counts.shape[0]))
        one_hot[self.language, np.arange(self.counts.shape[0])] = 1.0
        counts = (one_hot @ self.counts.reshape(self.counts.shape[0], -1)).reshape(
            n_lang, *self.counts.shape[1:]
        )
        return NeuronCounts(counts, one_hot @ self.tokens, self.languages, source=self.source)


class _Grid:
    """Maps replicate rates of the units onto the grid the scorer sees (all neurons or units)."""

    def __init__(self, seqs: SequenceCounts, full: NeuronCounts | None) -> None:
        self.seqs = seqs
        if full is None:
            self.base = None
            return
        if full.languages != seqs.languages or full.num_layers != seqs.num_layers:
            raise DataError(
                f"full counts ({full.languages}, {full.num_layers} layers) do not match the "
                f"per-sequence counts ({seqs.languages}, {seqs.num_layers} layers)"
            )
        index = seqs.neuron_index
        if index is None:
            if seqs.counts.shape[2] != full.num_neurons:
                raise DataError(
                    f"per-sequence counts have {seqs.counts.shape[2]} units but full counts "
                    f"have {full.num_neurons} neurons: give neuron_index for a subset"
                )
        elif index.max() >= full.num_neurons:
            raise DataError(
                f"neuron_index reaches {index.max()} but full counts have {full.num_neurons} "
                "neurons per layer"
            )
        self.base = full.rates()

    def select(self, scorer: NeuronScorer, seqs: SequenceCounts, rates: np.ndarray) -> np.ndarray:
        """The scorer's mask: from the grid's rates, or from the sequences themselves for a
        scorer that tests sequences (`needs_sequences`, e.g. null-fdr)."""
        if not _needs_sequences(scorer):
            return scorer.select(rates)
        if self.base is not None:
            raise ConfigError(
                f"scorer {scorer.name!r} tests per-sequence counts, so it scores only the units "
                "those counts hold. Fix: leave out `full`"
            )
        return scorer.select_sequences(seqs)

    @property
    def units(self) -> np.ndarray | slice:
        index = self.seqs.neuron_index
        return slice(None) if index is None else index

    def rates(self, unit_rates: np.ndarray) -> np.ndarray:
        if self.base is None:
            return unit_rates
        rates = self.base.copy()
        rates[:, :, self.units] = unit_rates
        return rates

    def selection(self, scorer: NeuronScorer) -> NeuronSelection:
        """The observed selection (all sequences), neurons named by their ids."""
        rates = self.rates(self.seqs.totals().rates())
        selection = NeuronSelection.from_mask(
            self.select(scorer, self.seqs, rates),
            rates,
            self.seqs.languages,
            scorer=scorer.name,
            params=scorer_params(scorer),
        )
        index = self.seqs.neuron_index
        if self.base is None and index is not None:
            # the scorer saw units: name them by their neuron ids
            selection.table["neuron"] = index[selection.table["neuron"].to_numpy()]
            selection.num_neurons = int(index.max()) + 1
        return selection


def _needs_sequences(scorer: NeuronScorer) -> bool:
    return bool(getattr(scorer, "needs_sequences", False))


def _replicate_sequences(seqs: SequenceCounts, weights: np.ndarray) -> SequenceCounts:
    """The sequences of one replicate, from its weights `[languages, n_seq]` (how often each
    sequence is drawn, and under which language label)."""
    times = weights.sum(axis=0).astype(np.int64)
    index = np.repeat(np.arange(seqs.counts.shape[0]), times)
    labels = weights.argmax(axis=0)[index]
    return SequenceCounts(
        seqs.counts[index], labels, seqs.tokens[index], seqs.languages, source=seqs.source
    )


def _chunks(n_total: int, per_replicate: int) -> Iterator[slice]:
    size = max(1, _CHUNK_VALUES // max(per_replicate, 1))
    for start in range(0, n_total, size):
        yield slice(start, min(start + size, n_total))


@dataclass
class _Replicates:
    """What is kept from each replicate: counts per (language, layer) and unit frequencies."""

    per_layer: np.ndarray  # [n_rep, languages, layers]
    frequency: np.ndarray  # [languages, layers, grid units]: share of replicates selected
    summaries: np.ndarray | None = None  # [n_rep, ...]: `summarize(mask)` of each replicate


def _evaluate(
    scorer: NeuronScorer,
    grid: _Grid,
    n_rep: int,
    weights_for: Callable[[slice], np.ndarray],
    summarize: Callable[[np.ndarray], np.ndarray] | None = None,
) -> _Replicates:
    """Run the scorer on each replicate; `weights_for(chunk)` -> [n, languages, n_seq].
    `summarize(mask)`, if given, is kept for every replicate (e.g. counts by script class)."""
    seqs = grid.seqs
    n_seq, n_layers, n_units = seqs.counts.shape
    flat_counts = seqs.counts.reshape(n_seq, -1)
    n_lang = len(seqs.languages)
    per_layer = np.zeros((n_rep, n_lang, n_layers), dtype=np.int64)
    frequency, summaries = None, []

    def keep(index: int, mask: np.ndarray) -> None:
        nonlocal frequency
        per_layer[index] = mask.sum(axis=2)
        frequency = mask.astype(np.float64) if frequency is None else frequency + mask
        if summarize is not None:
            summaries.append(summarize(mask))

    if _needs_sequences(scorer):  # it tests each replicate's sequences, not pooled rates
        for chunk in _chunks(n_rep, n_lang * n_seq):
            for offset, weights in enumerate(weights_for(chunk)):
                keep(
                    chunk.start + offset,
                    grid.select(scorer, _replicate_sequences(seqs, weights), None),
                )
    else:
        # per replicate: its weights [languages, n_seq] and its counts [languages, layers * units]
        for chunk in _chunks(n_rep, n_lang * (flat_counts.shape[1] + n_seq)):
            weights = weights_for(chunk)  # [n, languages, n_seq]
            counts = weights @ flat_counts  # [n, languages, layers * units]
            tokens = weights @ seqs.tokens  # [n, languages]
            unit_rates = (counts / tokens[:, :, None]).reshape(-1, n_lang, n_layers, n_units)
            for offset, rates in enumerate(unit_rates):
                keep(chunk.start + offset, scorer.select(grid.rates(rates)))
    return _Replicates(
        per_layer, frequency / n_rep, np.stack(summaries) if summarize is not None else None
    )


def _resample_weights(
    draws: Sequence[np.ndarray], members: Sequence[np.ndarray], chunk: slice, n_seq: int
) -> np.ndarray:
    """[n, languages, n_seq] weights of the replicates in `chunk`: how many times each
    sequence was drawn (draws[l][b] = indices into members[l] drawn in replicate b)."""
    n = chunk.stop - chunk.start
    weights = np.zeros((n, len(members), n_seq))
    for lang, m in enumerate(members):
        # a bincount per replicate, in one call
        picked = draws[lang][chunk] + (np.arange(n) * m.size)[:, None]
        times = np.bincount(picked.ravel(), minlength=n * m.size).reshape(n, m.size)
        weights[:, lang, m] = times
    return weights


def _check_resampling(n: int, what: str, ci: float = 0.95) -> None:
    if n < 1:
        raise ConfigError(f"{what} must be >= 1, got {n}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1), got {ci}")


@dataclass
class BootstrapResult:
    """Observed selection with percentile bootstrap intervals.

    `per_language`: language (and "all"), observed, mean, lo, hi.
    `per_layer`: language, layer, observed, mean, lo, hi.
    `stability`: the observed table plus the share of replicates that select the same
    (layer, neuron, language) again.
    `samples`: replicate counts `[n_boot, languages, layers]`.
    """

    observed: NeuronSelection
    per_language: pd.DataFrame
    per_layer: pd.DataFrame
    stability: pd.DataFrame
    samples: np.ndarray
    ci: float
    seed: int | None
    summary_samples: np.ndarray | None = None  # [n_boot, ...] of `summarize`, when given


def bootstrap(
    seqs: SequenceCounts,
    scorer: str | NeuronScorer = "lape-paper",
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | None = 0,
    full: NeuronCounts | None = None,
    summarize: Callable[[np.ndarray], np.ndarray] | None = None,
    **params: Any,
) -> BootstrapResult:
    """Percentile bootstrap over sequences, resampled within each language. `summarize`
    (a mask `[languages, layers, units]` -> an array) is also kept for every replicate."""
    _check_resampling(n_boot, "n_boot", ci)
    scorer = make_scorer(scorer, **params)
    grid = _Grid(seqs, full)
    observed = grid.selection(scorer)
    rng = np.random.default_rng(seed)
    n_lang, n_seq = len(seqs.languages), seqs.counts.shape[0]
    members = [np.flatnonzero(seqs.language == lang) for lang in range(n_lang)]
    # draws[l][b] = indices (into members[l]) of the sequences drawn in replicate b
    draws = [rng.integers(0, m.size, size=(n_boot, m.size)) for m in members]

    def weights_for(chunk: slice) -> np.ndarray:
        return _resample_weights(draws, members, chunk, n_seq)

    reps = _evaluate(scorer, grid, n_boot, weights_for, summarize)
    obs_layer = observed.mask().sum(axis=2)
    return BootstrapResult(
        observed=observed,
        per_language=_summary_language(obs_layer, reps.per_layer, seqs.languages, ci),
        per_layer=_summary_layer(obs_layer, reps.per_layer, seqs.languages, ci),
        stability=_stability(observed, reps.frequency, grid),
        samples=reps.per_layer,
        ci=ci,
        seed=seed,
        summary_samples=reps.summaries,
    )


def _summary_language(
    observed: np.ndarray, samples: np.ndarray, languages: Sequence[str], ci: float
) -> pd.DataFrame:
    obs = np.append(observed.sum(axis=1), observed.sum())
    per = samples.sum(axis=2)
    per = np.concatenate([per, per.sum(axis=1, keepdims=True)], axis=1)
    lo, hi = percentile_interval(per, ci)
    return pd.DataFrame(
        {
            "language": [*languages, "all"],
            "observed": obs.astype(np.int64),
            "mean": per.mean(axis=0),
            "lo": lo,
            "hi": hi,
        }
    )


def _summary_layer(
    observed: np.ndarray, samples: np.ndarray, languages: Sequence[str], ci: float
) -> pd.DataFrame:
    frame = _per_layer_frame(observed, languages).rename(columns={"count": "observed"})
    n = samples.shape[0]
    flat = samples.reshape(n, -1)
    lo, hi = percentile_interval(flat, ci)
    frame["mean"] = flat.mean(axis=0)
    frame["lo"] = lo
    frame["hi"] = hi
    return frame


def _stability(observed: NeuronSelection, frequency: np.ndarray, grid: _Grid) -> pd.DataFrame:
    table = observed.table.copy()
    index = {lang: i for i, lang in enumerate(observed.languages)}
    lang = table["language"].map(index).to_numpy(dtype=np.int64)
    neuron = table["neuron"].to_numpy()
    if grid.base is None and grid.seqs.neuron_index is not None:
        position = {int(n): u for u, n in enumerate(grid.seqs.neuron_index)}
        neuron = np.array([position[int(n)] for n in neuron], dtype=np.int64)
    table["stability"] = frequency[lang, table["layer"].to_numpy(), neuron]
    return table


@dataclass
class PermutationResult:
    """Per-language counts under shuffled language labels.

    `per_language`: language, observed, null_mean, null_lo, null_hi (central 95% of the null)
    and p_value = (1 + #{null >= observed}) / (1 + n_perm).
    `frequency`: `[languages, layers, units]`, the share of permutations that select each
    (language, layer, unit); units are neurons, or the subset's units without `full`.
    `samples`: null counts `[n_perm, languages, layers]`.
    """

    observed: NeuronSelection
    per_language: pd.DataFrame
    frequency: np.ndarray
    samples: np.ndarray
    seed: int | None


def permutation_null(
    seqs: SequenceCounts,
    scorer: str | NeuronScorer = "lape-paper",
    *,
    n_perm: int = 1000,
    seed: int | None = 0,
    full: NeuronCounts | None = None,
    **params: Any,
) -> PermutationResult:
    """Null distribution of per-language counts with language labels shuffled across sequences."""
    _check_resampling(n_perm, "n_perm")
    scorer = make_scorer(scorer, **params)
    grid = _Grid(seqs, full)
    observed = grid.selection(scorer)
    rng = np.random.default_rng(seed)
    n_lang, n_seq = len(seqs.languages), seqs.counts.shape[0]
    labels = [rng.permutation(seqs.language) for _ in range(n_perm)]

    def weights_for(chunk: slice) -> np.ndarray:
        n = chunk.stop - chunk.start
        weights = np.zeros((n, n_lang, n_seq))
        for offset, perm in enumerate(labels[chunk]):
            weights[offset, perm, np.arange(n_seq)] = 1.0
        return weights

    reps = _evaluate(scorer, grid, n_perm, weights_for)
    obs = observed.per_language()["count"].to_numpy()
    null = reps.per_layer.sum(axis=2)  # [n_perm, languages]
    lo, hi = percentile_interval(null, 0.95)
    per_language = pd.DataFrame(
        {
            "language": list(seqs.languages),
            "observed": obs,
            "null_mean": null.mean(axis=0),
            "null_lo": lo,
            "null_hi": hi,
            "p_value": (1 + (null >= obs[None]).sum(axis=0)) / (1 + n_perm),
        }
    )
    return PermutationResult(observed, per_language, reps.frequency, reps.per_layer, seed)


# ---------------------------------------------------------------------------------------------
# layer distributions


def _layers_of(selection: NeuronSelection | pd.DataFrame, language: str | None) -> np.ndarray:
    table = selection.table if isinstance(selection, NeuronSelection) else selection
    if "layer" not in table:
        raise DataError("a selection table needs a 'layer' column")
    if language is not None:
        table = table[table["language"] == language]
    return table["layer"].to_numpy(dtype=np.int64)


def ks_distance(
    a: NeuronSelection | pd.DataFrame,
    b: NeuronSelection | pd.DataFrame,
    *,
    language: str | None = None,
) -> float:
    """Max gap between the cumulative shares of selected rows over depth (two-sample KS D).

    Rows are (layer, neuron, language) triples, restricted to `language` if given.
    """
    layers_a, layers_b = _layers_of(a, language), _layers_of(b, language)
    for name, layers in (("first", layers_a), ("second", layers_b)):
        if layers.size == 0:
            which = f" for language {language}" if language else ""
            raise DataError(f"the {name} selection has no neurons{which}: KS distance undefined")
    n_layers = int(max(layers_a.max(), layers_b.max())) + 1
    share_a = np.cumsum(np.bincount(layers_a, minlength=n_layers)) / layers_a.size
    share_b = np.cumsum(np.bincount(layers_b, minlength=n_layers)) / layers_b.size
    return float(np.abs(share_a - share_b).max())


def ks_table(
    selections: Mapping[str, NeuronSelection | pd.DataFrame], baseline: str
) -> pd.DataFrame:
    """KS distance of each selection to `baseline`, overall ("all") and per language.

    Columns checkpoint, language, ks; a language empty in either selection gets NaN.
    """
    if baseline not in selections:
        raise ConfigError(f"baseline {baseline!r} is not among {list(selections)}")
    base = selections[baseline]
    base_table = base.table if isinstance(base, NeuronSelection) else base
    languages = list(dict.fromkeys(base_table["language"]))
    rows = []
    for name, selection in selections.items():
        if name == baseline:
            continue
        for language in [None, *languages]:
            try:
                value = ks_distance(base, selection, language=language)
            except DataError:
                value = np.nan
            rows.append({"checkpoint": name, "language": language or "all", "ks": value})
    return pd.DataFrame(rows, columns=["checkpoint", "language", "ks"])


# ---------------------------------------------------------------------------------------------
# a continuous specialization index


@dataclass(frozen=True)
class SpecializationIndex:
    """1 - the mean normalised LAPE entropy of the active neurons, with a bootstrap interval.

    0 = every active neuron fires at the same rate in every language; 1 = each fires in one
    language only. Unlike a count of neurons past a threshold it moves continuously, and
    unlike a fixed-budget count it can rise or fall. `active` counts the neurons whose rate
    reaches `min_rate` in some language (dead and near-dead neurons have no meaningful
    language distribution).
    """

    value: float
    lo: float
    hi: float
    active: int
    min_rate: float
    n_boot: int

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.__dict__])


def _index_of(rates: np.ndarray, min_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Index and active count for rates [n, languages, units]."""
    n_lang = rates.shape[1]
    active = rates.max(axis=1) >= min_rate  # [n, units]
    total = rates.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(total > 0, rates / total, 0.0)
        plogq = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    normalized = -plogq.sum(axis=1) / np.log(n_lang)  # [n, units]
    count = active.sum(axis=1)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, (normalized * active).sum(axis=1) / np.maximum(count, 1), np.nan)
    return 1.0 - mean, count


def specialization_index(
    seqs: SequenceCounts,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | None = 0,
    min_rate: float = 0.01,
) -> SpecializationIndex:
    """The index of the whole sample and its percentile interval over `n_boot` resamples of
    sequences within each language (the same scheme as `bootstrap`)."""
    if n_boot:
        _check_resampling(n_boot, "n_boot", ci)
    n_lang = len(seqs.languages)
    if n_lang < 2:
        raise DataError(f"{seqs.source}: the index needs at least two languages")
    n_seq = seqs.counts.shape[0]
    flat = seqs.counts.reshape(n_seq, -1)
    members = [np.flatnonzero(seqs.language == lang) for lang in range(n_lang)]

    def rates_for(weights: np.ndarray) -> np.ndarray:  # [n, languages, n_seq] -> rates
        tokens = weights @ seqs.tokens
        return (weights @ flat) / np.maximum(tokens, 1)[:, :, None]

    whole = np.zeros((1, n_lang, n_seq))
    for lang, m in enumerate(members):
        whole[0, lang, m] = 1.0
    value, active = _index_of(rates_for(whole), min_rate)
    lo = hi = float("nan")
    if n_boot:
        rng = np.random.default_rng(seed)
        draws = [rng.integers(0, m.size, size=(n_boot, m.size)) for m in members]
        samples = []
        for chunk in _chunks(n_boot, n_lang * (flat.shape[1] + n_seq)):
            weights = _resample_weights(draws, members, chunk, n_seq)
            samples.append(_index_of(rates_for(weights), min_rate)[0])
        low, high = percentile_interval(np.concatenate(samples)[:, None], ci)
        lo, hi = float(low[0]), float(high[0])
    return SpecializationIndex(float(value[0]), lo, hi, int(active[0]), min_rate, n_boot)
