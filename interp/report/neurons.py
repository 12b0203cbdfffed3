"""Figures 1-4: language-specific MLP neurons per language, per layer, over depth, and how
they are reassigned between checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from interp import compare
from interp.report.common import (
    BUDGET_FREE,
    NULL_FDR,
    ReportInputs,
    _bootstrap_rows,
    _change_text,
    _count,
    _missing_scorer,
    _pct,
    _rel,
    _slug,
    _Writer,
)


def _for_counts(analysis: Any, scorer: str) -> Any:
    """What `compare.counts_table` takes for one checkpoint: the BootstrapResult (paired delta
    intervals), its per-language table when reloaded from disk, or the bare selection."""
    from interp.specialization.stats import BootstrapResult

    boot = analysis.bootstrap.get(scorer)
    if isinstance(boot, BootstrapResult):
        return boot
    frame = _bootstrap_rows(boot)
    if frame is not None:
        return frame
    return analysis.neurons[scorer]


def _total(analysis: Any, scorer: str) -> tuple[float, float, float]:
    """Selected (neuron, language) rows of a scorer, with the bootstrap interval if any."""
    value = float(len(analysis.neurons[scorer].table))
    frame = _bootstrap_rows(analysis.bootstrap.get(scorer))
    if frame is not None and (frame["language"] == "all").any():
        row = frame[frame["language"] == "all"].iloc[0]
        return value, float(row["lo"]), float(row["hi"])
    return value, float("nan"), float("nan")


def _fig_counts(w: _Writer, name: str, items: Mapping[str, Any], baseline: str, label: str):
    from interp import plots

    table = compare.counts_table(items, baseline)
    w.table(name.split("_", 1)[1], table)
    counts = table["count"].to_numpy(dtype=float)
    # a log axis shows small languages next to large ones, but hides zero counts
    log = bool((counts > 0).all() and counts.max() / counts.min() > 20)
    fig = plots.plot_neuron_counts(
        table, log=log, title=f"Language-specific MLP neurons per language ({label})"
    )
    totals = table.groupby("checkpoint", sort=False)["count"].sum()
    fixed = bool(np.allclose(totals.to_numpy(), totals.iloc[0]))
    parts = []
    if fixed:
        parts.append(
            f"{label}: {_count(totals.iloc[0])} specific neurons in every checkpoint (a fixed "
            "budget: only their split over languages can change)"
        )
    for ckpt in totals.index:
        if ckpt == baseline:
            continue
        rows = table[table["checkpoint"] == ckpt]
        delta = rows["delta"].to_numpy(dtype=float)
        text = f"{ckpt} vs {baseline}:"
        if not fixed:
            text += f" {label} neurons {_count(totals[baseline])} \u2192 {_count(totals[ckpt])}"
            text += f" ({_rel(totals[baseline], totals[ckpt])});"
        if not np.nanmax(np.abs(delta), initial=0) > 0:
            text += " the same count in every language"
        else:
            up, down = rows.iloc[int(np.nanargmax(delta))], rows.iloc[int(np.nanargmin(delta))]
            moves = []
            if up["delta"] > 0:
                moves.append(
                    f"largest gain {up['language']} {_count(up['base_count'])} \u2192 "
                    f"{_count(up['count'])}"
                )
            if down["delta"] < 0:
                moves.append(
                    f"largest loss {down['language']} {_count(down['base_count'])} \u2192 "
                    f"{_count(down['count'])}"
                )
            text += " " + ", ".join(moves)
        lo, hi = rows["delta_lo"].to_numpy(float), rows["delta_hi"].to_numpy(float)
        if np.isfinite(lo).any():
            clear = int(((lo > 0) | (hi < 0)).sum())
            text += f"; {clear} of {len(rows)} languages change clearly (paired 95% CI)"
        parts.append(text)
    w.figure(name, fig, "; ".join(parts) + ".")


def _fig_layers(w: _Writer, name: str, items: Mapping[str, Any], baseline: str, label: str):
    from interp import plots

    table = compare.layer_table(items, baseline)
    w.table(name.split("_", 1)[1], table)
    fig = plots.plot_layer_heatmap(table, title=f"Language-specific neurons per layer ({label})")
    per_layer = table.groupby(["checkpoint", "layer"], sort=False)["count"].sum()
    parts = []
    for ckpt in dict.fromkeys(table["checkpoint"]):
        layers = per_layer.loc[ckpt]
        peak = int(layers.idxmax())
        share = layers.max() / layers.sum() if layers.sum() else float("nan")
        text = f"{ckpt}: peak layer {peak} ({_pct(share)} of its specific neurons)"
        if ckpt != baseline:
            diff = layers - per_layer.loc[baseline].reindex(layers.index)
            moved = int(diff.abs().idxmax())
            text += f", largest change vs {baseline} at layer {moved} ({diff[moved]:+,.0f})"
        parts.append(text)
    w.figure(name, fig, "; ".join(parts) + ".")


def _half_layer(rows: pd.DataFrame) -> float:
    """First layer by which half of the specific neurons are reached."""
    reached = rows[rows["share"] >= 0.5]["layer"]
    return float(reached.min()) if len(reached) else float("nan")


def _fig_cumulative(w: _Writer, name: str, items: Mapping[str, Any], baseline: str, label: str):
    from interp import plots

    table = compare.cumulative_table(items)
    ks = compare.ks_compare(items, baseline)
    w.table(name.split("_", 1)[1], table)
    w.table(name.split("_", 1)[1].replace("cumulative", "ks"), ks)
    fig = plots.plot_cumulative(table, ks=ks, title=f"Specific neurons over depth ({label})")
    overall = table[table["language"] == "all"]
    half = {c: _half_layer(overall[overall["checkpoint"] == c]) for c in items}
    ks_all = ks[ks["language"] == "all"].set_index("checkpoint")["ks"]
    parts = [f"half of the specific neurons by layer {half[baseline]:.0f} in {baseline}"]
    for ckpt in items:
        if ckpt == baseline:
            continue
        value = ks_all.get(ckpt, np.nan)
        parts.append(
            f"{ckpt}: KS {value:.3f} to {baseline}, half by layer {half[ckpt]:.0f}"
            if np.isfinite(value)
            else f"{ckpt}: no KS (no specific neurons)"
        )
    w.figure(name, fig, "; ".join(parts) + ".")


def _fig_reassignment(w: _Writer, name: str, base: Any, tuned: Any, names: tuple[str, str]):
    from interp import plots

    matrix = compare.reassignment(base, tuned, names=names)
    w.table(name.split("_", 1)[1], matrix, index=True)
    fig = plots.plot_reassignment(matrix)
    summary = compare.reassignment_summary(matrix)
    n_base = summary["n_base"].sum()
    if n_base:
        reading = (
            f"{names[0]} \u2192 {names[1]}: of {_count(n_base)} specific neurons, "
            f"{_pct(summary['kept'].sum() / n_base)} keep their language, "
            f"{_pct(summary['moved'].sum() / n_base)} move to another language, "
            f"{_pct(summary['dropped'].sum() / n_base)} stop being specific; "
            f"{_count(summary['gained'].sum())} neurons become newly specific."
        )
    else:
        reading = f"{names[0]} has no specific neurons to reassign."
    w.figure(name, fig, reading)


def _count_reading(
    w: _Writer, analyses: Mapping[str, Any], baseline: str, scorer: str, figure: str, label: str
) -> None:
    """The figure-1 reading of a budget-free scorer: totals with intervals and a verdict."""
    base = _total(analyses[baseline], scorer)
    parts = [
        _change_text(
            f"{name} vs {baseline}: {label} specific neurons",
            base,
            _total(analysis, scorer),
            _count,
            relative=True,
        )
        for name, analysis in analyses.items()
        if name != baseline
    ]
    if parts:
        w.report.readings[figure] = "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# the report's steps


def draw_counts(w: _Writer, r: ReportInputs) -> None:
    """Figure 1 for the report's scorer and for each budget-free scorer (`BUDGET_FREE`)."""
    if r.neurons_of(r.scorer) is None:
        reason = _missing_scorer(r.analyses, r.scorer)
        for fig in ("01_neuron_counts", "02_layer_heatmap", "03_cumulative", "04_reassignment"):
            w.skip(fig, reason)
    else:
        items = {n: _for_counts(a, r.scorer) for n, a in r.analyses.items()}
        _fig_counts(w, "01_neuron_counts", items, r.baseline, r.scorer)
    for scorer, (figure, label, _, optional) in BUDGET_FREE.items():
        if r.neurons_of(scorer) is None:
            if not (optional and all(scorer not in a.neurons for a in r.analyses.values())):
                w.skip(figure, _missing_scorer(r.analyses, scorer))
            continue
        items = {n: _for_counts(a, scorer) for n, a in r.analyses.items()}
        _fig_counts(w, figure, items, r.baseline, label)
        _count_reading(w, r.analyses, r.baseline, scorer, figure, label)


