"""Observers that are not metrics: a live progress bar.

An observer is any callable taking a batched :class:`~drivetrain.core.types.Trajectory`;
a driver calls it once per environment step with the transition of every environment::

    with ProgressBar(total=50_000) as bar:
        driver = StepDriver(env, policy, observers=[replay.add_batch, bar], num_steps=256)
        ...

The bar advances by the number of non-boundary transitions (the steps a driver counts),
shows the rate in steps/s (tqdm's own rate) and, once an episode ended, the average
return of the last ``window`` episodes. It tracks returns per environment itself, or
shows the result of an :class:`~drivetrain.core.metrics.AverageReturn` it is given (the
same one the training loop logs, so the two never disagree). The bar is drawn for the last
time, once, when it reaches ``total`` (what comes after, such as a final evaluation, prints
below it). With ``disable=None`` it is a live bar only on a terminal; elsewhere (a log file, a
pipe) it writes a plain line at every ``line_every`` fraction of the total instead.
"""

from __future__ import annotations

import math
import sys
import time
from types import TracebackType
from typing import IO, Any

from tqdm.auto import tqdm

from drivetrain.core import types
from drivetrain.core.metrics import AverageReturn

__all__ = ["ProgressBar"]

_LAST = int(types.StepType.LAST)


class ProgressBar:
    """A tqdm progress bar fed by a driver.

    Args:
      total: the number of steps at 100%.
      initial: steps already done (a resumed run starts its bar there).
      average_return: an ``AverageReturn`` metric to display; when None the bar keeps
        its own per-environment returns over the last ``window`` episodes.
      window: episodes averaged when the bar tracks returns itself.
      desc: text in front of the bar.
      file: where the bar is written (default: stderr).
      disable: True: no output at all (the bar still counts); False: a live bar; None: a
        live bar when ``file`` is a terminal, else plain lines (see ``line_every``).
      mininterval: seconds between redraws.
      line_every: with ``disable=None`` and no terminal, a line (steps, percent, rate,
        return) each time this fraction of ``total`` is done.
    """

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        average_return: AverageReturn | None = None,
        window: int = 10,
        desc: str | None = None,
        file: IO[str] | None = None,
        disable: bool | None = False,
        mininterval: float = 0.5,
        line_every: float = 0.1,
    ):
        if total < 0:
            raise ValueError(f"ProgressBar: total must be >= 0, got {total}")
        if not 0 < line_every <= 1:
            raise ValueError(f"ProgressBar: line_every must be in (0, 1], got {line_every}")
        self._own = average_return is None  # the bar tracks the returns itself
        self._metric = AverageReturn(window) if average_return is None else average_return
        self._file = file
        self._lines: _Lines | None = None
        if disable is None and not _is_terminal(file):
            self._lines = _Lines(total, initial, desc, line_every, file)
        self._bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            file=file,
            disable=self._lines is not None or bool(disable),
            mininterval=mininterval,
            unit="step",
            unit_scale=True,
            bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
            dynamic_ncols=True,
        )
        self.steps = int(initial)

    def __call__(self, trajectory: types.Trajectory) -> None:
        # Python lists: NumPy calls on arrays of a few elements cost more than the work.
        step_types = trajectory.step_type.tolist()
        n = len(step_types) - step_types.count(_LAST)
        self.steps += n
        next_types = trajectory.next_step_type.tolist()
        ended = _LAST in next_types
        if self._own:
            self._metric(trajectory)
        if ended:
            value = self.average_return
            if not math.isnan(value):
                self._bar.set_postfix_str(f"return={value:.4g}", refresh=False)
        # Vector environments overshoot the last driver run: keep the bar at most full.
        bar = self._bar
        if self._lines is not None:
            self._lines.advance(self.steps, self.average_return)
        elif bar.n + n >= bar.total and not bar.disable:
            bar.n = bar.total  # drawn by close(), once
            bar.close()
        else:
            bar.update(max(0, min(n, bar.total - bar.n)))

    @property
    def average_return(self) -> float:
        """The displayed average return; NaN before an episode ended."""
        return float(self._metric.result())

    def set_description(self, text: str) -> None:
        """Replaces the text in front of the bar (e.g. ``"eval"``)."""
        self._bar.set_description_str(text, refresh=False)

    def write(self, message: str) -> None:
        """Prints a line above the bar without breaking it."""
        tqdm.write(message, file=self._file)

    def close(self) -> None:
        """Draws the final state and releases the line. Idempotent."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProgressBar(steps={self.steps}, total={self._bar.total})"

    def __getstate__(self) -> Any:
        raise TypeError("ProgressBar holds a terminal handle and cannot be pickled; rebuild it on resume")


def _is_terminal(file: IO[str] | None) -> bool:
    stream = sys.stderr if file is None else file
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


class _Lines:
    """A progress bar for a log file: a line each time ``every`` of the total has passed, and at the total."""

    def __init__(self, total: int, initial: int, desc: str | None, every: float, file: IO[str] | None):
        self.total, self.desc, self.file = total, desc, file
        self.step = max(1, math.ceil(total * every))
        self.start, self.initial = time.perf_counter(), initial
        self.done = initial >= total
        self.next = self._after(initial)

    def _after(self, steps: int) -> int:
        return min(self.total, (steps // self.step + 1) * self.step)

    def advance(self, steps: int, average_return: float) -> None:
        if self.done or steps < self.next:
            return
        shown = min(steps, self.total)
        self.done, self.next = shown >= self.total, self._after(shown)
        rate = (steps - self.initial) / max(time.perf_counter() - self.start, 1e-9)
        text = (
            f"{shown}/{self.total} env steps ({100 * shown / max(self.total, 1):.0f}%), {rate:,.0f} steps/s"
        )
        if not math.isnan(average_return):
            text += f", return {average_return:.4g}"
        prefix = f"{self.desc}: " if self.desc else ""
        sys.stdout.flush()  # what was printed before this line shows before it in a shared log
        print(prefix + text, file=sys.stderr if self.file is None else self.file, flush=True)
