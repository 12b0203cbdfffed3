"""Figure 7: the dark diagonal, each language's loss when each language's units are zeroed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from interp import compare
from interp.report.common import (
    ReportInputs,
    _slug,
    _Writer,
)

_VALUE_WORDS = {
    "loss_delta": "loss increase (nats/token)",
    "delta_pct": "perplexity increase (%)",
    "delta": "perplexity increase",
    "ppl_ratio": "perplexity ratio",
}


def _diagonal_means(matrix: pd.DataFrame) -> tuple[float, float]:
    """Mean of the own-language cells and of all other cells of an ablation matrix."""
    rows, cols = list(matrix.index), list(matrix.columns)
    values = matrix.to_numpy(dtype=float)
    own = np.array([[r == c for c in cols] for r in rows])
    return float(np.nanmean(values[own])), float(np.nanmean(values[~own]))


def _dark_reading(matrix: pd.DataFrame, table: pd.DataFrame | None) -> str:
    """Own language rises most in h of n rows; mean diagonal vs off-diagonal (vs random)."""
    rows, cols = list(matrix.index), list(matrix.columns)
    shared = [lang for lang in rows if lang in cols]
    values = matrix.to_numpy(dtype=float)
    diag, off = _diagonal_means(matrix)
    hits = sum(
        bool(np.nanargmax(values[rows.index(x)]) == cols.index(x))
        for x in shared
        if np.isfinite(values[rows.index(x)]).any()
    )
    # per column: is the language hurt most by ablating its own units (columns differ in how
    # sensitive the language measured is, so rows alone can hide a dark diagonal)
    column_hits = sum(
        bool(np.nanargmax(values[:, cols.index(x)]) == rows.index(x))
        for x in shared
        if np.isfinite(values[:, cols.index(x)]).any()
    )
    value = matrix.attrs.get("value", "value")
    text = (
        f"own language rises most in {hits} of {len(shared)} rows; in {column_hits} of "
        f"{len(shared)} columns the language is hurt most by ablating its own units; mean "
        f"{_VALUE_WORDS.get(value, value)} on the "
        f"diagonal {diag:.3g} vs off it {off:.3g}"
    )
    if table is not None and "control" in table:
        random = table[(table["control"] != "selected") & (table["masked"] == table["language"])]
        if value in random and np.isfinite(random[value].to_numpy(float)).any():
            text += f" (random units of the same size: {np.nanmean(random[value]):.3g})"
    return text + "."


def _fig_dark(w: _Writer, name: str, data: Any, title: str, *, value: str | None = None):
    from interp import plots

    matrix = compare.ablation_matrix(data, value)
    w.table(name.split("_", 1)[1], matrix, index=True)
    fig = plots.plot_dark_diagonal(data, value=value, title=title)
    table = data if isinstance(data, pd.DataFrame) else getattr(data, "table", None)
    w.figure(name, fig, _dark_reading(matrix, table))


def draw_ablations(w: _Writer, r: ReportInputs) -> None:
    """Figure 7 per checkpoint and unit kind, with the diagonal's change from the baseline."""
    analyses, baseline = r.analyses, r.baseline
    for kind in ("neurons", "heads"):
        have = [n for n in r.names if analyses[n].ablation.get(kind) is not None]
        if not have:
            w.skip(
                f"07_dark_diagonal_{kind}",
                f"no {kind} ablation in any checkpoint (analysis run without held-out text "
                f"or with ablation=False{', or without LAHIS' if kind == 'heads' else ''})",
            )
        what = "top heads" if kind == "heads" else "specific neurons"
        for name in r.names:
            figure = f"07_dark_diagonal_{kind}_{_slug(name)}"
            if name not in have:
                if have:
                    w.skip(figure, f"no {kind} ablation for {name}")
                continue
            data = analyses[name].ablation[kind]
            _fig_dark(w, figure, data, f"{name}: ablating language X's {what}")
            if name != baseline and baseline in have:
                base_diag, _ = _diagonal_means(
                    compare.ablation_matrix(analyses[baseline].ablation[kind])
                )
                diag, _ = _diagonal_means(compare.ablation_matrix(data))
                w.report.readings[figure] += (
                    f" Diagonal mean vs {baseline}: {base_diag:.3g} \u2192 {diag:.3g}."
                )


def draw_causal(w: _Writer, r: ReportInputs) -> None:
    """Figure 13: how much the causal sets (zeroing hurts the language most) share with the
    activation-based ones, per checkpoint (only where the analyses computed them)."""
    name = "13_causal_vs_activation"
    have = {n: a.causal_overlap for n, a in r.analyses.items() if a.causal_overlap}
    if len(have) < len(r.analyses):
        if have:
            missing = ", ".join(n for n in r.analyses if n not in have)
            w.skip(name, f"no causal sets for {missing} (AnalysisConfig.causal)")
        return
    from interp import plots

    table = compare.causal_overlap_table(have)
    w.table("causal_vs_activation", table)
    fig = plots.plot_causal_overlap(table)
    pooled = table[table["language"] == "all"].set_index(["checkpoint", "comparison"])
    parts = []
    for checkpoint in have:
        rows = pooled.loc[checkpoint]
        parts.append(
            f"{checkpoint}: "
            + ", ".join(
                f"{comparison} {row.jaccard:.2f} ({row.shared:.0f} of {row.n_causal:.0f})"
                for comparison, row in rows.iterrows()
            )
        )
    tokens = {a.provenance.get("config", {}).get("ablation_tokens") for a in r.analyses.values()}
    w.figure(
        name,
        fig,
        "pooled Jaccard of causal and activation-based sets of equal size; "
        + "; ".join(parts)
        + f" (causal effects from {', '.join(str(t) for t in sorted(tokens, key=str))} "
        "held-out tokens per language: small sets from little text are noisy).",
    )
