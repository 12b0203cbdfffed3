"""Activation statistics per language: streaming accumulators fed by three backends.

Backends (torch forward hooks, TransformerLens, nnsight) only deliver tensors; accumulators
(firing counts, per-sequence-chunk counts, mean activations, head-output norms) only consume
them, so any backend feeds any accumulator and all give the same statistics.

Names load lazily, so `import interp.activations` does not import torch.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "Accumulator": "accumulators",
    "BatchInfo": "accumulators",
    "FiringCounts": "accumulators",
    "SequenceFiringCounts": "accumulators",
    "MeanActivation": "accumulators",
    "HeadNorms": "accumulators",
    "for_model": "accumulators",
    "load_accumulator": "accumulators",
    "Backend": "backends",
    "TorchHooksBackend": "backends",
    "TransformerLensBackend": "backends",
    "NNsightBackend": "backends",
    "BACKENDS": "backends",
    "make_backend": "backends",
    "position_ids_from_mask": "backends",
    "collect": "collector",
    "collect_statistics": "collector",
    "as_language_data": "collector",
    "distributed_shard": "collector",
    "LanguageData": "collector",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
