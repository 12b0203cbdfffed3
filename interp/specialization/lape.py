"""Language-specific MLP neurons from firing counts: LAPE (two variants) and an absolute rule.

Input: `NeuronCounts`, i.e. `counts[l, layer, i]` = tokens of language l on which neuron i of
that layer fired (act(gate_proj(x))_i > 0) and `tokens[l]` = tokens seen in language l, so
the firing rate is p[l, layer, i] = counts / tokens. Scorers turn rates into a selection:

- ``lape-paper`` (`LapePaper`): the PolyFact variant. q = p / sum_l p, H = -sum_l q log q
  (0 log 0 = 0); dead neurons (fire in no language) are excluded; the lowest-entropy
  ``max(1, int(top_frac * layers * neurons))`` neurons of the whole model are kept (the budget
  counts dead neurons too, as the paper's code does: n_selected = int(32 * 11008 * 0.01) =
  3522 for OLMo-2-7B); each is assigned to argmax_l p.
- ``lape-tang`` (`LapeTang`): Tang et al. (2024). tau = the `quantile` of ALL rates (every
  language, layer, neuron; dead neurons included). By default tau is the order statistic
  k = round(quantile * n) (1-based, no interpolation), exactly what Tang et al.'s code takes
  with ``torch.kthvalue``; any numpy quantile method name may be given instead. Neurons with
  no language above tau get entropy +inf; the same budget of lowest-entropy neurons is kept
  (Tang's code rounds the budget instead of truncating it: at most one neuron apart); each is
  assigned to EVERY language with p > tau.
- ``absolute`` (`Absolute`): a per-neuron rule with no budget, so the count can fall when a
  model becomes less specialized (with a fixed budget the count is constant and only its
  distribution can move). Neuron i is specific to language l when all of:
    H_i / log(L) <= max_entropy      (concentrated on few languages; 0 = one language only,
                                      1 = uniform; default 0.5, i.e. at most sqrt(L)
                                      effective languages),
    p[l] >= min_rate                 (fires on at least 1% of l's tokens by default, so a
                                      neuron seen firing a handful of times is not "specific"),
    q[l] >= min_share                (l holds at least 10% of the neuron's firing mass; the
                                      uniform share is 1/L),
    p[l] >= ratio * max_{l' != l} p[l']   (only when `ratio` is set; ratio >= 1 allows at most
                                      one language per neuron).

Ties in entropy at the budget boundary go to the lower flat index (layer-major), ties in the
argmax to the earlier language. Every scorer is registered by name (`SCORERS`,
`scorer_names()`, `make_scorer()`), so the CLI, the pipeline and notebooks list the same
choices; a new rule is one class with `@register_scorer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.languages import check_codes
from interp.specialization.selection import UnitSelection

__all__ = [
    "SCORERS",
    "Absolute",
    "LapePaper",
    "LapeTang",
    "NeuronCounts",
    "NeuronScorer",
    "NeuronSelection",
    "lape_entropy",
    "make_scorer",
    "register_scorer",
    "score",
    "scorer_names",
    "selection_budget",
]


def as_array(values: Any, *, dtype=np.float64) -> np.ndarray:
    """A numpy copy of an array-like or a (CPU or GPU) torch tensor."""
    if hasattr(values, "detach"):  # torch.Tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True)
class NeuronCounts:
    """Firing counts `[languages, layers, neurons]` and tokens seen `[languages]`."""

    counts: np.ndarray
    tokens: np.ndarray
    languages: tuple[str, ...]
    source: str = "neuron counts"  # named in error messages (a file, a checkpoint)

    def __post_init__(self) -> None:
        languages = check_codes(self.languages, source=self.source)
        counts = as_array(self.counts)
        tokens = as_array(self.tokens)
        if counts.ndim != 3:
            raise DataError(
                f"{self.source}: counts must be [languages, layers, neurons], got shape "
                f"{tuple(counts.shape)}. Fix: stack one [layers, neurons] tensor per language"
            )
        if tokens.shape != (counts.shape[0],) or len(languages) != counts.shape[0]:
            raise DataError(
                f"{self.source}: shapes disagree: counts {tuple(counts.shape)}, tokens "
                f"{tuple(tokens.shape)}, {len(languages)} languages. Fix: give one token total "
                "and one language code per row of counts, in the same order"
            )
        if len(languages) < 2:
            raise DataError(
                f"{self.source}: language specificity needs at least 2 languages, got "
                f"{list(languages)}"
            )
        check_counts(
            counts,
            self.source,
            lambda i: f"language {languages[i[0]]}, layer {i[1]}, neuron {i[2]}",
        )
        bad = [lang for lang, n in zip(languages, tokens, strict=True) if not n > 0]
        if bad:
            raise DataError(
                f"{self.source}: no tokens seen for language(s) {', '.join(bad)} "
                "(tokens must be > 0, or finite). Fix: collect text for them or drop them"
            )
        over = counts.max(axis=(1, 2)) > tokens
        if over.any():
            lang = languages[int(np.argmax(over))]
            raise DataError(
                f"{self.source}, language {lang}: a neuron fired on more tokens than were seen "
                f"({counts[languages.index(lang)].max():.0f} > {tokens[languages.index(lang)]:.0f})."
                " Fix: count each token at most once per neuron and pass the matching totals"
            )
        object.__setattr__(self, "languages", languages)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "tokens", tokens)

    @property
    def num_layers(self) -> int:
        return self.counts.shape[1]

    @property
    def num_neurons(self) -> int:
        return self.counts.shape[2]

    def rates(self) -> np.ndarray:
        """Firing probability p `[languages, layers, neurons]`."""
        return self.counts / self.tokens[:, None, None]


def check_counts(counts: np.ndarray, source: str, where: Callable[[tuple[int, ...]], str]) -> None:
    """Refuse NaN, inf and negative counts, naming the first bad entry (`where(index)` says
    which: the language and layer, or the sequence)."""
    bad = ~np.isfinite(counts) | (counts < 0)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{source}, {where(index)}: count is {counts[index]} ({int(bad.sum())} bad entries "
            "in all). Fix: counts must be finite and >= 0; recollect them"
        )


# ---------------------------------------------------------------------------------------------
# the entropy and the budget


def lape_entropy(rates: np.ndarray) -> np.ndarray:
    """LAPE entropy `[layers, neurons]` of rates `[languages, layers, neurons]`; +inf if dead."""
    total = rates.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = rates / total
        plogq = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    entropy = -plogq.sum(axis=0)
    entropy[total == 0] = np.inf
    return entropy


def selection_budget(n_units: int, top_frac: float) -> int:
    """How many neurons a fixed-budget scorer keeps: max(1, int(n_units * top_frac))."""
    return max(1, int(n_units * top_frac))


def _lowest(values: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the k smallest finite values; ties go to the lower index. O(n)."""
    n_finite = int(np.isfinite(values).sum())
    k = min(k, n_finite)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(values, k - 1)[k - 1]
    below = np.flatnonzero(values < kth)
    ties = np.flatnonzero(values == kth)[: k - below.size]
    return np.sort(np.concatenate([below, ties]))


