"""Causal language specificity: the MLP neurons and attention heads whose removal hurts a language.

    from interp.specialization.causal import causal_heads, causal_neurons
    sel = causal_neurons(model, tokenizer, held_out, like=lape_sel)  # k = LAPE's set sizes
    sel = causal_neurons(model, tokenizer, held_out, k=50, screen=4)
    sel.table(); sel.sets(); sel.selection(); sel.jaccard_with(lape_sel); sel.summary()
    heads = causal_heads(model, tokenizer, held_out, like=lahis_heads)

LAPE and LAHIS select units by activation statistics; activation is not effect. Here, as in
CRANE (arXiv 2601.04664), a unit is specific to language l when zeroing it hurts l:
- effect[l, u] = increase of l's held-out loss (mean next-token cross-entropy over all of l's
  predicted tokens, padding never counts; `language_loss`'s "loss") when unit u alone is
  zeroed. A neuron is zeroed at the input of `down_proj` (act(gate) * up := 0), a head at its
  slice of the `o_proj` input, exactly as `ablate_neurons` / `ablate_heads` do;
- relative[l, u] = effect[l, u] - mean over the other languages l' of effect[l', u]: what
  hurts l more than the rest (a unit every language needs has relative effect near 0).

Zeroing every unit one at a time costs (layers x units) forward passes over the held-out data,
so the units are screened first:
1. attribution (first order, "attribution patching"): attribution[l, u] = -(1 / N_l) sum_t
   a_t . dNLL_l / da_t, summed over all of l's tokens t (a_t: the unit's activation at the
   down_proj input, or the head's slice of the o_proj input; NLL_l summed over l's N_l
   predicted tokens), i.e. the linear estimate of effect[l, u]. One forward + backward per
   batch of sequences scores every unit of every layer at once;
2. per language, the `screen * k` units with the largest relative attribution are candidates;
   every candidate (the union over languages) is zeroed exactly, `unit_batch` units side by
   side in one forward pass (each unit in its own copy of the batch), all languages' sequences
   pooled, so each candidate gets its exact effect in every language;
3. per language, the selection = the k units with the largest exact relative effect among
   all units zeroed exactly (the union), only those with relative effect > 0 (so a language may get fewer than k). Ties go to the
   lower flat index (layer * units + unit). `screen=None` zeroes every unit (exhaustive).

k is an int, {language: int}, or taken from an activation-based selection (`like=`): each
language gets as many units as that selection gave it, so the two sets compare at equal size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.models import adapters
from interp.specialization.ablation import (
    UNITS,
    _encode_all,
    _input_device,
    _model_params,
    _pre_hooks,
    _unit_sets,
    _unit_size,
    units_by_layer,
)

if TYPE_CHECKING:
    import torch

    from interp.specialization.heads import HeadSelection
    from interp.specialization.lape import NeuronSelection

__all__ = [
    "TABLE_COLUMNS",
    "CausalSelection",
    "causal_heads",
    "causal_neurons",
    "causal_units",
    "default_unit_batch",
    "relative",
    "unit_attribution",
    "unit_effects",
]

TABLE_COLUMNS = [
    "language",
    "layer",
    "unit",
    "attribution",
    "relative_attribution",
    "exact",
    "effect",
    "relative_effect",
    "selected",
]


def relative(values: np.ndarray) -> np.ndarray:
    """values[l] - mean over the other languages l' of values[l'] (axis 0 = languages)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n < 2:
        raise DataError("a relative effect needs at least 2 languages")
    return values - (values.sum(axis=0, keepdims=True) - values) / (n - 1)


# ---------------------------------------------------------------------------------------------
# inputs


def _limit_tokens(seqs: list[list[int]], max_tokens: int | None) -> list[list[int]]:
    """Sequences in order until `max_tokens` predicted tokens (the last one cut to fit)."""
    if max_tokens is None:
        return seqs
    out, left = [], max_tokens
    for seq in seqs:
        if left <= 0:
            break
        if len(seq) < 2:
            continue
        take = min(len(seq), left + 1)
        out.append(seq[:take])
        left -= take - 1
    return out


