"""Answer normalisation, the paper's GRPO reward, its shared advantage and the TRL layout."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest

from interp.errors import DataError
from interp.languages import TRAINED
from interp.text import match_option, normalize_answer
from interp.train import rewards as R

# ------------------------------------------------------------------ normalisation and matching


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＰＡＲＩＳ", "paris"),  # NFKC: full-width letters
        ("Straße", "strasse"),  # casefold: ß -> ss
        ("東京。", "東京"),  # trailing ideographic full stop
        ("القاهرة؟", "القاهرة"),  # trailing Arabic question mark
        ("«Москва»", "москва"),  # guillemets
        ("  New \t\n York  ", "new york"),  # surrounding and internal whitespace
        ("「北京」、", "北京"),  # CJK brackets and comma
        ("\u200bLima\ufeff", "lima"),  # zero-width space and BOM at the edges
        ("Washington, D.C.", "washington, d.c"),  # internal punctuation kept
        ("?!.", ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_match_option():
    options = ["Berlin", "Paris", "Straße", "東京"]
    assert match_option("paris", options) == 1
    assert match_option("  PARIS!!", options) == 1
    assert match_option("STRASSE", options) == 2
    assert match_option("東京。", options) == 3
    assert match_option("Paris\nQuestion: what is the capital of Spain?", options) == 1
    assert match_option("Paris\nBerlin", options, use_first_line=False) is None
    assert match_option("Paris, the capital", options) is None  # a longer answer names nothing
    assert match_option("Par", options) is None
    assert match_option("", options) is None
    assert match_option("...", options) is None


# ------------------------------------------------------------------ the paper's reward

CITIES = {
    lang: (f"Berlin-{lang}", f"Paris-{lang}", f"Rome-{lang}", f"Madrid-{lang}") for lang in TRAINED
}


def keys_for(languages=TRAINED, answer_index=1):
    return {
        lang: R.AnswerKey.of(CITIES[lang], answer_index, ("Q64", "Q90", "Q220", "Q2807"))
        for lang in languages
    }


def correct_answers(languages=TRAINED):
    return {lang: CITIES[lang][1] for lang in languages}


@pytest.mark.parametrize("bonus", [0.0, 1.0, 3.0])
def test_all_correct_earns_twelve_plus_bonus(bonus):
    result = R.rollout_reward(
        correct_answers(), keys_for(), R.RewardConfig(all_correct_bonus=bonus)
    )
    assert len(TRAINED) == 12
    assert result.total == 12 + bonus
    assert result.all_correct


def test_one_language_off():
    keys = keys_for()
    unparseable = correct_answers() | {"sw": "I do not know"}
    result = R.rollout_reward(unparseable, keys)
    assert result.outcomes["sw"] == "unparseable"
    assert result.language_rewards["sw"] == -0.5
    assert result.total == 11 - 0.5  # and no bonus

    assert R.rollout_reward(correct_answers() | {"ja": "   "}, keys).total == 11  # empty: 0
    assert R.rollout_reward(correct_answers() | {"ja": None}, keys).total == 11
    wrong = R.rollout_reward(correct_answers() | {"bn": "Rome-bn。"}, keys)  # another option: 0
    assert wrong.outcomes["bn"] == "wrong" and wrong.total == 11
    # punctuation only is non-empty and names no option, as in the paper's code
    assert R.rollout_reward(correct_answers() | {"zh": "..."}, keys).total == 10.5


def test_rollout_must_cover_every_language():
    answers = correct_answers()
    del answers["ar"]
    with pytest.raises(DataError, match="ar"):
        R.rollout_reward(answers, keys_for())


def test_standardize_matches_hand_computation():
    rewards = [13.0, 11.0, 10.5, 11.0]
    mean = sum(rewards) / 4
    sample = statistics.stdev(rewards)  # divisor n - 1, as torch.std / TRL
    population = statistics.pstdev(rewards)
    got = R.standardize(rewards)
    assert got == pytest.approx([(r - mean) / (sample + 1e-4) for r in rewards])
    got = R.standardize(rewards, std="population", eps=1e-6)
    assert got == pytest.approx([(r - mean) / (population + 1e-6) for r in rewards])
    assert R.standardize([5.0]) == pytest.approx([0.0])
    assert R.standardize([2.0, 2.0, 2.0]) == pytest.approx([0.0, 0.0, 0.0])


def test_score_rollouts_gives_every_language_of_a_rollout_the_same_advantage():
    languages = ("en", "de", "sw")
    items = pd.DataFrame(
        [
            {"fact_id": "f1", "language": lang, "options": CITIES[lang], "answer_index": 1}
            for lang in languages
        ]
    )
    plan = {  # rollout -> answers; joint rewards worked out by hand
        0: {"en": "Paris-en", "de": "Paris-de", "sw": "Paris-sw"},  # 3 + bonus 1 = 4
        1: {"en": "Paris-en", "de": "Rome-de", "sw": "??"},  # 1 + 0 - 0.5 = 0.5
        2: {"en": "", "de": "Paris-de", "sw": "Madrid-sw"},  # 0 + 1 + 0 = 1
    }
    rollouts = pd.DataFrame(
        [
            {"fact_id": "f1", "rollout": j, "language": lang, "output": text}
            for j, answers in plan.items()
            for lang, text in answers.items()
        ]
    )
    scored = R.score_rollouts(rollouts, items)
    totals = [4.0, 0.5, 1.0]
    mean, sd = sum(totals) / 3, statistics.stdev(totals)
    for j, total in enumerate(totals):
        rows = scored[scored.rollout == j]
        assert (rows.reward == total).all()
        assert rows.advantage.tolist() == pytest.approx([(total - mean) / (sd + 1e-4)] * 3)
    assert scored.set_index(["rollout", "language"]).loc[(1, "sw"), "outcome"] == "unparseable"


# ------------------------------------------------------------------ agreement variant


def test_agreement_rewards():
    languages = ("en", "de", "ru", "ja", "ar")
    keys = keys_for(languages)
    # three languages name Paris (entity Q90), one Rome, one names nothing
    answers = {"en": "Paris-en", "de": "Paris-de", "ru": "Paris-ru", "ja": "Rome-ja", "ar": "?"}
    assert R.agreement_rewards(answers, keys) == {
        "en": 1.0,
        "de": 1.0,
        "ru": 1.0,
        "ja": 0.0,
        "ar": -0.5,
    }
    # agreement on a WRONG entity is rewarded too: the variant ignores the gold answer
    wrong_majority = {"en": "Rome-en", "de": "Rome-de", "ru": "Paris-ru", "ja": "", "ar": "Rome-ar"}
    assert R.agreement_rewards(wrong_majority, keys) == {
        "en": 1.0,
        "de": 1.0,
        "ru": 0.0,
        "ja": 0.0,
        "ar": 1.0,
    }
    tie = {"en": "Paris-en", "de": "Paris-de", "ru": "Rome-ru", "ja": "Rome-ja", "ar": ""}
    assert set(R.agreement_rewards(tie, keys).values()) == {0.0}


# ------------------------------------------------------------------ TRL layout contract


def trl_batch(plan, languages, num_generations):
    """Lay out a generation batch the way TRL 1.16 does, with its own RepeatSampler."""
    from trl.trainer.utils import RepeatSampler

    rows = [
        {
            "fact_id": fact,
            "language": lang,
            "options": list(CITIES[lang]),
            "answer_index": 1,
            "option_ids": ["Q64", "Q90", "Q220", "Q2807"],
        }
        for fact in plan
        for lang in languages
    ]
    sampler = RepeatSampler(
        rows, mini_repeat_count=num_generations, batch_size=len(rows), shuffle=False
    )
    inputs = [rows[i] for i in sampler]
    seen: dict[tuple, int] = {}
    completions = []
    for example in inputs:
        key = (example["fact_id"], example["language"])
        j = seen.get(key, 0)
        seen[key] = j + 1
        completions.append(plan[example["fact_id"]][j][example["language"]])
    columns = {k: [x[k] for x in inputs] for k in rows[0]}
    return inputs, completions, columns


def trl_advantages(rewards, num_generations):
    """TRL 1.16's advantage (scale_rewards='group'), with its own nanstd."""
    import torch
    from trl.trainer.utils import nanstd

    rewards = torch.tensor(rewards, dtype=torch.float32)
    grouped = rewards.view(-1, num_generations)
    mean = grouped.mean(dim=1).repeat_interleave(num_generations)
    std = nanstd(grouped, dim=1).repeat_interleave(num_generations)
    return ((rewards - mean) / (std + 1e-4)).tolist()


