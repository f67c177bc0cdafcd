"""examples/book_ch18.py runs every section of the chapter at a tiny scale."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

pytestmark = pytest.mark.atari

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "book_ch18.py"


def test_the_chapter_runs_at_a_tiny_scale(capsys):
    spec = importlib.util.spec_from_file_location("book_ch18", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    start = time.perf_counter()
    result = module.main(["--tiny"])
    elapsed = time.perf_counter() - start
    tiny = module.TINY
    assert result["train_step"] == tiny.n_iterations
    assert (
        result["env_steps"] == 4 * tiny.n_iterations
    )  # the collect driver's steps, as the metrics count them
    assert result["replay_size"] >= tiny.warmup_steps + 4 * tiny.n_iterations
    assert result["loss"] == result["loss"]  # not NaN
    assert "loss:" in capsys.readouterr().out
    assert elapsed < 30
