"""log_metrics: TF-Agents' metric_utils.log_metrics on drivetrain's metrics."""

import logging

import numpy as np
import pytest

import drivetrain as dt
from drivetrain.core import types


def test_log_metrics_logs_each_name_and_result(caplog):
    episodes, steps = dt.metrics.NumberOfEpisodes(), dt.metrics.EnvironmentSteps()
    traj = types.Trajectory(
        np.array([1], np.int32),
        np.zeros((1, 1)),
        np.zeros(1),
        {},
        np.array([2], np.int32),
        np.ones(1),
        np.zeros(1),
    )
    episodes(traj)
    steps(traj)
    with caplog.at_level(logging.INFO, logger="drivetrain.metrics"):
        text = dt.metric_utils.log_metrics([episodes, steps], prefix="iteration 0")
    assert "NumberOfEpisodes = 1" in caplog.text and "EnvironmentSteps = 1" in caplog.text
    assert text.startswith("iteration 0") and caplog.records[0].levelno == logging.INFO


def test_log_metrics_refuses_what_is_not_a_metric():
    with pytest.raises(TypeError, match="has no result"):
        dt.metric_utils.log_metrics([object()])
