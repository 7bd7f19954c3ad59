"""Layers in PyTorch's image: Module, Parameter, Linear, Embedding, Dropout,
the recurrent cells and layers, attention and Conv2d."""
from microseq.nn.attention import AdditiveAttention, DotAttention
from microseq.nn.conv import Conv2d
from microseq.nn.layers import Dropout, Embedding, Linear
from microseq.nn.module import Module, Parameter
from microseq.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__all__ = [
    "GRU", "LSTM", "RNN", "AdditiveAttention", "Conv2d", "DotAttention", "Dropout", "Embedding",
    "GRUCell", "LSTMCell", "Linear", "Module", "Parameter", "RNNCell",
]
