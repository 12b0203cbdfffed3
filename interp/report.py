"""Every figure of the study, its tables and an index with one computed reading per figure.

    from interp.report import write_report, write_reference_report
    report = write_report({"base": a_base, "grpo": a_grpo}, {"base": ev_base, "grpo": ev_grpo},
                          "figures/default")
    report.readings["01_neuron_counts_absolute"]   # "grpo vs base: ... 412 -> 371 (-10%) ..."
    report.skipped                                 # {"05_head_layers": "no LAHIS ..."}

`write_report` composes `interp.compare` (tables) and `interp.plots` (figures 1-9) over the
per-checkpoint `Analysis` objects and evaluation tables; `write_reference_report` draws the
paper's published 7B results through the same figures. Both write `<out>/<NN_name>.png/.pdf`,
`<out>/tables/*.csv` and `<out>/index.md`; a figure whose input is missing is listed as
skipped with the reason instead of failing the run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interp import compare
from interp.errors import ConfigError, DataError
from interp.io import atomic_write_bytes, atomic_write_text

__all__ = ["Report", "write_reference_report", "write_report"]

ABSOLUTE = "absolute"
GROUPS = ("trained-high", "trained-low", "unseen")


@dataclass
class Report:
    """What a report run wrote: figure files and readings by figure name, skipped figures
    with the reason, table files, the summary table and the index."""

    out_dir: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)
    readings: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Path] = field(default_factory=dict)
    summary: pd.DataFrame | None = None
    index: Path | None = None
    warnings: list[str] = field(default_factory=list)  # also listed at the top of index.md

    def moved_to(self, out_dir: str | Path) -> Report:
        """The same report after its folder was renamed to `out_dir`."""
        new = Path(out_dir)

        def move(path: Path) -> Path:
            return new / Path(path).relative_to(self.out_dir)

        return Report(
            out_dir=new,
            figures={k: [move(p) for p in v] for k, v in self.figures.items()},
            readings=dict(self.readings),
            skipped=dict(self.skipped),
            tables={k: move(v) for k, v in self.tables.items()},
            summary=self.summary,
            index=move(self.index) if self.index is not None else None,
            warnings=list(self.warnings),
        )


# ---------------------------------------------------------------------------------------------
# wording of readings


def _slug(name: str) -> str:
    """A file-name-safe form of a checkpoint name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "x"


