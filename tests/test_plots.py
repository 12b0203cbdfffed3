"""Every figure renders from tables, on organism-like synthetic results and on the 7B files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from interp import compare
from interp.errors import DataError
from interp.specialization.heads import top_heads
from interp.specialization.lape import NeuronCounts, score

pytest.importorskip("matplotlib")

from interp import plots  # noqa: E402
from interp.plots import style  # noqa: E402

# an organism-like model: 4 layers x 48 neurons, 4 x 4 heads, trained and unseen languages
LANGS = ("en", "de", "id", "ar", "bn", "sw", "ca", "el")
CHECKPOINTS = ("base", "sft", "grpo")


def images(fig) -> list:
    return [im for ax in fig.axes for im in ax.images]


def saved(fig, tmp_path, name: str) -> None:
    """Both formats written, complete, with no temporary file left behind."""
    written = style.save_figure(fig, tmp_path / name, dpi=30)
    png, pdf = (tmp_path / f"{name}.png"), (tmp_path / f"{name}.pdf")
    assert written == [png, pdf]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-" and b"%%EOF" in pdf.read_bytes()[-64:]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def organism():
    rng = np.random.default_rng(0)
    base = rng.beta(0.3, 3, size=(len(LANGS), 4, 48))
    neurons, heads = {}, {}
    for i, name in enumerate(CHECKPOINTS):
        rates = np.clip(base + rng.normal(0, 0.02 * (i + 1), base.shape), 0, 1)
        neurons[name] = score(
            NeuronCounts(np.round(rates * 500), np.full(len(LANGS), 500.0), LANGS), top_frac=0.05
        )
        heads[name] = top_heads(rng.random((len(LANGS), 4, 4)), LANGS, k=3)
    return neurons, heads


@pytest.fixture(scope="module")
def olmo(reference_dir):
    from interp.specialization.reference import load_lahis, load_lape

    root = reference_dir / "polyfact-results"
    neurons = {name: load_lape(name, root) for name in ("olmo-base", "olmo-sft-10k", "olmo-grpo")}
    heads = {name: top_heads(load_lahis(name, root)) for name in ("olmo-base", "olmo-sft")}
    return root, neurons, heads


def test_import_is_cheap():
    code = "import sys, interp.plots, interp.compare; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_style_is_consistent():
    colors = style.checkpoint_colors(["olmo-base", "olmo-grpo", "olmo-sft-10k", "x", "y"])
    assert colors["olmo-base"] == style.checkpoint_colors(["olmo-grpo", "olmo-base"])["olmo-base"]
    assert len(set(colors.values())) == 5
    assert style.language_label("bn") == "bn\u2020" and style.language_label("de") == "de"
    assert len({style.language_marker(c) for c in ("en", "de", "id", "pt", "ar", "bn")}) == 6


# ---------------------------------------------------------------------------------------------
# organism-like synthetic tables


def test_neuron_figures_on_synthetic(organism, tmp_path):
    neurons, _ = organism
    counts = compare.counts_table(neurons, "base")
    counts["lo"], counts["hi"] = counts["count"] - 1, counts["count"] + 2
    fig = plots.plot_neuron_counts(counts, log=True)
    top, delta = fig.axes[:2]
    assert len(top.patches) == len(CHECKPOINTS) * len(LANGS)
    assert len(delta.patches) == (len(CHECKPOINTS) - 1) * len(LANGS)
    assert top.get_yscale() == "log" and len(top.containers) == 2 * len(CHECKPOINTS)
    assert [t.get_text() for t in delta.get_xticklabels()][2] == "id\u2020"
    saved(fig, tmp_path, "counts")

    fig = plots.plot_layer_heatmap(compare.layer_table(neurons, "base"))
    assert len(images(fig)) == 2 * len(CHECKPOINTS) - 1
    assert images(fig)[0].get_array().shape == (4, len(LANGS))
    saved(fig, tmp_path, "layers")
    subset = plots.plot_layer_heatmap(compare.layer_table(neurons, "base"), checkpoints=["grpo"])
    assert [ax.get_title() for ax in subset.axes if ax.images] == [
        "base",
        "grpo",
        "grpo \u2212 base",
    ]

    ks = compare.ks_compare(neurons, "base")
    fig = plots.plot_cumulative(compare.cumulative_table(neurons), ks=ks, languages=("all", "sw"))
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    expected = ks.set_index(["checkpoint", "language"]).loc[("grpo", "all"), "ks"]
    assert f"grpo (KS {expected:.3f})" in legend and "base (baseline)" in legend
    assert len(fig.axes[0].lines) == len(CHECKPOINTS)
    saved(fig, tmp_path, "cumulative")

    matrix = compare.reassignment(neurons["base"], neurons["grpo"])
    fig = plots.plot_reassignment(matrix)
    (image,) = images(fig)
    assert image.get_array().shape == (len(LANGS) + 1, len(LANGS) + 1)
    assert len(fig.axes[0].texts) == int((matrix.to_numpy() != 0).sum())
    saved(fig, tmp_path, "reassignment")


def test_head_figures_on_synthetic(organism, tmp_path):
    _, heads = organism
    fig = plots.plot_head_layers(compare.head_layer_table(heads))
    assert len(images(fig)) == len(CHECKPOINTS)
    profile = [ax for ax in fig.axes if ax.get_title() == "profile over layers"][0]
    assert len(profile.lines) == len(CHECKPOINTS)
    saved(fig, tmp_path, "head_layers")

    fig = plots.plot_head_overlap(compare.head_overlap_table(heads, "base"))
    assert len(images(fig)) == 2 * len(CHECKPOINTS) - 1
    saved(fig, tmp_path, "head_overlap")

    rng = np.random.default_rng(1)
    values = rng.random((len(LANGS), len(LANGS)))
    np.fill_diagonal(values, 2.0)  # own language hurt most everywhere
    square = pd.DataFrame(values, index=LANGS, columns=LANGS)
    fig = plots.plot_dark_diagonal(square)
    assert len(fig.axes[0].patches) == len(LANGS)  # one outline per diagonal cell
    assert f"in {len(LANGS)} of {len(LANGS)} rows" in fig.axes[0].get_title()
    saved(fig, tmp_path, "dark_diagonal")
    fig = plots.plot_dark_diagonal(compare.matrix_difference(square, square * 0.5))
    assert images(fig)[0].norm.vmin == -images(fig)[0].norm.vmax  # centred diverging scale


def scores(seed: int, n_facts: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    answers = np.random.default_rng(7).integers(4, size=n_facts)
    rows = [
        {
            "fact_id": f"f{f}",
            "language": lang,
            "answer_index": int(answers[f]),
            "scores": (rng.normal(size=4) + 1.5 * np.eye(4)[answers[f]] * (lang != "el")).tolist(),
            "option_ids": ("a", "b", "c", "d"),
        }
        for f in range(n_facts)
        for lang in LANGS
    ]
    return pd.DataFrame(rows)


def test_recall_and_thesis_on_synthetic(organism, tmp_path):
    from interp.evaluate.metrics import evaluate

    neurons, _ = organism
    results = {
        name: evaluate(
            scores(i),
            metrics=("accuracy", "group_accuracy", "total_consistency", "rankc"),
            n_boot=20,
        )
        for i, name in enumerate(CHECKPOINTS)
    }
    fig = plots.plot_recall(compare.stack_results(results))
    accuracy = [ax for ax in fig.axes if ax.get_title().startswith("accuracy per language")][0]
    assert len(accuracy.patches) == len(CHECKPOINTS) * len(LANGS) + 1  # + the unseen band
    labels = accuracy.get_xticklabels()
    assert [t.get_fontstyle() for t in labels][-2:] == ["italic", "italic"]  # ca el: unseen
    assert len(images(fig)) == len(CHECKPOINTS)
    saved(fig, tmp_path, "recall")

    summary = compare.specialization_summary(neurons, "mean_entropy")
    table = compare.thesis_table(summary, results, metric="rankc_mean")
    fig = plots.plot_specialization_vs_consistency(table)
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.texts} == set(CHECKPOINTS)
    assert ax.get_xlabel() == "mean_entropy" and "rankc mean" in ax.get_ylabel()
    assert len(ax.containers) == len(CHECKPOINTS)
    saved(fig, tmp_path, "thesis")


# ---------------------------------------------------------------------------------------------
# the paper's 7B results


def test_neuron_figures_on_7b(olmo, tmp_path):
    _, neurons, _ = olmo
    fig = plots.plot_neuron_counts(compare.counts_table(neurons, "olmo-base"), log=True)
    assert len(fig.axes[0].patches) == 3 * 12
    heights = [p.get_height() for p in fig.axes[0].patches[:12]]
    assert heights[0] == len(neurons["olmo-base"].sets()["en"])
    saved(fig, tmp_path, "counts_7b")  # the 7B figures are drawn once here, checked elsewhere
    fig = plots.plot_layer_heatmap(compare.layer_table(neurons, "olmo-base"))
    assert images(fig)[0].get_array().shape == (32, 12)
    fig = plots.plot_cumulative(
        compare.cumulative_table(neurons), ks=compare.ks_compare(neurons, "olmo-base")
    )
    matrix = compare.reassignment(
        neurons["olmo-base"], neurons["olmo-grpo"], names=("olmo-base", "olmo-grpo")
    )
    fig = plots.plot_reassignment(matrix)
    assert "olmo-base \u2192 olmo-grpo" in fig.axes[0].get_title()
    saved(fig, tmp_path, "reassignment_7b")


def test_head_figures_on_7b(olmo, tmp_path):
    root, _, heads = olmo
    fig = plots.plot_head_layers(compare.head_layer_table(heads))
    assert images(fig)[0].get_array().shape == (32, 12)
    fig = plots.plot_head_overlap(compare.head_overlap_table(heads, "olmo-base"))
    assert len(images(fig)) == 3 and images(fig)[0].get_array().shape == (12, 12)

    from interp.specialization.reference import load_dark_diagonal

    raw = json.loads((root / "dark-diagonal" / "olmo-base.json").read_text())
    own = sum(
        max(raw["masked"][x], key=lambda lang: raw["masked"][x][lang] / raw["baseline"][lang] - 1)
        == x
        for x in raw["masked"]
    )
    fig = plots.plot_dark_diagonal(load_dark_diagonal(root=root), value="delta_pct")
    assert f"in {own} of 12 rows" in fig.axes[0].get_title()
    assert "perplexity increase (%)" in fig.axes[-1].get_ylabel()
    saved(fig, tmp_path, "dark_diagonal_7b")


# ---------------------------------------------------------------------------------------------
# bad inputs


def test_bad_tables_are_refused(organism):
    neurons, _ = organism
    counts = compare.counts_table(neurons, "base")
    with pytest.raises(DataError, match="missing column.*count"):
        plots.plot_neuron_counts(counts.drop(columns="count"))
    with pytest.raises(DataError, match="show_delta needs"):
        plots.plot_neuron_counts(compare.counts_table(neurons), show_delta=True)
    with pytest.raises(DataError, match="baseline 'nope'"):
        plots.plot_layer_heatmap(compare.layer_table(neurons), baseline="nope")
    with pytest.raises(DataError, match=r"\['zh'\] not in"):
        plots.plot_cumulative(compare.cumulative_table(neurons), languages=("zh",))
    with pytest.raises(DataError, match="not specific"):
        plots.plot_reassignment(pd.DataFrame(np.eye(2)))
    with pytest.raises(DataError, match="no accuracy"):
        plots.plot_recall(
            pd.DataFrame({"checkpoint": ["a"], "metric": ["x"], "language": ["en"], "value": [1.0]})
        )
