"""Shared fixtures. The suite runs offline: no model hub, no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def _find_shared() -> Path | None:
    for base in (REPO.parent / "shared", REPO / "shared", REPO.parent.parent / "shared"):
        if (base / "reference").is_dir():
            return base
    return None


SHARED = _find_shared()


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two threads
    per tiny matmul spend most of their time waiting on each other (5-20x slower); the previous
    setting is restored at the end."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """`../shared/reference` beside the checkout (the paper's released data and results)."""
    if SHARED is None:
        pytest.skip("../shared/reference is not beside this checkout")
    return SHARED / "reference"


@pytest.fixture(scope="session")
def world():
    """The full offline world, built once per test run."""
    from interp.facts import build_world

    facts, report = build_world()
    return facts, report


def pick_facts(facts, languages, wanted: dict[str, int]):
    """The first `wanted[split]` facts of each split, restricted to `languages`."""
    from dataclasses import replace

    from interp.facts import FactSet

    picked, left = [], dict(wanted)
    for fact in facts:
        if left.get(fact.split, 0) > 0:
            left[fact.split] -= 1
            picked.append(replace(fact, items={c: fact.items[c] for c in languages}))
    return FactSet(picked, tuple(languages))
