"""Recall and cross-lingual consistency metrics on option scores, with bootstrap intervals.

Input is a *scores table*: a pandas DataFrame with one row per (fact, language) and columns
- `fact_id`: the same id in every language;
- `language`: an ISO 639-1 code;
- `answer_index`: index of the correct option in this language's option order;
- `scores`: one number per option, higher = preferred (for example mean token log-likelihood);
- `option_ids` (needed for RankC and agreement): the entity behind each option, aligned to
  `scores`; the same entities in every language of a fact, in any order;
- optional `relation` (for `accuracy(..., by="relation")`).

Every metric is a mean over facts, so one machinery serves the point estimate and the bootstrap:
each metric is computed from per-fact values under fact weights (all ones for the estimate; the
counts of a resample of fact_ids for the bootstrap). Languages are never resampled separately:
one resample of facts is shared by all languages and pairs, so paired comparisons stay honest.

Results are tidy DataFrames with columns
`metric, language, other, value, ci_low, ci_high, n`, where `language` is a code, a group name
(`trained-high`, `trained-low`, `unseen`) or `all`, `other` is the second language of a pair
(else ""), and `n` counts the facts that enter the value.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interp import languages as langreg
from interp.errors import DataError
from interp.intervals import finite_interval

METRICS = (
    "accuracy",
    "group_accuracy",
    "total_consistency",
    "rankc",
    "agreement",
    "english_anchored",
    "pairwise_consistency",
    "exposure_accuracy",
)
GROUPS = langreg.GROUPS
# what a (fact, language) item's model read of the fact in that language (from the organism's
# mixture): read in L; never read in L and its answer spelt differently from English's (only
# transfer from English can answer it); never read in L but spelt as in English (copying can)
EXPOSURES = ("exposed", "english_only", "same_label")
REQUIRED_COLUMNS = ("fact_id", "language", "answer_index", "scores")
RESULT_COLUMNS = ("metric", "language", "other", "value", "ci_low", "ci_high", "n")
_BOOT_CHUNK = 250  # resamples per matrix product: bounds memory at chunk x facts


# --------------------------------------------------------------------------------------------
# validation


def check_scores_table(
    table: pd.DataFrame, *, need_ids: bool = False, source: str = "scores table"
) -> pd.DataFrame:
    """Validate a scores table and return a copy with `predicted_index` and `correct` added.

    The predicted option is the argmax of `scores`; on exact ties the first option wins.
    Raises DataError for missing columns, duplicate (fact_id, language) rows, scores whose length
    differs from the number of options, non-finite scores and out-of-range answer indices.
    """
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(table).__name__}")
    needed = REQUIRED_COLUMNS + (("option_ids",) if need_ids else ())
    missing = [c for c in needed if c not in table.columns]
    if need_ids and not missing and table["option_ids"].isna().any():
        raise DataError(
            f"{source}: {int(table['option_ids'].isna().sum())} row(s) have no option_ids. Fix: "
            "store the entity id of every option, or leave rankc/agreement out of `metrics`"
        )
    if missing:
        fix = (
            "store the entity id of every option (RankC and agreement compare entities across "
            "languages), or leave rankc/agreement out of `metrics`"
            if missing == ["option_ids"]
            else f"provide columns {', '.join(needed)}"
        )
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; columns present: "
            f"{', '.join(map(str, table.columns))}. Fix: {fix}"
        )
    if table.empty:
        raise DataError(f"{source}: the table has no rows. Fix: score some items first")
    duplicated = table.duplicated(["fact_id", "language"], keep=False)
    if duplicated.any():
        first = table.loc[duplicated, ["fact_id", "language"]].iloc[0]
        raise DataError(
            f"{source}: {int(duplicated.sum())} rows repeat a (fact_id, language) pair, e.g. "
            f"fact {first.fact_id!r} in {first.language!r}. Fix: keep one row per fact and language"
        )

    out = table.copy()
    scores = [np.asarray(s, dtype=float).reshape(-1) for s in out["scores"]]
    lengths = np.array([len(s) for s in scores])
    if "option_ids" in out.columns and out["option_ids"].notna().all():
        expected = np.array([len(ids) for ids in out["option_ids"]])
        what = "its number of option_ids"
    else:
        values, counts = np.unique(lengths, return_counts=True)
        expected = np.full(len(lengths), values[np.argmax(counts)])
        what = "the number of options of the other rows"
    bad = np.flatnonzero(lengths != expected)
    if bad.size:
        row = out.iloc[bad[0]]
        raise DataError(
            f"{source}: {bad.size} row(s) have scores of the wrong length, e.g. fact "
            f"{row.fact_id!r} in {row.language!r}: {lengths[bad[0]]} scores, {what} is "
            f"{expected[bad[0]]}. Fix: give one score per option, in option order"
        )
    if len(set(lengths.tolist())) > 1:
        raise DataError(
            f"{source}: items have different numbers of options ({sorted(set(lengths.tolist()))}). "
            "Fix: evaluate items with the same number of options together"
        )
    n_options = int(lengths[0])
    nonfinite = [i for i, s in enumerate(scores) if not np.all(np.isfinite(s))]
    if nonfinite:
        row = out.iloc[nonfinite[0]]
        raise DataError(
            f"{source}: {len(nonfinite)} row(s) have NaN or infinite scores, e.g. fact "
            f"{row.fact_id!r} in {row.language!r}. Fix: check the scoring run"
        )
    answer = pd.to_numeric(out["answer_index"], errors="coerce")
    bad_answer = answer.isna() | (answer < 0) | (answer >= n_options) | (answer % 1 != 0)
    if bad_answer.any():
        row = out.loc[bad_answer].iloc[0]
        raise DataError(
            f"{source}: answer_index {row.answer_index!r} of fact {row.fact_id!r} in "
            f"{row.language!r} is not an option index 0..{n_options - 1}. Fix: use 0-based indices"
        )
    out["answer_index"] = answer.astype(int)
    out["scores"] = [tuple(s.tolist()) for s in scores]
    out["predicted_index"] = [int(np.argmax(s)) for s in scores]
    out["correct"] = out["predicted_index"] == out["answer_index"]
    return out


def _select_languages(
    table: pd.DataFrame, languages: Iterable[str] | None, source: str
) -> tuple[str, ...]:
    present = list(dict.fromkeys(table["language"]))
    if languages is None:
        # registry order where known (the paper's order), then any other codes as they appear
        known = [c for c in langreg.ALL if c in present]
        return tuple(known + [c for c in present if c not in known])
    requested = tuple(languages)
    if len(set(requested)) != len(requested):
        raise DataError(f"{source}: duplicate language codes in {requested}")
    absent = [c for c in requested if c not in present]
    if absent:
        raise DataError(
            f"{source}: no items for language(s) {', '.join(map(repr, absent))}; languages "
            f"present: {', '.join(present)}. Fix: score those languages or drop them from `languages`"
        )
    return requested


# --------------------------------------------------------------------------------------------
# per-fact arrays


@dataclass
class FactArrays:
    """Per-fact values of one scores table, the raw material of every metric.

    F facts x L languages (x N options); `present[f, l]` says whether fact f has a row in
    language l. `ranks[f, l, e]` is the rank (0 = best) of the fact's e-th entity (entities in
    sorted-id order) in language l; `chosen[f, l]` the entity index of the argmax option.
    """

    fact_ids: np.ndarray
    languages: tuple[str, ...]
    present: np.ndarray
    correct: np.ndarray
    ranks: np.ndarray | None = None
    chosen: np.ndarray | None = None
    exposure: np.ndarray | None = None  # [F, L] index into EXPOSURES, -1 where unknown
    cache: dict = field(default_factory=dict, repr=False)  # per-fact pairwise values

    @property
    def n_options(self) -> int:
        return 0 if self.ranks is None else self.ranks.shape[2]


def fact_arrays(
    table: pd.DataFrame,
    languages: Iterable[str] | None = None,
    *,
    need_ids: bool = False,
    fact_ids: Sequence | None = None,
    exposure: pd.DataFrame | None = None,
    source: str = "scores table",
) -> FactArrays:
    """Turn a scores table into `FactArrays` for the given languages (default: all present).

    `fact_ids` fixes the fact order (used to align two checkpoints); facts without rows in the
    chosen languages are dropped. With `need_ids`, checks that the options of a fact name the same
    entities in every language and that the correct entity is the same in every language.
    `exposure`: a table with fact_id, language, exposure (one of EXPOSURES) per item.
    """
    checked = check_scores_table(table, need_ids=need_ids, source=source)
    codes = _select_languages(checked, languages, source)
    checked = checked[checked["language"].isin(codes)]
    if fact_ids is None:
        fact_ids = sorted(dict.fromkeys(checked["fact_id"]), key=str)
    fact_ids = np.asarray(list(fact_ids), dtype=object)
    fact_pos = {fid: i for i, fid in enumerate(fact_ids)}
    lang_pos = {code: j for j, code in enumerate(codes)}
    n_facts, n_langs = len(fact_ids), len(codes)

    present = np.zeros((n_facts, n_langs), dtype=bool)
    correct = np.zeros((n_facts, n_langs), dtype=float)
    rows = checked[checked["fact_id"].isin(fact_pos)]
    f_idx = rows["fact_id"].map(fact_pos).to_numpy()
    l_idx = rows["language"].map(lang_pos).to_numpy()
    present[f_idx, l_idx] = True
    correct[f_idx, l_idx] = rows["correct"].to_numpy(dtype=float)

    ranks = chosen = None
    if need_ids:
        n_options = len(rows["scores"].iloc[0])
        ranks = np.zeros((n_facts, n_langs, n_options), dtype=np.int64)
        chosen = np.full((n_facts, n_langs), -1, dtype=np.int64)
        entities: dict[int, dict] = {}  # fact index -> {entity id: canonical index}
        answers: dict[int, tuple] = {}  # fact index -> (answer entity, language it was seen in)
        for f, lang_j, ids, scores, answer in zip(
            f_idx, l_idx, rows["option_ids"], rows["scores"], rows["answer_index"], strict=True
        ):
            ids = tuple(ids)
            code = codes[lang_j]
            if len(set(ids)) != len(ids):
                raise DataError(
                    f"{source}: fact {fact_ids[f]!r} in {code!r} has repeated option_ids {ids}. "
                    "Fix: each option must be a distinct entity"
                )
            if f not in entities:
                entities[f] = {e: k for k, e in enumerate(sorted(ids, key=str))}
                answers[f] = (ids[answer], code)
            canon = entities[f]
            if set(ids) != set(canon):
                raise DataError(
                    f"{source}: fact {fact_ids[f]!r} has different option entities in "
                    f"{answers[f][1]!r} ({sorted(canon, key=str)}) and {code!r} "
                    f"({sorted(ids, key=str)}). Fix: use the same distractor entities in every "
                    "language (only their order may differ)"
                )
            if ids[answer] != answers[f][0]:
                raise DataError(
                    f"{source}: fact {fact_ids[f]!r}: the correct entity is {answers[f][0]!r} in "
                    f"{answers[f][1]!r} but {ids[answer]!r} in {code!r}. Fix: check answer_index "
                    "and option_ids of these items"
                )
            order = np.argsort(-np.asarray(scores), kind="stable")  # best first, ties by position
            canon_index = np.array([canon[e] for e in ids])
            ranks[f, lang_j, canon_index[order]] = np.arange(n_options)
            chosen[f, lang_j] = canon_index[order[0]]
    exposure_codes = None
    if exposure is not None:
        exposure_codes = _exposure_codes(exposure, fact_pos, lang_pos, source)
    return FactArrays(fact_ids, codes, present, correct, ranks, chosen, exposure_codes)


def _exposure_codes(exposure: pd.DataFrame, fact_pos: dict, lang_pos: dict, source: str):
    missing = [c for c in ("fact_id", "language", "exposure") if c not in exposure.columns]
    if missing:
        raise DataError(
            f"{source}: the exposure table lacks column(s) {', '.join(missing)}. Fix: give "
            "fact_id, language and exposure (one of " + ", ".join(EXPOSURES) + ") per item"
        )
    unknown = sorted(set(exposure["exposure"]) - set(EXPOSURES))
    if unknown:
        raise DataError(
            f"{source}: unknown exposure value(s) {unknown}. Fix: use {', '.join(EXPOSURES)}"
        )
    codes = np.full((len(fact_pos), len(lang_pos)), -1, dtype=np.int64)
    known = exposure[exposure["fact_id"].isin(fact_pos) & exposure["language"].isin(lang_pos)]
    index = {name: k for k, name in enumerate(EXPOSURES)}
    codes[
        known["fact_id"].map(fact_pos).to_numpy(dtype=int),
        known["language"].map(lang_pos).to_numpy(dtype=int),
    ] = known["exposure"].map(index).to_numpy(dtype=int)
    return codes


def rankc_weights(n_options: int) -> np.ndarray:
    """RankC weights w_j = e^(N-j) / sum_k e^(N-k) for j = 1..N (Qi et al. 2023)."""
    exponents = n_options - np.arange(1, n_options + 1, dtype=float)
    weights = np.exp(exponents - exponents.max())  # shift for stability; cancels in the ratio
    return weights / weights.sum()


def pairwise_rankc(arrays: FactArrays) -> tuple[np.ndarray, np.ndarray]:
    """Per-fact RankC for every ordered language pair: values and mask, both [F, L, L].

    RankC_f(l, l') = sum_j w_j |top_j(l) & top_j(l')| / j, where top_j is the set of the j
    best-scored entities. The diagonal is 1 wherever the fact is present.
    """
    if arrays.ranks is None:
        raise DataError("RankC needs option_ids. Fix: build FactArrays with need_ids=True")
    if "rankc" in arrays.cache:
        return arrays.cache["rankc"]
    n_options = arrays.n_options
    cutoffs = np.arange(n_options)  # top_(j+1) holds the entities of rank <= j
    top = (arrays.ranks[:, :, None, :] <= cutoffs[None, None, :, None]).astype(np.float32)
    overlap = np.einsum("fajn,fbjn->fabj", top, top)  # |top_j(a) & top_j(b)|, [F, L, L, N]
    coefficients = (rankc_weights(n_options) / np.arange(1, n_options + 1)).astype(np.float32)
    values = (overlap * coefficients).sum(axis=-1).astype(float)
    mask = arrays.present[:, :, None] & arrays.present[:, None, :]
    arrays.cache["rankc"] = (np.where(mask, values, 0.0), mask)
    return arrays.cache["rankc"]


def pairwise_agreement(arrays: FactArrays) -> tuple[np.ndarray, np.ndarray]:
    """Per-fact answer agreement (same chosen entity) for every ordered language pair, [F, L, L]."""
    if arrays.chosen is None:
        raise DataError("agreement needs option_ids. Fix: build FactArrays with need_ids=True")
    if "agreement" not in arrays.cache:
        same = (arrays.chosen[:, :, None] == arrays.chosen[:, None, :]).astype(float)
        mask = arrays.present[:, :, None] & arrays.present[:, None, :]
        arrays.cache["agreement"] = (np.where(mask, same, 0.0), mask)
    return arrays.cache["agreement"]


# --------------------------------------------------------------------------------------------
# metrics under fact weights


def _weighted_means(weights: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sum_f w_f v_f / sum_f w_f m_f for each column; weights [B, F], values/mask [F, K]."""
    mask = mask.astype(float)
    numerator = weights @ (values * mask)
    denominator = weights @ mask
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


