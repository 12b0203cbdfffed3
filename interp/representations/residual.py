"""The residual stream at chosen positions, after every decoder layer, batch by batch.

    from interp.representations.residual import iter_residuals, residuals, final_norm, unembed
    for batch in iter_residuals(model, tokenizer, texts, position="last", batch_size=16):
        batch.index      # [b] positions of these texts in `texts`
        batch.vectors    # [b, layers, hidden] float32 on CPU (layers: 0 = embeddings, i = after
                         #  decoder layer i; all num_layers + 1 of them unless `layers` says)
    x = residuals(model, tokenizer, texts)   # [len(texts), layers, hidden], input order

Residual index 0 is the input of the first decoder layer (the token embeddings as the decoder
sees them) and index i >= 1 the output of decoder layer i - 1, BEFORE the final norm. Read
through forward hooks on the family adapter's decoder layers rather than
`output_hidden_states`, whose last entry HF (transformers >= 5) replaces by the final-normed
state; the forward stops after the last layer asked for, so neither the final norm nor the LM
head runs (`final_norm` and `unembed` give them, for the logit lens).

Positions: "last" = the last real token of each input (the position whose next-token
prediction scores an option after a prompt, as `interp.evaluate.scoring` does), "mean" = the
mean over the real tokens, special tokens the tokenizer adds (BOS/EOS) left out. Inputs are
strings (tokenised with special tokens, as scoring tokenises prompts) or token-id sequences
(used as given). Padding is done here, on the right by default or on the left, with the
attention mask and position ids counted over real tokens, so an input's vectors do not
depend on what it is batched with. Pooling happens inside each layer's hook: memory holds one
layer's per-token states (which the model computes anyway) and [batch, layers, hidden] pooled
vectors, never per-token states of every layer, and is independent of the number of inputs.
Inputs are read `sort_window` batches at a time and sorted by length inside the window, so
little padding is needed; `index` says where each vector belongs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from interp.errors import ConfigError, DataError, ModelError
from interp.models import adapters

if TYPE_CHECKING:
    import torch

__all__ = [
    "POSITIONS",
    "ResidualBatch",
    "final_norm",
    "iter_residuals",
    "num_residuals",
    "residuals",
    "unembed",
]

Position = Literal["last", "mean"]
POSITIONS = ("last", "mean")
PADDING_SIDES = ("right", "left")


@dataclass(frozen=True)
class ResidualBatch:
    """Pooled residual vectors of one batch of inputs.

    `index`: [b] int, each input's position in the stream given to `iter_residuals`;
    `vectors`: [b, len(layers), hidden] float32 (CPU unless `out_device` said otherwise);
    `layers`: the residual indices of axis 1 (0 = embeddings, i = after decoder layer i);
    `n_tokens`: [b] int, real tokens per input (special ones included).
    """

    index: np.ndarray
    vectors: torch.Tensor
    layers: tuple[int, ...]
    n_tokens: np.ndarray


class _Stop(Exception):
    """Raised after the last residual asked for: the rest of the forward is not needed."""


def num_residuals(model: Any) -> int:
    """Residual indices of `model`: num_layers + 1 (the embeddings, then every layer's output)."""
    return adapters.num_layers(model) + 1


def _check_layers(model: Any, layers: Iterable[int] | None) -> tuple[int, ...]:
    total = num_residuals(model)
    if layers is None:
        return tuple(range(total))
    chosen = sorted({int(i) for i in layers})
    bad = [i for i in chosen if not 0 <= i < total]
    if bad or not chosen:
        raise ConfigError(
            f"layers={list(layers)}: residual indices run from 0 (embeddings) to {total - 1} "
            f"(after the last of {total - 1} decoder layers). Fix: pick indices in that range"
        )
    return tuple(chosen)


def _module_or_none(root: Any, path: str) -> Any:
    try:
        return adapters.get_module(root, path)
    except ModelError:
        return None


def final_norm(model: Any) -> torch.nn.Module:
    """The norm applied after the last decoder layer (RMSNorm / LayerNorm): the family
    adapter's `final_norm` path, else the HF decoder's `norm` (or `final_layernorm`, `ln_f`)."""
    model = adapters.unwrap(model)
    found = None
    if getattr(getattr(model, "config", None), "model_type", None) in adapters.ADAPTERS:
        found = _module_or_none(model, adapters.adapter_for(model).final_norm)
    if found is None:
        body = model.get_decoder() if callable(getattr(model, "get_decoder", None)) else None
        for name in ("norm", "final_layernorm", "ln_f"):
            found = getattr(body, name, None) if body is not None else None
            if found is not None:
                break
    if found is None:
        raise ModelError(
            f"{type(model).__name__}: no final norm found (tried the family adapter's "
            "final_norm path and the decoder's norm / final_layernorm / ln_f). Fix: register a "
            "FamilyAdapter with its final_norm path in interp.models.adapters"
        )
    return found


def unembed(model: Any) -> torch.nn.Module:
    """The LM head (hidden -> vocabulary logits): `get_output_embeddings()`, else the family
    adapter's `lm_head` path. Tied embeddings come back as the head that shares them."""
    model = adapters.unwrap(model)
    head = None
    if callable(getattr(model, "get_output_embeddings", None)):
        head = model.get_output_embeddings()
    if head is None and getattr(model.config, "model_type", None) in adapters.ADAPTERS:
        head = _module_or_none(model, adapters.adapter_for(model).lm_head)
    if head is None:
        raise ModelError(
            f"{type(model).__name__}: no LM head found (get_output_embeddings() gave None and "
            "the family adapter's lm_head path is missing). Fix: pass a *ForCausalLM model"
        )
    return head


# ------------------------------------------------------------------------------ batching
def _encode(tokenizer: Any, chunk: list[Any], source: int) -> list[tuple[list[int], list[bool]]]:
    """(ids, pooled) per input: pooled marks the tokens a mean runs over (not special)."""
    texts = [(k, x) for k, x in enumerate(chunk) if isinstance(x, str)]
    out: list[Any] = [None] * len(chunk)
    if texts:
        if tokenizer is None:
            raise ConfigError(
                "string inputs need a tokenizer. Fix: pass the model's tokenizer, or token ids"
            )
        encoded = tokenizer(
            [x for _, x in texts], add_special_tokens=True, return_special_tokens_mask=True
        )
        for (k, _), ids, special in zip(
            texts, encoded["input_ids"], encoded["special_tokens_mask"], strict=True
        ):
            out[k] = (list(ids), [not s for s in special])
    for k, x in enumerate(chunk):
        if out[k] is None:
            try:
                ids = [int(t) for t in x]
            except (TypeError, ValueError):
                raise DataError(
                    f"input {source + k}: {type(x).__name__} is neither a string nor a "
                    "sequence of token ids. Fix: pass strings or lists of ints"
                ) from None
            out[k] = (ids, [True] * len(ids))
        if not out[k][0]:
            raise DataError(
                f"input {source + k} ({str(chunk[k])[:40]!r}) has no tokens. Fix: drop empty inputs"
            )
    return out


def _padded(rows: list[tuple[list[int], list[bool]]], pad_id: int, side: str):
    """input_ids, attention_mask (bool), pooled (bool), position_ids for one batch."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids_t = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    pooled = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (ids, pool) in enumerate(rows):
        span = slice(0, len(ids)) if side == "right" else slice(width - len(ids), width)
        ids_t[i, span] = torch.tensor(ids, dtype=torch.long)
        mask[i, span] = True
        # a mean over special tokens only (an input that is just BOS) uses all its tokens
        pooled[i, span] = torch.tensor(pool if any(pool) else [True] * len(ids))
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return ids_t, mask, pooled, positions


def iter_residuals(
    model: Any,
    tokenizer: Any,
    inputs: Iterable[str | Sequence[int]],
    *,
    position: Position = "last",
    layers: Iterable[int] | None = None,
    batch_size: int = 16,
    padding_side: str = "right",
    sort_window: int = 8,
    device: Any = None,
    out_device: Any = "cpu",
) -> Iterator[ResidualBatch]:
    """Yield the pooled residual stream of `inputs`, batch by batch (see the module docstring).

    `inputs`: strings (tokenised with special tokens) or token-id sequences, any iterable
    (read `batch_size * sort_window` at a time). `position`: "last" or "mean". `layers`:
    residual indices to keep (default all, 0 = embeddings .. num_layers). `padding_side`:
    "right" or "left" (the results agree up to float rounding). `device`: where inputs go
    (default: the model's). `out_device`: where the vectors go (default CPU; None keeps them
    on the model's device).
    """
    import torch

    if position not in POSITIONS:
        raise ConfigError(f"position={position!r}. Fix: use one of {', '.join(POSITIONS)}")
    if padding_side not in PADDING_SIDES:
        raise ConfigError(f"padding_side={padding_side!r}. Fix: use 'right' or 'left'")
    if batch_size < 1 or sort_window < 1:
        raise ConfigError(f"batch_size={batch_size}, sort_window={sort_window}: both must be >= 1")
    model = adapters.unwrap(model)
    keep = _check_layers(model, layers)
    if device is None:
        device = next(model.parameters()).device
    pad_id = None if tokenizer is None else tokenizer.pad_token_id
    if pad_id is None:
        pad_id = getattr(tokenizer, "eos_token_id", None)
    if pad_id is None:
        pad_id = getattr(model.config, "pad_token_id", None) or 0
    vocab = model.get_input_embeddings().num_embeddings
    hidden_size = model.get_input_embeddings().embedding_dim

    stack = adapters.layers(model)
    slot = {layer: k for k, layer in enumerate(keep)}
    state: dict[str, Any] = {}

    def pool(hidden: torch.Tensor) -> torch.Tensor:
        where = hidden.device  # layers spread over devices (device_map) keep theirs
        if position == "last":
            return hidden[state["rows"].to(where), state["last"].to(where)].float()
        weights, count = state["weights"].to(where), state["count"].to(where)
        return torch.einsum("bt,btd->bd", weights, hidden.float()) / count

    def store(layer: int, hidden: Any) -> None:
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        out = state["out"]
        out[:, slot[layer]] = pool(hidden).to(out.device)
        if layer == keep[-1]:
            raise _Stop

    handles = []
    if 0 in slot:

        def embeddings_hook(module: Any, args: tuple, kwargs: dict) -> None:
            store(0, args[0] if args else kwargs["hidden_states"])

        handles.append(stack[0].register_forward_pre_hook(embeddings_hook, with_kwargs=True))
    for layer in keep:
        if layer >= 1:
            handles.append(
                stack[layer - 1].register_forward_hook(
                    lambda module, args, output, layer=layer: store(layer, output)
                )
            )

    body = adapters.decoder(model)
    was_training = model.training
    model.eval()
    stream = iter(inputs)
    seen = 0
    try:
        while True:
            chunk = list(islice(stream, batch_size * sort_window))
            if not chunk:
                break
            encoded = _encode(tokenizer, chunk, seen)
            top = max(max(ids) for ids, _ in encoded)
            if top >= vocab or min(min(ids) for ids, _ in encoded) < 0:
                raise DataError(
                    f"inputs {seen}..{seen + len(chunk) - 1}: token id {top} is outside the "
                    f"model's {vocab} embeddings. Fix: tokenize with the model's own tokenizer"
                )
            order = sorted(range(len(chunk)), key=lambda k: len(encoded[k][0]))
            for start in range(0, len(order), batch_size):
                members = order[start : start + batch_size]
                ids, mask, pooled, positions = _padded(
                    [encoded[k] for k in members], pad_id, padding_side
                )
                ids, mask, pooled = ids.to(device), mask.to(device), pooled.to(device)
                state["rows"] = torch.arange(len(members), device=device)
                state["last"] = mask.long().cumsum(-1).argmax(-1)  # first index of the maximum
                state["weights"] = pooled.float()
                state["count"] = pooled.sum(-1, keepdim=True).float()
                state["out"] = torch.empty(
                    (len(members), len(keep), hidden_size), dtype=torch.float32, device=device
                )
                with torch.inference_mode(), contextlib.suppress(_Stop):
                    body(
                        input_ids=ids,
                        attention_mask=mask.long(),
                        position_ids=positions.to(device),
                        use_cache=False,
                    )
                out = state.pop("out")
                yield ResidualBatch(
                    index=np.asarray([seen + k for k in members], dtype=np.int64),
                    vectors=out if out_device is None else out.to(out_device),
                    layers=keep,
                    n_tokens=np.asarray([len(encoded[k][0]) for k in members], dtype=np.int64),
                )
            seen += len(chunk)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def residuals(
    model: Any, tokenizer: Any, inputs: Iterable[str | Sequence[int]], **kwargs: Any
) -> np.ndarray:
    """All of `iter_residuals(model, tokenizer, inputs, **kwargs)` as one float32 array
    [inputs, layers, hidden], in input order."""
    parts, where = [], []
    for batch in iter_residuals(model, tokenizer, inputs, **kwargs):
        parts.append(batch.vectors.cpu().numpy())
        where.append(batch.index)
    if not parts:
        raise DataError("residuals got no inputs. Fix: pass at least one text or id sequence")
    stacked = np.concatenate(parts)
    out = np.empty_like(stacked)
    out[np.concatenate(where)] = stacked
    return out
