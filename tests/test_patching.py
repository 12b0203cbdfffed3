"""Cross-lingual activation patching on a tiny random Qwen2, against independent expectations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from interp.errors import ConfigError, DataError  # noqa: E402
from interp.evaluate.scoring import PROMPT_TEMPLATE, score_options  # noqa: E402
from interp.facts import WorldConfig, build_world  # noqa: E402
from interp.facts.schema import FactSet  # noqa: E402
from interp.representations.patching import (  # noqa: E402
    PATCHING_COLUMNS,
    PATCHING_METRICS,
    ResidualPatch,
    capture_residual,
    cross_lingual_patching,
    patch_residual,
    summarize_patching,
)

LANGUAGES = ("en", "de", "ru")
N_LAYERS = 3


@pytest.fixture(scope="module")
def facts():
    world, _ = build_world(WorldConfig(languages=LANGUAGES, relations=("currency", "continent")))
    # both relations, so options of several lengths (one and many tokens) are packed together
    picked = [f for f in world.facts if f.relation == "currency"][:6]
    picked += [f for f in world.facts if f.relation == "continent"][:4]
    return FactSet(picked, LANGUAGES)


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory, facts):
    from interp.models.loading import load_model
    from interp.models.tiny import build_tiny

    texts = [
        PROMPT_TEMPLATE.format(question=it.question) + " " + o
        for it in facts.items()
        for o in it.options
    ]
    root = tmp_path_factory.mktemp("patching")
    model_dir = build_tiny(
        root, "qwen2", texts=texts, vocab_size=500, hidden_size=32, intermediate_size=64,
        num_layers=N_LAYERS,
    )  # fmt: skip
    model, tokenizer = load_model(model_dir, device="cpu")
    with torch.no_grad():  # larger logits: option scores far apart, patch effects visible
        generator = torch.Generator().manual_seed(0)
        model.lm_head.weight.normal_(0, 1.0, generator=generator)
        model.model.embed_tokens.weight.normal_(0, 1.0, generator=generator)
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def result(model_and_tokenizer, facts):
    model, tokenizer = model_and_tokenizer
    return cross_lingual_patching(
        model, tokenizer, facts, languages=LANGUAGES, batch_size=4, n_boot=200, progress=False
    )


def _prompt_ids(tokenizer, question: str) -> list[int]:
    return tokenizer(PROMPT_TEMPLATE.format(question=question))["input_ids"]


def test_patching_the_donor_into_itself_changes_nothing(result):
    own = result.per_fact[result.per_fact["language"] == "en"]
    assert len(own) == 10 * N_LAYERS
    assert np.abs(own["delta"].to_numpy()).max() <= 1e-6
    assert (own["patched_correct"] == own["baseline_correct"]).all()
    assert (own["donor_correct"] == own["baseline_correct"]).all()
    rows = result.table[(result.table["language"] == "en")]
    deltas = rows[rows["metric"].isin(["delta_log_likelihood", "accuracy_delta"])]
    assert np.allclose(deltas[["value", "lo", "hi"]].to_numpy(), 0.0, atol=1e-6)
    # ... while another language's runs do change
    other = result.per_fact[result.per_fact["language"] == "de"]
    assert np.abs(other["delta"].to_numpy()).max() > 1e-3


def test_patching_the_last_layer_gives_the_donors_next_token_distribution(
    model_and_tokenizer, facts
):
    """The output of the last decoder layer is all the head reads: written over the
    recipient's last prompt token, the recipient predicts there exactly what the donor does."""
    model, tokenizer = model_and_tokenizer
    last = N_LAYERS - 1
    fact = facts.facts[0]
    donor = torch.tensor([_prompt_ids(tokenizer, fact.items["en"].question)])
    recipient = torch.tensor([_prompt_ids(tokenizer, fact.items["ru"].question)])
    assert donor.shape[1] != recipient.shape[1]  # different positions: a real test
    with torch.no_grad():
        with capture_residual(model, [0], [donor.shape[1] - 1], [last]) as states:
            donor_logits = model(donor).logits[0, -1]
        plain = model(recipient).logits[0]
        patch = ResidualPatch([0], [recipient.shape[1] - 1], states[last])
        with patch_residual(model, {last: patch}):
            patched = model(recipient).logits[0]
    assert not torch.allclose(plain[-1], donor_logits, atol=1e-3)
    torch.testing.assert_close(patched[-1], donor_logits, rtol=1e-5, atol=1e-5)
    # the earlier positions are untouched (only the last prompt token is patched)
    torch.testing.assert_close(patched[:-1], plain[:-1], rtol=0, atol=0)
    # and the hook is gone afterwards
    with torch.no_grad():
        torch.testing.assert_close(model(recipient).logits[0], plain, rtol=0, atol=0)


