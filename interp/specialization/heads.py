"""Language-specific attention heads from an importance tensor `[languages, layers, heads]`.

The importance can be LAHIS (arXiv 2511.07498) or any per-head score; larger = more important.
Conventions follow the PolyFact release:
- top heads of a language = the k = max(1, int(layers * heads * frac)) largest entries of its
  flattened `[layers, heads]` matrix, flat index = layer * heads + head (frac = 0.02: 20 of
  1024 heads in a 32 x 32 model); equal scores go to the lower flat index;
- pairwise overlap of languages a, b = |top(a) & top(b)| / k;
- language-general heads = in the top set of at least `min_languages` languages (the paper:
  11 of 12; the default here is all languages but one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.languages import TRAINED, check_codes
from interp.specialization.lape import as_array
from interp.specialization.selection import UnitSelection

__all__ = ["HeadSelection", "importance_table", "top_head_count", "top_heads"]


def top_head_count(num_layers: int, num_heads: int, frac: float = 0.02, min_heads: int = 1) -> int:
    """k = max(min_heads, int(num_layers * num_heads * frac)), at most every head.

    The paper's 2% gives 20 of 1024 heads at 7B but 0 of a small model's 32; `min_heads`
    keeps a top set large enough for overlaps to take more than the values 0 and 1."""
    if not 0 < frac <= 1:
        raise ConfigError(f"frac must be in (0, 1], got {frac!r}")
    if min_heads < 1:
        raise ConfigError(f"min_heads must be >= 1, got {min_heads!r}")
    return min(num_layers * num_heads, max(min_heads, int(num_layers * num_heads * frac)))


def _check_importance(
    importance: Any, languages: Sequence[str] | None, source: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    values = as_array(importance)
    if values.ndim != 3:
        raise DataError(
            f"{source}: importance must be [languages, layers, heads], got shape "
            f"{tuple(values.shape)}. Fix: stack one [layers, heads] tensor per language"
        )
    if languages is None:
        if values.shape[0] != len(TRAINED):
            raise ConfigError(
                f"{source}: {values.shape[0]} languages in the importance tensor; pass "
                "`languages` (the default is the paper's 12, in its order)"
            )
        languages = TRAINED
    languages = check_codes(languages, source=source)
    if len(languages) != values.shape[0]:
        raise DataError(
            f"{source}: {len(languages)} language codes for {values.shape[0]} rows of "
            "importance. Fix: one code per row, in the same order"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        lang, layer, head = np.argwhere(bad)[0]
        raise DataError(
            f"{source}, language {languages[lang]}, layer {layer}, head {head}: importance is "
            f"{values[lang, layer, head]} ({int(bad.sum())} non-finite entries). Fix: recompute "
            "the importance for that language"
        )
    return values, languages


def importance_table(
    importance: Any, languages: Sequence[str] | None = None, *, source: str = "head importance"
) -> pd.DataFrame:
    """Tidy language, layer, head, importance (every head of every language)."""
    values, languages = _check_importance(importance, languages, source)
    n_lang, n_layers, n_heads = values.shape
    return pd.DataFrame(
        {
            "language": np.repeat(np.asarray(languages, dtype=object), n_layers * n_heads),
            "layer": np.tile(np.repeat(np.arange(n_layers), n_heads), n_lang),
            "head": np.tile(np.arange(n_heads), n_lang * n_layers),
            "importance": values.ravel(),
        }
    )


@dataclass
class HeadSelection(UnitSelection):
    """The top-k heads of each language.

    `table`: language, rank (0 = most important), layer, head, flat (layer * heads + head),
    importance; k rows per language.
    """

    table: pd.DataFrame
    languages: tuple[str, ...]
    num_layers: int
    num_heads: int
    k: int
    frac: float | None

    unit: ClassVar[str] = "head"

    @property
    def num_units(self) -> int:
        return self.num_heads

    def overlap(self) -> pd.DataFrame:
        """`[languages, languages]` matrix of |top(a) & top(b)| / k (diagonal = 1)."""
        flat = self.mask().reshape(len(self.languages), -1).astype(np.float64)
        shared = flat @ flat.T
        return pd.DataFrame(
            shared / self.k, index=list(self.languages), columns=list(self.languages)
        )

    def mean_overlap(self) -> float:
        """Mean of `overlap()` over ordered pairs of different languages."""
        matrix = self.overlap().to_numpy(dtype=float)
        return float(matrix[~np.eye(len(matrix), dtype=bool)].mean())

    def general(self, min_languages: int | None = None) -> pd.DataFrame:
        """Heads in the top set of at least `min_languages` languages (default: all but one).

        Columns layer, head, n_languages, languages (space-separated codes), sorted by
        n_languages descending then position.
        """
        n_lang = len(self.languages)
        if min_languages is None:
            min_languages = max(1, n_lang - 1)
        if not 1 <= min_languages <= n_lang:
            raise ConfigError(f"min_languages must be in 1..{n_lang}, got {min_languages}")
        mask = self.mask()
        votes = mask.sum(axis=0)
        layer, head = np.nonzero(votes >= min_languages)
        frame = pd.DataFrame(
            {
                "layer": layer.astype(np.int64),
                "head": head.astype(np.int64),
                "n_languages": votes[layer, head].astype(np.int64),
                "languages": [
                    " ".join(np.asarray(self.languages)[mask[:, a, b]])
                    for a, b in zip(layer, head, strict=True)
                ],
            }
        )
        return frame.sort_values(
            ["n_languages", "layer", "head"], ascending=[False, True, True], ignore_index=True
        )

    def layer_share(self) -> pd.DataFrame:
        """Columns language, layer, count, share (= count / k); every (language, layer)."""
        counts = self.mask().sum(axis=2)
        n_lang, n_layers = counts.shape
        return pd.DataFrame(
            {
                "language": np.repeat(np.asarray(self.languages, dtype=object), n_layers),
                "layer": np.tile(np.arange(n_layers), n_lang),
                "count": counts.ravel().astype(np.int64),
                "share": counts.ravel() / self.k,
            }
        )


def top_heads(
    importance: Any,
    languages: Sequence[str] | None = None,
    *,
    frac: float = 0.02,
    k: int | None = None,
    min_heads: int = 1,
    source: str = "head importance",
) -> HeadSelection:
    """The top-k heads per language (k from `frac` unless given).

    sel = top_heads(lahis, TRAINED)        # lahis: [12, 32, 32] -> k = 20
    sel.overlap(); sel.general(11); sel.layer_share(); sel.table
    """
    values, languages = _check_importance(importance, languages, source)
    n_lang, n_layers, n_heads = values.shape
    if k is None:
        k = top_head_count(n_layers, n_heads, frac, min_heads)
    elif not 1 <= k <= n_layers * n_heads:
        raise ConfigError(f"k must be in 1..{n_layers * n_heads}, got {k}")
    else:
        frac = None
    flat = values.reshape(n_lang, -1)
    # stable sort of -importance: the largest first, equal scores by lower flat index
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    table = pd.DataFrame(
        {
            "language": np.repeat(np.asarray(languages, dtype=object), k),
            "rank": np.tile(np.arange(k), n_lang),
            "layer": (order // n_heads).ravel().astype(np.int64),
            "head": (order % n_heads).ravel().astype(np.int64),
            "flat": order.ravel().astype(np.int64),
            "importance": np.take_along_axis(flat, order, axis=1).ravel(),
        }
    )
    return HeadSelection(table, languages, n_layers, n_heads, k, frac)
