"""Videos of a policy: ``rgb_array`` frames streamed into an MP4 or GIF file.

A :class:`VideoWriter` is opened on a path whose suffix picks the format (``.mp4``:
H.264 through imageio-ffmpeg, whose wheel ships the ffmpeg binary; ``.gif``: Pillow),
takes ``[H, W, 3]`` uint8 frames one at a time with :meth:`VideoWriter.write`, and on
:meth:`VideoWriter.close` moves the finished file into place. Until then it writes a
hidden temporary file in the same folder; :meth:`VideoWriter.abort` (or leaving its
``with`` block by an exception) deletes it, so a crash never leaves a partial video at
``path``. MP4 frames of odd width or height are padded by one row or column (repeating
the edge) to the even size that yuv420p needs; the size of the first frame holds for
the whole video.

:func:`record_video` films whole episodes: the frames come from the same
:class:`~drivetrain.core.drivers.EpisodeDriver` loop as everything else, with an observer
that renders the environment after each step and hands the frame straight to the writer::

    with make_env(config, 1, seed, render_mode="rgb_array") as env:
        recording = record_video(env, policy, "cartpole.mp4", num_episodes=1, fps=30)

:func:`record_frames` and :func:`write_video` keep frames in a list (short clips, tests).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drivetrain.core import types
from drivetrain.core.drivers import EpisodeDriver
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy

__all__ = [
    "FORMATS",
    "Recording",
    "VideoError",
    "VideoWriter",
    "record_frames",
    "record_video",
    "write_video",
]

FORMATS = (".mp4", ".gif")
"""The file suffixes a :class:`VideoWriter` writes."""


class VideoError(ValueError):
    """A video cannot be written: an unknown suffix, a frame of the wrong shape, an environment
    that does not render, a missing encoder."""


class _Mp4Sink:
    """H.264 (yuv420p) through imageio-ffmpeg's ``write_frames`` pipe to ffmpeg."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        try:
            import imageio_ffmpeg
        except ImportError:
            raise VideoError(
                "writing .mp4 needs imageio-ffmpeg (pip install 'drivetrain[torch]'); or write a .gif"
            ) from None
        height, width = size
        self._pipe = imageio_ffmpeg.write_frames(
            str(path), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1
        )
        self._pipe.send(None)  # starts ffmpeg

    def write(self, frame: np.ndarray) -> None:
        self._pipe.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self._pipe.close()  # ffmpeg finishes the file and exits


GIF_MAX_FPS = 50
"""A GIF's fastest frame rate: a 2-hundredths delay (browsers play shorter ones at 10 fps)."""


class _GifSink:
    """Pillow's GIF writer, which encodes at the end: frames are kept as palette images
    (one byte a pixel, Pillow's own RGB-to-palette conversion) until :meth:`close`. Pillow
    joins a frame equal to the one before it to that one (their durations add up)."""

    def __init__(self, path: Path, fps: float):
        # GIF delays are whole hundredths of a second: the nearest one (Pillow would round down)
        self._path, self._duration = path, 10 * max(2, round(100.0 / fps))
        self._frames: collections.deque[Any] = collections.deque()

    def write(self, frame: np.ndarray) -> None:
        from PIL import Image

        self._frames.append(Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE))

    def close(self) -> None:
        first = self._frames.popleft()
        first.save(
            self._path,
            format="GIF",
            save_all=True,
            append_images=self._drain(),
            duration=self._duration,
            loop=0,
        )

    def _drain(self) -> Iterator[Any]:
        while self._frames:  # each frame handed to Pillow is dropped here
            yield self._frames.popleft()