def _reference_patched_score(model, tokenizer, fact, language: str, layer: int) -> float:
    """Slow reference: donor prompt alone; each recipient option in its own unpacked run with
    the donor vector written by a hand-made hook; per-token mean log-likelihood by hand."""
    layers = model.model.layers
    donor_ids = _prompt_ids(tokenizer, fact.items["en"].question)
    kept = {}

    def keep(module, args, output):
        kept["h"] = output[0, len(donor_ids) - 1].clone()

    handle = layers[layer].register_forward_hook(keep)
    with torch.no_grad():
        model(torch.tensor([donor_ids]))
    handle.remove()

    item = fact.items[language]
    prompt = _prompt_ids(tokenizer, item.question)

    def write(module, args, output):
        output = output.clone()
        output[0, len(prompt) - 1] = kept["h"]
        return output

    scores = []
    handle = layers[layer].register_forward_hook(write)
    try:
        for option in item.options:
            ids = tokenizer(PROMPT_TEMPLATE.format(question=item.question) + " " + option)
            ids = ids["input_ids"]
            assert ids[: len(prompt)] == prompt
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
            tail = range(len(prompt), len(ids))
            scores.append(float(sum(logp[t - 1, ids[t]] for t in tail)) / len(tail))
    finally:
        handle.remove()
    return scores[item.answer_index], int(np.argmax(scores)) == item.answer_index


def test_packed_batched_patching_equals_a_slow_unpacked_reference(
    model_and_tokenizer, facts, result
):
    model, tokenizer = model_and_tokenizer
    table = result.per_fact.set_index(["fact_id", "language", "layer"])
    for fact in facts.facts[:4] + facts.facts[-2:]:
        for language, layer in (("de", 0), ("ru", 1), ("de", N_LAYERS - 1)):
            score, correct = _reference_patched_score(model, tokenizer, fact, language, layer)
            row = table.loc[(fact.fact_id, language, layer)]
            assert row["patched_score"] == pytest.approx(score, abs=1e-4)
            assert bool(row["patched_correct"]) == correct
    # the unpatched scores are the evaluation's own scores
    scored = score_options(model, tokenizer, facts.items(["de"]), batch_size=3, progress=False)
    correct_scores = [s[a] for s, a in zip(scored["scores"], scored["answer_index"], strict=True)]
    first = result.per_fact[(result.per_fact["language"] == "de") & (result.per_fact.layer == 0)]
    assert np.allclose(first["baseline_score"].to_numpy(), correct_scores, atol=1e-5)


def test_batch_size_does_not_change_results(model_and_tokenizer, facts, result):
    model, tokenizer = model_and_tokenizer
    one = cross_lingual_patching(
        model, tokenizer, facts, languages=("de",), layers=[1], batch_size=1, n_boot=0,
        progress=False,
    )  # fmt: skip
    many = result.per_fact[(result.per_fact.language == "de") & (result.per_fact.layer == 1)]
    assert list(one.per_fact["fact_id"]) == list(many["fact_id"])
    assert np.allclose(one.per_fact["patched_score"], many["patched_score"], atol=1e-5)
    assert np.allclose(one.per_fact["delta"], many["delta"], atol=1e-5)
    assert one.table["lo"].isna().all()  # n_boot=0: no interval


def test_summary_table_is_tidy_and_matches_the_per_fact_rows(result):
    table = result.table
    assert list(table.columns) == PATCHING_COLUMNS
    assert set(table["metric"]) == set(PATCHING_METRICS)
    assert len(table) == len(LANGUAGES) * N_LAYERS * len(PATCHING_METRICS)
    per = result.per_fact
    for (lang, layer), group in per.groupby(["language", "layer"]):
        rows = table[(table.language == lang) & (table.layer == layer)].set_index("metric")
        assert rows.loc["delta_log_likelihood", "value"] == pytest.approx(group["delta"].mean())
        assert rows.loc["accuracy", "value"] == pytest.approx(group["patched_correct"].mean())
        wrong = ~group["baseline_correct"]
        assert rows.loc["becomes_correct", "n"] == wrong.sum()
        if wrong.any():
            expected = group.loc[wrong, "patched_correct"].mean()
            assert rows.loc["becomes_correct", "value"] == pytest.approx(expected)
        delta = group["patched_correct"].mean() - group["baseline_correct"].mean()
        assert rows.loc["accuracy_delta", "value"] == pytest.approx(delta)
        assert (rows["n"].drop("becomes_correct") == len(group)).all()
    finite = table.dropna(subset=["lo", "hi"])
    assert (finite["lo"] <= finite["value"] + 1e-12).all()
    assert (finite["value"] <= finite["hi"] + 1e-12).all()
    grid = result.matrix("delta_log_likelihood")
    assert grid.shape == (len(LANGUAGES), N_LAYERS)
    base = result.baseline()
    assert list(base["language"]) == ["en", "de", "ru"]
    # a subset can be summarised on its own
    known = summarize_patching(per[per.donor_correct], n_boot=50)
    assert (known["n"] <= per.donor_correct.groupby(per.language).sum().max()).all()


def test_save_writes_tables(result, tmp_path):
    folder = result.save(tmp_path / "patching")
    again = pd.read_csv(folder / "table.csv")
    assert list(again.columns) == PATCHING_COLUMNS and len(again) == len(result.table)
    assert (folder / "per_fact.csv").exists() and (folder / "meta.json").exists()


def test_bad_inputs_are_refused(model_and_tokenizer, facts):
    model, tokenizer = model_and_tokenizer
    with pytest.raises(DataError, match="no item in"):
        cross_lingual_patching(model, tokenizer, facts, languages=("ja",), progress=False)
    with pytest.raises(ConfigError, match="layer 7"):
        cross_lingual_patching(model, tokenizer, facts, layers=[7], progress=False)
    with pytest.raises(ConfigError, match="normalize"):
        cross_lingual_patching(model, tokenizer, facts, normalize="mean", progress=False)
    with pytest.raises(ConfigError, match="value vectors"):
        ResidualPatch([0, 1], [3], torch.zeros(2, 4))
