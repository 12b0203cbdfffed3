"""What neuron and head selections share: per-language sets of (layer, unit).

`NeuronSelection` (lape.py: units are MLP neurons) and `HeadSelection` (heads.py: attention
heads) both hold a tidy `table` with columns language, layer and their unit column, and read
it the same way here: `sets()`, `mask()`, `len()`, `shape`. Code that compares or ablates
selections (interp.compare, interp.specialization.ablation) takes either through this.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class UnitSelection:
    """A base for selections: subclasses are dataclasses with `table`, `languages`,
    `num_layers` and name their unit column (`unit`) and unit count (`num_units`)."""

    unit: ClassVar[str]  # "neuron" or "head": the table's unit column

    @property
    def num_units(self) -> int:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int]:
        """(layers, units per layer)."""
        return int(self.num_layers), int(self.num_units)

    def __len__(self) -> int:
        return len(self.table)

    def sets(self) -> dict[str, set[tuple[int, int]]]:
        """{language: set of (layer, unit)}, every language present (possibly empty)."""
        out: dict[str, set[tuple[int, int]]] = {lang: set() for lang in self.languages}
        columns = ["language", "layer", self.unit]
        for lang, layer, unit in self.table[columns].itertuples(index=False):
            out[lang].add((int(layer), int(unit)))
        return out

    def mask(self) -> np.ndarray:
        """Boolean `[languages, layers, units]`, True for each language's selected units."""
        mask = np.zeros((len(self.languages), *self.shape), dtype=bool)
        index = {lang: i for i, lang in enumerate(self.languages)}
        lang = self.table["language"].map(index).to_numpy(dtype=np.int64)
        mask[lang, self.table["layer"].to_numpy(), self.table[self.unit].to_numpy()] = True
        return mask
