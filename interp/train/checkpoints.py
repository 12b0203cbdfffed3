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
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Manifest:
    """What every trained checkpoint records, the organism and each regime alike, typed.

    kind: "organism" or the regime (cpt, sft, grpo, ...). parent: the parent checkpoint's
    path (None: trained from scratch). final_loss: the last logged training loss.
    learning_curve: rows of step, loss, reward, train_accuracy. compute: the precision,
    threads and device it trained with. `raw` keeps every key the file has.
    """

    kind: str
    parent: str | None
    data_fingerprint: str | None
    config: dict[str, Any]
    seed: int | None
    steps: int | None
    wall_time_s: float | None
    final_loss: float | None
    learning_curve: list[dict[str, Any]]
    compute: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Manifest:
        parent = values.get("parent")
        if isinstance(parent, dict):
            parent = parent.get("path")
        return cls(
            kind=str(values.get("kind") or values.get("regime") or "unknown"),
            parent=str(parent) if parent else None,
            data_fingerprint=values.get("data_fingerprint"),
            config=dict(values.get("config") or {}),
            seed=values.get("seed"),
            steps=values.get("steps"),
            wall_time_s=values.get("wall_time_s"),
            final_loss=values.get("final_loss"),
            learning_curve=list(values.get("learning_curve") or []),
            compute=values.get("compute") or None,
            raw=dict(values),
        )

    @classmethod
    def find(cls, checkpoint: str | os.PathLike) -> Manifest | None:
        """The manifest of a checkpoint folder; None where there is none (a plain HF model)
        or it cannot be read (a damaged one is then treated as absent, never trusted)."""
        path = Path(checkpoint) / MANIFEST
        if not path.is_file():
            return None
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls.from_dict(values) if isinstance(values, dict) else None


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
    Manifest.from_dict(manifest)  # the shared keys read back (kind, parent, steps, ...)
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
