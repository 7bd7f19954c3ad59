"""Classifiers for the generated tasks of microseq.data.recall.

    RecallTransformer / RecallLSTM   (keys, values) (B, T) -> logits (B, n_values),
                                     read at the last (query) position
    OrderClassifier                  ids (B, T) -> logits (B, 2), with or without positions

All three have `loss(*inputs, labels)` (mean cross-entropy) and
`accuracy(*inputs, labels)`. The recall models take one entry per position:
the embedding of its key plus the embedding of its value (the query's value
is the extra id n_values, "?"), so both read exactly the same vectors.
"""
import numpy as np

from microseq import nn
from microseq.models.seq2seq import open_forget_gates
from microseq.ops import cross_entropy, mean
from microseq.tensor import no_grad


class _Classifier(nn.Module):
    def loss(self, *inputs_and_labels):
        *inputs, labels = inputs_and_labels
        return cross_entropy(self(*inputs), labels)

    def accuracy(self, *inputs_and_labels, batch_size=1000):
        """The fraction of rows whose most likely class is the label."""
        *inputs, labels = inputs_and_labels
        right = 0
        with no_grad():
            for i in range(0, len(labels), batch_size):
                rows = slice(i, i + batch_size)
                logits = self(*(x[rows] for x in inputs))
                right += int((logits.data.argmax(-1) == labels[rows]).sum())
        return right / len(labels)


def _encoder(d_model, nhead, dim_feedforward, num_layers):
    """Pre-norm encoder blocks without dropout: the tasks have endless data."""
    block = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0,
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(block, num_layers)


class RecallTransformer(_Classifier):
    """Self-attention over the entries; the query position answers.

    No position embedding: a dictionary is a set, and the query is found by
    its "?" value, not by where it stands.
    """

    def __init__(self, n_keys, n_values, d_model=64, nhead=4, dim_feedforward=128,
                 num_layers=1):
        self.key_embed = nn.Embedding(n_keys, d_model)
        self.value_embed = nn.Embedding(n_values + 1, d_model)
        self.encoder = _encoder(d_model, nhead, dim_feedforward, num_layers)
        self.head = nn.Linear(d_model, n_values)

    def forward(self, keys, values):
        hidden = self.encoder(self.key_embed(keys) + self.value_embed(values))
        return self.head(hidden[:, -1])


class RecallLSTM(_Classifier):
    """An LSTM reads the entries in order; its state after the query answers.

    The forget gates start open (see open_forget_gates), so the memory
    starts out long.
    """

    def __init__(self, n_keys, n_values, embed_size=64, hidden_size=64):
        self.key_embed = nn.Embedding(n_keys, embed_size)
        self.value_embed = nn.Embedding(n_values + 1, embed_size)
        self.lstm = open_forget_gates(nn.LSTM(embed_size, hidden_size, batch_first=True))
        self.head = nn.Linear(hidden_size, n_values)

    def forward(self, keys, values):
        hidden, _ = self.lstm(self.key_embed(keys) + self.value_embed(values))
        return self.head(hidden[:, -1])


def matching_lstm(n_keys, n_values, n_params, embed_size=64):
    """The RecallLSTM whose parameter count is closest to n_params (its hidden
    size is the only thing chosen)."""
    def size(H):
        E, V = embed_size, n_values
        return (n_keys + V + 1) * E + 4 * H * (E + H) + 8 * H + H * V + V
    hidden = min(range(1, 4 * int(np.sqrt(n_params)) + 2), key=lambda H: abs(size(H) - n_params))
    return RecallLSTM(n_keys, n_values, embed_size, hidden)


_POSITIONS = {None: None, "sinusoidal": nn.PositionalEncoding,
              "learned": nn.LearnedPositionalEncoding}


class OrderClassifier(_Classifier):
    """Self-attention over symbols, averaged over positions, -> two classes.

    positions: None (the model sees a bag of symbols), "sinusoidal" (the
    fixed encoding added to each symbol's embedding) or "learned" (a
    trained vector per position, up to `length`).
    """

    def __init__(self, n_symbols, length, d_model=32, nhead=2, dim_feedforward=64,
                 positions="learned"):
        if positions not in _POSITIONS:
            raise ValueError(f"OrderClassifier: positions must be one of {list(_POSITIONS)}, "
                             f"got {positions!r}")
        self.length = length
        self.embed = nn.Embedding(n_symbols, d_model)
        self.positions = (_POSITIONS[positions](d_model, length, batch_first=True)
                          if positions else None)
        self.encoder = _encoder(d_model, nhead, dim_feedforward, 1)
        self.head = nn.Linear(d_model, 2)

    def forward(self, ids):
        ids = np.asarray(ids)
        if ids.shape[-1] > self.length:
            raise ValueError(f"OrderClassifier: sequences of at most {self.length} symbols, "
                             f"got {ids.shape[-1]}")
        hidden = self.embed(ids)
        if self.positions is not None:
            hidden = self.positions(hidden)
        return self.head(mean(self.encoder(hidden), axis=1))
