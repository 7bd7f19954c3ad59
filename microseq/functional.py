"""Composite functions: ordinary code over the primitive ops, so their
gradients come for free from ops.py."""
import math

import numpy as np

from microseq.ops import _layer_norm, masked_softmax, mean, softmax, transpose
from microseq.tensor import ShapeError, default_rng


def linear(x, weight, bias=None):
    """x @ weight.T + bias, with PyTorch's (out_features, in_features) weight."""
    y = x @ transpose(weight)
    return y if bias is None else y + bias


def mse_loss(prediction, target):
    diff = prediction - target
    return mean(diff * diff)


def dropout(x, p=0.5, training=True, rng=None):
    """Zero each element with probability p and scale the rest by 1/(1-p)
    (inverted dropout), so evaluation needs no rescaling."""
    if not training or p == 0:
        return x
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    rng = rng if rng is not None else default_rng()  # seeded by manual_seed()
    keep = (rng.random(x.shape) >= p).astype(x.dtype) / (1 - p)
    return x * keep


def one_hot(ids, n):
    """Integer ids (...) -> float32 array (..., n); a constant, not an op."""
    ids = np.asarray(ids)
    return (ids[..., None] == np.arange(n)).astype(np.float32)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing axes `normalized_shape` (an int or a tuple),
    as torch's F.layer_norm; weight and bias, if given, have that shape."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
        normalized_shape)
    if tuple(x.shape[x.ndim - len(normalized_shape):]) != normalized_shape:
        raise ShapeError(f"layer_norm: input of shape {tuple(x.shape)} does not end in "
                         f"normalized_shape {normalized_shape}")
    return _layer_norm(x, weight, bias, normalized_ndim=len(normalized_shape), eps=eps)


def attention(query, key, value, mask=None, scale=None, dropout_p=0.0):
    """softmax(query key^T * scale + mask) value over the last two axes:
    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).

    Returns (output, weights (..., L, S)); the weights are after dropout, the
    ones that multiplied value. mask is masked_softmax's: boolean with True
    where a query may attend, or additive. scale defaults to 1/sqrt(E)."""
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    n = key.ndim
    scores = (query * scale) @ key.transpose(*range(n - 2), n - 1, n - 2)   # (..., L, S)
    weights = softmax(scores) if mask is None else masked_softmax(scores, mask)
    weights = dropout(weights, dropout_p)
    return weights @ value, weights                                         # (..., L, Ev)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """Attention as torch's F.scaled_dot_product_attention: the output of
    `attention`. A boolean attn_mask marks with True what may be attended (the
    opposite of nn.MultiheadAttention's masks); a float one is added.
    is_causal lets query i attend to keys 0..i."""
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, "
                             "not both")
        attn_mask = np.tri(query.shape[-2], key.shape[-2], dtype=bool)
    if attn_mask is not None:
        attn_mask = np.asarray(getattr(attn_mask, "data", attn_mask))
    return attention(query, key, value, attn_mask, scale, dropout_p)[0]
