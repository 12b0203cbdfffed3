"""Language specialization of MLP neurons and attention heads, from counts and importances.

    from interp.specialization import NeuronCounts, score, scorer_names, top_heads
    sel = score(NeuronCounts(counts, tokens, languages), "lape-paper")  # or "lape-tang", "absolute"
    tests = language_tests(seqs)                # per-neuron F tests against shuffled labels
    sel = NullFdr().select_sequences(seqs)      # significant at an FDR *and* specific
    sel.table; sel.per_language(); sel.per_layer(); sel.cumulative(); sel.sets()
    heads = top_heads(importance, languages)                           # [languages, layers, heads]
    heads.overlap(); heads.general(); heads.layer_share()

Names load on first use (module `__getattr__`), so importing this package costs nothing.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "lahis": ["LahisResult", "lahis"],
    "ablation": [
        "DarkDiagonal",
        "ablate_heads",
        "ablate_neurons",
        "dark_diagonal",
        "language_loss",
        "reference_dark_diagonal",
    ],
    "lape": [
        "SCORERS",
        "Absolute",
        "LapePaper",
        "LapeTang",
        "NeuronCounts",
        "NeuronScorer",
        "NeuronSelection",
        "lape_entropy",
        "make_scorer",
        "register_scorer",
        "score",
        "scorer_names",
        "selection_budget",
    ],
    "stats": [
        "BootstrapResult",
        "PermutationResult",
        "SequenceCounts",
        "bootstrap",
        "ks_distance",
        "ks_table",
        "permutation_null",
    ],
    "heads": ["HeadSelection", "importance_table", "top_head_count", "top_heads"],
    "nulltest": [
        "AbsoluteCalibration",
        "BudgetNull",
        "LayerStream",
        "NeuronTests",
        "NullFdr",
        "benjamini_hochberg",
        "budget_null",
        "calibrate_absolute",
        "calibrated_absolute",
        "language_tests",
    ],
    "reference": [
        "PAPER_LANGUAGES",
        "find_reference_dir",
        "lahis_checkpoints",
        "lape_checkpoints",
        "load_all_lape",
        "load_dark_diagonal",
        "load_lahis",
        "load_lahis_meta",
        "load_lape",
        "load_lape_meta",
    ],
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
