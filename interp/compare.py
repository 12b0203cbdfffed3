"""Tables that set two or more checkpoints side by side.

Every function takes results already computed per checkpoint (neuron selections, head
selections, ablation matrices, evaluation tables), keyed by checkpoint name, and returns a
tidy pandas table; the figures in `interp.plots` draw these tables. Languages come out in the
paper's order (`interp.languages.ALL`), then any others in the order first seen.

    from interp import compare
    sels = {"base": score(counts_base), "grpo": score(counts_grpo)}
    compare.counts_table(sels, baseline="base")        # per-language counts, intervals, deltas
    compare.jaccard_table(sels["base"], sels["grpo"])  # overlap of each language's set
    compare.reassignment(sels["base"], sels["grpo"])   # base language x fine-tuned language
    compare.ks_compare(sels, baseline="base")          # KS distance of layer distributions

Checkpoints are comparable only when their units are the same (layers x neurons, or layers x
heads) and they cover the same languages; otherwise a `DataError` names both shapes, or the
languages each side lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from interp.errors import ConfigError, DataError
from interp.intervals import percentile_interval
from interp.languages import language_order

__all__ = [
    "NOT_SPECIFIC",
    "ablation_difference",
    "ablation_matrix",
    "check_comparable",
    "counts_table",
    "cumulative_table",
    "head_layer_table",
    "head_overlap_table",
    "jaccard",
    "jaccard_table",
    "ks_compare",
    "language_order",
    "layer_table",
    "matrix_difference",
    "metric_deltas",
    "paired_deltas",
    "reassignment",
    "reassignment_summary",
    "specialization_summary",
    "stack_results",
    "thesis_table",
]

NOT_SPECIFIC = "not specific"
MULTI_MODES = ("split", "each")


# ---------------------------------------------------------------------------------------------
# order and checks


def _kind(obj: Any) -> str:
    """'neurons', 'heads', 'bootstrap' or 'table', by duck type (no heavy imports)."""
    name = type(obj).__name__
    if name == "BootstrapResult" or all(
        hasattr(obj, a) for a in ("observed", "samples", "per_language", "ci")
    ):
        return "bootstrap"
    if hasattr(obj, "num_neurons") and hasattr(obj, "table"):
        return "neurons"
    if hasattr(obj, "num_heads") and hasattr(obj, "table"):
        return "heads"
    if isinstance(obj, pd.DataFrame):
        return "table"
    raise DataError(
        f"cannot compare a {name}: expected a NeuronSelection, HeadSelection, BootstrapResult "
        "or a pandas DataFrame"
    )


def _shape(obj: Any) -> tuple[int, int] | None:
    kind = _kind(obj)
    if kind == "bootstrap":
        obj = obj.observed
        kind = "neurons"
    if kind == "neurons":
        return (int(obj.num_layers), int(obj.num_neurons))
    if kind == "heads":
        return (int(obj.num_layers), int(obj.num_heads))
    return None


def _languages(obj: Any) -> tuple[str, ...] | None:
    kind = _kind(obj)
    if kind == "bootstrap":
        return tuple(obj.observed.languages)
    if kind in ("neurons", "heads"):
        return tuple(obj.languages)
    return None


def check_comparable(items: Mapping[str, Any], *, what: str = "checkpoints") -> None:
    """Refuse checkpoints whose unit shapes or languages differ, naming both sides.

    Shapes are (layers, neurons) for neuron selections, (layers, heads) for head selections;
    plain DataFrames carry no shape and are only checked for languages where they have a
    `language` column.
    """
    if not items:
        raise DataError(f"no {what} to compare. Fix: pass at least one, keyed by name")
    names = list(items)
    kinds = {name: _kind(items[name]) for name in names}
    unit = {"bootstrap": "neurons", "neurons": "neurons", "heads": "heads", "table": "table"}
    units = {unit[k] for k in kinds.values()} - {"table"}
    if len(units) > 1:
        raise DataError(
            f"{what} mix neuron and head results ({kinds}). Fix: compare like with like"
        )
    first = names[0]
    first_shape = _shape(items[first])
    label = "(layers, neurons)" if units == {"neurons"} else "(layers, heads)"
    for name in names[1:]:
        shape = _shape(items[name])
        if first_shape is not None and shape is not None and shape != first_shape:
            raise DataError(
                f"{what} {first!r} and {name!r} have different shapes {label}: {first_shape} vs "
                f"{shape}. Fix: compare checkpoints of the same model architecture"
            )
    langs = {name: _languages(items[name]) for name in names}
    langs = {
        name: value
        if value is not None
        else (
            tuple(c for c in dict.fromkeys(items[name]["language"]) if c != "all")
            if "language" in getattr(items[name], "columns", [])
            else None
        )
        for name, value in langs.items()
    }
    known = {name: set(value) for name, value in langs.items() if value is not None}
    if known:
        ref_name = next(iter(known))
        ref = known[ref_name]
        for name, value in known.items():
            if value != ref:
                only_ref = language_order(sorted(ref - value))
                only_this = language_order(sorted(value - ref))
                parts = []
                if only_ref:
                    parts.append(f"{name!r} lacks {' '.join(only_ref)}")
                if only_this:
                    parts.append(f"{ref_name!r} lacks {' '.join(only_this)}")
                raise DataError(
                    f"{what} {ref_name!r} and {name!r} cover different languages: "
                    f"{'; '.join(parts)}. Fix: compute both on the same languages"
                )


def _check_baseline(items: Mapping[str, Any], baseline: str | None) -> None:
    if baseline is not None and baseline not in items:
        raise ConfigError(
            f"baseline {baseline!r} is not among the checkpoints {list(items)}. Fix: pass one "
            "of these names"
        )


# ---------------------------------------------------------------------------------------------
# neuron counts per language and per layer


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


def _sorted(table: pd.DataFrame, order: Sequence[str], extra: Sequence[str] = ()) -> pd.DataFrame:
    """Stable sort by checkpoint (as given), language (in `order`), then `extra` columns."""
    checkpoints = list(dict.fromkeys(table["checkpoint"]))
    key = {
        "_c": table["checkpoint"].map({c: i for i, c in enumerate(checkpoints)}),
        "_l": table["language"].map({c: i for i, c in enumerate(order)}),
    }
    out = table.assign(**key).sort_values(["_c", "_l", *extra], kind="stable")
    return out.drop(columns=["_c", "_l"]).reset_index(drop=True)


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


# ---------------------------------------------------------------------------------------------
# overlap of sets between two checkpoints


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


# ---------------------------------------------------------------------------------------------
# neuron reassignment


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


# ---------------------------------------------------------------------------------------------
# heads


def head_layer_table(selections: Mapping[str, Any]) -> pd.DataFrame:
    """`HeadSelection.layer_share()` stacked: checkpoint, language, layer, count, share."""
    check_comparable(selections)
    frames = [sel.layer_share().assign(checkpoint=name) for name, sel in selections.items()]
    table = pd.concat(frames, ignore_index=True)
    table = _sorted(table, language_order(table["language"]), ["layer"])
    return table[["checkpoint", "language", "layer", "count", "share"]]


def head_overlap_table(selections: Mapping[str, Any], baseline: str | None = None) -> pd.DataFrame:
    """Pairwise top-head overlap |top(a) & top(b)| / k of each checkpoint, tidy.

    Columns checkpoint, language, other, overlap, and with a baseline base_overlap and delta
    (= overlap - base_overlap). Both selections must use the same k.
    """
    _check_baseline(selections, baseline)
    check_comparable(selections)
    ks = {name: sel.k for name, sel in selections.items()}
    if len(set(ks.values())) > 1:
        raise DataError(
            f"top-head sets of different sizes k: {ks}. Fix: select the same number of heads"
        )
    frames = []
    for name, sel in selections.items():
        matrix = sel.overlap()
        order = language_order(matrix.index)
        matrix = matrix.loc[order, order]
        long = matrix.stack().rename("overlap").reset_index()
        long.columns = ["language", "other", "overlap"]
        frames.append(long.assign(checkpoint=name))
    table = pd.concat(frames, ignore_index=True)[["checkpoint", "language", "other", "overlap"]]
    if baseline is None:
        return table
    base = table[table["checkpoint"] == baseline].set_index(["language", "other"])["overlap"]
    index = pd.MultiIndex.from_frame(table[["language", "other"]])
    table["base_overlap"] = base.reindex(index).to_numpy()
    table["delta"] = table["overlap"] - table["base_overlap"]
    table.attrs["baseline"] = baseline
    return table


# ---------------------------------------------------------------------------------------------
# square matrices: ablation (dark diagonal) and differences

_ROW_NAMES = ("ablated", "masked")
_COL_NAMES = ("measured", "language")
_VALUE_PREFERENCE = ("value", "loss_delta", "delta_pct", "delta")


def ablation_matrix(data: Any, value: str | None = None) -> pd.DataFrame:
    """A square [ablated, measured] matrix from any of the accepted forms.

    `data` is a `DarkDiagonal` (interp.specialization.ablation), a tidy DataFrame with
    columns ablated (or masked), measured (or language) and a value column, or an already
    square DataFrame (rows = language whose units are ablated, columns = language measured).
    `value` picks the column; by default the first of value, loss_delta, delta_pct, delta
    that has finite numbers. Rows and columns come out in the paper's order; the column used
    is kept in `matrix.attrs["value"]`.
    """
    if hasattr(data, "table") and hasattr(data, "masked") and hasattr(data, "matrix"):
        data = data.table[data.table["control"] == "selected"]
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"ablation results: expected a DarkDiagonal or a DataFrame, got {type(data).__name__}"
        )
    row_col = next((c for c in _ROW_NAMES if c in data.columns), None)
    col_col = next((c for c in _COL_NAMES if c in data.columns), None)
    if row_col and col_col:
        if value is None:
            value = next(
                (
                    c
                    for c in _VALUE_PREFERENCE
                    if c in data.columns and np.isfinite(data[c].to_numpy(dtype=float)).any()
                ),
                None,
            )
            if value is None:
                raise DataError(
                    f"ablation table: no finite value column among {_VALUE_PREFERENCE}; "
                    f"columns: {list(data.columns)}. Fix: pass value=<column>"
                )
        elif value not in data.columns:
            raise DataError(
                f"ablation table has no column {value!r}; columns: {list(data.columns)}"
            )
        matrix = data.pivot_table(index=row_col, columns=col_col, values=value, aggfunc="mean")
    else:
        matrix = data.astype(float)
        value = value or data.attrs.get("value", "value")
    rows, cols = language_order(matrix.index), language_order(matrix.columns)
    matrix = matrix.loc[rows, cols].astype(float)
    matrix.index.name, matrix.columns.name = "ablated", "measured"
    matrix.attrs["value"] = value
    return matrix


def matrix_difference(a: pd.DataFrame, b: pd.DataFrame, *, names=("a", "b")) -> pd.DataFrame:
    """b - a for two labelled matrices with the same rows and columns (any order)."""
    for axis, la, lb in (("rows", a.index, b.index), ("columns", a.columns, b.columns)):
        if set(la) != set(lb):
            only_a = sorted(set(la) - set(lb), key=str)
            only_b = sorted(set(lb) - set(la), key=str)
            raise DataError(
                f"matrices {names[0]!r} {a.shape} and {names[1]!r} {b.shape} have different "
                f"{axis}: only in {names[0]!r}: {only_a or '-'}; only in {names[1]!r}: "
                f"{only_b or '-'}. Fix: compute both on the same languages"
            )
    diff = b.loc[a.index, a.columns].astype(float) - a.astype(float)
    diff.attrs.update(a.attrs)
    diff.attrs["difference"] = f"{names[1]} - {names[0]}"
    return diff


def ablation_difference(a: Any, b: Any, *, value: str | None = None, names=("a", "b")):
    """The change of an ablation matrix, b - a (rows ablated, columns measured)."""
    ma, mb = ablation_matrix(a, value), ablation_matrix(b, value)
    if ma.attrs["value"] != mb.attrs["value"]:
        raise DataError(
            f"ablation matrices hold different values ({ma.attrs['value']!r} vs "
            f"{mb.attrs['value']!r}). Fix: pass value=<column> for both"
        )
    return matrix_difference(ma, mb, names=names)


# ---------------------------------------------------------------------------------------------
# recall and consistency

_EVAL_COLUMNS = ("metric", "language", "other", "value", "ci_low", "ci_high", "n")


def stack_results(results: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Evaluation tables (`interp.evaluate.metrics.evaluate`) stacked with a checkpoint column."""
    if not results:
        raise DataError("no evaluation results to compare")
    frames = []
    for name, frame in results.items():
        missing = [c for c in ("metric", "language", "value") if c not in frame.columns]
        if missing:
            raise DataError(
                f"evaluation table of {name!r} lacks column(s) {', '.join(missing)}. Expected "
                f"the output of interp.evaluate.metrics.evaluate ({', '.join(_EVAL_COLUMNS)})"
            )
        frame = frame.copy()
        for col in _EVAL_COLUMNS:
            if col not in frame:
                frame[col] = "" if col == "other" else np.nan
        frames.append(frame[list(_EVAL_COLUMNS)].assign(checkpoint=name))
    table = pd.concat(frames, ignore_index=True)
    return table[["checkpoint", *_EVAL_COLUMNS]]


