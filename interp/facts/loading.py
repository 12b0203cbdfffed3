"""One way to get facts for any command: a PolyFact path if given, else the built-in world.

Also the two checks every reader of user files shares (the fact readers and `interp.corpora`):
`read_text` (UTF-8 with or without a byte-order mark, anything else a located error) and
`resolve_source` (a path here, a hub id, or a clear "no such file").
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

from interp.errors import DataError, located

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


# ----------------------------------------------------------------------------- reading text
_OTHER_ENCODINGS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_RESAVE = "re-save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`, or 'UTF-8' in your editor's Save as)"


def read_text(path: str | os.PathLike) -> str:
    """The text of a file that must be UTF-8. A UTF-8 byte-order mark at the start is accepted
    and removed; UTF-16/32, binary content (a NUL byte) and invalid UTF-8 are `DataError`s that
    name the file, the line and the byte offset, and say how to re-save it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(
            located(
                f"cannot be read ({err.strerror or err})",
                source=str(path),
                fix="check that it is a readable file",
            )
        ) from None
    for bom, name in _OTHER_ENCODINGS:
        if data.startswith(bom):
            raise DataError(
                located(
                    f"the file is {name}-encoded (it starts with a {name} byte-order mark), "
                    "not UTF-8",
                    source=str(path),
                    fix=_RESAVE,
                )
            )
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    nul = data.find(b"\x00", start)
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(
            located(
                f"binary content (a NUL byte at byte offset {nul}), not UTF-8 text",
                source=str(path),
                where=f"line {line}",
                fix="point at the text file itself; if it is text in another encoding, " + _RESAVE,
            )
        )
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        bad = data[offset : offset + min(4, err.end - err.start)]
        raise DataError(
            located(
                f"not valid UTF-8 (byte {bad.hex(' ')} at byte offset {offset})",
                source=str(path),
                where=f"line {line}",
                fix=_RESAVE,
            )
        ) from None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text, split at \\n, \\r\\n or \\r only: unlike
    `str.splitlines`, never inside a JSON string (raw U+2028 or U+0085 are legal there)."""
    return _LINE_BREAK.split(text)


# ------------------------------------------------------------------------- paths and hub ids
# A hub id is exactly `owner/name`: nothing that starts with . / ~, no second separator, no
# backslash, no file suffix. Whatever else does not exist here is a missing local path.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_FILE_SUFFIXES = (".json", ".jsonl", ".txt", ".csv", ".tsv", ".parquet", ".arrow")


def may_be_hub_id(source: str | os.PathLike) -> bool:
    """Whether `source`, which does not exist here, may name a hub dataset: `owner/name`, not a
    local-looking path (./x, ../x, /x, ~/x, a\\b, a/b/c, x.json) and `owner` not a folder here."""
    text = str(source)
    if not _HUB_ID.fullmatch(text) or text.lower().endswith(_FILE_SUFFIXES):
        return False
    return not Path(text.split("/")[0]).exists()


def missing_path_error(source: str | os.PathLike, *, what: str = "file or folder") -> DataError:
    """'no such file or folder', with the absolute path looked at and close names beside it."""
    from interp.io import describe_missing

    message = describe_missing(source, what=what)
    return DataError(located(message, source=str(source), fix="check the path"))


def resolve_source(source: str | os.PathLike, *, what: str = "file or folder") -> Path | str:
    """A local `Path` (with ~ expanded) if it exists, the id itself if it may be a hub id, else
    the 'no such file' `DataError`: a local-looking path never reaches a hub loader."""
    path = Path(os.path.expanduser(str(source)))
    if path.exists():
        return path
    if may_be_hub_id(source):
        return str(source)
    raise missing_path_error(source, what=what)


def first_line(err: BaseException, limit: int = 200) -> str:
    """An exception as one short line, for wrapping a third-party error into a `DataError`."""
    text = (str(err).strip().splitlines() or [""])[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
