"""Fixtures shared by every test folder."""

import pytest


@pytest.fixture
def full_float32_on_cuda():
    """cuDNN runs convolutions and RNNs in TF32 by default (~1e-3 relative): tests that compare a
    CUDA agent with a CPU one need float32 products (``pytest.mark.usefixtures`` it)."""
    import torch  # here: the conftest of every folder, torch only where the fixture is used

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