def _finite(*values: Any) -> bool:
    try:
        return all(np.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def verdict(a_lo: float, a_hi: float, b_lo: float, b_hi: float) -> str | None:
    """ "clear increase" / "clear decrease" when the two intervals are disjoint, "no clear
    change" when they overlap, None without intervals."""
    if not _finite(a_lo, a_hi, b_lo, b_hi):
        return None
    if b_lo > a_hi:
        return "clear increase"
    if b_hi < a_lo:
        return "clear decrease"
    return "no clear change"


def _ci(lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    return f"95% CI {fmt(lo)}\u2013{fmt(hi)}" if _finite(lo, hi) else ""


def _count(value: float) -> str:
    value = float(value)
    return f"{value:,.0f}" if abs(value - round(value)) < 0.05 else f"{value:,.1f}"


def _pct(value: float) -> str:
    return f"{100 * float(value):.1f}%"


def _rel(a: float, b: float) -> str:
    return f"{(b - a) / a:+.0%}" if a else "n/a"


def _change_text(
    label: str,
    a: tuple[float, float, float],
    b: tuple[float, float, float],
    fmt: Callable[[float], str],
    *,
    relative: bool = False,
    paired: str | None = None,
) -> str:
    """'label a -> b (+x%, 95% CI ... vs ...; no clear change)'; with `paired` (a
    `_paired_change` text) that verdict replaces the comparison of the two intervals."""
    (va, la, ha), (vb, lb, hb) = a, b
    parts = []
    if relative:
        parts.append(_rel(va, vb))
    if paired:
        parts.append(paired)
    else:
        ci_a, ci_b = _ci(la, ha, fmt), _ci(lb, hb, fmt)
        if ci_a and ci_b:
            parts.append(f"{ci_a} vs {fmt(lb)}\u2013{fmt(hb)}")
        word = verdict(la, ha, lb, hb)
        if word:
            parts.append(word)
    extra = f" ({'; '.join(parts)})" if parts else ""
    return f"{label} {fmt(va)} \u2192 {fmt(vb)}{extra}"


def _paired_change(
    effects: pd.DataFrame | None, checkpoint: str, metric: str, group: str
) -> str | None:
    """'paired change -4.9 [-6.5, -3.3] points; clear decrease' from the regime-effects
    table (a paired bootstrap over facts: tighter than comparing two intervals), or None."""
    if effects is None or effects.empty:
        return None
    rows = effects[
        (effects["checkpoint"] == checkpoint)
        & (effects["metric"] == metric)
        & (effects["group"] == group)
    ]
    if rows.empty:
        return None
    delta, lo, hi = (float(rows.iloc[0][c]) for c in ("delta", "ci_low", "ci_high"))
    if not _finite(delta, lo, hi):
        return None
    word = "clear increase" if lo > 0 else "clear decrease" if hi < 0 else "no clear change"
    return f"paired change {100 * delta:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] points; {word}"


# ---------------------------------------------------------------------------------------------
# writing


class _Writer:
    """Saves figures and tables into one folder and records what was written or skipped."""

    def __init__(self, out_dir: str | Path, formats: Sequence[str], dpi: int) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "tables").mkdir(exist_ok=True)
        self.formats = tuple(formats)
        self.dpi = dpi
        self.report = Report(out_dir=self.out_dir)

    def figure(self, name: str, fig: Any, reading: str) -> None:
        # (imported from its module: nnsight gives every object a `save` attribute)
        from interp.plots.style import save_figure

        paths = save_figure(fig, self.out_dir / name, dpi=self.dpi, formats=self.formats)
        fig.clear()  # frees the renderer's memory in long runs
        self.report.figures[name] = [Path(p) for p in paths]
        self.report.readings[name] = reading

    def skip(self, name: str, reason: str) -> None:
        self.report.skipped[name] = reason

    def table(self, name: str, frame: pd.DataFrame, *, index: bool = False) -> None:
        path = self.out_dir / "tables" / f"{name}.csv"
        atomic_write_bytes(path, frame.to_csv(index=index).encode("utf-8"))
        self.report.tables[name] = path

    def index(self, title: str, preamble: Sequence[str]) -> Report:
        lines = [f"# {title}", "", *preamble, "", "## Figures", ""]
        for name, paths in self.report.figures.items():
            links = ", ".join(f"[{p.suffix[1:]}]({p.name})" for p in paths)
            lines.append(f"- **{name}** ({links}): {self.report.readings[name]}")
        if self.report.skipped:
            lines += ["", "## Skipped", ""]
            lines += [f"- **{name}**: {why}" for name, why in self.report.skipped.items()]
        if self.report.tables:
            lines += ["", "## Tables", ""]
            lines += [f"- [{p.name}](tables/{p.name})" for p in sorted(self.report.tables.values())]
        self.report.index = atomic_write_text(self.out_dir / "index.md", "\n".join(lines) + "\n")
        return self.report


# ---------------------------------------------------------------------------------------------
# inputs of one checkpoint


def _bootstrap_rows(boot: Any) -> pd.DataFrame | None:
    """The per-language table (language incl. "all", observed, lo, hi) of a bootstrap."""
    frame = getattr(boot, "per_language", None)
    return frame if isinstance(frame, pd.DataFrame) else None


def _for_counts(analysis: Any, scorer: str) -> Any:
    """What `compare.counts_table` takes for one checkpoint: the BootstrapResult (paired delta
    intervals), its per-language table when reloaded from disk, or the bare selection."""
    boot = analysis.bootstrap.get(scorer)
    if boot is not None and hasattr(boot, "observed") and hasattr(boot, "samples"):
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


def _metric(table: pd.DataFrame | None, metric: str, language: str = "all"):
    """(value, ci_low, ci_high) of one evaluation row, NaNs when absent."""
    nan = (float("nan"),) * 3
    if table is None:
        return nan
    rows = table[(table["metric"] == metric) & (table["language"] == language)]
    if "other" in rows:
        rows = rows[rows["other"].fillna("").astype(str) == ""]
    if rows.empty:
        return nan
    row = rows.iloc[0]
    return tuple(float(row.get(c, np.nan)) for c in ("value", "ci_low", "ci_high"))


def _mean_overlap(selection: Any) -> float:
    """Mean top-head overlap over ordered pairs of different languages."""
    matrix = selection.overlap().to_numpy(dtype=float)
    return float(matrix[~np.eye(len(matrix), dtype=bool)].mean())


def _check_shapes(analyses: Mapping[str, Any]) -> None:
    """Refuse analyses of different architectures, naming both (provenance "shape")."""
    shapes = {n: a.provenance.get("shape") for n, a in analyses.items() if a.provenance}
    shapes = {n: s for n, s in shapes.items() if s}
    names = list(shapes)
    for name in names[1:]:
        if shapes[name] != shapes[names[0]]:
            raise DataError(
                f"checkpoints {names[0]!r} and {name!r} have different model shapes: "
                f"{shapes[names[0]]} vs {shapes[name]}. Fix: compare checkpoints of the same "
                "model architecture"
            )
    _warn_on_corpus_mismatch(analyses)


def _warn_on_corpus_mismatch(analyses: Mapping[str, Any]) -> None:
    """Analyses measured on different text still compare, but the differences may come from
    the text, not the model: say which ones differ (a warning, not an error)."""
    import warnings

    corpora = {
        n: a.provenance.get("corpus_fingerprint") for n, a in analyses.items() if a.provenance
    }
    corpora = {n: c for n, c in corpora.items() if c}
    groups: dict[str, list[str]] = {}
    for name, corpus in corpora.items():
        groups.setdefault(corpus, []).append(name)
    if len(groups) > 1:
        described = "; ".join(
            f"{', '.join(names)} on corpus {key}" for key, names in groups.items()
        )
        warnings.warn(
            f"checkpoints were analysed on different corpora ({described}): differences between "
            "them mix model and text. Fix: analyse all of them on the same corpus and token budget",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------------------------
# figure by figure (shared by the organism report and the reference report)


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


def _fig_head_overlap(w: _Writer, name: str, heads: Mapping[str, Any], baseline: str | None, title):
    from interp import plots

    table = compare.head_overlap_table(heads, baseline)
    w.table(name.split("_", 1)[1], table)
    fig = plots.plot_head_overlap(table, baseline=baseline, title=title)
    overlap = {c: _mean_overlap(s) for c, s in heads.items()}
    k = next(iter(heads.values())).k
    if baseline is not None and len(heads) > 1:
        parts = [f"{baseline} {overlap[baseline]:.2f}"] + [
            f"{c} {overlap[c]:.2f} ({overlap[c] - overlap[baseline]:+.2f})"
            for c in heads
            if c != baseline
        ]
    else:
        parts = [f"{c} {v:.2f}" for c, v in overlap.items()]
    reading = f"mean top-{k} head overlap between languages: " + ", ".join(parts)
    reading += " (higher = heads shared across languages, less language-specific)."
    w.figure(name, fig, reading)


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


# ---------------------------------------------------------------------------------------------
# the organism (or any set of analyses) report


def write_report(
    analyses: Mapping[str, Any],
    evaluations: Mapping[str, pd.DataFrame] | None,
    out_dir: str | Path,
    *,
    baseline: str = "base",
    scorer: str = "lape-paper",
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 150,
    scores: Mapping[str, pd.DataFrame] | None = None,
    exposure: pd.DataFrame | None = None,
    curves: Mapping[str, pd.DataFrame] | None = None,
    warnings: Sequence[str] = (),
    n_boot: int = 1000,
) -> Report:
    """Figures 1-11, their tables, `summary.csv` and `index.md` for checkpoints in the given
    order (`analyses`: checkpoint -> `interp.analysis.Analysis`; `evaluations`: checkpoint ->
    `interp.evaluate.metrics.evaluate` table).

    `scores` (checkpoint -> scores table) gives `tables/regime_effects.csv`: every
    checkpoint's change from the baseline with paired-bootstrap intervals over facts
    (`n_boot` resamples; with `exposure`, the item classes, also by exposure) and the minimum
    detectable difference. `curves` (checkpoint -> `LearningCurve.frame()`) gives figure 10;
    exposure rows in the evaluation tables give figure 11 and `tables/exposure_accuracy.csv`.
    `warnings` (and those found here: curves that did not improve, too little power) are
    listed at the top of `index.md`.

    Raises DataError when the analyses are not comparable (model shape, languages) and
    ConfigError when `baseline` is not among them; a figure whose input is missing (no LAHIS,
    no ablation, no evaluation, a scorer not run) is skipped, with the reason in the report.
    """
    analyses = dict(analyses)
    evaluations = dict(evaluations or {})
    if not analyses:
        raise DataError("write_report: no analyses. Fix: pass {checkpoint: Analysis}")
    if baseline not in analyses:
        raise ConfigError(
            f"baseline {baseline!r} is not among the checkpoints {list(analyses)}. Fix: pass "
            "baseline=<one of these>"
        )
    _check_shapes(analyses)
    w = _Writer(out_dir, formats, dpi)
    names = list(analyses)
    tuned = [n for n in names if n != baseline]

    def neurons_of(which: str) -> dict[str, Any] | None:
        missing = [n for n in names if which not in analyses[n].neurons]
        return None if missing else {n: analyses[n].neurons[which] for n in names}

    lape = neurons_of(scorer)
    absolute = neurons_of(ABSOLUTE)
    for sels in (lape, absolute):
        if sels is not None:
            compare.check_comparable(sels)  # shapes and languages, naming both sides

    # 1-4: neurons
    lape_label = scorer
    if lape is None:
        reason = _missing_scorer(analyses, scorer)
        for fig in ("01_neuron_counts", "02_layer_heatmap", "03_cumulative", "04_reassignment"):
            w.skip(fig, reason)
    else:
        items = {n: _for_counts(analyses[n], scorer) for n in names}
        _fig_counts(w, "01_neuron_counts", items, baseline, lape_label)
    if absolute is None:
        w.skip("01_neuron_counts_absolute", _missing_scorer(analyses, ABSOLUTE))
    else:
        items = {n: _for_counts(analyses[n], ABSOLUTE) for n in names}
        _fig_counts(w, "01_neuron_counts_absolute", items, baseline, "absolute-criterion")
        _absolute_reading(w, analyses, baseline)
    if lape is not None:
        _fig_layers(w, "02_layer_heatmap", lape, baseline, scorer)
        _fig_cumulative(w, "03_cumulative", lape, baseline, scorer)
        if not tuned:
            w.skip("04_reassignment", "only one checkpoint: nothing to reassign to")
        for name in tuned:
            _fig_reassignment(
                w, f"04_reassignment_{_slug(name)}", lape[baseline], lape[name], (baseline, name)
            )

    # 5-6: heads
    heads = {n: analyses[n].heads for n in names if analyses[n].heads is not None}
    no_heads = [n for n in names if n not in heads]
    if not heads:
        reason = "no LAHIS head selection in any checkpoint (analysis run with lahis_samples=0)"
        w.skip("05_head_layers", reason)
        w.skip("06_head_overlap", reason)
    else:
        compare.check_comparable(heads)
        note = f" ({', '.join(no_heads)}: no LAHIS)" if no_heads else ""
        _fig_head_layers(
            w, "05_head_layers", heads, "Where each language's top attention heads sit" + note
        )
        _fig_head_overlap(
            w,
            "06_head_overlap",
            heads,
            baseline if baseline in heads else None,
            "Top-head overlap between languages" + note,
        )
        if no_heads:
            w.report.readings["06_head_overlap"] += f" Without LAHIS: {', '.join(no_heads)}."

    # 7: ablations
    for kind in ("neurons", "heads"):
        have = [n for n in names if analyses[n].ablation.get(kind) is not None]
        if not have:
            w.skip(
                f"07_dark_diagonal_{kind}",
                f"no {kind} ablation in any checkpoint (analysis run without held-out text "
                f"or with ablation=False{', or without LAHIS' if kind == 'heads' else ''})",
            )
        what = "top heads" if kind == "heads" else "specific neurons"
        for name in names:
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

    # the regime effects (paired intervals, which the readings of 8 and 9 use) and their power
    found = list(warnings)
    effects, power = None, None
    if scores and baseline in scores and len(scores) > 1:
        effects, power, more = _effects_table(w, scores, exposure, baseline, n_boot)
        found += more

    # 8: recall and consistency
    eval_names = [n for n in names if n in evaluations] + [
        n for n in evaluations if n not in analyses
    ]
    if not eval_names:
        w.skip("08_recall", "no evaluation tables")
    else:
        _fig_recall(w, {n: evaluations[n] for n in eval_names}, baseline, effects)

    # summary and 9
    summary = _summary(analyses, evaluations, scorer)
    w.table("summary", summary)
    summary_path = atomic_write_bytes(
        w.out_dir / "summary.csv", summary.to_csv(index=False).encode("utf-8")
    )
    w.report.tables["summary"] = summary_path
    w.report.summary = summary
    _fig_thesis(w, summary, baseline, effects)

    # 10: learning curves
    found += _fig_curves(w, dict(curves or {}))
    # 11 and the exposure table
    _fig_exposure(w, evaluations, baseline)

    preamble = [
        f"Checkpoints: {', '.join(names)} (baseline {baseline}). Neuron scorer for figures "
        f"2-4: {scorer}; figure 9 uses the specialization index (1 - mean normalised LAPE "
        "entropy of active neurons), which can move either way (a fixed-budget LAPE count "
        "cannot).",
        "Intervals are 95% bootstrap intervals. A change is 'clear' when the paired interval "
        "of the change over facts excludes zero (evaluation measures: "
        "[tables/regime_effects.csv](tables/regime_effects.csv)); elsewhere, when the two "
        "checkpoints' intervals do not overlap (a stricter test).",
        "Per-checkpoint numbers: [summary.csv](summary.csv).",
    ]
    if power is not None:
        preamble.append(power)
    if found:
        preamble += ["", "## Warnings", "", *[f"- {text}" for text in found]]
    w.report.warnings = found
    return w.index("Routing reorganization: figures", preamble)


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


def _missing_scorer(analyses: Mapping[str, Any], scorer: str) -> str:
    missing = [n for n, a in analyses.items() if scorer not in a.neurons]
    return f"scorer {scorer!r} not run for {', '.join(missing)} (AnalysisConfig.scorers)"


def _absolute_reading(w: _Writer, analyses: Mapping[str, Any], baseline: str) -> None:
    """The figure-1 reading of the absolute rule: totals with intervals and a verdict."""
    base = _total(analyses[baseline], ABSOLUTE)
    parts = [
        _change_text(
            f"{name} vs {baseline}: absolute-criterion specific neurons",
            base,
            _total(analysis, ABSOLUTE),
            _count,
            relative=True,
        )
        for name, analysis in analyses.items()
        if name != baseline
    ]
    if parts:
        w.report.readings["01_neuron_counts_absolute"] = "; ".join(parts) + "."


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
        if ABSOLUTE in analysis.neurons:
            value, lo, hi = _total(analysis, ABSOLUTE)
        else:
            value = lo = hi = float("nan")
        row["specific_neurons_absolute"] = value
        row["specific_neurons_absolute_lo"] = lo
        row["specific_neurons_absolute_hi"] = hi
        row["mean_top_head_overlap"] = (
            _mean_overlap(analysis.heads) if analysis.heads is not None else float("nan")
        )
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
# the paper's 7B results


def write_reference_report(
    out_dir: str | Path,
    root: str | Path | None = None,
    *,
    formats: Sequence[str] = ("png", "pdf"),
    dpi: int = 150,
) -> Report:
    """The PolyFact release's 7B results (`interp.specialization.reference`) through the same
    figures: LAPE counts, layers and depth per family (olmo-*, qwen-*), neuron reassignment
    olmo-base -> olmo-grpo, head layers and overlaps (the paper's olmo-base / olmo-sft and the
    recomputed olmo-base / olmo-sft-10k / olmo-grpo) and the dark diagonal of olmo-base."""
    from interp.specialization import reference
    from interp.specialization.heads import top_heads

    root = reference.find_reference_dir(root)
    w = _Writer(out_dir, formats, dpi)
    lape = reference.load_all_lape(root)
    families: dict[str, dict[str, Any]] = {}
    for name, selection in lape.items():
        families.setdefault(name.split("-")[0], {})[name] = selection
    for family, sels in families.items():
        sels = _base_first(sels, f"{family}-base")
        base = next(iter(sels))
        label = f"{family}, LAPE (published)"
        _fig_counts(w, f"01_neuron_counts_{family}", sels, base, label)
        _fig_layers(w, f"02_layer_heatmap_{family}", sels, base, label)
        _fig_cumulative(w, f"03_cumulative_{family}", sels, base, label)
    for base, tuned in (("olmo-base", "olmo-grpo"),):
        if base in lape and tuned in lape:
            _fig_reassignment(
                w, f"04_reassignment_{base}_to_{tuned}", lape[base], lape[tuned], (base, tuned)
            )
        else:
            w.skip(f"04_reassignment_{base}_to_{tuned}", f"{base} or {tuned} not under lape/")

    for recomputed, tag, what in ((False, "paper", "paper"), (True, "recomputed", "recomputed")):
        names = reference.lahis_checkpoints(root, recomputed=recomputed)
        if not names:
            w.skip(
                f"05_head_layers_{tag}", f"no checkpoints under lahis{'-recomputed' * recomputed}/"
            )
            continue
        heads = _base_first(
            {n: top_heads(reference.load_lahis(n, root, recomputed=recomputed)) for n in names},
            "olmo-base",
        )
        base = "olmo-base" if "olmo-base" in heads else None
        _fig_head_layers(
            w,
            f"05_head_layers_{tag}",
            heads,
            f"Where each language's top heads sit (LAHIS, {what})",
        )
        _fig_head_overlap(
            w, f"06_head_overlap_{tag}", heads, base, f"Top-head overlap (LAHIS, {what})"
        )

    dark = sorted(p.stem for p in (root / "dark-diagonal").glob("*.json"))
    if not dark:
        w.skip("07_dark_diagonal", "no files under dark-diagonal/")
    for name in dark:
        table = reference.load_dark_diagonal(name, root)
        _fig_dark(
            w,
            f"07_dark_diagonal_{_slug(name)}",
            table,
            f"{name}: masking language X's top-20 heads",
            value="delta_pct",
        )
    preamble = [
        f"The PolyFact release's published 7B results ({root}), drawn with interp's figures.",
        "LAPE counts are a fixed budget (1% of neurons), so totals match across checkpoints of "
        "a family; only the split over languages and layers can change. No intervals were "
        "published.",
    ]
    return w.index("PolyFact 7B reference results", preamble)


def _stage(name: str) -> int:
    """Training order of a checkpoint name: base, sft, grpo, cpt-grpo, other."""
    words = name.lower().split("-")
    for rank, word in enumerate(("base", "sft", "cpt", "grpo")):
        if word in words:
            return {0: 0, 1: 1, 2: 3, 3: 2}[rank]
    return 4


def _base_first(items: Mapping[str, Any], base: str) -> dict[str, Any]:
    """The base checkpoint first, the rest in training order (then by name)."""
    order = ([base] if base in items else []) + sorted(
        (n for n in items if n != base), key=lambda n: (_stage(n), n)
    )
    return {n: items[n] for n in order}
