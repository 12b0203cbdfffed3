"""Figure 8: recall per language, total consistency and RankC per checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp import languages as langreg
from interp.errors import DataError
from interp.languages import language_order
from interp.plots import style
from interp.plots.neurons import _checkpoints, _require, grouped_bars

# summary metrics (language "all" unless said), in the order drawn
_SUMMARY = (
    ("group_accuracy", "all", "accuracy: all"),
    ("group_accuracy", "trained-high", "accuracy: high"),
    ("group_accuracy", "trained-low", "accuracy: low"),
    ("group_accuracy", "unseen", "accuracy: unseen"),
    ("english_anchored", "trained", "English-anchored consistency"),
    ("calibrated_group_accuracy", "trained", "calibrated accuracy: trained"),
    ("total_consistency", "trained", "total consistency (12 trained)"),
    ("rankc_mean", "all", "RankC (mean)"),
    ("agreement_mean", "all", "agreement (mean)"),
)


def _percent(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in ("value", "ci_low", "ci_high"):
        if col in out:
            out[col] = 100 * out[col].astype(float)
    return out


def plot_recall(
    table: pd.DataFrame,
    *,
    checkpoints: Sequence[str] | None = None,
    rankc: bool = True,
    title: str = "Factual recall and cross-lingual consistency",
):
    """Figure 8 from `compare.stack_results` (evaluation tables with a checkpoint column).

    Panels, each drawn when its rows are present: accuracy per language (bars per checkpoint,
    bootstrap intervals; unseen languages on a grey band, in italics); a summary of group
    accuracy, total consistency and mean RankC per checkpoint; and with `rankc` one RankC
    heatmap (language x language) per checkpoint. Values in percent.
    """
    import matplotlib.colors as mcolors

    _require(table, ["checkpoint", "metric", "language", "value"], "evaluation table")
    table = _percent(table)
    if "other" not in table:
        table["other"] = ""
    names = _checkpoints(table, checkpoints)
    colors = style.checkpoint_colors(names)
    per_language = table[table["metric"] == "accuracy"]
    languages = language_order(per_language["language"])
    summary_rows = [
        (metric, lang, label)
        for metric, lang, label in _SUMMARY
        if ((table["metric"] == metric) & (table["language"] == lang)).any()
    ]
    pairs = table[(table["metric"] == "rankc") & (table["other"].astype(str) != "")]
    heat = rankc and not pairs.empty
    if per_language.empty and not summary_rows and not heat:
        raise DataError(
            "evaluation table: no accuracy, summary (group_accuracy, total_consistency, "
            "rankc_mean) or rankc rows to draw. Fix: pass interp.evaluate.metrics.evaluate output"
        )
    top_panels = [p for p, ok in (("lang", not per_language.empty), ("sum", summary_rows)) if ok]
    width = max(6.0, 0.38 * len(languages) * max(1, len(names)) ** 0.5 + 3.5)
    top_height = 2.9 if top_panels else 0.0
    heat_height = 2.6 if heat else 0.0
    fig = style.new_figure(width, top_height + heat_height + 0.4)
    if top_panels and heat:
        top, bottom = fig.subfigures(2, 1, height_ratios=[top_height, heat_height])
    else:
        top, bottom = (fig, None) if top_panels else (None, fig)
    legend_ax = None
    if top_panels:
        ratios = [
            max(3, len(languages)) if p == "lang" else 0.7 * len(summary_rows) + 1.0
            for p in top_panels
        ]
        axes = top.subplots(1, len(top_panels), width_ratios=ratios, squeeze=False)[0]
        for ax, panel in zip(axes, top_panels, strict=True):
            if panel == "lang":
                grouped_bars(
                    ax, per_language, "value", "ci_low", "ci_high", languages, names, colors
                )
                unseen = [i for i, c in enumerate(languages) if c in langreg.UNSEEN]
                if unseen:
                    ax.axvspan(min(unseen) - 0.5, max(unseen) + 0.5, color="#EEEEEE", zorder=0)
                    ax.text(
                        (min(unseen) + max(unseen)) / 2,
                        1.0,
                        "unseen languages",
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        va="bottom",
                        fontsize=style.FONT - 1,
                        color="#555555",
                    )
                style.language_ticks(ax, languages)
                ax.set_xlim(-0.6, len(languages) - 0.4)
                ax.set_ylabel("accuracy (%)")
                ax.set_xlabel("language")
                ax.set_title("accuracy per language", pad=12 if unseen else 6)
            else:
                frame = pd.concat(
                    [
                        table[(table["metric"] == m) & (table["language"] == lang)].assign(
                            slot=label
                        )
                        for m, lang, label in summary_rows
                    ]
                )
                slots = [label for _, _, label in summary_rows]
                frame = frame.rename(columns={"language": "group"}).rename(
                    columns={"slot": "language"}
                )
                grouped_bars(ax, frame, "value", "ci_low", "ci_high", slots, names, colors)
                ax.set_xticks(
                    np.arange(len(slots)),
                    slots,
                    rotation=35,
                    ha="right",
                    rotation_mode="anchor",
                    fontsize=style.FONT - 1,
                )
                ax.set_ylabel("percent")
                ax.set_title("summary")
            style.style_axes(ax)
            legend_ax = legend_ax or ax
        style.side_legend(top if top is not fig else fig, legend_ax)
    if heat:
        with_pairs = [n for n in names if (pairs["checkpoint"] == n).any()]
        pair_langs = language_order(pairs["language"])
        axes = bottom.subplots(1, len(with_pairs), squeeze=False)[0]
        grids = {}
        for name in with_pairs:
            rows = pairs[pairs["checkpoint"] == name]
            grid = rows.pivot_table(index="language", columns="other", values="value")
            grids[name] = grid.reindex(index=pair_langs, columns=pair_langs).to_numpy(float)
        off = ~np.eye(len(pair_langs), dtype=bool)
        finite = np.concatenate([g[off] for g in grids.values()])
        finite = finite[np.isfinite(finite)]
        norm = mcolors.Normalize(
            finite.min() if finite.size else 0, finite.max() if finite.size else 100
        )
        for ax, name in zip(axes, with_pairs, strict=True):
            image = style.heatmap(ax, grids[name], norm=norm, mask=~off)
            style.language_ticks(ax, pair_langs, rotation=90)
            style.language_ticks(ax, pair_langs, axis="y")
            ax.set_title(f"RankC: {name}")
            style.style_axes(ax, grid=None)
        style.colorbar(bottom, image, axes.tolist(), "RankC (%)")
    fig.suptitle(title, fontsize=style.TITLE + 1)
    style.add_note(fig, style.low_resource_note(languages))
    return fig
