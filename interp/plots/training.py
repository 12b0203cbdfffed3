"""Figures 10 and 11: each regime's learning curve, and accuracy by what the model read.

fig = plot_learning_curves({"sft": curve_sft.frame(), "grpo": curve_grpo.frame()})
fig = plot_exposure_accuracy(effects.exposure_accuracy(evaluations))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from interp.errors import DataError
from interp.plots import style
from interp.plots.neurons import grouped_bars

SHORT_LABELS = {
    "exposed": "read in L",
    "english_only": "only in English\n(transfer)",
    "same_label": "only in English,\nsame spelling",
}
EXPOSURE_LABELS = {
    "exposed": "read in L",
    "english_only": "read only in English (transfer)",
    "same_label": "only in English, answer spelt as in English",
}


SMOOTHING_SHARE = 3  # a reward's trailing mean spans a third of its points (GRPO: one pass)


def plot_learning_curves(
    curves: Mapping[str, pd.DataFrame],
    *,
    title: str = "Learning curves: each regime's own objective and its training-fact accuracy",
):
    """Figure 10: one panel per checkpoint; its objective (loss, or GRPO's mean reward) against
    the step on the left axis, and its accuracy on a fixed sample of its own training facts
    (option log-likelihood, all its languages) on the right axis.

    `curves`: checkpoint -> `LearningCurve.frame()` (step, loss, reward, train_accuracy).
    """
    curves = {n: c for n, c in curves.items() if c is not None and len(c)}
    if not curves:
        raise DataError("learning curves: none to draw. Fix: train regimes with probe_points > 0")
    colors = style.checkpoint_colors(list(curves))
    fig = style.new_figure(min(3.1 * len(curves), 13.0), 2.6)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, frame) in zip(axes, curves.items(), strict=True):
        objective = "reward" if frame["reward"].notna().any() else "loss"
        rows = frame[frame[objective].notna()]
        window = max(1, round(len(rows) / SMOOTHING_SHARE))
        if objective == "reward" and window >= 3:  # each step new facts: noisy, so smoothed
            ax.plot(rows["step"], rows[objective], color=colors[name], lw=0.8, alpha=0.35)
            smooth = rows[objective].rolling(window, min_periods=window).mean()
            ax.plot(rows["step"], smooth, color=colors[name], lw=1.8)
        else:
            ax.plot(rows["step"], rows[objective], color=colors[name], lw=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("mean reward" if objective == "reward" else "training loss")
        ax.set_title(name)
        style.style_axes(ax)
        probe = frame[frame["train_accuracy"].notna()]
        if len(probe):
            twin = ax.twinx()
            twin.plot(
                probe["step"],
                100 * probe["train_accuracy"],
                color="#555555",
                ls="--",
                marker="o",
                ms=3,
                lw=1,
            )
            twin.set_ylim(0, 100)
            twin.set_ylabel("training-fact accuracy (%)", color="#555555")
            twin.tick_params(labelsize=style.FONT, colors="#555555")
            twin.yaxis.label.set_size(style.FONT + 0.5)
            twin.spines["top"].set_visible(False)
    fig.suptitle(title, fontsize=style.TITLE + 1)
    style.add_note(
        fig,
        "rewards: thick line the trailing mean over a third of the run (GRPO: one pass over its "
        "facts); dashed: accuracy on the regime's own training facts (right axis)",
    )
    return fig


def plot_exposure_accuracy(
    table: pd.DataFrame,
    *,
    group: str = "trained",
    checkpoints: Sequence[str] | None = None,
    english: Mapping[str, tuple[float, float, float]] | None = None,
    title: str = "Accuracy by what the model read: knowing a fact in L vs transfer from English",
):
    """Figure 11 from `interp.evaluate.effects.exposure_accuracy`.

    Left: the group's mean accuracy per exposure class, one bar per checkpoint (95% bootstrap
    intervals over facts), with English accuracy (`english`: checkpoint -> (value, lo, hi))
    as a reference. Right: per language for each exposure class, the first checkpoint.
    Values in percent; chance is 25% with four options.
    """
    needed = ["checkpoint", "language", "exposure", "accuracy", "ci_low", "ci_high"]
    missing = [c for c in needed if c not in table.columns]
    if missing or table.empty:
        raise DataError(
            "exposure table: nothing to draw (columns "
            f"{', '.join(missing) or 'present'}, {len(table)} rows). Fix: evaluate a checkpoint "
            "whose pretraining exposure is recorded (the organism's exposure.parquet)"
        )
    names = list(checkpoints or dict.fromkeys(table["checkpoint"]))
    colors = style.checkpoint_colors(names)
    kinds = [k for k in EXPOSURE_LABELS if (table["exposure"] == k).any()]
    percent = table.assign(
        **{c: 100 * table[c].astype(float) for c in ("accuracy", "ci_low", "ci_high")}
    )
    groups = percent[percent["language"] == group]
    languages = [
        c
        for c in dict.fromkeys(percent["language"])
        if c not in ("trained", "all") and not c.startswith(("trained-", "unseen"))
    ]
    fig = style.new_figure(11.5, 3.0)
    left, right = fig.subplots(1, 2, width_ratios=[1.0, 2.4])
    frame = groups.rename(columns={"language": "group"}).rename(columns={"exposure": "language"})
    grouped_bars(left, frame, "accuracy", "ci_low", "ci_high", kinds, names, colors)
    left.set_xticks(
        np.arange(len(kinds)), [SHORT_LABELS[k] for k in kinds], fontsize=style.FONT - 1
    )
    for name, (value, _, _) in (english or {}).items():
        if name in colors and np.isfinite(value):
            left.axhline(100 * value, color=colors[name], ls=":", lw=1)
    left.axhline(25, color="#999999", lw=0.8, ls="--")
    left.set_ylabel("accuracy (%)")
    left.set_ylim(0, 100)
    left.set_title(f"{group} languages (mean); dotted: English")
    style.style_axes(left)
    first = percent[(percent["checkpoint"] == names[0]) & percent["language"].isin(languages)]
    markers = {"exposed": "o", "english_only": "s", "same_label": "^"}
    shades = {"exposed": "#0072B2", "english_only": "#D55E00", "same_label": "#999999"}
    positions = {c: i for i, c in enumerate(languages)}
    for k, kind in enumerate(kinds):
        rows = first[first["exposure"] == kind]
        x = rows["language"].map(positions).to_numpy(float) + (k - (len(kinds) - 1) / 2) * 0.22
        y = rows["accuracy"].to_numpy(float)
        err = np.abs(np.vstack([y - rows["ci_low"], rows["ci_high"] - y]))
        right.errorbar(
            x,
            y,
            yerr=err,
            fmt=markers[kind],
            color=shades[kind],
            ms=4,
            lw=0.8,
            capsize=1.5,
            label=EXPOSURE_LABELS[kind],
        )
    right.axhline(25, color="#999999", lw=0.8, ls="--")
    style.language_ticks(right, languages)
    right.set_xlim(-0.6, len(languages) - 0.4)
    right.set_ylim(0, 100)
    right.set_ylabel("accuracy (%)")
    right.set_title(f"per language: {names[0]}")
    right.legend(fontsize=style.FONT - 1, frameon=False, loc="upper right")
    style.style_axes(right)
    style.side_legend(fig, left)
    fig.suptitle(title, fontsize=style.TITLE + 1)
    style.add_note(fig, "dashed: chance (25%); " + (style.low_resource_note(languages) or ""))
    return fig
