"""Run a model over token sequences grouped by language and feed streaming accumulators.

    from interp.activations import collect, FiringCounts
    counts = FiringCounts(["en", "de"], num_layers, intermediate_size)
    collect(model, tokenizer, {"en": en_ids, "de": de_ids}, [counts], backend="torch")
    counts.rates()  # [language, layer, neuron]

Input per language: a list of token-id lists (right-padded here when lengths differ), a
[n, seq] LongTensor, or a mapping with "input_ids" and "attention_mask" (a padded batch, left
or right padding). Positions are counted over real tokens, so left padding does not shift them.
Batches hold one language each; all-padding columns are trimmed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interp.activations.accumulators import Accumulator, BatchInfo
from interp.activations.backends import Backend, make_backend, position_ids_from_mask
from interp.errors import ConfigError, DataError
from interp.models import adapters

if TYPE_CHECKING:
    import torch


@dataclass
class LanguageData:
    """The padded token ids of one language, on CPU: ids [n, seq] long, mask [n, seq] bool."""

    language: str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def as_language_data(language: str, data: Any, pad_token_id: int = 0) -> LanguageData:
    """Normalise one language's input (lists, tensor, or padded batch) to `LanguageData`."""
    import torch

    mask = None
    if isinstance(data, Mapping):
        if "input_ids" not in data:
            raise DataError(
                f"language {language!r}: a padded batch needs 'input_ids' (and "
                "'attention_mask'). Fix: pass tokenizer(..., padding=True, return_tensors='pt')."
            )
        ids, mask = data["input_ids"], data.get("attention_mask")
    else:
        ids = data
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().to("cpu", torch.long)
        if ids.ndim == 1:
            ids = ids.unsqueeze(0)
        mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask
    else:
        rows = [list(map(int, row)) for row in ids]
        if rows and mask is None:
            longest = max(len(r) for r in rows)
            mask = torch.tensor([[True] * len(r) + [False] * (longest - len(r)) for r in rows])
            rows = [r + [pad_token_id] * (longest - len(r)) for r in rows]
        ids = torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1)
    mask = torch.as_tensor(mask).to("cpu").bool()
    if mask.shape != ids.shape:
        raise DataError(
            f"language {language!r}: attention_mask shape {tuple(mask.shape)} differs from "
            f"input_ids shape {tuple(ids.shape)}"
        )
    if ids.ndim != 2:
        raise DataError(f"language {language!r}: input_ids must be [sequences, tokens]")
    if len(ids) and bool((mask.sum(dim=1) == 0).any()):
        row = int((mask.sum(dim=1) == 0).nonzero()[0])
        raise DataError(
            f"language {language!r}, sequence {row}: no real token (all padding). Fix: drop "
            "empty sequences."
        )
    return LanguageData(language, ids, mask)


def distributed_shard() -> tuple[int, int] | None:
    """(rank, world size) when torch.distributed is initialised, else None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _batches(
    data: Sequence[LanguageData], batch_size: int, shard: tuple[int, int] | None
) -> Iterator[tuple[LanguageData, torch.Tensor]]:
    """(language data, row indices) per batch; rows are global indices within the language."""
    import torch

    for item in data:
        rows = torch.arange(len(item))
        if shard is not None:
            rank, world = shard
            rows = rows[rank::world]
        for start in range(0, len(rows), batch_size):
            yield item, rows[start : start + batch_size]


def _trim(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the columns that are padding in every row (left or right)."""
    used = mask.any(dim=0).nonzero()
    first, last = int(used[0]), int(used[-1]) + 1
    return ids[:, first:last], mask[:, first:last]


