"""Causal unit scores: attribution screening, exact zeroing, selection.

Independent expectations: the attribution is the derivative of the loss, checked against a
central finite difference of the loss with the unit's weight column scaled by 1 +- eps (a
float64 model, another code path: weights, not hooks); exact effects equal `language_loss`
under `ablate_neurons` / `ablate_heads` minus the plain loss; on a model with one planted
neuron that fires only on one language's tokens and pushes that language's tokens up, the
scorer ranks it first for that language and never selects it for the others; with its
output made 100 x larger it saturates the final norm, its attribution turns ~0 with the wrong
sign (a known limit of first-order screening), and the exact step still ranks it first.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from interp.errors import ConfigError, DataError
from interp.models import adapters
from interp.models.tiny import tiny_config
from interp.specialization.ablation import ablate_heads, ablate_neurons, language_loss
from interp.specialization.causal import (
    TABLE_COLUMNS,
    causal_heads,
    causal_neurons,
    relative,
    unit_attribution,
    unit_effects,
)
from interp.specialization.heads import HeadSelection
from interp.specialization.lape import NeuronSelection

VOCAB = 60
# three "languages" with disjoint vocabularies
RANGES = {"en": (1, 20), "de": (20, 40), "ja": (40, 60)}


def random_model(dtype=torch.float32, seed: int = 0, family: str = "qwen2", **sizes):
    from transformers import AutoModelForCausalLM

    config = tiny_config(
        family, VOCAB, num_heads=4, num_kv_heads=2, **{"intermediate_size": 32, **sizes}
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def texts(lengths=(9, 12, 5, 7), seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return {
        lang: [torch.randint(lo, hi, (n,), generator=generator).tolist() for n in lengths]
        for lang, (lo, hi) in RANGES.items()
    }


def losses(model, data):
    return language_loss(model, None, data).set_index("language")["loss"]


def scaled_loss(model, module_of_layer, layer, columns, factor, data):
    copied = copy.deepcopy(model)
    with torch.no_grad():
        module_of_layer(copied, layer).weight[:, columns] *= factor
    return losses(copied, data).to_numpy()


@pytest.fixture
def float64_norms(monkeypatch):
    """Qwen2's RMS norm computes in float32 whatever the model's dtype, which leaves a float64
    model's loss with float32 rounding noise (too much for a finite difference): here it
    computes in the input's dtype."""
    from transformers.models.qwen2 import modeling_qwen2

    def forward(self, hidden_states):
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    monkeypatch.setattr(modeling_qwen2.Qwen2RMSNorm, "forward", forward)


