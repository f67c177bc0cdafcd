import numpy as np
import pytest
import torch
from torch.nn import functional

from drivetrain.core import specs
from drivetrain.networks import (
    MLP,
    NATURE_CNN_LAYERS,
    ConvTorso,
    DuelingHead,
    QNetwork,
    init_layer,
    make_generator,
    nature_cnn,
)

VECTOR = specs.ArraySpec((4,), np.float32, "observation")
ATARI = specs.StackedFramesSpec((84, 84, 4), np.uint8, 0, 255, "observation")
ACTIONS = specs.BoundedArraySpec((), np.int64, 0, 5, "action")


def test_mlp_q_network_shapes_and_layers():
    net = QNetwork(VECTOR, ACTIONS, fc_layers=(256, 256), seed=0)
    q = net(torch.randn(7, 4))
    assert q.shape == (7, 6) and q.dtype == torch.float32
    widths = [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(4, 256), (256, 256), (256, 6)]


def test_vector_observations_of_other_dtypes_are_cast_to_float():
    spec = specs.ArraySpec((3,), np.float64)
    net = QNetwork(spec, ACTIONS, fc_layers=(8,), seed=0)
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    torch.testing.assert_close(net(torch.from_numpy(x)), net(torch.from_numpy(x.astype(np.float32))))


def test_nature_cnn_shapes_and_parameter_count():
    net = QNetwork(ATARI, ACTIONS, seed=0)  # conv_layers=None: the Nature CNN, fc (512,)
    x = torch.randint(0, 256, (3, 84, 84, 4), dtype=torch.uint8)
    assert net(x).shape == (3, 6)
    assert net.encoder.output_dim == 64 * 7 * 7
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (4, 32, 8, 4),
        (32, 64, 4, 2),
        (64, 64, 3, 1),
    ]
    # Mnih et al. 2015: conv 8412 + 32832 + 36928, fc 3136*512+512, out 512*6+6
    expected = (
        (4 * 32 * 64 + 32) + (32 * 64 * 16 + 64) + (64 * 64 * 9 + 64) + (3136 * 512 + 512) + (512 * 6 + 6)
    )
    assert sum(p.numel() for p in net.parameters()) == expected


def test_cnn_permutes_channels_last_and_scales_uint8():
    torso = ConvTorso((10, 12, 2), [(3, 4, 2)], scale=1.0 / 255.0, generator=make_generator(0))
    x = torch.randint(0, 256, (2, 10, 12, 2), dtype=torch.uint8)
    conv = torso.convs[0]
    # the same convolution on NCHW floats in [0, 1], written out
    expected = torch.relu(
        functional.conv2d(x.permute(0, 3, 1, 2).float() / 255.0, conv.weight, conv.bias, stride=2)
    )
    torch.testing.assert_close(torso(x), expected.flatten(1))
    assert torso.output_dim == 3 * 4 * 5


@pytest.mark.parametrize("frames_first", [False, True])
def test_cnn_convolves_in_the_channels_last_format_with_nchw_values(frames_first):
    torso = ConvTorso((12, 12, 4), [(8, 4, 2), (6, 3, 1)], scale=1.0 / 255.0, generator=make_generator(0))
    for conv in torso.convs[::2]:
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randint(0, 256, (3, 4, 12, 12), dtype=torch.uint8)  # frames first in memory: a replay's stacks
    x = x.permute(0, 2, 3, 1) if frames_first else x.permute(0, 2, 3, 1).contiguous()
    expected = x.permute(0, 3, 1, 2).contiguous().float() / 255.0  # the default NCHW format, written out
    for conv in torso.convs[::2]:
        weight = conv.weight.contiguous()
        expected = torch.relu(functional.conv2d(expected, weight, conv.bias, stride=conv.stride))
    torch.testing.assert_close(torso(x), expected.flatten(1), rtol=1e-5, atol=1e-6)


