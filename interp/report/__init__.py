"""Every figure of the study, its tables and an index with one computed reading per figure.

    from interp.report import write_report, write_reference_report
    report = write_report({"base": a_base, "grpo": a_grpo}, {"base": ev_base, "grpo": ev_grpo},
                          "figures/default")
    report.readings["01_neuron_counts_absolute"]   # "grpo vs base: ... 412 -> 371 (-10%) ..."
    report.skipped                                 # {"05_head_layers": "no LAHIS ..."}

`write_report` runs the steps of `FIGURES` in order, each one entry (its figures, what it
reads, the function that draws them and writes their readings); the steps live by unit:
`neurons` (1-4), `heads` (5-6), `ablation` (7), `evaluation` (8-11, the effects and summary
tables). They compose `interp.compare` (tables) and `interp.plots` (figures, from finished
tables). `write_reference_report` draws the paper's published 7B results through the same
figures. Both write `<out>/<NN_name>.png/.pdf`, `<out>/tables/*.csv` and `<out>/index.md`; a
figure whose input is missing is listed as skipped with the reason instead of failing the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from interp import compare
from interp.errors import ConfigError, DataError
from interp.report import ablation, evaluation, heads, neurons, representations
from interp.report.common import (
    BUDGET_FREE,
    Report,
    ReportInputs,
    _check_shapes,
    _warn_on_corpus_mismatch,
    _Writer,
    verdict,
)
from interp.report.reference import write_reference_report

__all__ = [
    "FIGURES",
    "Figure",
    "Report",
    "ReportInputs",
    "_warn_on_corpus_mismatch",
    "verdict",
    "write_reference_report",
    "write_report",
]


@dataclass(frozen=True)
class Figure:
    """One step of the report: the figures (or tables) it writes, what it reads, and the
    function drawing them with their readings (`draw(writer, inputs)`)."""

    names: str
    inputs: str
    draw: Callable[[_Writer, ReportInputs], None]


# In order: a step may read what an earlier one made (8 and 9 read the paired effects).
FIGURES: tuple[Figure, ...] = (
    Figure(
        "01_neuron_counts, 01_neuron_counts_absolute",
        "neuron selections, bootstraps",
        neurons.draw_counts,
    ),
    Figure(
        "02_layer_heatmap, 03_cumulative, 04_reassignment_*",
        "neuron selections",
        neurons.draw_layers,
    ),
    Figure("05_head_layers, 06_head_overlap", "LAHIS head selections", heads.draw_heads),
    Figure("07_dark_diagonal_*", "ablation tables", ablation.draw_ablations),
    Figure("tables/regime_effects.csv", "per-item scores, exposure", evaluation.draw_effects),
    Figure("08_recall", "evaluation tables, regime effects", evaluation.draw_recall),
    Figure(
        "summary.csv",
        "evaluation tables, specialization index, selections",
        evaluation.draw_summary,
    ),
    Figure("09_specialization_vs_*", "summary, regime effects", evaluation.draw_thesis),
    Figure("10_learning_curves", "learning curves", evaluation.draw_curves),
    Figure("11_exposure_accuracy", "evaluation tables by exposure", evaluation.draw_exposure),
    Figure("12_script_vs_language", "null-fdr script classes", neurons.draw_script_classes),
    Figure("13_causal_vs_activation", "causal sets and their overlaps", ablation.draw_causal),
    Figure("14_alignment", "representations: alignment", representations.draw_alignment),
    Figure("15_logit_lens", "representations: lens", representations.draw_lens),
    Figure("16_patching", "representations: patching", representations.draw_patching),
    Figure("17_steering", "representations: steering", representations.draw_steering),
    Figure("18_fallback", "representations: fallback", representations.draw_fallback),
)


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
    representations: Mapping[str, Any] | None = None,
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
    inputs = ReportInputs(
        analyses=dict(analyses),
        evaluations=dict(evaluations or {}),
        baseline=baseline,
        scorer=scorer,
        scores=dict(scores) if scores else None,
        exposure=exposure,
        curves=dict(curves or {}),
        n_boot=n_boot,
        warnings=list(warnings),
        representations=dict(representations or {}),
    )
    _check_inputs(inputs)
    w = _Writer(out_dir, formats, dpi)
    for step in FIGURES:
        step.draw(w, inputs)
    w.report.warnings = inputs.warnings
    return w.index("Routing reorganization: figures", _preamble(inputs))


def _check_inputs(r: ReportInputs) -> None:
    if not r.analyses:
        raise DataError("write_report: no analyses. Fix: pass {checkpoint: Analysis}")
    if r.baseline not in r.analyses:
        raise ConfigError(
            f"baseline {r.baseline!r} is not among the checkpoints {r.names}. Fix: pass "
            "baseline=<one of these>"
        )
    _check_shapes(r.analyses)
    for scorer in (r.scorer, *BUDGET_FREE):
        selections = r.neurons_of(scorer)
        if selections is not None:
            compare.check_comparable(selections)  # shapes and languages, naming both sides


def _preamble(r: ReportInputs) -> list[str]:
    lines = [
        f"Checkpoints: {', '.join(r.names)} (baseline {r.baseline}). Neuron scorer for figures "
        f"2-4: {r.scorer}; figure 9 uses the specialization index (1 - mean normalised LAPE "
        "entropy of active neurons), which can move either way (a fixed-budget LAPE count "
        "cannot).",
        "Intervals are 95% bootstrap intervals. A change is 'clear' when the paired interval "
        "of the change over facts excludes zero (evaluation measures: "
        "[tables/regime_effects.csv](tables/regime_effects.csv)); elsewhere, when the two "
        "checkpoints' intervals do not overlap (a stricter test).",
        "Per-checkpoint numbers: [summary.csv](summary.csv).",
    ]
    if r.power is not None:
        lines.append(r.power)
    if r.warnings:
        lines += ["", "## Warnings", "", *[f"- {text}" for text in r.warnings]]
    return lines
