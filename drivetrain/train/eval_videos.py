"""Videos during training (``loop.video_every``): one evaluation episode filmed at every N-th
periodic evaluation, as ``videos/step-<env steps>.mp4`` in the run directory.

:func:`video_due` says whether the periodic evaluation at ``env_steps`` (due at the multiple
``due_at`` of ``loop.eval_interval``) gets a video: it does when the multiples of
``eval_interval`` since the previous evaluation include a multiple of
``video_every x eval_interval`` (with evaluations one interval apart: the N-th, 2N-th, ...).
It depends on the env step only, so a resumed run films where the uninterrupted one does.

:class:`EvalVideos` films on an environment of its own (the evaluation environment's seed,
one environment, ``render_mode="rgb_array"``) with a policy of its own (as the evaluation's:
:func:`~drivetrain.train.experiment.eval_policy`), so the evaluations' environments, RNGs and
results, and the checkpoints, are those of a run without videos. When a video cannot be made
(an environment that does not render, such as EnvPool's; a missing encoder), one warning says
why and the run continues without videos. Each video made is handed to ``on_video(path,
env_steps)`` (the run's logger, which mirrors it to the experiment tracker of ``loop.track``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivetrain.train.config import LoopConfig
from drivetrain.train.experiment import eval_policy, make_env, run_seeds
from drivetrain.train.rundir import VIDEO_DIR
from drivetrain.train.video import record_video

__all__ = ["VIDEO_DIR", "EvalVideos", "video_due"]


def video_due(loop: LoopConfig, due_at: int, env_steps: int) -> bool:
    """Whether the periodic evaluation due at ``due_at`` and run at ``env_steps`` is filmed."""
    if loop.video_every <= 0 or loop.eval_interval <= 0:
        return False
    every = loop.video_every * loop.eval_interval
    previous = due_at - loop.eval_interval  # the previous evaluation ran after this step
    return env_steps // every > previous // every


class EvalVideos:
    """Films one episode of a run's evaluation policy per call of :meth:`record`; after a
    failure it warns once and films nothing more."""

    def __init__(
        self,
        fps: float = 30,
        max_frames: int = 10_000,
        on_video: Callable[[Path, int], None] | None = None,
    ):
        self.fps, self.max_frames, self.on_video = fps, max_frames, on_video
        self.failed: str | None = None
        """Why videos stopped (None while they work)."""

    def record(self, parts: Any, run_dir: Path, env_steps: int) -> Path | None:
        """Films one episode of ``parts.agent`` (configured by ``parts.config``) into
        ``run_dir/videos/step-<env_steps>.mp4``; None when it cannot."""
        if self.failed is not None:
            return None
        config = parts.config
        path = Path(run_dir) / VIDEO_DIR / f"step-{env_steps}.mp4"
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen; no display needed
        try:
            seed = run_seeds(config.seed).eval_env
            with make_env(config.env, 1, seed, evaluation=True, render_mode="rgb_array") as env:
                policy = eval_policy(parts.agent, config)
                path = record_video(env, policy, path, max_frames=self.max_frames, fps=self.fps).path
        except Exception as e:  # a video is never worth the run
            self.failed = f"{type(e).__name__}: {e}"
            warnings.warn(
                f"loop.video_every: no video of {config.env.name} at env step {env_steps}, and none for the "
                f"rest of this run (videos need an environment that renders rgb_array frames, made with "
                f"render_mode='rgb_array', and imageio-ffmpeg): {self.failed}",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        if self.on_video is not None:
            self.on_video(path, env_steps)
        return path