def _group_members(codes: Sequence[str], *, anchored: bool = False) -> dict[str, list[int]]:
    """Language indices per group, then `trained` (the trained languages but English) and
    `all`. `anchored`: English left out of every group (measures relative to English)."""
    members: dict[str, list[int]] = {}
    for j, code in enumerate(codes):
        if anchored and code == "en":
            continue
        members.setdefault(langreg.group(code), []).append(j)
    ordered = {g: members[g] for g in GROUPS if g in members}
    trained = [
        j for j, code in enumerate(codes) if code != "en" and langreg.group(code) != "unseen"
    ]
    if trained:
        ordered["trained"] = trained
    ordered["all"] = [j for j, code in enumerate(codes) if not (anchored and code == "en")]
    return ordered


def _group_means(per_language: np.ndarray, members: list[int]) -> np.ndarray:
    """Mean over a group's languages of [B, L] values, ignoring languages without a value."""
    part = per_language[:, members]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a group with no value at all: NaN
        return np.nanmean(part, axis=1) if part.size else np.full(len(per_language), np.nan)


def _metric_values(
    arrays: FactArrays, weights: np.ndarray, metrics: Sequence[str]
) -> dict[tuple[str, str, str], np.ndarray]:
    """Every requested metric under each row of `weights` ([B, F]): {(metric, language, other): [B]}."""
    codes = arrays.languages
    out: dict[tuple[str, str, str], np.ndarray] = {}
    if "accuracy" in metrics or "group_accuracy" in metrics:
        per_language = _weighted_means(weights, arrays.correct, arrays.present)
        if "accuracy" in metrics:
            for j, code in enumerate(codes):
                out[("accuracy", code, "")] = per_language[:, j]
        if "group_accuracy" in metrics:
            for name, members in _group_members(codes).items():
                out[("group_accuracy", name, "")] = per_language[:, members].mean(axis=1)
    if "total_consistency" in metrics:
        for name, members in _consistency_sets(codes).items():
            present = arrays.present[:, members]
            in_all = present.all(axis=1)
            all_correct = (arrays.correct[:, members] * present).sum(axis=1) == len(members)
            out[("total_consistency", name, "")] = _weighted_means(
                weights, all_correct[:, None].astype(float), in_all[:, None]
            )[:, 0]
    if "english_anchored" in metrics and "en" in codes:
        en = codes.index("en")
        anchor = arrays.present & arrays.present[:, [en]] & (arrays.correct[:, [en]] > 0)
        per_language = _weighted_means(weights, arrays.correct, anchor)
        for j, code in enumerate(codes):
            if code != "en":
                out[("english_anchored", code, "")] = per_language[:, j]
        for name, members in _group_members(codes, anchored=True).items():
            out[("english_anchored", name, "")] = _group_means(per_language, members)
    if "exposure_accuracy" in metrics and arrays.exposure is not None:
        for k, kind in enumerate(EXPOSURES):
            mask = arrays.present & (arrays.exposure == k)
            per_language = _weighted_means(weights, arrays.correct, mask)
            for j, code in enumerate(codes):
                if code != "en" and mask[:, j].any():
                    out[(f"accuracy_{kind}", code, "")] = per_language[:, j]
            for name, members in _group_members(codes, anchored=True).items():
                if mask[:, members].any():
                    out[(f"accuracy_{kind}", name, "")] = _group_means(per_language, members)
    pairwise_metrics = (
        ("rankc", pairwise_rankc),
        ("agreement", pairwise_agreement),
        ("pairwise_consistency", _pairwise_consistency),
    )
    for name, pairwise in pairwise_metrics:
        if name not in metrics:
            continue
        values, mask = pairwise(arrays)
        n_langs = len(codes)
        matrix = _weighted_means(
            weights, values.reshape(len(values), -1), mask.reshape(len(mask), -1)
        ).reshape(-1, n_langs, n_langs)
        for a, code_a in enumerate(codes):
            for b, code_b in enumerate(codes):
                out[(name, code_a, code_b)] = matrix[:, a, b]
        if n_langs > 1 and name != "pairwise_consistency":  # no mean of a directed matrix
            off_diagonal = ~np.eye(n_langs, dtype=bool)
            out[(f"{name}_mean", "all", "")] = matrix[:, off_diagonal].mean(axis=1)
    return out


