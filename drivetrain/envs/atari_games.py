"""Atari game names as users type them -> ALE ROM ids, Gymnasium ids and EnvPool task ids.

``"Breakout"``, ``"breakout"``, ``"ALE/Breakout-v5"``, ``"BreakoutNoFrameskip-v4"`` and
``"space_invaders"`` / ``"SpaceInvaders"`` all resolve; the version and the
``NoFrameskip`` / ``Deterministic`` suffixes of old Gym ids are dropped because
:func:`~drivetrain.envs.atari.make_atari` always builds ALE v5 with ``frameskip=1`` and
does its own frame skipping. An unknown name raises :class:`UnknownGameError` listing
the closest known games (``difflib`` over ale-py's ROM list).
"""

from __future__ import annotations

import difflib
import functools
import re

__all__ = ["UnknownGameError", "atari_games", "envpool_task_id", "gymnasium_id", "resolve_game"]

_SUFFIX = re.compile(r"(noframeskip|deterministic)?(-v\d+)?$", re.IGNORECASE)


class UnknownGameError(ValueError):
    """No Atari game of that name (the message lists the closest ones)."""


@functools.cache
def _gymnasium_ids() -> dict[str, str]:
    """ROM id -> ``ALE/<Game>-v5`` for every single-player game registered by ale-py."""
    try:
        import ale_py
        import gymnasium
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError(
            "Atari needs ale-py and opencv: pip install 'drivetrain[atari]' (ale-py ships the ROMs)"
        ) from e
    gymnasium.register_envs(ale_py)
    ids = {}
    for env_id, spec in gymnasium.registry.items():
        game = spec.kwargs.get("game") if isinstance(spec.kwargs, dict) else None
        if env_id.startswith("ALE/") and env_id.endswith("-v5") and isinstance(game, str):
            ids[game] = env_id
    return ids


def _key(name: str) -> str:
    """Lower case, letters and digits only: ``"Space Invaders"`` -> ``"spaceinvaders"``."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.cache
def _by_key() -> dict[str, str]:
    return {_key(rom): rom for rom in _gymnasium_ids()}


def _display(rom: str) -> str:
    return _gymnasium_ids()[rom].removeprefix("ALE/").removesuffix("-v5")


def atari_games() -> list[str]:
    """The names of all single-player Atari games (``"Breakout"``, ``"Pong"``, ...), sorted."""
    return sorted(_display(rom) for rom in _gymnasium_ids())


def resolve_game(name: str) -> str:
    """The ALE ROM id (``"breakout"``) of a game name as a user types it.

    Raises:
      UnknownGameError: no such game; the message lists close names.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownGameError(f"Atari game: expected a game name such as 'Breakout', got {name!r}")
    stem = name.strip()
    if stem.upper().startswith("ALE/"):
        stem = stem[4:]
    stem = _SUFFIX.sub("", stem)
    rom = _by_key().get(_key(stem))
    if rom is not None:
        return rom
    close = difflib.get_close_matches(_key(stem), list(_by_key()), n=5, cutoff=0.6)
    games = atari_games()
    if close:
        hint = "did you mean " + ", ".join(repr(_display(_by_key()[k])) for k in close) + "?"
    else:
        hint = "no close match"
    raise UnknownGameError(
        f"unknown Atari game {name!r}: {hint} ({len(games)} games are known: "
        f"drivetrain.envs.atari_games() lists them, e.g. {', '.join(games[:6])}, ...)"
    )


def gymnasium_id(rom: str) -> str:
    """``"breakout"`` -> ``"ALE/Breakout-v5"``."""
    return _gymnasium_ids()[rom]


def envpool_task_id(rom: str) -> str:
    """``"breakout"`` -> ``"Breakout-v5"`` (EnvPool's naming); raises if EnvPool lacks the game."""
    try:
        import envpool
    except ImportError as e:
        raise ImportError(
            "make_atari(backend='envpool') needs EnvPool: pip install 'drivetrain[envpool]' "
            "(or use backend='gymnasium')"
        ) from e

    task = _display(rom) + "-v5"
    known: dict[str, str] = {str(t).lower(): str(t) for t in envpool.list_all_envs()}
    if task.lower() not in known:
        raise UnknownGameError(f"EnvPool has no Atari task for {_display(rom)!r} (looked for {task!r})")
    return known[task.lower()]
