"""Figures of the routing-reorganization study: tables in, matplotlib Figure out.

    from interp import compare, plots
    fig = plots.plot_neuron_counts(compare.counts_table(sels, baseline="base"), log=True)
    plots.save_figure(fig, "figures/run/neuron_counts")        # writes .png and .pdf atomically

| # | function | table it draws (from `interp.compare`) |
|---|----------|----------------------------------------|
| 1 | plot_neuron_counts | counts_table |
| 2 | plot_layer_heatmap | layer_table |
| 3 | plot_cumulative | cumulative_table (+ ks_compare) |
| 4 | plot_reassignment | reassignment |
| 5 | plot_head_layers | head_layer_table |
| 6 | plot_head_overlap | head_overlap_table |
| 7 | plot_dark_diagonal | ablation_matrix / ablation_difference |
| 8 | plot_recall | stack_results (evaluate tables) |
| 9 | plot_specialization_vs_consistency | thesis_table |
| 10 | plot_learning_curves | `LearningCurve.frame()` per checkpoint |
| 11 | plot_exposure_accuracy | `interp.evaluate.effects.exposure_accuracy` |
| 12 | plot_script_classes | script_class_table |
| 13 | plot_causal_overlap | causal_overlap_table |
| 14-18 | plot_curves | the representation tables (alignment, lens, patching, steering, fallback) |

Every function builds a `matplotlib.figure.Figure` directly (no pyplot, nothing global), so
it works the same in notebooks, batch runs and tests. Names load on first use: importing
this package does not import matplotlib.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "representations": ["plot_curves"],
    "style": [
        "save_figure",
        "checkpoint_colors",
        "language_color",
        "language_marker",
        "language_label",
    ],
    "neurons": [
        "plot_neuron_counts",
        "plot_layer_heatmap",
        "plot_script_classes",
        "plot_cumulative",
        "plot_reassignment",
    ],
    "heads": [
        "plot_head_layers",
        "plot_head_overlap",
        "plot_dark_diagonal",
        "plot_causal_overlap",
    ],
    "recall": ["plot_recall"],
    "thesis": ["plot_specialization_vs_consistency"],
    "training": ["plot_learning_curves", "plot_exposure_accuracy"],
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
