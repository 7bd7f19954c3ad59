"""Dot-product attention, forward and backward, in plain numpy.

    q (B, Tq, H)   k (B, Tk, H)   v (B, Tk, H)   mask (B, Tk), True = attend

    s   = q k^T / sqrt(H)          (scores, (B, Tq, Tk))
    w   = softmax(s) over Tk       (masked keys get weight exactly 0)
    out = w v                      ((B, Tq, H))

Scaling by 1/sqrt(H) is the default, as in PyTorch's
scaled_dot_product_attention; scale=False gives the plain dot product (the
attention of "Deep Learning from Scratch 2"). Every query must keep at least
one key, or its softmax is 0/0.
"""
import numpy as np


def dot_attention_forward(q, k, v, mask=None, scale=True):
    """Returns out (B, Tq, H), the attention weights (B, Tq, Tk), and a cache."""
    c = q.shape[-1] ** -0.5 if scale else 1.0
    s = q @ k.transpose(0, 2, 1)                 # s = q k^T
    s *= c                                       # s = q k^T / sqrt(H)
    if mask is not None:
        s = np.where(mask[:, None, :], s, -np.inf)  # exp(-inf) = 0: masked keys get no weight
    s -= s.max(-1, keepdims=True)                # softmax is shift-invariant; avoids overflow
    w = np.exp(s, out=s)
    w /= w.sum(-1, keepdims=True)                # w = softmax(s)
    return w @ v, w, (q, k, v, w, c)


def dot_attention_backward(dout, cache):
    """dout (B, Tq, H) is dL/dout. Returns {"q", "k", "v"} gradients."""
    q, k, v, w, c = cache
    dw = dout @ v.transpose(0, 2, 1)             # out = w v  =>  dL/dw = dout v^T
    dv = w.transpose(0, 2, 1) @ dout             #                dL/dv = w^T dout
    ds = w * (dw - (dw * w).sum(-1, keepdims=True))  # softmax: ds = w * (dw - sum(dw * w))
    ds *= c
    return {
        "q": ds @ k,                             # s = c q k^T  =>  dL/dq = c ds k
        "k": ds.transpose(0, 2, 1) @ q,          #                  dL/dk = c ds^T q
        "v": dv,
    }