def test_trl_reward_gives_a_rollout_one_advantage_across_languages():
    languages = ("en", "de", "sw")
    G = 4
    ok = {lang: CITIES[lang][1] for lang in languages}
    plan = {
        "f1": [
            ok,  # 3 + 1 = 4
            ok | {"sw": "no idea"},  # 2 - 0.5 = 1.5
            ok | {"de": "Rome-de", "sw": ""},  # 1
            {"en": "Madrid-en", "de": "Rome-de", "sw": "Rome-sw"},  # 0
        ],
        "f2": [ok | {"en": "x"}, ok, ok, ok | {"de": "Berlin-de"}],  # 1.5, 4, 4, 2
    }
    hand = {"f1": [4.0, 1.5, 1.0, 0.0], "f2": [1.5, 4.0, 4.0, 2.0]}
    inputs, completions, columns = trl_batch(plan, languages, G)
    reward = R.make_trl_reward(languages=languages, num_generations=G)
    assert reward.__name__ == "polyfact_joint_reward"
    logged = {}
    values = reward(
        prompts=["q"] * len(completions),
        completions=completions,
        completion_ids=[[0]] * len(completions),
        log_metric=logged.__setitem__,
        **columns,
    )
    advantages = trl_advantages(values, G)
    for position, example in enumerate(inputs):
        fact = example["fact_id"]
        j = position % G  # the j-th copy of this prompt = rollout j
        totals = hand[fact]
        mean, sd = sum(totals) / G, statistics.stdev(totals)
        assert values[position] == totals[j]
        assert advantages[position] == pytest.approx((totals[j] - mean) / (sd + 1e-4), rel=1e-5)
    # the same advantage for rollout j of a fact in every language
    for fact in plan:
        for j in range(G):
            shared = {
                round(advantages[p], 5)
                for p, x in enumerate(inputs)
                if x["fact_id"] == fact and p % G == j
            }
            assert len(shared) == 1
    assert logged["polyfact/all_correct_rate"] == pytest.approx(3 / 8)