def _prepare(
    tokenizer: Any, texts: Mapping[str, Any], max_length: int | None, max_tokens: int | None
) -> dict[str, list[list[int]]]:
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1 (or None), got {max_tokens}")
    encoded = _encode_all(tokenizer, texts, max_length)
    if len(encoded) < 2:
        raise DataError(
            f"causal specificity compares languages: got only {list(encoded)}. Fix: pass held-out "
            "sequences of at least 2 languages"
        )
    return {
        lang: [s for s in _limit_tokens(seqs, max_tokens) if len(s) >= 2]
        for lang, seqs in encoded.items()
    }


def _batches(
    sequences: Sequence[Sequence[int]], batch_size: int, device: Any
) -> list[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(row indices, right-padded ids, attention mask) per batch, longest sequences first."""
    import torch

    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    order = [i for i in order if len(sequences[i]) >= 2]
    out = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        longest = len(sequences[rows[0]])
        ids = torch.zeros(len(rows), longest, dtype=torch.long)
        mask = torch.zeros(len(rows), longest, dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, : len(sequences[i])] = torch.as_tensor(sequences[i])
            mask[r, : len(sequences[i])] = 1
        out.append((rows, ids.to(device), mask.to(device)))
    return out


def _row_nll(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed next-token NLL per row [rows] (float32 or wider; padding never counts)."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    next_logits = logits[:, :-1].to(torch.promote_types(logits.dtype, torch.float32))
    token_nll = torch.nn.functional.cross_entropy(
        next_logits.reshape(-1, next_logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
    ).view(ids.shape[0], ids.shape[1] - 1)
    return (token_nll * mask[:, 1:]).sum(dim=1)


def _sites(model: Any, unit: str) -> tuple[list[Any], int, int]:
    """(module per layer whose first input holds the units, units per layer, columns per unit)."""
    size = adapters.shape(model)
    if unit == "neurons":
        modules = [adapters.down_proj(model, i) for i in range(size.num_layers)]
        return modules, size.intermediate_size, 1
    modules = [adapters.o_proj(model, i) for i in range(size.num_layers)]
    return modules, size.num_heads, size.head_dim


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


# ---------------------------------------------------------------------------------------------
# step 1: attribution


def unit_attribution(
    model: Any,
    encoded: Mapping[str, Sequence[Sequence[int]]],
    unit: str = "neurons",
    *,
    batch_size: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """First-order estimate of each unit's effect: float64 `[languages, layers, units]`.

    attribution[l, layer, u] = -(1 / N_l) sum over l's tokens of a . dNLL_l / da, where a is
    the unit's activation (neuron: its column of the down_proj input; head: its slice of the
    o_proj input, dotted over head_dim). `encoded`: {language: token-id sequences}. Weights are
    frozen during the pass (restored after); one forward + backward per batch per language.
    """
    import torch

    from interp.specialization.lahis import frozen

    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    modules, per_layer, width = _sites(model, unit)
    n_layers = len(modules)
    device = _input_device(model)
    out = np.zeros((len(encoded), n_layers, per_layer), dtype=np.float64)
    plans = {lang: _batches(seqs, batch_size, device) for lang, seqs in encoded.items()}
    bar = _progress(sum(len(p) for p in plans.values()), f"attribution ({unit})", progress)
    with frozen(model), torch.enable_grad():
        for li, (lang, plan) in enumerate(plans.items()):
            tokens = sum(len(s) - 1 for s in encoded[lang] if len(s) >= 2)
            if not tokens:
                raise DataError(f"language {lang!r}: no sequence with at least 2 tokens")
            acc = [None] * n_layers
            for _, ids, mask in plan:
                stash: list[tuple[int, torch.Tensor, torch.Tensor]] = []

                def make(layer: int, stash=stash) -> Callable[[torch.Tensor], torch.Tensor]:
                    def fn(x: torch.Tensor) -> torch.Tensor:
                        # x + 0 leaves the forward bit for bit; d.grad = dNLL/dx per token
                        d = torch.zeros_like(x, requires_grad=True)
                        stash.append((layer, x.detach(), d))
                        return x + d

                    return fn

                with _pre_hooks((module, make(i)) for i, module in enumerate(modules)):
                    nll = _row_nll(model, ids, mask).sum()
                grads = torch.autograd.grad(nll, [d for _, _, d in stash], allow_unused=True)
                for (layer, act, _), grad in zip(stash, grads, strict=True):
                    if grad is None:
                        continue
                    wide = torch.promote_types(act.dtype, torch.float32)
                    part = torch.einsum("...i,...i->i", act.to(wide), grad.to(wide)).double()
                    acc[layer] = part if acc[layer] is None else acc[layer] + part
                bar.update()
            for layer, summed in enumerate(acc):
                if summed is not None:
                    per_unit = summed.view(per_layer, width).sum(dim=1)
                    out[li, layer] = -per_unit.cpu().numpy() / tokens
    bar.close()
    return out


# ---------------------------------------------------------------------------------------------
# step 2: exact zeroing, several units side by side


def _side_by_side(
    modules: Sequence[Any],
    chunk: Sequence[tuple[int, int]],
    per_layer_width: int,
    width: int,
    device_of: Callable[[Any], Any],
) -> list[tuple[Any, Callable[[torch.Tensor], torch.Tensor]]]:
    """Hooks that zero unit chunk[c] in copy c of the batch (rows c * batch ... (c + 1) * batch)."""
    import torch

    copies = len(chunk)
    hooks = []
    for layer in sorted({layer for layer, _ in chunk}):
        keep = torch.ones(copies, 1, 1, per_layer_width, dtype=torch.bool)
        for c, (lay, index) in enumerate(chunk):
            if lay == layer:
                keep[c, 0, 0, index * width : (index + 1) * width] = False
        drop = ~keep.to(device_of(modules[layer]))

        def fn(x: torch.Tensor, drop=drop) -> torch.Tensor:
            split = x.unflatten(0, (copies, -1))
            # masked_fill, not a multiplication by 0: an inf activation must become 0, not nan
            return split.masked_fill(drop, 0.0).flatten(0, 1)

        hooks.append((modules[layer], fn))
    return hooks


def default_unit_batch(model: Any, batch_tokens: int = 0) -> int:
    """Units zeroed side by side per forward pass when not given, from the size of the logits
    of one batch (`batch_tokens` x vocabulary): as many copies (at most 8) as keep them under
    2**21 values on CPU, 2**28 on an accelerator, and at least 1.

    Side by side pays where a forward pass costs mostly its fixed overhead (measured on CPU:
    8 copies 2x faster than 1 with 1e5 logits per batch) and costs a little where the pass is
    already big (8 copies 10% slower with 3e6 logits per batch: memory traffic, no overhead
    left to share)."""
    vocab = adapters.shape(model).vocab_size
    budget = 2**21 if _input_device(model).type == "cpu" else 2**28
    return max(1, min(8, budget // max(1, batch_tokens * vocab)))


def unit_effects(
    model: Any,
    encoded: Mapping[str, Sequence[Sequence[int]]],
    units: Sequence[tuple[int, int]],
    unit: str = "neurons",
    *,
    batch_size: int = 8,
    unit_batch: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact effects of zeroing each unit alone: (effect `[units, languages]`, baseline loss
    `[languages]`, predicted tokens `[languages]`).

    effect[j, l] = loss of l with units[j] zeroed - loss of l unablated, the loss being the
    mean next-token NLL over all of l's tokens. All languages' sequences are pooled into
    batches of `batch_size`; `unit_batch` units are zeroed side by side in one forward pass of
    `unit_batch * batch_size` rows (copy c of the batch has unit c zeroed); None: from the
    size of a batch's logits (`default_unit_batch`).
    """
    import torch

    from interp.specialization.lahis import frozen

    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    if batch_size < 1 or (unit_batch is not None and unit_batch < 1):
        raise ConfigError(
            f"batch_size and unit_batch must be at least 1, got {batch_size}, {unit_batch}"
        )
    modules, per_layer, width = _sites(model, unit)
    units = [(int(a), int(b)) for a, b in units]
    units_by_layer(units, len(modules), per_layer, unit)  # fail before any forward pass
    languages = list(encoded)
    pooled = [seq for lang in languages for seq in encoded[lang]]
    lang_of = np.repeat(np.arange(len(languages)), [len(encoded[lang]) for lang in languages])
    tokens = np.array(
        [sum(len(s) - 1 for s in encoded[lang] if len(s) >= 2) for lang in languages],
        dtype=np.int64,
    )
    if not (tokens > 0).all():
        bad = [lang for lang, n in zip(languages, tokens, strict=True) if n == 0]
        raise DataError(f"language(s) {bad}: no sequence with at least 2 tokens")
    plan = _batches(pooled, batch_size, _input_device(model))
    if unit_batch is None:
        unit_batch = default_unit_batch(model, max((ids.numel() for _, ids, _ in plan), default=0))

    def device_of(module: Any) -> Any:
        return next(module.parameters()).device

    chunks = [units[i : i + unit_batch] for i in range(0, len(units), unit_batch)]
    bar = _progress(len(plan) * (len(chunks) + 1), f"exact zeroing ({unit})", progress)
    base = np.zeros(len(languages), dtype=np.float64)
    totals = np.zeros((len(units), len(languages)), dtype=np.float64)
    with frozen(model), torch.no_grad():
        for rows, ids, mask in plan:
            np.add.at(base, lang_of[rows], _row_nll(model, ids, mask).double().cpu().numpy())
            bar.update()
        start = 0
        for chunk in chunks:
            copies = len(chunk)
            with _pre_hooks(_side_by_side(modules, chunk, per_layer * width, width, device_of)):
                for rows, ids, mask in plan:
                    nll = _row_nll(model, ids.repeat(copies, 1), mask.repeat(copies, 1))
                    nll = nll.view(copies, len(rows)).double().cpu().numpy()
                    for c in range(copies):
                        np.add.at(totals[start + c], lang_of[rows], nll[c])
                    bar.update()
            start += copies
    bar.close()
    return (totals - base[None]) / tokens[None], base / tokens, tokens