def _consistency_sets(codes: Sequence[str]) -> dict[str, list[int]]:
    """Total consistency is judged over `all` languages and, when the set also holds unseen
    ones, over the `trained` languages (English included: the paper's 12)."""
    sets = {"all": list(range(len(codes)))}
    trained = [j for j, code in enumerate(codes) if langreg.group(code) != "unseen"]
    if 1 < len(trained) < len(codes):
        sets["trained"] = trained
    return sets


def _pairwise_consistency(arrays: FactArrays) -> tuple[np.ndarray, np.ndarray]:
    """Per fact, whether language b is right, over the facts that language a gets right:
    values and mask, both [F, L, L] (row a, column b)."""
    if "pairwise_consistency" not in arrays.cache:
        right = arrays.present & (arrays.correct > 0)
        mask = right[:, :, None] & arrays.present[:, None, :]
        values = np.broadcast_to(arrays.correct[:, None, :], mask.shape).astype(float)
        arrays.cache["pairwise_consistency"] = (np.where(mask, values, 0.0), mask)
    return arrays.cache["pairwise_consistency"]


def _fact_counts(arrays: FactArrays, metrics: Sequence[str]) -> dict[tuple[str, str, str], int]:
    """How many facts enter each value (unweighted)."""
    codes, present = arrays.languages, arrays.present
    counts: dict[tuple[str, str, str], int] = {}
    if "accuracy" in metrics:
        for j, code in enumerate(codes):
            counts[("accuracy", code, "")] = int(present[:, j].sum())
    if "group_accuracy" in metrics:
        for name, members in _group_members(codes).items():
            counts[("group_accuracy", name, "")] = int(present[:, members].any(axis=1).sum())
    if "total_consistency" in metrics:
        for name, members in _consistency_sets(codes).items():
            counts[("total_consistency", name, "")] = int(present[:, members].all(axis=1).sum())
    if "english_anchored" in metrics and "en" in codes:
        en = codes.index("en")
        anchor = present & present[:, [en]] & (arrays.correct[:, [en]] > 0)
        for j, code in enumerate(codes):
            if code != "en":
                counts[("english_anchored", code, "")] = int(anchor[:, j].sum())
        for name, members in _group_members(codes, anchored=True).items():
            counts[("english_anchored", name, "")] = int(anchor[:, members].any(axis=1).sum())
    if "pairwise_consistency" in metrics:
        _, mask = _pairwise_consistency(arrays)
        for a, code_a in enumerate(codes):
            for b, code_b in enumerate(codes):
                counts[("pairwise_consistency", code_a, code_b)] = int(mask[:, a, b].sum())
    if "exposure_accuracy" in metrics and arrays.exposure is not None:
        for k, kind in enumerate(EXPOSURES):
            mask = present & (arrays.exposure == k)
            for j, code in enumerate(codes):
                if code != "en" and mask[:, j].any():
                    counts[(f"accuracy_{kind}", code, "")] = int(mask[:, j].sum())
            for name, members in _group_members(codes, anchored=True).items():
                if mask[:, members].any():
                    counts[(f"accuracy_{kind}", name, "")] = int(mask[:, members].sum())
    for name in ("rankc", "agreement"):
        if name not in metrics:
            continue
        for a, code_a in enumerate(codes):
            for b, code_b in enumerate(codes):
                counts[(name, code_a, code_b)] = int((present[:, a] & present[:, b]).sum())
        counts[(f"{name}_mean", "all", "")] = int((present.sum(axis=1) >= 2).sum())
    return counts


