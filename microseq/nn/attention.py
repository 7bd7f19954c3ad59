"""Attention: dot-product and additive (Bahdanau), with a padding mask.

    query (B, Tq, Hq)   keys (B, Tk, Hk)   values (B, Tk, Hv)   mask (B, Tk), True = attend

    DotAttention       score(q, k) = q . k / sqrt(H)      (Hq = Hk = H; scale=False drops sqrt(H))
    AdditiveAttention  score(q, k) = v . tanh(W_q q + W_k k)
    weights = softmax(scores) over Tk,   context = weights @ values

Both return (context (B, Tq, Hv), weights (B, Tq, Tk)); the weights are what
an attention heatmap draws. A query of shape (B, Hq), one decoder step, gives
context (B, Hv) and weights (B, Tk). Masked keys get a weight of exactly 0
(ops.masked_softmax, as in the Transformer): a query whose keys are all
masked gets all-zero weights and a zero context instead of NaN.
"""
import numpy as np

from microseq.nn.layers import Linear, uniform
from microseq.nn.module import Module
from microseq.ops import masked_softmax, softmax, tanh, transpose
from microseq.tensor import ShapeError, Tensor


def _attend(scores, values, mask, one_step):
    """Masked softmax of scores (B, Tq, Tk), then the weighted sum of values."""
    if mask is not None:
        mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)
        if mask.shape != (scores.shape[0], scores.shape[2]):
            raise ShapeError(f"attention: mask must have shape (batch, keys) = "
                             f"{(scores.shape[0], scores.shape[2])}, got {mask.shape}")
        weights = masked_softmax(scores, mask[:, None, :], axis=-1)  # a hidden key gets 0
    else:
        weights = softmax(scores, axis=-1)
    context = weights @ values
    if one_step:
        return context.reshape(context.shape[0], -1), weights.reshape(weights.shape[0], -1)
    return context, weights


def _as_queries(query):
    """(B, Tq, H) as it is, or one step (B, H) as (B, 1, H); and whether it was one step."""
    query = query if isinstance(query, Tensor) else Tensor(query)
    if query.ndim == 2:
        return query.reshape(query.shape[0], 1, query.shape[1]), True
    return query, False


class DotAttention(Module):
    """Scaled dot-product attention: weights = softmax(q . k / sqrt(H)) over
    the keys, context = weights @ values. No parameters.

    Args:
        scale: divide the scores by sqrt(H) (default True); False gives the
            plain dot product.

    Call: `attention(query, keys, values, mask=None)` with
        query: (B, Tq, H), or (B, H) for one decoder step.
        keys: (B, Tk, H).
        values: (B, Tk, Hv).
        mask: (B, Tk) booleans, True where a key may be attended; optional.

    Returns:
        (context, weights): (B, Tq, Hv) and (B, Tq, Tk), or (B, Hv) and
        (B, Tk) for a one-step query. Masked keys get a weight of exactly 0.
    """

    def __init__(self, scale=True):
        self.scale = scale

    def forward(self, query, keys, values, mask=None):
        query, one_step = _as_queries(query)
        if query.shape[-1] != keys.shape[-1]:
            raise ShapeError(f"DotAttention: query size {query.shape[-1]} and key size "
                             f"{keys.shape[-1]} differ")
        scores = query @ transpose(keys, (0, 2, 1))
        if self.scale:
            scores = scores * (1 / np.sqrt(query.shape[-1]))
        return _attend(scores, values, mask, one_step)

    def extra_repr(self):
        return "" if self.scale else "scale=False"


class AdditiveAttention(Module):
    """Additive (Bahdanau) attention: score(q, k) = v . tanh(W_q q + W_k k),
    weights = softmax(scores) over the keys, context = weights @ values.

    Args:
        query_size: Hq, the size of each query vector.
        key_size: Hk, the size of each key vector.
        hidden_size: A, the size of the space where queries meet keys.

    Called and returning as DotAttention, except that queries (B, Tq, Hq) and
    keys (B, Tk, Hk) may differ in size.

    Returns:
        (context (B, Tq, Hv), weights (B, Tq, Tk)).

    Attributes:
        query_proj.weight: W_q, (A, Hq). key_proj.weight: W_k, (A, Hk).
        v: (A,).
    """

    def __init__(self, query_size, key_size, hidden_size):
        self.query_proj = Linear(query_size, hidden_size, bias=False)
        self.key_proj = Linear(key_size, hidden_size, bias=False)
        self.v = uniform(1 / np.sqrt(hidden_size), hidden_size)

    def forward(self, query, keys, values, mask=None, projected_keys=None):
        """projected_keys: self.key_proj(keys), when a decoder that asks at
        every step has computed it once for all of them."""
        query, one_step = _as_queries(query)
        q = self.query_proj(query)                     # (B, Tq, A)
        k = self.key_proj(keys) if projected_keys is None else projected_keys  # (B, Tk, A)
        B, Tq, A = q.shape
        # Every query against every key: (B, Tq, 1, A) + (B, 1, Tk, A).
        features = tanh(q.reshape(B, Tq, 1, A) + k.reshape(B, 1, k.shape[1], A))
        scores = (features @ self.v.reshape(A, 1)).reshape(B, Tq, k.shape[1])
        return _attend(scores, values, mask, one_step)
