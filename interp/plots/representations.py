"""Figures 14-18: what the residual stream holds across languages, per checkpoint.

One function draws them all: small multiples of curves (a value over layers, steering
strengths or ablated shares), one panel per (row metric, checkpoint), one line per language
(or steering target), with the bootstrap interval as a band.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.errors import DataError
from interp.languages import LANGUAGES, language_order
from interp.plots import style


def plot_curves(
    table: pd.DataFrame,
    *,
    x: str,
    rows: Sequence[tuple[str, str]],
    line: str = "language",
    checkpoints: Sequence[str] | None = None,
    title: str = "",
    xlabel: str | None = None,
    ylim: tuple[float, float] | None = None,
):
    """`table`: checkpoint, `line`, `x`, metric, value (lo, hi optional). `rows`: (metric,
    y label) per row of panels; columns are checkpoints."""
    missing = [c for c in ("checkpoint", line, x, "metric", "value") if c not in table]
    if missing:
        raise DataError(f"curves table: missing column(s) {missing}")
    names = list(checkpoints or dict.fromkeys(table["checkpoint"]))
    keys = list(dict.fromkeys(table[line]))
    keys = language_order(keys) if all(k in LANGUAGES for k in keys) else keys
    fig = style.new_figure(2.6 * len(names) + 1.6, 2.2 * len(rows) + 0.7)
    axes = fig.subplots(len(rows), len(names), sharex=True, sharey="row", squeeze=False)
    for r, (metric, label) in enumerate(rows):
        for c, name in enumerate(names):
            ax = axes[r, c]
            part = table[(table["checkpoint"] == name) & (table["metric"] == metric)]
            for key in keys:
                curve = part[part[line] == key].sort_values(x)
                if curve.empty:
                    continue
                color = style.language_color(key) if key in LANGUAGES else None
                xs, ys = curve[x].to_numpy(float), curve["value"].to_numpy(float)
                ax.plot(
                    xs,
                    ys,
                    color=color,
                    linewidth=1.1,
                    marker=".",
                    markersize=3,
                    label=style.language_label(key) if key in LANGUAGES else str(key),
                )
                if {"lo", "hi"} <= set(curve) and np.isfinite(curve["lo"].to_numpy(float)).any():
                    ax.fill_between(
                        xs,
                        curve["lo"].to_numpy(float),
                        curve["hi"].to_numpy(float),
                        color=color,
                        alpha=0.12,
                        linewidth=0,
                    )
            if ylim is not None:
                ax.set_ylim(*ylim)
            if r == 0:
                ax.set_title(name, fontsize=style.FONT)
            if c == 0:
                ax.set_ylabel(label)
            if r == len(rows) - 1:
                ax.set_xlabel(xlabel or x)
            style.style_axes(ax, grid="y")
    style.side_legend(fig, axes[0, 0], title=line, fontsize=style.FONT - 1)
    if title:
        fig.suptitle(title, fontsize=style.TITLE + 1)
    style.add_note(fig, "bands: bootstrap intervals over facts")
    return fig
