"""Load any supported HF causal LM and its tokenizer, from a local directory or a hub id.

Defaults: CPU in float32, CUDA in bfloat16; both overridable. The model comes back in eval
mode. A tokenizer that can produce ids the model has no embedding for is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.errors import ModelError
from interp.models.adapters import adapter_for

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device`, or CUDA when available, else CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`dtype` (a torch dtype or a name such as "bf16"), or the default for `device`."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise ModelError(
            f"unknown dtype {dtype!r}. Fix: use one of {sorted(set(_DTYPES.values()))}."
        )
    return getattr(torch, name)


def load_tokenizer(path_or_id: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer at `path_or_id`, with a pad token (eos when it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path_or_id))
    except (OSError, ValueError) as error:
        raise ModelError(
            f"{path_or_id}: cannot load a tokenizer ({error}). Fix: pass a directory with "
            "tokenizer files, or a hub id while online."
        ) from error
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_tokenizer(model: Any, tokenizer: PreTrainedTokenizerBase, source: str = "") -> None:
    """ModelError when the tokenizer has ids the model's embedding does not cover."""
    rows = model.get_input_embeddings().num_embeddings
    size = len(tokenizer)
    if size > rows:
        place = f"{source}: " if source else ""
        raise ModelError(
            f"{place}the tokenizer has {size} ids but the model embeds only {rows}; ids "
            f"{rows}..{size - 1} would index past the embedding. Fix: use the tokenizer saved "
            "with this model, or resize the embeddings (model.resize_token_embeddings)."
        )


def load_model(
    path_or_id: str | Path,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(model, tokenizer) from a local HF directory or a hub id.

    device: default CUDA when available, else CPU; "auto" spreads the layers over the visible
    GPUs (accelerate's device_map="auto"). dtype: default bfloat16 on CUDA, float32 on CPU. attn_implementation: e.g. "eager" (what TransformerLens uses) or "sdpa".
    tokenizer: another tokenizer (directory, id or object) than the one saved with the model.
    Raises ModelError for an unsupported family or a tokenizer that does not fit the model.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    source = str(path_or_id)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ModelError(
            f"{source}: cannot read a model config ({error}). Fix: pass a directory holding "
            "config.json, or a hub id while online."
        ) from error
    adapter_for(config)  # unsupported family -> ModelError before loading any weights
    spread = device == "auto"
    torch_device = resolve_device(None if spread else device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if spread:
        kwargs["device_map"] = "auto"
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        raise ModelError(f"{source}: cannot load the model weights ({error})") from error
    if not spread:
        model.to(torch_device)
    model.eval()
    if tokenizer is None or isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(source if tokenizer is None else tokenizer)
    check_tokenizer(model, tokenizer, source)
    return model, tokenizer
