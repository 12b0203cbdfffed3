"""Script or language: is a specific neuron tied to a writing system that several languages
share, or to one language within it?

    counts = script_class_counts(mask, languages)          # per class, for one selection mask
    table = script_class_table(observed_mask, samples, languages)   # with bootstrap intervals
    neuron_classes(selection)                              # per neuron: languages, scripts, class

LAPE-style "language neurons" are largely script neurons (romanising a language gives
near-disjoint units), so a claim that a regime made neurons less language-specific has to say
which. A neuron assigned to the language set A (a budget-free scorer such as null-fdr or the
absolute rule may assign several) is, among the analysed languages:
- `language`: one language of a script that other analysed languages share (a German-only
  neuron among English, French, ...): language-level for certain;
- `script`: two or more languages, all of one shared script (German and French): script-level;
- `script-or-language`: one language whose script no other analysed language has (Arabic,
  Bengali, Russian among the paper's 12): script and language cannot be told apart here;
- `mixed`: languages of different scripts.
Scripts are ISO 15924 from the language registry, with Japanese (Jpan) and Chinese (Hans,
Hant) as one family, Han (`Hani`): they share the Han characters.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.intervals import percentile_interval
from interp.languages import LANGUAGES

SCRIPT_CLASSES = ("language", "script", "script-or-language", "mixed")
_FAMILIES = {"Jpan": "Hani", "Hans": "Hani", "Hant": "Hani"}


def script_family(code: str) -> str:
    """The writing system a language is counted under (Japanese and Chinese: Han)."""
    script = LANGUAGES[code].script
    return _FAMILIES.get(script, script)


def _classes(mask: np.ndarray, languages: Sequence[str]) -> np.ndarray:
    """Class index per unit (-1: not selected), for a mask `[languages, ...]`."""
    flat = np.asarray(mask, dtype=bool).reshape(len(languages), -1)
    families = sorted({script_family(c) for c in languages})
    member = np.array([[script_family(c) == f for c in languages] for f in families], dtype=int)
    per_family = member @ flat  # [families, units]: assigned languages of each family
    assigned = flat.sum(axis=0)
    used = (per_family > 0).sum(axis=0)
    shared = member.sum(axis=1)[per_family.argmax(axis=0)] > 1  # its family has others too
    out = np.full(flat.shape[1], -1)
    out[(assigned == 1) & shared] = SCRIPT_CLASSES.index("language")
    out[(assigned >= 2) & (used == 1)] = SCRIPT_CLASSES.index("script")
    out[(assigned == 1) & ~shared] = SCRIPT_CLASSES.index("script-or-language")
    out[used > 1] = SCRIPT_CLASSES.index("mixed")
    return out


def script_class_counts(mask: np.ndarray, languages: Sequence[str]) -> np.ndarray:
    """Selected units per class, in the order of `SCRIPT_CLASSES`."""
    classes = _classes(mask, languages)
    return np.bincount(classes[classes >= 0], minlength=len(SCRIPT_CLASSES))


def script_class_table(
    observed: np.ndarray, samples: np.ndarray | None, languages: Sequence[str], ci: float = 0.95
) -> pd.DataFrame:
    """class, count, lo, hi: the observed mask's counts, with the percentile interval of the
    bootstrap replicates' counts `samples` `[n_boot, classes]` (NaN without)."""
    counts = script_class_counts(observed, languages)
    if samples is not None and len(samples):
        lo, hi = percentile_interval(np.asarray(samples, dtype=float), ci)
    else:
        lo = hi = np.full(len(SCRIPT_CLASSES), np.nan)
    return pd.DataFrame({"class": SCRIPT_CLASSES, "count": counts, "lo": lo, "hi": hi})


def neuron_classes(selection) -> pd.DataFrame:
    """One row per selected neuron: layer, neuron, languages, scripts, class."""
    mask = selection.mask()
    languages = tuple(selection.languages)
    classes = _classes(mask, languages).reshape(mask.shape[1:])
    layer, neuron = np.nonzero(classes >= 0)
    rows = []
    for i, j in zip(layer, neuron, strict=True):
        codes = [c for c, on in zip(languages, mask[:, i, j], strict=True) if on]
        rows.append(
            {
                "layer": int(i),
                "neuron": int(j),
                "languages": " ".join(codes),
                "scripts": " ".join(sorted({script_family(c) for c in codes})),
                "class": SCRIPT_CLASSES[classes[i, j]],
            }
        )
    return pd.DataFrame(rows, columns=["layer", "neuron", "languages", "scripts", "class"])
