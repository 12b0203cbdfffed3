"""Evaluate checkpoints on a fact set: scores, metrics with intervals, and a side-by-side table.

    from interp.evaluate.run import evaluate_checkpoint, summary_table
    result = evaluate_checkpoint("checkpoints/default/base", facts, split="test")
    summary_table({"base": result.metrics})

Results are cached beside the checkpoint in `eval/<key>/` (scores and metrics as parquet plus
provenance), keyed by the checkpoint's and the facts' fingerprints and the settings, so a
second call with nothing changed reads them instead of scoring again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from interp.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_METRICS = (
    ("group_accuracy", "trained-high"),
    ("group_accuracy", "trained-low"),
    ("group_accuracy", "unseen"),
    ("group_accuracy", "all"),
    ("total_consistency", "all"),
    ("rankc_mean", "all"),
)


@dataclass
class EvalResult:
    checkpoint: str
    scores: pd.DataFrame  # one row per (fact, language)
    metrics: pd.DataFrame  # metric, language, other, value, ci_low, ci_high, n
    cache_dir: Path | None = None
    from_cache: bool = False


def _select(facts, split: str | None, languages):
    from interp.languages import check_codes

    if split:
        facts = facts.split(split)
    if languages:
        languages = check_codes(languages, source="evaluation languages")
        missing = [code for code in languages if code not in facts.languages]
        if missing:
            raise DataError(
                f"the evaluation set has no items in {' '.join(missing)} (it has "
                f"{' '.join(facts.languages)}). Fix: request only languages the fact set holds"
            )
    else:
        languages = facts.languages
    if not len(facts):
        raise DataError(
            f"the evaluation set has no facts in split {split!r}. Fix: choose another split"
        )
    return facts, tuple(languages)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    facts,
    *,
    split: str | None = "test",
    languages=None,
    batch_size: int = 16,
    n_boot: int = 1000,
    seed: int = 0,
    device=None,
    cache: bool = True,
    progress: bool = True,
    exposure=None,
    calibrate: bool = True,
) -> EvalResult:
    """Score every (fact, language) of `facts` with the checkpoint and compute the metrics.

    `exposure`: what the model read of each fact per language (`Mixture.exposure()`); by
    default the table recorded with the checkpoint or its ancestors, if any (the organism's).
    With it, accuracy is also split by exposure. `calibrate`: also score every option after
    a neutral prompt and report `calibrated_accuracy` (see `interp.evaluate.scoring`).

    A bad `device` or `checkpoint` raises ModelError first, also when the results are cached.
    """
    import pandas as pd

    from interp.evaluate.exposure import item_exposure, read_exposure
    from interp.evaluate.scoring import NEUTRAL_PROMPT, score_options
    from interp.io import atomic_write_json, checkpoint_fingerprint, fingerprint
    from interp.models.loading import check_checkpoint, check_device

    # a bad device or checkpoint fails here, before any work and before a cache hit could
    # hide it (the cached scores do not depend on the device, but the request is still wrong)
    check_device(device, allow_auto=True)
    checkpoint = Path(check_checkpoint(checkpoint))
    facts, languages = _select(facts, split, languages)
    items = facts.to_frame(languages)
    if exposure is None and checkpoint.is_dir():
        exposure = read_exposure(checkpoint)
    classes = item_exposure(exposure, facts) if exposure is not None else None
    key = fingerprint(
        "eval-v2",
        checkpoint_fingerprint(checkpoint),
        items[["fact_id", "language", "question", "options", "option_ids", "answer_index"]].to_dict(
            "records"
        ),
        None if classes is None else classes.to_dict("records"),
        n_boot,
        seed,
        calibrate,
    )
    cache_dir = checkpoint / "eval" / key if checkpoint.is_dir() else None
    if cache and cache_dir is not None and (cache_dir / "metrics.parquet").is_file():
        return EvalResult(
            str(checkpoint),
            pd.read_parquet(cache_dir / "scores.parquet"),
            pd.read_parquet(cache_dir / "metrics.parquet"),
            cache_dir,
            from_cache=True,
        )

    from interp.models.loading import load_model

    model, tokenizer = load_model(checkpoint, device=device)
    model.eval()
    scores = score_options(
        model,
        tokenizer,
        items,
        batch_size=batch_size,
        neutral_prompt=NEUTRAL_PROMPT if calibrate else None,
        progress=progress,
    )
    metrics = evaluation_metrics(scores, languages, exposure=classes, n_boot=n_boot, seed=seed)
    if cache and cache_dir is not None:
        from interp.io import atomic_directory

        with atomic_directory(cache_dir, overwrite=True) as tmp:
            _to_parquet(scores, tmp / "scores.parquet")
            metrics.to_parquet(tmp / "metrics.parquet")
            atomic_write_json(
                tmp / "provenance.json",
                {
                    "checkpoint": str(checkpoint),
                    "split": split,
                    "languages": list(languages),
                    "n_facts": len(facts),
                    "n_boot": n_boot,
                    "seed": seed,
                },
            )
    return EvalResult(str(checkpoint), scores, metrics, cache_dir)


def evaluation_metrics(scores, languages, *, exposure=None, n_boot: int = 1000, seed: int = 0):
    """Every metric of `interp.evaluate.metrics.evaluate`, plus `calibrated_accuracy` and
    `calibrated_group_accuracy` where the scores carry neutral-prompt log-likelihoods."""
    import pandas as pd

    from interp.evaluate.metrics import evaluate
    from interp.evaluate.scoring import calibrated_scores

    metrics = evaluate(scores, languages, n_boot=n_boot, seed=seed, exposure=exposure)
    if "neutral_log_likelihood" not in scores.columns:
        return metrics
    calibrated = evaluate(
        calibrated_scores(scores),
        languages,
        metrics=("accuracy", "group_accuracy"),
        n_boot=n_boot,
        seed=seed,
    )
    calibrated["metric"] = "calibrated_" + calibrated["metric"]
    return pd.concat([metrics, calibrated], ignore_index=True)


def _to_parquet(table, path: Path) -> None:
    # tuples of mixed width do not round-trip through parquet; store them as lists
    out = table.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, tuple)).any():
            out[column] = out[column].map(lambda v: list(v) if isinstance(v, tuple) else v)
    out.to_parquet(path)


def summary_table(metrics_by_checkpoint: dict, metrics=SUMMARY_METRICS):
    """One row per checkpoint, one column per headline metric, values as 'v [lo, hi]' in %."""
    import pandas as pd

    rows = []
    for name, metrics_table in metrics_by_checkpoint.items():
        row = {"checkpoint": name}
        for metric, language in metrics:
            hit = metrics_table[
                (metrics_table.metric == metric) & (metrics_table.language == language)
            ]
            if hit.empty:
                continue
            value, lo, hi = (100 * float(hit.iloc[0][c]) for c in ("value", "ci_low", "ci_high"))
            label = (
                f"{metric.replace('group_accuracy', 'acc')}:{language}"
                if language != "all" or metric == "group_accuracy"
                else metric
            )
            row[label] = f"{value:5.1f} [{lo:4.1f}, {hi:4.1f}]" if hi == hi else f"{value:5.1f}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("checkpoint")


def write_results(results: dict[str, EvalResult], out_dir: str | os.PathLike) -> Path:
    """All checkpoints' metrics in one tidy parquet + CSV, atomically."""
    import pandas as pd

    from interp.io import atomic_write_bytes

    out = Path(out_dir)
    table = pd.concat(
        [r.metrics.assign(checkpoint=name) for name, r in results.items()], ignore_index=True
    )
    atomic_write_bytes(out / "metrics.csv", table.to_csv(index=False).encode())
    atomic_write_bytes(out / "metrics.parquet", table.to_parquet())
    atomic_write_bytes(
        out / "checkpoints.json",
        json.dumps({n: r.checkpoint for n, r in results.items()}, indent=2).encode(),
    )
    return out
