"""Neuron selections side by side: counts per language and layer, depth, overlap, reassignment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from interp.compare.checks import (
    MULTI_MODES,
    NOT_SPECIFIC,
    _check_baseline,
    _kind,
    _sorted,
    check_comparable,
)
from interp.errors import ConfigError, DataError
from interp.intervals import percentile_interval
from interp.languages import language_order


def _per_language(obj: Any, name: str) -> pd.DataFrame:
    """language, count, lo, hi (and the replicate totals per language when bootstrapped)."""
    kind = _kind(obj)
    if kind == "neurons":
        frame = obj.per_language()
        return frame.assign(lo=np.nan, hi=np.nan)
    if kind == "bootstrap":
        frame = obj.per_language.rename(columns={"observed": "count"})
        return frame[frame["language"] != "all"][["language", "count", "lo", "hi"]]
    if kind == "table":
        frame = obj.rename(columns={"observed": "count"})
        if not {"language", "count"} <= set(frame.columns):
            raise DataError(
                f"checkpoint {name!r}: a counts table needs columns language and count "
                f"(optionally lo, hi); got {list(obj.columns)}"
            )
        frame = frame[frame["language"] != "all"]
        for col in ("lo", "hi"):
            if col not in frame:
                frame = frame.assign(**{col: np.nan})
        return frame[["language", "count", "lo", "hi"]]
    raise DataError(f"checkpoint {name!r}: head selections have no per-language neuron counts")


def _replicate_totals(obj: Any) -> np.ndarray | None:
    """Bootstrap replicate counts per language `[n_boot, languages]`, or None."""
    if _kind(obj) != "bootstrap":
        return None
    return np.asarray(obj.samples).sum(axis=2)


def counts_table(
    selections: Mapping[str, Any], baseline: str | None = None, *, ci: float = 0.95
) -> pd.DataFrame:
    """Per-language specific-neuron counts of each checkpoint, with intervals and deltas.

    `selections` maps checkpoint -> NeuronSelection, BootstrapResult (intervals from its
    replicates) or a DataFrame with language, count (or observed), optional lo, hi.
    Columns: checkpoint, language, count, lo, hi, and with a `baseline`: base_count, delta
    (= count - base_count), delta_lo, delta_hi, ratio (= count / base_count). The delta
    interval comes from replicate differences when both sides are BootstrapResults with the
    same number of replicates; it is a paired interval when both were bootstrapped with the
    same seed on the same sequences (the same resample applies to both), else NaN.
    """
    _check_baseline(selections, baseline)
    check_comparable(selections)
    frames = []
    for name, obj in selections.items():
        frames.append(_per_language(obj, name).assign(checkpoint=name))
    table = pd.concat(frames, ignore_index=True)
    order = language_order(table["language"])
    table["count"] = table["count"].astype(float)
    table = _sorted(table, order)[["checkpoint", "language", "count", "lo", "hi"]]
    if baseline is None:
        return table
    base = table[table["checkpoint"] == baseline].set_index("language")["count"]
    table["base_count"] = table["language"].map(base)
    table["delta"] = table["count"] - table["base_count"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["ratio"] = table["count"] / table["base_count"].where(table["base_count"] > 0)
    table["delta_lo"] = np.nan
    table["delta_hi"] = np.nan
    base_reps = _replicate_totals(selections[baseline])
    for name, obj in selections.items():
        reps = _replicate_totals(obj)
        if reps is None or base_reps is None or reps.shape != base_reps.shape:
            continue
        langs = list(obj.observed.languages)
        base_langs = list(selections[baseline].observed.languages)
        diff = reps - base_reps[:, [base_langs.index(lang) for lang in langs]]
        lo, hi = percentile_interval(diff, ci)
        for j, lang in enumerate(langs):
            rows = (table["checkpoint"] == name) & (table["language"] == lang)
            table.loc[rows, "delta_lo"] = lo[j]
            table.loc[rows, "delta_hi"] = hi[j]
    table = table[
        ["checkpoint", "language", "count", "lo", "hi", "base_count", "delta"]
        + ["delta_lo", "delta_hi", "ratio"]
    ]
    table.attrs["baseline"] = baseline
    return table


def layer_table(selections: Mapping[str, Any], baseline: str | None = None) -> pd.DataFrame:
    """Specific neurons per (checkpoint, language, layer), with the change vs `baseline`.

    Columns checkpoint, language, layer, count, and with a baseline base_count and delta.
    """
    _check_baseline(selections, baseline)
    check_comparable(selections)
    frames = []
    for name, obj in selections.items():
        sel = obj.observed if _kind(obj) == "bootstrap" else obj
        if _kind(sel) != "neurons":
            raise DataError(f"checkpoint {name!r}: layer_table needs neuron selections")
        frames.append(sel.per_layer().assign(checkpoint=name))
    table = pd.concat(frames, ignore_index=True)
    table = _sorted(table, language_order(table["language"]), ["layer"])
    table = table[["checkpoint", "language", "layer", "count"]]
    if baseline is None:
        return table
    base = table[table["checkpoint"] == baseline].set_index(["language", "layer"])["count"]
    index = pd.MultiIndex.from_frame(table[["language", "layer"]])
    table["base_count"] = base.reindex(index).to_numpy()
    table["delta"] = table["count"] - table["base_count"]
    table.attrs["baseline"] = baseline
    return table


def cumulative_table(selections: Mapping[str, Any]) -> pd.DataFrame:
    """`NeuronSelection.cumulative()` of each checkpoint, stacked: checkpoint, language, layer,
    count, cumulative, share (language "all" = the sum of languages)."""
    check_comparable(selections)
    frames = []
    for name, obj in selections.items():
        sel = obj.observed if _kind(obj) == "bootstrap" else obj
        frames.append(sel.cumulative().assign(checkpoint=name))
    table = pd.concat(frames, ignore_index=True)
    order = language_order([c for c in table["language"] if c != "all"]) + ["all"]
    table = _sorted(table, order, ["layer"])
    return table[["checkpoint", "language", "layer", "count", "cumulative", "share"]]


def ks_compare(selections: Mapping[str, Any], baseline: str) -> pd.DataFrame:
    """KS distance of each checkpoint's layer distribution to `baseline`'s, overall ("all")
    and per language: columns checkpoint, language, ks (NaN where a side has no neurons)."""
    from interp.specialization.stats import ks_table

    _check_baseline(selections, baseline)
    check_comparable(selections)
    plain = {
        name: obj.observed if _kind(obj) == "bootstrap" else obj for name, obj in selections.items()
    }
    table = ks_table(plain, baseline)
    table.attrs["baseline"] = baseline
    return table


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; NaN when both are empty (no evidence either way)."""
    union = len(a | b)
    return len(a & b) / union if union else float("nan")


