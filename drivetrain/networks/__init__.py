"""Networks (PyTorch): encoders, MLP and Nature CNN torsos, linear and dueling heads, QNetwork,
recurrent cores (LSTM, GRU) and RecurrentQNetwork."""

from drivetrain.networks.conv import NATURE_CNN_LAYERS, ConvLayer, ConvTorso, conv_layer, nature_cnn
from drivetrain.networks.encoders import OneHotEncoder, VectorEncoder
from drivetrain.networks.heads import DuelingHead, QHead, q_head
from drivetrain.networks.initialization import conv2d, init_layer, linear, make_generator
from drivetrain.networks.mlp import MLP
from drivetrain.networks.q_network import QNetwork, make_encoder, num_actions_of
from drivetrain.networks.recurrent import RecurrentCore, RecurrentQNetwork

__all__ = [
    "MLP",
    "NATURE_CNN_LAYERS",
    "ConvLayer",
    "ConvTorso",
    "DuelingHead",
    "OneHotEncoder",
    "QHead",
    "QNetwork",
    "RecurrentCore",
    "RecurrentQNetwork",
    "VectorEncoder",
    "conv2d",
    "conv_layer",
    "init_layer",
    "linear",
    "make_encoder",
    "make_generator",
    "nature_cnn",
    "num_actions_of",
    "q_head",
]
