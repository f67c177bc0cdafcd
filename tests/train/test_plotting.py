from drivetrain.train.logger import RunLogger
from drivetrain.train.plotting import plot_learning_curve


def test_learning_curve_png_is_written(tmp_path):
    assert plot_learning_curve(tmp_path / "progress.csv", tmp_path / "curve.png") is None
    with RunLogger(tmp_path, tensorboard=False) as logger:
        for i in range(1, 6):
            row = {"env_steps": 1000 * i, "average_return": 10.0 * i, "loss": 1.0 / i, "q_values": float(i)}
            if i % 2 == 0:
                row |= {"eval_mean_return": 20.0 * i, "eval_std_return": 1.0}
            logger.log(row)
    path = plot_learning_curve(tmp_path / "progress.csv", tmp_path / "curve.png", title="test")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
