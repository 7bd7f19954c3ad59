"""GRU over a whole sequence, forward and backward (BPTT), in plain numpy.

Shapes are time-major and the weights are laid out as in PyTorch's nn.GRU,
the three gates stacked in the order r, z, n:

    x (T, B, D)   h0 (B, H)   W_ih (3H, D)   W_hh (3H, H)   b_ih, b_hh (3H,)

    r = sigmoid(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
    z = sigmoid(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
    n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

The reset gate multiplies the hidden part of n only, so the input and hidden
projections are kept apart: the input part is one matmul over all T*B rows
before the loop, the hidden part one fused (B, 3H) matmul per step.
"""
import numpy as np


def _sigmoid(a, out):
    """sigmoid(a) = (1 + tanh(a/2)) / 2: no overflow for large |a|, computed in place."""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    """Run the GRU over x. Returns hs (T, B, H), every hidden state, and a cache."""
    T, B, D = x.shape
    H = W_hh.shape[1]
    # Input parts x_t W_i*^T + b_i* for every t at once, (T, B, 3H); r, z, n overwrite them.
    gates = (x.reshape(T * B, D) @ W_ih.T + b_ih).reshape(T, B, 3 * H)
    hn = np.empty((T, B, H), gates.dtype)        # h_{t-1} W_hn^T + b_hn, needed by dr
    hs = np.empty_like(hn)
    h = h0
    for t in range(T):
        a = gates[t]
        ah = h @ W_hh.T
        ah += b_hh                               # hidden parts of r, z, n, (B, 3H)
        a[:, :2 * H] += ah[:, :2 * H]
        _sigmoid(a[:, :2 * H], out=a[:, :2 * H])  # r, z = sigmoid(.)
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        hn[t] = ah[:, 2 * H:]
        n += r * hn[t]
        np.tanh(n, out=n)                        # n = tanh(x W_in^T + b_in + r * hn)
        h = np.subtract(h, n, out=hs[t])
        h *= z
        h += n                                   # h_t = (1 - z) * n + z * h_{t-1}
    return hs, (x, h0, W_ih, W_hh, gates, hn, hs)


def gru_backward(dhs, cache, dh_last=None):
    """Backpropagation through time.

    dhs (T, B, H) is dL/dh_t from outside the recurrence, or None when only
    the last state is used; dh_last (B, H) is an extra gradient on h_T.
    Returns the gradient of every input of gru_forward, keyed by its name.
    """
    x, h0, W_ih, W_hh, gates, hn, hs = cache
    T, B, D = x.shape
    H = h0.shape[1]
    dax = np.empty_like(gates)                   # dL/d(input parts): the pre-activations of r, z, n
    dah = np.empty_like(gates)                   # dL/d(hidden parts): same for r, z; times r for n
    dh_next = np.zeros_like(h0) if dh_last is None else dh_last  # reaches h_t from step t+1
    r, z, n = (gates[..., k * H:(k + 1) * H] for k in range(3))  # (T, B, H) views
    da_r, da_z, da_n = (dax[..., k * H:(k + 1) * H] for k in range(3))
    for t in reversed(range(T)):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dh_next if dhs is None else dhs[t] + dh_next
        # Each gate: (d output / d gate) * (gate activation)'; sigmoid' = s(1-s), tanh' = 1-t^2.
        np.multiply(dh * (1 - z[t]), 1 - n[t] * n[t], out=da_n[t])         # dh_t/dn = 1 - z
        np.multiply(dh * (h_prev - n[t]), z[t] * (1 - z[t]), out=da_z[t])  # dh_t/dz = h_{t-1} - n
        np.multiply(da_n[t] * hn[t], r[t] * (1 - r[t]), out=da_r[t])       # da_n/dr = hn
        dah[t, :, :2 * H] = dax[t, :, :2 * H]    # r and z: hidden part has the same gradient
        np.multiply(da_n[t], r[t], out=dah[t, :, 2 * H:])               # da_n/dhn = r
        dh_next = dh * z[t] + dah[t] @ W_hh      # h_{t-1} reaches h_t directly (z) and via r, z, n
    h_prev = np.concatenate([h0[None], hs[:-1]]).reshape(T * B, H)  # h_{t-1} for every t
    dax = dax.reshape(T * B, 3 * H)
    dah = dah.reshape(T * B, 3 * H)
    return {
        "x": (dax @ W_ih).reshape(T, B, D),
        "h0": dh_next,
        "W_ih": dax.T @ x.reshape(T * B, D),     # sum over t of dax_t^T x_t
        "W_hh": dah.T @ h_prev,                  # sum over t of dah_t^T h_{t-1}
        "b_ih": dax.sum(0),
        "b_hh": dah.sum(0),
    }
