"""conv_layers in TF-Agents' (the book's) form: (filters, (kh, kw), stride), and ints."""

import numpy as np
import pytest
import torch

from drivetrain.core import specs
from drivetrain.networks import ConvLayer, QNetwork, conv_layer

ATARI = specs.ArraySpec((84, 84, 4), np.uint8)
ACTIONS = specs.BoundedArraySpec((), np.int64, 0, 3)
BOOK = [(32, (8, 8), 4), (64, (4, 4), 2), (64, (3, 3), 1)]


def test_the_books_conv_layer_params_build_the_nature_cnn():
    book = QNetwork(ATARI, ACTIONS, conv_layers=BOOK, fc_layers=[512], seed=0)
    ints = QNetwork(
        ATARI, ACTIONS, conv_layers=((32, 8, 4), (64, 4, 2), (64, 3, 1)), fc_layers=(512,), seed=0
    )
    for a, b in zip(book.state_dict().values(), ints.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    convs = [m for m in book.encoder.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    assert book(torch.zeros((2, 84, 84, 4), dtype=torch.uint8)).shape == (2, 4)


def test_rectangular_kernels_and_strides():
    net = QNetwork(ATARI, ACTIONS, conv_layers=[(8, [8, 4], (4, 2))], fc_layers=(), seed=0)
    # height (84 - 8) // 4 + 1 = 20, width (84 - 4) // 2 + 1 = 41
    assert net.encoder.output_dim == 8 * 20 * 41
    assert conv_layer((np.int64(8), 3, (2, 1))) == ConvLayer(8, (3, 3), (2, 1))


@pytest.mark.parametrize(
    ("layer", "match"),
    [
        ((32, (8, 8)), r"conv_layers\[0\] must be \(filters, kernel, stride\)"),
        ((32, (8, 8), 4, 1), "dilation is not supported"),
        ((32, (8, 8, 8), 4), r"its kernel \(8, 8, 8\)"),
        ((32, 8.0, 4), "its kernel 8.0"),
        ((0, 8, 4), "its filters 0"),
        ((32, 8, (4, 0)), r"its stride \(4, 0\)"),
        ((True, 8, 4), "its filters True"),
        ("abc", "must be"),
    ],
)
def test_other_forms_are_refused_by_name(layer, match):
    with pytest.raises(ValueError, match=match):
        QNetwork(ATARI, ACTIONS, conv_layers=[layer])


def test_a_bare_layer_instead_of_a_list_is_refused():
    with pytest.raises(ValueError, match=r"conv_layers\[0\] must be"):
        QNetwork(ATARI, ACTIONS, conv_layers=(32, (8, 8), 4))  # type: ignore[arg-type]
