"""The logit lens against the model's own output and probabilities computed by hand.

At the last residual index the lens must be the model's output distribution (softmax of
model(...).logits at the last prompt token), for every supported family, with final norms
away from 1 so a missing or doubled norm would show. On facts, the table's probabilities and
ranks at the last layer are those of the answers' first tokens read off that distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from interp.errors import DataError  # noqa: E402
from interp.evaluate.scoring import PROMPT_TEMPLATE  # noqa: E402
from interp.representations import (  # noqa: E402
    LENS_COLUMNS,
    LENS_METRICS,
    answer_tokens,
    decode,
    logit_lens,
    residuals,
)


def _perturb(model, seed):
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in model.modules():
            if "Norm" in type(module).__name__:
                module.weight.uniform_(0.5, 1.5)
        model.lm_head.weight.normal_(0, 0.5)  # a spread-out output distribution
    return model.eval()


@pytest.mark.parametrize("family", ["qwen2", "llama", "olmo2"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_last_layer_lens_is_the_model_output(family, padding_side):
    from transformers import AutoModelForCausalLM

    from interp.models.tiny import tiny_config

    config = tiny_config(family, 300, num_layers=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _perturb(AutoModelForCausalLM.from_config(config, dtype=torch.float32), 1)
    rng = np.random.default_rng(2)
    prompts = [rng.integers(1, 300, size=int(k)).tolist() for k in (3, 11, 6, 8, 2)]
    vectors = residuals(model, None, prompts, position="last", padding_side=padding_side)
    lens = torch.softmax(decode(model, torch.tensor(vectors[:, -1])), dim=-1)
    for row, ids in enumerate(prompts):
        with torch.no_grad():
            expected = torch.softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
        torch.testing.assert_close(lens[row], expected, atol=1e-6, rtol=1e-5)
    # an earlier layer is not the output (the test can fail)
    early = torch.softmax(decode(model, torch.tensor(vectors[:, 1])), dim=-1)
    assert (early - lens).abs().max() > 1e-3


@pytest.fixture(scope="module")
def organism(tmp_path_factory):
    from interp.facts import WorldConfig, build_world
    from interp.models.loading import load_model
    from interp.models.tiny import build_tiny

    facts, _ = build_world(
        WorldConfig(languages=("en", "de", "ja"), relations=("currency", "continent"))
    )
    texts = [PROMPT_TEMPLATE.format(question=i.question) for i in facts.items()] + [
        f"{i.question} {o}" for i in facts.items() for o in i.options
    ]
    model_dir = build_tiny(tmp_path_factory.mktemp("lens"), "qwen2", texts=texts, vocab_size=500)
    model, tokenizer = load_model(model_dir, device="cpu")
    return _perturb(model, 3), tokenizer, facts.split("test")


def _by_hand(model, tokenizer, prompt, answer):
    """p and rank of the answer's first token after `prompt`, from the model's own logits."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    whole = tokenizer(prompt + " " + answer)["input_ids"]
    assert whole[: len(prompt_ids)] == prompt_ids
    token = whole[len(prompt_ids)]
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids])).logits[0, -1].double()
    probs = torch.softmax(logits, dim=-1)
    rank = 1 + int((logits > logits[token]).sum())
    return token, float(probs[token]), rank


def test_lens_table_on_facts(organism):
    model, tokenizer, facts = organism
    lens = logit_lens(model, tokenizer, facts, ["en", "de", "ja"], n_boot=100, batch_size=5)
    items, table = lens.items, lens.table
    last = items[items.layer == 2].set_index(["fact_id", "language"])
    for fact in list(facts)[:6]:
        for code in ("de", "ja", "en"):
            prompt = PROMPT_TEMPLATE.format(question=fact.items[code].question)
            row = last.loc[(fact.fact_id, code)]
            for source, which in ((fact.items["en"], "english"), (fact.items[code], "language")):
                token, p, rank = _by_hand(model, tokenizer, prompt, source.answer_text)
                assert row[f"{which}_token"] == token
                assert row[f"p_{which}_answer"] == pytest.approx(p, rel=1e-4, abs=1e-7)
                assert row[f"rank_{which}_answer"] == rank
    english = items[items.language == "en"]
    np.testing.assert_array_equal(english["p_english_answer"], english["p_language_answer"])
    assert english["same_token"].all()

    assert list(table.columns) == LENS_COLUMNS
    assert len(table) == 3 * 3 * len(LENS_METRICS)
    assert set(table["layer"]) == {0, 1, 2}
    means = items.groupby(["language", "layer"])["p_language_answer"].mean()
    for _, row in table[table.metric == "p_language_answer"].iterrows():
        assert row["value"] == pytest.approx(means[(row.language, row.layer)])
        assert row["lo"] <= row["value"] <= row["hi"]
        assert row["n"] == len(facts)
    ranks = table[table.metric.str.startswith("rank")]
    assert (ranks["value"] >= 1).all()


def test_lens_by_group_and_layers(organism):
    model, tokenizer, facts = organism
    by = pd.DataFrame(
        [(f.fact_id, "de", "even" if k % 2 == 0 else "odd") for k, f in enumerate(facts)],
        columns=["fact_id", "language", "parity"],
    )
    lens = logit_lens(model, tokenizer, facts, ["de"], layers=[2], by=by, n_boot=50)
    table = lens.table
    assert set(table["layer"]) == {2}
    assert set(table["group"]) == {"all", "even", "odd"}
    sizes = table[table.metric == "p_english_answer"].set_index("group")["n"]
    assert sizes["even"] + sizes["odd"] == sizes["all"] == len(facts)
    # the lens on one layer reads the same numbers as on all layers
    full = logit_lens(model, tokenizer, facts, ["de"], n_boot=0).items
    np.testing.assert_allclose(
        lens.items["p_language_answer"].to_numpy(),
        full[full.layer == 2]["p_language_answer"].to_numpy(),
        rtol=1e-6,
    )


def test_answer_tokens_and_errors(organism):
    model, tokenizer, facts = organism
    fact = facts.facts[0]
    prompt = PROMPT_TEMPLATE.format(question=fact.items["de"].question)
    token = answer_tokens(tokenizer, prompt, [fact.items["de"].answer_text])[0]
    assert token == _by_hand(model, tokenizer, prompt, fact.items["de"].answer_text)[0]
    with pytest.raises(DataError, match="no item in 'fr'"):
        logit_lens(model, tokenizer, facts, ["fr"], n_boot=0)


def test_compare_lens_is_paired(organism):
    from interp.representations import COMPARE_LENS_COLUMNS, LogitLens, compare_lens

    model, tokenizer, facts = organism
    base = logit_lens(model, tokenizer, facts, ["de"], layers=[1, 2], n_boot=0)
    same = compare_lens(base, base, n_boot=100)
    assert list(same.columns) == COMPARE_LENS_COLUMNS
    np.testing.assert_allclose(same[["delta", "lo", "hi"]].to_numpy(), 0.0)
    shifted = base.items.copy()
    shifted["p_language_answer"] += 0.1  # the same change on every fact: no spread
    change = compare_lens(base, LogitLens(base.table, shifted), n_boot=100)
    moved = change[change.metric == "p_language_answer"]
    np.testing.assert_allclose(moved[["delta", "lo", "hi"]].to_numpy(), 0.1, atol=1e-12)
    assert (moved["p_value"] == 0).all()
    assert (change[change.metric != "p_language_answer"]["delta"] == 0).all()
