"""Memory of ``drivetrain play``: frames held in a list and written at the end, against frames
streamed into the video as they are rendered.

The policy is a fixed CartPole controller (push toward where the pole is falling), which keeps
the pole up for the whole 500-step episode: ``--frames`` (500) frames of 600x400 RGB, as
``drivetrain play`` films a trained agent. Variants, each in a fresh Python process:

- ``held-gif`` / ``held-mp4``: what ``play`` did before the writer streamed -- every frame
  appended to a list (:func:`drivetrain.train.video.record_frames`), then
  ``np.stack`` of the list and one ``imageio.v3.imwrite`` of the stack (Pillow for ``.gif``;
  for ``.mp4`` imageio's ffmpeg plugin with ``codec="libx264"``, ``macro_block_size=1``);
- ``stream-gif`` / ``stream-mp4``: :func:`drivetrain.train.video.record_video` (a
  :class:`~drivetrain.train.video.VideoWriter` fed one frame per step).

Each child reports the peak resident memory of its own process (``ru_maxrss``) after imports,
the environment and its first frame (``base``) and after the video was written (``peak``),
their difference (what recording cost), and the peak of its ffmpeg subprocess
(``RUSAGE_CHILDREN``; 0 for GIF): an upper bound, since a child's count starts at the fork,
with the resident pages of the Python process it was forked from. Usage::

    python -m bench.play_memory [--frames 500] [--variants held-gif held-mp4 stream-gif stream-mp4]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("held-gif", "held-mp4", "stream-gif", "stream-mp4")


def _mb(kib: int) -> float:
    return kib / 1024  # ru_maxrss is in KiB on Linux


def _balancing_policy(env: Any) -> Any:
    from drivetrain.core.types import PolicyStep
    from drivetrain.policies import RandomPolicy

    class Balance(RandomPolicy):
        """Push right when the pole falls right (angle + angular velocity > 0), else left."""

        def _action(self, time_step: Any, policy_state: Any) -> PolicyStep:
            obs = time_step.observation
            return PolicyStep((obs[:, 2] + obs[:, 3] > 0).astype(np.int64), (), {})

    return Balance(env.time_step_spec(), env.action_spec(), seed=0)


def _held(env: Any, policy: Any, path: Path, frames: int) -> int:
    """Frames in a list, then one write of their stack (the way play wrote videos before)."""
    import imageio.v3 as iio

    from drivetrain.train.video import record_frames

    held = record_frames(env, policy, num_episodes=1, max_frames=frames)
    stack = np.stack([np.asarray(f, np.uint8) for f in held])
    if path.suffix == ".gif":
        iio.imwrite(path, stack, extension=".gif", duration=1000 / 30, loop=0)
    else:
        iio.imwrite(path, stack, fps=30, codec="libx264", macro_block_size=1)
    return len(held)


def _streamed(env: Any, policy: Any, path: Path, frames: int) -> int:
    from drivetrain.train.video import record_video

    return record_video(env, policy, path, num_episodes=1, max_frames=frames, fps=30).frames


def child(variant: str, frames: int, folder: Path) -> dict[str, Any]:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from drivetrain import envs

    with envs.make("CartPole-v1", num_envs=1, seed=0, render_mode="rgb_array") as env:
        policy = _balancing_policy(env)
        env.reset()
        env.render()  # pygame and its surface exist before the baseline
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        path = folder / f"{variant}.{variant.split('-')[1]}"
        start = time.perf_counter()
        written = (_held if variant.startswith("held") else _streamed)(env, policy, path, frames)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ffmpeg = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "variant": variant,
        "frames": written,
        "base_mb": _mb(base),
        "peak_mb": _mb(peak),
        "recording_mb": _mb(peak - base),
        "ffmpeg_mb": _mb(ffmpeg) if variant.endswith("mp4") else 0.0,
        "seconds": seconds,
        "file_mb": path.stat().st_size / 2**20,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.frames, args.folder)))
        return
    frame_mb = 600 * 400 * 3 / 2**20
    print(f"{args.frames} CartPole frames of 600x400x3 uint8 = {args.frames * frame_mb:.0f} MB as RGB arrays")
    print(f"{'variant':<11} {'frames':>6} {'base MB':>8} {'peak MB':>8} {'recording MB':>13} "
          f"{'ffmpeg MB<=':>11} {'seconds':>8} {'file MB':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants:
            command = [sys.executable, "-m", "bench.play_memory", "--child", variant]
            command += ["--frames", str(args.frames), "--folder", folder]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['variant']:<11} {r['frames']:>6} {r['base_mb']:>8.0f} {r['peak_mb']:>8.0f} "
                  f"{r['recording_mb']:>13.0f} {r['ffmpeg_mb']:>11.0f} {r['seconds']:>8.1f} "
                  f"{r['file_mb']:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
