"""The Transformer encoder in PyTorch's image: LayerNorm, MultiheadAttention,
TransformerEncoderLayer, TransformerEncoder, and positional encodings.

Constructor arguments, forward signatures, defaults, parameter names and
initialisation follow torch.nn, so a torch state dict converted to numpy
loads as is and gives the same outputs and gradients. Shapes, with
N = batch, L = target (query) length, S = source (key) length, E = embed_dim,
h = num_heads and d = E / h:

    batch_first=False (the default)   query (L, N, E)   key, value (S, N, E)
    batch_first=True                  query (N, L, E)   key, value (N, S, E)
    unbatched                         query (L, E)      key, value (S, E)

Masks, as in torch.nn.MultiheadAttention: a boolean mask marks with True what
may NOT be attended; a float mask is added to the scores (-inf drops).

    attn_mask         (L, S) for every sequence and head, or (N * h, L, S)
    key_padding_mask  (N, S): True at padding keys

Two deliberate differences: a query whose keys are all masked gets zero
attention weights (so its output is out_proj's bias) where torch gives NaN;
and is_causal=True without an attn_mask applies the causal mask where torch
asks for one. Given a mask, microseq always applies it (torch may take
is_causal as a promise that the mask is causal, and apply its own instead).
"""
import copy
import math

import numpy as np

from microseq import functional as F
from microseq.nn.layers import Dropout, Embedding, Linear, uniform
from microseq.nn.module import Module, Parameter
from microseq.ops import concat, gelu, relu, transpose
from microseq.scope import scope
from microseq.tensor import DEFAULT_DTYPE, ShapeError, Tensor, default_rng, no_grad


def generate_square_subsequent_mask(sz, dtype=None):
    """The causal mask (sz, sz): 0 on and below the diagonal, -inf above it,
    so position i attends to positions 0..i (torch's
    nn.Transformer.generate_square_subsequent_mask)."""
    return np.triu(np.full((sz, sz), -np.inf, dtype or DEFAULT_DTYPE), k=1)


