"""What every comparison checks first: the kind of each result, that units and languages
match across checkpoints, and the baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from interp.errors import ConfigError, DataError
from interp.languages import language_order

NOT_SPECIFIC = "not specific"


MULTI_MODES = ("split", "each")


def _kind(obj: Any) -> str:
    """'neurons', 'heads', 'bootstrap' or 'table': the kind of result being compared."""
    from interp.specialization.heads import HeadSelection
    from interp.specialization.lape import NeuronSelection
    from interp.specialization.stats import BootstrapResult

    for kind, cls in (
        ("bootstrap", BootstrapResult),
        ("neurons", NeuronSelection),
        ("heads", HeadSelection),
        ("table", pd.DataFrame),
    ):
        if isinstance(obj, cls):
            return kind
    raise DataError(
        f"cannot compare a {type(obj).__name__}: expected a NeuronSelection, HeadSelection, "
        "BootstrapResult or a pandas DataFrame"
    )


def _shape(obj: Any) -> tuple[int, int] | None:
    kind = _kind(obj)
    if kind == "bootstrap":
        return obj.observed.shape
    return obj.shape if kind in ("neurons", "heads") else None


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


def _sorted(table: pd.DataFrame, order: Sequence[str], extra: Sequence[str] = ()) -> pd.DataFrame:
    """Stable sort by checkpoint (as given), language (in `order`), then `extra` columns."""
    checkpoints = list(dict.fromkeys(table["checkpoint"]))
    key = {
        "_c": table["checkpoint"].map({c: i for i, c in enumerate(checkpoints)}),
        "_l": table["language"].map({c: i for i, c in enumerate(order)}),
    }
    out = table.assign(**key).sort_values(["_c", "_l", *extra], kind="stable")
    return out.drop(columns=["_c", "_l"]).reset_index(drop=True)
