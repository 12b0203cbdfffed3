"""Figure 9: specialization against consistency across checkpoints (the paper's thesis)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.errors import DataError
from interp.plots import style
from interp.plots.neurons import _require


def _families(names: Sequence[str]) -> list[tuple[str, str]]:
    """(base, other) arrows within each family: names sharing the prefix before the first '-'."""
    arrows = []
    for name in names:
        family = name.split("-")[0]
        bases = [n for n in names if n.split("-")[0] == family and "base" in n.lower()]
        if bases and name not in bases:
            arrows.append((bases[0], name))
    return arrows


def plot_specialization_vs_consistency(
    table: pd.DataFrame,
    *,
    x_label: str | None = None,
    y_label: str | None = None,
    arrows: Sequence[tuple[str, str]] | str | None = "family",
    y_percent: bool = True,
    title: str = "Less language specialization, more consistent recall?",
):
    """Figure 9 from `compare.thesis_table`: one point per checkpoint (x = a specialization
    summary, y = a consistency metric), error bars both ways where intervals are given, each
    point labelled. `arrows="family"` draws an arrow from each model family's base checkpoint
    (name prefix before the first '-', containing "base") to its fine-tuned ones; or give
    (from, to) pairs, or None. `y_percent` shows y in percent (values in [0, 1])."""
    _require(table, ["checkpoint", "x", "y"], "specialization vs consistency table")
    table = table.copy()
    for col in ("x_lo", "x_hi", "y_lo", "y_hi"):
        if col not in table:
            table[col] = np.nan
    if y_percent:
        for col in ("y", "y_lo", "y_hi"):
            table[col] = 100 * table[col].astype(float)
    names = list(table["checkpoint"])
    if len(set(names)) != len(names):
        raise DataError(f"specialization vs consistency table: repeated checkpoints {names}")
    colors = style.checkpoint_colors(names)
    fig = style.new_figure(4.8, 3.8)
    ax = fig.subplots()
    rows = table.set_index("checkpoint")
    pairs = _families(names) if arrows == "family" else list(arrows or [])
    for start, end in pairs:
        if start not in rows.index or end not in rows.index:
            raise DataError(f"arrow {start!r} -> {end!r}: checkpoint not in the table")
        ax.annotate(
            "",
            xy=(rows.at[end, "x"], rows.at[end, "y"]),
            xytext=(rows.at[start, "x"], rows.at[start, "y"]),
            arrowprops={
                "arrowstyle": "->",
                "color": "#999999",
                "lw": 0.9,
                "shrinkA": 5,
                "shrinkB": 5,
            },
        )
    for k, name in enumerate(names):
        row = rows.loc[name]
        x, y = float(row["x"]), float(row["y"])
        xerr = _err(x, row["x_lo"], row["x_hi"])
        yerr = _err(y, row["y_lo"], row["y_hi"])
        ax.errorbar(
            x,
            y,
            xerr=xerr,
            yerr=yerr,
            fmt=style.MARKERS[k % len(style.MARKERS)],
            color=colors[name],
            markersize=6,
            elinewidth=0.8,
            capsize=2,
            label=name,
        )
        ax.annotate(
            name,
            (x, y),
            xytext=(5, 5),
            textcoords="offset points",
            fontsize=style.FONT - 0.5,
            color=colors[name],
        )
    ax.margins(0.18)
    ax.set_xlabel(x_label or table.attrs.get("x_label", "specialization"))
    y_text = y_label or table.attrs.get("y_label", "consistency")
    ax.set_ylabel(f"{y_text} (%)" if y_percent and "%" not in y_text else y_text)
    ax.set_title(title)
    style.style_axes(ax, grid="both")
    if np.isfinite(table[["x_lo", "y_lo"]].to_numpy(dtype=float)).any():
        style.add_note(fig, "error bars: 95% intervals")
    return fig


def _err(value: float, lo, hi):
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return [[max(value - lo, 0.0)], [max(hi - value, 0.0)]]
