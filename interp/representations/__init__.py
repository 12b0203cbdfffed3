"""What the residual stream holds across languages: alignment with English, the logit lens,
cross-lingual patching, steering with language neurons.

    from interp.representations import iter_residuals, measure_alignment, logit_lens
    for batch in iter_residuals(model, tokenizer, texts, position="last"):
        batch.index, batch.vectors          # [b], [b, layers + 1, hidden] (0 = embeddings)
    base = measure_alignment(model, tokenizer, facts, ["en", "de"], by=exposure_classes)
    base.table                              # language, layer, metric, group, value, lo, hi, n
    compare_alignment(base, tuned)          # paired change per (language, layer)
    lens = logit_lens(model, tokenizer, facts, ["en", "de"])
    lens.table                              # p / rank of the English and the L answer per layer
    cross_lingual_patching(model, tokenizer, facts, languages=["en", "de"]).table
    steering_sweep(...).table; fallback_curve(...).table      # language neurons, steered / zeroed
    represent(checkpoint, facts, analysis=analysis)           # all of them, cached per checkpoint

Names load on first use (module `__getattr__`), so importing this package costs nothing.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "residual": [
        "POSITIONS",
        "ResidualBatch",
        "final_norm",
        "iter_residuals",
        "num_residuals",
        "residuals",
        "unembed",
    ],
    "alignment": [
        "ALIGNMENT_COLUMNS",
        "COMPARE_COLUMNS",
        "Alignment",
        "FactVectors",
        "align",
        "bootstrap_weights",
        "cka_replicates",
        "compare_alignment",
        "fact_texts",
        "fact_vectors",
        "item_groups",
        "linear_cka",
        "measure_alignment",
        "retrieval_hits",
        "vectors_from_inputs",
    ],
    "lens": [
        "COMPARE_LENS_COLUMNS",
        "LENS_COLUMNS",
        "LENS_METRICS",
        "LogitLens",
        "answer_tokens",
        "compare_lens",
        "decode",
        "lens_table",
        "logit_lens",
    ],
    "patching": [
        "PATCHING_COLUMNS",
        "PATCHING_METRICS",
        "PatchingResult",
        "ResidualPatch",
        "capture_residual",
        "cross_lingual_patching",
        "patch_residual",
        "summarize_patching",
    ],
    "steering": [
        "FallbackResult",
        "NeuronVector",
        "SteeringResult",
        "add_to_neurons",
        "char_script",
        "fallback_curve",
        "greedy_generate",
        "language_vector",
        "steering_sweep",
        "text_script",
    ],
    "run": [
        "ANALYSES",
        "RepresentationConfig",
        "Representations",
        "load_representations",
        "represent",
    ],
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
