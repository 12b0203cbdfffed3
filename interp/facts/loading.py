"""One way to get facts for any command: a PolyFact path if given, else the built-in world."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_WORLD = Path("data/world")


def load_facts(
    path: str | os.PathLike | None = None, *, languages=None, skip_invalid: bool = False
):
    """Facts from `path` (PolyFact files, folder, `datasets` folder or hub id); without a path,
    the world written by `interp facts build` if it is there, else the world built in memory
    (about a second)."""
    from interp.facts.polyfact import read_polyfact

    if path is not None:
        return read_polyfact(path, languages=languages, skip_invalid=skip_invalid)
    if (DEFAULT_WORLD / "manifest.json").is_file():
        return read_polyfact(DEFAULT_WORLD, languages=languages)
    from interp.facts.world import WorldConfig, build_world

    config = WorldConfig(languages=tuple(languages)) if languages else WorldConfig()
    facts, _report = build_world(config)
    return facts
