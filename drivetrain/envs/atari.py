"""Atari with the DQN-2015 preprocessing: ``make_atari("Breakout", num_envs=8, seed=0)``.

::

    env = dt.envs.make_atari("Breakout", num_envs=8, seed=0)                   # Gymnasium + ALE
    env = dt.envs.make_atari("Pong", num_envs=8, seed=0, backend="envpool")    # EnvPool (C++)
    env = dt.envs.make_atari("Breakout", terminal_on_life_loss=True)           # AtariConfig fields
    env.observation_spec()   # StackedFramesSpec((84, 84, 4), uint8, 0, 255, num_frames=4)

Preprocessing (Mnih et al. 2015, "Human-level control through deep reinforcement
learning", Nature 518; settings in :class:`AtariConfig`): ALE v5 with ``frameskip=1``
inside ALE; each agent step repeats the action for 4 frames, sums their rewards and
max-pools the last two frames, once; at reset, a random 1..30 frames of NOOP, the last
one FIRE for games that have it (EnvPool's reset: both backends emit the same frames, a
test checks it bit for bit); 84×84 grayscale; the 4 latest frames stacked on the last
axis, newest last (uint8 ``[84, 84, 4]``; the reset frame fills the stack at FIRST); a
time limit of 27,000 agent steps (108k frames) as truncation; optionally
(``fire_on_life_loss``) one agent step of FIRE right after each lost life. When a game ends in the
middle of a frame skip, both backends stop there and the final observation repeats
(parts of) the previous one; it is never bootstrapped from (discount 0). Sticky actions are off by default; on
(``sticky_actions=True``) they repeat the previous action with probability 0.25 per
frame, the protocol of Machado et al. 2018, "Revisiting the Arcade Learning
Environment: Evaluation Protocols and Open Problems for General Agents", JAIR 61.

Design: what the training signal sees vs what the metrics see
--------------------------------------------------------------
DQN trains on clipped rewards and treats a lost life as terminal, while scores are
reported per game, unclipped. Both are expressed here without new TimeStep or
Trajectory fields and without a side channel:

- **Rewards are never clipped by the environment.** ``TimeStep.reward`` is the game
  score, so :class:`~drivetrain.core.metrics.AverageReturn` & co. report real scores.
  Clipping is a training choice and belongs to the agent (``DQNConfig.reward_clip``,
  applied to sampled batches), like ``reward_scale_factor`` in TF-Agents.
- **A life loss is a zero discount, not an episode end.** With
  ``terminal_on_life_loss=True`` the step that costs a life is a MID time step with
  discount 0: every TD and n-step target (which multiply by the discount) stops
  bootstrapping there, exactly as a terminal would, but the episode -- and so
  ``NumberOfEpisodes``, ``AverageReturn`` and ``AverageEpisodeLength`` -- is the whole
  game, ending with LAST at game over (discount 0) or at the time limit (discount 1).
  The game goes on after the loss (no reset, no skipped step, the frame stack
  continues), which is what ALE does and what EnvPool's ``zero_discount_on_life_loss``
  means. Gymnasium's ``AtariPreprocessing(terminal_on_life_loss=True)`` is not used: it
  reports ``terminated`` and its next reset restarts the *game*, so the agent would
  never play a second life. A life lost on the step the time limit truncates gets
  discount 0 too (it then reads as a termination; the game still restarts). Because the
  stack continues, the replay's frame de-duplication stores one frame per step across
  life losses (a reset per life would cost three more frames each).

Evaluation as in the paper -- ε-greedy with ε = 0.05, up to 30 no-op starts, episodes
capped at 5 minutes (18,000 frames) -- is :class:`AtariEval`: ``AtariEval().env_config(cfg)``
is the environment config for evaluation and ``AtariEval().epsilon`` the ε.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from drivetrain.core.config_checks import check_fields
from drivetrain.core.environment import Environment
from drivetrain.envs.atari_games import (
    UnknownGameError,
    atari_games,
    envpool_task_id,
    gymnasium_id,
    resolve_game,
)

__all__ = ["AtariConfig", "AtariEval", "UnknownGameError", "atari_games", "make_atari", "resolve_game"]

AtariBackend = Literal["gymnasium", "envpool"]


@dataclasses.dataclass(frozen=True)
class AtariConfig:
    """Preprocessing of :func:`make_atari`; the defaults are the DQN-2015 (Nature) settings."""

    frame_skip: int = 4
    """ALE frames per agent step: the action is repeated, rewards are summed and the last two
    frames max-pooled (once; ALE itself runs with ``frameskip=1``)."""
    noop_max: int = 30
    """At reset, a uniform random 1..``noop_max`` frames of NOOP (the last one FIRE when
    ``fire_reset`` applies); 0 disables (Gymnasium backend only; EnvPool needs >= 1)."""
    screen_size: int = 84
    """Observed frames are ``screen_size`` × ``screen_size`` grayscale (INTER_AREA resize)."""
    frame_stack: int = 4
    """Number of latest frames stacked on the last axis of the observation, newest last."""
    terminal_on_life_loss: bool = False
    """Discount 0 on the (MID) step that costs a life; the episode is still the whole game.
    DQN 2015 trains with it; Machado et al. (2018) recommend against it."""
    fire_reset: bool | None = None
    """Press FIRE after each reset: None = for games that have a FIRE action (Breakout only
    starts after it), True = always (error if the game has no FIRE), False = never."""
    fire_on_life_loss: bool = False
    """After a step that cost a life (the game going on), play one more agent step of FIRE within
    that step, so games such as Breakout relaunch the ball instead of waiting for the agent's FIRE
    (as Baselines' ``FireResetEnv`` does on each life's reset). Gymnasium backend only; needs a FIRE
    action."""
    max_episode_steps: int | None = 27_000
    """Time limit in agent steps (27,000 = 108k frames = 30 minutes of play); the step that
    reaches it is LAST with discount 1 (truncation). None: no limit."""
    sticky_actions: bool = False
    """Repeat the previous action with probability 0.25 per frame (Machado et al. 2018)."""
    full_action_space: bool = False
    """All 18 Atari actions instead of the game's minimal set."""
    render_mode: str | None = None
    """Gymnasium backend: ``"rgb_array"`` lets ``env.render(i)`` return frames (for videos)."""

    def __post_init__(self) -> None:
        check_fields(self)  # each field's type, named (ConfigTypeError)
        for name in ("frame_skip", "screen_size", "frame_stack"):
            if getattr(self, name) < 1:
                raise ValueError(f"AtariConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.noop_max < 0:
            raise ValueError(f"AtariConfig.noop_max must be >= 0, got {self.noop_max}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(
                f"AtariConfig.max_episode_steps must be >= 1 or None, got {self.max_episode_steps}"
            )
        if self.render_mode not in (None, "rgb_array"):
            raise ValueError(f"AtariConfig.render_mode must be None or 'rgb_array', got {self.render_mode!r}")


@dataclasses.dataclass(frozen=True)
class AtariEval:
    """Evaluation as in Mnih et al. 2015: ε-greedy, no-op starts, 5-minute episodes."""

    epsilon: float = 0.05
    """ε of the ε-greedy evaluation policy."""
    noop_max: int = 30
    """Up to this many NOOP frames at the start of each evaluation episode."""
    max_episode_frames: int = 18_000
    """Episode cap in ALE frames (5 minutes at 60 Hz); a capped episode is truncated."""

    def env_config(self, train: AtariConfig) -> AtariConfig:
        """The evaluation environment's config: ``train`` with these no-ops, episodes capped at
        ``max_episode_frames`` (in agent steps; a shorter time limit of ``train`` is kept) and
        no life-loss discounts (they do not change scores)."""
        cap = math.ceil(self.max_episode_frames / train.frame_skip)
        if train.max_episode_steps is not None:
            cap = min(cap, train.max_episode_steps)
        return dataclasses.replace(
            train, noop_max=self.noop_max, max_episode_steps=cap, terminal_on_life_loss=False
        )


def make_atari(
    game: str,
    num_envs: int = 1,
    seed: int | None = None,
    backend: AtariBackend = "gymnasium",
    config: AtariConfig | None = None,
    *,
    asynchronous: bool = False,
    **overrides: Any,
) -> Environment:
    """A batched Atari :class:`~drivetrain.core.environment.Environment` with DQN preprocessing.

    Args:
      game: as users type it: ``"Breakout"``, ``"pong"``, ``"ALE/Breakout-v5"``,
        ``"BreakoutNoFrameskip-v4"``, ``"space_invaders"``.
      num_envs: the batch size ``B``.
      seed: environment ``i`` gets ``seed + i`` (Gymnasium) or EnvPool's per-env seeding of
        ``seed``; the same seed and actions reproduce the same time steps.
      backend: ``"gymnasium"`` (ale-py through :func:`drivetrain.envs.make`) or
        ``"envpool"`` (optional, C++ threads; same time-step semantics).
      config: the preprocessing; :class:`AtariConfig` defaults if None.
      asynchronous: Gymnasium backend only: one process per environment.
      **overrides: :class:`AtariConfig` fields replacing those of ``config``, e.g.
        ``terminal_on_life_loss=True, max_episode_steps=4500``.

    Raises:
      UnknownGameError: the game does not exist (the message lists close names).
      TypeError: an override is not an :class:`AtariConfig` field.
    """
    config = config or AtariConfig()
    if overrides:
        fields = {f.name for f in dataclasses.fields(AtariConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(
                f"make_atari: unknown AtariConfig field(s) {unknown}; fields are {sorted(fields)}"
            )
        config = dataclasses.replace(config, **overrides)
    if int(num_envs) < 1:
        raise ValueError(f"make_atari: num_envs must be >= 1, got {num_envs}")
    if backend == "envpool" and config.fire_on_life_loss:
        raise ValueError(
            "make_atari(backend='envpool'): AtariConfig.fire_on_life_loss is not available: EnvPool "
            "presses FIRE only at reset (its episodic_life would end the episode at each life); "
            "use backend='gymnasium' for it"
        )
    rom = resolve_game(game)
    if backend == "gymnasium":
        from drivetrain.envs.atari_gymnasium import GymnasiumAtari

        return GymnasiumAtari(gymnasium_id(rom), config, int(num_envs), seed, asynchronous)
    if backend == "envpool":
        if asynchronous:
            raise ValueError(
                "make_atari: asynchronous applies to backend='gymnasium' (EnvPool runs its own threads)"
            )
        from drivetrain.envs.atari_envpool import EnvPoolAtari

        if config.fire_reset:  # EnvPool presses FIRE where the game has it, and ignores it elsewhere
            from drivetrain.envs.atari_gymnasium import wants_fire

            wants_fire(gymnasium_id(rom), config, _action_meanings(rom, config.full_action_space))
        return EnvPoolAtari(envpool_task_id(rom), config, int(num_envs), seed)
    raise ValueError(f"make_atari: unknown backend {backend!r}; expected 'gymnasium' or 'envpool'")


def _action_meanings(rom: str, full_action_space: bool) -> list[str]:
    """The game's action names, from its ROM (ale-py ships them)."""
    import ale_py

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    path = ale_py.roms.get_rom_path(rom)
    if path is None:
        raise UnknownGameError(f"ale-py has no ROM for {rom!r}")
    ale.loadROM(path)
    actions = ale.getLegalActionSet() if full_action_space else ale.getMinimalActionSet()
    return [a.name for a in actions]
