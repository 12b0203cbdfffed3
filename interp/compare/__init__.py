"""Tables that set two or more checkpoints side by side.

Every function takes results already computed per checkpoint (neuron selections, head
selections, ablation matrices, evaluation tables), keyed by checkpoint name, and returns a
tidy pandas table; the figures in `interp.plots` draw these tables. Languages come out in the
paper's order (`interp.languages.ALL`), then any others in the order first seen.

    from interp import compare
    sels = {"base": score(counts_base), "grpo": score(counts_grpo)}
    compare.counts_table(sels, baseline="base")        # per-language counts, intervals, deltas
    compare.jaccard_table(sels["base"], sels["grpo"])  # overlap of each language's set
    compare.reassignment(sels["base"], sels["grpo"])   # base language x fine-tuned language
    compare.ks_compare(sels, baseline="base")          # KS distance of layer distributions

Checkpoints are comparable only when their units are the same (layers x neurons, or layers x
heads) and they cover the same languages; otherwise a `DataError` names both shapes, or the
languages each side lacks.
"""

from interp.compare.ablation import ablation_difference, ablation_matrix, matrix_difference
from interp.compare.checks import MULTI_MODES, NOT_SPECIFIC, check_comparable
from interp.compare.evaluation import (
    metric_deltas,
    paired_deltas,
    specialization_summary,
    stack_results,
    thesis_table,
)
from interp.compare.heads import causal_overlap_table, head_layer_table, head_overlap_table
from interp.compare.neurons import (
    counts_table,
    cumulative_table,
    jaccard,
    jaccard_table,
    ks_compare,
    layer_table,
    reassignment,
    reassignment_summary,
    script_class_table,
)
from interp.languages import language_order

__all__ = [
    "MULTI_MODES",
    "NOT_SPECIFIC",
    "ablation_difference",
    "ablation_matrix",
    "causal_overlap_table",
    "check_comparable",
    "counts_table",
    "cumulative_table",
    "head_layer_table",
    "head_overlap_table",
    "jaccard",
    "jaccard_table",
    "ks_compare",
    "language_order",
    "layer_table",
    "matrix_difference",
    "metric_deltas",
    "paired_deltas",
    "reassignment",
    "reassignment_summary",
    "script_class_table",
    "specialization_summary",
    "stack_results",
    "thesis_table",
]