def metric_deltas(results: Mapping[str, pd.DataFrame], baseline: str) -> pd.DataFrame:
    """Each checkpoint's metrics next to the baseline's: stacked results plus base_value and
    delta (= value - base_value). The intervals stay those of each checkpoint; for an
    interval of the difference itself use `paired_deltas` on the scores tables."""
    _check_baseline(results, baseline)
    table = stack_results(results)
    keys = ["metric", "language", "other"]
    base = table[table["checkpoint"] == baseline].set_index(keys)["value"]
    table["base_value"] = base.reindex(pd.MultiIndex.from_frame(table[keys])).to_numpy()
    table["delta"] = table["value"] - table["base_value"]
    table.attrs["baseline"] = baseline
    return table


def paired_deltas(
    scores: Mapping[str, pd.DataFrame], baseline: str, **options: Any
) -> pd.DataFrame:
    """`paired_bootstrap(baseline, checkpoint)` for every other checkpoint, stacked.

    `scores` maps checkpoint -> scores table (the same items); `options` go to
    `interp.evaluate.metrics.paired_bootstrap` (languages, metrics, n_boot, seed, confidence).
    Columns: checkpoint, then those of paired_bootstrap (difference = checkpoint - baseline).
    """
    from interp.evaluate.metrics import paired_bootstrap

    _check_baseline(scores, baseline)
    frames = [
        paired_bootstrap(scores[baseline], table, **options).assign(checkpoint=name)
        for name, table in scores.items()
        if name != baseline
    ]
    if not frames:
        raise DataError("paired_deltas needs at least one checkpoint besides the baseline")
    table = pd.concat(frames, ignore_index=True)
    return table[["checkpoint", *[c for c in table.columns if c != "checkpoint"]]]


