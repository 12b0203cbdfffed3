"""Figures 14-18: alignment with English per layer, the logit lens, cross-lingual patching,
steering with language neurons and the fallback curve, per checkpoint, each with a computed
reading. They read the checkpoints' `Representations` (interp.representations.run)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from interp.report.common import ReportInputs, _Writer

ALL = "all"  # the alignment / lens group of every fact


def _stacked(r: ReportInputs, name: str) -> pd.DataFrame | None:
    """The `name` table of every checkpoint's representations, with a checkpoint column;
    None when any checkpoint lacks it."""
    reps = r.representations
    if not reps or any(name not in rep.tables for rep in reps.values()):
        return None
    return pd.concat(
        [rep.tables[name].assign(checkpoint=c) for c, rep in reps.items()], ignore_index=True
    )


def _skip_missing(w: _Writer, r: ReportInputs, figure: str, name: str) -> None:
    """Say why a figure is missing, unless no checkpoint had representation analyses."""
    if not r.representations:
        return
    missing = [c for c, rep in r.representations.items() if name not in rep.tables]
    reasons = {rep.provenance.get("skipped", {}).get(name) for rep in r.representations.values()}
    reason = next((x for x in reasons if x), None)
    w.skip(figure, f"no {name} table for {', '.join(missing)}" + (f": {reason}" if reason else ""))


def _mean_over_languages(table: pd.DataFrame, x: str, metric: str) -> pd.DataFrame:
    rows = table[table["metric"] == metric]
    return rows.groupby(["checkpoint", x], sort=False)["value"].mean().reset_index()


def _peak_text(table: pd.DataFrame, x: str, metric: str, fmt: Callable[[float], str]) -> str:
    """Per checkpoint: where the mean over languages peaks, and its value there."""
    means = _mean_over_languages(table, x, metric)
    parts = []
    for checkpoint, rows in means.groupby("checkpoint", sort=False):
        best = rows.loc[rows["value"].idxmax()]
        parts.append(f"{checkpoint} {fmt(best['value'])} at {x} {best[x]:g}")
    return ", ".join(parts)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def draw_alignment(w: _Writer, r: ReportInputs) -> None:
    figure, table = "14_alignment", _stacked(r, "alignment")
    if table is None:
        return _skip_missing(w, r, figure, "alignment")
    table = table[table["group"] == ALL]
    w.table("alignment", table)
    from interp import plots

    fig = plots.plot_curves(
        table,
        x="layer",
        rows=[("retrieval", "retrieval accuracy"), ("cka", "linear CKA with English")],
        title="Cross-lingual alignment with English per layer (facts' statements)",
        ylim=(0, 1),
    )
    chance = table.loc[table["metric"] == "retrieval", "chance"].mean()
    reading = (
        "retrieval of the same fact's English representation (mean over languages; chance "
        f"{_pct(chance)}): peak {_peak_text(table, 'layer', 'retrieval', _pct)}; linear CKA "
        f"peak {_peak_text(table, 'layer', 'cka', lambda v: f'{v:.2f}')}."
    )
    w.figure(figure, fig, reading)


def draw_lens(w: _Writer, r: ReportInputs) -> None:
    figure, table = "15_logit_lens", _stacked(r, "lens")
    if table is None:
        return _skip_missing(w, r, figure, "lens")
    table = table[(table["group"] == ALL) & (table["language"] != "en")]
    w.table("logit_lens", table)
    from interp import plots

    fig = plots.plot_curves(
        table,
        x="layer",
        rows=[
            ("p_english_answer", "p(English answer)"),
            ("p_language_answer", "p(answer in L)"),
        ],
        title="Logit lens on L's questions: the answer's first token, in English and in L",
    )
    means = {
        metric: _mean_over_languages(table, "layer", metric)
        for metric in ("p_english_answer", "p_language_answer")
    }
    parts = []
    for checkpoint in dict.fromkeys(table["checkpoint"]):
        en = means["p_english_answer"][means["p_english_answer"]["checkpoint"] == checkpoint]
        own = means["p_language_answer"][means["p_language_answer"]["checkpoint"] == checkpoint]
        ahead = en["layer"][en["value"].to_numpy() > own["value"].to_numpy()].tolist()
        last = int(en["layer"].max())
        parts.append(
            f"{checkpoint}: at the last layer p(English answer) {en['value'].iloc[-1]:.3f} vs "
            f"p(L answer) {own['value'].iloc[-1]:.3f}; English ahead at layers "
            f"{', '.join(str(int(x)) for x in ahead) if ahead else 'none'} of 0-{last}"
        )
    w.figure(figure, fig, "mean over the languages but English; " + "; ".join(parts) + ".")


def draw_patching(w: _Writer, r: ReportInputs) -> None:
    figure, table = "16_patching", _stacked(r, "patching")
    if table is None:
        return _skip_missing(w, r, figure, "patching")
    table = table[table["language"] != "en"]
    w.table("patching", table)
    from interp import plots

    fig = plots.plot_curves(
        table,
        x="layer",
        rows=[
            ("delta_log_likelihood", "change in the correct option's log-likelihood"),
            ("accuracy_delta", "change in accuracy"),
        ],
        title="English residual at the last prompt token patched into L's prompt",
    )
    reading = (
        "mean over languages of the change in the correct option's log-likelihood when the "
        "English prompt's residual replaces L's after a layer: largest "
        f"{_peak_text(table, 'layer', 'delta_log_likelihood', lambda v: f'{v:+.3f}')}; "
        f"accuracy change largest {_peak_text(table, 'layer', 'accuracy_delta', _pct)}."
    )
    w.figure(figure, fig, reading)


def _long(table: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """Wide (metric, metric_lo, metric_hi columns) to long (metric, value, lo, hi)."""
    frames = [
        table[keys].assign(
            metric=m, value=table[m], lo=table.get(f"{m}_lo"), hi=table.get(f"{m}_hi")
        )
        for m in metrics
    ]
    return pd.concat(frames, ignore_index=True)


def draw_steering(w: _Writer, r: ReportInputs) -> None:
    figure, table = "17_steering", _stacked(r, "steering")
    if table is None:
        return _skip_missing(w, r, figure, "steering")
    w.table("steering", table)
    long = _long(table, ["checkpoint", "target", "strength"], ["script_share", "accuracy"])
    from interp import plots

    fig = plots.plot_curves(
        long,
        x="strength",
        line="target",
        rows=[("script_share", "generated tokens in X's script"), ("accuracy", "accuracy")],
        title="Steering English answers with language X's neurons (added mean activation)",
        xlabel="strength (x X's mean activation)",
    )
    parts = []
    for checkpoint, rows in table.groupby("checkpoint", sort=False):
        low, high = rows["strength"].min(), rows["strength"].max()
        share = rows.groupby("strength")["script_share"].mean()
        accuracy = rows.groupby("strength")["accuracy"].mean()
        parts.append(
            f"{checkpoint}: X's script {_pct(share[low])} -> {_pct(share[high])}, accuracy "
            f"{_pct(accuracy[low])} -> {_pct(accuracy[high])} (strength {low:g} -> {high:g})"
        )
    w.figure(figure, fig, "mean over targets X; " + "; ".join(parts) + ".")


def draw_fallback(w: _Writer, r: ReportInputs) -> None:
    figure, table = "18_fallback", _stacked(r, "fallback")
    if table is None:
        return _skip_missing(w, r, figure, "fallback")
    table = table[table["control"] == "selected"]
    w.table("fallback", table)
    long = _long(
        table,
        ["checkpoint", "language", "fraction"],
        ["accuracy", "script_share", "fallback_share"],
    )
    from interp import plots

    fig = plots.plot_curves(
        long,
        x="fraction",
        rows=[
            ("accuracy", "accuracy"),
            ("script_share", "generations in L's script"),
            ("fallback_share", "generations in Latin script"),
        ],
        title="Zeroing a growing share of L's specific neurons (most specific first)",
        xlabel="share of L's neurons zeroed",
    )
    parts = []
    for checkpoint, rows in table.groupby("checkpoint", sort=False):
        by = rows.groupby("fraction")[["accuracy", "script_share"]].mean()
        first, last = by.index.min(), by.index.max()
        parts.append(
            f"{checkpoint}: accuracy {_pct(by.loc[first, 'accuracy'])} -> "
            f"{_pct(by.loc[last, 'accuracy'])}, own script "
            f"{_pct(by.loc[first, 'script_share'])} -> {_pct(by.loc[last, 'script_share'])}"
        )
    w.figure(
        figure,
        fig,
        "mean over languages, none vs all of their neurons zeroed; " + "; ".join(parts) + ".",
    )
