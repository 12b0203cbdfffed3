"""`interp score` end to end on a model whose language-specific neurons are planted by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.analysis import AnalysisConfig, analyze, load_analysis
from interp.cli import main
from interp.corpora import Corpus, from_facts, tokenize
from interp.facts import WorldConfig, build_world

# (language, layer, neuron, embedding dimension that carries the language's signal)
PLANTED = [("ja", 0, 3, 0), ("ja", 0, 17, 0), ("ja", 1, 5, 0), ("de", 1, 40, 1), ("de", 0, 8, 1)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A tiny qwen2 where the PLANTED neurons fire exactly on tokens seen only in their language.

    Embedding dimension d is +5 on the tokens that occur only in language l's corpus and -5
    elsewhere; a planted neuron's gate reads +10 x dimension d, so it fires iff the token is
    one of l's own. Nothing else reads or writes dimensions 0 and 1 (other gates ignore them,
    attention outputs are zeroed, no MLP writes them), so no other neuron can learn the
    language from them.
    """
    from interp.models.loading import load_model
    from interp.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("planted")
    facts, _ = build_world(
        WorldConfig(languages=("en", "de", "ja"), relations=("currency", "continent"))
    )
    corpus = from_facts(facts, split="train")
    texts = [t for code in corpus.languages for t in corpus.texts[code]]
    model_dir = build_tiny(
        root / "model", "qwen2", texts=texts, vocab_size=600, hidden_size=64, intermediate_size=128
    )
    model, tokenizer = load_model(model_dir, device="cpu")
    seen = {
        code: {
            i
            for s in tokenize(corpus, tokenizer, seq_len=32, token_budget=4096).sequences[code]
            for i in s
        }
        for code in corpus.languages
    }
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed[:, :2] = -5.0
        for code, dim in (("ja", 0), ("de", 1)):
            own = seen[code] - set().union(*(ids for other, ids in seen.items() if other != code))
            embed[sorted(own), dim] = 5.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.gate_proj.weight[:, :2] = 0.0
            layer.mlp.down_proj.weight[:2, :] = 0.0
        for _code, layer, neuron, dim in PLANTED:
            gate = model.model.layers[layer].mlp.gate_proj.weight
            gate[neuron] = 0.0
            gate[neuron, dim] = 10.0
    model.save_pretrained(model_dir)
    return model_dir, corpus, from_facts(facts, split="test")


def _config(**changes):
    values = dict(
        seq_len=32, token_budget=4096, n_boot=30, n_perm=30, lahis_samples=3, lahis_max_length=32
    )
    values.update(changes)
    return AnalysisConfig(**values)


def test_scorers_recover_exactly_the_planted_neurons(planted, tmp_path):
    model_dir, corpus, heldout = planted
    n_neurons = 2 * 128
    config = _config(top_frac=len(PLANTED) / n_neurons)
    result = analyze(
        model_dir, corpus, heldout=heldout, config=config, out_dir=tmp_path / "a", progress=False
    )
    truth = {(code, layer, neuron) for code, layer, neuron, _ in PLANTED}
    # (Tang et al.'s variant is left out: it only considers rates above the 95th percentile of
    # all rates, and the planted neurons fire on fewer tokens than the random ones do.)
    for name in ("lape-paper", "absolute"):
        table = result.neurons[name].table
        found = set(zip(table.language, table.layer, table.neuron, strict=True))
        assert found == truth, name
    # the intervals cover the truth; the null puts planted neurons far below the observed
    boot = result.bootstrap["absolute"].per_language.set_index("language")
    assert boot.loc["ja", "lo"] <= 3 <= boot.loc["ja", "hi"]
    perm = result.permutation["absolute"].set_index("language")
    assert perm.loc["ja", "observed"] == 3 and perm.loc["ja", "null_hi"] < 3
    assert perm.loc["ja", "p_value"] < 0.05

    # saved, and reloaded instead of recomputed
    again = load_analysis(tmp_path / "a")
    assert again.from_cache
    assert again.neurons["absolute"].table.equals(result.neurons["absolute"].table)
    assert torch.equal(
        torch.as_tensor(again.head_importance), torch.as_tensor(result.head_importance)
    )
    assert set(again.ablation) == {"neurons", "heads"}
    # top-head stability over resampled LAHIS samples, kept and reloaded
    assert again.head_frequency.equals(result.head_frequency)
    chosen = result.head_frequency[result.head_frequency.selected]
    assert len(chosen) == len(result.heads.table) and chosen.frequency.between(0, 1).all()
    ci = result.provenance["head_overlap"]
    assert ci["lo"] <= ci["mean"] <= ci["hi"]
    assert ci["mean"] == pytest.approx(result.heads.mean_overlap())
    cached = analyze(
        model_dir, corpus, heldout=heldout, config=config, out_dir=tmp_path / "a", progress=False
    )
    assert cached.from_cache
    assert again.provenance["tokens"] == {"en": 4096, "de": 4096, "ja": 4096}


