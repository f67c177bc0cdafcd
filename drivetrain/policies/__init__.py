"""Policies. The NumPy ones import without torch; torch-backed ones live with their agents."""

from drivetrain.policies.numpy_policies import EpsilonGreedyPolicy, GreedyPolicy, RandomPolicy, ScriptedPolicy

__all__ = ["EpsilonGreedyPolicy", "GreedyPolicy", "RandomPolicy", "ScriptedPolicy"]
