"""Each checkpoint's change from the baseline in the headline measures, with paired intervals.

    effects = regime_effects({"base": scores_base, "sft": scores_sft}, exposure=classes)
    effects  # checkpoint, metric, group, delta, ci_low, ci_high, n, p_value, baseline, value

Every difference is a paired bootstrap over facts (`interp.evaluate.metrics.paired_bootstrap`):
one resample of facts applies to both checkpoints and every language. Measures (`metric`):
- `accuracy`: mean per-language accuracy of the group;
- `accuracy_exposed`, `accuracy_transfer`, `accuracy_same_label`: the same over items the
  base model read in the language / never read there (answer spelt unlike English: transfer)
  / never read there but spelt as in English (needs the exposure classes);
- `calibrated_accuracy`: accuracy under the option-prior-calibrated score (needs neutral-prompt
  scores);
- `english_anchored_consistency`: of the facts right in English, the share right in L;
- `total_consistency`: right in every language of the group at once (`trained`: the 12
  trained languages, English included, as in the paper; `all`: all languages);
- `rankc_mean`: mean RankC over language pairs (`all` only).
Groups: `trained` (the trained languages but English, unless said otherwise), `trained-high`,
`trained-low`, `unseen`, `all`.

`minimum_detectable_difference` is the half-width of the 95% interval of a measure's change:
a smaller real change could not be told from none.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

EFFECT_COLUMNS = [
    "checkpoint",
    "metric",
    "group",
    "delta",
    "ci_low",
    "ci_high",
    "n",
    "p_value",
    "baseline",
    "value",
]
EFFECT_GROUPS = ("trained", "trained-high", "trained-low", "unseen", "all")
# reported name -> name in the metrics tables
_RENAMED = {
    "group_accuracy": "accuracy",
    "accuracy_english_only": "accuracy_transfer",
    "english_anchored": "english_anchored_consistency",
}
_METRICS = ("group_accuracy", "english_anchored", "total_consistency", "rankc")
HEADLINE = ("english_anchored_consistency", "trained")  # what the power target is about


def regime_effects(
    scores: Mapping[str, pd.DataFrame],
    *,
    baseline: str = "base",
    exposure: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per (checkpoint, metric, group): the change from `baseline` with its interval.

    `scores`: checkpoint -> scores table of the same items (`score_options` output; with
    `neutral_log_likelihood` the calibrated accuracy is included). `exposure`: item classes
    (`interp.evaluate.exposure.item_exposure`) for the exposure measures.
    """
    from interp.errors import ConfigError
    from interp.evaluate.metrics import paired_bootstrap
    from interp.evaluate.scoring import calibrated_scores

    if baseline not in scores:
        raise ConfigError(
            f"baseline {baseline!r} is not among the checkpoints {list(scores)}. Fix: pass one"
        )
    metrics = _METRICS + (("exposure_accuracy",) if exposure is not None else ())
    base = scores[baseline]
    parts = []
    for name, table in scores.items():
        if name == baseline:
            continue
        diff = paired_bootstrap(
            base,
            table,
            metrics=metrics,
            n_boot=n_boot,
            seed=seed,
            confidence=confidence,
            exposure=exposure,
        )
        parts.append(diff.assign(checkpoint=name))
        if "neutral_log_likelihood" in base.columns and "neutral_log_likelihood" in table.columns:
            calibrated = paired_bootstrap(
                calibrated_scores(base),
                calibrated_scores(table),
                metrics=("group_accuracy",),
                n_boot=n_boot,
                seed=seed,
                confidence=confidence,
            )
            calibrated["metric"] = "calibrated_accuracy"
            parts.append(calibrated.assign(checkpoint=name))
    if not parts:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    table = pd.concat(parts, ignore_index=True)
    table = table[table["other"] == ""]
    table["metric"] = table["metric"].replace(_RENAMED)
    keep = table["language"].isin(EFFECT_GROUPS)
    keep &= table["metric"].ne("rankc_mean") | table["language"].eq("all")
    keep &= ~table["metric"].isin(("rankc", "agreement", "pairwise_consistency"))
    table = table[keep].rename(
        columns={
            "language": "group",
            "difference": "delta",
            "value_a": "baseline",
            "value_b": "value",
        }
    )
    groups = {g: i for i, g in enumerate(EFFECT_GROUPS)}
    checkpoints = {n: i for i, n in enumerate(scores)}
    table = table.assign(
        _c=table["checkpoint"].map(checkpoints), _g=table["group"].map(groups)
    ).sort_values(["_c", "metric", "_g"], kind="stable")
    return table[EFFECT_COLUMNS].reset_index(drop=True)


def minimum_detectable_difference(
    effects: pd.DataFrame, metric: str = HEADLINE[0], group: str = HEADLINE[1]
) -> float:
    """The largest half-width of the 95% interval of `metric` (in `group`) over checkpoints."""
    rows = effects[(effects["metric"] == metric) & (effects["group"] == group)]
    if rows.empty:
        return float("nan")
    return float(((rows["ci_high"] - rows["ci_low"]) / 2).max())


def exposure_accuracy(evaluations: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """checkpoint, language, exposure, accuracy, ci_low, ci_high, n from evaluation tables
    (languages, then the groups; `n` counts items)."""
    from interp.evaluate.metrics import EXPOSURES

    rows = []
    for name, table in evaluations.items():
        for kind in EXPOSURES:
            part = table[(table["metric"] == f"accuracy_{kind}") & (table["other"] == "")]
            for r in part.itertuples():
                rows.append((name, r.language, kind, r.value, r.ci_low, r.ci_high, int(r.n)))
    columns = ["checkpoint", "language", "exposure", "accuracy", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=columns)