@pytest.mark.parametrize("unit", ["neurons", "heads"])
def test_attribution_is_the_derivative_of_the_loss(unit, float64_norms):
    """(L(a (1 - eps)) - L(a (1 + eps))) / (2 eps) = -a dL/da = attribution, per language."""
    model = random_model(torch.float64)
    data = texts()
    attribution = unit_attribution(model, data, unit, batch_size=3)
    # batching and padding do not change it
    np.testing.assert_allclose(
        unit_attribution(model, data, unit, batch_size=1), attribution, rtol=1e-9, atol=1e-15
    )
    head_dim = adapters.shape(model).head_dim
    module = adapters.down_proj if unit == "neurons" else adapters.o_proj
    picks = [(0, 3), (0, 17), (1, 0), (1, 30)] if unit == "neurons" else [(0, 1), (1, 2), (1, 3)]
    eps = 1e-4
    for layer, index in picks:
        columns = (
            [index] if unit == "neurons" else list(range(index * head_dim, (index + 1) * head_dim))
        )
        down = scaled_loss(model, module, layer, columns, 1 - eps, data)
        up = scaled_loss(model, module, layer, columns, 1 + eps, data)
        finite = (down - up) / (2 * eps)
        assert np.abs(finite).max() > 1e-6  # the unit matters at all
        np.testing.assert_allclose(attribution[:, layer, index], finite, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("family", ["qwen2", "olmo2"])
def test_exact_effect_is_language_loss_with_the_neuron_ablated(family):
    model = random_model(family=family)
    data = texts()
    sel = causal_neurons(model, None, data, k=3, screen=None, batch_size=3, unit_batch=5)
    assert sel.exact.all()
    base = losses(model, data)
    np.testing.assert_allclose(sel.baseline_loss, base.to_numpy(), rtol=1e-6)
    for layer, neuron in [(0, 0), (0, 9), (1, 4), (1, 31)]:
        with ablate_neurons(model, {(layer, neuron)}):
            expected = (losses(model, data) - base).to_numpy()
        np.testing.assert_allclose(sel.effect[:, layer, neuron], expected, rtol=1e-4, atol=2e-6)
    # side by side or one at a time: the same numbers
    units = [(0, 0), (1, 4), (0, 9)]
    one, _, _ = unit_effects(model, data, units, unit_batch=1)
    many, _, _ = unit_effects(model, data, units, unit_batch=3, batch_size=2)
    np.testing.assert_allclose(many, one, rtol=1e-4, atol=1e-6)
    # relative effect by hand, and the selection rule
    effect = sel.effect[:, 1, 4]
    assert sel.relative_effect[0, 1, 4] == pytest.approx(effect[0] - (effect[1] + effect[2]) / 2)
    for i, lang in enumerate(sel.languages):
        chosen = sel.sets()[lang]
        rel = sel.relative_effect[i]
        assert len(chosen) <= 3 and all(rel[u] > 0 for u in chosen)
        best = np.sort(rel.ravel())[::-1][: len(chosen)]
        np.testing.assert_allclose(sorted((rel[u] for u in chosen), reverse=True), best)
    table = sel.table()
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 3 * 2 * 32 and table["selected"].sum() == sum(
        map(len, sel.sets().values())
    )


def test_head_zeroing_equals_ablate_heads():
    model = random_model()
    data = texts()
    sel = causal_heads(model, None, data, k=2, screen=None, unit_batch=3)
    base = losses(model, data)
    for layer in range(2):
        for head in range(4):
            with ablate_heads(model, {(layer, head)}):
                expected = (losses(model, data) - base).to_numpy()
            np.testing.assert_allclose(sel.effect[:, layer, head], expected, rtol=1e-4, atol=2e-6)
    heads = sel.selection()
    assert isinstance(heads, HeadSelection) and heads.sets() == sel.sets()
    # screened: only candidates are exact, attribution everywhere
    screened = causal_heads(model, None, data, k=1, screen=1)
    assert 1 <= screened.exact.sum() <= 3
    assert np.isnan(screened.effect[:, ~screened.exact]).all()
    np.testing.assert_allclose(screened.attribution, sel.attribution, rtol=1e-6, atol=1e-9)


PLANTED = (1, 7)  # (layer, neuron) that fires on "ja" tokens only


@pytest.fixture(scope="module")
def planted():
    """Embedding dim 0 = +5 on ja tokens and -5 elsewhere; neuron PLANTED has gate = 10 x dim 0
    and up = dim 0 (act(gate) * up is ~0 off ja, ~200 on ja after the RMS norm) and writes
    0.01 x that into dim 2; only ja's rows of lm_head read dim 2. No other unit reads dim 0
    and nothing else writes dims 0 or 2; the other embedding dims are N(0, 1), so dim 0 does
    not swamp the norms."""
    model = random_model(intermediate_size=64, seed=3)
    layer, neuron = PLANTED
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed.copy_(torch.randn(embed.shape, generator=torch.Generator().manual_seed(3)))
        embed[:, 2] = 0.0
        embed[:, 0] = -5.0
        embed[40:60, 0] = 5.0
        for block in model.model.layers:
            for proj in (block.self_attn.q_proj, block.self_attn.k_proj, block.self_attn.v_proj):
                proj.weight[:, 0] = 0.0
            block.mlp.gate_proj.weight[:, 0] = 0.0
            block.mlp.up_proj.weight[:, 0] = 0.0
            block.self_attn.o_proj.weight[[0, 2], :] = 0.0
            block.mlp.down_proj.weight[[0, 2], :] = 0.0
        mlp = model.model.layers[layer].mlp
        mlp.gate_proj.weight[neuron] = 0.0
        mlp.gate_proj.weight[neuron, 0] = 10.0
        mlp.up_proj.weight[neuron] = 0.0
        mlp.up_proj.weight[neuron, 0] = 1.0
        mlp.down_proj.weight[:, neuron] = 0.0
        mlp.down_proj.weight[2, neuron] = 0.01
        model.lm_head.weight[:, 2] = 0.0
        model.lm_head.weight[40:60, 2] = 1.0
    return model


PLANTED_DATA = dict(lengths=(16, 12, 20, 9), seed=5)


@pytest.mark.parametrize("screen", [4, None])
def test_planted_neuron_ranks_first_for_its_language_only(planted, screen):
    data = texts(**PLANTED_DATA)
    base = losses(planted, data)
    with ablate_neurons(planted, {PLANTED}):
        hit = losses(planted, data) - base
    assert hit["ja"] > 0.3 and abs(hit["en"]) < 1e-6 and abs(hit["de"]) < 1e-6  # as built
    sel = causal_neurons(planted, None, data, k=4, screen=screen)
    ja = sel.languages.index("ja")
    first = sel.selected_table().query("language == 'ja'").iloc[0]
    assert (first["layer"], first["unit"]) == PLANTED
    assert first["relative_effect"] == pytest.approx(hit["ja"], rel=1e-3)
    # first by relative attribution too (the screen finds it on its own)
    flat = PLANTED[0] * 64 + PLANTED[1]
    assert int(np.argmax(sel.relative_attribution[ja].ravel())) == flat
    for lang in ("en", "de"):
        i = sel.languages.index(lang)
        assert PLANTED not in sel.sets()[lang]
        assert sel.relative_effect[i][PLANTED] < 0
        assert int(np.nanargmax(sel.relative_effect[i].ravel())) != flat


def test_a_saturated_neuron_fools_the_first_order_screen_not_the_exact_step(planted):
    """With 100 x the output, the neuron's direction swamps the final RMS norm: more of it no
    longer lowers ja's loss, so its attribution is ~0 with the wrong sign, while zeroing it
    still costs ja ~1.1 nats. The exact step ranks it first; the screen alone would not."""
    model = copy.deepcopy(planted)
    with torch.no_grad():
        adapters.down_proj(model, PLANTED[0]).weight[2, PLANTED[1]] = 1.0
    sel = causal_neurons(model, None, texts(**PLANTED_DATA), k=4, screen=None)
    ja = sel.languages.index("ja")
    assert sel.attribution[ja][PLANTED] < 0 < 1.0 < sel.effect[ja][PLANTED]
    rel = sel.relative_attribution[ja]
    assert (rel > rel[PLANTED]).sum() > 64  # in the bottom half by attribution
    first = sel.selected_table().query("language == 'ja'").iloc[0]
    assert (first["layer"], first["unit"]) == PLANTED


def test_budget_from_an_activation_selection_and_jaccard(planted):
    data = texts(**PLANTED_DATA)
    mask = np.zeros((3, 2, 64), dtype=bool)
    mask[2, PLANTED[0], PLANTED[1]] = True  # ja: the planted neuron and one other
    mask[2, 0, 5] = True
    mask[0, 1, 1] = True  # en: one neuron
    lape = NeuronSelection.from_mask(mask, None, ("en", "de", "ja"), scorer="lape-paper")
    sel = causal_neurons(planted, None, data, like=lape, screen=4)
    assert sel.k == {"en": 1, "de": 0, "ja": 2}
    sets = sel.sets()
    assert len(sets["en"]) <= 1 and sets["de"] == set() and PLANTED in sets["ja"]
    table = sel.jaccard_with(lape).set_index("language")
    for lang in ("en", "de", "ja"):
        a, b = sets[lang], lape.sets()[lang]
        expected = len(a & b) / len(a | b) if a | b else np.nan
        assert table.loc[lang, "jaccard"] == pytest.approx(expected, nan_ok=True)
        assert table.loc[lang, "shared"] == len(a & b)
    assert table.loc["ja", "shared"] >= 1  # the planted neuron, in both
    neurons = sel.selection()
    assert isinstance(neurons, NeuronSelection) and neurons.sets() == sets
    np.testing.assert_array_equal(neurons.mask(), sel.mask())


def test_inputs_refused():
    model = random_model()
    data = texts()
    with pytest.raises(ConfigError, match="budget"):
        causal_neurons(model, None, data)
    with pytest.raises(ConfigError, match="not both"):
        causal_neurons(model, None, data, k=1, like={"en": set()})
    with pytest.raises(ConfigError, match="screen"):
        causal_neurons(model, None, data, k=1, screen=0)
    with pytest.raises(DataError, match="at least 2 languages"):
        causal_neurons(model, None, {"en": data["en"]}, k=1)
    with pytest.raises(DataError, match="de"):
        causal_neurons(model, None, data, like={"en": set(), "ja": set()})
    with pytest.raises(ConfigError, match="index outside"):
        unit_effects(model, data, [(0, 32)])
    # max_tokens caps the predicted tokens per language
    capped = causal_neurons(model, None, data, k=1, max_tokens=10)
    assert capped.tokens.tolist() == [10, 10, 10]
    np.testing.assert_allclose(relative(np.array([[1.0], [3.0], [5.0]]))[:, 0], [-3.0, 0.0, 3.0])
