"""Models: loading any HF causal LM, one declarative adapter per family, tiny offline models.

- `adapters`: where each family (qwen2, olmo2, llama, ...) keeps its layers, gate/up/down
  projections and attention output projection; sizes read from the config.
- `loading`: `load_model(path_or_id)` -> (model, tokenizer), with device/dtype defaults.
- `tiny`: a locally trained byte-level BPE tokenizer and small random models, offline.

Names load lazily, so `import interp.models` does not import torch or transformers.
"""

from __future__ import annotations

from interp._lazy import lazy_exports

_EXPORTS = {
    "FamilyAdapter": "adapters",
    "ModelShape": "adapters",
    "ADAPTERS": "adapters",
    "register": "adapters",
    "adapter_for": "adapters",
    "shape": "adapters",
    "layers": "adapters",
    "gate_proj": "adapters",
    "up_proj": "adapters",
    "down_proj": "adapters",
    "o_proj": "adapters",
    "lora_target_modules": "adapters",
    "load_model": "loading",
    "load_tokenizer": "loading",
    "check_tokenizer": "loading",
    "train_tokenizer": "tiny",
    "tiny_config": "tiny",
    "build_tiny_model": "tiny",
    "build_tiny": "tiny",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
