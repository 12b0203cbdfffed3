"""Language specialization of MLP neurons and attention heads, from counts and importances.

    from interp.specialization import NeuronCounts, score, scorer_names, top_heads
    sel = score(NeuronCounts(counts, tokens, languages), "lape-paper")  # or "lape-tang", "absolute"
    sel.table; sel.per_language(); sel.per_layer(); sel.cumulative(); sel.sets()
    heads = top_heads(importance, languages)                           # [languages, layers, heads]
    heads.overlap(); heads.general(); heads.layer_share()

Names load on first use (module `__getattr__`), so importing this package costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
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
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