def test_null_fdr_recovers_the_planted_neurons_through_the_analysis(planted, tmp_path):
    """The per-neuron test as a scorer of `analyze`: exactly the planted neurons, every one of
    them far below p = 0.001, an interval over sequences that covers their count, a label
    null far below it; reloaded from the saved per-sequence counts unchanged."""
    from interp.specialization.nulltest import NullFdr, language_tests

    model_dir, corpus, heldout = planted
    config = _config(scorers=("null-fdr", "absolute"), calibrate_absolute=True, lahis_samples=0)
    result = analyze(model_dir, corpus, config=config, out_dir=tmp_path / "n", progress=False)
    truth = {(code, layer, neuron) for code, layer, neuron, _ in PLANTED}
    table = result.neurons["null-fdr"].table
    found = set(zip(table.language, table.layer, table.neuron, strict=True))
    seqs = _sequences(tmp_path / "n")
    tests = language_tests(seqs)
    for _code, layer, neuron, _ in PLANTED:
        assert tests.p[layer, neuron] < 1e-3
    # every planted neuron, and besides them only random neurons that do prefer a language:
    # over two scripts a random model's neurons fire 2-3x more often on one language's tokens
    # than on any other's (the default 2-fold effect size counts them; 3-fold leaves only the
    # planted ones, which never fire elsewhere)
    assert truth <= found
    for code, layer, neuron in found - truth:
        rates = tests.rates[:, layer, neuron]
        own = rates[seqs.languages.index(code)]
        assert 2 <= own / np.delete(rates, seqs.languages.index(code)).max() < 3
    strict = NullFdr(min_ratio=3).score(seqs).table
    assert set(zip(strict.language, strict.layer, strict.neuron, strict=True)) == truth
    boot = result.bootstrap["null-fdr"].per_language.set_index("language")
    perm = result.permutation["null-fdr"].set_index("language")
    for code in ("ja", "de"):
        observed = int((table.language == code).sum())
        assert boot.loc[code, "lo"] <= observed <= boot.loc[code, "hi"]
        # shuffled labels: no language-specific neuron is left
        assert perm.loc[code, "observed"] == observed and perm.loc[code, "null_hi"] == 0
    # the calibrated absolute thresholds are recorded with the analysis
    used = result.provenance["scorer_params"]["absolute"]
    assert set(used) == {"max_entropy", "min_rate", "min_share", "ratio"} and used["ratio"] == 2
    # every selected neuron is in one script class; German (Latin, shared with English) is
    # language-level, Japanese (the only Han-script language here) script-or-language
    classes = result.script_classes["null-fdr"].set_index("class")
    assert classes["count"].sum() == len(table.groupby(["layer", "neuron"]))
    assert classes.loc["language", "count"] >= 2 and classes.loc["script-or-language", "count"] >= 3
    again = load_analysis(tmp_path / "n")
    assert again.script_classes["null-fdr"].equals(result.script_classes["null-fdr"])
    assert again.neurons["null-fdr"].table.equals(table)
    assert again.neurons["absolute"].table.equals(result.neurons["absolute"].table)


