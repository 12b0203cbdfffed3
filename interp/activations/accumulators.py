"""Streaming statistics per language over a model's neurons and heads.

Accumulators consume tensors and never see a model: a backend delivers, for one batch, the
activations of a canonical site ("gate", "post", "z"; see `interp.models.adapters`) at one layer,
and each accumulator folds them into sums whose size is O(languages x layers x units), never
O(tokens). Padded positions never count. Counts are int64 (exact), sums float64, and per-batch
reductions run in float32 whatever the model dtype.

Several processes can each see part of the data and then `all_reduce()` (torch.distributed,
SUM) to get exactly the statistics of one process that saw everything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from interp.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd
    import torch


@dataclass
class BatchInfo:
    """What accumulators need to know about one batch besides the activations.

    mask: [batch, seq] bool, True on real tokens. language_index: [batch] long, index of each
    row's language in the accumulators' `languages`. sequence_index: [batch] long, index of each
    row among its language's sequences (global across shards). single_language: the language
    index when every row has the same language (the fast path), else None.
    """

    mask: torch.Tensor
    language_index: torch.Tensor
    sequence_index: torch.Tensor
    single_language: int | None
    padded: bool
    _masks: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        mask: torch.Tensor,
        language_index: torch.Tensor,
        sequence_index: torch.Tensor | None = None,
        single_language: int | None = None,
    ) -> BatchInfo:
        """BatchInfo from a mask and per-row language indices (tensors on the model's device).

        Pass `single_language` when every row is known to have that language (saves a check).
        """
        import torch

        mask = mask.to(torch.bool)
        language_index = language_index.to(device=mask.device, dtype=torch.long)
        if sequence_index is None:
            sequence_index = torch.arange(mask.shape[0], device=mask.device)
        single = single_language
        if single is None:
            first = int(language_index[0])
            single = first if bool((language_index == first).all()) else None
        return cls(
            mask=mask,
            language_index=language_index,
            sequence_index=sequence_index.to(device=mask.device, dtype=torch.long),
            single_language=single,
            padded=not bool(mask.all()),
        )

    def mask_on(self, device: Any) -> torch.Tensor:
        """The mask on `device` (layers of a model split over devices deliver on each)."""
        if self.mask.device == device:
            return self.mask
        if device not in self._masks:
            self._masks[device] = self.mask.to(device)
        return self._masks[device]

    def token_counts(self) -> torch.Tensor:
        """Real tokens per row, [batch] long."""
        return self.mask.sum(dim=1)


def _add_tokens(tokens: torch.Tensor, batch: BatchInfo) -> None:
    """tokens[language] += real tokens of the batch's rows of that language."""
    counts = batch.token_counts().to(tokens.device)
    if batch.single_language is not None:
        tokens[batch.single_language] += counts.sum()
    else:
        tokens.index_add_(0, batch.language_index.to(tokens.device), counts)


def _add_masked_sums(
    target: torch.Tensor, x: torch.Tensor, batch: BatchInfo, layer: int | None = None
) -> None:
    """target[language(, layer)] += sum of x [B, T, U] over real tokens, in float32 per batch.

    The sum is a matrix product with the 0/1 mask, so masking costs no copy of x.
    """
    import torch

    view = target if layer is None else target[:, layer]
    x32 = x if x.dtype == torch.float32 else x.float()
    weights = batch.mask_on(x.device).to(torch.float32)
    if batch.single_language is not None:
        sums = weights.reshape(1, -1) @ x32.reshape(-1, x32.shape[-1])  # [1, U]
        view[batch.single_language] += sums[0].to(device=view.device, dtype=view.dtype)
    else:
        rows = torch.bmm(weights.unsqueeze(1), x32).squeeze(1)  # [B, U]
        view.index_add_(0, batch.language_index, rows.to(device=view.device, dtype=view.dtype))


class Accumulator:
    """Base class: per-language streaming sums, mergeable across processes.

    Subclasses set `sites` (what they consume), allocate their sums (on CPU) in `_allocate()`,
    list them in `_state_names`, and implement `update`.
    """

    sites: tuple[str, ...] = ()
    _state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, languages: Sequence[str], num_layers: int) -> None:
        languages = tuple(languages)
        if not languages or len(set(languages)) != len(languages):
            raise ConfigError(f"languages must be non-empty and unique, got {list(languages)}")
        if num_layers < 1:
            raise ConfigError(f"num_layers must be >= 1, got {num_layers}")
        self.languages = languages
        self.num_layers = num_layers
        self.device: Any = None
        self.metadata: dict[str, Any] = {}
        self._allocate()

    # -- subclass API -------------------------------------------------------------------------

    def _allocate(self) -> None:
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        """Constructor arguments besides languages and num_layers (for save/load, merge)."""
        return {}

    def start_batch(self, batch: BatchInfo) -> None:
        """Called once per batch before any `update`."""

    def update(self, site: str, layer: int, x: torch.Tensor, batch: BatchInfo) -> None:
        """Fold the activations `x` [batch, seq, units] of `site` at `layer` into the sums."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------

    def language_index(self, language: str) -> int:
        """Index of `language` in `languages`."""
        try:
            return self.languages.index(language)
        except ValueError:
            raise DataError(
                f"language {language!r} is not among the accumulator's languages "
                f"{list(self.languages)}. Fix: build the accumulator with that language."
            ) from None

    def to(self, device: Any) -> Accumulator:
        """Move the sums to `device` (kept there for the following updates)."""
        for name in self._state_names:
            setattr(self, name, getattr(self, name).to(device))
        self.device = device
        return self

    def state(self) -> dict[str, torch.Tensor]:
        """The summed tensors, by name."""
        return {name: getattr(self, name) for name in self._state_names}

    def _check_compatible(self, other: Accumulator) -> None:
        same = (
            type(other) is type(self)
            and other.languages == self.languages
            and other.num_layers == self.num_layers
            and other._config() == self._config()
        )
        if not same:
            raise ConfigError(
                f"cannot merge {type(other).__name__}({list(other.languages)}, "
                f"{other.num_layers} layers, {other._config()}) into {type(self).__name__}"
                f"({list(self.languages)}, {self.num_layers} layers, {self._config()})"
            )

    def merge(self, other: Accumulator) -> Accumulator:
        """Add the sums of `other` (same type, languages and sizes) into this one."""
        self._check_compatible(other)
        for name in self._state_names:
            mine = getattr(self, name)
            mine += getattr(other, name).to(mine.device)
        return self

    def all_reduce(self, group: Any = None) -> Accumulator:
        """Sum the state over all processes of torch.distributed (no-op when not initialised)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        for name in self._state_names:
            dist.all_reduce(getattr(self, name), op=dist.ReduceOp.SUM, group=group)
        return self

    def reset(self) -> Accumulator:
        """Zero every sum."""
        for name in self._state_names:
            getattr(self, name).zero_()
        return self

    def save(self, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the state and configuration to a safetensors file (atomically).

        `metadata` (e.g. model and data fingerprints) is stored as JSON and comes back as
        `load_accumulator(path).metadata`.
        """

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {
            "class": type(self).__name__,
            "languages": json.dumps(list(self.languages)),
            "num_layers": str(self.num_layers),
            "config": json.dumps(self._config()),
            "metadata": json.dumps(dict(metadata or {}), default=str),
        }
        tensors = {name: t.detach().to("cpu").contiguous() for name, t in self.state().items()}
        from safetensors.torch import save

        from interp.io import atomic_write_bytes

        return atomic_write_bytes(path, save(tensors, metadata=metadata))


class FiringCounts(Accumulator):
    """How often each MLP neuron fires, per language: the input of LAPE.

    A neuron fires on a token when act(gate_proj(x)) > 0, i.e. gate_proj(x) > 0 for SiLU.
    fires: [languages, layers, intermediate] int64; tokens: [languages] int64 (real tokens).
    """

    sites = ("gate",)
    _state_names = ("fires", "tokens")

    def __init__(self, languages: Sequence[str], num_layers: int, intermediate_size: int) -> None:
        self.intermediate_size = intermediate_size
        super().__init__(languages, num_layers)

    def _allocate(self) -> None:
        import torch

        n = len(self.languages)
        self.fires = torch.zeros(n, self.num_layers, self.intermediate_size, dtype=torch.long)
        self.tokens = torch.zeros(n, dtype=torch.long)

    def _config(self) -> dict[str, Any]:
        return {"intermediate_size": self.intermediate_size}

    def start_batch(self, batch: BatchInfo) -> None:
        _add_tokens(self.tokens, batch)

    def update(self, site: str, layer: int, x: torch.Tensor, batch: BatchInfo) -> None:
        import torch

        fired = x > 0  # one bool pass, no float copy
        if batch.padded:
            fired &= batch.mask_on(x.device).unsqueeze(-1)
        # int32 per batch (exact below 2**31 tokens) reduces several times faster than int64
        if batch.single_language is not None:
            counts = fired.reshape(-1, fired.shape[-1]).sum(0, dtype=torch.int32)
            self.fires[batch.single_language, layer] += counts.to(self.fires.device)
        else:
            counts = fired.sum(dim=1, dtype=torch.int32).to(self.fires.device)
            self.fires[:, layer].index_add_(0, batch.language_index, counts.long())

    def rates(self) -> torch.Tensor:
        """Firing probability p[language, layer, neuron] = fires / tokens (float64)."""
        import torch

        tokens = self.tokens.to(torch.float64).clamp(min=1).view(-1, 1, 1)
        return self.fires.to(torch.float64) / tokens

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: language, layer, neuron, fires, tokens, rate."""
        return _long_frame(
            self.languages,
            {"fires": self.fires, "rate": self.rates()},
            unit="neuron",
            tokens=self.tokens,
        )


class SequenceFiringCounts(Accumulator):
    """Firing counts per chunk of sequences, for resampling over sequences (bootstrap).

    A full [sequences, layers, neurons] table is too large at scale (a 7B model has 350k
    neurons), so sequences are summed in chunks: chunk k of a language holds its sequences
    k * chunk_size ... (k + 1) * chunk_size - 1, by their global index within the language (so
    sharded runs add up exactly). `chunk_size=1` keeps single sequences; `max_chunks` keeps only
    the first chunks of each language (a subset). Memory: chunks x layers x neurons x 4 bytes.

    fires: [chunks, layers, intermediate] int32; tokens: [chunks] int64;
    chunk_language: [chunks] long (index into `languages`, fixed at construction).
    """

    sites = ("gate",)
    _state_names = ("fires", "tokens")

    def __init__(
        self,
        languages: Sequence[str],
        num_layers: int,
        intermediate_size: int,
        sequences_per_language: Mapping[str, int],
        chunk_size: int = 1,
        max_chunks: int | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        unknown = set(sequences_per_language) - set(languages)
        if unknown:
            raise ConfigError(
                f"sequences_per_language names languages {sorted(unknown)} that are not in "
                f"{list(languages)}"
            )
        self.intermediate_size = intermediate_size
        self.chunk_size = chunk_size
        self.max_chunks = max_chunks
        self.sequences_per_language = {
            lang: int(sequences_per_language.get(lang, 0)) for lang in languages
        }
        chunks = []
        for lang in languages:
            n = -(-self.sequences_per_language[lang] // chunk_size)
            chunks.append(n if max_chunks is None else min(n, max_chunks))
        self.chunks_per_language = chunks
        super().__init__(languages, num_layers)

    def _allocate(self) -> None:
        import torch

        counts = torch.tensor(self.chunks_per_language, dtype=torch.long)
        self._offsets = torch.cumsum(counts, 0) - counts  # first chunk of each language
        self._limits = counts
        total = int(counts.sum())
        self.chunk_language = torch.repeat_interleave(torch.arange(len(counts)), counts)
        self.fires = torch.zeros(total, self.num_layers, self.intermediate_size, dtype=torch.int32)
        self.tokens = torch.zeros(total, dtype=torch.long)

    def to(self, device: Any) -> SequenceFiringCounts:
        super().to(device)
        self._offsets = self._offsets.to(device)
        self._limits = self._limits.to(device)
        return self

    def _config(self) -> dict[str, Any]:
        return {
            "intermediate_size": self.intermediate_size,
            "sequences_per_language": self.sequences_per_language,
            "chunk_size": self.chunk_size,
            "max_chunks": self.max_chunks,
        }

    @property
    def nbytes(self) -> int:
        """Memory the table takes."""
        return self.fires.numel() * self.fires.element_size()

    def _rows(self, batch: BatchInfo) -> tuple[torch.Tensor, torch.Tensor]:
        """(chunk id, keep) per batch row; rows past max_chunks are dropped."""
        local = batch.sequence_index // self.chunk_size
        keep = local < self._limits[batch.language_index]
        return self._offsets[batch.language_index] + local, keep

    def start_batch(self, batch: BatchInfo) -> None:
        chunk, keep = self._rows(batch)
        self.tokens.index_add_(0, chunk[keep], batch.token_counts()[keep])

    def update(self, site: str, layer: int, x: torch.Tensor, batch: BatchInfo) -> None:
        import torch

        chunk, keep = self._rows(batch)
        if not bool(keep.any()):
            return
        fired = x > 0
        if batch.padded:
            fired &= batch.mask_on(x.device).unsqueeze(-1)
        per_row = fired.sum(dim=1, dtype=torch.int32).to(keep.device)[keep]
        self.fires[:, layer].index_add_(0, chunk[keep], per_row)

    def to_frame(self) -> pd.DataFrame:
        """One row per chunk: chunk, language, tokens (the counts stay in `fires`)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "chunk": range(len(self.tokens)),
                "language": [self.languages[i] for i in self.chunk_language.tolist()],
                "tokens": self.tokens.cpu().numpy(),
            }
        )


class _TokenMean(Accumulator):
    """A per-language mean over real tokens of one value per (layer, unit): subclasses say
    how wide a layer is (`_width`), what the unit and value are called, and what to add."""

    _state_names = ("sums", "tokens")
    _unit: str  # the tidy table's unit column
    _value: str  # ... and its value column

    @property
    def _width(self) -> int:
        raise NotImplementedError

    def _allocate(self) -> None:
        import torch

        n = len(self.languages)
        self.sums = torch.zeros(n, self.num_layers, self._width, dtype=torch.float64)
        self.tokens = torch.zeros(n, dtype=torch.long)

    def start_batch(self, batch: BatchInfo) -> None:
        _add_tokens(self.tokens, batch)

    def means(self) -> torch.Tensor:
        """The mean [language, layer, unit] (float64)."""
        import torch

        return self.sums / self.tokens.to(torch.float64).clamp(min=1).view(-1, 1, 1)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: language, layer, unit (neuron / head), value (mean / norm), tokens."""
        return _long_frame(self.languages, {self._value: self.means()}, self._unit, self.tokens)


class MeanActivation(_TokenMean):
    """Mean activation per neuron and language, over real tokens.

    site "post" (default): act(gate) * up, the input of down_proj (TransformerLens
    `mlp.hook_post`); site "gate": the gate pre-activation gate_proj(x) (`mlp.hook_pre`).
    sums: [languages, layers, intermediate] float64; tokens: [languages] int64.
    """

    _unit, _value = "neuron", "mean"

    def __init__(
        self,
        languages: Sequence[str],
        num_layers: int,
        intermediate_size: int,
        site: str = "post",
    ) -> None:
        if site not in ("post", "gate"):
            raise ConfigError(f"MeanActivation site must be 'post' or 'gate', got {site!r}")
        self.site = site
        self.sites = (site,)
        self.intermediate_size = intermediate_size
        super().__init__(languages, num_layers)

    @property
    def _width(self) -> int:
        return self.intermediate_size

    def _config(self) -> dict[str, Any]:
        return {"intermediate_size": self.intermediate_size, "site": self.site}

    def update(self, site: str, layer: int, x: torch.Tensor, batch: BatchInfo) -> None:
        _add_masked_sums(self.sums, x, batch, layer)


class HeadNorms(_TokenMean):
    """Mean L2 norm of each attention head's output per language, over real tokens.

    A head's output is its slice of the o_proj input (site "z", [.., heads * head_dim]).
    sums: [languages, layers, heads] float64; tokens: [languages] int64.
    """

    sites = ("z",)
    _unit, _value = "head", "norm"

    def __init__(
        self, languages: Sequence[str], num_layers: int, num_heads: int, head_dim: int
    ) -> None:
        self.num_heads = num_heads
        self.head_dim = head_dim
        super().__init__(languages, num_layers)

    @property
    def _width(self) -> int:
        return self.num_heads

    def _config(self) -> dict[str, Any]:
        return {"num_heads": self.num_heads, "head_dim": self.head_dim}

    def update(self, site: str, layer: int, x: torch.Tensor, batch: BatchInfo) -> None:
        import torch

        heads = x.unflatten(-1, (self.num_heads, self.head_dim))
        norms = torch.linalg.vector_norm(heads, dim=-1, dtype=torch.float32)  # [B, T, H]
        _add_masked_sums(self.sums, norms, batch, layer)


def _long_frame(
    languages: Sequence[str], values: Mapping[str, torch.Tensor], unit: str, tokens: torch.Tensor
) -> pd.DataFrame:
    """A [language, layer, unit] set of tensors as a long table."""
    import numpy as np
    import pandas as pd

    first = next(iter(values.values()))
    n_lang, n_layer, n_unit = first.shape
    frame = pd.DataFrame(
        {
            "language": np.repeat(np.array(languages, dtype=object), n_layer * n_unit),
            "layer": np.tile(np.repeat(np.arange(n_layer), n_unit), n_lang),
            unit: np.tile(np.arange(n_unit), n_lang * n_layer),
        }
    )
    for name, tensor in values.items():
        frame[name] = tensor.detach().cpu().numpy().reshape(-1)
    frame["tokens"] = np.repeat(tokens.cpu().numpy(), n_layer * n_unit)
    return frame


ACCUMULATORS: dict[str, type[Accumulator]] = {
    cls.__name__: cls for cls in (FiringCounts, SequenceFiringCounts, MeanActivation, HeadNorms)
}


def load_accumulator(path: str | Path) -> Accumulator:
    """Read an accumulator written by `Accumulator.save`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such accumulator file. Fix: check the path.")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    name = metadata.get("class")
    if name not in ACCUMULATORS:
        raise DataError(
            f"{path}: unknown accumulator class {name!r}; known: {sorted(ACCUMULATORS)}"
        )
    config = json.loads(metadata["config"])
    accumulator = ACCUMULATORS[name](
        json.loads(metadata["languages"]), int(metadata["num_layers"]), **config
    )
    accumulator.metadata = json.loads(metadata.get("metadata", "{}"))
    for state_name in accumulator._state_names:
        target = getattr(accumulator, state_name)
        loaded = tensors[state_name]
        if loaded.shape != target.shape:
            raise DataError(
                f"{path}: {state_name} has shape {tuple(loaded.shape)}, expected {tuple(target.shape)}"
            )
        setattr(accumulator, state_name, loaded.to(target.dtype))
    return accumulator


def for_model(
    model: Any,
    languages: Sequence[str],
    *,
    firing: bool = True,
    means: str | None = "post",
    heads: bool = True,
) -> list[Accumulator]:
    """The usual accumulators sized for `model`: firing counts, mean activations, head norms."""
    from interp.models.adapters import shape

    s = shape(model)
    out: list[Accumulator] = []
    if firing:
        out.append(FiringCounts(languages, s.num_layers, s.intermediate_size))
    if means:
        out.append(MeanActivation(languages, s.num_layers, s.intermediate_size, site=means))
    if heads:
        out.append(HeadNorms(languages, s.num_layers, s.num_heads, s.head_dim))
    return out
