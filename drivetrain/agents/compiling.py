"""What every agent's compiled update shares: a fresh code object per update, and the options.

Protocol::

    step = torch.compile(fresh_function(make_step(...)), fullgraph=True, dynamic=False,
                         options=COMPILE_OPTIONS)

:func:`fresh_function` gives each compiled update its own code object (``torch.compile``
caches and counts recompilations per code object, so two agents in one process would
otherwise share one cache and its recompilation limit). :data:`COMPILE_OPTIONS` makes the
compiled function guard on its input tensors only: the networks' structure and attributes,
the closure's settings and the globals are fixed once an update is built, and checking them
on every call costs more than the kernels of a small network's update, and generates the
function that calls the kernels in C++ (``cpp_wrapper``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["COMPILE_OPTIONS", "check_compiler", "fresh_function"]


def check_compiler(owner: str) -> None:
    """RuntimeError naming ``owner`` when ``torch.compile`` has no C++ compiler to build with.

    Inductor compiles the update's CPU kernels and the function that calls them
    (``cpp_wrapper``) with the C++ compiler of ``torch._inductor.config.cpp.cxx`` (``$CXX``,
    else ``g++``); without one the first update would fail deep inside the compilation.
    """
    try:
        from torch._inductor import exc
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # moved in another torch version: the compilation itself says what is missing
        return
    try:
        get_cpp_compiler()
    except exc.InvalidCxxCompiler:
        raise RuntimeError(
            f"{owner}: compile=True needs a C++ compiler (torch.compile builds the update's kernels "
            "with it) and none was found: install g++ (or set $CXX to one), or use compile=False"
        ) from None


def fresh_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its own code object (see the module docstring)."""
    code = fn.__code__.replace()
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


COMPILE_OPTIONS: dict[str, Any] = {
    "guard_filter_fn": torch.compiler.keep_tensor_guards_unsafe,
    "size_asserts": False,  # debugging checks of every intermediate's shape, on each call
    # The generated function that calls the kernels in C++ rather than Python: a small network's
    # update calls a dozen matrix products and kernels, each costing microseconds from Python.
    "cpp_wrapper": True,
}
