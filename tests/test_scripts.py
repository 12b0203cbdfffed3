"""Script or language: each specific neuron's class, against a hand count."""

from __future__ import annotations

import numpy as np

from interp.specialization.lape import NeuronSelection
from interp.specialization.scripts import (
    SCRIPT_CLASSES,
    neuron_classes,
    script_class_counts,
    script_class_table,
    script_family,
)

LANGS = ("en", "de", "ar", "ja", "zh")


def _mask() -> np.ndarray:
    mask = np.zeros((len(LANGS), 1, 7), dtype=bool)
    mask[1, 0, 0] = True  # de alone, Latin shared with en: language-level
    mask[[0, 1], 0, 1] = True  # en + de: script-level (Latin)
    mask[2, 0, 2] = True  # ar alone, the only Arabic-script language here: cannot tell
    mask[[0, 2], 0, 3] = True  # en + ar: mixed scripts
    mask[[3, 4], 0, 4] = True  # ja + zh: script-level (Han)
    mask[3, 0, 5] = True  # ja alone, Han shared with zh: language-level
    return mask  # unit 6: not selected


def test_classes_by_hand():
    assert script_family("ja") == script_family("zh") == "Hani" != script_family("en")
    counts = dict(zip(SCRIPT_CLASSES, script_class_counts(_mask(), LANGS), strict=True))
    assert counts == {"language": 2, "script": 2, "script-or-language": 1, "mixed": 1}
    # the same neurons among languages where Latin is not shared: de is then alone in it
    only = script_class_counts(_mask()[[1, 2]], ("de", "ar"))
    assert dict(zip(SCRIPT_CLASSES, only, strict=True))["script-or-language"] == 4  # 0-3


def test_table_intervals_and_per_neuron_rows():
    mask = _mask()
    samples = np.stack([script_class_counts(mask, LANGS)] * 5)
    table = script_class_table(mask, samples, LANGS).set_index("class")
    assert (table["lo"] == table["count"]).all() and (table["hi"] == table["count"]).all()
    assert script_class_table(mask, None, LANGS)["lo"].isna().all()
    rates = np.full(mask.shape, 0.1)
    selection = NeuronSelection.from_mask(mask, rates, LANGS, scorer="test")
    rows = neuron_classes(selection).set_index("neuron")
    assert rows.loc[1, "languages"] == "en de" and rows.loc[1, "class"] == "script"
    assert rows.loc[4, "scripts"] == "Hani" and rows.loc[3, "class"] == "mixed"
    assert 6 not in rows.index
