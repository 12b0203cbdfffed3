"""Figures 8-11 and their tables: recall and consistency, the regime effects with paired
intervals, the specialization-vs-consistency thesis, learning curves and exposure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from interp import compare
from interp.io import atomic_write_bytes
from interp.languages import GROUPS
from interp.report.common import (
    BUDGET_FREE,
    ReportInputs,
    _change_text,
    _metric,
    _paired_change,
    _pct,
    _Writer,
    verdict,
)
from interp.report.heads import head_overlap_intervals
from interp.report.neurons import _total


def _fig_curves(w: _Writer, curves: Mapping[str, pd.DataFrame]) -> list[str]:
    """Figure 10 and the warnings for curves that did not improve or level off."""
    from interp import plots
    from interp.train.curves import curve_verdict

    curves = {n: c for n, c in curves.items() if c is not None and len(c)}
    if not curves:
        w.skip(
            "10_learning_curves",
            "no learning curves recorded (regimes trained before "
            "curves were recorded, or a given base model without fine-tuning)",
        )
        return []
    warnings, parts, rows = [], [], []
    for name, frame in curves.items():
        objective = "reward" if frame["reward"].notna().any() else "loss"
        values = frame.loc[frame[objective].notna(), objective].tolist()
        check = curve_verdict(values, objective == "reward")
        probe = frame["train_accuracy"].dropna()
        rows.append(
            {
                "checkpoint": name,
                "objective": objective,
                **check,
                "accuracy_first": probe.iloc[0] if len(probe) else np.nan,
                "accuracy_last": probe.iloc[-1] if len(probe) else np.nan,
            }
        )
        text = f"{name}: {objective} {check['first']:.3g} \u2192 {check['last']:.3g}"
        if len(probe):
            text += f", training-fact accuracy {_pct(probe.iloc[0])} \u2192 {_pct(probe.iloc[-1])}"
        parts.append(text)
        if check["points"] < 4:
            warnings.append(
                f"{name}: only {check['points']} logged {objective} value(s), too few to tell "
                "whether it improved. Fix: more steps, or log more often (logging_steps)"
            )
        elif not check["improved"]:
            warnings.append(
                f"{name}: its {objective} did not improve (first tenth {check['first']:.3g}, "
                f"last tenth {check['last']:.3g}). Fix: more steps or another learning rate"
            )
        elif not check["levelled"]:
            warnings.append(
                f"{name}: its {objective} was still changing at the end. Fix: train longer"
            )
    w.table(
        "learning_curves",
        pd.concat([c.assign(checkpoint=n) for n, c in curves.items()], ignore_index=True),
    )
    w.table("learning_curve_checks", pd.DataFrame(rows))
    w.figure("10_learning_curves", plots.plot_learning_curves(curves), "; ".join(parts) + ".")
    return warnings


def _fig_exposure(w: _Writer, evaluations: Mapping[str, pd.DataFrame], baseline: str) -> None:
    from interp import plots
    from interp.evaluate.effects import exposure_accuracy

    table = exposure_accuracy(evaluations)
    if table.empty:
        w.skip(
            "11_exposure_accuracy",
            "no exposure record for these checkpoints (only the "
            "organism records what it read in each language)",
        )
        return
    w.table("exposure_accuracy", table)
    names = list(dict.fromkeys(table["checkpoint"]))
    english = {n: _metric(evaluations[n], "accuracy", "en") for n in names}
    fig = plots.plot_exposure_accuracy(table, checkpoints=names, english=english)
    rows = table[table["language"] == "trained"].set_index(["checkpoint", "exposure"])
    ref = baseline if baseline in names else names[0]
    parts = []
    for name in names:
        pieces = [
            f"{kind.replace('_', ' ')} {_pct(rows.loc[(name, kind), 'accuracy'])}"
            for kind in ("exposed", "english_only", "same_label")
            if (name, kind) in rows.index
        ]
        parts.append(f"{name}: English {_pct(english[name][0])}, " + ", ".join(pieces))
    reading = (
        "mean over the trained languages but English, by what the base read in each; "
        + "; ".join(parts)
        + f" (the gap between English and read-only-in-English items is what transfer "
        f"would close; {ref} is the reference)."
    )
    w.figure("11_exposure_accuracy", fig, reading)


def _effects_table(w: _Writer, scores, exposure, baseline: str, n_boot: int):
    """`tables/regime_effects.csv`, the power sentence for the index, and power warnings."""
    from interp.evaluate.effects import HEADLINE, minimum_detectable_difference, regime_effects

    effects = regime_effects(scores, baseline=baseline, exposure=exposure, n_boot=n_boot)
    w.table("regime_effects", effects)
    mdd = minimum_detectable_difference(effects)
    if not np.isfinite(mdd):
        return effects, None, []
    metric, group = HEADLINE
    rows = effects[(effects["metric"] == metric) & (effects["group"] == group)]
    changes = ", ".join(
        f"{r.checkpoint} {100 * r.delta:+.1f} [{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]"
        for r in rows.itertuples()
    )
    text = (
        f"Power: the 95% paired-bootstrap interval of a checkpoint-minus-{baseline} change in "
        f"English-anchored consistency (mean of the trained languages but English, "
        f"{int(rows['n'].max())} facts) is at most \u00b1{100 * mdd:.1f} points wide: the minimum "
        f"detectable difference. Changes: {changes} (points; "
        "[tables/regime_effects.csv](tables/regime_effects.csv) has every measure)."
    )
    warnings = []
    if mdd > 0.03:
        warnings.append(
            f"the held-out set is too small for a 3-point minimum detectable difference in "
            f"English-anchored consistency (it is {100 * mdd:.1f} points). Fix: hold out more "
            "facts (world.split_fractions) or add facts"
        )
    return effects, text, warnings


def _fig_recall(
    w: _Writer,
    evaluations: Mapping[str, pd.DataFrame],
    baseline: str,
    effects: pd.DataFrame | None = None,
) -> None:
    from interp import plots

    table = compare.stack_results(evaluations)
    w.table("evaluation", table)
    fig = plots.plot_recall(table)
    names = list(evaluations)
    ref = baseline if baseline in evaluations else names[0]
    parts = []
    for metric, group, label in (
        ("total_consistency", "trained", "total consistency (the 12 trained languages)"),
        ("rankc_mean", "all", "mean RankC"),
    ):
        values = {n: _metric(evaluations[n], metric, group) for n in names}
        if not np.isfinite(values[ref][0]):
            continue
        for name in names:
            if name != ref and np.isfinite(values[name][0]):
                paired = _paired_change(effects, name, metric, group)
                parts.append(
                    _change_text(
                        f"{name} vs {ref}: {label}", values[ref], values[name], _pct, paired=paired
                    )
                )
    unseen = {n: _metric(evaluations[n], "group_accuracy", "unseen") for n in names}
    if any(np.isfinite(v[0]) for v in unseen.values()):
        parts.append(
            "unseen-language accuracy "
            + ", ".join(f"{n} {_pct(v[0])}" for n, v in unseen.items() if np.isfinite(v[0]))
        )
    if not parts:
        accuracy = {n: _metric(evaluations[n], "group_accuracy") for n in names}
        parts.append("mean accuracy " + ", ".join(f"{n} {_pct(v[0])}" for n, v in accuracy.items()))
    w.figure("08_recall", fig, "; ".join(parts) + ".")


# summary column -> (metric, group) of the evaluation tables
SUMMARY_MEASURES = (
    *[(f"accuracy_{g.replace('-', '_')}", "group_accuracy", g) for g in GROUPS],
    ("accuracy_trained", "group_accuracy", "trained"),
    ("calibrated_accuracy_trained", "calibrated_group_accuracy", "trained"),
    ("accuracy_exposed", "accuracy_exposed", "trained"),
    ("accuracy_transfer", "accuracy_english_only", "trained"),
    ("english_anchored_consistency", "english_anchored", "trained"),
    ("total_consistency", "total_consistency", "trained"),  # all 12 trained languages right
    ("rankc_mean", "rankc_mean", "all"),
)


def _summary(
    analyses: Mapping[str, Any], evaluations: Mapping[str, pd.DataFrame], scorer: str
) -> pd.DataFrame:
    """One row per checkpoint; evaluation values are fractions (not percent)."""
    rows = []
    for name, analysis in analyses.items():
        table = evaluations.get(name)
        row: dict[str, Any] = {"checkpoint": name}
        for key, metric, language in SUMMARY_MEASURES:
            row[key], row[f"{key}_lo"], row[f"{key}_hi"] = _metric(table, metric, language)
        index = analysis.index
        row["specialization_index"] = index.value if index is not None else float("nan")
        row["specialization_index_lo"] = index.lo if index is not None else float("nan")
        row["specialization_index_hi"] = index.hi if index is not None else float("nan")
        # (a fixed-budget LAPE count is the same in every checkpoint by construction, so it
        # is not a column here; its split over languages is in tables/neuron_counts.csv)
        for scorer, (_, _, column, _) in BUDGET_FREE.items():
            if scorer in analysis.neurons:
                value, lo, hi = _total(analysis, scorer)
            else:
                value = lo = hi = float("nan")
            row[column], row[f"{column}_lo"], row[f"{column}_hi"] = value, lo, hi
        row["mean_top_head_overlap"] = (
            analysis.heads.mean_overlap() if analysis.heads is not None else float("nan")
        )
        lo, hi = head_overlap_intervals({name: analysis}).get(name, (float("nan"),) * 2)
        row["mean_top_head_overlap_lo"], row["mean_top_head_overlap_hi"] = lo, hi
        rows.append(row)
    return pd.DataFrame(rows)


def _fig_thesis(
    w: _Writer,
    summary: pd.DataFrame,
    baseline: str,
    effects: pd.DataFrame | None = None,
) -> None:
    """Figure 9: the specialization index (1 - mean normalised LAPE entropy of active
    neurons, bootstrap interval over sequences) against English-anchored consistency and
    mean RankC (bootstrap intervals over facts)."""
    from interp import plots

    for suffix, metric, group, label in (
        ("consistency", "english_anchored_consistency", "trained", "English-anchored consistency"),
        ("rankc", "rankc_mean", "all", "mean RankC"),
    ):
        name = f"09_specialization_vs_{suffix}"
        x = summary["specialization_index"].to_numpy(dtype=float)
        points = summary[np.isfinite(summary[metric].to_numpy(dtype=float)) & np.isfinite(x)]
        if points.empty:
            w.skip(name, f"no {metric} or specialization index for any checkpoint")
            continue
        spec = points.rename(
            columns={
                "specialization_index": "value",
                "specialization_index_lo": "lo",
                "specialization_index_hi": "hi",
            }
        )[["checkpoint", "value", "lo", "hi"]]
        cons = points.rename(columns={metric: "value", f"{metric}_lo": "lo", f"{metric}_hi": "hi"})[
            ["checkpoint", "value", "lo", "hi"]
        ]
        table = compare.thesis_table(
            spec, cons, x_label="specialization index (1 - mean normalised entropy)", y_label=label
        )
        w.table(name.split("_", 1)[1], table)
        present = list(table["checkpoint"])
        arrows = [(baseline, n) for n in present if n != baseline] if baseline in present else None
        fig = plots.plot_specialization_vs_consistency(table, arrows=arrows)
        paired = {c: _paired_change(effects, c, metric, group) for c in present}
        w.figure(name, fig, _thesis_reading(table, baseline, label, paired))


def _thesis_reading(
    table: pd.DataFrame,
    baseline: str,
    label: str,
    paired: Mapping[str, str | None] | None = None,
) -> str:
    """Figure 9's reading; `paired` (checkpoint -> `_paired_change` text of the y measure)
    replaces the overlap verdict of y where a paired interval exists."""
    rows = table.set_index("checkpoint")
    if baseline not in rows.index or len(rows) < 2:
        return (
            "; ".join(
                f"{c}: specialization index {r['x']:.4f}, {label} {_pct(r['y'])}"
                for c, r in rows.iterrows()
            )
            + "."
        )
    b = rows.loc[baseline]
    parts, both = [], 0
    for name, r in rows.iterrows():
        if name == baseline:
            continue
        x_word = verdict(b["x_lo"], b["x_hi"], r["x_lo"], r["x_hi"])
        y_word = (paired or {}).get(name) or verdict(b["y_lo"], b["y_hi"], r["y_lo"], r["y_hi"])
        text = (
            f"{name}: specialization index {b['x']:.4f} \u2192 {r['x']:.4f}"
            f"{' (' + x_word + ')' if x_word else ''}, {label} "
            f"{_pct(b['y'])} \u2192 {_pct(r['y'])}{' (' + y_word + ')' if y_word else ''}"
        )
        parts.append(text)
        both += bool(r["x"] < b["x"] and r["y"] > b["y"])
    head = (
        f"{both} of {len(parts)} fine-tuned checkpoints are less language-specialized and more "
        f"consistent ({label}) than {baseline}, the paper's thesis, by point estimates"
    )
    return head + "; " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# the report's steps


def draw_effects(w: _Writer, r: ReportInputs) -> None:
    """The regime effects (paired intervals, which the readings of 8 and 9 use), their power."""
    if r.scores and r.baseline in r.scores and len(r.scores) > 1:
        r.effects, r.power, more = _effects_table(w, r.scores, r.exposure, r.baseline, r.n_boot)
        r.warnings += more


def draw_recall(w: _Writer, r: ReportInputs) -> None:
    """Figure 8, for the analysed checkpoints and any only evaluated."""
    names = [n for n in r.names if n in r.evaluations]
    names += [n for n in r.evaluations if n not in r.analyses]
    if not names:
        w.skip("08_recall", "no evaluation tables")
        return
    _fig_recall(w, {n: r.evaluations[n] for n in names}, r.baseline, r.effects)


def draw_summary(w: _Writer, r: ReportInputs) -> None:
    """`summary.csv` (and tables/summary.csv): one row per checkpoint."""
    r.summary = _summary(r.analyses, r.evaluations, r.scorer)
    w.table("summary", r.summary)
    w.report.tables["summary"] = atomic_write_bytes(
        w.out_dir / "summary.csv", r.summary.to_csv(index=False).encode("utf-8")
    )
    w.report.summary = r.summary


def draw_thesis(w: _Writer, r: ReportInputs) -> None:
    _fig_thesis(w, r.summary, r.baseline, r.effects)


def draw_curves(w: _Writer, r: ReportInputs) -> None:
    r.warnings += _fig_curves(w, r.curves)


def draw_exposure(w: _Writer, r: ReportInputs) -> None:
    _fig_exposure(w, r.evaluations, r.baseline)
