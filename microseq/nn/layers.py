"""Linear, Embedding and Dropout, with PyTorch's shapes and initialisation.

Initial weights come from `microseq.default_rng()`, so `manual_seed(s)` before
building a model makes it reproducible.
"""
import numpy as np

from microseq import functional as F
from microseq.nn.module import Module, Parameter
from microseq.tensor import DEFAULT_DTYPE, Tensor, default_rng


def uniform(bound, *shape):
    """A Parameter drawn from uniform(-bound, bound): PyTorch's default for
    Linear and recurrent layers, with bound = 1/sqrt(fan_in or hidden_size)."""
    return Parameter(default_rng().uniform(-bound, bound, shape).astype(DEFAULT_DTYPE))


class Linear(Module):
    """Applies an affine map to the last axis: y = x W^T + b.

    Args:
        in_features: size of each input vector.
        out_features: size of each output vector.
        bias: if False, there is no b (default True).

    Shape:
        Input: (*, in_features), any number of leading axes.
        Output: (*, out_features).

    Attributes:
        weight: (out_features, in_features), initialised from
            uniform(-k, k) with k = 1/sqrt(in_features), as PyTorch does.
        bias: (out_features,), from the same distribution, or None.
    """

    def __init__(self, in_features, out_features, bias=True):
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / np.sqrt(in_features)
        self.weight = uniform(bound, out_features, in_features)
        self.bias = uniform(bound, out_features) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of num_embeddings vectors; `embed(ids)` looks rows up.

    Args:
        num_embeddings: number of rows (the vocabulary size V).
        embedding_dim: size of each vector (E).
        padding_idx: if given, this row starts at zero, its lookups give zero
            and it never gets a gradient (for padding tokens).

    Shape:
        Input: (*), integers in [0, num_embeddings), an array or a Tensor.
        Output: (*, embedding_dim).

    Attributes:
        weight: (num_embeddings, embedding_dim), initialised from N(0, 1).

    A repeated id adds up its gradients (the lookup is getitem, whose
    backward scatters with np.add.at).
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        weight = default_rng().standard_normal((num_embeddings, embedding_dim))
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is outside the table of "
                                 f"{num_embeddings}")
            padding_idx %= num_embeddings
            weight[padding_idx] = 0
        self.padding_idx = padding_idx
        self.weight = Parameter(weight.astype(DEFAULT_DTYPE))

    def forward(self, ids):
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding: ids must be integers, got {ids.dtype}")
        if ids.size and not 0 <= ids.min() <= ids.max() < self.num_embeddings:
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise IndexError(f"Embedding: id {bad} is outside the table of {self.num_embeddings} "
                             f"rows (ids must be 0 to {self.num_embeddings - 1})")
        vectors = self.weight[ids]
        if self.padding_idx is None:
            return vectors
        # Multiplying by 0 at padding positions also stops their gradient.
        keep = (ids != self.padding_idx)[..., None].astype(vectors.dtype)
        return vectors * keep

    def extra_repr(self):
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}"


class Dropout(Module):
    """Zeroes each element with probability p while training, scaling the
    rest by 1/(1-p) so that the expected value is unchanged; the identity
    after `model.eval()`.

    Args:
        p: probability of zeroing an element, in [0, 1) (default 0.5).

    Shape:
        Input: (*), any shape. Output: the same shape.
    """

    def __init__(self, p=0.5):
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        return F.dropout(x, self.p, self.training, rng=default_rng())

    def extra_repr(self):
        return f"p={self.p}"
