import numpy as np
import pytest

from drivetrain.train.loop_state import TrainStats


def test_train_stats_average_the_loss_and_every_scalar_since_the_last_row():
    stats = TrainStats()
    stats.add(1.0, {"q": 2.0, "n": 3, "flag": True, "td_error": np.array([1.0, 2.0, 6.0], np.float32)})
    stats.add(
        3.0, {"q": np.float32(4.0), "n": np.int64(5), "flag": False, "td_error": np.array([0, 0], np.int64)}
    )
    means = stats.means()
    assert means == pytest.approx({"loss": 2.0, "q": 3.0, "n": 4.0, "flag": 0.5, "td_error": 1.5})


def test_train_stats_leave_out_what_is_not_a_number():
    stats = TrainStats()
    extra = {
        "name": "x",
        "empty": np.zeros(0),
        "mask": np.ones(3, bool),
        "z": np.ones(2, complex),
        "none": None,
    }
    stats.add(1.0, extra)
    assert stats.means() == {"loss": 1.0}
    assert TrainStats().means() == {}


def test_an_agents_torch_scalars_are_averaged_too():
    import torch

    stats = TrainStats()
    stats.add(1.0, {"entropy": torch.tensor(2.0), "q": torch.tensor([1.0, 3.0], requires_grad=True)})
    stats.add(1.0, {"entropy": torch.tensor(4.0, dtype=torch.float64), "q": torch.tensor([5.0])})
    assert stats.means() == pytest.approx({"loss": 1.0, "entropy": 3.0, "q": 3.5})
