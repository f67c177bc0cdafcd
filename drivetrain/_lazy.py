"""Lazy exports of a package's ``__init__`` (PEP 562 module ``__getattr__``).

A package lists which of its modules defines each public name; a name is imported the
first time it is read (``pkg.Name`` or ``from pkg import Name``) and then kept in the
package's namespace, so the second read costs nothing. Importing the package itself
imports none of those modules, which keeps ``drivetrain --help`` and ``import drivetrain``
free of PyTorch, Gymnasium, TensorBoard and matplotlib until a command needs them::

    __getattr__, __dir__ = lazy_exports(
        __name__,
        {".agent": ("DQN",), ".config": ("DQNConfig",)},
        submodules=("presets",),
    )

``submodules`` are subpackages or modules that are themselves public attributes
(``drivetrain.train.presets``). A name exported from the submodule of the same name
(``drivetrain.envs.make``, the function in ``drivetrain/envs/make.py``) stays that name
when the submodule is imported later (Python would otherwise bind the module over it).
Type checkers see the names through an ``if TYPE_CHECKING:`` block of ordinary imports
next to the call.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


class _SubmoduleKeepsName(types.ModuleType):
    """A package where importing submodule ``.x`` does not rebind the exported name ``x``."""

    def __setattr__(self, name: str, value: Any) -> None:
        shadowed = vars(self).get("_shadowed", frozenset())
        if (
            name in shadowed
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            return
        super().__setattr__(name, value)


def lazy_exports(
    package: str,
    modules: Mapping[str, Iterable[str]],
    submodules: Iterable[str] | Mapping[str, str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Returns ``(__getattr__, __dir__)`` for ``package``.

    ``modules`` maps a module (relative to ``package``, e.g. ``".agent"``, or absolute)
    to the names it exports; ``submodules`` names modules that are attributes, either
    ``package``'s own (``"presets"``) or, as a mapping, any module under a name
    (``{"metrics": "drivetrain.core.metrics"}``). Reading any other name raises
    :class:`AttributeError`, as for an ordinary module.
    """
    where = {name: module for module, names in modules.items() for name in names}
    subs = (
        dict(submodules)
        if isinstance(submodules, Mapping)
        else {name: f"{package}.{name}" for name in submodules}
    )
    shadowed = frozenset(
        name
        for name, module in where.items()
        if importlib.util.resolve_name(module, package) == f"{package}.{name}"
    )
    if shadowed:
        module_object = sys.modules[package]
        module_object.__class__ = _SubmoduleKeepsName
        vars(module_object)["_shadowed"] = shadowed

    def getattr_(name: str) -> Any:
        if name in subs:
            value: Any = importlib.import_module(subs[name])
        elif name in where:
            value = getattr(importlib.import_module(where[name], package), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where, *subs})

    return getattr_, dir_
