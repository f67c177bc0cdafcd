import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The networks of these tests are tiny: one thread is fastest, and immune to busy neighbours."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