# ---------------------------------------------------------------------------------------------
# result


@dataclass
class CausalSelection:
    """Per-language causal scores of every unit, and the units selected.

    Arrays are `[languages, layers, units]`: `attribution` (first-order estimate of the loss
    increase, every unit), `effect` (exact loss increase when zeroed alone; NaN where not
    computed), `selected` (bool). `k`: the budget per language; `baseline_loss` and `tokens`
    per language. `table()` is the tidy form.
    """

    unit: str
    languages: tuple[str, ...]
    attribution: np.ndarray
    effect: np.ndarray
    selected: np.ndarray
    k: dict[str, int]
    baseline_loss: np.ndarray
    tokens: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def num_layers(self) -> int:
        return self.attribution.shape[1]

    @property
    def per_layer(self) -> int:
        return self.attribution.shape[2]

    @property
    def relative_attribution(self) -> np.ndarray:
        return relative(self.attribution)

    @property
    def relative_effect(self) -> np.ndarray:
        """Exact relative effect `[languages, layers, units]` (NaN where not computed)."""
        return relative(self.effect)

    @property
    def exact(self) -> np.ndarray:
        """Bool `[layers, units]`: units zeroed exactly (their effect is known in every language)."""
        return ~np.isnan(self.effect).any(axis=0)

    def table(self) -> pd.DataFrame:
        """One row per (language, layer, unit): language, layer, unit, attribution,
        relative_attribution, exact, effect, relative_effect (NaN unless exact), selected."""
        n_lang, n_layers, per_layer = self.attribution.shape
        return pd.DataFrame(
            {
                "language": np.repeat(
                    np.asarray(self.languages, dtype=object), n_layers * per_layer
                ),
                "layer": np.tile(np.repeat(np.arange(n_layers), per_layer), n_lang),
                "unit": np.tile(np.arange(per_layer), n_lang * n_layers),
                "attribution": self.attribution.ravel(),
                "relative_attribution": self.relative_attribution.ravel(),
                "exact": np.broadcast_to(self.exact, self.attribution.shape).ravel(),
                "effect": self.effect.ravel(),
                "relative_effect": self.relative_effect.ravel(),
                "selected": self.selected.ravel(),
            },
            columns=TABLE_COLUMNS,
        )

    def selected_table(self) -> pd.DataFrame:
        """The selected rows of `table()`, per language by descending relative effect, with
        rank (0 = largest relative effect)."""
        frame = self.table()
        frame = frame[frame["selected"]].sort_values(
            ["language", "relative_effect"], ascending=[True, False], kind="stable"
        )
        order = {lang: i for i, lang in enumerate(self.languages)}
        frame = frame.sort_values("language", key=lambda s: s.map(order), kind="stable")
        frame = frame.reset_index(drop=True)
        frame.insert(1, "rank", frame.groupby("language", sort=False).cumcount())
        return frame

    def sets(self) -> dict[str, set[tuple[int, int]]]:
        """{language: set of (layer, unit)} selected, every language present."""
        return {
            lang: {(int(a), int(b)) for a, b in zip(*np.nonzero(self.selected[i]), strict=True)}
            for i, lang in enumerate(self.languages)
        }

    def mask(self) -> np.ndarray:
        """Bool `[languages, layers, units]`, True where selected."""
        return self.selected.copy()

    def selection(self) -> NeuronSelection | HeadSelection:
        """A `NeuronSelection` (neurons; scorer "causal") or a `HeadSelection` (heads; k = the
        largest budget, importance = exact relative effect) holding the selected units."""
        params = {**self.params, "k": dict(self.k)}
        if self.unit == "neurons":
            from interp.specialization.lape import NeuronSelection

            return NeuronSelection.from_mask(
                self.selected, None, self.languages, scorer="causal", params=params
            )
        from interp.specialization.heads import HeadSelection

        frame = self.selected_table()
        table = pd.DataFrame(
            {
                "language": frame["language"],
                "rank": frame["rank"].astype(np.int64),
                "layer": frame["layer"].astype(np.int64),
                "head": frame["unit"].astype(np.int64),
                "flat": (frame["layer"] * self.per_layer + frame["unit"]).astype(np.int64),
                "importance": frame["relative_effect"],
            }
        )
        k = max([*self.k.values(), 1])
        return HeadSelection(table, self.languages, self.num_layers, self.per_layer, k, None)

    def jaccard_with(self, other: Any) -> pd.DataFrame:
        """Per language: n_causal, n_other, shared, jaccard against another selection (a
        NeuronSelection, a HeadSelection, or {language: set of (layer, unit)}); a last row
        "all" pools (language, unit) pairs. Languages missing from `other` count as empty."""
        from interp.compare import jaccard

        theirs, _ = _unit_sets(other, self.unit)
        mine = self.sets()
        rows, pooled_a, pooled_b = [], set(), set()
        for lang in self.languages:
            a, b = mine[lang], set(theirs.get(lang, set()))
            pooled_a |= {(lang, *u) for u in a}
            pooled_b |= {(lang, *u) for u in b}
            rows.append((lang, len(a), len(b), len(a & b), jaccard(a, b)))
        rows.append(
            (
                "all",
                len(pooled_a),
                len(pooled_b),
                len(pooled_a & pooled_b),
                jaccard(pooled_a, pooled_b),
            )
        )
        return pd.DataFrame(rows, columns=["language", "n_causal", "n_other", "shared", "jaccard"])

    def summary(self) -> pd.DataFrame:
        """Per language: k, selected, exact_units (units zeroed exactly, all languages),
        baseline_loss, tokens, top_relative_effect, and attribution_corr / attribution_rank_corr
        (Pearson / Spearman of relative attribution against exact relative effect over the
        exactly zeroed units: how well the first-order screen ranks; with a screen these are
        over the candidates only, a range restricted to the top)."""
        rel_a, rel_e = self.relative_attribution, self.relative_effect
        exact = self.exact
        rows = []
        for i, lang in enumerate(self.languages):
            a = pd.Series(rel_a[i][exact])
            e = pd.Series(rel_e[i][exact])
            enough = len(a) > 2 and a.std() > 0 and e.std() > 0
            rows.append(
                {
                    "language": lang,
                    "k": self.k[lang],
                    "selected": int(self.selected[i].sum()),
                    "exact_units": int(exact.sum()),
                    "baseline_loss": float(self.baseline_loss[i]),
                    "tokens": int(self.tokens[i]),
                    "top_relative_effect": float(e.max()) if len(e) else math.nan,
                    "attribution_corr": float(a.corr(e)) if enough else math.nan,
                    "attribution_rank_corr": (
                        float(a.corr(e, method="spearman")) if enough else math.nan
                    ),
                }
            )
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# the scorer


