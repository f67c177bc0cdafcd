"""A config's ``imports``: the modules that register a run's own agents or environments."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from drivetrain.train import fields

__all__ = ["import_modules"]


def import_modules(names: Any) -> None:
    """Imports ``config.imports`` (see the field); ConfigError naming a module that cannot be imported."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise fields.ConfigError(f"imports: expected a list of module names, got {names!r}")
    if names and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # a module in the working directory, as `python -m` finds it
    for name in names:
        if not isinstance(name, str) or not name:
            raise fields.ConfigError(f"imports: expected module names, got {name!r}")
        try:
            if name.endswith(".py") or os.sep in name:  # a module beside a preset file, by its path
                _import_file(Path(name))
            else:
                importlib.import_module(name)
        except (ImportError, OSError) as e:
            raise fields.ConfigError(f"imports: cannot import {name!r} ({type(e).__name__}: {e})") from None


def _import_file(file: Path) -> None:
    """Imports the module (or package, by its ``__init__.py``) at ``file`` under its own name, from
    that file whatever else ``sys.path`` holds; its folder joins ``sys.path`` for what it imports."""
    package = file.name == "__init__.py"
    module = file.parent.name if package else file.stem
    folder = str(file.parent.parent if package else file.parent)
    loaded = sys.modules.get(module)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == file.resolve():
        return
    spec = importlib.util.spec_from_file_location(
        module, file, submodule_search_locations=[str(file.parent)] if package else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no module at {file}")
    if folder not in sys.path:
        sys.path.append(folder)
    imported = importlib.util.module_from_spec(spec)
    sys.modules[module] = imported
    try:
        spec.loader.exec_module(imported)
    except BaseException:
        del sys.modules[module]
        raise