def _check_frac(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ConfigError(f"{name} must be in (0, 1], got {value!r}")


# ---------------------------------------------------------------------------------------------
# scorers and their registry


class NeuronScorer(Protocol):
    """Turns rates `[languages, layers, neurons]` into a selection mask of the same shape."""

    name: ClassVar[str]

    def select(self, rates: np.ndarray) -> np.ndarray: ...


SCORERS: dict[str, type] = {}


def register_scorer(cls: type) -> type:
    """Class decorator: make a scorer available by its `name`."""
    if cls.name in SCORERS and SCORERS[cls.name] is not cls:
        raise ConfigError(f"a neuron scorer named {cls.name!r} is already registered")
    SCORERS[cls.name] = cls
    return cls


# scorers registered by modules of their own (imported on first lookup: they import this one)
_SCORER_MODULES = ("interp.specialization.nulltest",)


def _load_scorer_modules() -> None:
    import importlib

    for module in _SCORER_MODULES:
        importlib.import_module(module)


def scorer_names() -> tuple[str, ...]:
    _load_scorer_modules()
    return tuple(SCORERS)


def make_scorer(scorer: str | NeuronScorer = "lape-paper", **params: Any) -> NeuronScorer:
    """A scorer from its registered name and parameters (or a scorer object, returned as is)."""
    if not isinstance(scorer, str):
        if params:
            raise ConfigError("pass parameters either in the scorer object or as keywords")
        return scorer
    if scorer not in SCORERS:
        _load_scorer_modules()
    if scorer not in SCORERS:
        raise ConfigError(
            f"unknown neuron scorer {scorer!r}. Known: {', '.join(SCORERS)}. "
            "Fix: use one of these names"
        )
    cls = SCORERS[scorer]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"scorer {scorer!r} has no parameter(s) {', '.join(unknown)}. "
            f"Its parameters: {', '.join(sorted(known))}"
        )
    return cls(**params)


