"""Atomic writes and content fingerprints: no partial result ever lands under its final name."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from interp.errors import DataError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(path: Path) -> str:
    # the writer's pid in the name: a later run can tell a dead run's leftover from a live one
    return f".{path.name}.{os.getpid()}."


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and folders that a killed writer of `path` left beside it
    (`.<name>.<pid>.*.tmp` of a pid that no longer runs, and `.<name>.old`); returns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*"):
        rest = candidate.name[len(path.name) + 2 :]
        pid = rest.split(".", 1)[0]
        stale = rest == "old" or (
            candidate.name.endswith(".tmp") and pid.isdigit() and not _alive(int(pid))
        )
        if stale:
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    candidate.unlink()
            removed.append(candidate)
    return removed


def describe_missing(path: str | os.PathLike, *, what: str = "file or folder") -> str:
    """'no such <what> (looked for /abs/path); beside it: <close names>' (or 'the folder ...
    does not exist either'): the message for a path that is not there."""
    import difflib

    path = Path(os.path.expanduser(str(path)))
    message = f"no such {what} (looked for {path.absolute()})"
    parent = path.parent if str(path.parent) else Path(".")
    if parent.is_dir():
        try:
            names = [p.name for p in parent.iterdir() if not p.name.startswith(".")]
        except OSError:
            names = []
        close = difflib.get_close_matches(path.name, names, n=3)
        if close:
            message += f"; beside it: {', '.join(close)}"
    elif str(parent) not in ("", "."):
        message += f"; the folder {parent} does not exist either"
    return message


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename over `path` (with the
    permissions the user's umask gives a new file, not mkstemp's 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
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
    and `path` is left as it was; what a killed run left beside `path` is removed first.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DataError(
            f"{path} already exists. Fix: choose another output folder or pass --overwrite"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
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


# ---------------------------------------------------------------------------------------------
# state files: tensors and JSON in one safetensors file, never a pickle

_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


def save_state_file(path: str | os.PathLike, state: Any) -> Path:
    """Save a tree of dicts, lists, tuples, scalars, strings and torch tensors (a training
    state: model, optimizer, scheduler, RNG) as one safetensors file, atomically: the tensors
    as tensors, the rest as JSON in the header. Loading it runs no code (unlike a pickle)."""
    from safetensors.torch import save

    tensors: dict[str, Any] = {}

    def encode(value: Any) -> Any:
        if hasattr(value, "detach") and hasattr(value, "dtype"):
            key = str(len(tensors))
            tensors[key] = value.detach().cpu().clone().contiguous()  # no shared storage
            return {_TENSOR: key}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: encode(v) for k, v in value.items()}
            return {_ITEMS: [[encode(k), encode(v)] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"save_state_file: cannot store a {type(value).__name__}")

    tree = json.dumps(encode(state))
    return atomic_write_bytes(path, save(tensors, metadata={"tree": tree}))


def load_state_file(path: str | os.PathLike, *, fix: str) -> Any:
    """Read back `save_state_file`'s tree. A file that is not one (a pickle, a truncated or
    foreign file) is a DataError naming it, with `fix`."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            tree = (handle.metadata() or {}).get("tree")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        if tree is None:
            raise ValueError("no state tree in its header")
        encoded = json.loads(tree)
    except Exception as err:  # safetensors raises its own error types
        raise DataError(
            f"{path}: not a training state this version wrote ({type(err).__name__}: "
            f"{str(err)[:120]}); it is not loaded. Fix: {fix}"
        ) from err

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if _TENSOR in value:
                return tensors[value[_TENSOR]]
            if _TUPLE in value:
                return tuple(decode(v) for v in value[_TUPLE])
            if _ITEMS in value:
                return {decode(k): decode(v) for k, v in value[_ITEMS]}
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    try:
        return decode(encoded)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: its state tree is damaged ({err}). Fix: {fix}") from err
