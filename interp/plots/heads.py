"""Figures 5-7: attention heads and ablations.

5 `plot_head_layers`    where each language's top heads sit, per layer;
6 `plot_head_overlap`   language x language top-head overlap per checkpoint, and its change;
7 `plot_dark_diagonal`  change of each language's loss when language X's units are ablated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.compare import ablation_matrix
from interp.errors import DataError
from interp.languages import language_order
from interp.plots import style
from interp.plots.neurons import _baseline, _checkpoints, _layer_ticks, _require


def _square(rows: pd.DataFrame, value: str, languages: Sequence[str]) -> np.ndarray:
    grid = rows.pivot_table(index="language", columns="other", values=value, aggfunc="mean")
    return grid.reindex(index=languages, columns=languages).to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------
# 5


def plot_head_layers(
    table: pd.DataFrame,
    *,
    checkpoints: Sequence[str] | None = None,
    title: str = "Where each language's top attention heads sit",
):
    """Figure 5 from `compare.head_layer_table`: per checkpoint, a layer x language heatmap of
    the share of the language's top-k heads in each layer, and a last panel with the profile
    over layers (mean share over languages) of every checkpoint."""
    import matplotlib.colors as mcolors

    _require(table, ["checkpoint", "language", "layer", "share"], "head layer table")
    names = _checkpoints(table, checkpoints)
    languages = language_order(table["language"])
    n_layers = int(table["layer"].max()) + 1
    fig = style.new_figure(2.3 * len(names) + 3.2, 4.0)
    axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
    grids = {}
    for name in names:
        rows = table[table["checkpoint"] == name]
        grid = rows.pivot_table(index="layer", columns="language", values="share", aggfunc="sum")
        grids[name] = grid.reindex(index=range(n_layers), columns=languages).to_numpy(float)
    vmax = max(float(np.nanmax(g)) for g in grids.values()) or 1.0
    norm = mcolors.Normalize(0, vmax)
    for ax, name in zip(axes, names, strict=False):
        image = style.heatmap(ax, grids[name], norm=norm)
        ax.invert_yaxis()
        ax.set_title(name)
        style.language_ticks(ax, languages, rotation=90)
        _layer_ticks(ax, n_layers)
        style.style_axes(ax, grid=None)
    axes[0].set_ylabel("layer (0 = first)")
    style.colorbar(fig, image, axes[:-1].tolist(), "share of the language's top heads")
    profile = axes[-1]
    colors = style.checkpoint_colors(names)
    for k, name in enumerate(names):
        profile.plot(
            np.nanmean(grids[name], axis=1),
            np.arange(n_layers),
            color=colors[name],
            marker=style.MARKERS[k % len(style.MARKERS)],
            markersize=2.5,
            linewidth=1.2,
            label=name,
        )
    profile.set_ylim(-0.5, n_layers - 0.5)
    profile.set_xlim(left=0)
    _layer_ticks(profile, n_layers)
    profile.set_xlabel("mean share over languages")
    profile.set_title("profile over layers")
    profile.legend(fontsize=style.FONT - 1, frameon=False, loc="best")
    style.style_axes(profile, grid="x")
    fig.suptitle(title, fontsize=style.TITLE + 1)
    style.add_note(fig, style.low_resource_note(languages))
    return fig


# ---------------------------------------------------------------------------------------------
# 6


def plot_head_overlap(
    table: pd.DataFrame,
    *,
    baseline: str | None = None,
    checkpoints: Sequence[str] | None = None,
    annotate: bool = True,
    title: str = "Top-head overlap between languages",
):
    """Figure 6 from `compare.head_overlap_table`: |top(a) & top(b)| / k per checkpoint (the
    diagonal, always 1, in grey), and with a baseline each checkpoint's change vs the baseline
    (red = more shared heads, i.e. less language-specific)."""
    import matplotlib.colors as mcolors

    _require(table, ["checkpoint", "language", "other", "overlap"], "head overlap table")
    baseline = _baseline(table, baseline)
    names = _checkpoints(table, checkpoints, baseline)
    languages = language_order(table["language"])
    others = [n for n in names if n != baseline] if baseline else []
    n = len(languages)
    cell = 0.24 if n <= 12 else 0.16
    side = max(2.4, cell * n + 0.6)
    fig = style.new_figure(side * len(names) + 1.0, (side + 0.5) * (2 if others else 1) + 0.2)
    axes = fig.subplots(2 if others else 1, len(names), squeeze=False)
    diagonal = np.eye(n, dtype=bool)
    fmt = ".2f" if annotate and n <= 12 else None
    grids = {
        name: _square(table[table["checkpoint"] == name], "overlap", languages) for name in names
    }
    for j, name in enumerate(names):
        ax = axes[0, j]
        image = style.heatmap(
            ax,
            grids[name],
            norm=mcolors.Normalize(0, 1),
            annotate=fmt,
            mask=diagonal,
            fontsize=style.FONT - 3,
        )
        ax.set_title(name)
    style.colorbar(fig, image, axes[0, :].tolist(), "overlap |top(a) \u2229 top(b)| / k")
    if others:
        diffs = {name: grids[name] - grids[baseline] for name in others}
        limit = style.symmetric_limit(np.concatenate([d.ravel() for d in diffs.values()]))
        used = []
        for j, name in enumerate(names):
            ax = axes[1, j]
            if name == baseline:
                _mean_overlap(ax, grids, names, languages)
                continue
            image = style.heatmap(
                ax,
                diffs[name],
                cmap=style.DIVERGING,
                norm=mcolors.Normalize(-limit, limit),
                annotate="+.2f" if fmt else None,
                mask=diagonal,
                fontsize=style.FONT - 3.5,
            )
            ax.set_title(f"{name} \u2212 {baseline}")
            used.append(ax)
        style.colorbar(fig, image, used, "change in overlap")
    for ax in fig.axes:
        if ax.images:
            style.language_ticks(ax, languages, rotation=90)
            style.language_ticks(ax, languages, axis="y")
            style.style_axes(ax, grid=None)
    for row in axes:
        images = [ax for ax in row if ax.images]
        images[0].set_ylabel("language a")
        for ax in images:
            ax.set_xlabel("language b")
    fig.suptitle(title, fontsize=style.TITLE + 1)
    style.add_note(fig, style.low_resource_note(languages))
    return fig


def _mean_overlap(ax, grids, names, languages) -> None:
    """Per language, the mean overlap with the other languages, one bar per checkpoint."""
    colors = style.checkpoint_colors(names)
    off = ~np.eye(len(languages), dtype=bool)
    height = 0.8 / len(names)
    for k, name in enumerate(names):
        grid = np.where(off, grids[name], np.nan)
        y = np.arange(len(languages)) - 0.4 + height * (k + 0.5)
        ax.barh(y, np.nanmean(grid, axis=1), height=height * 0.95, color=colors[name], label=name)
    style.language_ticks(ax, languages, axis="y")
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean overlap with the other languages")
    ax.set_title("per language")
    ax.legend(fontsize=style.FONT - 1.5, frameon=False, loc="lower right")
    style.style_axes(ax, grid="x")


# ---------------------------------------------------------------------------------------------
# 7

_VALUE_LABELS = {
    "loss_delta": "loss increase (nats/token)",
    "delta_pct": "perplexity increase (%)",
    "delta": "perplexity increase",
    "ppl_ratio": "perplexity ratio",
}


def plot_dark_diagonal(
    data,
    *,
    value: str | None = None,
    value_label: str | None = None,
    annotate: bool = True,
    title: str = "Ablating language X's units: the dark diagonal",
):
    """Figure 7 from an ablation matrix (rows = language whose units are ablated, columns =
    language measured), given in any form `compare.ablation_matrix` accepts (a DarkDiagonal,
    a tidy table, a square DataFrame, or a difference from `compare.ablation_difference`).

    The diagonal is outlined; the subtitle counts the rows whose largest increase is their own
    language. A matrix with negative entries gets a diverging scale centred on 0.
    """
    import matplotlib.colors as mcolors
    from matplotlib.patches import Rectangle

    matrix = ablation_matrix(data, value)
    value = matrix.attrs.get("value", value)
    rows, cols = list(matrix.index), list(matrix.columns)
    values = matrix.to_numpy(dtype=float)
    if not np.isfinite(values).any():
        raise DataError("ablation matrix: no finite values to draw")
    fig = style.new_figure(max(4.2, 0.36 * len(cols) + 2.4), max(3.6, 0.34 * len(rows) + 1.7))
    ax = fig.subplots()
    if np.nanmin(values) < 0:
        limit = style.symmetric_limit(values)
        cmap, norm = style.DIVERGING, mcolors.Normalize(-limit, limit)
    else:
        cmap, norm = style.SEQUENTIAL, mcolors.Normalize(0, np.nanmax(values))
    fmt = None
    if annotate and len(cols) <= 14:
        fmt = ".0f" if np.nanmax(np.abs(values)) >= 20 else ".2f"
    image = style.heatmap(ax, values, cmap=cmap, norm=norm, annotate=fmt, fontsize=style.FONT - 2.5)
    hits = 0
    shared = [lang for lang in rows if lang in cols]
    for lang in shared:
        i, j = rows.index(lang), cols.index(lang)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.4))
        hits += bool(np.nanargmax(values[i]) == j) if np.isfinite(values[i]).any() else 0
    style.language_ticks(ax, cols, rotation=90)
    style.language_ticks(ax, rows, axis="y")
    ax.set_xlabel("language measured")
    ax.set_ylabel("language whose units are ablated")
    subtitle = f"own language rises most in {hits} of {len(shared)} rows" if shared else ""
    if "difference" in matrix.attrs:
        subtitle = f"{matrix.attrs['difference']}; " + subtitle
    ax.set_title(f"{title}\n{subtitle}", fontsize=style.TITLE)
    style.style_axes(ax, grid=None)
    label = value_label or _VALUE_LABELS.get(value, str(value))
    if "difference" in matrix.attrs:
        label = f"change in {label}"
    style.colorbar(fig, image, ax, label)
    style.add_note(fig, style.low_resource_note(rows))
    return fig


# ---------------------------------------------------------------------------------------------
# 13


def plot_causal_overlap(table: pd.DataFrame, *, title: str = "Causal vs activation-based sets"):
    """Figure 13 from `compare.causal_overlap_table`: per comparison (a panel: causal neurons
    vs LAPE, vs null-fdr; causal heads vs LAHIS) the Jaccard overlap per language and pooled
    ("all"), one bar per checkpoint."""
    from interp.plots.neurons import grouped_bars

    comparisons = list(dict.fromkeys(table["comparison"]))
    names = list(dict.fromkeys(table["checkpoint"]))
    colors = style.checkpoint_colors(names)
    languages = language_order([c for c in table["language"] if c != "all"]) + ["all"]
    fig = style.new_figure(
        max(6.0, 0.5 * len(languages) * max(1, len(names)) ** 0.5 + 2.5),
        2.2 * len(comparisons) + 0.6,
    )
    axes = fig.subplots(len(comparisons), 1, sharex=True, squeeze=False)[:, 0]
    for ax, comparison in zip(axes, comparisons, strict=True):
        rows = table[table["comparison"] == comparison]
        grouped_bars(ax, rows, "jaccard", None, None, languages, names, colors)
        ax.set_ylim(0, 1)
        ax.set_ylabel("Jaccard")
        ax.set_title(comparison, fontsize=style.FONT)
        style.style_axes(ax)
    axes[-1].set_xticks(
        np.arange(len(languages)),
        [style.language_label(c) if c != "all" else "all" for c in languages],
    )
    axes[-1].set_xlabel("language")
    fig.suptitle(title, fontsize=style.TITLE + 1)
    style.side_legend(fig, axes[0])
    style.add_note(fig, "sets of equal size per language (the activation set's); all: pooled pairs")
    return fig
