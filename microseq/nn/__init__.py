"""Layers in PyTorch's image: Module, Parameter, Linear, Embedding, Dropout,
the recurrent cells and layers, attention, and the Transformer encoder."""
from microseq.nn.attention import AdditiveAttention, DotAttention
from microseq.nn.layers import Dropout, Embedding, Linear
from microseq.nn.module import Module, Parameter
from microseq.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from microseq.nn.transformer import (
    LayerNorm, LearnedPositionalEncoding, MultiheadAttention, PositionalEncoding,
    TransformerEncoder, TransformerEncoderLayer, generate_square_subsequent_mask,
    sinusoidal_encoding,
)

__all__ = [
    "GRU", "LSTM", "RNN", "AdditiveAttention", "DotAttention", "Dropout", "Embedding",
    "GRUCell", "LSTMCell", "LayerNorm", "LearnedPositionalEncoding", "Linear", "Module",
    "MultiheadAttention", "Parameter", "PositionalEncoding", "RNNCell", "TransformerEncoder",
    "TransformerEncoderLayer", "generate_square_subsequent_mask", "sinusoidal_encoding",
]
