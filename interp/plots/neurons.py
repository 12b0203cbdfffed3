"""Figures 1-4: language-specific MLP neurons across checkpoints.

1 `plot_neuron_counts`  per-language counts, one bar per checkpoint, intervals, change vs base;
2 `plot_layer_heatmap`  layer x language counts per checkpoint, and their change vs base;
3 `plot_cumulative`     cumulative share over depth, KS distance to the baseline in the legend;
4 `plot_reassignment`   base language x fine-tuned language transition matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.compare import NOT_SPECIFIC
from interp.errors import DataError
from interp.languages import language_order
from interp.plots import style


def _require(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{what}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(
            f"{what}: missing column(s) {', '.join(missing)}; columns present: "
            f"{', '.join(map(str, table.columns))}. Fix: build it with interp.compare"
        )
    if table.empty:
        raise DataError(f"{what}: the table has no rows")


def _baseline(table: pd.DataFrame, baseline: str | None) -> str | None:
    baseline = baseline if baseline is not None else table.attrs.get("baseline")
    if baseline is not None and baseline not in set(table["checkpoint"]):
        raise DataError(f"baseline {baseline!r} is not a checkpoint of the table")
    return baseline


def _checkpoints(
    table: pd.DataFrame, checkpoints: Sequence[str] | None, baseline: str | None = None
) -> list[str]:
    """The checkpoints to draw, in order; the baseline first when a subset leaves it out."""
    present = list(dict.fromkeys(table["checkpoint"]))
    if checkpoints is None:
        return present
    absent = [c for c in checkpoints if c not in present]
    if absent:
        raise DataError(f"checkpoint(s) {absent} not in the table (present: {present})")
    names = list(dict.fromkeys(checkpoints))
    return [baseline, *names] if baseline and baseline not in names else names


def _layer_ticks(ax, n_layers: int, axis: str = "y") -> None:
    step = max(1, int(np.ceil(n_layers / 8)))
    ticks = np.arange(0, n_layers, step)
    if axis == "y":
        ax.set_yticks(ticks, [str(t) for t in ticks], fontsize=style.FONT)
    else:
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=style.FONT)


# ---------------------------------------------------------------------------------------------
# 1


def grouped_bars(
    ax,
    table: pd.DataFrame,
    value: str,
    lo: str | None,
    hi: str | None,
    languages: Sequence[str],
    checkpoints: Sequence[str],
    colors: dict[str, str],
    hatches: dict[str, str] | None = None,
) -> None:
    """One bar per checkpoint in each language slot, with interval whiskers where given."""
    width = 0.8 / len(checkpoints)
    hatches = hatches or style.checkpoint_hatches(checkpoints)
    for i, name in enumerate(checkpoints):
        rows = table[table["checkpoint"] == name].set_index("language").reindex(languages)
        values = rows[value].to_numpy(dtype=float)
        x = np.arange(len(languages)) - 0.4 + width * (i + 0.5)
        ax.bar(
            x,
            np.nan_to_num(values),
            width=width * 0.95,
            color=colors[name],
            hatch=hatches[name],
            edgecolor="white" if hatches[name] else colors[name],
            linewidth=0,
            label=name,
        )
        if lo and hi and lo in rows and hi in rows:
            low, high = rows[lo].to_numpy(dtype=float), rows[hi].to_numpy(dtype=float)
            ok = np.isfinite(low) & np.isfinite(high) & np.isfinite(values)
            if ok.any():
                err = np.vstack(
                    [np.clip(values - low, 0, None)[ok], np.clip(high - values, 0, None)[ok]]
                )
                ax.errorbar(
                    x[ok],
                    values[ok],
                    yerr=err,
                    fmt="none",
                    ecolor="#333333",
                    elinewidth=0.7,
                    capsize=1.5,
                )


def plot_neuron_counts(
    table: pd.DataFrame,
    *,
    log: bool = False,
    show_delta: bool | None = None,
    baseline: str | None = None,
    checkpoints: Sequence[str] | None = None,
    title: str = "Language-specific MLP neurons per language",
):
    """Figure 1 from `compare.counts_table`: grouped bars, intervals (lo, hi) when present.

    `show_delta` (default: when the table has a baseline) adds a panel with the change vs the
    baseline per language (whiskers = delta_lo, delta_hi when present).
    """
    _require(table, ["checkpoint", "language", "count"], "neuron counts table")
    table = table[table["language"] != "all"]
    baseline = _baseline(table, baseline)
    names = _checkpoints(table, checkpoints, baseline)
    languages = language_order(table["language"])
    colors = style.checkpoint_colors(names)
    if show_delta is None:
        show_delta = baseline is not None and "delta" in table and len(names) > 1
    if show_delta and (baseline is None or "delta" not in table):
        raise DataError("show_delta needs a table built with a baseline (compare.counts_table)")
    width = max(5.5, 0.45 * len(languages) * max(1, len(names)) ** 0.5 + 2.5)
    fig = style.new_figure(width, 4.8 if show_delta else 3.0)
    axes = fig.subplots(2 if show_delta else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    grouped_bars(ax, table, "count", "lo", "hi", languages, names, colors)
    ax.set_ylabel("specific neurons" + (" (log scale)" if log else ""))
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    style.style_axes(ax)
    if show_delta:
        others = [n for n in names if n != baseline]
        dax = axes[1]
        hatches = style.checkpoint_hatches(names)  # the same hatch as in the top panel
        grouped_bars(
            dax, table, "delta", "delta_lo", "delta_hi", languages, others, colors, hatches
        )
        dax.axhline(0, color="#333333", linewidth=0.7)
        dax.set_ylabel(f"change vs {baseline}")
        style.style_axes(dax)
    style.language_ticks(axes[-1], languages)
    axes[-1].set_xlabel("language")
    style.side_legend(fig, ax)
    notes = [style.low_resource_note(languages)]
    if "lo" in table and np.isfinite(table["lo"].to_numpy(dtype=float)).any():
        notes.append("whiskers: bootstrap interval")
    style.add_note(fig, "; ".join(n for n in notes if n))
    return fig


# ---------------------------------------------------------------------------------------------
# 2


def _layer_grid(rows: pd.DataFrame, value: str, languages: Sequence[str]) -> np.ndarray:
    grid = rows.pivot_table(index="layer", columns="language", values=value, aggfunc="sum")
    n_layers = int(rows["layer"].max()) + 1
    return grid.reindex(index=range(n_layers), columns=languages).to_numpy(dtype=float)


def plot_layer_heatmap(
    table: pd.DataFrame,
    *,
    baseline: str | None = None,
    checkpoints: Sequence[str] | None = None,
    gamma: float = 0.4,
    title: str = "Language-specific neurons per layer",
):
    """Figure 2 from `compare.layer_table`: layer x language counts, one panel per checkpoint
    (shared colour scale, power `gamma` so small counts stay visible).

    With a baseline, a second row shows each checkpoint's change vs the baseline (red = more,
    blue = fewer; symmetric log scale, so changes of one neuron stay visible), and under the
    baseline the number of specific neurons per layer (all languages) of every checkpoint.
    """
    import matplotlib.colors as mcolors

    _require(table, ["checkpoint", "language", "layer", "count"], "layer table")
    baseline = _baseline(table, baseline)
    names = _checkpoints(table, checkpoints, baseline)
    languages = language_order(table["language"])
    others = [n for n in names if n != baseline] if baseline else []
    n_rows = 2 if others else 1
    fig = style.new_figure(max(4.0, 2.3 * len(names) + 1.2), 3.6 * n_rows + 0.2)
    axes = fig.subplots(n_rows, len(names), squeeze=False)
    n_layers = int(table["layer"].max()) + 1
    grids = {n: _layer_grid(table[table["checkpoint"] == n], "count", languages) for n in names}
    vmax = max(float(np.nanmax(g)) for g in grids.values()) or 1.0
    norm = mcolors.PowerNorm(gamma, vmin=0, vmax=vmax)
    for j, name in enumerate(names):
        ax = axes[0, j]
        image = style.heatmap(ax, grids[name], norm=norm)
        ax.set_title(name)
    style.colorbar(fig, image, axes[0, :].tolist(), f"specific neurons (power scale, {gamma:g})")
    if others:
        deltas = {n: grids[n] - grids[baseline] for n in others}
        limit = style.symmetric_limit(np.concatenate([d.ravel() for d in deltas.values()]))
        dnorm = mcolors.SymLogNorm(linthresh=1, linscale=0.6, vmin=-limit, vmax=limit, base=10)
        delta_axes = []
        for j, name in enumerate(names):
            ax = axes[1, j]
            if name == baseline:
                continue
            image = style.heatmap(ax, deltas[name], cmap=style.DIVERGING, norm=dnorm)
            ax.set_title(f"{name} \u2212 {baseline}")
            delta_axes.append(ax)
        bar = style.colorbar(fig, image, delta_axes, "change in specific neurons (symlog)")
        steps = [v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if v <= limit]
        ticks = [-v for v in reversed(steps)] + [0] + steps
        bar.set_ticks(ticks, labels=[str(t) for t in ticks])
        # under the baseline: the per-layer total of every checkpoint
        ax = axes[1, names.index(baseline)]
        colors = style.checkpoint_colors(names)
        for k, name in enumerate(names):
            total = np.nansum(grids[name], axis=1)
            ax.plot(
                total,
                np.arange(n_layers),
                color=colors[name],
                linewidth=1.1,
                label=name,
                marker=style.MARKERS[k % len(style.MARKERS)],
                markersize=2,
            )
        ax.set_ylim(-0.5, n_layers - 0.5)
        largest = max(float(np.nansum(g, axis=1).max()) for g in grids.values())
        if largest > 100:  # a few layers hold most neurons: a log axis shows the rest
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(0, largest * 2)
        else:
            ax.set_xlim(0, max(largest, 1) * 1.1)
        ax.set_xlabel("specific neurons, all languages", fontsize=style.FONT)
        ax.set_title("per layer, all languages")
        ax.legend(fontsize=style.FONT - 1.5, frameon=False, loc="lower right")
        style.style_axes(ax, grid="x")
    for row in axes:
        for ax in row:
            if ax.images:
                ax.invert_yaxis()
                style.language_ticks(ax, languages, rotation=90)
                style.style_axes(ax, grid=None)
            _layer_ticks(ax, n_layers)
        row[0].set_ylabel("layer (0 = first)")
    fig.suptitle(title, fontsize=style.TITLE + 1)
    style.add_note(fig, style.low_resource_note(languages))
    return fig


# ---------------------------------------------------------------------------------------------
# 3


def plot_cumulative(
    table: pd.DataFrame,
    *,
    ks: pd.DataFrame | None = None,
    baseline: str | None = None,
    languages: Sequence[str] = ("all",),
    checkpoints: Sequence[str] | None = None,
    title: str = "Specific neurons over depth",
):
    """Figure 3 from `compare.cumulative_table`: cumulative share of each checkpoint's specific
    neurons up to each layer, one panel per entry of `languages` ("all" = every language).

    `ks` (`compare.ks_compare`) puts each checkpoint's KS distance to the baseline in the
    legend; with a baseline (from `ks` or given) a second row shows the gap to the baseline's
    curve in percentage points, where the differences are visible.
    """
    _require(table, ["checkpoint", "language", "layer", "share"], "cumulative table")
    if ks is not None:
        _require(ks, ["checkpoint", "language", "ks"], "KS table")
    baseline = baseline or (ks.attrs.get("baseline") if ks is not None else None)
    baseline = _baseline(table, baseline)
    names = _checkpoints(table, checkpoints, baseline)
    absent = [lang for lang in languages if lang not in set(table["language"])]
    if absent:
        raise DataError(f"language(s) {absent} not in the cumulative table")
    colors = style.checkpoint_colors(names)
    n_rows = 2 if baseline else 1
    fig = style.new_figure(max(4.2, 3.0 * len(languages) + 1.6), 2.6 * n_rows + 0.3)
    axes = fig.subplots(n_rows, len(languages), squeeze=False, sharex=True)
    for j, lang in enumerate(languages):
        ax = axes[0, j]
        rows = table[table["language"] == lang]
        base = (
            rows[rows["checkpoint"] == baseline].set_index("layer")["share"] if baseline else None
        )
        for k, name in enumerate(names):
            curve = rows[rows["checkpoint"] == name].sort_values("layer")
            label = name
            if name == baseline:
                label = f"{name} (baseline)"
            elif ks is not None:
                hit = ks[(ks["checkpoint"] == name) & (ks["language"] == lang)]["ks"]
                if len(hit) and np.isfinite(hit.iloc[0]):
                    label = f"{name} (KS {hit.iloc[0]:.3f})"
            ax.plot(
                curve["layer"],
                curve["share"],
                color=colors[name],
                linewidth=1.3,
                marker=style.MARKERS[k % len(style.MARKERS)],
                markersize=2.5,
                label=label,
            )
            if base is not None and name != baseline:
                gap = 100 * (curve.set_index("layer")["share"] - base.reindex(curve["layer"]))
                axes[1, j].plot(
                    gap.index,
                    gap.to_numpy(),
                    color=colors[name],
                    linewidth=1.2,
                    marker=style.MARKERS[k % len(style.MARKERS)],
                    markersize=2.5,
                )
        ax.set_ylim(0, 1.02)
        ax.set_title("all languages" if lang == "all" else style.language_label(lang))
        ax.set_ylabel("cumulative share of specific neurons" if j == 0 else "")
        ax.legend(fontsize=style.FONT - 1, frameon=False, loc="upper left")
        style.style_axes(ax, grid="both")
        if baseline:
            dax = axes[1, j]
            dax.axhline(0, color=colors[baseline], linewidth=0.8)
            dax.set_ylabel(f"gap to {baseline}\n(percentage points)" if j == 0 else "")
            style.style_axes(dax, grid="both")
    for ax in axes[-1]:
        ax.set_xlabel("layer (0 = first)")
    fig.suptitle(title, fontsize=style.TITLE + 1)
    return fig


# ---------------------------------------------------------------------------------------------
# 4


def plot_reassignment(
    matrix: pd.DataFrame,
    *,
    annotate: bool = True,
    title: str | None = None,
):
    """Figure 4 from `compare.reassignment`: rows = language in base (+ not specific), columns
    = language after fine-tuning (+ not specific).

    Colour = share of the row: for a language row, where its base neurons went; for the "not
    specific" row, how the newly specific neurons split over languages (the not-specific ->
    not-specific cell, every other neuron of the model, is grey and only annotated).
    Numbers = neurons (fractional when a multi-language neuron's unit is split).
    """
    import matplotlib.colors as mcolors

    if not isinstance(matrix, pd.DataFrame) or NOT_SPECIFIC not in matrix.index:
        raise DataError(
            "reassignment matrix: expected the DataFrame of compare.reassignment (with a "
            f"{NOT_SPECIFIC!r} row and column)"
        )
    values = matrix.to_numpy(dtype=float)
    mask = np.zeros_like(values, dtype=bool)
    mask[-1, -1] = True
    masked_values = np.where(mask, 0.0, values)
    row_sum = masked_values.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(row_sum > 0, masked_values / np.where(row_sum > 0, row_sum, 1), np.nan)
    names = matrix.attrs.get("names", [matrix.index.name or "base", matrix.columns.name or "tuned"])
    n = len(matrix)
    fig = style.new_figure(max(4.5, 0.42 * n + 2.6), max(4.0, 0.38 * n + 1.6))
    ax = fig.subplots()
    integral = np.allclose(values, np.round(values))
    image = style.heatmap(
        ax,
        share,
        norm=mcolors.PowerNorm(0.5, vmin=0, vmax=1),
        annotate=None,
        mask=mask,
    )
    if annotate:
        rgba = image.to_rgba(np.ma.masked_invalid(share))
        for (i, j), value in np.ndenumerate(values):
            if value == 0:
                continue
            text = _compact(value, integral)
            r, g, b, _ = rgba[i, j]
            dark = not mask[i, j] and 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=style.FONT - 2.5,
                color="white" if dark else ("#555555" if mask[i, j] else "black"),
            )
    labels = [c for c in matrix.index if c != NOT_SPECIFIC]
    style.language_ticks(ax, labels + [NOT_SPECIFIC], axis="y")
    style.language_ticks(ax, [c for c in matrix.columns if c != NOT_SPECIFIC] + [NOT_SPECIFIC])
    ax.set_xticks(ax.get_xticks(), ax.get_xticklabels(), rotation=90)
    for pos in (n - 1.5,):
        ax.axhline(pos, color="white", linewidth=1.5)
        ax.axvline(pos, color="white", linewidth=1.5)
    ax.set_ylabel(f"language in {names[0]}")
    ax.set_xlabel(f"language in {names[1]}")
    language_rows = values[:-1].sum()
    kept = np.trace(values[:-1, :-1]) if n > 1 else 0.0
    subtitle = (
        f"{kept / language_rows:.1%} of {names[0]}'s specific neurons keep their language"
        if language_rows
        else ""
    )
    ax.set_title(
        (title or f"Neuron reassignment: {names[0]} \u2192 {names[1]}") + f"\n{subtitle}",
        fontsize=style.TITLE,
    )
    style.style_axes(ax, grid=None)
    style.colorbar(fig, image, ax, "share of the row (power scale)")
    notes = [style.low_resource_note(labels)]
    if matrix.attrs.get("multi") == "split" and not integral:
        notes.append("a neuron with several languages is split evenly over its pairs")
    style.add_note(fig, "; ".join(n for n in notes if n))
    return fig


def _compact(value: float, integral: bool) -> str:
    """12, 12.5, 3.5k, 352k: short cell labels."""
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if integral else f"{value:.1f}"


# ---------------------------------------------------------------------------------------------
# 12


def plot_script_classes(
    table: pd.DataFrame,
    *,
    checkpoints: Sequence[str] | None = None,
    title: str = "Specific neurons: language- or script-level",
):
    """Figure 12 from `compare.script_class_table`: per class (language, script,
    script-or-language, mixed) one bar per checkpoint, bootstrap whiskers (lo, hi)."""
    from interp.specialization.scripts import SCRIPT_CLASSES

    _require(table, ["checkpoint", "class", "count"], "script class table")
    names = _checkpoints(table, checkpoints, None)
    classes = [c for c in SCRIPT_CLASSES if c in set(table["class"])]
    slots = table.rename(columns={"class": "language"})  # grouped_bars' slot column
    fig = style.new_figure(max(5.0, 1.2 * len(classes) + 2.5), 3.0)
    ax = fig.subplots()
    grouped_bars(ax, slots, "count", "lo", "hi", classes, names, style.checkpoint_colors(names))
    ax.set_xticks(np.arange(len(classes)), [c.replace("-", "-\n", 1) for c in classes])
    ax.set_ylabel("specific neurons")
    ax.set_title(title)
    style.style_axes(ax)
    style.side_legend(fig, ax)
    style.add_note(
        fig,
        "language: one language of a shared script; script: several languages of one script; "
        "script-or-language: a script no other language here has; whiskers: bootstrap interval",
    )
    return fig