def _budgets(
    k: int | Mapping[str, int] | None, like: Any, unit: str, languages: Sequence[str]
) -> dict[str, int]:
    if k is not None and like is not None:
        raise ConfigError("pass either k or like (take k from a selection), not both")
    if k is None and like is None:
        raise ConfigError(
            "causal selection needs a budget: k=<units per language>, {language: k}, or "
            "like=<selection> for the same set sizes as an activation-based selection"
        )
    if like is not None:
        sets, _ = _unit_sets(like, unit)
        missing = [lang for lang in languages if lang not in sets]
        if missing:
            raise DataError(
                f"like: the selection has no set for language(s) {missing}. Fix: compare a "
                "selection over the same languages, or pass k"
            )
        return {lang: len(sets[lang]) for lang in languages}
    if isinstance(k, Mapping):
        missing = [lang for lang in languages if lang not in k]
        if missing:
            raise ConfigError(f"k: no budget for language(s) {missing}")
        budgets = {lang: int(k[lang]) for lang in languages}
    else:
        budgets = {lang: int(k) for lang in languages}
    bad = {lang: v for lang, v in budgets.items() if v < 0}
    if bad:
        raise ConfigError(f"k must be >= 0, got {bad}")
    return budgets


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Flat indices of the `count` largest values, ties to the lower index (NaN never)."""
    finite = np.flatnonzero(~np.isnan(values))
    order = finite[np.argsort(-values[finite], kind="stable")]
    return order[:count]


def causal_units(
    model: Any,
    tokenizer: Any,
    sequences_by_language: Mapping[str, Any],
    *,
    unit: str,
    k: int | Mapping[str, int] | None = None,
    like: Any = None,
    screen: int | None = 4,
    batch_size: int = 8,
    unit_batch: int | None = None,
    max_length: int | None = 512,
    max_tokens: int | None = None,
    progress: bool = False,
) -> CausalSelection:
    """Causal scores and selection of `unit` ("neurons" or "heads"); see the module docstring.

    sequences_by_language: {language: texts (with a tokenizer) or token-id lists}, as
    `language_loss` / `dark_diagonal` take them. k: units per language (int or mapping), or
    like=<NeuronSelection / HeadSelection / mapping> for its per-language set sizes.
    screen: candidates per language = screen * k by relative attribution (None: zero every
    unit). max_length cuts each sequence; max_tokens caps the predicted tokens per language.
    """
    if unit not in UNITS:
        raise ConfigError(f"unit must be one of {UNITS}, got {unit!r}")
    if screen is not None and (isinstance(screen, bool) or int(screen) < 1):
        raise ConfigError(f"screen must be an integer >= 1 or None (exhaustive), got {screen!r}")
    encoded = _prepare(tokenizer, sequences_by_language, max_length, max_tokens)
    languages = tuple(encoded)
    budgets = _budgets(k, like, unit, languages)
    n_layers, per_layer = _unit_size(model, unit)
    n_units = n_layers * per_layer

    attribution = unit_attribution(model, encoded, unit, batch_size=batch_size, progress=progress)
    if screen is None:
        candidates = np.arange(n_units)
    else:
        rel_a = relative(attribution).reshape(len(languages), -1)
        picked = [
            _top(rel_a[i], min(n_units, int(screen) * budgets[lang]))
            for i, lang in enumerate(languages)
        ]
        candidates = np.unique(np.concatenate([np.empty(0, dtype=np.int64), *picked]))
    units = [(int(f // per_layer), int(f % per_layer)) for f in candidates]
    effect = np.full((len(languages), n_layers, per_layer), np.nan)
    if units:
        measured, baseline, tokens = unit_effects(
            model,
            encoded,
            units,
            unit,
            batch_size=batch_size,
            unit_batch=unit_batch,
            progress=progress,
        )
        layer_idx, unit_idx = candidates // per_layer, candidates % per_layer
        effect[:, layer_idx, unit_idx] = measured.T
    else:  # every budget 0: only the baseline
        _, baseline, tokens = unit_effects(model, encoded, [], unit, batch_size=batch_size)

    rel_e = relative(effect).reshape(len(languages), -1)
    selected = np.zeros((len(languages), n_units), dtype=bool)
    for i, lang in enumerate(languages):
        top = _top(rel_e[i], budgets[lang])
        selected[i, top[rel_e[i, top] > 0]] = True
    params = {
        **_model_params(model),
        "unit": unit,
        "screen": screen,
        "batch_size": batch_size,
        "unit_batch": unit_batch,
        "max_length": max_length,
        "max_tokens": max_tokens,
        "exact_units": len(units),
        "sequences": {lang: len(seqs) for lang, seqs in encoded.items()},
    }
    return CausalSelection(
        unit=unit,
        languages=languages,
        attribution=attribution,
        effect=effect,
        selected=selected.reshape(len(languages), n_layers, per_layer),
        k=budgets,
        baseline_loss=baseline,
        tokens=tokens,
        params=params,
    )


def causal_neurons(
    model: Any,
    tokenizer: Any,
    sequences_by_language: Mapping[str, Any],
    *,
    k: int | Mapping[str, int] | None = None,
    like: Any = None,
    screen: int | None = 4,
    batch_size: int = 8,
    unit_batch: int | None = None,
    max_length: int | None = 512,
    max_tokens: int | None = None,
    progress: bool = False,
) -> CausalSelection:
    """MLP neurons whose zeroing hurts each language more than the others (`causal_units`)."""
    return causal_units(
        model,
        tokenizer,
        sequences_by_language,
        unit="neurons",
        k=k,
        like=like,
        screen=screen,
        batch_size=batch_size,
        unit_batch=unit_batch,
        max_length=max_length,
        max_tokens=max_tokens,
        progress=progress,
    )


def causal_heads(
    model: Any,
    tokenizer: Any,
    sequences_by_language: Mapping[str, Any],
    *,
    k: int | Mapping[str, int] | None = None,
    like: Any = None,
    screen: int | None = 4,
    batch_size: int = 8,
    unit_batch: int | None = None,
    max_length: int | None = 512,
    max_tokens: int | None = None,
    progress: bool = False,
) -> CausalSelection:
    """Attention heads whose zeroing hurts each language more than the others (`causal_units`)."""
    return causal_units(
        model,
        tokenizer,
        sequences_by_language,
        unit="heads",
        k=k,
        like=like,
        screen=screen,
        batch_size=batch_size,
        unit_batch=unit_batch,
        max_length=max_length,
        max_tokens=max_tokens,
        progress=progress,
    )
