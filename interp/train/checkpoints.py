"""Checkpoint folders and their manifests: `checkpoints/<run>/<name>/` = an HF model folder plus
`manifest.json` (parent, data fingerprint, config, seed, steps, wall time, versions, metrics).

A checkpoint lands in one rename (`atomic_directory`), so a folder with a manifest is always
complete; an existing one is refused unless `overwrite`. Work in progress (trainer state for
resuming) lives in `<name>.partial/` beside it until the run finishes.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from interp.errors import DataError, ModelError, located
from interp.io import atomic_directory, atomic_write_json

MANIFEST = "manifest.json"
VERSIONED_PACKAGES = (
    "interp",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
)


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            versions[name] = version(name)
    return versions


def partial_dir(out_dir: str | os.PathLike) -> Path:
    """Where a run keeps its resumable state until the checkpoint lands."""
    out = Path(out_dir)
    return out.with_name(out.name + ".partial")


def check_output(out_dir: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse to start a run whose output exists, unless `overwrite`."""
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise DataError(
            f"{out} already exists. Fix: pass --overwrite to replace it, or choose another run/name"
        )
    return out


def read_manifest(checkpoint: str | os.PathLike) -> dict[str, Any]:
    path = Path(checkpoint) / MANIFEST
    if not path.is_file():
        raise ModelError(
            f"{checkpoint}: no {MANIFEST} here, so this is not a finished interp checkpoint. "
            "Fix: point at a folder written by `interp train ...`, or at a plain HF model folder "
            "where a manifest is not needed"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def require_checkpoint(path: str | os.PathLike, role: str = "parent checkpoint") -> Path:
    """The folder of a parent checkpoint (~ expanded), after the checks that need no model
    (`interp.models.loading.check_checkpoint`: config.json, a supported family, whole weight
    files); a ModelError naming the path, what is wrong and the fix otherwise."""
    from interp.models.loading import check_checkpoint

    text = str(path)
    folder = Path(os.path.expanduser(text))
    if not folder.is_dir():
        what = (
            "is a file, not a checkpoint folder"
            if folder.exists()
            else f"does not exist (no such checkpoint folder: looked for {folder.absolute()})"
        )
        raise ModelError(
            located(
                f"the {role} {what}",
                source=text,
                fix="train it first (e.g. `interp train organism`) or give the right path",
            )
        )
    check_checkpoint(folder)
    return folder


def save_checkpoint(
    model: Any,
    tokenizer: Any,
    out_dir: str | os.PathLike,
    manifest: dict[str, Any],
    *,
    overwrite: bool = False,
    tables: dict[str, Any] | None = None,
) -> Path:
    """Save model + tokenizer + manifest into `out_dir` in one rename, then drop `.partial/`.

    `tables`: file name -> pandas DataFrame, written as parquet into the same folder."""
    import shutil

    out = Path(out_dir)
    full = {
        "name": out.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
        **manifest,
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, table in (tables or {}).items():
            table.to_parquet(tmp / name, index=False)
        atomic_write_json(tmp / MANIFEST, full)
    shutil.rmtree(partial_dir(out), ignore_errors=True)
    return out
