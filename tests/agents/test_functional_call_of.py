import torch
from torch import nn

from drivetrain.agents.compiling import functional_call_of


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 3, bias=False)
        self.second = nn.Linear(3, 3, bias=False)
        self.second.weight = self.first.weight  # one tensor under two names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def test_a_module_that_ties_weights_is_called_with_them_tied():
    module = _Tied()
    call = functional_call_of(module)
    assert call.keywords == {"tie_weights": True}  # type: ignore[attr-defined]
    x, weight = torch.randn(2, 3), torch.randn(3, 3)
    out = call(module, {"first.weight": weight}, (x,))  # replaces both names' tensor
    torch.testing.assert_close(out, x @ weight.T @ weight.T)


def test_modules_without_shared_tensors_skip_the_search_and_give_the_same_values():
    modules = (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), nn.BatchNorm1d(3))
    call = functional_call_of(*modules)
    assert call.keywords == {"tie_weights": False}  # type: ignore[attr-defined]
    params = {name: torch.randn_like(p) for name, p in modules[0].named_parameters()}
    x = torch.randn(5, 3)
    torch.testing.assert_close(
        call(modules[0], params, (x,)), torch.func.functional_call(modules[0], params, (x,)), rtol=0, atol=0
    )
    assert functional_call_of(modules[0], _Tied()).keywords == {"tie_weights": True}  # type: ignore[attr-defined]
