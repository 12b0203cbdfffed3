"""What a model read of each fact in each language, and the exposure class of every item.

The organism records, for every (fact, language), how many statements and question-answer
lines of that fact it read in that language (`Mixture.exposure()`, saved with the checkpoint
as `exposure.parquet`; fine-tuned checkpoints find it through their manifests' parents).
Evaluation splits accuracy by the class of each item:
- `exposed`: the model read the fact in that language;
- `english_only`: it did not, and the answer is spelt differently from English's, so only
  knowledge transferred from English can answer it;
- `same_label`: it did not, but the answer is spelt as in English, so copying an English
  name can answer it (reported apart, so it does not inflate transfer).
English items are always `exposed`.

    table = item_exposure(read_exposure(checkpoint), facts)   # fact_id, language, exposure
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from interp.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from interp.facts.schema import FactSet

EXPOSURE_FILE = "exposure.parquet"
_MAX_PARENTS = 32  # a manifest chain longer than this is a loop


def find_exposure(checkpoint: str | os.PathLike) -> Path | None:
    """The exposure file of `checkpoint` or of the nearest ancestor that has one (following
    `parent.path` in the manifests); None for models with no recorded pretraining."""
    from interp.train.checkpoints import Manifest

    path = Path(checkpoint)
    for _ in range(_MAX_PARENTS):
        if (path / EXPOSURE_FILE).is_file():
            return path / EXPOSURE_FILE
        manifest = Manifest.find(path)
        if manifest is None or manifest.parent is None:
            return None
        path = Path(manifest.parent)
    return None


def read_exposure(checkpoint: str | os.PathLike) -> pd.DataFrame | None:
    """The exposure table recorded for `checkpoint` (see `find_exposure`), or None."""
    import pandas as pd

    found = find_exposure(checkpoint)
    return None if found is None else pd.read_parquet(found)


def item_exposure(exposure: pd.DataFrame, facts: FactSet) -> pd.DataFrame:
    """The exposure class of every (fact, language) item of `facts` that `exposure` covers.

    `exposure`: fact_id, language, exposed (bool), as `Mixture.exposure()` gives it.
    Returns fact_id, language, exposure (one of `interp.evaluate.metrics.EXPOSURES`).
    """
    import pandas as pd

    missing = [c for c in ("fact_id", "language", "exposed") if c not in exposure.columns]
    if missing:
        raise DataError(
            f"exposure table: missing column(s) {', '.join(missing)}. Fix: use the table "
            "Mixture.exposure() gives (saved with the organism as exposure.parquet)"
        )
    exposed = {
        (str(f), c): bool(e)
        for f, c, e in zip(
            exposure["fact_id"], exposure["language"], exposure["exposed"], strict=True
        )
    }
    rows = []
    for fact in facts:
        english = fact.items.get("en")
        for code, item in fact.items.items():
            read = exposed.get((str(fact.fact_id), code))
            if read is None:
                continue
            if code == "en" or read:
                kind = "exposed"
            elif (
                english is not None
                and item.answer_text.casefold() == english.answer_text.casefold()
            ):
                kind = "same_label"
            else:
                kind = "english_only"
            rows.append((fact.fact_id, code, kind))
    return pd.DataFrame(rows, columns=["fact_id", "language", "exposure"])
