"""What every agent's compiled update shares: a fresh code object per update, and the options.

Protocol::

    step = compile_update(make_step(...), device)   # torch.compile(fresh_function(...), ...)

:func:`fresh_function` gives each compiled update its own code object (``torch.compile``
caches and counts recompilations per code object, so two agents in one process would
otherwise share one cache and its recompilation limit). :data:`COMPILE_OPTIONS` makes the
compiled function guard on its input tensors only: the networks' structure and attributes,
the closure's settings and the globals are fixed once an update is built, and checking them
on every call costs more than the kernels of a small network's update, and, on the CPU,
generates the function that calls the kernels in C++ (``cpp_wrapper``; other devices keep
torch's Python wrapper, as nothing was measured there). :func:`compile_update` puts the three
together.

An agent's ``compile`` setting is ``True``, ``False`` or ``"auto"``; :func:`resolve_compile`
turns it into whether the agent compiles: ``True`` needs a C++ compiler (a ``RuntimeError``
naming the agent otherwise, :func:`check_compiler`), ``"auto"`` compiles on the CPU when one
is found and trains eagerly otherwise (a warning says so, once per process) and on other
devices, where the compiled updates have not been measured.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any, Literal

import torch

__all__ = [
    "COMPILE_OPTIONS",
    "CompileSetting",
    "check_compiler",
    "compile_update",
    "fresh_function",
    "functional_call_of",
    "resolve_compile",
]

CompileSetting = bool | Literal["auto"]
"""An agent's ``compile``: ``True``, ``False`` or ``"auto"`` (see :func:`resolve_compile`)."""


def resolve_compile(
    setting: CompileSetting, device: str | torch.device, owner: str, supported: bool = True
) -> bool:
    """Whether an agent with ``compile=setting`` on ``device`` runs its compiled update.

    ``True`` is checked for a C++ compiler (:func:`check_compiler`); ``"auto"`` is ``True`` on the
    CPU when a compiler is found, and ``False`` otherwise: without one (a ``UserWarning`` says
    what it costs, once per process), on other devices, where the compiled update has not been
    measured against the eager one, and where the agent has no compiled update for its networks
    (``supported=False``: PPO's recurrent networks), which it refuses when ``setting`` is ``True``.
    """
    on_cpu = torch.device(device).type == "cpu"
    if setting != "auto":
        if type(setting).__name__ not in ("bool", "bool_"):  # Python's or NumPy's
            raise ValueError(f"{owner}: compile must be True, False or 'auto', got {setting!r}")
        if setting:
            check_compiler(owner)
        compiles = bool(setting)
    elif not supported or not on_cpu:
        compiles = False
    elif _compiler_missing() is not None:
        _warn_eager_once()
        compiles = False
    else:
        compiles = True
    if compiles and on_cpu:
        _probe_cpu_in_background()
    return compiles


@functools.cache
def _probe_cpu_in_background() -> None:
    """Starts inductor's probe of the CPU's vector instructions in a daemon thread (once per process).

    Before it builds its first CPU kernels, inductor compiles a test library for each kind of
    vector instructions the CPU lists and loads each in a new Python process, to pick the widest
    that works: about a second, paid on the first compiled call of every process, however warm
    its cache. Started when an agent resolves to compile on the CPU, the probe runs beside what
    comes before the first update (the environments, the replay's warm-up): the thread mostly
    waits for its child processes, without the GIL. The first compilation reads the probe's
    cached answer, or probes itself when it comes first. The modules the probe needs are
    imported here, so that the thread imports nothing beside the main thread.
    """
    try:
        import torch._inductor.codecache
        import torch._inductor.cpp_builder  # noqa: F401
        from torch._inductor.cpu_vec_isa import pick_vec_isa
    except ImportError:  # moved in another torch version: the first compilation probes
        return

    def probe() -> None:
        with contextlib.suppress(Exception):  # the first compilation probes again and reports it
            pick_vec_isa()

    threading.Thread(target=probe, name="drivetrain-cpu-probe", daemon=True).start()


@functools.cache
def _compiler_missing() -> str | None:
    """Why ``torch.compile`` cannot build CPU kernels here, or None (asked once per process)."""
    try:
        check_compiler("compile")
    except RuntimeError as e:
        return str(e)
    return None


@functools.cache
def _warn_eager_once() -> None:
    warnings.warn(
        "compile='auto' trains eagerly: no C++ compiler was found for torch.compile (install g++ or "
        "set $CXX for the compiled updates, ~1.2-2x faster on the CPU; compile=False silences this)",
        UserWarning,
        stacklevel=4,
    )


def check_compiler(owner: str) -> None:
    """CompilerMissingError naming ``owner`` when ``torch.compile`` has no C++ compiler to build with.

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
        cxx = os.environ.get("CXX")
        found = (
            f"$CXX={cxx} was not found or does not run"
            if cxx
            else "none was found: install g++ (or set $CXX to one)"
        )
        raise CompilerMissingError(
            f"{owner}: compile=True needs a C++ compiler (torch.compile builds the update's kernels "
            f"with it) and {found}, or use compile=False"
        ) from None


class CompilerMissingError(RuntimeError, ValueError):
    """``compile=True`` on a machine without a C++ compiler: a setting that cannot work here (a
    ValueError too, so that a run that cannot be built says so in one line)."""


def functional_call_of(*modules: torch.nn.Module) -> Callable[..., Any]:
    """``torch.func.functional_call`` for ``modules``, tying weights only where one of them ties some.

    By default ``functional_call`` looks for tensors that two names of a module share, on every
    call, so that replacing one replaces both; traced by ``torch.compile`` that search is Python
    code too (about a quarter of a small DQN update's trace). Where no parameter or buffer of the
    modules is shared between two names there is nothing to tie, and it is left out.
    """
    tied = any(_shares_tensors(module) for module in modules)
    return functools.partial(torch.func.functional_call, tie_weights=tied)


def _shares_tensors(module: torch.nn.Module) -> bool:
    named = [
        *module.named_parameters(remove_duplicate=False),
        *module.named_buffers(remove_duplicate=False),
    ]
    return len({id(tensor) for _, tensor in named}) != len(named)


def fresh_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its own code object (see the module docstring)."""
    code = fn.__code__.replace()
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


COMPILE_OPTIONS: dict[str, Any] = {
    "guard_filter_fn": torch.compiler.keep_tensor_guards_unsafe,
    "size_asserts": False,  # debugging checks of every intermediate's shape, on each call
    # The generated function that calls the kernels in C++ rather than Python: a small network's
    # update calls a dozen matrix products and kernels, each costing microseconds from Python.
    # On the CPU only (compile_update): it has not been measured, nor run, on other devices.
    "cpp_wrapper": True,
}


def compile_update(step: Callable[..., Any], device: torch.device | str) -> Callable[..., Any]:
    """``step`` as one ``torch.compile``-d graph for tensors on ``device`` (compiled on its first
    call): its own code object, :data:`COMPILE_OPTIONS`, and torch's default Python wrapper of the
    kernels off the CPU."""
    options = dict(COMPILE_OPTIONS)
    if torch.device(device).type != "cpu":
        del options["cpp_wrapper"]
    compiled: Callable[..., Any] = torch.compile(
        fresh_function(step), fullgraph=True, dynamic=False, options=options
    )
    return compiled
