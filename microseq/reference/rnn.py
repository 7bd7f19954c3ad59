"""Elman RNN over a whole sequence, forward and backward (BPTT), in plain numpy.

Shapes are time-major and the weights are laid out as in PyTorch's nn.RNN:

    x (T, B, D)   h0 (B, H)   W_ih (H, D)   W_hh (H, H)   b_ih (H,)   b_hh (H,)

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh
    h_t = tanh(a_t)                       (or relu(a_t))

Only h_{t-1} W_hh^T depends on the previous step, so the input projection of
all T*B rows is one matmul before the loop, and in the backward the weight
gradients are one matmul after it.
"""
import numpy as np


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh"):
    """Run the RNN over x. Returns hs (T, B, H), every hidden state, and a cache."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    T, B, D = x.shape
    H = W_hh.shape[0]
    # Input part of a_t for every t at once: x_t W_ih^T + b_ih + b_hh.
    hs = (x.reshape(T * B, D) @ W_ih.T + (b_ih + b_hh)).reshape(T, B, H)
    h = h0
    for t in range(T):
        a = hs[t]
        a += h @ W_hh.T                          # a_t += h_{t-1} W_hh^T
        if nonlinearity == "tanh":
            h = np.tanh(a, out=a)                # h_t = tanh(a_t), written over a_t
        else:
            h = np.maximum(a, 0, out=a)          # h_t = relu(a_t)
    return hs, (x, h0, W_ih, W_hh, hs, nonlinearity)


def rnn_backward(dhs, cache, dh_last=None):
    """Backpropagation through time.

    dhs (T, B, H) is dL/dh_t from outside the recurrence (an output layer on
    every step), or None when only the last state is used; dh_last (B, H) is
    an extra gradient on h_T (e.g. from a decoder). Returns the gradient of
    every input of rnn_forward, keyed by its name.
    """
    x, h0, W_ih, W_hh, hs, nonlinearity = cache
    T, B, D = x.shape
    H = h0.shape[1]
    da = np.empty_like(hs)                       # dL/da_t for every t
    dh_next = np.zeros_like(h0) if dh_last is None else dh_last  # reaches h_t from step t+1
    for t in reversed(range(T)):
        dh = dh_next if dhs is None else dhs[t] + dh_next  # h_t feeds the output and step t+1
        if nonlinearity == "tanh":
            np.multiply(dh, 1 - hs[t] * hs[t], out=da[t])  # tanh'(a_t) = 1 - h_t^2
        else:
            np.multiply(dh, hs[t] > 0, out=da[t])          # relu'(a_t) = [h_t > 0]
        dh_next = da[t] @ W_hh                   # da_t/dh_{t-1} = W_hh
    h_prev = np.concatenate([h0[None], hs[:-1]]).reshape(T * B, H)  # h_{t-1} for every t
    da = da.reshape(T * B, H)
    db = da.sum(0)
    return {
        "x": (da @ W_ih).reshape(T, B, D),       # da_t/dx_t = W_ih
        "h0": dh_next,
        "W_ih": da.T @ x.reshape(T * B, D),      # sum over t of da_t^T x_t
        "W_hh": da.T @ h_prev,                   # sum over t of da_t^T h_{t-1}
        "b_ih": db,
        "b_hh": db.copy(),
    }
