"""Atomic writes and content fingerprints: no partial result ever lands under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interp.errors import DataError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(
        path, json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n"
    )


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` in one rename.

    An existing `path` is refused unless `overwrite`; on error the temporary folder is removed
    and `path` is left as it was.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(
            f"{path} already exists. Fix: choose another output folder or pass --overwrite"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fingerprint(*parts: Any) -> str:
    """A short content hash of JSON-serialisable parts (stable across runs and machines)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


def file_fingerprint(path: str | os.PathLike) -> str:
    """Hash of a file's bytes, or of every file below a folder (names and bytes)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path.parent if path.is_file() else path)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def checkpoint_fingerprint(path: str | os.PathLike) -> str:
    """A cheap identity of a model folder: its config, manifest and the names, sizes and
    modification times of its weight files (hashing 15 GB of 7B weights would take minutes)."""
    path = Path(path)
    if not path.is_dir():
        return fingerprint("hub-or-missing", str(path))
    parts = []
    for name in ("config.json", "manifest.json"):
        file = path / name
        parts.append(file.read_text(encoding="utf-8") if file.is_file() else None)
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        stat = file.stat()
        parts.append((file.name, stat.st_size, stat.st_mtime_ns))
    return fingerprint("checkpoint", parts)
