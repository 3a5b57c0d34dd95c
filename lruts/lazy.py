"""Public names that load their module on first use, so that importing a package costs only what is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: dict, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """A package's module-level (__getattr__, __dir__) for `exports` (public name -> defining module);
    package: the package's globals(). A name is imported on first use and then bound in the package."""
    name = package["__name__"]

    def __getattr__(attr: str):
        if attr not in exports:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(exports[attr]), attr)
        package[attr] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(package) | set(exports))

    return __getattr__, __dir__
