"""The commands that use a run's trained agent: ``eval``, ``play`` and ``export``.

::

    drivetrain eval RUN_DIR [--episodes N] [--seed N] [--json]
    drivetrain play RUN_DIR --video FILE [--episodes N] [--fps N] [--seed N] [--max-frames N]
    drivetrain export RUN_DIR FILE

Each loads the agent with :func:`~drivetrain.train.artifacts.load_agent` (``agent.pkl``, or the
newest checkpoint). :func:`add_run_commands` adds them to the ``drivetrain`` subparsers; this
module imports nothing heavy until a command runs (``drivetrain --help`` imports no PyTorch).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["EXPORT_HELP", "add_run_commands", "cmd_eval", "cmd_export", "cmd_play"]

EXPORT_HELP = """\
Writes the greedy policy of RUN_DIR's newest agent to FILE (e.g. policy.pt2) as a torch.export
program: feed-forward agents only (DQN, REINFORCE, PPO, SAC, TD3).

Loading it needs PyTorch alone, not drivetrain:
  policy = torch.export.load("policy.pt2").module()
  actions, outputs = policy(torch.from_numpy(observations))   # outputs: q-values, logits or means
Observations are a batch [B, *shape] in the observation dtype: float32 for vector observations
(NumPy's default float64 fails), uint8 for Atari frames; one observation is a batch of 1.
The shapes and dtypes are in the file's drivetrain.json
(torch.export.load(path, extra_files={"drivetrain.json": ""})); with drivetrain installed,
drivetrain.export.load_exported_policy(path) checks them.
"""


def _at_least(minimum: int) -> Any:
    """An argparse type: an int ``>= minimum`` (argparse names the option in its error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_POSITIVE, _SEED = _at_least(1), _at_least(0)


def _command_error(message: str) -> Exception:
    from drivetrain.cli import CommandError

    return CommandError(message)


def cmd_eval(args: argparse.Namespace) -> int:
    """``drivetrain eval``: the run's final evaluation again (or ``--episodes`` episodes)."""
    from drivetrain.train.artifacts import evaluate_run

    result, loaded = evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed)
    if args.json:
        print(json.dumps(result.to_dict(env_steps=loaded.env_steps), indent=2))
    else:
        print(
            f"{args.run_dir}: mean return {result.mean_return:.2f} ± {result.std_return:.2f} over "
            f"{result.episodes} episodes (agent trained for {loaded.env_steps} env steps)"
        )
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    """``drivetrain play``: a video of the run's evaluation policy."""
    from drivetrain.train.artifacts import load_agent, run_env
    from drivetrain.train.experiment import eval_policy
    from drivetrain.train.video import VideoError, VideoWriter, record_video

    try:
        VideoWriter.check_path(args.video)  # before loading the agent
    except VideoError as e:
        raise _command_error(f"--video: {e}") from None
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen; no display needed
    loaded = load_agent(args.run_dir)
    seed = loaded.config.seed if args.seed is None else args.seed
    policy = eval_policy(loaded.agent, loaded.config)  # greedy, or with the run's evaluation epsilon
    try:
        with run_env(args.run_dir, loaded.config, 1, seed, evaluation=True, render_mode="rgb_array") as env:
            video = record_video(env, policy, args.video, args.episodes, args.max_frames, args.fps)
    except VideoError as e:
        raise _command_error(str(e)) from None
    eps = loaded.config.loop.eval_epsilon
    who = "the greedy policy" if eps == 0 else f"the evaluation policy (epsilon {eps})"
    print(f"wrote {video.path} ({video.frames} frames, {args.episodes} episode(s) of {who})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``drivetrain export``: the greedy policy as a torch.export program (see :data:`EXPORT_HELP`)."""
    from drivetrain.agents import export_policy
    from drivetrain.train.artifacts import load_agent

    folder = os.path.dirname(os.path.abspath(args.file))
    if not os.path.isdir(folder):  # before loading the agent
        raise _command_error(f"FILE: the folder {folder} does not exist")
    loaded = load_agent(args.run_dir, device="cpu")
    try:
        path = export_policy(loaded.agent, args.file)
    except (TypeError, OSError) as e:  # e.g. a recurrent agent, a folder that is not writable
        raise _command_error(str(e)) from None
    print(f"wrote {path}; load it with torch.export.load({os.fspath(path)!r}).module() (see --help)")
    return 0


def add_run_commands(sub: Any) -> None:
    """Adds ``eval``, ``play`` and ``export`` to the ``drivetrain`` subparsers ``sub``."""
    p = sub.add_parser("eval", help="evaluate the newest agent of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--episodes", type=_POSITIVE, default=None, help="episodes (default: the run's final_eval_episodes)"
    )
    p.add_argument(
        "--seed", type=_SEED, default=None, help="environment seed (default: the run's evaluation seed)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON (as eval.json)")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("play", help="record a video of the greedy policy of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument(
        "--video",
        required=True,
        metavar="FILE",
        help="output file: .mp4 (H.264, imageio-ffmpeg) or .gif (Pillow); frames are written as they are rendered",
    )
    p.add_argument("--episodes", type=_POSITIVE, default=1)
    p.add_argument("--fps", type=_POSITIVE, default=30)
    p.add_argument("--seed", type=_SEED, default=None, help="environment seed (default: the run's seed)")
    p.add_argument(
        "--max-frames", type=_POSITIVE, default=10_000, help="stop recording after this many frames"
    )
    p.set_defaults(func=cmd_play)
    p = sub.add_parser(
        "export",
        help="export the greedy policy of a run for inference without drivetrain (torch.export)",
        description=EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("file", metavar="FILE", help="the program to write (.pt2 is customary)")
    p.set_defaults(func=cmd_export)
