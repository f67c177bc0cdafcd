"""Hands-On Machine Learning, chapter 18, "The TF-Agents Library" (Breakout DQN), in drivetrain.

The sections and names follow the chapter; each TF-Agents call becomes its drivetrain
counterpart (see docs/from_tf_agents.md for the table and where the semantics differ)::

    python examples/book_ch18.py           # the chapter's scale: 20k warm-up steps, 50k iterations
    python examples/book_ch18.py --tiny    # a few hundred steps: checks that every section runs

``BOOK_CH18_TINY=1`` in the environment is the same as ``--tiny``. The full run takes hours
on a CPU and, with the book's 1M-transition buffer, about 7.5 GB of memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from functools import partial
from typing import Any

import ale_py
import gymnasium
import numpy as np
import torch

import drivetrain as dt
from drivetrain.core.schedules import PolynomialDecay
from drivetrain.envs.wrappers import ActionRepeat


@dataclasses.dataclass(frozen=True)
class Scale:
    """How much of the chapter's run to do."""

    warmup_steps: int = 20_000
    n_iterations: int = 50_000
    replay_capacity: int = 1_000_000
    batch_size: int = 64
    max_episode_steps: int = 27_000  # <=> 108k ALE frames, since 1 step = 4 frames
    log_interval: int = 1_000
    conv_layer_params: tuple[Any, ...] = ((32, (8, 8), 4), (64, (4, 4), 2), (64, (3, 3), 1))
    fc_layer_params: tuple[int, ...] = (512,)


BOOK = Scale()
TINY = Scale(
    warmup_steps=200,
    n_iterations=60,
    replay_capacity=2_000,
    batch_size=8,
    max_episode_steps=500,
    log_interval=20,
    conv_layer_params=((8, (8, 8), 4), (16, (4, 4), 2)),
    fc_layer_params=(32,),
)


class ShowProgress:
    """An observer printing how many (non-boundary) steps it saw, every 100 steps."""

    def __init__(self, total: int):
        self.counter = 0
        self.total = total

    def __call__(self, trajectory: dt.Trajectory) -> None:
        self.counter += int((~trajectory.is_boundary()).sum())
        if self.counter % 100 == 0:
            print(f"\r{self.counter}/{self.total}", end="")


