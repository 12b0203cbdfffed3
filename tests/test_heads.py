"""Top heads, pairwise overlap, language-general heads and layer shares.

Checked on the paper's own LAHIS tensors against an independent computation with
torch.topk and Python sets, as the PolyFact release defines them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.errors import ConfigError, DataError
from interp.languages import TRAINED
from interp.specialization import importance_table, top_head_count, top_heads

RESULTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "polyfact-results"
CHECKPOINTS = [
    ("lahis", "olmo-base"),
    ("lahis", "olmo-sft"),
    ("lahis-recomputed", "olmo-base"),
    ("lahis-recomputed", "olmo-sft-10k"),
    ("lahis-recomputed", "olmo-grpo"),
]

needs_reference = pytest.mark.skipif(not RESULTS.is_dir(), reason=f"no reference data at {RESULTS}")


def read_direct(folder: str, checkpoint: str) -> torch.Tensor:
    return torch.stack(
        [
            torch.load(RESULTS / folder / checkpoint / f"lahis_{lang}.pth", weights_only=True)
            for lang in TRAINED
        ]
    )


def topk_sets(importance: torch.Tensor, k: int) -> dict[str, set[tuple[int, int]]]:
    n_heads = importance.shape[2]
    out = {}
    for lang, matrix in zip(TRAINED, importance, strict=True):
        flat = torch.topk(matrix.flatten(), k).indices.tolist()
        out[lang] = {(i // n_heads, i % n_heads) for i in flat}
    return out


@needs_reference
@pytest.mark.parametrize(("folder", "checkpoint"), CHECKPOINTS)
def test_reference_lahis_against_torch_topk(folder, checkpoint):
    importance = read_direct(folder, checkpoint)
    n_layers, n_heads = importance.shape[1:]
    k = int(n_layers * n_heads * 0.02)
    assert k == 20
    expected = topk_sets(importance, k)
    sel = top_heads(importance, TRAINED)
    assert sel.k == k
    assert sel.sets() == expected

    # pairwise overlap |top(a) & top(b)| / k
    overlap = sel.overlap()
    for a in TRAINED:
        for b in TRAINED:
            assert overlap.loc[a, b] == pytest.approx(len(expected[a] & expected[b]) / k)

    # language-general heads: in the top set of at least 11 of 12 languages
    votes = Counter(head for heads in expected.values() for head in heads)
    general = {head for head, n in votes.items() if n >= 11}
    found = sel.general(min_languages=11)
    assert set(zip(found["layer"], found["head"], strict=True)) == general
    assert set(zip(sel.general()["layer"], sel.general()["head"], strict=True)) == general
    for row in found.itertuples():
        assert row.n_languages == votes[(row.layer, row.head)]

    # share of each language's top heads per layer
    share = sel.layer_share().set_index(["language", "layer"])["share"]
    for lang in TRAINED:
        per_layer = np.bincount([layer for layer, _ in expected[lang]], minlength=n_layers) / k
        np.testing.assert_allclose(share.loc[lang].to_numpy(), per_layer)


@needs_reference
def test_reference_olmo_base_has_language_general_heads():
    # properties of any overlap matrix, and of the published base model: it has heads that
    # nearly every language shares
    sel = top_heads(read_direct("lahis", "olmo-base"), TRAINED)
    assert len(sel.general(11)) >= 1
    overlap = sel.overlap()
    assert np.allclose(np.diag(overlap), 1.0)
    assert np.allclose(overlap.to_numpy(), overlap.to_numpy().T)


def test_top_heads_by_hand():
    # 2 languages, 2 layers x 3 heads; k = 2 (frac 1/3)
    importance = np.array(
        [
            [[0.1, 0.9, 0.3], [0.8, 0.0, 0.2]],  # en: (0, 1) and (1, 0)
            [[0.5, 0.5, 0.1], [0.0, 0.7, 0.5]],  # de: (1, 1), then a three-way tie at .5
        ]
    )
    sel = top_heads(importance, ["en", "de"], frac=1 / 3)
    assert sel.k == 2
    # the tie goes to the lowest flat index: (0, 0) = flat 0
    assert sel.sets() == {"en": {(0, 1), (1, 0)}, "de": {(1, 1), (0, 0)}}
    table = sel.table.set_index(["language", "rank"])
    assert table.loc[("en", 0), "flat"] == 1 and table.loc[("en", 1), "flat"] == 3
    assert table.loc[("de", 0), "importance"] == 0.7
    assert sel.overlap().loc["en", "de"] == 0
    assert sel.general(min_languages=2).empty
    assert set(sel.general(min_languages=1)["layer"]) == {0, 1}
    assert top_head_count(32, 32) == 20
    assert top_head_count(4, 4) == 1  # int(0.32) would be 0: at least one head


def test_importance_table_is_tidy():
    importance = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    table = importance_table(importance, ["en", "de"])
    assert len(table) == 12
    row = table.set_index(["language", "layer", "head"]).loc[("de", 1, 2), "importance"]
    assert row == importance[1, 1, 2]


def test_bad_importance_is_refused():
    importance = np.ones((2, 2, 3))
    importance[1, 0, 2] = np.nan
    with pytest.raises(DataError, match=r"language de, layer 0, head 2"):
        top_heads(importance, ["en", "de"])
    with pytest.raises(DataError, match=r"\[languages, layers, heads\]"):
        top_heads(np.ones((2, 6)), ["en", "de"])
    with pytest.raises(DataError, match="3 language codes for 2 rows"):
        top_heads(np.ones((2, 2, 3)), ["en", "de", "sw"])
    with pytest.raises(ConfigError, match="pass `languages`"):
        top_heads(np.ones((2, 2, 3)))
    with pytest.raises(ConfigError, match="min_languages"):
        top_heads(np.ones((2, 2, 3)), ["en", "de"]).general(min_languages=3)