def test_causal_sets_are_measured_saved_and_compared(planted, tmp_path):
    """Causal neuron and head sets on the held-out text, at the activation sets' sizes, with
    their Jaccard overlaps; reloaded unchanged."""
    model_dir, corpus, heldout = planted
    config = _config(
        scorers=("lape-paper", "null-fdr"),
        n_boot=0,
        n_perm=0,
        lahis_samples=2,
        causal=True,
        ablation_tokens=256,
    )
    result = analyze(
        model_dir, corpus, heldout=heldout, config=config, out_dir=tmp_path / "c", progress=False
    )
    neurons = result.causal["neurons"]
    assert len(neurons) == 3 * 2 * 128  # every (language, layer, neuron)
    assert len(result.causal["heads"]) == 3 * result.heads.num_layers * result.heads.num_heads
    lape = result.neurons["lape-paper"].per_language().set_index("language")["count"]
    overlap = result.causal_overlap["neurons:lape-paper"].set_index("language")
    for code in ("en", "de", "ja"):
        # at most as many causal neurons as LAPE chose, and only units zeroing hurts most
        assert overlap.loc[code, "n_causal"] <= lape[code] == overlap.loc[code, "n_other"]
        chosen = neurons[(neurons.language == code) & neurons.selected]
        assert (chosen.relative_effect > 0).all()
    assert set(result.causal_overlap) == {"neurons:lape-paper", "neurons:null-fdr", "heads:lahis"}
    again = load_analysis(tmp_path / "c")
    assert again.causal["neurons"].equals(neurons)
    assert again.causal_overlap["heads:lahis"].equals(result.causal_overlap["heads:lahis"])


def _sequences(folder):
    import json

    from interp.activations import load_accumulator
    from interp.specialization.stats import SequenceCounts

    per_sequence = load_accumulator(folder / "per_sequence.safetensors")
    languages = tuple(json.loads((folder / "provenance.json").read_text())["languages"])
    return SequenceCounts(
        per_sequence.fires.numpy(),
        per_sequence.chunk_language.numpy(),
        per_sequence.tokens.numpy(),
        languages,
    )


def test_ablating_a_language_s_neurons_hurts_that_language_most(planted, tmp_path):
    model_dir, corpus, heldout = planted
    # give the planted neurons a real effect on the output: they write into the logits
    from interp.models.loading import load_model

    model, _ = load_model(model_dir, device="cpu")
    with torch.no_grad():
        for _code, layer, neuron, _dim in PLANTED:
            model.model.layers[layer].mlp.down_proj.weight[2:, neuron] = 0.5
            model.model.layers[layer].mlp.up_proj.weight[neuron] = 0.3
    boosted = tmp_path / "boosted"
    model.save_pretrained(boosted)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (boosted / name).write_bytes((model_dir / name).read_bytes())
    config = _config(
        top_frac=len(PLANTED) / 256, n_boot=0, n_perm=0, lahis_samples=0, scorers=("absolute",)
    )
    result = analyze(boosted, corpus, heldout=heldout, config=config, progress=False)
    table = result.ablation["neurons"]
    selected = table[table.control == "selected"].pivot_table(
        index="masked", columns="language", values="loss_delta"
    )
    # ablating ja's neurons changes ja's loss, and nothing else's: they fire only on ja tokens
    assert abs(selected.loc["ja", "ja"]) > 1e-4
    assert selected.loc["ja", "en"] == pytest.approx(0.0, abs=1e-6)


def test_score_cli_and_bad_input(planted, tmp_path, capsys):
    model_dir, _, _ = planted
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "en.txt").write_text("the capital of france is paris\n" * 60)
    (folder / "ja.txt").write_text("日本の首都は東京です\n" * 60)
    args = [
        "score",
        str(model_dir),
        "--corpus",
        str(folder),
        "--seq-len",
        "16",
        "--token-budget",
        "512",
    ]
    args += [
        "--n-boot",
        "5",
        "--n-perm",
        "5",
        "--lahis-samples",
        "2",
        "--no-ablation",
        "--out",
        str(tmp_path / "s"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "tokens per language: en=512 ja=512" in out and "permutation null" in out
    assert main(args) == 0
    assert "reloaded from" in capsys.readouterr().out
    (folder / "de.txt").write_text("   \n")
    assert main([*args[:-1], str(tmp_path / "s2")]) == 1
    assert "no text at all for de" in capsys.readouterr().err
    with pytest.raises(Exception, match="unknown backend"):
        AnalysisConfig(backend="jax")
    assert Corpus({"en": ["x"]}).subset(["en"]).languages == ("en",)
