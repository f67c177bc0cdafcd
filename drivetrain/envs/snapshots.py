"""Snapshots of a Gymnasium environment's whole state, for checkpoints that resume exactly.

``dump(env) -> bytes`` and ``load_into(env, blob)`` capture and restore a wrapped
Gymnasium environment: every wrapper's Python state (frame stacks, counters, life
flags, time limits) and the base environment's state, into the **existing** objects,
so code holding a wrapper sees the restored state.

Two kinds of base environment:

- Plain Python environments (CartPole, ...): the whole chain is pickled.
- Emulators whose Python object does not hold their state (ALE: ``AtariEnv`` pickles its
  constructor arguments through Gymnasium's ``EzPickle``, the game lives in C++): the
  wrappers are pickled with the base environment and its ``ale`` handle left out (they
  are re-attached to the live objects on load), and the emulator's state is saved with
  ``clone_state(include_rng=True)`` (RAM, CPU, frame counters and the emulator's RNG,
  which drives sticky actions) together with the base's ``np_random`` (no-op starts).
  ``restore_state`` puts it back: the game continues frame for frame.

Other ``EzPickle`` environments (MuJoCo, Box2D) would restart silently if pickled, so
:func:`dump` refuses them with a :class:`TypeError` naming the class.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["dump", "load_into", "restore_in_place"]

_BASE, _ALE = "base-env", "base-env.ale"


def _has_emulator_state(base: Any) -> bool:
    return callable(getattr(base, "clone_state", None)) and callable(getattr(base, "restore_state", None))


class _WrapperPickler(pickle.Pickler):
    """Pickles a wrapper chain, leaving out the live base environment and its emulator handle."""

    def __init__(self, file: io.BytesIO, live: dict[int, str]):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._live = live

    def persistent_id(self, obj: Any) -> str | None:
        return self._live.get(id(obj))


class _WrapperUnpickler(pickle.Unpickler):
    """Unpickles a wrapper chain, re-attaching it to the live base environment."""

    def __init__(self, file: io.BytesIO, live: dict[str, Any]):
        super().__init__(file)
        self._live = live

    def persistent_load(self, pid: Any) -> Any:
        if pid not in self._live:
            raise pickle.UnpicklingError(f"snapshot refers to {pid!r}, which this environment does not have")
        return self._live[pid]


def _live_objects(base: Any) -> dict[str, Any]:
    live = {_BASE: base}
    ale = base.__dict__.get("ale")
    if ale is not None:
        live[_ALE] = ale
    return live


def dump(env: Any) -> bytes:
    """The full state of ``env`` (a wrapped ``gymnasium.Env``); see the module docstring."""
    from gymnasium.utils import EzPickle

    base = env.unwrapped
    if not _has_emulator_state(base):
        if isinstance(base, EzPickle):
            raise TypeError(
                f"{type(base).__name__} pickles its constructor arguments (EzPickle), not its state, "
                "and has no clone_state/restore_state, so its state cannot be saved"
            )
        return pickle.dumps({"kind": "pickle", "env": env}, protocol=pickle.HIGHEST_PROTOCOL)
    buffer = io.BytesIO()
    _WrapperPickler(buffer, {id(obj): key for key, obj in _live_objects(base).items()}).dump(env)
    snapshot = {
        "kind": "emulator",
        "wrappers": buffer.getvalue(),
        "emulator": base.clone_state(include_rng=True),
        "np_random": base.__dict__.get("_np_random"),
        "np_random_seed": base.__dict__.get("_np_random_seed"),
    }
    return pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)


def load_into(env: Any, blob: bytes) -> None:
    """Restores a :func:`dump` of an environment built alike into ``env`` (its objects are kept)."""
    snapshot = pickle.loads(blob)
    if not isinstance(snapshot, dict) or "kind" not in snapshot:  # written before snapshots had kinds
        restore_in_place(env, snapshot)
        return
    if snapshot["kind"] == "pickle":
        restore_in_place(env, snapshot["env"])
        return
    base = env.unwrapped
    if not _has_emulator_state(base):
        raise TypeError(f"snapshot of an emulator, but {type(base).__name__} has no restore_state")
    saved = _WrapperUnpickler(io.BytesIO(snapshot["wrappers"]), _live_objects(base)).load()
    restore_in_place(env, saved)
    base.restore_state(snapshot["emulator"])
    base.__dict__["_np_random"] = snapshot["np_random"]
    base.__dict__["_np_random_seed"] = snapshot["np_random_seed"]


def restore_in_place(env: Any, saved: Any) -> None:
    """Moves the state of ``saved`` into ``env``, wrapper by wrapper, keeping ``env``'s objects.

    Code that holds a reference to one of the wrappers (e.g. a life-loss flag) sees the
    restored state. Each level's attributes are copied except the link to the inner env; an
    attribute that refers to a level of the saved chain (a wrapper that keeps
    ``env.unwrapped``) is pointed at the live level instead.
    """
    levels: list[tuple[Any, Any]] = []
    while env is not saved:
        if type(env) is not type(saved):
            raise TypeError(
                f"GymnasiumEnv.load_state_dict: saved {type(saved).__name__} does not match "
                f"{type(env).__name__}"
            )
        levels.append((env, saved))
        inner = env.__dict__.get("env")
        if inner is None:
            break
        env, saved = inner, saved.__dict__["env"]
    live_of = {id(s): e for e, s in levels}
    for env, saved in levels:
        inner = env.__dict__.get("env")
        env.__dict__.update(
            {k: live_of.get(id(v), v) for k, v in saved.__dict__.items() if k != "env" or inner is None}
        )