class LayerNorm(Module):
    """Normalise each vector over its last axes to mean 0 and variance 1,
    then scale by `weight` (ones) and shift by `bias` (zeros)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        self.normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                                 else tuple(normalized_shape))
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        affine = elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, DEFAULT_DTYPE)) if affine else None
        self.bias = (Parameter(np.zeros(self.normalized_shape, DEFAULT_DTYPE))
                     if affine and bias else None)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


def _xavier_uniform(rows, cols):
    """uniform(-b, b) with b = sqrt(6 / (fan_in + fan_out)): torch's
    xavier_uniform_, its initialisation of attention projections."""
    return uniform(math.sqrt(6 / (rows + cols)), rows, cols)


def _additive(mask, dtype, name):
    """A mask as numbers to add to the scores: True (may not attend) -> -inf,
    False -> 0; a float mask as it is."""
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if mask.dtype == bool:
        return np.where(mask, -np.inf, 0).astype(dtype)
    if mask.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: {name} must be bool or float, got {mask.dtype}")
    return mask.astype(dtype, copy=False)


class MultiheadAttention(Module):
    """h attention heads side by side, each on its own d = E/h slice of the
    projected queries, keys and values:

        head_i = softmax(q_i k_i^T / sqrt(d) + mask) v_i
        output = concat(head_1..head_h) out_proj.weight^T + out_proj.bias

    forward returns (attn_output, attn_weights): the weights (N, L, S) are the
    heads' average (average_attn_weights=False: (N, h, L, S)); None when
    need_weights=False.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False):
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        if self._qkv_same_embed_dim:  # one (3E, E) matrix: rows 0:E make q, E:2E k, 2E:3E v
            self.in_proj_weight = _xavier_uniform(3 * embed_dim, embed_dim)
        else:
            self.q_proj_weight = _xavier_uniform(embed_dim, embed_dim)
            self.k_proj_weight = _xavier_uniform(embed_dim, self.kdim)
            self.v_proj_weight = _xavier_uniform(embed_dim, self.vdim)
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, DEFAULT_DTYPE)) if bias else None
        if add_bias_kv:  # one more key and value, learned, that every query can attend to
            std = math.sqrt(1 / embed_dim)  # torch's xavier_normal_ for a (1, 1, E) tensor
            self.bias_k, self.bias_v = (
                Parameter(default_rng().normal(0, std, (1, 1, embed_dim)).astype(DEFAULT_DTYPE))
                for _ in range(2))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            self.out_proj.bias.data[...] = 0

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        self_attention = query is key and key is value
        query, key, value = (x if isinstance(x, Tensor) else Tensor(x) for x in (query, key, value))
        unbatched = query.ndim == 2
        self._check_shapes(query, key, value, unbatched)
        if unbatched:  # one sequence: a batch of one
            query, key, value = (x.reshape(1, *x.shape) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = np.asarray(getattr(key_padding_mask, "data",
                                                      key_padding_mask))[None]
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (transpose(x, (1, 0, 2)) for x in (query, key, value))
        N, L, E = query.shape
        S = key.shape[1]
        mask = self._merged_mask(attn_mask, key_padding_mask, is_causal, N, L, S, query.dtype)

        with scope("heads"):
            q, k, v = self._project(query, key, value, self_attention)   # (N, h, L|S, d) each
            k, v, mask = self._extra_keys(k, v, mask)                    # S -> S+1 or S+2
            heads, attended = F.attention(                               # (N, h, L, d),
                q, k, v, mask, dropout_p=self.dropout if self.training else 0.0)  # (N, h, L, S)
        out = heads.transpose(0, 2, 1, 3).reshape(N, L, E)             # (N, L, E): heads joined
        out = self.out_proj(out)                                       # (N, L, E)

        if unbatched:
            out = out.reshape(L, E)
        elif not self.batch_first:
            out = transpose(out, (1, 0, 2))                            # (L, N, E)
        if not need_weights:
            return out, None
        if average_attn_weights:
            attended = attended.mean(axis=1)                           # (N, L, S)
        return out, (attended.reshape(*attended.shape[1:]) if unbatched else attended)

    def _project(self, query, key, value, self_attention):
        """q, k, v, each split into heads: (N, h, length, d)."""
        N, L, E = query.shape
        h, d = self.num_heads, self.head_dim
        if self_attention and self._qkv_same_embed_dim:
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (N, L, 3E)
            qkv = qkv.reshape(N, L, 3, h, d).transpose(2, 0, 3, 1, 4)      # (3, N, h, L, d)
            return qkv[0], qkv[1], qkv[2]
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            weights = w[:E], w[E:2 * E], w[2 * E:]
        else:
            weights = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b = self.in_proj_bias
        biases = (None,) * 3 if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        return tuple(
            F.linear(x, w, bias).reshape(N, x.shape[1], h, d).transpose(0, 2, 1, 3)
            for x, w, bias in zip((query, key, value), weights, biases))

    def _extra_keys(self, k, v, mask):
        """add_bias_kv appends the learned bias_k, bias_v as one more key and
        value; add_zero_attn then appends a zero key and value. Masks get a
        column that lets every query attend to each new key."""
        N, h, S, d = k.shape
        extras = []
        if self.bias_k is not None:
            extras.append((self.bias_k.reshape(1, h, 1, d), self.bias_v.reshape(1, h, 1, d)))
        if self.add_zero_attn:
            extras.append((0.0, 0.0))
        for extra_k, extra_v in extras:
            zeros = np.zeros((N, h, 1, d), k.dtype)
            k = concat([k, extra_k + zeros], axis=2)                  # (N, h, S+1, d)
            v = concat([v, extra_v + zeros], axis=2)
            if mask is not None:
                mask = np.concatenate([mask, np.zeros((*mask.shape[:-1], 1), mask.dtype)], -1)
        return k, v, mask

    def _check_shapes(self, query, key, value, unbatched):
        where = "MultiheadAttention"
        if query.ndim not in (2, 3):
            raise ShapeError(f"{where}: query must be (L, E), (L, N, E) or (N, L, E), "
                             f"got shape {query.shape}")
        sizes = (("query", query, self.embed_dim), ("key", key, self.kdim),
                 ("value", value, self.vdim))
        for name, x, size in sizes:
            if x.ndim != query.ndim or x.shape[-1] != size:
                raise ShapeError(f"{where}: {name} of shape {x.shape} must have {query.ndim} "
                                 f"axes and last size {size}")
        seq = 0 if unbatched or not self.batch_first else 1
        batch = 1 - seq
        if key.shape[seq] != value.shape[seq] or (
                not unbatched and not key.shape[batch] == value.shape[batch] == query.shape[batch]):
            raise ShapeError(f"{where}: query {query.shape}, key {key.shape} and value "
                             f"{value.shape} do not agree in batch size and key length")

    def _merged_mask(self, attn_mask, key_padding_mask, is_causal, N, L, S, dtype):
        """One additive mask broadcastable to the scores (N, h, L, S), or None."""
        h = self.num_heads
        mask = None
        if attn_mask is not None:
            mask = _additive(attn_mask, dtype, "attn_mask")
            if mask.shape == (L, S):
                mask = mask[None, None]                                # (1, 1, L, S)
            elif mask.shape == (N * h, L, S):
                mask = mask.reshape(N, h, L, S)
            else:
                raise ShapeError(f"MultiheadAttention: attn_mask must have shape (L, S) = "
                                 f"{(L, S)} or (N * num_heads, L, S) = {(N * h, L, S)}, "
                                 f"got {mask.shape}")
        elif is_causal:
            mask = generate_square_subsequent_mask(max(L, S), dtype)[:L, :S][None, None]
        if key_padding_mask is not None:
            padding = _additive(key_padding_mask, dtype, "key_padding_mask")
            if padding.shape != (N, S):
                raise ShapeError(f"MultiheadAttention: key_padding_mask must have shape "
                                 f"(N, S) = {(N, S)}, got {padding.shape}")
            padding = padding[:, None, None, :]                        # (N, 1, 1, S)
            mask = padding if mask is None else mask + padding
        return mask

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


_ACTIVATIONS = {"relu": relu, "gelu": gelu}


class TransformerEncoderLayer(Module):
    """Self-attention, then a position-wise feed-forward network, each wrapped
    in a residual connection and a LayerNorm:

        norm_first=False (post-norm, the original Transformer and torch's default)
            x = norm1(x + self_attention(x));   x = norm2(x + feed_forward(x))
        norm_first=True (pre-norm, as GPT-2)
            x = x + self_attention(norm1(x));   x = x + feed_forward(norm2(x))

    feed_forward(x) = linear2(dropout(activation(linear1(x)))); activation
    is "relu", "gelu" or any callable.
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True):
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"TransformerEncoderLayer: activation should be relu/gelu, "
                                 f"not {activation}")
            activation = _ACTIVATIONS[activation]
        # assigned in torch's order, so parameters and state dict keys come in its order
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = activation
        self.batch_first = batch_first

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src if isinstance(src, Tensor) else Tensor(src)  # (L, N, E), or (N, L, E) batch_first

        def attend(h):
            return self._sa_block(h, src_mask, src_key_padding_mask, is_causal)

        if self.norm_first:
            x = self._residual(x, attend(self._norm(1, x)))              # x + attn(norm1(x))
            return self._residual(x, self._ff_block(self._norm(2, x)))   # x + ff(norm2(x))
        x = self._norm(1, self._residual(x, attend(x)))                  # norm1(x + attn(x))
        return self._norm(2, self._residual(x, self._ff_block(x)))       # norm2(x + ff(x))

    def _norm(self, k, x):
        with scope(f"norm{k}"):
            return getattr(self, f"norm{k}")(x)

    def _residual(self, x, update):
        with scope("residual"):
            return x + update

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        with scope("self-attention"):
            x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                               need_weights=False, is_causal=is_causal)[0]
            return self.dropout1(x)

    def _ff_block(self, x):
        with scope("feed-forward"):
            h = self.activation(self.linear1(x))                 # (..., dim_feedforward)
            return self.dropout2(self.linear2(self.dropout(h)))  # (..., E)


class TransformerEncoder(Module):
    """num_layers copies of encoder_layer applied in turn (parameters
    `layers.0....` to `layers.{num_layers-1}....`), then `norm` if given.
    The copies start with equal weights, as in torch."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        # enable_nested_tensor and mask_check steer torch's fast paths; accepted for
        # compatibility, they change no result.
        self.layers = [copy.deepcopy(encoder_layer) for _ in range(num_layers)]
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src if isinstance(src, Tensor) else Tensor(src)
        for k, layer in enumerate(self.layers):
            with scope(f"layer{k}"):
                x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                          is_causal=bool(is_causal))
        if self.norm is not None:
            with scope("norm"):
                x = self.norm(x)
        return x

    def attention_maps(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """What each layer's heads attend to on `src` (the arguments as in
        forward): a list of num_layers arrays (N, nhead, L, L), row i the
        weights query i gives the keys. No gradients are recorded."""
        x = src if isinstance(src, Tensor) else Tensor(src)
        maps = []
        with no_grad():
            for layer in self.layers:
                h = layer.norm1(x) if layer.norm_first else x  # what its self-attention reads
                _, weights = layer.self_attn(h, h, h, attn_mask=mask,
                                             key_padding_mask=src_key_padding_mask,
                                             need_weights=True, average_attn_weights=False,
                                             is_causal=bool(is_causal))
                maps.append(weights.data)
                x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                          is_causal=bool(is_causal))
        return maps


