"""Residual reading and cross-lingual alignment against expectations known in advance.

- a model whose two "languages" are the same tokens shifted by an offset, with the shifted
  rows of the (tied) embedding copied from the originals, sees identical vectors in both:
  retrieval is 1 and CKA is 1 at every layer; a language of unrelated tokens is not;
- retrieval on random unrelated vectors is at chance (1/n); CKA is 1 for a matrix and
  itself, a rotated or rescaled copy, and matches the textbook tr(KHLH) form; the bootstrap's
  weighted CKA equals CKA recomputed on the resampled rows;
- a prompt's vectors do not depend on the prompts it is batched with (left or right padding),
  residual 0 is the embeddings and the last is the decoder output before the final norm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from interp.errors import ConfigError, DataError  # noqa: E402
from interp.representations import (  # noqa: E402
    ALIGNMENT_COLUMNS,
    COMPARE_COLUMNS,
    FactVectors,
    align,
    bootstrap_weights,
    cka_replicates,
    compare_alignment,
    final_norm,
    iter_residuals,
    linear_cka,
    measure_alignment,
    residuals,
    retrieval_hits,
    unembed,
    vectors_from_inputs,
)

VOCAB, OFFSET = 256, 128


def tiny_model(family: str = "qwen2", seed: int = 0, **overrides):
    from transformers import AutoModelForCausalLM

    from interp.models.tiny import tiny_config

    config = tiny_config(family, VOCAB, num_layers=3, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        with torch.no_grad():  # norms away from 1, so a misplaced norm shows
            for module in model.modules():
                if "Norm" in type(module).__name__:
                    module.weight.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def shifted():
    """Tied embeddings; row t + OFFSET is a copy of row t for every t < OFFSET."""
    model = tiny_model(tie_word_embeddings=True)
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        embed[OFFSET : 2 * OFFSET] = embed[:OFFSET]
    return model


def distinct_sequences(n: int, seed: int, low: int = 1, high: int = OFFSET):
    """n sequences of 3-9 tokens in [low, high) whose last tokens are all different (so even the
    embeddings, read at the last token, tell the facts apart)."""
    rng = np.random.default_rng(seed)
    lasts = rng.choice(np.arange(low, high), size=n, replace=False)
    return [
        [*rng.integers(low, high, size=int(rng.integers(2, 9))).tolist(), int(last)]
        for last in lasts
    ]


# ------------------------------------------------------------------ shifted-token languages
@pytest.mark.parametrize("position", ["last", "mean"])
def test_shifted_language_is_perfectly_aligned_at_every_layer(shifted, position):
    a = distinct_sequences(40, seed=1)
    b = [[t + OFFSET for t in row] for row in a]
    ids = [f"f{i}" for i in range(len(a))]
    vectors = vectors_from_inputs(
        shifted, None, {"en": a, "xx": b}, ids, position=position, batch_size=6
    )
    assert vectors.layers == (0, 1, 2, 3)
    np.testing.assert_allclose(vectors.vectors["xx"], vectors.vectors["en"], atol=1e-6)
    result = align(vectors, n_boot=50)
    table = result.table
    assert list(table.columns) == ALIGNMENT_COLUMNS
    assert len(table) == 4 * 2
    retrieval = table[table.metric == "retrieval"]
    cka = table[table.metric == "cka"]
    np.testing.assert_allclose(retrieval["value"], 1.0)
    np.testing.assert_allclose(retrieval[["lo", "hi"]].to_numpy(), 1.0)
    np.testing.assert_allclose(cka["value"], 1.0, atol=1e-6)
    np.testing.assert_allclose(cka[["lo", "hi"]].to_numpy(), 1.0, atol=1e-6)
    assert (table["n"] == 40).all()
    np.testing.assert_allclose(retrieval["chance"], 1 / 40)
    assert (cka["chance"] < 0.95).all()  # unpaired rows are far from CKA 1
    assert set(result.hits["hit"]) == {1.0}


def test_unrelated_language_is_not_aligned(shifted):
    """The same measure moves: tokens unrelated to English's give retrieval near chance."""
    a = distinct_sequences(40, seed=1)
    other = distinct_sequences(40, seed=2, low=OFFSET, high=VOCAB)  # unrelated token rows
    vectors = vectors_from_inputs(shifted, None, {"en": a, "xx": other}, list(range(40)))
    table = align(vectors, n_boot=50).table
    retrieval = table[table.metric == "retrieval"]
    assert (retrieval["value"] <= 0.2).all()
    assert (table[table.metric == "cka"]["value"] < 0.95).all()


def test_ties_share_the_credit():
    """Two candidates equally near: each query gets 1/2 (random tie-breaking in expectation)."""
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(retrieval_hits(x, x, centre=False), [0.5, 0.5, 1.0])


