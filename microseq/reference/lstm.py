"""LSTM over a whole sequence, forward and backward (BPTT), in plain numpy.

Shapes are time-major and the weights are laid out as in PyTorch's nn.LSTM,
the four gates stacked in the order i, f, g, o:

    x (T, B, D)   h0, c0 (B, H)   W_ih (4H, D)   W_hh (4H, H)   b_ih, b_hh (4H,)

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh      = [a_i, a_f, a_g, a_o]
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)
    g = tanh(a_g)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

The four gates are one fused (B, 4H) matmul per step, and their input part is
one matmul over all T*B rows before the loop.
"""
import numpy as np


def _sigmoid(a, out):
    """sigmoid(a) = (1 + tanh(a/2)) / 2: no overflow for large |a|, computed in place."""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh):
    """Run the LSTM over x. Returns hs (T, B, H), the last cell state c_T (B, H), and a cache."""
    T, B, D = x.shape
    H = W_hh.shape[1]
    # Input part of a_t for every t at once, (T, B, 4H); the gates overwrite it.
    gates = (x.reshape(T * B, D) @ W_ih.T + (b_ih + b_hh)).reshape(T, B, 4 * H)
    hs = np.empty((T, B, H), gates.dtype)
    cs = np.empty_like(hs)
    tanh_cs = np.empty_like(hs)
    h, c = h0, c0
    for t in range(T):
        a = gates[t]
        a += h @ W_hh.T                          # a_t += h_{t-1} W_hh^T
        _sigmoid(a[:, :2 * H], out=a[:, :2 * H])         # i, f = sigmoid(a_i), sigmoid(a_f)
        np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])  # g = tanh(a_g)
        _sigmoid(a[:, 3 * H:], out=a[:, 3 * H:])         # o = sigmoid(a_o)
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = np.multiply(f, c, out=cs[t])
        c += i * g                               # c_t = f * c_{t-1} + i * g
        np.tanh(c, out=tanh_cs[t])
        h = np.multiply(o, tanh_cs[t], out=hs[t])  # h_t = o * tanh(c_t)
    return hs, c, (x, h0, c0, W_ih, W_hh, gates, cs, tanh_cs, hs)


def lstm_backward(dhs, cache, dh_last=None, dc_last=None):
    """Backpropagation through time.

    dhs (T, B, H) is dL/dh_t from outside the recurrence, or None when only
    the last state is used; dh_last, dc_last (B, H) are extra gradients on
    h_T and c_T. Returns the gradient of every input of lstm_forward, keyed
    by its name.
    """
    x, h0, c0, W_ih, W_hh, gates, cs, tanh_cs, hs = cache
    T, B, D = x.shape
    H = h0.shape[1]
    da = np.empty_like(gates)                    # dL/da_t (pre-activations), (T, B, 4H)
    dh_next = np.zeros_like(h0) if dh_last is None else dh_last  # reaches h_t from step t+1
    dc_next = np.zeros_like(c0) if dc_last is None else dc_last  # reaches c_t from step t+1
    i, f, g, o = (gates[..., k * H:(k + 1) * H] for k in range(4))  # (T, B, H) views
    da_i, da_f, da_g, da_o = (da[..., k * H:(k + 1) * H] for k in range(4))
    for t in reversed(range(T)):
        c_prev = cs[t - 1] if t > 0 else c0
        tc = tanh_cs[t]
        dh = dh_next if dhs is None else dhs[t] + dh_next
        dc = dc_next + dh * o[t] * (1 - tc * tc)  # h_t = o * tanh(c_t), and c_t feeds c_{t+1}
        # Each gate: (d output / d gate) * (gate activation)'; sigmoid' = s(1-s), tanh' = 1-t^2.
        np.multiply(dh * tc, o[t] * (1 - o[t]), out=da_o[t])      # dh_t/do = tanh(c_t)
        np.multiply(dc * g[t], i[t] * (1 - i[t]), out=da_i[t])    # dc_t/di = g
        np.multiply(dc * c_prev, f[t] * (1 - f[t]), out=da_f[t])  # dc_t/df = c_{t-1}
        np.multiply(dc * i[t], 1 - g[t] * g[t], out=da_g[t])      # dc_t/dg = i
        dc_next = dc * f[t]                      # dc_t/dc_{t-1} = f
        dh_next = da[t] @ W_hh                   # da_t/dh_{t-1} = W_hh
    h_prev = np.concatenate([h0[None], hs[:-1]]).reshape(T * B, H)  # h_{t-1} for every t
    da = da.reshape(T * B, 4 * H)
    db = da.sum(0)
    return {
        "x": (da @ W_ih).reshape(T, B, D),       # da_t/dx_t = W_ih
        "h0": dh_next,
        "c0": dc_next,
        "W_ih": da.T @ x.reshape(T * B, D),      # sum over t of da_t^T x_t
        "W_hh": da.T @ h_prev,                   # sum over t of da_t^T h_{t-1}
        "b_ih": db,
        "b_hh": db.copy(),
    }
