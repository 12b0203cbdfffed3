"""Switch off MLP neurons or attention heads and measure per-language loss: the dark diagonal.

    from interp.specialization.ablation import ablate_heads, ablate_neurons, dark_diagonal
    with ablate_neurons(model, {(3, 17), (5, 2)}):   # act(gate) * up of those neurons := 0
        ...
    with ablate_heads(model, {(0, 1)}):               # head 1 of layer 0 contributes nothing
        ...
    dd = dark_diagonal(model, tokenizer, held_out, heads.sets(), unit="heads", random_repeats=3)
    dd.matrix("loss_delta"); dd.summary(); dd.table

Conventions:
- a neuron (layer, i) is ablated by zeroing column i of the input of `down_proj` (= act(gate)
  * up): "deactivate = set its activation to 0", as in the paper's causal check;
- a head (layer, h) is ablated by zeroing its slice [h * head_dim, (h + 1) * head_dim) of the
  input of `o_proj` (the concatenated head outputs), which is what the LAHIS mask scales;
- loss = mean next-token cross-entropy over real tokens (padding never counts); `ppl` =
  exp(loss) over all tokens of a language; `sample_ppl` = the mean over sequences of
  exp(sequence loss), which is what the PolyFact / LAHIS release reports;
- dark diagonal rows = the language whose units are ablated (`masked`), columns = the language
  measured (`language`); the random control ablates, per masked language, a random set with
  the same number of units in every layer, drawn uniformly from all units of that layer.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.models import adapters

if TYPE_CHECKING:
    import torch

__all__ = [
    "DarkDiagonal",
    "ablate",
    "ablate_heads",
    "ablate_neurons",
    "dark_diagonal",
    "encode_sequences",
    "language_loss",
    "random_like",
    "reference_dark_diagonal",
    "scale_heads",
    "sequence_losses",
]

UNITS = ("heads", "neurons")
TABLE_COLUMNS = [
    "masked",
    "language",
    "control",
    "repeat",
    "n_units",
    "baseline_loss",
    "masked_loss",
    "loss_delta",
    "baseline",
    "masked_ppl",
    "delta",
    "delta_pct",
    "ppl_ratio",
]


# ---------------------------------------------------------------------------------------------
# unit sets


def units_by_layer(
    units: Iterable[tuple[int, int]], num_layers: int, per_layer: int, unit: str
) -> dict[int, list[int]]:
    """{layer: sorted unit indices}, checking every (layer, index) is inside the model."""
    grouped: dict[int, set[int]] = {}
    for item in units:
        try:
            layer, index = (int(v) for v in item)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{unit}: {item!r} is not a (layer, index) pair. Fix: pass a set of "
                "(layer, index) tuples, e.g. selection.sets()[language]"
            ) from None
        if not 0 <= layer < num_layers:
            raise ConfigError(f"{unit} ({layer}, {index}): layer outside 0..{num_layers - 1}")
        if not 0 <= index < per_layer:
            raise ConfigError(
                f"{unit} ({layer}, {index}): index outside 0..{per_layer - 1} "
                f"(the model has {per_layer} {unit} per layer)"
            )
        grouped.setdefault(layer, set()).add(index)
    return {layer: sorted(indices) for layer, indices in sorted(grouped.items())}


def _unit_size(model: Any, unit: str) -> tuple[int, int]:
    """(layers, units per layer) of `unit` ("heads" or "neurons")."""
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    size = adapters.shape(model)
    per_layer = size.num_heads if unit == "heads" else size.intermediate_size
    return size.num_layers, per_layer


def random_like(
    units: Iterable[tuple[int, int]], per_layer: int, rng: np.random.Generator
) -> set[tuple[int, int]]:
    """A random set with as many units in each layer as `units` (uniform within the layer)."""
    counts: dict[int, int] = {}
    for layer, _ in units:
        counts[int(layer)] = counts.get(int(layer), 0) + 1
    out: set[tuple[int, int]] = set()
    for layer, count in sorted(counts.items()):
        if count > per_layer:
            raise ConfigError(f"layer {layer}: {count} units but only {per_layer} per layer")
        picked = rng.choice(per_layer, size=count, replace=False)
        out.update((layer, int(i)) for i in picked)
    return out


# ---------------------------------------------------------------------------------------------
# hooks


@contextlib.contextmanager
def _pre_hooks(
    modules: Iterable[tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]],
) -> Iterator[None]:
    """Replace the first input of each module by fn(input) while the block runs."""
    handles = []

    def make(fn: Callable[[torch.Tensor], torch.Tensor]):
        def hook(module: Any, args: tuple) -> tuple:
            return (fn(args[0]), *args[1:])

        return hook

    try:
        for module, fn in modules:
            handles.append(module.register_forward_pre_hook(make(fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _zero_columns(columns: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    cache: dict[Any, torch.Tensor] = {}

    def fn(x: torch.Tensor) -> torch.Tensor:
        index = cache.get(x.device)
        if index is None:
            index = cache[x.device] = columns.to(x.device)
        # index_fill, not a multiplication by 0: an inf activation must become 0, not nan
        return x.index_fill(-1, index, 0.0)

    return fn


@contextlib.contextmanager
def ablate_neurons(model: Any, units: Iterable[tuple[int, int]]) -> Iterator[None]:
    """Inside the block, neurons (layer, i) have activation act(gate) * up = 0."""
    import torch

    num_layers, per_layer = _unit_size(model, "neurons")
    grouped = units_by_layer(units, num_layers, per_layer, "neurons")
    hooks = [
        (adapters.down_proj(model, layer), _zero_columns(torch.tensor(idx, dtype=torch.long)))
        for layer, idx in grouped.items()
    ]
    with _pre_hooks(hooks):
        yield


def _head_columns(heads: Sequence[int], head_dim: int):
    import torch

    heads_t = torch.tensor(heads, dtype=torch.long)
    return (heads_t[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)


@contextlib.contextmanager
def ablate_heads(model: Any, heads: Iterable[tuple[int, int]]) -> Iterator[None]:
    """Inside the block, heads (layer, h) contribute nothing (their o_proj input slice is 0)."""
    num_layers, per_layer = _unit_size(model, "heads")
    head_dim = adapters.shape(model).head_dim
    grouped = units_by_layer(heads, num_layers, per_layer, "heads")
    hooks = [
        (adapters.o_proj(model, layer), _zero_columns(_head_columns(idx, head_dim)))
        for layer, idx in grouped.items()
    ]
    with _pre_hooks(hooks):
        yield


def ablate(model: Any, units: Iterable[tuple[int, int]], unit: str):
    """`ablate_heads` or `ablate_neurons`, by `unit` ("heads" or "neurons")."""
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    return ablate_heads(model, units) if unit == "heads" else ablate_neurons(model, units)


@contextlib.contextmanager
def scale_heads(model: Any, scale: torch.Tensor) -> Iterator[None]:
    """Inside the block, head (layer, h)'s output is multiplied by scale[layer, h] before o_proj.

    `scale` is a `[layers, heads]` tensor and may require grad (the LAHIS mask): the product
    stays in the autograd graph. scale = 1 leaves the model's output bit-for-bit unchanged.
    """
    size = adapters.shape(model)
    expected = (size.num_layers, size.num_heads)
    if tuple(scale.shape) != expected:
        raise ConfigError(
            f"head scale has shape {tuple(scale.shape)}; the model needs {expected} (layers, heads)"
        )
    heads, head_dim = size.num_heads, size.head_dim

    def make(layer: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def fn(x: torch.Tensor) -> torch.Tensor:
            factor = scale[layer].to(device=x.device, dtype=x.dtype)
            split = x.unflatten(-1, (heads, head_dim))
            return (split * factor[:, None]).flatten(-2)

        return fn

    hooks = [(adapters.o_proj(model, layer), make(layer)) for layer in range(size.num_layers)]
    with _pre_hooks(hooks):
        yield


# ---------------------------------------------------------------------------------------------
# held-out loss


def encode_sequences(
    tokenizer: Any, data: Any, *, max_length: int | None = None, source: str = "sequences"
) -> list[list[int]]:
    """Token-id lists from strings (needs a tokenizer), id lists, tensors or a padded batch.

    A padded batch is a mapping with "input_ids" and "attention_mask"; padding is dropped.
    Sequences are cut to `max_length` tokens.
    """
    import torch

    if isinstance(data, Mapping):
        if "input_ids" not in data:
            raise DataError(f"{source}: a padded batch needs 'input_ids' and 'attention_mask'")
        ids = torch.as_tensor(data["input_ids"])
        mask = data.get("attention_mask")
        mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else torch.as_tensor(mask)
        rows = [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]
    elif isinstance(data, torch.Tensor):
        rows = (data.unsqueeze(0) if data.ndim == 1 else data).tolist()
    elif isinstance(data, str):
        raise DataError(f"{source}: got one string; pass a list of texts")
    else:
        rows = []
        for i, item in enumerate(data):
            if isinstance(item, str):
                if tokenizer is None:
                    raise ConfigError(
                        f"{source}, item {i}: a text needs a tokenizer. Fix: pass the "
                        "tokenizer, or token-id lists"
                    )
                rows.append(tokenizer(item)["input_ids"])
            elif isinstance(item, torch.Tensor):
                rows.append(item.reshape(-1).tolist())
            else:
                rows.append([int(t) for t in item])
    if max_length is not None:
        if max_length < 2:
            raise ConfigError(f"max_length must be at least 2 (one prediction), got {max_length}")
        rows = [row[:max_length] for row in rows]
    return rows


def _input_device(model: Any) -> torch.device:
    return model.get_input_embeddings().weight.device


def sequence_losses(
    model: Any, sequences: Sequence[Sequence[int]], *, batch_size: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """(summed next-token NLL, predicted tokens) per sequence, float64 and int64 arrays.

    Batches are right-padded; padded positions never count. Sequences shorter than 2 tokens
    have no prediction (0, 0).
    """
    import torch

    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    device = _input_device(model)
    nll = np.zeros(len(sequences), dtype=np.float64)
    count = np.zeros(len(sequences), dtype=np.int64)
    # longest first, so each batch pads little
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    order = [i for i in order if len(sequences[i]) >= 2]
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            longest = len(sequences[rows[0]])
            ids = torch.zeros(len(rows), longest, dtype=torch.long)
            mask = torch.zeros(len(rows), longest, dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, : len(sequences[i])] = torch.as_tensor(sequences[i])
                mask[r, : len(sequences[i])] = 1
            ids, mask = ids.to(device), mask.to(device)
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            # flat [tokens, vocab] rows: the transposed [batch, vocab, time] layout is several
            # times slower on CPU
            next_logits = logits[:, :-1].to(torch.promote_types(logits.dtype, torch.float32))
            token_nll = torch.nn.functional.cross_entropy(
                next_logits.reshape(-1, next_logits.shape[-1]),
                ids[:, 1:].reshape(-1),
                reduction="none",
            ).view(len(rows), longest - 1)
            valid = mask[:, 1:].bool()
            nll[rows] = (token_nll * valid).sum(dim=1).double().cpu().numpy()
            count[rows] = valid.sum(dim=1).cpu().numpy()
    return nll, count


def _summarise(nll: np.ndarray, count: np.ndarray) -> dict[str, float]:
    used = count > 0
    tokens = int(count.sum())
    loss = float(nll.sum() / tokens) if tokens else math.nan
    return {
        "sequences": int(used.sum()),
        "tokens": tokens,
        "loss": loss,
        "ppl": math.exp(loss) if tokens else math.nan,
        "sample_ppl": float(np.exp(nll[used] / count[used]).mean()) if used.any() else math.nan,
    }


def _encode_all(
    tokenizer: Any, texts: Mapping[str, Any], max_length: int | None
) -> dict[str, list[list[int]]]:
    if not isinstance(texts, Mapping) or not texts:
        raise DataError(
            "held-out texts must be a non-empty {language: texts or token-id lists} mapping"
        )
    encoded = {
        lang: encode_sequences(tokenizer, data, max_length=max_length, source=f"language {lang!r}")
        for lang, data in texts.items()
    }
    for lang, rows in encoded.items():
        if not any(len(r) >= 2 for r in rows):
            raise DataError(
                f"language {lang!r}: no sequence with at least 2 tokens, so no loss to measure"
            )
    return encoded


def language_loss(
    model: Any,
    tokenizer: Any,
    texts: Mapping[str, Any],
    *,
    batch_size: int = 8,
    max_length: int | None = 512,
) -> pd.DataFrame:
    """Per-language held-out loss: language, sequences, tokens, loss, ppl, sample_ppl.

    `texts`: {language: list of texts (with a tokenizer) or token-id lists}. Run it inside
    `ablate_heads` / `ablate_neurons` to measure an ablated model.
    """
    encoded = _encode_all(tokenizer, texts, max_length)
    rows = [
        {"language": lang, **_summarise(*sequence_losses(model, seqs, batch_size=batch_size))}
        for lang, seqs in encoded.items()
    ]
    return pd.DataFrame(
        rows, columns=["language", "sequences", "tokens", "loss", "ppl", "sample_ppl"]
    )


# ---------------------------------------------------------------------------------------------
# dark diagonal


@dataclass
class DarkDiagonal:
    """Per-language loss when each language's units are ablated, against the unablated model.

    `table`: one row per (masked, language, control, repeat) with columns
    masked, language, control ("selected" or "random"), repeat, n_units, baseline_loss,
    masked_loss, loss_delta (= masked_loss - baseline_loss), baseline and masked_ppl
    (perplexities), delta (= masked_ppl - baseline), delta_pct, ppl_ratio (= masked_ppl /
    baseline). The columns masked, language, baseline, masked_ppl, delta, delta_pct are those
    of `interp.specialization.reference.load_dark_diagonal`.
    """

    table: pd.DataFrame
    masked: tuple[str, ...]
    languages: tuple[str, ...]
    unit: str
    params: dict[str, Any] = field(default_factory=dict)

    def matrix(self, value: str = "loss_delta", control: str = "selected") -> pd.DataFrame:
        """[masked, language] matrix of `value` (mean over repeats for the random control)."""
        if value not in self.table.columns or value in ("masked", "language", "control"):
            raise ConfigError(f"value must be a numeric column of the table, got {value!r}")
        rows = self.table[self.table["control"] == control]
        if rows.empty:
            raise DataError(f"no rows with control {control!r} in this dark diagonal")
        grid = rows.pivot_table(index="masked", columns="language", values=value, aggfunc="mean")
        grid = grid.reindex(index=list(self.masked), columns=list(self.languages))
        grid.index.name, grid.columns.name = "masked", "language"
        return grid

    def summary(self, value: str = "loss_delta") -> pd.DataFrame:
        """Per masked language also measured: diagonal, off_diagonal (mean), random (the random
        control's diagonal, mean over repeats; NaN without control), diagonal_minus_random,
        row_rank (1 = its own language rises most among the languages measured) and
        column_rank (1 = its language is hurt most by its own units among all masked sets)."""
        grid = self.matrix(value)
        has_random = (self.table["control"] == "random").any()
        random = self.matrix(value, "random") if has_random else None
        out = []
        for lang in self.masked:
            if lang not in grid.columns:
                continue
            diagonal = grid.loc[lang, lang]
            others = grid.loc[lang].drop(lang)
            rand = random.loc[lang, lang] if random is not None else math.nan
            out.append(
                {
                    "language": lang,
                    "diagonal": diagonal,
                    "off_diagonal": others.mean() if len(others) else math.nan,
                    "random": rand,
                    "diagonal_minus_random": diagonal - rand,
                    "row_rank": int((grid.loc[lang] > diagonal).sum()) + 1,
                    "column_rank": int((grid[lang] > diagonal).sum()) + 1,
                }
            )
        return pd.DataFrame(out)

    def save(self, folder: str | Path) -> Path:
        """table.csv and meta.json under `folder` (atomic writes)."""
        from interp.io import atomic_write_json, atomic_write_text

        folder = Path(folder)
        buffer = io.StringIO()
        self.table.to_csv(buffer, index=False)
        atomic_write_text(folder / "table.csv", buffer.getvalue())
        meta = {
            "masked": list(self.masked),
            "languages": list(self.languages),
            "unit": self.unit,
            "params": self.params,
        }
        atomic_write_json(folder / "meta.json", meta)
        return folder


def _unit_sets(units: Any, unit: str | None) -> tuple[dict[str, set[tuple[int, int]]], str]:
    """({language: set}, unit) from a HeadSelection, a NeuronSelection or a plain mapping."""
    from interp.specialization.selection import UnitSelection

    kind = type(units).__name__
    if isinstance(units, UnitSelection):
        inferred = f"{units.unit}s"
        if unit is not None and unit != inferred:
            raise ConfigError(f"unit={unit!r} but a {kind} holds {inferred}")
        sets = units.sets()
        unit = inferred
    elif isinstance(units, Mapping):
        if unit is None:
            raise ConfigError(
                "a {language: set of (layer, index)} mapping needs unit='heads' or unit='neurons'"
            )
        sets = {lang: {(int(a), int(b)) for a, b in items} for lang, items in units.items()}
    else:
        raise ConfigError(
            f"units: expected a HeadSelection, a NeuronSelection or a mapping, got {kind}"
        )
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    return sets, unit


def _model_params(model: Any) -> dict[str, Any]:
    import torch

    config = adapters.unwrap(model).config
    return {
        "model": getattr(config, "_name_or_path", "") or type(adapters.unwrap(model)).__name__,
        "family": config.model_type,
        "torch": torch.__version__,
    }


def dark_diagonal(
    model: Any,
    tokenizer: Any,
    texts: Mapping[str, Any],
    units: Any,
    *,
    unit: str | None = None,
    random_repeats: int = 1,
    seed: int = 0,
    batch_size: int = 8,
    max_length: int | None = 512,
    perplexity: str = "token",
    progress: bool = True,
) -> DarkDiagonal:
    """Ablate each language's units in turn and measure held-out loss in every language.

    texts: {language measured: texts or token-id lists}. units: a HeadSelection, a
    NeuronSelection, or {language: set of (layer, index)} with unit="heads" / "neurons".
    random_repeats: random sets of the same per-layer size per masked language (0 = none).
    perplexity: "token" (exp of the token-mean loss) or "sample" (the mean over sequences of
    exp(sequence loss), the release's number) fills the baseline / masked_ppl columns.
    """
    from tqdm.auto import tqdm

    if perplexity not in ("token", "sample"):
        raise ConfigError(f"perplexity must be 'token' or 'sample', got {perplexity!r}")
    if random_repeats < 0:
        raise ConfigError(f"random_repeats must be >= 0, got {random_repeats}")
    sets, unit = _unit_sets(units, unit)
    if not sets:
        raise DataError("units: no language to ablate")
    num_layers, per_layer = _unit_size(model, unit)
    for lang, items in sets.items():  # fail before any forward pass
        units_by_layer(items, num_layers, per_layer, f"{unit} of {lang!r}")
    encoded = _encode_all(tokenizer, texts, max_length)
    ppl_key = "ppl" if perplexity == "token" else "sample_ppl"
    rng = np.random.default_rng(seed)

    # every language's sequences in one pass per condition (fuller batches), split after
    pooled = [seq for seqs in encoded.values() for seq in seqs]
    bounds = np.cumsum([0] + [len(seqs) for seqs in encoded.values()])

    def measure() -> dict[str, dict[str, float]]:
        nll, count = sequence_losses(model, pooled, batch_size=batch_size)
        return {
            lang: _summarise(nll[bounds[k] : bounds[k + 1]], count[bounds[k] : bounds[k + 1]])
            for k, lang in enumerate(encoded)
        }

    conditions = [(lang, "selected", 0, items) for lang, items in sets.items()]
    for lang, items in sets.items():
        conditions += [
            (lang, "random", r, random_like(items, per_layer, rng)) for r in range(random_repeats)
        ]
    bar = tqdm(total=len(conditions) + 1, desc=f"dark diagonal ({unit})", disable=not progress)
    baseline = measure()
    bar.update()
    rows = []
    for masked, control, repeat, items in conditions:
        with ablate(model, items, unit):
            result = measure()
        bar.update()
        for lang in encoded:
            base, hit = baseline[lang], result[lang]
            rows.append(
                {
                    "masked": masked,
                    "language": lang,
                    "control": control,
                    "repeat": repeat,
                    "n_units": len(items),
                    "baseline_loss": base["loss"],
                    "masked_loss": hit["loss"],
                    "loss_delta": hit["loss"] - base["loss"],
                    "baseline": base[ppl_key],
                    "masked_ppl": hit[ppl_key],
                    "delta": hit[ppl_key] - base[ppl_key],
                    "delta_pct": 100 * (hit[ppl_key] - base[ppl_key]) / base[ppl_key],
                    "ppl_ratio": hit[ppl_key] / base[ppl_key],
                }
            )
    bar.close()
    params = {
        **_model_params(model),
        "unit": unit,
        "random_repeats": random_repeats,
        "seed": seed,
        "max_length": max_length,
        "perplexity": perplexity,
        "sequences": {lang: len(seqs) for lang, seqs in encoded.items()},
    }
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return DarkDiagonal(table, tuple(sets), tuple(encoded), unit, params)


def reference_dark_diagonal(
    name: str = "olmo-base", root: str | Path | None = None
) -> DarkDiagonal:
    """The published dark diagonal (`dark-diagonal/<name>.json`) in `DarkDiagonal` form.

    Only perplexities were published (the mean over sequences of exp(sequence loss)): the loss
    columns are NaN, n_units is the paper's k = 20 heads.
    """
    from interp.specialization.reference import load_dark_diagonal

    frame = load_dark_diagonal(name, root)
    table = pd.DataFrame(
        {
            "masked": frame["masked"],
            "language": frame["language"],
            "control": "selected",
            "repeat": 0,
            "n_units": 20,  # int(32 * 32 * 0.02), the paper's k for a 32 x 32 model
            "baseline_loss": math.nan,
            "masked_loss": math.nan,
            "loss_delta": math.nan,
            "baseline": frame["baseline"],
            "masked_ppl": frame["masked_ppl"],
            "delta": frame["delta"],
            "delta_pct": frame["delta_pct"],
            "ppl_ratio": frame["masked_ppl"] / frame["baseline"],
        },
        columns=TABLE_COLUMNS,
    )
    masked = tuple(dict.fromkeys(frame["masked"]))
    languages = tuple(dict.fromkeys(frame["language"]))
    params = {"source": f"dark-diagonal/{name}.json", "perplexity": "sample"}
    return DarkDiagonal(table, masked, languages, "heads", params)
