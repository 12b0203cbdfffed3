"""Ablation (dark-diagonal) matrices and their differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interp.errors import DataError
from interp.languages import language_order

_ROW_NAMES = ("ablated", "masked")


_COL_NAMES = ("measured", "language")


_VALUE_PREFERENCE = ("value", "loss_delta", "delta_pct", "delta")


def ablation_matrix(data: Any, value: str | None = None) -> pd.DataFrame:
    """A square [ablated, measured] matrix from any of the accepted forms.

    `data` is a `DarkDiagonal` (interp.specialization.ablation), a tidy DataFrame with
    columns ablated (or masked), measured (or language) and a value column, or an already
    square DataFrame (rows = language whose units are ablated, columns = language measured).
    `value` picks the column; by default the first of value, loss_delta, delta_pct, delta
    that has finite numbers. Rows and columns come out in the paper's order; the column used
    is kept in `matrix.attrs["value"]`.
    """
    if hasattr(data, "table") and hasattr(data, "masked") and hasattr(data, "matrix"):
        data = data.table[data.table["control"] == "selected"]
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"ablation results: expected a DarkDiagonal or a DataFrame, got {type(data).__name__}"
        )
    row_col = next((c for c in _ROW_NAMES if c in data.columns), None)
    col_col = next((c for c in _COL_NAMES if c in data.columns), None)
    if row_col and col_col:
        if value is None:
            value = next(
                (
                    c
                    for c in _VALUE_PREFERENCE
                    if c in data.columns and np.isfinite(data[c].to_numpy(dtype=float)).any()
                ),
                None,
            )
            if value is None:
                raise DataError(
                    f"ablation table: no finite value column among {_VALUE_PREFERENCE}; "
                    f"columns: {list(data.columns)}. Fix: pass value=<column>"
                )
        elif value not in data.columns:
            raise DataError(
                f"ablation table has no column {value!r}; columns: {list(data.columns)}"
            )
        matrix = data.pivot_table(index=row_col, columns=col_col, values=value, aggfunc="mean")
    else:
        matrix = data.astype(float)
        value = value or data.attrs.get("value", "value")
    rows, cols = language_order(matrix.index), language_order(matrix.columns)
    matrix = matrix.loc[rows, cols].astype(float)
    matrix.index.name, matrix.columns.name = "ablated", "measured"
    matrix.attrs["value"] = value
    return matrix


def matrix_difference(a: pd.DataFrame, b: pd.DataFrame, *, names=("a", "b")) -> pd.DataFrame:
    """b - a for two labelled matrices with the same rows and columns (any order)."""
    for axis, la, lb in (("rows", a.index, b.index), ("columns", a.columns, b.columns)):
        if set(la) != set(lb):
            only_a = sorted(set(la) - set(lb), key=str)
            only_b = sorted(set(lb) - set(la), key=str)
            raise DataError(
                f"matrices {names[0]!r} {a.shape} and {names[1]!r} {b.shape} have different "
                f"{axis}: only in {names[0]!r}: {only_a or '-'}; only in {names[1]!r}: "
                f"{only_b or '-'}. Fix: compute both on the same languages"
            )
    diff = b.loc[a.index, a.columns].astype(float) - a.astype(float)
    diff.attrs.update(a.attrs)
    diff.attrs["difference"] = f"{names[1]} - {names[0]}"
    return diff


def ablation_difference(a: Any, b: Any, *, value: str | None = None, names=("a", "b")):
    """The change of an ablation matrix, b - a (rows ablated, columns measured)."""
    ma, mb = ablation_matrix(a, value), ablation_matrix(b, value)
    if ma.attrs["value"] != mb.attrs["value"]:
        raise DataError(
            f"ablation matrices hold different values ({ma.attrs['value']!r} vs "
            f"{mb.attrs['value']!r}). Fix: pass value=<column> for both"
        )
    return matrix_difference(ma, mb, names=names)
