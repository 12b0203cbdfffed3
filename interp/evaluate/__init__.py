"""Evaluation: option log-likelihood scoring, then recall and cross-lingual consistency.

`score_options(model, tokenizer, items)` gives a scores table (one row per fact and language);
`evaluate(table)` gives accuracy, group accuracy, total consistency, RankC and answer agreement
with bootstrap intervals; `paired_bootstrap(table_a, table_b)` compares two checkpoints.
Names load on first use, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "metrics": (
        "METRICS",
        "accuracy",
        "agreement",
        "check_scores_table",
        "evaluate",
        "fact_arrays",
        "group_accuracy",
        "pair_matrix",
        "paired_bootstrap",
        "rankc",
        "rankc_weights",
        "total_consistency",
    ),
    "scoring": ("PROMPT_TEMPLATE", "encode_options", "score_options"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