# ---------------------------------------------------------------------------------------------
# specialization vs consistency (the thesis figure)

SPECIALIZATION_MEASURES = ("count", "neurons", "mean_entropy", "head_specificity")


def specialization_summary(
    selections: Mapping[str, Any], measure: str = "count", *, ci: float = 0.95
) -> pd.DataFrame:
    """One number per checkpoint summarizing specialization: checkpoint, measure, value, lo, hi.

    - "count": selected (unit, language) rows; with a BootstrapResult, lo/hi from its "all"
      row. Only meaningful across checkpoints for a rule with no budget (the absolute rule):
      a fixed-budget LAPE count is the same for every checkpoint.
    - "neurons": distinct selected neurons.
    - "mean_entropy": mean LAPE entropy (nats) of the selected neurons (NaN if not recorded);
      higher = less specific.
    - "head_specificity": 1 - mean off-diagonal top-head overlap of a HeadSelection; 1 = no
      language shares a top head with another, 0 = all languages share the same heads.
    """
    if measure not in SPECIALIZATION_MEASURES:
        raise ConfigError(f"measure must be one of {SPECIALIZATION_MEASURES}, got {measure!r}")
    rows = []
    for name, obj in selections.items():
        kind = _kind(obj)
        lo = hi = float("nan")
        sel = obj.observed if kind == "bootstrap" else obj
        if measure == "head_specificity":
            if _kind(sel) != "heads":
                raise DataError(f"checkpoint {name!r}: head_specificity needs a HeadSelection")
            overlap = sel.overlap().to_numpy()
            off = ~np.eye(len(overlap), dtype=bool)
            value = 1.0 - float(overlap[off].mean())
        elif _kind(sel) != "neurons":
            raise DataError(f"checkpoint {name!r}: measure {measure!r} needs neuron selections")
        elif measure == "count":
            value = float(len(sel.table))
            if kind == "bootstrap":
                total = obj.per_language.set_index("language").loc["all"]
                lo, hi = float(total["lo"]), float(total["hi"])
        elif measure == "neurons":
            value = float(len(sel.table[["layer", "neuron"]].drop_duplicates()))
        else:
            unique = sel.table.drop_duplicates(["layer", "neuron"])
            value = float(unique["entropy"].mean()) if len(unique) else float("nan")
        rows.append({"checkpoint": name, "measure": measure, "value": value, "lo": lo, "hi": hi})
    return pd.DataFrame(rows, columns=["checkpoint", "measure", "value", "lo", "hi"])