@register_scorer
@dataclass(frozen=True)
class LapePaper:
    """PolyFact's LAPE: lowest-entropy `top_frac` of all neurons, each to argmax_l p."""

    name: ClassVar[str] = "lape-paper"
    one_language: ClassVar[bool] = True  # each neuron to its argmax language only
    top_frac: float = 0.01

    def __post_init__(self) -> None:
        _check_frac("top_frac", self.top_frac)

    def select(self, rates: np.ndarray) -> np.ndarray:
        n_lang = rates.shape[0]
        flat = rates.reshape(n_lang, -1)
        chosen = _lowest(
            lape_entropy(rates).ravel(), selection_budget(flat.shape[1], self.top_frac)
        )
        mask = np.zeros_like(flat, dtype=bool)
        mask[flat[:, chosen].argmax(axis=0), chosen] = True
        return mask.reshape(rates.shape)


def _quantile(values: np.ndarray, q: float, method: str) -> float:
    if method == "kthvalue":
        k = min(max(round(q * values.size), 1), values.size)
        return float(np.partition(values, k - 1)[k - 1])
    try:
        return float(np.quantile(values, q, method=method))
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"unknown quantile method {method!r}: use 'kthvalue' or a numpy.quantile method"
        ) from err


@register_scorer
@dataclass(frozen=True)
class LapeTang:
    """Tang et al.'s LAPE: entropy among neurons with some p > tau; each to all p > tau."""

    name: ClassVar[str] = "lape-tang"
    top_frac: float = 0.01
    quantile: float = 0.95
    quantile_method: str = "kthvalue"  # or any numpy.quantile method, e.g. "linear"

    def __post_init__(self) -> None:
        _check_frac("top_frac", self.top_frac)
        _check_frac("quantile", self.quantile)

    def threshold(self, rates: np.ndarray) -> float:
        return _quantile(rates.ravel(), self.quantile, self.quantile_method)

    def select(self, rates: np.ndarray) -> np.ndarray:
        n_lang = rates.shape[0]
        flat = rates.reshape(n_lang, -1)
        above = flat > self.threshold(rates)
        entropy = lape_entropy(rates).ravel()
        entropy[~above.any(axis=0)] = np.inf
        chosen = _lowest(entropy, selection_budget(flat.shape[1], self.top_frac))
        mask = np.zeros_like(flat, dtype=bool)
        mask[:, chosen] = above[:, chosen]
        return mask.reshape(rates.shape)


@register_scorer
@dataclass(frozen=True)
class Absolute:
    """A per-neuron rule with no budget (see the module docstring for the four conditions)."""

    name: ClassVar[str] = "absolute"
    max_entropy: float = 0.5  # H / log(L)
    min_rate: float = 0.01
    min_share: float = 0.1
    ratio: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.max_entropy <= 1:
            raise ConfigError(f"max_entropy is H / log(L), in [0, 1]; got {self.max_entropy!r}")
        if not 0 <= self.min_rate <= 1 or not 0 <= self.min_share <= 1:
            raise ConfigError("min_rate and min_share must be in [0, 1]")
        if self.ratio is not None and not self.ratio > 0:
            raise ConfigError(f"ratio must be > 0 or None, got {self.ratio!r}")

    def select(self, rates: np.ndarray) -> np.ndarray:
        n_lang = rates.shape[0]
        normalized = lape_entropy(rates) / math.log(n_lang)  # inf for dead neurons
        total = rates.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(total > 0, rates / total, 0.0)
        mask = (normalized <= self.max_entropy)[None] & (rates >= self.min_rate)
        mask &= share >= self.min_share
        if self.ratio is not None:
            ordered = np.sort(rates, axis=0)
            top, second = ordered[-1], ordered[-2]
            # the best other language: the runner-up for the top language, the top for the rest
            best_other = np.where(rates == top[None], second[None], top[None])
            mask &= rates >= self.ratio * best_other
        return mask & (rates > 0)


