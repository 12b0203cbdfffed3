"""The paper's GRPO reward, its advantage, an agreement variant, and TRL reward functions.

One rollout = one generated answer in each trained language for one fact. Per language:
+1 if the answer names the correct option, -0.5 if it is non-empty and names no option,
0 if it names another option or is empty (only whitespace). The rollout's reward is the sum
over languages plus an all-correct bonus when every language is correct (default +1; 0 turns
it off, k gives +k). Answers are matched to options by `interp.text.match_option`.

Advantage: the G rollouts of a fact are standardised, (r - mean) / (std + eps), and the SAME
advantage goes to every language's output of a rollout. `std` is the SAMPLE standard deviation
(Bessel-corrected, divisor G - 1) and eps = 1e-4 by default, because TRL's GRPOTrainer does
exactly this (trl.trainer.utils.nanstd, `advantages / (std_rewards + 1e-4)`), so a TRL-based
trainer and this module give the same numbers. (The paper's own trainer used the population
std with eps 1e-6; pass std="population", eps=1e-6 to reproduce it. The two differ by the
constant factor sqrt((G - 1) / G), which only rescales the step size.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from interp.errors import ConfigError, DataError
from interp.text import match_option

if TYPE_CHECKING:
    import pandas as pd

OUTCOMES = ("correct", "wrong", "unparseable", "empty")
STD_KINDS = ("sample", "population")
TRL_EPS = 1e-4  # the constant TRL 1.16 adds to the std


@dataclass(frozen=True)
class RewardConfig:
    """Per-language rewards by outcome, the all-correct bonus and the agreement reward."""

    correct: float = 1.0
    wrong: float = 0.0
    unparseable: float = -0.5
    empty: float = 0.0
    all_correct_bonus: float = 1.0  # 0 = no bonus; the paper's ablations also use larger values
    agreement: float = 1.0  # per language, for the agreement variant

    def outcome_reward(self, outcome: str) -> float:
        if outcome not in OUTCOMES:
            raise DataError(f"unknown outcome {outcome!r}. Fix: use one of {', '.join(OUTCOMES)}")
        return float(getattr(self, outcome))


PAPER = RewardConfig()


@dataclass(frozen=True)
class AnswerKey:
    """What a language's answer is judged against: its options and the correct index."""

    options: tuple[str, ...]
    answer_index: int
    option_ids: tuple | None = None

    @classmethod
    def of(cls, options, answer_index, option_ids=None) -> AnswerKey:
        options = tuple(str(o) for o in options)
        if not 0 <= int(answer_index) < len(options):
            raise DataError(
                f"answer_index {answer_index!r} is outside the {len(options)} options {options}. "
                "Fix: use a 0-based index into the options"
            )
        ids = None if option_ids is None else tuple(option_ids)
        if ids is not None and len(ids) != len(options):
            raise DataError(f"{len(ids)} option_ids for {len(options)} options {options}")
        return cls(options, int(answer_index), ids)


def classify_answer(output: str | None, key: AnswerKey) -> str:
    """'empty' (nothing but whitespace), 'correct', 'wrong' (another option) or 'unparseable'."""
    if output is None or not str(output).strip():
        return "empty"
    index = match_option(output, key.options)
    if index is None:
        return "unparseable"
    return "correct" if index == key.answer_index else "wrong"


@dataclass(frozen=True)
class RolloutReward:
    """The joint reward of one rollout and its parts."""

    total: float
    outcomes: Mapping[str, str]  # language -> outcome
    language_rewards: Mapping[str, float]
    bonus: float

    @property
    def all_correct(self) -> bool:
        return all(o == "correct" for o in self.outcomes.values())


def rollout_reward(
    answers: Mapping[str, str | None],
    keys: Mapping[str, AnswerKey],
    config: RewardConfig = PAPER,
) -> RolloutReward:
    """The paper's joint reward of one rollout: answers and keys by language, same languages."""
    if set(answers) != set(keys):
        missing = sorted(set(keys) - set(answers))
        extra = sorted(set(answers) - set(keys))
        raise DataError(
            f"rollout answers and answer keys cover different languages (no answer for {missing}, "
            f"no key for {extra}). Fix: one answer per language of the fact (an empty string "
            "for no answer)"
        )
    if not keys:
        raise DataError("a rollout needs at least one language")
    outcomes = {lang: classify_answer(answers[lang], keys[lang]) for lang in keys}
    per_language = {lang: config.outcome_reward(o) for lang, o in outcomes.items()}
    all_correct = all(o == "correct" for o in outcomes.values())
    bonus = config.all_correct_bonus if all_correct else 0.0
    return RolloutReward(sum(per_language.values()) + bonus, outcomes, per_language, bonus)


