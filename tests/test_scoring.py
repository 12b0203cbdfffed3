"""Option log-likelihood scoring on a tiny random Qwen2 against a slow per-option reference."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from interp.errors import DataError  # noqa: E402
from interp.evaluate.scoring import PROMPT_TEMPLATE, encode_options, score_options  # noqa: E402

ITEMS = [
    {
        "fact_id": "f1",
        "language": "en",
        "relation": "capital",
        "question": "What is the capital of France?",
        "options": ["Berlin", "Paris", "Rome", "Madrid"],
        "option_ids": ["Q64", "Q90", "Q220", "Q2807"],
        "answer_index": 1,
    },
    {
        "fact_id": "f1",
        "language": "de",
        "relation": "capital",
        "question": "Was ist die Hauptstadt von Frankreich?",
        "options": ["Rom", "Madrid", "Paris", "Berlin"],
        "option_ids": ["Q220", "Q2807", "Q90", "Q64"],
        "answer_index": 2,
    },
    {
        "fact_id": "f2",
        "language": "en",
        "relation": "currency",
        "question": "What is the currency of the United Kingdom of Great Britain and Northern Ireland?",
        "options": ["euro", "pound sterling", "Swiss franc", "United States dollar"],
        "option_ids": ["Q4916", "Q25224", "Q25344", "Q4917"],
        "answer_index": 1,
    },
    {
        "fact_id": "f2",
        "language": "ru",
        "relation": "currency",
        "question": "Какая валюта в Великобритании?",
        "options": ["евро", "фунт стерлингов", "швейцарский франк", "доллар США"],
        "option_ids": ["Q4916", "Q25224", "Q25344", "Q4917"],
        "answer_index": 1,
    },
]


def texts():
    for item in ITEMS:
        prompt = PROMPT_TEMPLATE.format(question=item["question"])
        for option in item["options"]:
            yield prompt + " " + option


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE trained on the test texts, wrapped as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(texts()), trainer=trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>"
    )


@pytest.fixture(scope="module")
def model(tokenizer):
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():  # leave the global RNG as it was
        torch.manual_seed(0)
        model = transformers.Qwen2ForCausalLM(config)
        # larger random weights give option scores far enough apart to tell bugs from noise
        with torch.no_grad():
            model.lm_head.weight.normal_(0, 1.0)
    return model.eval()


def reference_scores(model, tokenizer, item):
    """Each option alone: tokenise prompt and prompt + option, log-softmax written out by hand."""
    prompt = PROMPT_TEMPLATE.format(question=item["question"])
    prompt_ids = tokenizer(prompt)["input_ids"]
    scores, totals, counts = [], [], []
    for option in item["options"]:
        ids = tokenizer(prompt + " " + option)["input_ids"]
        assert ids[: len(prompt_ids)] == prompt_ids  # this tokenizer keeps the boundary
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        total = 0.0
        for t in range(len(prompt_ids), len(ids)):
            row = logits[t - 1]
            log_norm = row.max() + torch.log(torch.exp(row - row.max()).sum())
            total += float(row[ids[t]] - log_norm)
        n = len(ids) - len(prompt_ids)
        scores.append(total / n)
        totals.append(total)
        counts.append(n)
    return scores, totals, counts


def test_batched_scores_equal_slow_reference(model, tokenizer):
    table = score_options(model, tokenizer, ITEMS, batch_size=4, device="cpu", progress=False)
    assert list(table.columns) == [
        "fact_id",
        "language",
        "relation",
        "answer_index",
        "option_ids",
        "scores",
        "n_option_tokens",
        "log_likelihood",
    ]
    assert table.fact_id.tolist() == ["f1", "f1", "f2", "f2"]
    assert table.option_ids[1] == ("Q220", "Q2807", "Q90", "Q64")
    spread = []
    for item, got, counts in zip(ITEMS, table.scores, table.n_option_tokens, strict=True):
        expected, expected_totals, expected_counts = reference_scores(model, tokenizer, item)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            table.log_likelihood[len(spread)], expected_totals, rtol=1e-5, atol=1e-5
        )
        assert counts == tuple(expected_counts)
        spread.append(np.ptp(expected))
    assert min(spread) > 1e-2  # the options really differ, so the comparison has teeth


def test_padding_and_batch_size_do_not_change_scores(model, tokenizer):
    alone = [
        score_options(model, tokenizer, [item], batch_size=1, progress=False).scores[0]
        for item in ITEMS
    ]
    tokenizer.padding_side = "left"  # must not matter: scoring pads on its own, on the right
    try:
        batched = score_options(model, tokenizer, ITEMS, batch_size=3, progress=False).scores
    finally:
        tokenizer.padding_side = "right"
    for a, b in zip(alone, batched, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_normalisations(model, tokenizer):
    frame = pd.DataFrame(ITEMS)
    mean = score_options(model, tokenizer, frame, progress=False)
    total = score_options(model, tokenizer, frame, normalize="sum", progress=False)
    chars = score_options(model, tokenizer, frame, normalize="char", progress=False)
    for item, m, s, c, n in zip(
        ITEMS, mean.scores, total.scores, chars.scores, mean.n_option_tokens, strict=True
    ):
        _, totals, _ = reference_scores(model, tokenizer, item)
        np.testing.assert_allclose(s, totals, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.array(m) * np.array(n), totals, rtol=1e-5, atol=1e-5)
        lengths = np.array([len(o) for o in item["options"]])
        np.testing.assert_allclose(np.array(c) * lengths, totals, rtol=1e-5, atol=1e-5)


def test_model_mode_is_restored_and_bad_arguments_refused(model, tokenizer):
    model.train()
    score_options(model, tokenizer, ITEMS[:1], progress=False)
    assert model.training
    model.eval()
    with pytest.raises(DataError, match="normalize"):
        score_options(model, tokenizer, ITEMS, normalize="byte", progress=False)
    with pytest.raises(DataError, match="question"):
        score_options(model, tokenizer, [{"fact_id": "x", "language": "en"}], progress=False)


def test_boundary_merge_falls_back_to_separate_pieces():
    """A tokenizer without pre-tokenisation can merge ': ' across the prompt/option boundary."""
    from tokenizers import Tokenizer, models, trainers

    core = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=60, special_tokens=["<pad>"], show_progress=False)
    core.train_from_iterator(["Answer: yes", "Answer: no", "Q: a: b: c"] * 50, trainer=trainer)
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>")
    prompt_ids = tok("Answer:")["input_ids"]
    assert tok("Answer: yes")["input_ids"][: len(prompt_ids)] != prompt_ids  # the merge happens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoded = encode_options(tok, "Answer:", ["yes"])[0]
    assert encoded.merged_boundary
    assert (
        list(encoded.input_ids) == prompt_ids + tok(" yes", add_special_tokens=False)["input_ids"]
    )
    assert encoded.option_start == len(prompt_ids)