def test_float_images_are_not_scaled():
    spec = specs.ArraySpec((8, 8, 1), np.float32)
    net = QNetwork(spec, ACTIONS, conv_layers=[(2, 3, 1)], fc_layers=(), seed=0)
    assert net.encoder.scale is None
    assert QNetwork(ATARI, ACTIONS, seed=0).encoder.scale == pytest.approx(1 / 255)


def test_custom_conv_layers():
    net = QNetwork(ATARI, ACTIONS, conv_layers=[(16, 8, 4), (32, 4, 2)], fc_layers=(256,), seed=0)
    assert net.encoder.output_dim == 32 * 9 * 9
    assert net(torch.zeros(1, 84, 84, 4, dtype=torch.uint8)).shape == (1, 6)


def test_dueling_head_streams_and_identity():
    net = QNetwork(ATARI, ACTIONS, dueling=True, seed=0)
    head = net.head
    assert isinstance(head, DuelingHead)
    # the last fc layer is duplicated into the two streams: Nature CNN -> 512 | 512 -> V | A
    assert len(net.torso) == 0
    assert head.value_torso[0].in_features == 3136 and head.value_torso[0].out_features == 512
    assert head.advantage.out_features == 6 and head.value.out_features == 1
    x = torch.randint(0, 256, (5, 84, 84, 4), dtype=torch.uint8)
    q = net(x)
    features = net.encoder(x)
    value = head.value(head.value_torso(features))
    advantage = head.advantage(head.advantage_torso(features))
    torch.testing.assert_close(q, value + advantage - advantage.mean(dim=1, keepdim=True))
    torch.testing.assert_close(q.mean(dim=1), value.squeeze(1))  # mean over actions = V


def test_dueling_mlp_shares_all_but_the_last_layer():
    net = QNetwork(VECTOR, ACTIONS, fc_layers=(64, 32), dueling=True, seed=0)
    assert net.torso.output_dim == 64
    assert net.head.value_torso.output_dim == 32 and net.head.advantage_torso.output_dim == 32
    assert net(torch.randn(3, 4)).shape == (3, 6)


def test_discrete_observations_are_one_hot():
    spec = specs.BoundedArraySpec((), np.int64, 2, 5)  # states 2..5
    net = QNetwork(spec, ACTIONS, fc_layers=(), seed=0)
    linear = net.head.linear
    q = net(torch.tensor([2, 5, 3]))
    torch.testing.assert_close(q, linear.weight[:, [0, 3, 1]].T + linear.bias)