def scorer_params(scorer: NeuronScorer) -> dict[str, Any]:
    return asdict(scorer) if hasattr(scorer, "__dataclass_fields__") else {}


# ---------------------------------------------------------------------------------------------
# results


_TABLE_COLUMNS = ["language", "layer", "neuron", "entropy", "p"]


@dataclass
class NeuronSelection(UnitSelection):
    """Selected (layer, neuron, language) triples as a tidy table, with summaries.

    `table` has one row per (layer, neuron, language) selected: columns language, layer
    (0-based), neuron, entropy (LAPE entropy, nats) and p (the rate in that language); entropy
    and p are NaN where unknown (imported selections). A neuron may appear for several
    languages (Tang's variant, the absolute rule).
    """

    table: pd.DataFrame
    languages: tuple[str, ...]
    num_layers: int
    num_neurons: int
    scorer: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mask(
        cls,
        mask: np.ndarray,
        rates: np.ndarray | None,
        languages: Sequence[str],
        *,
        scorer: str,
        params: Mapping[str, Any] | None = None,
        entropy: np.ndarray | None = None,
    ) -> NeuronSelection:
        """Build from a boolean mask `[languages, layers, neurons]` (and the rates behind it)."""
        lang, layer, neuron = np.nonzero(mask)
        if rates is not None and entropy is None:
            entropy = lape_entropy(rates)
        table = pd.DataFrame(
            {
                "language": np.asarray(languages, dtype=object)[lang],
                "layer": layer.astype(np.int64),
                "neuron": neuron.astype(np.int64),
                "entropy": entropy[layer, neuron] if entropy is not None else np.nan,
                "p": rates[lang, layer, neuron] if rates is not None else np.nan,
            },
            columns=_TABLE_COLUMNS,
        )
        return cls(
            table, tuple(languages), mask.shape[1], mask.shape[2], scorer, dict(params or {})
        )

    unit: ClassVar[str] = "neuron"

    @property
    def num_units(self) -> int:
        return self.num_neurons

    def per_language(self) -> pd.DataFrame:
        """Columns language, count; one row per language in order."""
        counts = self.table["language"].value_counts()
        return pd.DataFrame(
            {
                "language": list(self.languages),
                "count": [int(counts.get(lang, 0)) for lang in self.languages],
            }
        )

    def per_layer(self) -> pd.DataFrame:
        """Columns language, layer, count; every (language, layer) pair, zeros included."""
        return _per_layer_frame(self.mask().sum(axis=2), self.languages)

    def cumulative(self) -> pd.DataFrame:
        """Cumulative counts over depth per language and for "all" (the sum of languages).

        Columns language, layer, count, cumulative, share (= cumulative / the language's
        total; 0 for a language with none).
        """
        frame = self.per_layer()
        total = frame.groupby("layer", sort=True)["count"].sum().reset_index()
        total.insert(0, "language", "all")
        frame = pd.concat([frame, total], ignore_index=True)
        frame["cumulative"] = frame.groupby("language", sort=False)["count"].cumsum()
        totals = frame.groupby("language", sort=False)["count"].transform("sum")
        frame["share"] = np.where(
            totals > 0, frame["cumulative"] / totals.where(totals > 0, 1), 0.0
        )
        return frame


def _per_layer_frame(counts: np.ndarray, languages: Sequence[str]) -> pd.DataFrame:
    """Tidy language, layer, count from a `[languages, layers]` array."""
    n_lang, n_layers = counts.shape
    return pd.DataFrame(
        {
            "language": np.repeat(np.asarray(languages, dtype=object), n_layers),
            "layer": np.tile(np.arange(n_layers), n_lang),
            "count": counts.ravel().astype(np.int64),
        }
    )


def score(
    counts: NeuronCounts, scorer: str | NeuronScorer = "lape-paper", **params: Any
) -> NeuronSelection:
    """Select language-specific neurons with a registered scorer (default: the paper's LAPE).

    sel = score(NeuronCounts(counts, tokens, TRAINED), "lape-tang", top_frac=0.01)
    sel.table; sel.per_language(); sel.per_layer(); sel.sets()
    """
    scorer = make_scorer(scorer, **params)
    rates = counts.rates()
    mask = scorer.select(rates)
    return NeuronSelection.from_mask(
        mask, rates, counts.languages, scorer=scorer.name, params=scorer_params(scorer)
    )
