"""Figures 5-6: where each language's top attention heads sit and how much they overlap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from interp import compare
from interp.report.common import (
    ReportInputs,
    _Writer,
)


def _mean_layer(table: pd.DataFrame, ckpt: str) -> float:
    rows = table[table["checkpoint"] == ckpt]
    return float((rows["layer"] * rows["count"]).sum() / rows["count"].sum())


def _fig_head_layers(w: _Writer, name: str, heads: Mapping[str, Any], title: str):
    from interp import plots

    table = compare.head_layer_table(heads)
    w.table(name.split("_", 1)[1], table)
    fig = plots.plot_head_layers(table, title=title)
    n_layers = next(iter(heads.values())).num_layers
    parts = [f"{c} {_mean_layer(table, c):.1f}" for c in heads]
    reading = f"mean layer of the top heads (0..{n_layers - 1}): " + ", ".join(parts) + "."
    w.figure(name, fig, reading)


def _fig_head_overlap(
    w: _Writer,
    name: str,
    heads: Mapping[str, Any],
    baseline: str | None,
    title,
    intervals: Mapping[str, tuple[float, float]] | None = None,
):
    """Figure 6; `intervals` (checkpoint -> the mean overlap's interval over resampled LAHIS
    samples) go into the reading where known."""
    from interp import plots

    def ci(c: str) -> str:
        lo, hi = (intervals or {}).get(c, (np.nan, np.nan))
        return f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""

    table = compare.head_overlap_table(heads, baseline)
    w.table(name.split("_", 1)[1], table)
    fig = plots.plot_head_overlap(table, baseline=baseline, title=title)
    overlap = {c: s.mean_overlap() for c, s in heads.items()}
    k = next(iter(heads.values())).k
    if baseline is not None and len(heads) > 1:
        parts = [f"{baseline} {overlap[baseline]:.2f}{ci(baseline)}"] + [
            f"{c} {overlap[c]:.2f}{ci(c)} ({overlap[c] - overlap[baseline]:+.2f})"
            for c in heads
            if c != baseline
        ]
    else:
        parts = [f"{c} {v:.2f}{ci(c)}" for c, v in overlap.items()]
    reading = f"mean top-{k} head overlap between languages: " + ", ".join(parts)
    reading += " (higher = heads shared across languages, less language-specific"
    if intervals:
        reading += "; intervals: LAHIS samples resampled"
    reading += ")."
    w.figure(name, fig, reading)


def draw_heads(w: _Writer, r: ReportInputs) -> None:
    """Figures 5 and 6, from the checkpoints that have a LAHIS head selection."""
    heads = {n: a.heads for n, a in r.analyses.items() if a.heads is not None}
    no_heads = [n for n in r.names if n not in heads]
    if not heads:
        reason = "no LAHIS head selection in any checkpoint (analysis run with lahis_samples=0)"
        w.skip("05_head_layers", reason)
        w.skip("06_head_overlap", reason)
        return
    compare.check_comparable(heads)
    note = f" ({', '.join(no_heads)}: no LAHIS)" if no_heads else ""
    _fig_head_layers(
        w, "05_head_layers", heads, "Where each language's top attention heads sit" + note
    )
    _fig_head_overlap(
        w,
        "06_head_overlap",
        heads,
        r.baseline if r.baseline in heads else None,
        "Top-head overlap between languages" + note,
        head_overlap_intervals(r.analyses),
    )
    frequency = {n: a.head_frequency for n, a in r.analyses.items() if a.head_frequency is not None}
    if frequency:
        w.table(
            "head_stability",
            pd.concat([t.assign(checkpoint=n) for n, t in frequency.items()], ignore_index=True),
        )
    if no_heads:
        w.report.readings["06_head_overlap"] += f" Without LAHIS: {', '.join(no_heads)}."


def head_overlap_intervals(analyses: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """checkpoint -> (lo, hi) of its mean top-head overlap over resampled LAHIS samples."""
    out = {}
    for name, analysis in analyses.items():
        values = (analysis.provenance or {}).get("head_overlap")
        if values:
            out[name] = (float(values["lo"]), float(values["hi"]))
    return out