def agreement_rewards(
    answers: Mapping[str, str | None],
    keys: Mapping[str, AnswerKey],
    config: RewardConfig = PAPER,
) -> dict[str, float]:
    """Agreement variant, one reward per language of a rollout (no gold answer used).

    The majority answer is the entity named by the most languages of the rollout, if it is
    named by at least two and no other entity is named as often (no unique plurality = no
    majority). A language gets `config.agreement` if its answer names the majority entity,
    `config.unparseable` if it is non-empty and names no option, and 0 otherwise. Entities
    come from `option_ids`, so answers in different languages and scripts can agree. Note that
    this rewards consistency, not correctness: a policy can agree on a wrong answer.
    """
    if set(answers) != set(keys):
        raise DataError(
            f"rollout answers cover {sorted(answers)} but keys cover {sorted(keys)}. Fix: one "
            "answer per language of the fact"
        )
    entities: dict[str, object] = {}
    rewards: dict[str, float] = {}
    for lang, key in keys.items():
        if key.option_ids is None:
            raise DataError(
                f"agreement reward: no option_ids for {lang!r}. Fix: store the entity id of "
                "every option so that answers can be compared across languages"
            )
        output = answers[lang]
        index = (
            None if output is None or not str(output).strip() else match_option(output, key.options)
        )
        if index is not None:
            entities[lang] = key.option_ids[index]
        elif output is not None and str(output).strip():
            rewards[lang] = config.unparseable
    ranked = Counter(entities.values()).most_common()
    majority = None
    if ranked and ranked[0][1] >= 2 and (len(ranked) == 1 or ranked[1][1] < ranked[0][1]):
        majority = ranked[0][0]
    for lang in keys:
        if lang not in rewards:
            hit = majority is not None and entities.get(lang) == majority
            rewards[lang] = config.agreement if hit else 0.0
    return rewards


def standardize(
    rewards: Sequence[float] | np.ndarray, *, eps: float = TRL_EPS, std: str = "sample"
) -> np.ndarray:
    """(r - mean) / (std + eps) over one fact's G rollouts.

    std="sample" divides by G - 1 (TRL's choice); "population" by G (the paper's trainer).
    A single rollout has no spread: its advantage is 0 (TRL gives the same).
    """
    if std not in STD_KINDS:
        raise ConfigError(f"std={std!r} is not known. Fix: use one of {', '.join(STD_KINDS)}")
    values = np.asarray(rewards, dtype=float).reshape(-1)
    if values.size == 0:
        raise DataError("no rewards to standardise. Fix: give at least one rollout")
    if values.size == 1:
        return np.zeros(1)
    spread = values.std(ddof=1 if std == "sample" else 0)
    return (values - values.mean()) / (spread + eps)


