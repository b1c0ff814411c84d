"""Names of a package that load their modules on first use (PEP 562), so that importing the
package stays cheap: ``import asm`` loads no numpy, ``import asm.ops`` and ``asm.models``
no torch until a torch name is used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, homes: Mapping[str, str],
               public: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``homes`` maps each lazy name to the module
    that defines it (a name whose home is ``package.name`` is that submodule itself); a name
    is imported once, then kept in the package. ``public``: the package's ``__all__``."""
    public = list(public)

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(home)
        value = module if home == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
