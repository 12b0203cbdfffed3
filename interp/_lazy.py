"""Lazy package exports: names load from their submodule on first use (PEP 562), so importing
a package (and `interp --help`) never pulls in torch, transformers or matplotlib."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str] | Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`(__getattr__, __dir__, __all__)` for `package`.

    `exports`: {name: submodule} or {submodule: [names]}.
    """
    where: dict[str, str] = {}
    for key, value in exports.items():
        if isinstance(value, str):
            where[key] = value
        else:
            where.update({name: key for name in value})
    names = sorted(where)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
