"""Steering with language neurons and the fallback curve, on tiny Qwen2 models with planted
neurons; the Unicode script classifier on hand-written strings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from interp.errors import ConfigError, DataError  # noqa: E402
from interp.evaluate.scoring import score_options  # noqa: E402
from interp.facts import WorldConfig, build_world  # noqa: E402
from interp.facts.schema import FactSet  # noqa: E402
from interp.representations.steering import (  # noqa: E402
    FALLBACK_COLUMNS,
    STEERING_COLUMNS,
    add_to_neurons,
    char_script,
    fallback_curve,
    greedy_generate,
    in_script,
    language_vector,
    ordered_units,
    script_counts,
    steering_sweep,
    text_script,
    token_scripts,
)
from interp.specialization.lape import NeuronSelection  # noqa: E402

LANGUAGES = ("en", "de", "ru")
HIDDEN, INTER = 32, 64
CYR_DIM = 5  # the residual dimension only the planted neurons write and only Cyrillic reads
ON_DIM = 6  # a constant residual dimension that keeps the fallback model's neurons firing
LAYER = 1
PLANTED = (7, 8, 9, 10)  # neurons of LAYER that write Cyrillic


# ---------------------------------------------------------------------------------------------
# the script classifier


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Paris", "Latn"),
        ("Straße Köln", "Latn"),
        ("Tiếng Việt", "Latn"),  # Latin Extended Additional
        ("ＡＢＣ", "Latn"),  # fullwidth
        ("Москва", "Cyrl"),
        ("Українська", "Cyrl"),
        ("القاهرة", "Arab"),
        ("فارسی", "Arab"),
        ("ঢাকা", "Beng"),
        ("বাংলা", "Beng"),  # with vowel signs (marks)
        ("東京", "Hani"),
        ("中文", "Hani"),
        ("ひらがな", "Hira"),
        ("カタカナー", "Kana"),  # the prolonged sound mark counts as kana
        ("한국어", "Hang"),
        ("Ελληνικά", "Grek"),
        ("עברית", "Hebr"),
        ("123 !?", None),
        ("", None),
        ("。、「」", None),  # CJK punctuation has no script
    ],
)
def test_text_script(text, script):
    assert text_script(text) == script


def test_mixed_strings_are_counted_per_character():
    assert script_counts("Москва Moscow 2024!") == {"Cyrl": 6, "Latn": 6}
    assert text_script("Москва Moscow") == "Cyrl"  # a tie: the script met first
    assert text_script("Tokyo 東京") == "Latn"
    assert script_counts("日本の首都は東京です。") == {"Hani": 6, "Hira": 4}
    assert script_counts("ソウル서울") == {"Kana": 3, "Hang": 2}
    assert char_script("1") is None and char_script(" ") is None and char_script("×") is None
    assert char_script("\u0301") is None  # a combining accent alone: no script here
    assert char_script("১") == "Beng"  # a Bengali digit is Bengali


def test_language_scripts_cover_their_writing_systems():
    assert in_script("Hani", "Jpan") and in_script("Hira", "Jpan") and in_script("Kana", "Jpan")
    assert in_script("Hani", "Hans") and not in_script("Hira", "Hans")
    assert in_script("Hang", "Kore") and in_script("Hani", "Kore")
    assert in_script("Cyrl", "Cyrl") and not in_script("Latn", "Cyrl")
    assert not in_script(None, "Latn")


def test_token_scripts_join_partial_characters():
    from interp.models.tiny import train_tokenizer

    # so few merges that Han and Cyrillic letters are split into byte tokens
    tokenizer = train_tokenizer(["Paris Москва", "Paris Москва"], vocab_size=270)
    chunks = {"Paris": "Latn", " 東京": "Hani", " Москва": "Cyrl"}
    ids, expected = [], []
    for chunk, script in chunks.items():
        chunk_ids = tokenizer(chunk, add_special_tokens=False)["input_ids"]
        ids += chunk_ids
        # a token that is only a space has no script; every other token of the chunk holds
        # (part of) one of its letters
        expected += [None if tokenizer.decode([i]).strip() == "" else script for i in chunk_ids]
    assert ids == tokenizer("".join(chunks), add_special_tokens=False)["input_ids"]
    pieces = [tokenizer.decode([i]) for i in ids]
    assert sum("\ufffd" in p for p in pieces) >= 6  # partial characters are there to join
    assert token_scripts(tokenizer, ids) == expected
    assert token_scripts(tokenizer, []) == []


# ---------------------------------------------------------------------------------------------
# models with planted neurons


@pytest.fixture(scope="module")
def facts():
    world, _ = build_world(WorldConfig(languages=LANGUAGES, relations=("currency",)))
    return FactSet(world.facts[:8], LANGUAGES)


def _cyrillic_tokens(tokenizer) -> list[int]:
    out = []
    for v in range(len(tokenizer)):
        piece = tokenizer.decode([v])
        if "\ufffd" not in piece and text_script(piece) == "Cyrl":
            out.append(v)
    return out


def _planted_model(model_dir, *, firing: bool, writes=(0.01, 0.01, 0.01, 0.01)):
    """The tiny model with residual dimension CYR_DIM read only by the unembedding rows of
    Cyrillic tokens (their shared unembedding direction) and written only by the PLANTED
    neurons, whose down_proj column is `writes[k]` times that direction. firing=False: the
    neurons are silent (gate and up rows 0), so only steering moves them; firing=True: they
    fire on every token, fed by the constant dimension ON_DIM."""
    from interp.models.loading import load_model

    model, tokenizer = load_model(model_dir, device="cpu")
    cyrillic = _cyrillic_tokens(tokenizer)
    assert len(cyrillic) >= 5
    with torch.no_grad():
        # varied generations, not one token everywhere (a fixed seed: the same model whatever
        # ran before)
        model.lm_head.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))
        embed = model.model.embed_tokens.weight
        embed[:, [CYR_DIM, ON_DIM]] = 0.0
        if firing:
            embed[:, ON_DIM] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[[CYR_DIM, ON_DIM]] = 0.0
            layer.mlp.down_proj.weight[[CYR_DIM, ON_DIM]] = 0.0
        model.lm_head.weight[cyrillic] *= 0.1  # unsteered, Cyrillic tokens are rarely chosen
        model.lm_head.weight[:, [CYR_DIM, ON_DIM]] = 0.0
        model.lm_head.weight[cyrillic, CYR_DIM] = 3.0
        mlp = model.model.layers[LAYER].mlp
        for neuron, write in zip(PLANTED, writes, strict=True):
            mlp.gate_proj.weight[neuron] = 0.0
            mlp.up_proj.weight[neuron] = 0.0
            if firing:
                mlp.gate_proj.weight[neuron, ON_DIM] = 4.0
                mlp.up_proj.weight[neuron, ON_DIM] = 4.0
            mlp.down_proj.weight[:, neuron] = 0.0
            mlp.down_proj.weight[CYR_DIM, neuron] = write
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, facts):
    from interp.models.tiny import build_tiny

    texts = [it.question + " " + " ".join(it.options) for it in facts.items()]
    return build_tiny(
        tmp_path_factory.mktemp("steering"), "qwen2", texts=texts, vocab_size=400,
        hidden_size=HIDDEN, intermediate_size=INTER, num_layers=2,
    )  # fmt: skip


@pytest.fixture(scope="module")
def silent(model_dir):
    return _planted_model(model_dir, firing=False)


def _means(value: float = 1.0) -> np.ndarray:
    means = np.zeros((len(LANGUAGES), 2, INTER))
    means[LANGUAGES.index("ru"), LAYER, PLANTED[0]] = value
    return means


def test_strength_zero_changes_nothing(silent, facts):
    model, tokenizer = silent
    rng = np.random.default_rng(0)
    means = rng.normal(size=(len(LANGUAGES), 2, INTER))
    units = {"ru": {(0, 3), (0, 40), (1, 7), (1, 63)}}
    vector = language_vector(units, means, "ru", mean_languages=LANGUAGES)
    assert vector.n_units == 4
    ids = torch.tensor([tokenizer("Question: Was ist die Währung?\nAnswer:")["input_ids"]])
    prompts = [f"Question: {it.question}\nAnswer:" for it in facts.items(["de"])]
    with torch.no_grad():
        plain_logits = model(ids).logits
    plain_gen = greedy_generate(model, tokenizer, prompts, max_new_tokens=4, batch_size=3)
    plain_scores = score_options(model, tokenizer, facts.items(["de"]), progress=False)
    with add_to_neurons(model, vector, 0.0):
        with torch.no_grad():
            zero_logits = model(ids).logits
        zero_gen = greedy_generate(model, tokenizer, prompts, max_new_tokens=4, batch_size=3)
        zero_scores = score_options(model, tokenizer, facts.items(["de"]), progress=False)
    assert torch.equal(plain_logits, zero_logits)
    assert zero_gen == plain_gen
    assert list(zero_scores["scores"]) == list(plain_scores["scores"])
    # a non-zero strength does change them, and leaving the block restores the model
    with add_to_neurons(model, vector, 5.0), torch.no_grad():
        assert not torch.allclose(model(ids).logits, plain_logits)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, plain_logits)
    # through the sweep: strength 0 reproduces the unhooked accuracy
    result = steering_sweep(
        model, tokenizer, facts, units, means, mean_languages=LANGUAGES, targets=("ru",),
        languages=("de",), strengths=(0.0,), n_boot=20, progress=False,
    )  # fmt: skip
    correct = [
        int(np.argmax(s)) == a
        for s, a in zip(plain_scores.scores, plain_scores.answer_index, strict=True)
    ]
    assert result.table["accuracy"].iloc[0] == pytest.approx(np.mean(correct))


def test_batched_generation_equals_one_prompt_at_a_time(silent, facts):
    model, tokenizer = silent
    prompts = [f"Question: {it.question}\nAnswer:" for it in facts.items(["en", "ru"])]
    batched = greedy_generate(model, tokenizer, prompts, max_new_tokens=5, batch_size=16)
    alone = [greedy_generate(model, tokenizer, [p], max_new_tokens=5)[0] for p in prompts]
    assert batched == alone
    assert len({tuple(g) for g in batched}) > 1  # the prompts do lead to different answers
    # the same tokens as transformers' own greedy search
    for prompt, ours in list(zip(prompts, batched, strict=True))[:3]:
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        theirs = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0)
        theirs = theirs[0, ids.shape[1] :].tolist()
        eos = tokenizer.eos_token_id
        assert ours == (theirs[: theirs.index(eos)] if eos in theirs else theirs)


def test_steering_a_planted_script_neuron_raises_that_scripts_share(silent, facts):
    model, tokenizer = silent
    strengths = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    result = steering_sweep(
        model, tokenizer, facts, {"ru": {(LAYER, PLANTED[0])}}, _means(), mean_languages=LANGUAGES,
        targets=("ru",), languages=("en", "de"), strengths=strengths, n_boot=100, progress=False,
    )  # fmt: skip
    table = result.table
    assert list(table.columns) == STEERING_COLUMNS
    assert len(table) == 2 * len(strengths) and (table["n"] == len(facts)).all()
    for lang in ("en", "de"):
        curve = table[table.language == lang].sort_values("strength")["script_share"].to_numpy()
        assert np.all(np.diff(curve) >= 0), (lang, curve)  # monotone in strength
        assert curve[0] < 0.3 and curve[-1] == 1.0, (lang, curve)
    finite = table.dropna(subset=["script_share_lo"])
    assert (finite.script_share_lo <= finite.script_share + 1e-12).all()
    assert (finite.script_share <= finite.script_share_hi + 1e-12).all()
    gens = result.generations.groupby(["language", "strength"])[["n_in_script", "n_tokens"]].sum()
    for row in table.itertuples():
        counted = gens.loc[(row.language, row.strength)]
        assert counted.n_tokens == row.n_tokens
        assert counted.n_in_script / counted.n_tokens == pytest.approx(row.script_share)
    top = result.generations[result.generations.strength == strengths[-1]]
    assert all(text_script(t) == "Cyrl" for t in top["text"])


def test_language_vector_reads_means_and_refuses_bad_inputs(facts):
    from interp.activations import MeanActivation

    acc = MeanActivation(LANGUAGES, 2, INTER)
    acc.sums[1, 0, 3], acc.tokens[1] = 6.0, 3
    vector = language_vector({"de": {(0, 3), (1, 5)}}, acc, "de")
    assert vector.units == {0: ((3,), (2.0,)), 1: ((5,), (0.0,))}
    mapping = {"de": np.ones((2, INTER))}
    assert language_vector({"de": [(1, 2)]}, mapping, "de").units == {1: ((2,), (1.0,))}
    with pytest.raises(ConfigError, match="mean_languages"):
        language_vector({"de": {(0, 1)}}, np.zeros((3, 2, INTER)), "de")
    with pytest.raises(DataError, match="no neuron set"):
        language_vector({"de": {(0, 1)}}, {**mapping, "ru": np.ones((2, INTER))}, "ru")
    with pytest.raises(DataError, match="no mean activations"):
        language_vector({"ru": {(0, 1)}}, mapping, "ru")
    gate = MeanActivation(LANGUAGES, 2, INTER, site="gate")
    with pytest.raises(ConfigError, match="site"):
        language_vector({"de": {(0, 1)}}, gate, "de")


def test_ordered_units_most_specific_first():
    table = pd.DataFrame(
        {
            "language": ["ru", "ru", "ru", "ru", "de"],
            "layer": [1, 0, 1, 0, 0],
            "neuron": [4, 9, 2, 1, 5],
            "entropy": [0.2, 0.1, 0.2, np.nan, 0.0],
            "p": [0.5, 0.3, 0.9, 0.8, 0.4],
        }
    )
    selection = NeuronSelection(table, ("de", "ru"), 2, INTER, "lape-paper")
    assert ordered_units(selection, "ru") == [(0, 9), (1, 2), (1, 4), (0, 1)]
    assert ordered_units({"ru": [(1, 3), (0, 2)]}, "ru") == [(1, 3), (0, 2)]
    assert ordered_units({"ru": {(1, 3), (0, 2)}}, "ru") == [(0, 2), (1, 3)]


def test_fallback_curve_loses_the_script_as_its_neurons_go(model_dir, facts):
    """The firing planted neurons make every generation Cyrillic; one of them (the most
    specific) writes far more than the rest. Zeroing a growing share most specific first
    loses the script at the first step; with the order reversed, only at the last. Latin
    takes its place."""
    model, tokenizer = _planted_model(model_dir, firing=True, writes=(0.5, 2e-5, 2e-5, 2e-5))

    def selection(entropy):
        table = pd.DataFrame(
            {
                "language": ["ru"] * len(PLANTED),
                "layer": [LAYER] * len(PLANTED),
                "neuron": list(PLANTED),
                "entropy": entropy,
                "p": [0.9] * len(PLANTED),
            }
        )
        return NeuronSelection(table, LANGUAGES, 2, INTER, "lape-paper")

    fractions = (0.0, 0.25, 0.5, 0.75, 1.0)
    result = fallback_curve(
        model, tokenizer, facts, selection([0.1, 0.2, 0.3, 0.4]), languages=("ru",),
        fractions=fractions, random_repeats=1, n_boot=50, progress=False,
    )  # fmt: skip
    out = result.table
    assert list(out.columns) == FALLBACK_COLUMNS
    chosen = out[out.control == "selected"].sort_values("fraction")
    assert list(chosen["n_ablated"]) == [0, 1, 2, 3, 4]
    assert (chosen["n_units"] == 4).all() and (chosen["n"] == len(facts)).all()
    share = chosen["script_share"].to_numpy()
    assert share[0] == 1.0 and share[1] < 0.5, share
    assert np.all(np.diff(share) <= 0), share
    latin = chosen["fallback_share"].to_numpy()
    assert latin[0] == 0.0 and latin[-1] > 0.5, latin
    # fraction 0 is the unablated model: its accuracy is the plain scoring accuracy
    scored = score_options(model, tokenizer, facts.items(["ru"]), progress=False)
    correct = [
        int(np.argmax(s)) == a for s, a in zip(scored.scores, scored.answer_index, strict=True)
    ]
    assert chosen["accuracy"].iloc[0] == pytest.approx(np.mean(correct))
    # the random control zeroes as many neurons of that layer, not the strong planted one
    rand = out[out.control == "random"].sort_values("fraction")
    assert list(rand["n_ablated"]) == [0, 1, 2, 3, 4]
    assert rand["script_share"].iloc[-1] > share[-1]
    # the order is the selection's specificity order: reversed, the strong neuron goes last
    reversed_order = fallback_curve(
        model, tokenizer, facts, selection([0.4, 0.3, 0.2, 0.1]), languages=("ru",),
        fractions=fractions, n_boot=0, progress=False,
    )  # fmt: skip
    late = reversed_order.table.sort_values("fraction")["script_share"].to_numpy()
    assert np.all(late[:4] == 1.0) and late[4] < 0.5, late
    saved = result.save(model_dir.parent / "fallback")
    assert (saved / "table.csv").exists() and (saved / "generations.csv").exists()
    with pytest.raises(ConfigError, match="fraction"):
        fallback_curve(model, tokenizer, facts, selection([0.1] * 4), fractions=(1.5,))