def _check_accumulators(accumulators: Sequence[Accumulator], model: Any) -> tuple[str, ...]:
    if not accumulators:
        raise ConfigError("collect got no accumulators. Fix: pass e.g. [FiringCounts(...)].")
    languages = accumulators[0].languages
    shape = adapters.shape(model)
    for acc in accumulators:
        if acc.languages != languages:
            raise ConfigError(
                f"accumulators disagree on languages: {list(languages)} vs "
                f"{list(acc.languages)}. Fix: build them with the same language list."
            )
        if acc.num_layers != shape.num_layers:
            raise ConfigError(
                f"{type(acc).__name__} has {acc.num_layers} layers, the model "
                f"{shape.num_layers}. Fix: size accumulators with interp.models.adapters.shape."
            )
        width = getattr(acc, "intermediate_size", None)
        if width is not None and width != shape.intermediate_size:
            raise ConfigError(
                f"{type(acc).__name__} has intermediate_size {width}, the model "
                f"{shape.intermediate_size}"
            )
    if any("gate" in acc.sites for acc in accumulators):
        adapters.check_gated_activation(model)
    return languages


def collect(
    model: Any,
    tokenizer: Any,
    data: Mapping[str, Any],
    accumulators: Accumulator | Sequence[Accumulator],
    *,
    backend: str | Backend = "torch",
    batch_size: int = 8,
    shard: tuple[int, int] | str | None = None,
    progress: bool = True,
    check_finite: bool = True,
) -> list[Accumulator]:
    """Run `model` over `data` (language -> sequences) and update `accumulators` in place.

    backend: "torch" (forward hooks, default), "transformer_lens" or "nnsight", or a Backend
    built by the caller (kept open). shard: (rank, world) to process only sequences
    rank, rank + world, ... of each language, or "auto" for the torch.distributed rank; follow
    with `accumulator.all_reduce()`. Raises DataError naming the layer and language when
    activations are NaN or infinite. Returns the accumulators.
    """
    import torch
    from tqdm.auto import tqdm

    if isinstance(accumulators, Accumulator):
        accumulators = [accumulators]
    accumulators = list(accumulators)
    model = adapters.unwrap(model)
    languages = _check_accumulators(accumulators, model)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if shard == "auto":
        shard = distributed_shard()
    elif shard is not None and not (isinstance(shard, tuple) and 0 <= shard[0] < shard[1]):
        raise ConfigError(f"shard must be (rank, world) with 0 <= rank < world, got {shard!r}")

    pad = 0
    if tokenizer is not None:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    prepared = []
    for language, items in data.items():
        if language not in languages:
            raise DataError(
                f"data has language {language!r}, the accumulators only {list(languages)}. "
                "Fix: add it to the accumulators' languages or drop it from the data."
            )
        prepared.append(as_language_data(language, items, pad))
    vocab = model.get_input_embeddings().num_embeddings
    for item in prepared:
        if len(item) and int(item.input_ids.max()) >= vocab:
            raise DataError(
                f"language {item.language!r}: token id {int(item.input_ids.max())} is beyond the "
                f"model's {vocab} embeddings. Fix: tokenize with the model's own tokenizer."
            )

    device = next(model.parameters()).device
    for acc in accumulators:
        if acc.device != device:
            acc.to(device)
    sites = sorted({site for acc in accumulators for site in acc.sites})
    by_site = {site: [acc for acc in accumulators if site in acc.sites] for site in sites}

    own_backend = not isinstance(backend, Backend)
    runner = make_backend(backend, model, tokenizer, sites) if own_backend else backend
    missing = set(sites) - set(runner.sites)
    if missing:
        raise ConfigError(
            f"the {runner.name} backend was built for sites {list(runner.sites)}, the "
            f"accumulators also need {sorted(missing)}. Fix: build it with every site needed."
        )
    world = 1 if shard is None else shard[1]
    first_row = 0 if shard is None else shard[0]
    total = sum(-(-len(range(first_row, len(item), world)) // batch_size) for item in prepared)
    was_training = model.training
    model.eval()
    try:
        batches = _batches(prepared, batch_size, shard)
        bar = tqdm(batches, total=total, desc=f"activations ({runner.name})", disable=not progress)
        for item, rows in bar:
            ids, mask = _trim(item.input_ids[rows], item.attention_mask[rows])
            ids, mask = ids.to(device), mask.to(device)
            lang = languages.index(item.language)
            batch = BatchInfo.build(
                mask,
                torch.full((len(rows),), lang, device=device),
                rows.to(device),
                single_language=lang,
            )
            for acc in accumulators:
                acc.start_batch(batch)
            final: list[torch.Tensor] = []

            def deliver(site: str, layer: int, x: torch.Tensor, batch=batch, final=final) -> None:
                if site == "resid_post":
                    final.append(x)
                    return
                for acc in by_site[site]:
                    acc.update(site, layer, x, batch)

            runner.run(ids, mask.long(), position_ids_from_mask(mask), deliver)
            if check_finite and final and not _all_finite(final[0], batch):
                _raise_non_finite(model, ids, mask, item.language, rows)
    finally:
        model.train(was_training)
        if own_backend:
            runner.close()
    return accumulators


def _all_finite(hidden: torch.Tensor, batch: BatchInfo) -> bool:
    """Whether the residual stream is finite at every real token (NaN anywhere upstream ends
    up here, so one check per batch covers every layer)."""
    import torch

    return bool(torch.isfinite(hidden[batch.mask_on(hidden.device)]).all())


def _raise_non_finite(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, language: str, rows: torch.Tensor
) -> None:
    """Find the first layer and site with non-finite values in this batch and raise DataError."""
    import torch

    found: list[tuple[str, int, list[int]]] = []

    def deliver(site: str, layer: int, x: torch.Tensor) -> None:
        if found:
            return
        bad = ~torch.isfinite(x).reshape(x.shape[0], x.shape[1], -1).all(dim=-1)  # [B, T]
        bad &= mask.to(bad.device)
        if bool(bad.any()):
            found.append((site, layer, bad.any(dim=1).nonzero().flatten().tolist()))

    def layer_output(layer: int):
        def hook(module: Any, args: Any, output: Any) -> None:
            deliver("layer output", layer, output[0] if isinstance(output, tuple) else output)

        return hook

    # The layer outputs catch what the sites miss (e.g. a broken down_proj or norm).
    handles = [
        layer_module.register_forward_hook(layer_output(i))
        for i, layer_module in adapters.iter_layers(model)
    ]
    try:
        with make_backend("torch", model, None, ["z", "gate", "post"]) as probe:
            probe.run(ids, mask.long(), position_ids_from_mask(mask), deliver)
    finally:
        for handle in handles:
            handle.remove()
    where = "the residual stream" if not found else f"site {found[0][0]!r}"
    layer = found[0][1] if found else adapters.num_layers(model) - 1
    bad_rows = [int(rows[i]) for i in found[0][2]] if found else rows.tolist()
    raise DataError(
        f"non-finite activations (NaN or inf) at layer {layer}, {where}, language "
        f"{language!r}, sequences {bad_rows[:10]}. Fix: check the model's weights at that layer, "
        "or load it in float32 if a low-precision dtype overflows."
    )


def collect_statistics(
    model: Any,
    tokenizer: Any,
    data: Mapping[str, Any],
    *,
    languages: Iterable[str] | None = None,
    means: str | None = "post",
    heads: bool = True,
    **kwargs: Any,
) -> list[Accumulator]:
    """Firing counts, mean activations and head norms of `model` over `data` in one pass."""
    from interp.activations.accumulators import for_model

    codes = list(data) if languages is None else list(languages)
    if not codes:
        raise DataError("collect_statistics got no languages. Fix: pass non-empty data.")
    accumulators = for_model(model, codes, means=means, heads=heads)
    return collect(model, tokenizer, data, accumulators, **kwargs)


__all__ = [
    "LanguageData",
    "as_language_data",
    "collect",
    "collect_statistics",
    "distributed_shard",
]
