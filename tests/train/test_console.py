from drivetrain.train import get_preset
from drivetrain.train.console import config_help, config_lines, config_summary, plain_text


def test_plain_text_drops_restructuredtext_markup():
    assert plain_text("see :class:`~drivetrain.core.types.Trajectory`") == "see Trajectory"
    assert plain_text(":func:`drivetrain.envs.make` and :py:meth:`~a.B.c`") == "drivetrain.envs.make and c"
    assert plain_text(":data:`the fixed fields <drivetrain.train.config.X>`") == "the fixed fields"
    assert plain_text("``w -= lr g`` or `x`, in *environment* steps, **bold**") == (
        "w -= lr g or x, in environment steps, bold"
    )
    assert plain_text("2 * 3 * 4 and a_*b*_c stay") == "2 * 3 * 4 and a_*b*_c stay"
    assert (
        plain_text("For example::\n\n    code\n\n::\n\n    more") == "For example:\n\n    code\n\n\n    more"
    )


def test_help_summary_and_dump_of_a_preset():
    config = get_preset("cartpole-dqn").build()
    assert "--agent.learning_rate float = 0.0023" in config_help(config)
    assert "--env.atari." not in config_help(config)
    lines = config_lines(config)
    assert lines[0] == "config:" and "  loop.total_env_steps = 50000" in lines
    summary = config_summary(config, "runs/cartpole-dqn-0")
    assert summary.startswith("cartpole-dqn: DQN on CartPole-v1 (gymnasium, 1 env), 50,000 env steps, seed 0")
    assert "runs/cartpole-dqn-0" in summary and "\n" not in summary