def jaccard_table(a: Any, b: Any, *, names: tuple[str, str] = ("a", "b")) -> pd.DataFrame:
    """Per language: n_a, n_b, shared, jaccard of the two checkpoints' sets of units.

    Works for two NeuronSelections ((layer, neuron) sets) or two HeadSelections ((layer,
    head) sets); a last row "all" pools (unit, language) pairs over languages.
    """
    check_comparable({names[0]: a, names[1]: b})
    a = a.observed if _kind(a) == "bootstrap" else a
    b = b.observed if _kind(b) == "bootstrap" else b
    sets_a, sets_b = a.sets(), b.sets()
    rows = []
    pooled_a: set = set()
    pooled_b: set = set()
    for lang in language_order(sets_a):
        sa, sb = sets_a[lang], sets_b.get(lang, set())
        pooled_a |= {(lang, *u) for u in sa}
        pooled_b |= {(lang, *u) for u in sb}
        rows.append((lang, len(sa), len(sb), len(sa & sb), jaccard(sa, sb)))
    rows.append(
        ("all", len(pooled_a), len(pooled_b), len(pooled_a & pooled_b), jaccard(pooled_a, pooled_b))
    )
    return pd.DataFrame(rows, columns=["language", "n_a", "n_b", "shared", "jaccard"])


def _assignments(sel: Any) -> dict[tuple[int, int], tuple[str, ...]]:
    """{(layer, neuron): languages it is specific to}, languages in selection order."""
    out: dict[tuple[int, int], list[str]] = {}
    for lang, layer, neuron in sel.table[["language", "layer", "neuron"]].itertuples(index=False):
        out.setdefault((int(layer), int(neuron)), []).append(lang)
    rank = {lang: i for i, lang in enumerate(sel.languages)}
    return {unit: tuple(sorted(langs, key=rank.get)) for unit, langs in out.items()}


