"""Policy evaluation: whole episodes played by an :class:`~drivetrain.core.drivers.EpisodeDriver`.

``evaluate(env, policy, num_episodes)`` resets ``env`` and plays until every
environment of the batch finished its share of ``ceil(num_episodes / batch_size)``
episodes, then keeps ``num_episodes`` of them in order of their index within their
environment. Episodes are picked by index, never by when they ended: with a batch, the
first episodes to *end* are the short ones, and counting those would bias the mean low.

``evaluate(env, policy, num_episodes, max_steps=N)`` bounds the work as an evaluation
phase counted in steps does (Dopamine's, Machado et al. 2018): once the environments have
taken ``N`` steps together, no further episodes are counted than every environment of the
batch has finished (at least one each), so the result holds fewer, still whole, episodes,
picked by index as above. With one environment: episodes are played one after another until
``num_episodes`` or until ``N`` steps, finishing the episode in progress.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from drivetrain.core import types
from drivetrain.core.drivers import EpisodeDriver
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy

__all__ = ["EvalResult", "EvaluationError", "eval_step_limit", "evaluate"]

_LAST = int(types.StepType.LAST)


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Returns and lengths of evaluation episodes."""

    returns: tuple[float, ...]
    """Undiscounted return of each episode."""
    lengths: tuple[int, ...]
    """Steps of each episode."""

    @property
    def episodes(self) -> int:
        return len(self.returns)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        """Population standard deviation (``np.std``), as Stable-Baselines3 reports it."""
        return float(np.std(self.returns))

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths))

    def to_dict(self, env_steps: int | None = None) -> dict[str, Any]:
        """The content of ``eval.json``."""
        out: dict[str, Any] = {
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "episodes": self.episodes,
        }
        if env_steps is not None:
            out["env_steps"] = int(env_steps)
        out |= {"mean_length": self.mean_length, "returns": list(self.returns), "lengths": list(self.lengths)}
        return out


class _FirstEpisodes:
    """Observer recording the first ``quota`` episodes of every environment of the batch."""

    def __init__(self, quota: int):
        self.quota = quota
        self._returns: np.ndarray | None = None
        self._lengths: np.ndarray | None = None
        self._counts: np.ndarray | None = None
        self.steps = 0
        """Steps taken by all the environments together (boundaries excluded)."""
        self.step_limit: int | None = None
        self.episodes: list[tuple[int, int, float, int]] = []  # (index in env, env, return, length)

    def __call__(self, trajectory: types.Trajectory) -> None:
        step_type = trajectory.step_type
        if self._returns is None:
            b = step_type.shape[0]
            self._returns, self._lengths, self._counts = (
                np.zeros(b),
                np.zeros(b, np.int64),
                np.zeros(b, np.int64),
            )
        assert self._lengths is not None and self._counts is not None
        self._returns += trajectory.reward
        playing = step_type != _LAST
        self._lengths += playing
        self.steps += int(np.count_nonzero(playing))
        if self.step_limit is not None and self.steps >= self.step_limit:
            raise _StepLimitError
        for i in np.flatnonzero(trajectory.next_step_type == _LAST):
            if self._counts[i] < self.quota:
                self.episodes.append(
                    (int(self._counts[i]), int(i), float(self._returns[i]), int(self._lengths[i]))
                )
            self._counts[i] += 1
            self._returns[i] = 0.0
            self._lengths[i] = 0

    @property
    def done(self) -> bool:
        return self._counts is not None and bool(np.all(self._counts >= self.quota))

    def stop_early(self) -> None:
        """Counts only the episodes every environment has finished (at least one each) from now on."""
        assert self._counts is not None
        self.quota = min(self.quota, max(1, int(self._counts.min())))


class EvaluationError(RuntimeError):
    """An evaluation that cannot give a result (no episode ended within its step limit)."""


class _StepLimitError(Exception):
    """The recorder's hard step limit: the episodes in progress are cut."""


def evaluate(
    env: Environment,
    policy: Policy,
    num_episodes: int,
    max_steps: int | None = None,
    step_limit: int | None = None,
) -> EvalResult:
    """Resets ``env`` and plays ``policy`` for ``num_episodes`` whole episodes, or fewer once
    the environments took ``max_steps`` steps (None: no limit; see the module doc).

    ``step_limit`` stops the evaluation even within episodes (an environment whose episodes never
    end): the episodes that ended count, as after ``max_steps``; an EvaluationError when none ended."""
    if num_episodes < 1:
        raise ValueError(f"evaluate: num_episodes must be >= 1, got {num_episodes}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"evaluate: max_steps must be >= 1 or None, got {max_steps}")
    recorder = _FirstEpisodes(math.ceil(num_episodes / env.batch_size))
    recorder.step_limit = step_limit
    driver = EpisodeDriver(env, policy, [recorder], num_episodes=1)
    try:
        time_step, policy_state = driver.run(env.reset())  # an env evaluated before starts new episodes
        while True:
            if max_steps is not None and recorder.steps >= max_steps:
                recorder.stop_early()
            if recorder.done:
                break
            time_step, policy_state = driver.run(time_step, policy_state)
    except _StepLimitError:
        if not recorder.episodes:
            raise EvaluationError(
                f"evaluate: no episode ended in {recorder.steps} steps of {env.batch_size} environment(s); "
                "give the environment a time limit (env.max_episode_steps)"
            ) from None
        recorder.stop_early()
    chosen = sorted(e for e in recorder.episodes if e[0] < recorder.quota)[:num_episodes]
    return EvalResult(tuple(e[2] for e in chosen), tuple(e[3] for e in chosen))


def eval_step_limit(total_env_steps: int, episodes: int, num_envs: int = 1) -> int:
    """The hard step limit of a run's evaluation of ``episodes`` episodes on ``num_envs``
    environments: ten times its budget (at least 10,000 steps) and 10,000 steps more per episode
    that each environment plays (``ceil(episodes / num_envs)`` each, all of them counted), so that
    only episodes that do not end are cut."""
    played = num_envs * math.ceil(episodes / num_envs)
    return 10 * max(int(total_env_steps), 1_000) + 10_000 * played