def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise DataError(
            f"unknown metric(s) {', '.join(map(repr, unknown))}. Fix: choose from {', '.join(METRICS)}"
        )
    return metrics


def _resample_weights(n_facts: int, n_boot: int, rng: np.random.Generator):
    """Yield chunks of bootstrap weights: counts of each fact in a resample of n_facts facts."""
    for start in range(0, n_boot, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_boot - start)
        yield rng.multinomial(n_facts, np.full(n_facts, 1.0 / n_facts), size=size).astype(float)


def _check_bootstrap_args(n_boot: int, confidence: float) -> None:
    if n_boot < 0:
        raise DataError(f"n_boot={n_boot}: must be >= 0 (0 = no intervals)")
    if not 0 < confidence < 1:
        raise DataError(f"confidence={confidence}: must lie strictly between 0 and 1, e.g. 0.95")


# --------------------------------------------------------------------------------------------
# public API


def evaluate(
    table: pd.DataFrame,
    languages: Iterable[str] | None = None,
    *,
    metrics: Iterable[str] = METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    exposure: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Point estimates and bootstrap intervals of the requested metrics.

    - `accuracy` per language: share of facts whose argmax option is the correct one;
    - `group_accuracy` per group of `interp.languages.group` and `all`: the unweighted mean of
      the per-language accuracies of the group's languages;
    - `total_consistency` (`language` = "all"): share of facts answered correctly in every one of
      `languages`, over the facts present in all of them (`n` says how many);
    - `rankc` per ordered pair (diagonal included) and `rankc_mean` over the off-diagonal pairs;
    - `agreement` per ordered pair (same chosen entity) and `agreement_mean`;
    - `english_anchored` per language and group (English left out): of the facts answered
      right in English, the share answered right in the language; groups average languages;
    - `pairwise_consistency` per ordered pair (a, b): of the facts right in a, the share
      right in b;
    - `exposure_accuracy` (with `exposure`): `accuracy_exposed`, `accuracy_english_only`
      and `accuracy_same_label` per language and group, over the items of that exposure
      (`n` counts items for groups, facts for languages).
    Groups: trained-high, trained-low, unseen, `trained` (the trained languages but English)
    and `all`. Total consistency is given over `all` languages and, where unseen languages are
    present too, over the `trained` ones (English included, the paper's measure).
    Intervals are percentile intervals over `n_boot` resamples of fact_ids (with replacement,
    the same resample for every language); `n_boot=0` leaves them NaN. `seed` makes them
    reproducible.
    """
    metrics = _check_metrics(metrics)
    _check_bootstrap_args(n_boot, confidence)
    need_ids = any(m in metrics for m in ("rankc", "agreement"))
    arrays = fact_arrays(table, languages, need_ids=need_ids, exposure=exposure)
    point = _metric_values(arrays, np.ones((1, len(arrays.fact_ids))), metrics)
    counts = _fact_counts(arrays, metrics)
    draws: dict[tuple[str, str, str], list[np.ndarray]] = {key: [] for key in point}
    rng = np.random.default_rng(seed)
    for weights in _resample_weights(len(arrays.fact_ids), n_boot, rng):
        for key, values in _metric_values(arrays, weights, metrics).items():
            draws[key].append(values)
    rows = []
    for key, value in point.items():
        low, high = (
            finite_interval(np.concatenate(draws[key]), confidence) if n_boot else (np.nan, np.nan)
        )
        rows.append((*key, float(value[0]), low, high, counts[key]))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def paired_bootstrap(
    table_a: pd.DataFrame,
    table_b: pd.DataFrame,
    languages: Iterable[str] | None = None,
    *,
    metrics: Iterable[str] = METRICS,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    exposure: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The difference B - A of every metric between two checkpoints scored on the same items.

    Only (fact_id, language) items present in both tables count; their answer_index (and
    option_ids) must agree. Each resample of fact_ids is applied to both checkpoints, so the
    interval reflects the paired design. Columns: metric, language, other, value_a, value_b,
    difference, ci_low, ci_high, p_value, n. `p_value` is the two-sided bootstrap share
    2 * min(P(d* <= 0), P(d* >= 0)), capped at 1 (NaN without resamples).
    """
    metrics = _check_metrics(metrics)
    _check_bootstrap_args(n_boot, confidence)
    need_ids = any(m in metrics for m in ("rankc", "agreement"))
    a = check_scores_table(table_a, need_ids=need_ids, source="checkpoint A")
    b = check_scores_table(table_b, need_ids=need_ids, source="checkpoint B")
    keys = ["fact_id", "language"]
    joined = a[keys + ["answer_index"]].merge(
        b[keys + ["answer_index"]], on=keys, suffixes=("_a", "_b")
    )
    if joined.empty:
        raise DataError(
            "checkpoint A and B share no (fact_id, language) items. Fix: score the same items "
            "with both checkpoints"
        )
    differs = joined["answer_index_a"] != joined["answer_index_b"]
    if differs.any():
        row = joined.loc[differs].iloc[0]
        raise DataError(
            f"checkpoints A and B disagree on answer_index for {int(differs.sum())} item(s), e.g. "
            f"fact {row.fact_id!r} in {row.language!r}. Fix: score both on the same item file"
        )
    common = pd.MultiIndex.from_frame(joined[keys])
    a = a[pd.MultiIndex.from_frame(a[keys]).isin(common)]
    b = b[pd.MultiIndex.from_frame(b[keys]).isin(common)]
    if need_ids:
        ids = a[keys + ["option_ids"]].merge(b[keys + ["option_ids"]], on=keys)
        mismatch = [
            tuple(x) != tuple(y)
            for x, y in zip(ids["option_ids_x"], ids["option_ids_y"], strict=True)
        ]
        if any(mismatch):
            row = ids.loc[mismatch].iloc[0]
            raise DataError(
                f"checkpoints A and B have different option_ids for fact {row.fact_id!r} in "
                f"{row.language!r}. Fix: score both on the same item file"
            )
    codes = _select_languages(a, languages, "checkpoints A and B (common items)")
    order = sorted(dict.fromkeys(a.loc[a["language"].isin(codes), "fact_id"]), key=str)
    arrays_a, arrays_b = (
        fact_arrays(
            t, codes, need_ids=need_ids, fact_ids=order, exposure=exposure, source=f"checkpoint {n}"
        )
        for t, n in ((a, "A"), (b, "B"))
    )

    ones = np.ones((1, len(order)))
    point_a = _metric_values(arrays_a, ones, metrics)
    point_b = _metric_values(arrays_b, ones, metrics)
    counts = _fact_counts(arrays_a, metrics)
    draws: dict[tuple[str, str, str], list[np.ndarray]] = {key: [] for key in point_a}
    rng = np.random.default_rng(seed)
    for weights in _resample_weights(len(order), n_boot, rng):
        values_a = _metric_values(arrays_a, weights, metrics)
        values_b = _metric_values(arrays_b, weights, metrics)
        for key in draws:
            draws[key].append(values_b[key] - values_a[key])
    rows = []
    for key in point_a:
        value_a, value_b = float(point_a[key][0]), float(point_b[key][0])
        low = high = p_value = float("nan")
        if n_boot:
            diffs = np.concatenate(draws[key])
            low, high = finite_interval(diffs, confidence)
            finite = diffs[np.isfinite(diffs)]
            if finite.size:
                p_value = min(1.0, 2 * min((finite <= 0).mean(), (finite >= 0).mean()))
        rows.append((*key, value_a, value_b, value_b - value_a, low, high, p_value, counts[key]))
    columns = ["metric", "language", "other", "value_a", "value_b", "difference"]
    return pd.DataFrame(rows, columns=columns + ["ci_low", "ci_high", "p_value", "n"])


def accuracy(
    table: pd.DataFrame, languages: Iterable[str] | None = None, *, by: str | None = None
) -> pd.DataFrame:
    """Accuracy per language (no intervals); with `by` (e.g. "relation") one row per value of it."""
    if by is None:
        return evaluate(table, languages, metrics=("accuracy",), n_boot=0)
    if by not in table.columns:
        raise DataError(f"scores table: no column {by!r} to group by. Fix: add it or use by=None")
    codes = _select_languages(check_scores_table(table), languages, "scores table")
    parts = []
    for value, part in table.groupby(by, sort=True):
        present = [c for c in codes if c in set(part["language"])]
        if not present:
            continue
        result = evaluate(part, present, metrics=("accuracy",), n_boot=0)
        parts.append(result.assign(**{by: value}))
    return pd.concat(parts, ignore_index=True)


def group_accuracy(table: pd.DataFrame, languages: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean per-language accuracy of each language group and of all languages (no intervals)."""
    return evaluate(table, languages, metrics=("group_accuracy",), n_boot=0)


def total_consistency(table: pd.DataFrame, languages: Iterable[str] | None = None) -> pd.DataFrame:
    """Share of facts correct in all `languages`, over facts present in all of them (`n`)."""
    return evaluate(table, languages, metrics=("total_consistency",), n_boot=0)


def rankc(table: pd.DataFrame, languages: Iterable[str] | None = None) -> pd.DataFrame:
    """RankC per ordered language pair and its mean over off-diagonal pairs (no intervals)."""
    return evaluate(table, languages, metrics=("rankc",), n_boot=0)


def agreement(table: pd.DataFrame, languages: Iterable[str] | None = None) -> pd.DataFrame:
    """Share of facts where two languages choose the same entity, per pair, and its mean."""
    return evaluate(table, languages, metrics=("agreement",), n_boot=0)


def pair_matrix(results: pd.DataFrame, metric: str = "rankc") -> pd.DataFrame:
    """A language x language matrix of a pairwise metric from a results table (rows: language)."""
    rows = results[(results["metric"] == metric) & (results["other"] != "")]
    if rows.empty:
        raise DataError(
            f"results: no pairwise rows for metric {metric!r}. Fix: include it in `metrics`"
        )
    order = list(dict.fromkeys(rows["language"]))
    matrix = rows.pivot(index="language", columns="other", values="value")
    return matrix.loc[order, order].rename_axis(index="language", columns="other")
