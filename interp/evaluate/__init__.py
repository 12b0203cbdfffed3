"""Evaluation: option log-likelihood scoring, then recall and cross-lingual consistency.

`score_options(model, tokenizer, items)` gives a scores table (one row per fact and language);
`evaluate(table)` gives accuracy, group accuracy, total consistency, RankC and answer agreement
with bootstrap intervals; `paired_bootstrap(table_a, table_b)` compares two checkpoints.
Names load on first use, so importing the package stays cheap.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

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

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
