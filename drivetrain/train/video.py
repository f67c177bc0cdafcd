"""Videos of a policy: ``rgb_array`` frames of whole episodes, written as GIF or MP4.

The frames come from the same :class:`~drivetrain.core.drivers.EpisodeDriver` loop as
everything else, with an observer that renders the environment after each step::

    frames = record_frames(env, policy, num_episodes=1)    # env made with render_mode="rgb_array"
    write_video(frames, "cartpole.gif", fps=30)

GIFs need Pillow; MP4 (and other ffmpeg formats) need ``imageio-ffmpeg``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from drivetrain.core import types
from drivetrain.core.drivers import EpisodeDriver
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy

__all__ = ["record_frames", "write_video"]


class _Renderer:
    """Observer appending ``env.render()`` after every step, up to ``max_frames``."""

    def __init__(self, env: Any, frames: list[np.ndarray], max_frames: int):
        self._env, self.frames, self._max = env, frames, max_frames

    def __call__(self, trajectory: types.Trajectory) -> None:
        if len(self.frames) < self._max:
            self.frames.append(np.asarray(self._env.render()))


def record_frames(
    env: Environment, policy: Policy, num_episodes: int = 1, max_frames: int = 10_000
) -> list[Any]:
    """Frames (``[H, W, 3]`` uint8) of ``num_episodes`` episodes of environment 0 of ``env``.

    ``env`` must render ``rgb_array`` frames (``render_mode="rgb_array"``) and should hold a
    single environment (only environment 0 is filmed).
    """
    if not callable(getattr(env, "render", None)):
        raise TypeError(
            f"record_frames: {type(env).__name__} has no render(); make it with render_mode='rgb_array'"
        )
    time_step = env.reset()
    first = env.render()  # type: ignore[attr-defined]
    if first is None:
        raise ValueError(
            "record_frames: env.render() returned None; make the env with render_mode='rgb_array'"
        )
    frames: list[np.ndarray] = [np.asarray(first)]
    driver = EpisodeDriver(env, policy, [_Renderer(env, frames, max_frames)], num_episodes=num_episodes)
    driver.run(time_step)
    return frames


def write_video(frames: list[Any], path: str | os.PathLike[str], fps: int = 30) -> Path:
    """Writes ``frames`` to ``path``: ``.gif`` with Pillow, anything else (``.mp4``) with imageio-ffmpeg."""
    import imageio.v3 as iio

    path = Path(path)
    if not frames:
        raise ValueError("write_video: no frames")
    path.parent.mkdir(parents=True, exist_ok=True)
    stack = np.stack([np.asarray(f, np.uint8) for f in frames])
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, stack, extension=".gif", duration=1000 / fps, loop=0)
        return path
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise RuntimeError(
            f"write_video: writing {path.suffix or 'this format'} needs imageio-ffmpeg "
            "(pip install imageio-ffmpeg); or write a .gif"
        ) from None
    iio.imwrite(path, stack, fps=fps, codec="libx264", macro_block_size=1)
    return path