def _points(data: Any, what: str, metric: str | None) -> pd.DataFrame:
    """checkpoint, value, lo, hi from a frame, a {checkpoint: number | (v, lo, hi)} mapping or
    {checkpoint: evaluate table} (picking `metric`, language "all")."""
    if isinstance(data, pd.DataFrame):
        if not {"checkpoint", "value"} <= set(data.columns):
            raise DataError(f"{what}: a table needs columns checkpoint, value (lo, hi optional)")
        frame = data.copy()
        if metric is not None and "metric" in frame:
            frame = frame[(frame["metric"] == metric) & (frame["language"] == "all")]
        frame = frame.rename(columns={"ci_low": "lo", "ci_high": "hi"})
        for col in ("lo", "hi"):
            if col not in frame:
                frame[col] = np.nan
        return frame[["checkpoint", "value", "lo", "hi"]].reset_index(drop=True)
    rows = []
    for name, item in data.items():
        if isinstance(item, pd.DataFrame):
            row = item[(item["metric"] == metric) & (item["language"] == "all")]
            if row.empty:
                raise DataError(
                    f"{what}: the evaluation table of {name!r} has no {metric!r} row for "
                    f"language 'all'. Fix: evaluate with metrics including {metric!r}"
                )
            row = row.iloc[0]
            rows.append((name, row["value"], row.get("ci_low", np.nan), row.get("ci_high", np.nan)))
        elif np.ndim(item) == 0:
            rows.append((name, float(item), np.nan, np.nan))
        elif len(item) == 3:
            rows.append((name, *map(float, item)))
        else:
            raise DataError(f"{what} of {name!r}: give a number or (value, lo, hi), got {item!r}")
    return pd.DataFrame(rows, columns=["checkpoint", "value", "lo", "hi"])


