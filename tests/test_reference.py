"""Import of the PolyFact release's LAPE, LAHIS and dark-diagonal results.

Expectations are read straight from the JSON and .pth files, independently of the loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.errors import DataError
from interp.languages import TRAINED
from interp.specialization import (
    find_reference_dir,
    ks_distance,
    lahis_checkpoints,
    lape_checkpoints,
    load_dark_diagonal,
    load_lahis,
    load_lahis_meta,
    load_lape,
    load_lape_meta,
)

_ROOT = Path(__file__).resolve().parents[1]
_RELATIVE = Path("shared") / "reference" / "polyfact-results"
RESULTS = next(
    (p for p in (_ROOT.parent / _RELATIVE, _ROOT / _RELATIVE) if p.is_dir()),
    _ROOT.parent / _RELATIVE,
)
pytestmark = pytest.mark.skipif(not RESULTS.is_dir(), reason=f"no reference data at {RESULTS}")

LAPE_CHECKPOINTS = sorted(p.name for p in (RESULTS / "lape").iterdir()) if RESULTS.is_dir() else []


def test_default_directory_is_found():
    assert find_reference_dir().resolve() == RESULTS.resolve()
    assert lape_checkpoints() == LAPE_CHECKPOINTS
    assert "olmo-base" in lahis_checkpoints()
    assert set(lahis_checkpoints(recomputed=True)) == {"olmo-base", "olmo-sft-10k", "olmo-grpo"}


@pytest.mark.parametrize("checkpoint", LAPE_CHECKPOINTS)
def test_lape_import_matches_the_json(checkpoint):
    folder = RESULTS / "lape" / checkpoint
    raw = json.loads((folder / "lape_results.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    sel = load_lape(checkpoint, RESULTS)

    direct = {lang: 0 for lang in meta["langs"]}
    for per_language in raw.values():
        for lang, neurons in per_language.items():
            direct[lang] += len(neurons)
    assert dict(zip(*sel.per_language().to_dict("list").values(), strict=True)) == direct
    assert (
        len(sel)
        == meta["n_selected"]
        == int(meta["num_layers"] * meta["intermediate_size"] * meta["top_frac"])
    )
    assert sel.table["neuron"].between(0, meta["intermediate_size"] - 1).all()
    assert sel.num_layers == meta["num_layers"]
    # layer keys are 1-based: key "k" becomes layer k - 1
    expected = {lang: set() for lang in meta["langs"]}
    for key, per_language in raw.items():
        for lang, neurons in per_language.items():
            expected[lang] |= {(int(key) - 1, n) for n in neurons}
    assert sel.sets() == expected
    assert sel.table["layer"].min() >= 0 and sel.table["layer"].max() <= meta["num_layers"] - 1
    # the paper's variant gives each neuron exactly one language
    assert not sel.table.duplicated(["layer", "neuron"]).any()
    assert load_lape_meta(checkpoint, RESULTS)["n_selected"] == meta["n_selected"]


def test_lape_reference_english_dominates_olmo_base():
    # the published observation behind the paper's log-scale Fig. 5: English holds about half
    # of OLMo-2's specialised neurons (1762 of 3522 in the released file)
    counts = load_lape("olmo-base", RESULTS).per_language().set_index("language")["count"]
    assert counts["en"] == 1762 and counts.sum() == 3522
    assert counts.idxmax() == "en"


def test_ks_between_reference_checkpoints_matches_scipy():
    from scipy.stats import ks_2samp

    base, grpo = load_lape("olmo-base", RESULTS), load_lape("olmo-grpo", RESULTS)
    expected = ks_2samp(base.table["layer"], grpo.table["layer"]).statistic
    assert ks_distance(base, grpo) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("recomputed", "checkpoint"),
    [(False, "olmo-base"), (False, "olmo-sft"), (True, "olmo-grpo")],
)
def test_lahis_import_in_paper_order(recomputed, checkpoint):
    folder = RESULTS / ("lahis-recomputed" if recomputed else "lahis") / checkpoint
    loaded = load_lahis(checkpoint, RESULTS, recomputed=recomputed)
    assert loaded.shape == (12, 32, 32) and loaded.dtype == torch.float32
    for i, lang in enumerate(
        ["en", "de", "id", "pt", "ar", "bn", "sw", "es", "ru", "fr", "ja", "zh"]
    ):
        direct = torch.load(folder / f"lahis_{lang}.pth", weights_only=True)
        assert torch.equal(loaded[i], direct.float())


def test_lahis_meta():
    meta = load_lahis_meta("olmo-base", RESULTS)
    assert meta["num_layers"] == 32 and meta["num_heads"] == 32
    assert tuple(meta["langs"]) == TRAINED


def test_dark_diagonal_table():
    raw = json.loads((RESULTS / "dark-diagonal" / "olmo-base.json").read_text())
    table = load_dark_diagonal("olmo-base", RESULTS)
    assert len(table) == 12 * 12
    row = table.set_index(["masked", "language"])
    for masked in TRAINED:
        for lang in TRAINED:
            assert row.loc[(masked, lang), "masked_ppl"] == raw["masked"][masked][lang]
            assert row.loc[(masked, lang), "baseline"] == raw["baseline"][lang]
    # delta is masked - baseline (published rounded to 2 decimals)
    np.testing.assert_allclose(table["delta"], table["masked_ppl"] - table["baseline"], atol=0.011)


def test_missing_files_name_the_path_and_the_expectation(tmp_path):
    root = tmp_path / "polyfact-results"
    (root / "lape" / "ckpt").mkdir(parents=True)
    (root / "lape" / "ckpt" / "meta.json").write_text(
        json.dumps({"langs": ["en", "de"], "num_layers": 2, "intermediate_size": 8})
    )
    with pytest.raises(DataError, match=r"lape_results\.json: file not found.*1-based"):
        load_lape("ckpt", root)
    with pytest.raises(DataError, match=r"missing/meta\.json: file not found.*n_selected"):
        load_lape("missing", root)

    (root / "lahis" / "ckpt").mkdir(parents=True)
    torch.save(torch.ones(2, 2), root / "lahis" / "ckpt" / "lahis_en.pth")
    with pytest.raises(DataError, match=r"lahis_de\.pth: file not found.*language de"):
        load_lahis("ckpt", root)
    with pytest.raises(DataError, match=r"olmo-base\.json: file not found"):
        load_dark_diagonal("olmo-base", root)
    with pytest.raises(DataError, match="reference directory not found"):
        find_reference_dir(tmp_path / "nowhere")


def test_out_of_range_reference_entries_are_refused(tmp_path):
    root = tmp_path / "polyfact-results"
    folder = root / "lape" / "ckpt"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(
        json.dumps({"langs": ["en", "de"], "num_layers": 2, "intermediate_size": 8})
    )
    (folder / "lape_results.json").write_text(json.dumps({"1": {"en": [3, 8]}}))
    with pytest.raises(DataError, match=r"neuron 8 outside 0\.\.7"):
        load_lape("ckpt", root)
    (folder / "lape_results.json").write_text(json.dumps({"3": {"en": [3]}}))
    with pytest.raises(DataError, match=r"layer 3 outside 1\.\.2"):
        load_lape("ckpt", root)
    (folder / "lape_results.json").write_text(json.dumps({"2": {"en": [3], "de": [1]}}))
    sel = load_lape("ckpt", root)
    assert sel.sets() == {"en": {(1, 3)}, "de": {(1, 1)}}