def reassignment(
    base: Any,
    tuned: Any,
    *,
    multi: str = "split",
    names: tuple[str, str] = ("base", "fine-tuned"),
) -> pd.DataFrame:
    """Where each neuron's language role goes from `base` to `tuned`.

    A square-ish DataFrame: rows = language in base plus "not specific", columns = language
    in the fine-tuned checkpoint plus "not specific"; cell (a, b) = neurons specific to a in
    base and to b after fine-tuning. The ("not specific", "not specific") cell holds every
    other neuron of the model (layers x neurons minus those specific in either), so every
    neuron is counted and the whole matrix sums to layers x neurons.

    A neuron specific to several languages (Tang's variant, the absolute rule) is counted by
    `multi`:
    - "split" (default): its one unit of mass is spread evenly over every (base language,
      tuned language) pair, 1 / (|A| |B|) each, so the matrix still counts neurons and sums
      to layers x neurons (cells may be fractional);
    - "each": it counts 1 in every pair, so the matrix counts (language, language) role pairs
      and a row sums to the neurons of that language times their number of new roles.
    With one language per neuron (the paper's LAPE) both give the same integer counts.
    """
    if multi not in MULTI_MODES:
        raise ConfigError(f"multi must be one of {MULTI_MODES}, got {multi!r}")
    check_comparable({names[0]: base, names[1]: tuned})
    base = base.observed if _kind(base) == "bootstrap" else base
    tuned = tuned.observed if _kind(tuned) == "bootstrap" else tuned
    for name, sel in zip(names, (base, tuned), strict=True):
        if _kind(sel) != "neurons":
            raise DataError(f"{name}: reassignment needs neuron selections")
    labels = language_order(base.languages) + [NOT_SPECIFIC]
    position = {lang: i for i, lang in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)))
    roles_a, roles_b = _assignments(base), _assignments(tuned)
    none = (NOT_SPECIFIC,)
    for unit in roles_a.keys() | roles_b.keys():
        langs_a = roles_a.get(unit, none)
        langs_b = roles_b.get(unit, none)
        mass = 1.0 / (len(langs_a) * len(langs_b)) if multi == "split" else 1.0
        for la in langs_a:
            for lb in langs_b:
                matrix[position[la], position[lb]] += mass
    n_units = base.num_layers * base.num_neurons
    matrix[-1, -1] = n_units - len(roles_a.keys() | roles_b.keys())
    frame = pd.DataFrame(matrix, index=labels, columns=labels)
    frame.index.name, frame.columns.name = names
    frame.attrs.update({"multi": multi, "names": list(names), "n_units": n_units})
    return frame


def reassignment_summary(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per base language, from a `reassignment` matrix: n_base, kept (same language after),
    moved (to another language), dropped (no longer specific), gained (newly specific to it
    from "not specific"), and kept_share = kept / n_base."""
    langs = [c for c in matrix.index if c != NOT_SPECIFIC]
    rows = []
    for lang in langs:
        row = matrix.loc[lang]
        n_base = row.sum()
        kept = row.get(lang, 0.0)
        dropped = row[NOT_SPECIFIC]
        gained = matrix.loc[NOT_SPECIFIC, lang] if lang in matrix.columns else 0.0
        rows.append(
            {
                "language": lang,
                "n_base": n_base,
                "kept": kept,
                "moved": n_base - kept - dropped,
                "dropped": dropped,
                "gained": gained,
                "kept_share": kept / n_base if n_base else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def script_class_table(
    tables: Mapping[str, pd.DataFrame], baseline: str | None = None
) -> pd.DataFrame:
    """Per-checkpoint script classes (`Analysis.script_classes[scorer]`: class, count, lo,
    hi) stacked: checkpoint, class, count, lo, hi, and with a baseline base_count, delta."""
    _check_baseline(tables, baseline)
    table = pd.concat(
        [t[["class", "count", "lo", "hi"]].assign(checkpoint=n) for n, t in tables.items()],
        ignore_index=True,
    )[["checkpoint", "class", "count", "lo", "hi"]]
    if baseline is not None:
        base = table[table["checkpoint"] == baseline].set_index("class")["count"]
        table["base_count"] = table["class"].map(base).to_numpy()
        table["delta"] = table["count"] - table["base_count"]
    return table