# ------------------------------------------------------------------ random vectors, CKA
def test_retrieval_of_random_vectors_is_at_chance():
    rng = np.random.default_rng(0)
    n, trials = 50, 40
    rates = [
        retrieval_hits(rng.normal(size=(n, 32)), rng.normal(size=(n, 32))).mean()
        for _ in range(trials)
    ]
    # mean of 2000 Bernoulli(1/50) hits: 0.02 with sd 0.003
    assert abs(np.mean(rates) - 1 / n) < 0.01
    vectors = FactVectors(
        tuple(map(str, range(n))),
        {"en": rng.normal(size=(n, 2, 16)), "de": rng.normal(size=(n, 2, 16))},
        (0, 1),
    )
    table = align(vectors, n_boot=200).table
    retrieval = table[table.metric == "retrieval"]
    assert (retrieval["value"] < 0.15).all()
    assert (retrieval["lo"] <= 1 / n).all()
    cka = table[table.metric == "cka"]
    # unrelated matrices sit at CKA's chance level (shuffled pairing), which is well above 0
    assert (cka["chance"] > 0.2).all()
    np.testing.assert_allclose(cka["value"], cka["chance"], atol=0.1)


def _textbook_cka(x, y):
    """tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)) with the centring matrix H written out."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    k, ell = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h)

    return hsic(k, ell) / np.sqrt(hsic(k, k) * hsic(ell, ell))


def test_cka_invariances_and_textbook_form():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 24))
    rotation, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ rotation) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x, 3.7 * x @ rotation + 5.0) == pytest.approx(1.0, abs=1e-10)
    y = x[:, :8] @ rng.normal(size=(8, 12)) + rng.normal(size=(40, 12))  # other width
    assert linear_cka(x, y) == pytest.approx(_textbook_cka(x, y), rel=1e-10)
    independent = linear_cka(x, rng.normal(size=(40, 24)))
    assert independent < linear_cka(x, y) < 1.0


def test_bootstrap_cka_equals_cka_of_the_resampled_rows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 20))
    y = x @ rng.normal(size=(20, 10)) + rng.normal(size=(30, 10))
    draws = rng.integers(0, 30, size=(6, 30))
    weights = np.stack([np.bincount(d, minlength=30) for d in draws]).astype(float)
    expected = [linear_cka(x[d], y[d]) for d in draws]
    np.testing.assert_allclose(cka_replicates(x, y, weights), expected, rtol=1e-5)
    np.testing.assert_allclose(
        cka_replicates(x, y, np.ones((1, 30))), [linear_cka(x, y)], rtol=1e-5
    )


def test_resamples_depend_on_the_seed_only():
    a, b = bootstrap_weights(20, 5, seed=3), bootstrap_weights(20, 5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert (a.sum(axis=1) == 20).all()
    assert not np.array_equal(a, bootstrap_weights(20, 5, seed=4))


# ------------------------------------------------------------------ groups and comparison
def _half_aligned(seed=0, n=40, d=128):
    """English random; "de" equal to English on the first half of the facts, random after."""
    rng = np.random.default_rng(seed)
    en = rng.normal(size=(n, 1, d))
    de = en.copy()
    de[n // 2 :] = rng.normal(size=(n - n // 2, 1, d))
    return FactVectors(tuple(f"f{i}" for i in range(n)), {"en": en, "de": de}, (0,))


def test_by_splits_retrieval_by_group():
    vectors = _half_aligned()
    n = len(vectors.fact_ids)
    by = pd.DataFrame(
        {
            "fact_id": vectors.fact_ids,
            "language": "de",
            "exposure": ["exposed"] * (n // 2) + ["english_only"] * (n - n // 2),
        }
    )
    table = align(vectors, by=by, n_boot=100).table
    retrieval = table[table.metric == "retrieval"].set_index("group")
    assert retrieval.loc["exposed", "value"] == 1.0
    assert retrieval.loc["english_only", "value"] <= 0.15
    assert retrieval.loc["all", "value"] == pytest.approx(
        (retrieval.loc["exposed", "value"] + retrieval.loc["english_only", "value"]) / 2
    )
    assert retrieval.loc["exposed", "n"] == n // 2
    assert set(table[table.metric == "cka"]["group"]) == {"all"}


def test_compare_is_paired_and_detects_a_change():
    base = align(_half_aligned(), n_boot=200)
    same = compare_alignment(base, base)
    assert list(same.columns) == COMPARE_COLUMNS
    np.testing.assert_allclose(same[["delta", "lo", "hi"]].to_numpy(), 0.0, atol=1e-12)
    perfect = _half_aligned()
    perfect.vectors["de"] = perfect.vectors["en"].copy()
    change = compare_alignment(base, align(perfect, n_boot=200)).set_index("metric")
    assert change.loc["retrieval", "delta"] == pytest.approx(0.5, abs=0.1)
    assert change.loc["retrieval", "lo"] > 0
    assert change.loc["cka", "lo"] > 0
    assert change.loc["retrieval", "p_value"] < 0.05
    with pytest.raises(ConfigError, match="paired"):
        compare_alignment(base, align(perfect, n_boot=200, seed=1))


# ------------------------------------------------------------------ residuals and padding
FAMILIES = ["qwen2", "llama", "olmo2"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("position", ["last", "mean"])
def test_vectors_do_not_depend_on_batch_mates(family, padding_side, position):
    model = tiny_model(family, seed=3)
    rng = np.random.default_rng(4)
    short = rng.integers(1, VOCAB, size=4).tolist()
    longer = [rng.integers(1, VOCAB, size=int(k)).tolist() for k in (9, 13, 17)]
    alone = residuals(model, None, [short], position=position, padding_side=padding_side)
    batched = residuals(
        model,
        None,
        [longer[0], short, *longer[1:]],
        position=position,
        padding_side=padding_side,
        batch_size=4,
    )
    assert batched.shape == (4, 4, 64)
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-5, rtol=1e-5)
    other_side = residuals(
        model,
        None,
        [short, *longer],
        position=position,
        batch_size=4,
        padding_side="left" if padding_side == "right" else "right",
    )
    np.testing.assert_allclose(other_side[0], alone[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_residuals_are_the_embeddings_and_the_layer_outputs(family):
    """Index 0 = embeddings; 1..L-1 = HF's hidden_states; L normed = HF's last_hidden_state
    (HF's own hidden_states[-1] is already normed, which is why hooks are used)."""
    model = tiny_model(family, seed=5)
    ids = [[5, 17, 99, 3, 250, 42]]
    mine = residuals(model, None, ids, position="last")[0]
    with torch.no_grad():
        out = model.model(torch.tensor(ids), output_hidden_states=True)
        embeddings = model.get_input_embeddings()(torch.tensor(ids))[0, -1]
    np.testing.assert_allclose(mine[0], embeddings.numpy(), atol=1e-6)
    for layer in range(1, 3):
        np.testing.assert_allclose(mine[layer], out.hidden_states[layer][0, -1], atol=1e-5)
    with torch.no_grad():
        normed = final_norm(model)(torch.tensor(mine[3]))
    np.testing.assert_allclose(normed, out.last_hidden_state[0, -1], atol=1e-5)
    assert unembed(model) is model.lm_head


def test_layer_subset_and_stream_order():
    model = tiny_model(seed=6)
    rows = [list(range(1, 4 + k)) for k in range(7)][::-1]
    full = residuals(model, None, rows, position="mean", batch_size=2, sort_window=2)
    part = residuals(model, None, rows, position="mean", layers=[2, 0], batch_size=3)
    np.testing.assert_allclose(part, full[:, [0, 2]], atol=1e-6)
    seen = []
    for batch in iter_residuals(model, None, iter(rows), batch_size=2, sort_window=3):
        assert batch.vectors.shape[1:] == (4, 64)
        seen.extend(batch.index.tolist())
    assert sorted(seen) == list(range(7))
    with pytest.raises(ConfigError, match="residual indices"):
        residuals(model, None, rows, layers=[4])
    with pytest.raises(DataError, match="outside"):
        residuals(model, None, [[VOCAB + 3]])


# ------------------------------------------------------------------ on facts, end to end
@pytest.fixture(scope="module")
def organism(tmp_path_factory):
    from interp.facts import WorldConfig, build_world
    from interp.models.loading import load_model
    from interp.models.tiny import build_tiny

    facts, _ = build_world(
        WorldConfig(languages=("en", "de", "ja"), relations=("currency", "continent"))
    )
    texts = [item.statement for item in facts.items()] + [item.question for item in facts.items()]
    model_dir = build_tiny(tmp_path_factory.mktemp("align"), "qwen2", texts=texts, vocab_size=500)
    model, tokenizer = load_model(model_dir, device="cpu")
    return model, tokenizer, facts.split("test")


def test_measure_alignment_on_facts(organism):
    from interp.evaluate.exposure import item_exposure

    model, tokenizer, facts = organism
    read = [
        (f.fact_id, code, code == "en" or k % 2 == 0)
        for k, f in enumerate(facts)
        for code in facts.languages
    ]
    exposure = item_exposure(pd.DataFrame(read, columns=["fact_id", "language", "exposed"]), facts)
    result = measure_alignment(
        model, tokenizer, facts, ["en", "de", "ja"], by=exposure, n_boot=100, batch_size=8
    )
    table = result.table
    assert set(table["language"]) == {"de", "ja"}
    assert set(table["layer"]) == {0, 1, 2}
    assert {"all", "exposed"} <= set(table["group"])
    overall = table[table.group == "all"]
    assert (overall["n"] == len(facts)).all()
    finite = overall.dropna(subset=["lo"])
    assert ((finite["lo"] <= finite["hi"]) & (finite["value"].between(0, 1))).all()
    assert len(result.hits) == 2 * 3 * len(facts)
    # questions at the last token, the same through the vector route
    questions = measure_alignment(
        model, tokenizer, facts, ["en", "de"], text="question", n_boot=0
    ).table
    assert questions["lo"].isna().all()
    assert len(questions) == 3 * 2