class VideoWriter:
    """Streams frames into ``path`` (see the module docstring); a context manager.

    ``path``'s suffix picks the format (:data:`FORMATS`); VideoError names any other.
    ``write(frame)`` takes one ``[H, W, 3]`` (or ``[H, W]`` grayscale) uint8 frame; ``close()``
    finishes the file and moves it to ``path``; ``abort()`` deletes what was written. Closing
    a writer that got no frame is a VideoError and leaves nothing behind.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 30):
        self.path = Path(path)
        self.format = self.check_path(path)
        if fps <= 0:
            raise VideoError(f"fps must be > 0, got {fps}")
        if self.format == ".gif" and fps > GIF_MAX_FPS:
            raise VideoError(
                f"a GIF plays at most {GIF_MAX_FPS} fps (its frame delays are whole hundredths of a second, and "
                f"browsers slow shorter ones down to 10 fps), got {fps}; write an .mp4 for more"
            )
        self.fps = fps
        self.frames = 0
        self.size: tuple[int, int] | None = None
        """(height, width) of the frames written, after padding."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = f".{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}{self.format}"
        self._tmp: Path | None = self.path.parent / tmp
        self._sink: _Mp4Sink | _GifSink | None = None

    @staticmethod
    def check_path(path: str | os.PathLike[str]) -> str:
        """The format (``.mp4`` or ``.gif``) of ``path``; VideoError naming any other suffix."""
        suffix = Path(path).suffix
        if suffix.lower() not in FORMATS:
            raise VideoError(
                f"cannot write a video to {path}: unknown suffix {suffix or '(none)'!r}; use {' or '.join(FORMATS)}"
            )
        return suffix.lower()

    def write(self, frame: Any) -> None:
        """Appends one frame (the first fixes the video's size)."""
        if self._tmp is None:
            raise VideoError(f"{self.path}: the writer is closed")
        image = self._image(frame)
        if self._sink is None:
            self.size = (image.shape[0], image.shape[1])
            self._sink = (
                _Mp4Sink(self._tmp, self.size, self.fps)
                if self.format == ".mp4"
                else _GifSink(self._tmp, self.fps)
            )
        elif image.shape[:2] != self.size:
            raise VideoError(
                f"{self.path}: frame {self.frames} is {image.shape[:2]}, the video is {self.size}"
            )
        self._sink.write(image)
        self.frames += 1

    def close(self) -> Path:
        """Finishes the file and moves it to ``path`` (replacing one that was there)."""
        if self._tmp is None:
            raise VideoError(f"{self.path}: the writer is closed")
        if self._sink is None:
            self.abort()
            raise VideoError(f"{self.path}: no frames were written")
        tmp = self._tmp
        try:
            sink, self._sink = self._sink, None
            sink.close()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._tmp = None
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Stops the encoder and deletes the temporary file; ``path`` is left as it was."""
        tmp, self._tmp = self._tmp, None
        sink, self._sink = self._sink, None
        try:
            if isinstance(sink, _Mp4Sink):
                with contextlib.suppress(Exception):  # the file is discarded; keep the error that led here
                    sink.close()
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _image(self, frame: Any) -> np.ndarray:
        image = np.asarray(frame)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise VideoError(
                f"{self.path}: frame {self.frames} must be [H, W, 3] uint8, got {list(image.shape)} {image.dtype}"
            )
        if self.format == ".mp4" and (image.shape[0] % 2 or image.shape[1] % 2):
            image = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)), mode="edge")
        return image


@dataclasses.dataclass(frozen=True)
class Recording:
    """A video written by :func:`record_video`."""

    path: Path
    frames: int


class _Filmer:
    """Observer writing ``env.render()`` to ``writer`` after every step, up to ``max_frames``."""

    def __init__(self, env: Any, writer: VideoWriter, max_frames: int):
        self._env, self._writer, self._max = env, writer, max_frames

    def __call__(self, trajectory: types.Trajectory) -> None:
        if self._writer.frames < self._max:
            self._writer.write(self._env.render())


def _first_frame(env: Environment, who: str) -> Any:
    """Resets ``env``; (its first time step, its first frame), VideoError when it does not render."""
    render = getattr(env, "render", None)
    if not callable(render):
        raise VideoError(f"{who}: {type(env).__name__} has no render(); make it with render_mode='rgb_array'")
    time_step = env.reset()
    frame = render()
    if frame is None:
        raise VideoError(
            f"{who}: {type(env).__name__}.render() returned None; the environment does not render "
            "rgb_array frames (make it with render_mode='rgb_array')"
        )
    return time_step, frame


def record_video(
    env: Environment,
    policy: Policy,
    path: str | os.PathLike[str],
    num_episodes: int = 1,
    max_frames: int = 10_000,
    fps: float = 30,
) -> Recording:
    """Films ``num_episodes`` episodes of environment 0 of ``env`` into ``path`` (``.mp4`` or ``.gif``),
    each frame written as it is rendered; at most ``max_frames`` frames (the episodes still finish).

    ``env`` must render ``rgb_array`` frames (``render_mode="rgb_array"``) and should hold a single
    environment. Nothing is left at ``path`` if anything fails (VideoError for a bad suffix or an
    environment that does not render).
    """
    writer = VideoWriter(path, fps=fps)
    try:
        time_step, frame = _first_frame(env, "record_video")
        writer.write(frame)
        driver = EpisodeDriver(env, policy, [_Filmer(env, writer, max_frames)], num_episodes=num_episodes)
        driver.run(time_step)
        return Recording(writer.close(), writer.frames)
    finally:
        writer.abort()  # a no-op once closed


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
    """Frames (``[H, W, 3]`` uint8) of ``num_episodes`` episodes of environment 0 of ``env``, in a list
    (:func:`record_video` writes them to a file as they come instead)."""
    time_step, first = _first_frame(env, "record_frames")
    frames: list[np.ndarray] = [np.asarray(first)]
    driver = EpisodeDriver(env, policy, [_Renderer(env, frames, max_frames)], num_episodes=num_episodes)
    driver.run(time_step)
    return frames


def write_video(frames: Iterable[Any], path: str | os.PathLike[str], fps: float = 30) -> Path:
    """Writes ``frames`` to ``path`` (``.mp4`` or ``.gif``) with a :class:`VideoWriter`."""
    with VideoWriter(path, fps=fps) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path