def environments(scale: Scale) -> dt.Environment:
    """Sections "OpenAI Gym", "Environment Specifications", "Environment Wrappers", "Atari Preprocessing"."""
    gymnasium.register_envs(ale_py)
    env = dt.envs.make("ALE/Breakout-v5", num_envs=1, seed=42)  # suite_gym.load("Breakout-v4")
    env.reset()
    time_step = env.step(np.array([1]))  # FIRE; every action is batched: one per environment
    print(env.current_time_step().step_type, time_step.reward)
    print(env.observation_spec(), env.action_spec(), env.time_step_spec(), sep="\n")
    print(env.envs[0].unwrapped.get_action_meanings())
    env.close()

    # gym_env_wrappers and env_wrappers both become make(..., wrappers=[...]), applied in order
    limited_repeating_env = dt.envs.make(
        "ALE/Breakout-v5",
        num_envs=1,
        seed=42,
        frameskip=1,
        repeat_action_probability=0.0,
        wrappers=[
            partial(gymnasium.wrappers.TimeLimit, max_episode_steps=10_000),
            partial(ActionRepeat, times=4),
        ],
    )
    limited_repeating_env.close()

    # suite_atari.load(..., gym_env_wrappers=[AtariPreprocessing, FrameStack4]) + TFPyEnvironment:
    # make_atari applies the DQN preprocessing and is already batched (no TF wrapper needed)
    return dt.envs.make_atari("Breakout", num_envs=1, seed=42, max_episode_steps=scale.max_episode_steps)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="a few hundred steps (also BOOK_CH18_TINY=1)")
    args = parser.parse_args(argv)
    scale = TINY if args.tiny or os.environ.get("BOOK_CH18_TINY") == "1" else BOOK
    torch.manual_seed(42)
    logging.basicConfig(level=logging.INFO)

    tf_env = environments(scale)

    # ---- Creating the Deep Q-Network: uint8 pixels are scaled to [0, 1] inside QNetwork
    q_net = dt.networks.QNetwork(
        tf_env.observation_spec(),
        tf_env.action_spec(),
        conv_layers=list(scale.conv_layer_params),
        fc_layers=list(scale.fc_layer_params),
    )

    # ---- Creating the DQN Agent
    update_period = 4  # train the model every 4 steps
    # keras.optimizers.RMSprop(lr=2.5e-4, rho=0.95, momentum=0.0, epsilon=0.00001, centered=True):
    # with momentum 0, Keras 2 adds epsilon outside the square root, as torch.optim.RMSprop does
    # (dt.agents.optimizers.RMSpropTF puts it inside, as TensorFlow's kernels and Keras 3 do)
    optimizer = torch.optim.RMSprop(
        q_net.parameters(), lr=2.5e-4, alpha=0.95, momentum=0.0, eps=0.00001, centered=True
    )
    epsilon_fn = PolynomialDecay(
        start=1.0,  # initial ε
        end=0.01,  # final ε
        steps=250_000 // update_period,  # <=> 1,000,000 ALE frames
    )
    agent = dt.agents.DQN(
        tf_env.time_step_spec(),
        tf_env.action_spec(),
        q_network=q_net,
        optimizer=optimizer,
        target_update_period=2000,  # <=> 32,000 ALE frames
        loss="huber",  # td_errors_loss_fn=keras.losses.Huber(reduction="none")
        gamma=0.99,  # discount factor
        epsilon_greedy=lambda: epsilon_fn(agent.train_step),  # train_step_counter is agent.train_step
        seed=42,
    )

    # ---- Creating the Replay Buffer and the Corresponding Observer
    replay_buffer = dt.replay.UniformReplay(
        agent.collect_data_spec, capacity=scale.replay_capacity, num_envs=tf_env.batch_size, seed=42
    )
    replay_buffer_observer = replay_buffer.add_batch

    # ---- Creating Training Metrics
    train_metrics = [
        dt.metrics.NumberOfEpisodes(),
        dt.metrics.EnvironmentSteps(),
        dt.metrics.AverageReturn(),
        dt.metrics.AverageEpisodeLength(),
    ]
    dt.metric_utils.log_metrics(train_metrics)

    # ---- Creating the Collect Driver
    collect_driver = dt.DynamicStepDriver(
        tf_env,
        agent.collect_policy,
        observers=[replay_buffer_observer, *train_metrics],
        num_steps=update_period,  # collect 4 steps for each training iteration
    )
    initial_collect_policy = dt.policies.RandomPolicy(tf_env.time_step_spec(), tf_env.action_spec(), seed=42)
    init_driver = dt.DynamicStepDriver(
        tf_env,
        initial_collect_policy,
        observers=[replay_buffer.add_batch, ShowProgress(scale.warmup_steps)],
        num_steps=scale.warmup_steps,
    )
    final_time_step, _ = init_driver.run()  # and the policy state: () for a stateless policy
    print(f"\nwarm-up done; the environment is at step type {final_time_step.step_type}")

    # ---- Creating the Dataset: windows [batch, num_steps, ...] of consecutive trajectories
    trajectories, buffer_info = replay_buffer.sample(batch_size=2, num_steps=3)
    print(trajectories.observation.shape, trajectories.step_type, buffer_info.ids)
    dataset = replay_buffer.as_dataset(batch_size=scale.batch_size, num_steps=2, prefetch=3)

    # ---- Creating the Training Loop (no tf.function needed: nothing is traced)
    def train_agent(n_iterations: int) -> float:
        time_step = None  # continue from the environment's current time step
        policy_state = agent.collect_policy.get_initial_state(tf_env.batch_size)
        iterator = iter(dataset)
        loss = float("nan")
        for iteration in range(n_iterations):
            time_step, policy_state = collect_driver.run(time_step, policy_state)
            trajectories, _ = next(iterator)  # and the SampleInfo (ids, probabilities, weights)
            train_loss = agent.train(trajectories)
            loss = float(train_loss.loss)
            print(f"\r{iteration} loss:{loss:.5f}", end="")
            if iteration % scale.log_interval == 0:
                dt.metric_utils.log_metrics(train_metrics)
        return loss

    try:
        loss = train_agent(n_iterations=scale.n_iterations)
    finally:
        dataset.close()
        tf_env.close()
    print()
    dt.metric_utils.log_metrics(train_metrics)
    return {
        "loss": loss,
        "train_step": agent.train_step,
        "replay_size": len(replay_buffer),
        "env_steps": train_metrics[1].result(),
    }


if __name__ == "__main__":
    main()