def score_rollouts(
    rollouts: pd.DataFrame,
    items: pd.DataFrame,
    *,
    config: RewardConfig = PAPER,
    eps: float = TRL_EPS,
    std: str = "sample",
) -> pd.DataFrame:
    """Rewards and advantages of many rollouts, as a tidy table.

    `rollouts`: columns fact_id, rollout, language, output (one row per language answer).
    `items`: columns fact_id, language, options, answer_index (one row per fact and language).
    Every rollout of a fact must answer in every language the fact's rows in `rollouts` use.
    Returns the rollout rows with outcome, language_reward, reward (the rollout's joint reward,
    repeated on each of its rows) and advantage (standardised over the fact's rollouts, the
    same on every language row of a rollout).
    """
    need = {
        "rollouts": ("fact_id", "rollout", "language", "output"),
        "items": ("fact_id", "language", "options", "answer_index"),
    }
    for name, frame in (("rollouts", rollouts), ("items", items)):
        missing = [c for c in need[name] if c not in frame.columns]
        if missing:
            raise DataError(f"{name}: missing column(s) {', '.join(missing)}")
    key_of = {
        (row.fact_id, row.language): AnswerKey.of(
            row.options, row.answer_index, getattr(row, "option_ids", None)
        )
        for row in items.itertuples(index=False)
    }
    out = rollouts.copy()
    out["outcome"] = ""
    out["language_reward"] = 0.0
    out["reward"] = 0.0
    out["advantage"] = 0.0
    for fact_id, fact_rows in out.groupby("fact_id", sort=False):
        languages = sorted(set(fact_rows["language"]))
        no_key = [lang for lang in languages if (fact_id, lang) not in key_of]
        if no_key:
            raise DataError(
                f"rollouts: fact {fact_id!r} has no item in {no_key}. Fix: add the items"
            )
        keys = {lang: key_of[(fact_id, lang)] for lang in languages}
        totals = {}
        for rollout_id, rows in fact_rows.groupby("rollout", sort=False):
            if rows["language"].duplicated().any() or set(rows["language"]) != set(languages):
                raise DataError(
                    f"rollouts: fact {fact_id!r}, rollout {rollout_id!r} answers in "
                    f"{sorted(rows['language'])}, expected each of {languages} once. Fix: one "
                    "answer per language in every rollout"
                )
            answers = dict(zip(rows["language"], rows["output"], strict=True))
            result = rollout_reward(answers, keys, config)
            out.loc[rows.index, "outcome"] = rows["language"].map(result.outcomes)
            out.loc[rows.index, "language_reward"] = rows["language"].map(result.language_rewards)
            out.loc[rows.index, "reward"] = result.total
            totals[rollout_id] = result.total
        advantages = dict(
            zip(totals, standardize(list(totals.values()), eps=eps, std=std), strict=True)
        )
        out.loc[fact_rows.index, "advantage"] = fact_rows["rollout"].map(advantages)
    return out


# --------------------------------------------------------------------------------------------
# TRL reward functions


