"""Top-head selections side by side: where they sit and how much languages share them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from interp.compare.checks import _check_baseline, _sorted, check_comparable
from interp.errors import DataError
from interp.languages import language_order


def head_layer_table(selections: Mapping[str, Any]) -> pd.DataFrame:
    """`HeadSelection.layer_share()` stacked: checkpoint, language, layer, count, share."""
    check_comparable(selections)
    frames = [sel.layer_share().assign(checkpoint=name) for name, sel in selections.items()]
    table = pd.concat(frames, ignore_index=True)
    table = _sorted(table, language_order(table["language"]), ["layer"])
    return table[["checkpoint", "language", "layer", "count", "share"]]


def head_overlap_table(selections: Mapping[str, Any], baseline: str | None = None) -> pd.DataFrame:
    """Pairwise top-head overlap |top(a) & top(b)| / k of each checkpoint, tidy.

    Columns checkpoint, language, other, overlap, and with a baseline base_overlap and delta
    (= overlap - base_overlap). Both selections must use the same k.
    """
    _check_baseline(selections, baseline)
    check_comparable(selections)
    ks = {name: sel.k for name, sel in selections.items()}
    if len(set(ks.values())) > 1:
        raise DataError(
            f"top-head sets of different sizes k: {ks}. Fix: select the same number of heads"
        )
    frames = []
    for name, sel in selections.items():
        matrix = sel.overlap()
        order = language_order(matrix.index)
        matrix = matrix.loc[order, order]
        long = matrix.stack().rename("overlap").reset_index()
        long.columns = ["language", "other", "overlap"]
        frames.append(long.assign(checkpoint=name))
    table = pd.concat(frames, ignore_index=True)[["checkpoint", "language", "other", "overlap"]]
    if baseline is None:
        return table
    base = table[table["checkpoint"] == baseline].set_index(["language", "other"])["overlap"]
    index = pd.MultiIndex.from_frame(table[["language", "other"]])
    table["base_overlap"] = base.reindex(index).to_numpy()
    table["delta"] = table["overlap"] - table["base_overlap"]
    table.attrs["baseline"] = baseline
    return table


def causal_overlap_table(overlaps: Mapping[str, Mapping[str, pd.DataFrame]]) -> pd.DataFrame:
    """checkpoint -> {comparison: `CausalSelection.jaccard_with` table} stacked: checkpoint,
    comparison, language (and "all"), n_causal, n_other, shared, jaccard."""
    frames = [
        t.assign(checkpoint=name, comparison=comparison)
        for name, by_comparison in overlaps.items()
        for comparison, t in by_comparison.items()
    ]
    columns = ["checkpoint", "comparison", "language", "n_causal", "n_other", "shared", "jaccard"]
    return pd.concat(frames, ignore_index=True)[columns]