def test_initialization_is_explicit_orthogonal_and_seeded():
    net = QNetwork(VECTOR, ACTIONS, fc_layers=(16, 16), seed=3)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    for layer, gain in zip(linears, [2**0.5, 2**0.5, 1.0], strict=True):
        w = layer.weight.detach()
        rows, cols = w.shape
        gram = w @ w.T if rows <= cols else w.T @ w
        torch.testing.assert_close(gram, gain**2 * torch.eye(min(rows, cols)), atol=1e-5, rtol=0)
        assert torch.count_nonzero(layer.bias) == 0
    same = QNetwork(VECTOR, ACTIONS, fc_layers=(16, 16), seed=3)
    other = QNetwork(VECTOR, ACTIONS, fc_layers=(16, 16), seed=4)
    for a, b in zip(net.parameters(), same.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(linears[0].weight, next(other.parameters()))


def test_seeded_initialization_leaves_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    QNetwork(VECTOR, ACTIONS, fc_layers=(16,), seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_building_blocks():
    mlp = MLP(5, (7, 3), make_generator(0))
    assert mlp.output_dim == 3 and mlp(torch.randn(2, 5)).shape == (2, 3)
    assert MLP(5, ()).output_dim == 5
    assert nature_cnn().output_dim == 3136
    assert NATURE_CNN_LAYERS == ((32, 8, 4), (64, 4, 2), (64, 3, 1))
    layer = init_layer(torch.nn.Linear(4, 4), gain=2.0, generator=make_generator(0))
    torch.testing.assert_close(layer.weight @ layer.weight.T, 4.0 * torch.eye(4), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("obs_spec", "action_spec", "kwargs", "error", "match"),
    [
        ({"a": VECTOR}, ACTIONS, {}, TypeError, "single ArraySpec"),
        (
            specs.ArraySpec((4, 3), np.float32),
            ACTIONS,
            {},
            ValueError,
            r"unsupported observation shape \(4, 3\)",
        ),
        (VECTOR, ACTIONS, {"conv_layers": [(8, 3, 1)]}, ValueError, "conv_layers need an image"),
        (
            VECTOR,
            specs.BoundedArraySpec((2,), np.int64, 0, 3),
            {},
            TypeError,
            "scalar integer BoundedArraySpec",
        ),
        (VECTOR, specs.BoundedArraySpec((), np.float32, -1, 1), {}, TypeError, "discrete actions"),
        (VECTOR, specs.ArraySpec((), np.int64), {}, TypeError, "BoundedArraySpec"),
        (specs.ArraySpec((6, 6, 1), np.uint8), ACTIONS, {}, ValueError, "kernel 8 does not fit"),
        (ATARI, ACTIONS, {"conv_layers": [(8, 3)]}, ValueError, r"conv_layers\[0\] must be"),
        (VECTOR, ACTIONS, {"fc_layers": (0,)}, ValueError, r"QNetwork: fc_layers\[0\] must be >= 1, got 0"),
        (
            VECTOR,
            ACTIONS,
            {"fc_layers": (8, -1), "dueling": True},
            ValueError,
            r"fc_layers\[1\] must be >= 1",
        ),
        (VECTOR, ACTIONS, {"fc_layers": 64}, TypeError, "fc_layers must be a sequence of layer widths"),
        (
            VECTOR,
            ACTIONS,
            {"fc_layers": (64.7,)},
            TypeError,
            r"fc_layers\[0\] must be an int width, got 64.7",
        ),
        (specs.ArraySpec((3,), np.str_), ACTIONS, {}, TypeError, "numeric"),
    ],
)
def test_clear_errors_for_unsupported_specs(obs_spec, action_spec, kwargs, error, match):
    with pytest.raises(error, match=match):
        QNetwork(obs_spec, action_spec, **kwargs)


def test_degenerate_image_and_action_shapes_are_refused_at_construction():
    from drivetrain.networks.continuous import continuous_action_dim
    from drivetrain.networks.conv import ConvTorso

    with pytest.raises(ValueError, match=r"input_shape \(84, 84, 0\) needs every size >= 1"):
        ConvTorso((84, 84, 0))
    with pytest.raises(TypeError, match="at least one dimension"):
        continuous_action_dim(specs.BoundedArraySpec((0,), np.float32, -1.0, 1.0), "SAC")


def test_widths_as_a_numpy_array_still_build_and_a_float_hidden_size_is_named():
    from drivetrain.networks.recurrent import RecurrentQNetwork

    net = QNetwork(VECTOR, ACTIONS, fc_layers=np.array([8, 8]))
    assert [m.out_features for m in net.torso if hasattr(m, "out_features")] == [8, 8]
    with pytest.raises(TypeError, match=r"hidden_size must be an int, got 8\.5"):
        RecurrentQNetwork(VECTOR, ACTIONS, hidden_size=8.5, fc_layers=(8,))


def test_encoder_errors_name_the_network_being_built():
    from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
    from drivetrain.networks.continuous import SquashedGaussianActor

    flat_image = specs.ArraySpec((10, 10), np.float32)
    with pytest.raises(ValueError, match=r"^ActorCriticNetwork: unsupported observation shape"):
        ActorCriticNetwork(flat_image, ACTIONS)
    with pytest.raises(ValueError, match=r"^SquashedGaussianActor: unsupported observation shape"):
        SquashedGaussianActor(flat_image, 1)
