import json

import pytest

from drivetrain.train.logger import RunLogger, read_progress


def test_rows_go_to_csv_jsonl_and_tensorboard(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log({"env_steps": 100, "average_return": 12.5, "loss": float("nan")})
        logger.log({"env_steps": 200, "average_return": 20.0, "eval_mean_return": 50.0})
    lines = (tmp_path / "progress.csv").read_text().splitlines()
    # The second row brought a column: the file was widened, the first row keeps its cells.
    assert lines[0] == "env_steps,average_return,loss,eval_mean_return"
    assert read_progress(tmp_path / "progress.csv") == [
        {"env_steps": 100.0, "average_return": 12.5},  # NaN is left empty
        {"env_steps": 200.0, "average_return": 20.0, "eval_mean_return": 50.0},
    ]
    records = [json.loads(x) for x in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert records[1] == {"env_steps": 200, "average_return": 20.0, "eval_mean_return": 50.0}
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_any_scalar_gets_a_column_in_a_stable_order_and_the_step_is_required(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        logger.log({"env_steps": 1, "wall_seconds": 2.0, "entropy": 0.5, "train_steps": 3})
        logger.log({"env_steps": 2, "approx_kl": 0.01, "wall_seconds": 4.0})
        with pytest.raises(ValueError, match="needs 'env_steps'"):
            logger.log({"loss": 1.0})
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert header == ["env_steps", "train_steps", "entropy", "approx_kl", "wall_seconds"]
    assert read_progress(tmp_path / "progress.csv") == [
        {"env_steps": 1, "train_steps": 3, "entropy": 0.5, "wall_seconds": 2.0},
        {"env_steps": 2, "approx_kl": 0.01, "wall_seconds": 4.0},
    ]


def test_resume_keeps_rows_up_to_the_checkpoint_and_appends(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        for step in (100, 200, 300):
            logger.log({"env_steps": step, "loss": step / 1000})
    with open(tmp_path / "progress.csv", "a") as f:
        f.write("4")  # a row torn by a crash
    before = (tmp_path / "progress.csv").read_text().splitlines()
    with RunLogger(tmp_path, keep_until=200, tensorboard=False) as logger:
        logger.log({"env_steps": 250, "loss": 0.25})
    after = (tmp_path / "progress.csv").read_text().splitlines()
    assert after[:3] == before[:3]  # header and the rows up to the checkpoint, byte for byte
    assert [r["env_steps"] for r in read_progress(tmp_path / "progress.csv")] == [100, 200, 250]
    steps = [json.loads(x)["env_steps"] for x in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert steps == [100, 200, 250]


def test_a_fresh_logger_starts_empty(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as logger:
        logger.log({"env_steps": 1})
    with RunLogger(tmp_path, tensorboard=False):
        pass
    assert read_progress(tmp_path / "progress.csv") == []


def test_infinities_are_left_out_and_numpy_integers_stay_integers(tmp_path):
    import numpy as np

    with RunLogger(tmp_path, tensorboard=False) as logger:
        for step in (100, 200, 300):
            logger.log({"env_steps": np.int64(step), "loss": float("inf") if step == 200 else 1.0})
    for line in (tmp_path / "progress.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert (tmp_path / "progress.csv").read_text().splitlines()[1:] == ["100,1.0", "200,", "300,1.0"]
    with RunLogger(tmp_path, keep_until=200, tensorboard=False):
        pass  # a resume trims both files alike
    assert [r["env_steps"] for r in read_progress(tmp_path / "progress.csv")] == [100, 200]
