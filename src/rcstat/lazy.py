"""Lazy package attributes: a package's public names, imported on first use.

The command line imports ``rcstat`` to build its help; importing torch, transformers and kvpress
takes seconds, so packages export their names through :func:`exports` instead of importing them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose ``names`` map to their defining modules."""

    def getattr_(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name]), name)

    def dir_() -> list[str]:
        return sorted(names)

    return getattr_, dir_
