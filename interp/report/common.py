"""What every part of the report shares: the `Report` record, the writer that saves figures,
tables and the index, the wording of readings, and the checks on its inputs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interp.errors import DataError
from interp.io import atomic_write_bytes, atomic_write_text

ABSOLUTE = "absolute"
NULL_FDR = "null-fdr"
# scorers without a budget, whose counts can rise or fall: scorer -> (its figure 1, its label,
# its summary.csv column, whether analyses may lack it without a word in the index)
BUDGET_FREE = {
    ABSOLUTE: (
        "01_neuron_counts_absolute",
        "absolute-criterion",
        "specific_neurons_absolute",
        False,
    ),
    NULL_FDR: (
        "01_neuron_counts_null_fdr",
        "null-fdr (FDR 5%, 2-fold)",
        "specific_neurons_null_fdr",
        True,
    ),
}


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


def _bootstrap_rows(boot: Any) -> pd.DataFrame | None:
    """The per-language table (language incl. "all", observed, lo, hi) of a bootstrap."""
    frame = getattr(boot, "per_language", None)
    return frame if isinstance(frame, pd.DataFrame) else None


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


def _missing_scorer(analyses: Mapping[str, Any], scorer: str) -> str:
    missing = [n for n, a in analyses.items() if scorer not in a.neurons]
    return f"scorer {scorer!r} not run for {', '.join(missing)} (AnalysisConfig.scorers)"


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


@dataclass
class ReportInputs:
    """What the report's steps read, for checkpoints in report order (`analyses`:
    checkpoint -> `interp.analysis.Analysis`; `evaluations`: checkpoint -> evaluation table).
    `effects`, `power` and `summary` are filled by the steps that make them, for the ones
    after; `warnings` collects what the steps find."""

    analyses: dict[str, Any]
    evaluations: dict[str, pd.DataFrame]
    baseline: str
    scorer: str
    scores: dict[str, pd.DataFrame] | None = None
    exposure: pd.DataFrame | None = None
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    n_boot: int = 1000
    representations: dict[str, Any] = field(default_factory=dict)  # checkpoint -> Representations
    effects: pd.DataFrame | None = None
    power: str | None = None
    summary: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.analyses)

    @property
    def tuned(self) -> list[str]:
        return [n for n in self.analyses if n != self.baseline]

    def neurons_of(self, scorer: str) -> dict[str, Any] | None:
        """checkpoint -> that scorer's selection, or None when some checkpoint lacks it."""
        if any(scorer not in a.neurons for a in self.analyses.values()):
            return None
        return {n: a.neurons[scorer] for n, a in self.analyses.items()}