def thesis_table(
    specialization: Any,
    consistency: Any,
    *,
    metric: str = "total_consistency",
    x_label: str | None = None,
    y_label: str | None = None,
) -> pd.DataFrame:
    """Specialization (x) against consistency (y), one row per checkpoint present in both.

    `specialization`: `specialization_summary(...)`'s table, a DataFrame checkpoint, value
    (lo, hi), or {checkpoint: value | (value, lo, hi)}. `consistency`: {checkpoint: evaluate
    table} (reads `metric` for language "all", e.g. total_consistency or rankc_mean), or the
    same forms as `specialization`. Columns: checkpoint, x, x_lo, x_hi, y, y_lo, y_hi; the
    axis names are kept in `attrs` (x_label, y_label).
    """
    x = _points(specialization, "specialization", None)
    y = _points(consistency, "consistency", metric)
    missing = sorted(set(x["checkpoint"]) ^ set(y["checkpoint"]))
    table = x.merge(y, on="checkpoint", suffixes=("_x", "_y"))
    if table.empty:
        raise DataError(
            f"specialization and consistency share no checkpoint (x: {list(x['checkpoint'])}, "
            f"y: {list(y['checkpoint'])}). Fix: key both by the same checkpoint names"
        )
    table = table.rename(
        columns={
            "value_x": "x",
            "lo_x": "x_lo",
            "hi_x": "x_hi",
            "value_y": "y",
            "lo_y": "y_lo",
            "hi_y": "y_hi",
        }
    )[["checkpoint", "x", "x_lo", "x_hi", "y", "y_lo", "y_hi"]]
    measure = None
    if isinstance(specialization, pd.DataFrame) and "measure" in specialization:
        measure = str(specialization["measure"].iloc[0])
    table.attrs["x_label"] = x_label or measure or "specialization"
    table.attrs["y_label"] = y_label or metric.replace("_", " ")
    table.attrs["dropped"] = missing
    return table
