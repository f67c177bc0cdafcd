"""Videos: the streaming MP4/GIF writer, `drivetrain play`, and `loop.video_every` during training."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.envs.classic_control import CartPoleEnv

from drivetrain.cli import main
from drivetrain.policies import RandomPolicy
from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.config import LoopConfig
from drivetrain.train.eval_videos import video_due
from drivetrain.train.video import VideoError, VideoWriter, record_video, write_video

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")


def _frames(n: int, height: int, width: int) -> list[np.ndarray]:
    """Frames that differ from each other (a gradient moving by frame)."""
    ramp = np.add.outer(np.arange(height), np.arange(width))
    return [np.stack([(ramp * 3 + 40 * i) % 256] * 3, axis=-1).astype(np.uint8) for i in range(n)]


def _read_mp4(path: Path) -> tuple[tuple[int, int], int]:
    """((width, height), number of frames) as ffmpeg decodes ``path``."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    return tuple(meta["size"]), sum(1 for _ in reader)


@pytest.mark.parametrize(("height", "width"), [(32, 48), (33, 47), (21, 30)])
def test_mp4_has_every_frame_and_an_even_size(tmp_path, height, width):
    path = write_video(_frames(9, height, width), tmp_path / "clip.mp4", fps=15)
    even = (width + width % 2, height + height % 2)  # odd sizes padded by one row/column
    assert _read_mp4(path) == (even, 9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temporary file left


def test_mp4_frames_read_back_close_to_what_was_written(tmp_path):
    import imageio.v3 as iio

    frames = _frames(5, 33, 47)
    decoded = iio.imread(write_video(frames, tmp_path / "clip.mp4"), plugin="FFMPEG")
    assert decoded.shape == (5, 34, 48, 3)
    error = np.abs(decoded[:, :33, :47].astype(int) - np.stack(frames).astype(int)).mean()
    assert error < 12, error  # lossy H.264, but the same pictures


def test_gif_still_works(tmp_path):
    from PIL import Image

    path = write_video(_frames(6, 33, 47), tmp_path / "clip.gif", fps=10)
    with Image.open(path) as gif:
        assert (gif.size, gif.n_frames) == ((47, 33), 6)
        assert gif.info["duration"] == 100


@pytest.mark.parametrize(("fps", "delay"), [(15, 70), (35, 30), (30, 30), (50, 20)])
def test_a_gif_takes_the_nearest_delay_it_can_hold(tmp_path, fps, delay):
    from PIL import Image

    path = write_video(_frames(4, 8, 8), tmp_path / "clip.gif", fps=fps)
    with Image.open(path) as gif:
        assert gif.info["duration"] == delay  # the nearest hundredth: 66.7 ms is 70, not 60


def test_a_gif_faster_than_browsers_play_is_refused(tmp_path):
    with pytest.raises(VideoError, match="a GIF plays at most 50 fps"):
        VideoWriter(tmp_path / "clip.gif", fps=60)
    VideoWriter(tmp_path / "clip.mp4", fps=60).abort()


def test_a_bad_suffix_is_refused_by_name(tmp_path):
    for name in ("clip.avi", "clip"):
        with pytest.raises(VideoError, match=r"unknown suffix .*use \.mp4 or \.gif"):
            VideoWriter(tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_play_refuses_a_bad_suffix_naming_it(tmp_path, capsys):
    assert main(["play", str(tmp_path / "no-run"), "--video", str(tmp_path / "clip.webm")]) == 2
    err = capsys.readouterr().err
    assert "unknown suffix '.webm'" in err and ".mp4 or .gif" in err


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_crash_mid_recording_leaves_no_file(tmp_path, suffix):
    path = tmp_path / f"clip{suffix}"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path) as writer:
        for frame in _frames(4, 32, 32):
            writer.write(frame)
        raise RuntimeError("boom")
    assert not list(tmp_path.iterdir())

    path.write_bytes(b"the video of an earlier call")
    with pytest.raises(VideoError, match="frame 2 is"), VideoWriter(path) as writer:
        writer.write(_frames(1, 32, 32)[0])
        writer.write(_frames(1, 32, 32)[0])
        writer.write(_frames(1, 16, 16)[0])  # another size
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_bytes() == b"the video of an earlier call"


def test_a_writer_refuses_frames_of_the_wrong_shape_or_type(tmp_path):
    shape = r"must be \[H, W, 3\] uint8, got \[8, 8, 4\] uint8"
    with pytest.raises(VideoError, match=shape), VideoWriter(tmp_path / "a.mp4") as writer:
        writer.write(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(VideoError, match="float32"), VideoWriter(tmp_path / "a.gif") as writer:
        writer.write(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(VideoError, match="no frames"), VideoWriter(tmp_path / "a.mp4"):
        pass
    assert not list(tmp_path.iterdir())


class _Policy(RandomPolicy):
    """Random actions; raises at call ``fail_at`` (a crash in the middle of an episode)."""

    def __init__(self, env, fail_at: int | None = None):
        super().__init__(env.time_step_spec(), env.action_spec(), seed=0)
        self.calls, self.fail_at = 0, fail_at

    def _action(self, time_step, policy_state):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("policy failed")
        return super()._action(time_step, policy_state)


def _cartpole(render_mode: str | None = "rgb_array"):
    pytest.importorskip("pygame", reason="CartPole renders with pygame")
    from drivetrain import envs

    kwargs = {} if render_mode is None else {"render_mode": render_mode}
    return envs.make("CartPole-v1", num_envs=1, seed=0, **kwargs)


def test_record_video_streams_each_frame_as_it_is_rendered(tmp_path, monkeypatch):
    seen: list[int] = []
    write = VideoWriter.write

    def spy(self, frame):
        write(self, frame)
        seen.append(self.frames)

    monkeypatch.setattr(VideoWriter, "write", spy)
    with _cartpole() as env:
        policy = _Policy(env)
        video = record_video(env, policy, tmp_path / "cartpole.mp4", num_episodes=1)
    # one frame after reset, then one per driver step: written one at a time, in order
    assert seen == list(range(1, video.frames + 1)) and video.frames == policy.calls + 1
    assert _read_mp4(video.path) == ((600, 400), video.frames)


def test_record_video_that_fails_midway_leaves_no_file(tmp_path):
    with _cartpole() as env, pytest.raises(RuntimeError, match="policy failed"):
        record_video(env, _Policy(env, fail_at=5), tmp_path / "cartpole.mp4")
    with _cartpole(render_mode=None) as env, pytest.raises(VideoError, match="does not render"):
        record_video(env, _Policy(env), tmp_path / "cartpole.mp4")
    assert not list(tmp_path.iterdir())


def test_video_due_every_nth_evaluation_and_never_skipped():
    loop = LoopConfig(eval_interval=100, video_every=3)
    due = [step for step in range(100, 1001, 100) if video_due(loop, step, step)]
    assert due == [300, 600, 900]
    # iterations longer than the interval: (due at, run at); each multiple of 300 is filmed once
    runs = [(100, 250), (300, 500), (600, 750), (800, 1000)]
    assert [step for at, step in runs if video_due(loop, at, step)] == [500, 750, 1000]
    assert not video_due(LoopConfig(eval_interval=100, video_every=0), 300, 300)


# ---------------------------------------------------------------------- loop.video_every
_TINY = [
    ("total_env_steps", 600),
    ("learning_starts", 200),
    ("update_period", 100),
    ("gradient_steps", 5),
    ("agent.fc_layers", (16, 16)),
    ("eval_interval", 200),
    ("eval_episodes", 2),
    ("stop_at_return", None),
    ("final_eval_episodes", 2),
    ("checkpoint_interval", 600),
    ("progress_bar", False),
    ("tensorboard", False),
]
"""A 600-step cartpole-dqn run with periodic evaluations at env steps 300 and 400."""


def _config(*overrides: tuple[str, object]):
    return apply_overrides(get_preset("cartpole-dqn").build(), [*_TINY, *overrides])


def _eval_returns(run: Path) -> list[tuple[str, str]]:
    with open(run / "progress.csv") as f:
        return [(r["env_steps"], r["eval_mean_return"]) for r in csv.DictReader(f) if r["eval_mean_return"]]


def test_video_every_films_the_evaluations_and_changes_no_result(tmp_path):
    pytest.importorskip("pygame", reason="CartPole renders with pygame")
    plain, filmed = tmp_path / "plain", tmp_path / "filmed"
    train(_config(), plain, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a video that fails would warn
        train(_config(("loop.video_every", 2)), filmed, verbose=False)
    assert sorted(p.name for p in (filmed / "videos").iterdir()) == ["step-400.mp4"]
    size, frames = _read_mp4(filmed / "videos" / "step-400.mp4")
    assert size == (600, 400) and frames >= 9
    assert not (plain / "videos").exists()
    assert len(_eval_returns(plain)) == 3  # at 300 and 400 (filmed), and the final one
    assert _eval_returns(filmed) == _eval_returns(plain)
    assert json.loads((filmed / "eval.json").read_text()) == json.loads((plain / "eval.json").read_text())


class _NoRenderCartPole(CartPoleEnv):
    """CartPole that renders nothing (a custom environment without rgb_array frames)."""

    metadata = {"render_modes": [], "render_fps": 50}  # noqa: RUF012 - Gymnasium's convention

    def render(self):
        return None


@pytest.fixture
def no_render_env():
    name = "NoRenderCartPole-v0"
    gymnasium.register(name, entry_point=_NoRenderCartPole, max_episode_steps=500)
    yield name
    del gymnasium.registry[name]


def test_an_environment_that_cannot_render_warns_once_and_the_run_completes(tmp_path, no_render_env):
    config = _config(("loop.video_every", 1), ("env.name", no_render_env))
    with pytest.warns(RuntimeWarning, match="loop.video_every") as caught:
        result = train(config, tmp_path / "run", verbose=False)
    ours = [w for w in caught if "loop.video_every" in str(w.message)]
    assert len(ours) == 1  # at the first filmed evaluation, not at the second
    message = str(ours[0].message)
    assert "no video of NoRenderCartPole-v0 at env step 300" in message and "render_mode" in message
    assert result.env_steps == 600 and (tmp_path / "run" / "eval.json").exists()
    assert len(_eval_returns(tmp_path / "run")) == 3
    assert not (tmp_path / "run" / "videos").exists() or not list((tmp_path / "run" / "videos").iterdir())


def test_a_second_signal_while_filming_stops_the_run_instead_of_the_videos(monkeypatch):
    import signal
    import types as pytypes

    from drivetrain.train import eval_videos
    from drivetrain.train.signals import RunInterruptedError

    def interrupted(*args, **kwargs):
        raise RunInterruptedError(signal.SIGINT, "stopped at once by a second signal (SIGINT)")

    monkeypatch.setattr(eval_videos, "record_video", interrupted)
    videos = eval_videos.EvalVideos()
    parts = pytypes.SimpleNamespace(
        config=get_preset("cartpole-dqn").build(), agent=pytypes.SimpleNamespace(policy=None)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no video ..." warning
        with pytest.raises(RunInterruptedError):
            videos.record(parts, Path("unused"), 100)
    assert videos.failed is None  # videos were not turned off
