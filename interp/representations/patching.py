"""Cross-lingual activation patching: at which depth does the English run's state carry the fact?

    from interp.representations.patching import cross_lingual_patching
    result = cross_lingual_patching(model, tokenizer, facts, languages=("de", "ja"))
    result.table      # language, layer, metric, value, lo, hi, n
    result.per_fact   # one row per (fact, language, layer)
    result.matrix("delta_log_likelihood")   # [language, layer]

After Dumas et al. (ACL 2025, "Separating Tongue from Thought"): for each fact, language L and
decoder layer `layer`,
- donor run: the fact's question in the donor language (English) is scored as the evaluation
  scores it; the residual stream at the OUTPUT of decoder layer `layer` at the prompt's last
  token is kept;
- recipient run: the same fact's question in L is scored with that donor vector written over
  the residual at the output of layer `layer` at L's last prompt token. Only that one position
  is patched: the options' tokens come after it and stay unpatched (they see the patched state
  from layer `layer + 1` on, through attention);
- measured: the correct option's score (per-token mean log-likelihood with the default
  `normalize="token"`, exactly `interp.evaluate.scoring.score_options`'s protocol: "Question:
  {q}\\nAnswer:" followed by each option, options packed after one copy of the prompt), the
  change against the unpatched L run, and whether the correct option is the argmax.

Metrics of `table` (means over facts, percentile bootstrap interval over facts):
- `delta_log_likelihood`: patched minus unpatched score of the correct option;
- `accuracy`: share of facts whose argmax option is the correct one after patching;
- `accuracy_delta`: accuracy after patching minus unpatched accuracy (paired per fact);
- `becomes_correct`: among the facts L got wrong unpatched, the share the patch makes right
  (n = those facts).
Patching the donor into itself changes nothing; patching at the last layer makes the
recipient's next-token distribution at its last prompt token the donor's (both are tested).

Cost: per batch of facts, one donor pass (the donor's own scoring run, which also gives the
donor's accuracy) and per language 1 + len(layers) recipient passes; nothing else runs.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.evaluate.scoring import (
    NORMALIZATIONS,
    PROMPT_TEMPLATE,
    EncodedOption,
    _model_device,
    _option_log_likelihoods,
    encode_many,
)
from interp.intervals import finite_interval
from interp.models import adapters

if TYPE_CHECKING:
    import torch

    from interp.facts.schema import Fact, FactSet

__all__ = [
    "PATCHING_COLUMNS",
    "PATCHING_METRICS",
    "PATCHING_PER_FACT_COLUMNS",
    "PatchingResult",
    "ResidualPatch",
    "capture_residual",
    "cross_lingual_patching",
    "patch_residual",
    "summarize_patching",
]

PATCHING_METRICS = ("delta_log_likelihood", "accuracy", "accuracy_delta", "becomes_correct")
PATCHING_COLUMNS = ["language", "layer", "metric", "value", "lo", "hi", "n"]
PATCHING_PER_FACT_COLUMNS = [
    "fact_id",
    "language",
    "layer",
    "baseline_score",
    "patched_score",
    "delta",
    "baseline_correct",
    "patched_correct",
    "donor_correct",
]


# ---------------------------------------------------------------------------------------------
# hooks


@dataclass(frozen=True)
class ResidualPatch:
    """Values written over a decoder layer's output: `values[i]` goes to (rows[i], columns[i]).

    `values`: `[len(rows), hidden]`. Everything else in the layer's output is left as it was.
    """

    rows: Sequence[int]
    columns: Sequence[int]
    values: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.columns) or len(self.rows) != len(self.values):
            raise ConfigError(
                f"ResidualPatch: {len(self.rows)} rows, {len(self.columns)} columns and "
                f"{len(self.values)} value vectors; give one row and column per vector"
            )


def _hidden(output: Any) -> torch.Tensor:
    """The hidden states in a decoder layer's output (a tensor, or a tuple whose first it is)."""
    return output[0] if isinstance(output, tuple) else output


def _check_layers(model: Any, layers: Iterable[int]) -> list[int]:
    n = adapters.num_layers(model)
    out = []
    for layer in layers:
        if not 0 <= int(layer) < n:
            raise ConfigError(f"layer {layer}: outside 0..{n - 1} (the model has {n} layers)")
        out.append(int(layer))
    return out


