"""Import the PolyFact release's published analysis results into interp's tables.

The directory (`polyfact-results`, see its README) holds:
- ``lape/<checkpoint>/lape_results.json`` + ``meta.json``: the paper-variant LAPE neurons of a
  7B model as ``{layer: {language: [neuron, ...]}}``. Layer keys there are 1-based strings
  ("1".."32"); `load_lape` converts them to 0-based ints, like every interp table.
- ``lahis/<checkpoint>/lahis_<lang>.pth`` (the tensors behind the paper's head figures) and
  ``lahis-recomputed/<checkpoint>/`` (recomputed later, with ``meta.json``): one float tensor
  ``[layers, heads]`` per language; `load_lahis` stacks them into ``[languages, layers, heads]``
  in the paper's order (en de id pt ar bn sw es ru fr ja zh).
- ``dark-diagonal/<name>.json``: perplexity per language with no heads masked and with
  language X's top heads masked.

Without an explicit `root`, the directory is looked for as ``shared/reference/polyfact-results``
next to (``../``) or inside the repository root, then the same relative to the current
directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from interp.errors import DataError
from interp.languages import TRAINED, check_codes
from interp.specialization.lape import NeuronSelection

__all__ = [
    "PAPER_LANGUAGES",
    "find_reference_dir",
    "lahis_checkpoints",
    "lape_checkpoints",
    "load_all_lape",
    "load_dark_diagonal",
    "load_lahis",
    "load_lahis_meta",
    "load_lape",
    "load_lape_meta",
]

PAPER_LANGUAGES: tuple[str, ...] = TRAINED  # en de id pt ar bn sw es ru fr ja zh
_RELATIVE = Path("shared") / "reference" / "polyfact-results"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def find_reference_dir(root: str | Path | None = None) -> Path:
    """The `polyfact-results` directory: `root` if given, else the first default that exists."""
    if root is not None:
        path = Path(root)
        if not path.is_dir():
            raise DataError(
                f"{path}: reference directory not found. Expected the PolyFact release's "
                "polyfact-results folder (lape/, lahis/, lahis-recomputed/, dark-diagonal/)"
            )
        return path
    candidates = []
    for base in (_REPO_ROOT, Path.cwd()):
        candidates += [base.parent / _RELATIVE, base / _RELATIVE]
    for path in candidates:
        if path.is_dir():
            return path
    raise DataError(
        "PolyFact reference results not found; looked in "
        + ", ".join(str(p) for p in dict.fromkeys(candidates))
        + ". Fix: pass root=<path to polyfact-results>"
    )


def _file(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: file not found. Expected there: {expected}")
    return path


def _read_json(path: Path, expected: str) -> Any:
    _file(path, expected)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}). Expected: {expected}"
        ) from None


def _subdirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


# ---------------------------------------------------------------------------------------------
# LAPE


_LAPE_EXPECTED = "{layer (1-based string): {language: [neuron index, ...]}} (lape_results.json)"
_META_EXPECTED = (
    "meta.json with model, langs, top_frac, n_selected, num_layers, intermediate_size, "
    "tokens_per_lang"
)


def lape_checkpoints(root: str | Path | None = None) -> list[str]:
    """Checkpoint names under lape/ (olmo-base, qwen-grpo, ...)."""
    return _subdirs(find_reference_dir(root) / "lape")


def load_lape_meta(checkpoint: str, root: str | Path | None = None) -> dict[str, Any]:
    path = find_reference_dir(root) / "lape" / checkpoint / "meta.json"
    meta = _read_json(path, _META_EXPECTED)
    missing = [k for k in ("langs", "num_layers", "intermediate_size") if k not in meta]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}. Expected: {_META_EXPECTED}")
    return meta


def load_lape(checkpoint: str, root: str | Path | None = None) -> NeuronSelection:
    """The published LAPE neurons of a checkpoint as a `NeuronSelection` (layers 0-based).

    entropy and p are NaN (not published); `params` holds meta.json plus the checkpoint name.
    """
    folder = find_reference_dir(root) / "lape" / checkpoint
    meta = load_lape_meta(checkpoint, root)
    path = folder / "lape_results.json"
    data = _read_json(path, _LAPE_EXPECTED)
    languages = check_codes(meta["langs"], source=str(folder / "meta.json"))
    n_layers, n_neurons = int(meta["num_layers"]), int(meta["intermediate_size"])
    if not isinstance(data, dict):
        raise DataError(f"{path}: top level is {type(data).__name__}. Expected: {_LAPE_EXPECTED}")
    rows = []
    for key, per_language in data.items():
        try:
            layer = int(key) - 1
        except ValueError:
            raise DataError(f"{path}: layer key {key!r} is not an integer") from None
        if not 0 <= layer < n_layers:
            raise DataError(f"{path}: layer {key} outside 1..{n_layers} (1-based, num_layers)")
        for lang, neurons in per_language.items():
            if lang not in languages:
                raise DataError(f"{path}, layer {key}: language {lang!r} not in meta langs")
            for neuron in neurons:
                if not (isinstance(neuron, int) and 0 <= neuron < n_neurons):
                    raise DataError(
                        f"{path}, layer {key}, {lang}: neuron {neuron!r} outside "
                        f"0..{n_neurons - 1} (intermediate_size {n_neurons})"
                    )
                rows.append((lang, layer, neuron))
    table = pd.DataFrame(rows, columns=["language", "layer", "neuron"])
    if table.duplicated().any():
        lang, layer, neuron = table[table.duplicated()].iloc[0]
        raise DataError(f"{path}: neuron {neuron} of layer {layer + 1} listed twice for {lang}")
    order = {lang: i for i, lang in enumerate(languages)}
    table = (
        table.assign(_order=table["language"].map(order))
        .sort_values(["_order", "layer", "neuron"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    table["layer"] = table["layer"].astype(np.int64)
    table["neuron"] = table["neuron"].astype(np.int64)
    table["entropy"] = np.nan
    table["p"] = np.nan
    params = {**meta, "checkpoint": checkpoint, "source": str(path)}
    return NeuronSelection(table, languages, n_layers, n_neurons, "lape-paper", params)


def load_all_lape(root: str | Path | None = None) -> dict[str, NeuronSelection]:
    """Every checkpoint under lape/, by name."""
    return {name: load_lape(name, root) for name in lape_checkpoints(root)}


# ---------------------------------------------------------------------------------------------
# LAHIS


def _lahis_folder(checkpoint: str, root: str | Path | None, recomputed: bool) -> Path:
    return find_reference_dir(root) / ("lahis-recomputed" if recomputed else "lahis") / checkpoint


def lahis_checkpoints(root: str | Path | None = None, *, recomputed: bool = False) -> list[str]:
    """Checkpoint names under lahis/ (or lahis-recomputed/)."""
    return _subdirs(find_reference_dir(root) / ("lahis-recomputed" if recomputed else "lahis"))


def load_lahis(
    checkpoint: str,
    root: str | Path | None = None,
    *,
    recomputed: bool = False,
    languages: Sequence[str] = PAPER_LANGUAGES,
):
    """LAHIS importance as a float32 torch tensor `[languages, layers, heads]`.

    Rows follow `languages` (default: the paper's order). `recomputed=True` reads
    lahis-recomputed/ instead of lahis/.
    """
    import torch

    folder = _lahis_folder(checkpoint, root, recomputed)
    languages = check_codes(languages, source=str(folder))
    tensors = []
    for lang in languages:
        path = _file(
            folder / f"lahis_{lang}.pth",
            f"the LAHIS importance of language {lang}, a float tensor [layers, heads] saved "
            "with torch.save",
        )
        try:
            value = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as err:  # a corrupt or non-tensor pickle
            raise DataError(f"{path}: cannot load with weights_only=True ({err})") from err
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise DataError(f"{path}: expected a [layers, heads] tensor, got {shape}")
        if tensors and value.shape != tensors[0].shape:
            raise DataError(
                f"{path}: shape {tuple(value.shape)} differs from {languages[0]}'s "
                f"{tuple(tensors[0].shape)}"
            )
        if not torch.isfinite(value).all():
            raise DataError(f"{path}: non-finite importance values")
        tensors.append(value.float())
    return torch.stack(tensors)


def load_lahis_meta(checkpoint: str, root: str | Path | None = None) -> dict[str, Any]:
    """meta.json of a lahis-recomputed checkpoint (model, data_num, max_length, ...)."""
    path = _lahis_folder(checkpoint, root, recomputed=True) / "meta.json"
    return _read_json(path, "model, arch, langs, data_num, max_length, num_layers, num_heads")


# ---------------------------------------------------------------------------------------------
# dark diagonal


def load_dark_diagonal(name: str = "olmo-base", root: str | Path | None = None) -> pd.DataFrame:
    """Tidy perplexities: masked (whose top heads were masked), language (evaluated),
    baseline, masked_ppl, delta (= masked_ppl - baseline) and delta_pct, as published."""
    path = find_reference_dir(root) / "dark-diagonal" / f"{name}.json"
    expected = (
        '{"baseline": {lang: ppl}, "masked": {masked_lang: {lang: ppl}}, "delta": ..., '
        '"delta_pct": ...}'
    )
    data = _read_json(path, expected)
    missing = [k for k in ("baseline", "masked") if k not in data]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}. Expected: {expected}")
    baseline = data["baseline"]
    rows = []
    for masked in data["masked"]:
        for lang, ppl in data["masked"][masked].items():
            if lang not in baseline:
                raise DataError(f"{path}: masked[{masked}] has {lang}, which has no baseline")
            rows.append(
                {
                    "masked": masked,
                    "language": lang,
                    "baseline": float(baseline[lang]),
                    "masked_ppl": float(ppl),
                    "delta": float(
                        data.get("delta", {}).get(masked, {}).get(lang, ppl - baseline[lang])
                    ),
                    "delta_pct": float(
                        data.get("delta_pct", {})
                        .get(masked, {})
                        .get(lang, 100 * (ppl - baseline[lang]) / baseline[lang])
                    ),
                }
            )
    return pd.DataFrame(
        rows, columns=["masked", "language", "baseline", "masked_ppl", "delta", "delta_pct"]
    )