def _completion_text(completion) -> str:
    """A TRL completion as text: a string, or the content of the last chat message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content blocks
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content or "")
    return "" if completion is None else str(completion)


def rollout_layout(
    fact_ids: Sequence, languages: Sequence[str], *, num_generations: int | None = None
) -> dict[object, list[dict[str, int]]]:
    """Group completion positions into rollouts: {fact_id: [ {language: position}, ... ]}.

    Rollout j of a fact holds the j-th completion (in list order) of each of its languages.
    Raises DataError when the languages of a fact hold different numbers of completions, or,
    with `num_generations`, when a block of G consecutive completions mixes prompts.
    """
    if len(fact_ids) != len(languages):
        raise DataError(f"{len(fact_ids)} fact_id values for {len(languages)} language values")
    if num_generations is not None:
        if num_generations < 1 or len(fact_ids) % num_generations:
            raise DataError(
                f"{len(fact_ids)} completions do not split into blocks of num_generations="
                f"{num_generations}. Fix: pass the trainer's num_generations"
            )
        for start in range(0, len(fact_ids), num_generations):
            block = set(
                zip(
                    fact_ids[start : start + num_generations],
                    languages[start : start + num_generations],
                    strict=True,
                )
            )
            if len(block) != 1:
                raise DataError(
                    f"completions {start}..{start + num_generations - 1} mix prompts {sorted(block, key=str)}; "
                    "TRL normalises each block of num_generations as one prompt. Fix: keep TRL's "
                    "RepeatSampler layout (each prompt repeated num_generations times in a row)"
                )
    positions: dict[object, dict[str, list[int]]] = {}
    for position, (fact_id, lang) in enumerate(zip(fact_ids, languages, strict=True)):
        positions.setdefault(fact_id, {}).setdefault(lang, []).append(position)
    layout: dict[object, list[dict[str, int]]] = {}
    for fact_id, by_language in positions.items():
        sizes = {lang: len(p) for lang, p in by_language.items()}
        if len(set(sizes.values())) != 1:
            raise DataError(
                f"fact {fact_id!r}: languages hold different numbers of completions {sizes}. "
                "Fix: put all language rows of a fact in the same generation batch (a sampler "
                "that keeps a fact's rows together; generation_batch_size / num_generations a "
                "multiple of the number of languages)"
            )
        n_rollouts = next(iter(sizes.values()))
        layout[fact_id] = [
            {lang: p[j] for lang, p in by_language.items()} for j in range(n_rollouts)
        ]
    return layout


def make_trl_reward(
    kind: str = "joint",
    config: RewardConfig = PAPER,
    *,
    languages: Iterable[str] | None = None,
    num_generations: int | None = None,
) -> Callable[..., list[float]]:
    """A reward function for TRL 1.16 `GRPOTrainer(reward_funcs=[...])`.

    TRL calls it as f(prompts, completions, completion_ids, **columns), every list aligned with
    the completions, where `columns` are the dataset's extra columns. Layout contract (what a
    trainer must provide, checked where possible):
    1. one dataset row per (fact, language) with columns `fact_id`, `language`, `options`
       (list of option texts), `answer_index`, and `option_ids` for kind="agreement";
    2. TRL repeats each row num_generations (G) times in a row (its RepeatSampler), and the
       sampler must keep all language rows of a fact in one process's generation batch;
    3. then, for fact f, the completions of language l appear in list order c_0 .. c_(G-1);
       rollout j is {c_j of every language}.
    kind="joint" (the paper): every completion of rollout j gets the JOINT reward R(f, j) of
    the rollout. TRL standardises each block of G completions of one prompt (mean, sample std,
    + 1e-4, scale_rewards="group"); every language block of f holds the same values
    R(f, 0..G-1), so completion j gets the same advantage (R_j - mean) / (std + 1e-4) in every
    language, as in the paper. (This holds for one reward function, or others that are also
    constant across a rollout's languages.)
    kind="agreement": each completion gets its own language's `agreement_rewards` within its
    rollout (per prompt, so advantages differ across languages).
    `languages`: if given, every fact must show exactly these languages (a partial rollout
    would be scored as a smaller joint reward otherwise). `num_generations`: if given, checks
    that each block of G consecutive completions is one (fact, language).
    """
    if kind not in ("joint", "agreement"):
        raise ConfigError(f"kind={kind!r} is not known. Fix: use 'joint' or 'agreement'")
    expected = None if languages is None else tuple(languages)

    def reward(prompts=None, completions=None, completion_ids=None, **columns) -> list[float]:
        for column in ("fact_id", "language", "options", "answer_index"):
            if column not in columns:
                raise DataError(
                    f"{kind} reward: the dataset has no column {column!r} (columns seen: "
                    f"{', '.join(sorted(columns))}). Fix: one row per (fact, language) with "
                    "fact_id, language, options, answer_index"
                )
        fact_ids, codes = list(columns["fact_id"]), list(columns["language"])
        if len(completions) != len(fact_ids):
            raise DataError(f"{len(completions)} completions for {len(fact_ids)} dataset rows")
        texts = [_completion_text(c) for c in completions]
        option_ids = columns.get("option_ids") or [None] * len(texts)
        keys = [
            AnswerKey.of(o, a, i)
            for o, a, i in zip(columns["options"], columns["answer_index"], option_ids, strict=True)
        ]
        layout = rollout_layout(fact_ids, codes, num_generations=num_generations)
        rewards = [0.0] * len(texts)
        n_correct = n_unparseable = n_all_correct = n_rollouts = 0
        for fact_id, rollouts in layout.items():
            if expected is not None and set(rollouts[0]) != set(expected):
                raise DataError(
                    f"fact {fact_id!r} shows languages {sorted(rollouts[0])} in this batch, "
                    f"expected {sorted(expected)}. Fix: keep all language rows of a fact together"
                )
            for rollout in rollouts:
                answers = {lang: texts[p] for lang, p in rollout.items()}
                fact_keys = {lang: keys[p] for lang, p in rollout.items()}
                if kind == "joint":
                    result = rollout_reward(answers, fact_keys, config)
                    for position in rollout.values():
                        rewards[position] = result.total
                    n_correct += sum(o == "correct" for o in result.outcomes.values())
                    n_unparseable += sum(o == "unparseable" for o in result.outcomes.values())
                    n_all_correct += result.all_correct
                else:
                    for lang, value in agreement_rewards(answers, fact_keys, config).items():
                        rewards[rollout[lang]] = value
                n_rollouts += 1
        log_metric = columns.get("log_metric")
        if kind == "joint" and callable(log_metric) and texts:
            log_metric("polyfact/correct_rate", n_correct / len(texts))
            log_metric("polyfact/unparseable_rate", n_unparseable / len(texts))
            log_metric("polyfact/all_correct_rate", n_all_correct / max(n_rollouts, 1))
        return rewards

    reward.__name__ = f"polyfact_{kind}_reward"  # TRL logs rewards under the function's name
    return reward