def test_trl_agreement_reward_is_per_language():
    languages = ("en", "de", "sw")
    plan = {
        "f1": [
            {"en": "Rome-en", "de": "Rome-de", "sw": "Paris-sw"},
            {"en": "", "de": "?", "sw": "Paris-sw"},
        ]
    }
    _, completions, columns = trl_batch(plan, languages, 2)
    reward = R.make_trl_reward("agreement", num_generations=2)
    values = reward(prompts=None, completions=completions, **columns)
    # layout: en c0 c1, de c0 c1, sw c0 c1
    assert values == [1.0, 0.0, 1.0, -0.5, 0.0, 0.0]


def test_trl_reward_refuses_a_broken_layout():
    languages = ("en", "de")
    ok = {lang: CITIES[lang][1] for lang in languages}
    _, completions, columns = trl_batch({"f1": [ok, ok]}, languages, 2)
    reward = R.make_trl_reward(num_generations=2)
    # German lost one completion: the languages hold different numbers of completions
    cut = {k: v[:-1] for k, v in columns.items()}
    with pytest.raises(DataError, match="different numbers of completions"):
        R.make_trl_reward()(completions=completions[:-1], **cut)
    # rows shuffled one by one: a block of num_generations mixes prompts
    order = [0, 2, 1, 3]
    mixed = {k: [v[i] for i in order] for k, v in columns.items()}
    with pytest.raises(DataError, match="mix prompts"):
        reward(completions=[completions[i] for i in order], **mixed)
    # a fact seen without all of its languages
    only_en = {k: v[:2] for k, v in columns.items()}
    with pytest.raises(DataError, match="expected"):
        R.make_trl_reward(languages=languages)(completions=completions[:2], **only_en)
    with pytest.raises(DataError, match="answer_index"):
        reward(completions=completions, **{k: v for k, v in columns.items() if k != "answer_index"})
