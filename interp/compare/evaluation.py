"""Evaluation tables side by side, and the specialization-vs-consistency points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from interp.compare.checks import _check_baseline, _kind
from interp.errors import ConfigError, DataError

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