def draw_layers(w: _Writer, r: ReportInputs) -> None:
    """Figures 2-4 (skipped with figure 1 when the scorer is missing)."""
    lape = r.neurons_of(r.scorer)
    if lape is None:
        return
    _fig_layers(w, "02_layer_heatmap", lape, r.baseline, r.scorer)
    _fig_cumulative(w, "03_cumulative", lape, r.baseline, r.scorer)
    if not r.tuned:
        w.skip("04_reassignment", "only one checkpoint: nothing to reassign to")
    for name in r.tuned:
        _fig_reassignment(
            w, f"04_reassignment_{_slug(name)}", lape[r.baseline], lape[name], (r.baseline, name)
        )


def _fig_script_classes(
    w: _Writer, name: str, tables: Mapping[str, pd.DataFrame], baseline: str | None, label: str
) -> None:
    """Figure 12 from per-checkpoint script-class tables (class, count, lo, hi)."""
    from interp import plots

    table = compare.script_class_table(tables, baseline)
    w.table(name.split("_", 1)[1], table)
    fig = plots.plot_script_classes(
        table, title=f"Specific neurons: language- or script-level ({label})"
    )
    rows = table.set_index(["checkpoint", "class"])

    def text(checkpoint: str, cls: str) -> str:
        row = rows.loc[(checkpoint, cls)]
        ci = f" [{row['lo']:.0f}, {row['hi']:.0f}]" if np.isfinite(row["lo"]) else ""
        return f"{cls} {row['count']:.0f}{ci}"

    parts = [
        f"{c}: " + ", ".join(text(c, cls) for cls in dict.fromkeys(table["class"])) for c in tables
    ]
    with_ci = np.isfinite(table["lo"].to_numpy(dtype=float)).any()
    w.figure(
        name,
        fig,
        f"{label} neurons by what they are specific to"
        + (" (bootstrap intervals over sequences)" if with_ci else "")
        + "; "
        + "; ".join(parts)
        + ". Only language-level ones show a language apart from its script.",
    )


def draw_script_classes(w: _Writer, r: ReportInputs) -> None:
    """Figure 12: the null-fdr neurons as language-level, script-level, ... per checkpoint
    (only when the analyses classified them: older ones did not)."""
    name, scorer = "12_script_vs_language", NULL_FDR
    have = {
        n: a.script_classes[scorer] for n, a in r.analyses.items() if scorer in a.script_classes
    }
    if len(have) < len(r.analyses):
        if have:
            missing = ", ".join(n for n in r.analyses if n not in have)
            w.skip(name, f"no script classes of {scorer} neurons for {missing}")
        return
    _fig_script_classes(w, name, have, r.baseline, scorer)
