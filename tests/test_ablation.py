"""Neuron and head ablation, held-out loss and the dark diagonal.

Independent paths: ablating neurons through the down_proj input equals zeroing those columns
of down_proj.weight; ablating heads equals zeroing the matching o_proj.weight columns; the
loss equals transformers' own labels= loss per sequence; the published dark diagonal is read
back against the raw JSON.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from interp.errors import ConfigError
from interp.languages import TRAINED
from interp.models import adapters
from interp.models.tiny import tiny_config
from interp.specialization.ablation import (
    TABLE_COLUMNS,
    ablate_heads,
    ablate_neurons,
    dark_diagonal,
    language_loss,
    random_like,
    reference_dark_diagonal,
)
from interp.specialization.lape import NeuronSelection

FAMILIES = ["qwen2", "olmo2"]
VOCAB = 40


def random_model(family: str, seed: int = 0):
    from transformers import AutoModelForCausalLM

    config = tiny_config(family, VOCAB, num_heads=4, num_kv_heads=2, intermediate_size=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.eval()


def random_ids(n: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))


def zero_weight_columns(model, module_of_layer, columns_by_layer):
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for layer, columns in columns_by_layer.items():
            module_of_layer(copied, layer).weight[:, columns] = 0
    return copied


@pytest.mark.parametrize("family", FAMILIES)
def test_neuron_ablation_equals_zeroed_down_proj_columns(family):
    model = random_model(family)
    ids = random_ids(3, 10)
    neurons = {(0, 3), (0, 17), (1, 0), (1, 31), (1, 5)}
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with ablate_neurons(model, neurons):
            ablated = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
        columns = {0: [3, 17], 1: [0, 31, 5]}
        expected = zero_weight_columns(model, adapters.down_proj, columns)(input_ids=ids).logits
    assert not torch.allclose(ablated, plain)
    torch.testing.assert_close(ablated, expected, rtol=0, atol=1e-6)
    assert torch.equal(after, plain)


@pytest.mark.parametrize("family", FAMILIES)
def test_head_ablation_equals_zeroed_o_proj_columns(family):
    model = random_model(family)
    ids = random_ids(3, 10)
    heads = {(0, 1), (1, 0), (1, 3)}
    head_dim = adapters.shape(model).head_dim
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with ablate_heads(model, heads):
            ablated = model(input_ids=ids).logits
        columns = {
            0: list(range(head_dim, 2 * head_dim)),
            1: list(range(head_dim)) + list(range(3 * head_dim, 4 * head_dim)),
        }
        expected = zero_weight_columns(model, adapters.o_proj, columns)(input_ids=ids).logits
    assert not torch.allclose(ablated, plain)
    torch.testing.assert_close(ablated, expected, rtol=0, atol=1e-6)


def test_hooks_removed_after_an_error_and_bad_units_refused():
    model = random_model("qwen2")
    ids = random_ids(1, 6)
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with pytest.raises(RuntimeError, match="inside"), ablate_heads(model, {(0, 0)}):
            raise RuntimeError("inside")
        assert torch.equal(model(input_ids=ids).logits, plain)
    with pytest.raises(ConfigError, match="layer outside"), ablate_neurons(model, {(2, 0)}):
        pass
    with pytest.raises(ConfigError, match="4 heads per layer"), ablate_heads(model, {(0, 4)}):
        pass


def test_language_loss_matches_hf_loss_and_ignores_padding():
    model = random_model("qwen2")
    lengths = [5, 12, 2, 9]
    generator = torch.Generator().manual_seed(4)
    seqs = [torch.randint(1, VOCAB, (n,), generator=generator).tolist() for n in lengths]
    with torch.no_grad():
        per_seq = [
            float(model(input_ids=torch.tensor([s]), labels=torch.tensor([s])).loss) for s in seqs
        ]
    predicted = [n - 1 for n in lengths]
    weighted = sum(loss * n for loss, n in zip(per_seq, predicted, strict=True))
    expected_loss = weighted / sum(predicted)
    for batch_size in (1, 3, 8):
        frame = language_loss(model, None, {"en": seqs}, batch_size=batch_size)
        row = frame.iloc[0]
        assert row["tokens"] == sum(predicted)
        assert row["loss"] == pytest.approx(expected_loss, rel=1e-5)
        assert row["ppl"] == pytest.approx(math.exp(expected_loss), rel=1e-5)
        assert row["sample_ppl"] == pytest.approx(np.mean(np.exp(per_seq)), rel=1e-5)
    cut = language_loss(model, None, {"en": seqs}, max_length=4).iloc[0]
    assert cut["tokens"] == 3 + 3 + 1 + 3


def test_random_control_keeps_the_per_layer_count():
    units = {(0, 1), (0, 2), (0, 9), (2, 7)}
    rng = np.random.default_rng(0)
    drawn = [random_like(units, 10, rng) for _ in range(20)]
    for sample in drawn:
        layers = sorted(layer for layer, _ in sample)
        assert layers == [0, 0, 0, 2]
        assert all(0 <= i < 10 for _, i in sample)
    assert len({frozenset(s) for s in drawn}) > 1
    with pytest.raises(ConfigError):
        random_like({(0, i) for i in range(5)}, 4, rng)


@pytest.mark.parametrize("unit", ["heads", "neurons"])
def test_dark_diagonal_table(unit):
    model = random_model("olmo2")
    texts = {"en": random_ids(3, 8, seed=1).tolist(), "de": random_ids(2, 8, seed=2).tolist()}
    if unit == "heads":
        units = {"de": {(0, 1), (1, 2)}, "fr": {(1, 0)}, "en": {(0, 0)}}
        module = adapters.o_proj
        head_dim = adapters.shape(model).head_dim
        de_columns = {
            0: list(range(head_dim, 2 * head_dim)),
            1: list(range(2 * head_dim, 3 * head_dim)),
        }
    else:
        mask = np.zeros((3, 2, 32), dtype=bool)
        mask[0, 0, [1, 2]] = True  # de
        mask[1, 1, 7] = True  # fr
        mask[2, 0, 30] = True  # en
        units = NeuronSelection.from_mask(mask, None, ["de", "fr", "en"], scorer="test")
        module = adapters.down_proj
        de_columns = {0: [1, 2]}
    result = dark_diagonal(model, None, texts, units, unit=unit, random_repeats=2, progress=False)
    table = result.table
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 3 * 2 * (1 + 2)
    assert result.masked == ("de", "fr", "en") and result.languages == ("en", "de")
    assert result.unit == unit

    grid = result.matrix("loss_delta")
    assert list(grid.index) == ["de", "fr", "en"] and list(grid.columns) == ["en", "de"]
    # one cell against the same loss measured on a copy with the weights zeroed
    zeroed = zero_weight_columns(model, module, de_columns)
    measured = language_loss(zeroed, None, {"de": texts["de"]}).iloc[0]["loss"]
    baseline = language_loss(model, None, {"de": texts["de"]}).iloc[0]["loss"]
    assert grid.loc["de", "de"] == pytest.approx(measured - baseline, rel=1e-5, abs=1e-7)
    ratio = result.matrix("ppl_ratio").loc["de", "de"]
    assert ratio == pytest.approx(math.exp(measured - baseline), rel=1e-5)

    selected = table[table["control"] == "selected"]
    assert (selected.groupby("masked")["n_units"].first().to_dict()) == {"de": 2, "fr": 1, "en": 1}
    random = table[table["control"] == "random"]
    assert sorted(random["repeat"].unique()) == [0, 1]
    summary = result.summary()
    assert list(summary["language"]) == ["de", "en"]  # fr is not measured
    assert summary.notna().all().all()


def test_dark_diagonal_needs_a_unit_for_plain_sets():
    with pytest.raises(ConfigError, match="unit="):
        dark_diagonal(random_model("qwen2"), None, {"en": [[1, 2, 3]]}, {"en": {(0, 0)}})


def test_reference_dark_diagonal_reads_the_published_matrix(reference_dir):
    path = reference_dir / "polyfact-results" / "dark-diagonal" / "olmo-base.json"
    raw = json.loads(path.read_text())
    result = reference_dark_diagonal("olmo-base", reference_dir / "polyfact-results")
    assert list(result.table.columns) == TABLE_COLUMNS
    assert result.masked == TRAINED and result.languages == TRAINED

    ppl = result.matrix("masked_ppl")
    assert ppl.shape == (12, 12)
    assert ppl.loc["id", "id"] == raw["masked"]["id"]["id"] == 351.8
    assert result.matrix("ppl_ratio").loc["id", "id"] == pytest.approx(351.8 / 52.74)
    assert result.matrix("baseline").loc["de", "zh"] == raw["baseline"]["zh"]

    # row and column ranks of the diagonal, by hand from the raw JSON
    summary = result.summary("delta_pct").set_index("language")
    for lang in TRAINED:
        own = raw["delta_pct"][lang][lang]
        row = 1 + sum(v > own for v in raw["delta_pct"][lang].values())
        column = 1 + sum(raw["delta_pct"][other][lang] > own for other in TRAINED)
        assert summary.loc[lang, "row_rank"] == row
        assert summary.loc[lang, "column_rank"] == column
    assert math.isnan(summary.loc["en", "random"])
    assert isinstance(result.matrix("delta"), pd.DataFrame)