@contextlib.contextmanager
def patch_residual(model: Any, patches: Mapping[int, ResidualPatch]) -> Iterator[None]:
    """Inside the block, the output of decoder layer `layer` (the residual stream after it) has
    `patches[layer].values` at (row, column) pairs `patches[layer]`. Any forward pass of the
    model (or its decoder) run inside is patched; positions not named are untouched."""
    import torch

    layer_list = adapters.layers(model)
    _check_layers(model, patches)
    handles = []

    def make(patch: ResidualPatch):
        rows = torch.as_tensor(list(patch.rows), dtype=torch.long)
        cols = torch.as_tensor(list(patch.columns), dtype=torch.long)

        def hook(module: Any, args: Any, output: Any) -> Any:
            hidden = _hidden(output)
            patched = hidden.clone()
            device = hidden.device
            patched[rows.to(device), cols.to(device)] = patch.values.to(device, hidden.dtype)
            if isinstance(output, tuple):
                return (patched, *output[1:])
            return patched

        return hook

    try:
        for layer, patch in patches.items():
            handles.append(layer_list[int(layer)].register_forward_hook(make(patch)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def capture_residual(
    model: Any, rows: Sequence[int], columns: Sequence[int], layers: Iterable[int] | None = None
) -> Iterator[dict[int, torch.Tensor]]:
    """Inside the block, forward passes record the output of each decoder layer in `layers`
    (default: all) at (rows[i], columns[i]): the yielded dict maps layer -> `[len(rows), hidden]`
    (the last pass's values, detached)."""
    import torch

    layer_list = adapters.layers(model)
    chosen = _check_layers(model, range(len(layer_list)) if layers is None else layers)
    rows_t = torch.as_tensor(list(rows), dtype=torch.long)
    cols_t = torch.as_tensor(list(columns), dtype=torch.long)
    captured: dict[int, torch.Tensor] = {}
    handles = []

    def make(layer: int):
        def hook(module: Any, args: Any, output: Any) -> None:
            hidden = _hidden(output)
            device = hidden.device
            captured[layer] = hidden[rows_t.to(device), cols_t.to(device)].detach().clone()

        return hook

    try:
        for layer in chosen:
            handles.append(layer_list[layer].register_forward_hook(make(layer)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------
# scoring pieces


def _facts_list(facts: FactSet | Iterable[Fact]) -> list[Fact]:
    out = list(facts.facts if hasattr(facts, "facts") else facts)
    if not out:
        raise DataError("facts: nothing to patch. Fix: pass at least one fact")
    return out


def _item_scores(
    totals: np.ndarray, batch: list[list[EncodedOption]], options: list[tuple[str, ...]], how: str
) -> list[np.ndarray]:
    """Per item, the options' scores from summed log-likelihoods, normalised as scoring does."""
    out, position = [], 0
    for encoded, texts in zip(batch, options, strict=True):
        values = totals[position : position + len(encoded)]
        position += len(encoded)
        if how == "token":
            values = values / np.array([o.n_option_tokens for o in encoded], dtype=float)
        elif how == "char":
            values = values / np.array([len(t) for t in texts], dtype=float)
        out.append(np.asarray(values, dtype=float))
    return out


def _last_prompt_columns(batch: list[list[EncodedOption]]) -> list[int]:
    """Column of each item's last prompt token in its packed row (the options follow it)."""
    return [options[0].option_start - 1 for options in batch]


# ---------------------------------------------------------------------------------------------
# results


@dataclass
class PatchingResult:
    """Cross-lingual patching results.

    `table`: language, layer, metric, value, lo, hi, n (see the module docstring for metrics).
    `per_fact`: fact_id, language, layer, baseline_score, patched_score, delta (the correct
    option's scores), baseline_correct, patched_correct, donor_correct (booleans).
    """

    table: pd.DataFrame
    per_fact: pd.DataFrame
    donor: str
    languages: tuple[str, ...]
    layers: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def matrix(self, metric: str = "delta_log_likelihood") -> pd.DataFrame:
        """[language, layer] grid of one metric's value."""
        if metric not in PATCHING_METRICS:
            raise ConfigError(f"metric must be one of {PATCHING_METRICS}, got {metric!r}")
        rows = self.table[self.table["metric"] == metric]
        grid = rows.pivot(index="language", columns="layer", values="value")
        return grid.reindex(index=list(self.languages), columns=list(self.layers))

    def baseline(self) -> pd.DataFrame:
        """Unpatched accuracy per language (and the donor's): language, accuracy, n."""
        first = self.per_fact[self.per_fact["layer"] == self.layers[0]]
        rows = [
            {
                "language": self.donor,
                "accuracy": float(first.groupby("fact_id")["donor_correct"].first().mean()),
                "n": int(first["fact_id"].nunique()),
            }
        ]
        for lang in self.languages:
            if lang == self.donor:
                continue
            part = first[first["language"] == lang]
            rows.append(
                {
                    "language": lang,
                    "accuracy": float(part["baseline_correct"].mean()),
                    "n": len(part),
                }
            )
        return pd.DataFrame(rows, columns=["language", "accuracy", "n"])

    def save(self, folder: str | Path) -> Path:
        """table.csv, per_fact.csv and meta.json under `folder` (atomic writes)."""
        from interp.io import atomic_write_json, atomic_write_text

        folder = Path(folder)
        for name, frame in (("table", self.table), ("per_fact", self.per_fact)):
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False)
            atomic_write_text(folder / f"{name}.csv", buffer.getvalue())
        meta = {
            "donor": self.donor,
            "languages": list(self.languages),
            "layers": list(self.layers),
            "params": self.params,
        }
        atomic_write_json(folder / "meta.json", meta)
        return folder


def _bootstrap_index(n: int, n_boot: int, seed: int) -> np.ndarray | None:
    if n_boot <= 0 or n == 0:
        return None
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _mean_with_interval(
    values: np.ndarray, index: np.ndarray | None, ci: float, weights: np.ndarray | None = None
) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of `values` (a weighted mean when `weights`: the share among facts
    with weight 1), the interval over bootstrap replicates `index` [n_boot, n]."""
    values = np.asarray(values, dtype=float)
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    n = int(w.sum())
    value = float((values * w).sum() / n) if n else math.nan
    if index is None or not n:
        return value, math.nan, math.nan, n
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = (values[index] * w[index]).sum(axis=1) / w[index].sum(axis=1)
    lo, hi = finite_interval(samples, ci)
    return value, lo, hi, n


def summarize_patching(
    per_fact: pd.DataFrame, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """The tidy summary (language, layer, metric, value, lo, hi, n) of a per-fact table.

    One set of bootstrap replicates of the facts is drawn per language and shared by all its
    layers and metrics (a paired comparison across depth). Filter `per_fact` first to
    summarise a subset (e.g. `per_fact[per_fact.donor_correct]`: facts known in the donor).
    """
    rows = []
    languages = list(dict.fromkeys(per_fact["language"]))
    for k, lang in enumerate(languages):
        part = per_fact[per_fact["language"] == lang]
        facts = list(dict.fromkeys(part["fact_id"]))
        index = _bootstrap_index(len(facts), n_boot, seed + k)
        for layer, group in part.groupby("layer", sort=True):
            group = group.set_index("fact_id").loc[facts]
            baseline = group["baseline_correct"].to_numpy(dtype=float)
            patched = group["patched_correct"].to_numpy(dtype=float)
            measures = {
                "delta_log_likelihood": (group["delta"].to_numpy(dtype=float), None),
                "accuracy": (patched, None),
                "accuracy_delta": (patched - baseline, None),
                "becomes_correct": (patched, 1.0 - baseline),
            }
            for metric, (values, weights) in measures.items():
                value, lo, hi, n = _mean_with_interval(values, index, ci, weights)
                rows.append(
                    {
                        "language": lang,
                        "layer": int(layer),
                        "metric": metric,
                        "value": value,
                        "lo": lo,
                        "hi": hi,
                        "n": n,
                    }
                )
    return pd.DataFrame(rows, columns=PATCHING_COLUMNS)


# ---------------------------------------------------------------------------------------------
# the analysis


def cross_lingual_patching(
    model: Any,
    tokenizer: Any,
    facts: FactSet | Iterable[Fact],
    *,
    languages: Sequence[str] | None = None,
    donor: str = "en",
    layers: Iterable[int] | None = None,
    batch_size: int = 8,
    normalize: str = "token",
    prompt_template: str = PROMPT_TEMPLATE,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    progress: bool = True,
) -> PatchingResult:
    """Patch the donor language's last-prompt-token residual into every language, layer by layer.

    `facts`: a FactSet (or facts) whose facts all have the donor and every one of `languages`
    (default: the FactSet's languages without the donor; the donor may be listed too, which
    patches it into itself: a check that must give 0). `layers`: decoder layers whose OUTPUT is
    patched (default: all). `batch_size` counts facts per forward pass. `normalize`: as in
    `score_options` ("token" = per-token mean log-likelihood, the evaluation's protocol).
    Returns a `PatchingResult` (tidy `table` with bootstrap intervals over facts, `per_fact`).
    """
    from tqdm.auto import tqdm

    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"normalize={normalize!r}: use one of {', '.join(NORMALIZATIONS)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: must be at least 1")
    fact_list = _facts_list(facts)
    if languages is None:
        declared = getattr(facts, "languages", None) or tuple(fact_list[0].items)
        languages = tuple(code for code in declared if code != donor)
    languages = tuple(languages)
    if not languages:
        raise ConfigError("languages: none to patch into. Fix: name at least one language")
    for fact in fact_list:
        missing = [code for code in (donor, *languages) if code not in fact.items]
        if missing:
            raise DataError(
                f"fact {fact.fact_id!r} has no item in {', '.join(missing)}. Fix: pass facts "
                "that exist in the donor and every patched language"
            )
    n_layers = adapters.num_layers(model)
    layer_list = tuple(_check_layers(model, range(n_layers) if layers is None else layers))
    if not layer_list:
        raise ConfigError("layers: none to patch. Fix: name at least one layer")

    codes = (donor, *[c for c in languages if c != donor])
    items = {c: [fact.items[c] for fact in fact_list] for c in codes}
    options = {c: [tuple(str(o) for o in it.options) for it in items[c]] for c in codes}
    encoded = {
        c: encode_many(
            tokenizer,
            [
                (prompt_template.format(question=it.question), opts)
                for it, opts in zip(items[c], options[c], strict=True)
            ],
        )
        for c in codes
    }
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    device = _model_device(model)
    # similar lengths together (over every language a batch is run in): little padding
    order = sorted(
        range(len(fact_list)),
        key=lambda i: sum(len(o.input_ids) for c in codes for o in encoded[c][i]),
    )

    records: list[dict[str, Any]] = []
    was_training = model.training
    model.eval()
    starts = range(0, len(order), batch_size)
    try:
        for start in tqdm(starts, desc="patching", disable=not progress, unit="batch"):
            members = order[start : start + batch_size]

            def batch_of(code: str, members: list[int] = members) -> list[list[EncodedOption]]:
                return [encoded[code][i] for i in members]

            def correct_scores(code: str, totals: np.ndarray, members: list[int] = members):
                scores = _item_scores(
                    totals, batch_of(code), [options[code][i] for i in members], normalize
                )
                answers = [items[code][i].answer_index for i in members]
                own = np.array([s[a] for s, a in zip(scores, answers, strict=True)])
                right = np.array(
                    [int(np.argmax(s)) == a for s, a in zip(scores, answers, strict=True)]
                )
                return own, right

            donor_batch = batch_of(donor)
            donor_rows = range(len(members))
            with capture_residual(
                model, donor_rows, _last_prompt_columns(donor_batch), layer_list
            ) as states:
                donor_totals = _option_log_likelihoods(model, donor_batch, pad_id, device)
            _, donor_right = correct_scores(donor, donor_totals)
            for code in languages:
                batch = batch_of(code)
                base_score, base_right = correct_scores(
                    code, _option_log_likelihoods(model, batch, pad_id, device)
                )
                columns = _last_prompt_columns(batch)
                for layer in layer_list:
                    patch = ResidualPatch(donor_rows, columns, states[layer])
                    with patch_residual(model, {layer: patch}):
                        totals = _option_log_likelihoods(model, batch, pad_id, device)
                    score, right = correct_scores(code, totals)
                    for j, i in enumerate(members):
                        records.append(
                            {
                                "fact_id": fact_list[i].fact_id,
                                "language": code,
                                "layer": layer,
                                "baseline_score": float(base_score[j]),
                                "patched_score": float(score[j]),
                                "delta": float(score[j] - base_score[j]),
                                "baseline_correct": bool(base_right[j]),
                                "patched_correct": bool(right[j]),
                                "donor_correct": bool(donor_right[j]),
                                "_order": i,
                            }
                        )
    finally:
        model.train(was_training)

    per_fact = pd.DataFrame(records)
    lang_rank = {code: k for k, code in enumerate(languages)}
    per_fact = (
        per_fact.assign(_lang=per_fact["language"].map(lang_rank))
        .sort_values(["_lang", "layer", "_order"], kind="stable")
        .reset_index(drop=True)[PATCHING_PER_FACT_COLUMNS]
    )
    table = summarize_patching(per_fact, n_boot=n_boot, ci=ci, seed=seed)
    params = {
        "model": getattr(adapters.unwrap(model).config, "_name_or_path", ""),
        "donor": donor,
        "position": "last prompt token",
        "site": "decoder layer output (residual stream)",
        "normalize": normalize,
        "prompt_template": prompt_template,
        "n_facts": len(fact_list),
        "n_boot": n_boot,
        "ci": ci,
        "seed": seed,
        "batch_size": batch_size,
    }
    return PatchingResult(table, per_fact, donor, languages, layer_list, params)