def sinusoidal_encoding(length, d_model, dtype=None):
    """The fixed positional encoding of "Attention Is All You Need", (length, d_model):

        PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))
        PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

    Each pair of columns is a clock of its own period, from 2 pi to
    10000 * 2 pi steps, so every position gets a distinct pattern and a
    fixed offset is the same rotation everywhere."""
    positions = np.arange(length)[:, None]                           # (length, 1)
    rates = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)         # (ceil(d/2),)
    angles = positions * rates                                       # (length, ceil(d/2))
    pe = np.zeros((length, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, :d_model // 2])
    return pe.astype(dtype or DEFAULT_DTYPE)


class _AddPositions(Module):
    """x + the first T rows of the (max_len, d_model) table a subclass's
    `table(T)` gives, then dropout."""

    def __init__(self, d_model, max_len, dropout, batch_first):
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = Dropout(dropout)

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ShapeError(f"{type(self).__name__}: input must be (T, N, {self.d_model}) or "
                             f"(N, T, {self.d_model}) with batch_first, got {x.shape}")
        T = x.shape[1] if self.batch_first else x.shape[0]
        if T > self.max_len:
            raise ShapeError(f"{type(self).__name__}: a sequence of {T} positions is longer "
                             f"than max_len={self.max_len}")
        table = self.table(T)                                        # (T, E)
        table = table if self.batch_first else table.reshape(T, 1, self.d_model)
        return self.dropout(x + table)

    def extra_repr(self):
        return f"{self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"


class PositionalEncoding(_AddPositions):
    """Adds the sinusoidal encoding (no parameters) to x of shape (T, N, E),
    or (N, T, E) with batch_first; then dropout."""

    def __init__(self, d_model, max_len=5000, dropout=0.0, batch_first=False):
        super().__init__(d_model, max_len, dropout, batch_first)
        self.pe = sinusoidal_encoding(max_len, d_model)  # a constant array, not a Parameter

    def table(self, length):
        return self.pe[:length]


class LearnedPositionalEncoding(_AddPositions):
    """Adds a learned vector per position, the rows of `weight` (max_len, E)
    initialised as nn.Embedding's (GPT's position embeddings); then dropout.
    max_len has no default: every row is a parameter to train."""

    def __init__(self, d_model, max_len, dropout=0.0, batch_first=False):
        super().__init__(d_model, max_len, dropout, batch_first)
        self.weight = Embedding(max_len, d_model).weight

    def table(self, length):
        return self.weight[:length]
