"""One recurrent time step as one op: the RNN, LSTM and GRU steps nn runs fast.

A speed device (see microseq.fast): nn's recurrent layers use these ops while
the fast path is on, and build the same steps from primitive ops when it is
off. Their VJPs hand the fast backward pass deferred gradients (Product,
Scatter), so they run only with it on.

Written with the primitives, an LSTM step is sixteen nodes (a matmul, adds,
four gate nonlinearities, products, slices) and each allocates and frees its
own arrays. Here each step is one node whose forward works in place and whose
VJP is the step's hand-derived backward, as cuDNN and PyTorch fuse theirs.
The same equations built from primitives are what the tests check these
against (values and every gradient), besides finite differences.

Every step takes xp, the input part of the gates (x W_ih^T + b_ih, see
nn.recurrent), the previous state and W_hh (G*H, H), laid out as PyTorch's.
A layer passes the input parts of all T steps, xp (T, B, G*H), and t: the
step slices xp[t] itself, which spares the graph one node per step.

    rnn_cell   h' = tanh(xp + h W_hh^T)                          (or relu)
    lstm_cell  [i, f, g, o] = xp + h W_hh^T;  i, f, o = sigmoid, g = tanh
               c' = f c + i g,   h' = o tanh(c')      (h, c) in and out stacked (2, B, H)
    gru_cell   [r, z] = sigmoid(xp_rz + h W_rz^T);  n = tanh(xp_n + r (h W_n^T + b_hn))
               h' = (1 - z) n + z h

The inputs' VJPs all need the same gradient of the gate pre-activations, da;
`_shared` computes it once per backward pass and hands it to each. W_hh's
gradient, da^T h, is left to the engine as a Product, so that the T steps'
are summed as one matmul.
"""
import numpy as np

from microseq.fast import Product, Scatter, add_slice
from microseq.tensor import op


def _shared(backward):
    """backward(g), computed once for the same g and reused by every VJP of one op."""
    memo = [None, None]

    def once(g):
        if memo[0] is not g:
            memo[0], memo[1] = g, backward(g)
        return memo[1]

    return once


def _gate_input(xp, t):
    """This step's input part of the gates: xp (B, G*H), or xp[t] of every step's."""
    return xp if t is None else xp[t]


def _gate_input_vjp(da, t):
    """xp's VJP, from da(g), the gradient of this step's gate inputs."""
    return da if t is None else (lambda g: Scatter(t, da(g), add_slice))


def _sigmoid_(x):
    """sigmoid(x) = (1 + tanh(x/2)) / 2 in place: no overflow for large |x|."""
    x *= 0.5
    np.tanh(x, out=x)
    x += 1
    x *= 0.5
    return x


@op
def rnn_cell(xp, h, w_hh, t=None, nonlinearity="tanh"):
    """h' = tanh(xp + h W_hh^T), or relu; xp and h (B, H), w_hh (H, H)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    y = h @ w_hh.T
    y += _gate_input(xp, t)
    if nonlinearity == "tanh":
        np.tanh(y, out=y)
        da = _shared(lambda g: g * (1 - y * y))  # tanh'(a) = 1 - h'^2
    else:
        np.maximum(y, 0, out=y)
        da = _shared(lambda g: g * (y > 0))
    return y, (_gate_input_vjp(da, t), lambda g: da(g) @ w_hh, lambda g: Product(da(g), h))


@op
def lstm_cell(xp, hc, w_hh, t=None):
    """The LSTM state (h, c) stacked as hc (2, B, H) -> the next one, hc';
    xp (B, 4H) in gate order i, f, g, o. One array in and one out keeps a
    step one node, and lets the layer take every h' with a single slice."""
    h, c = hc
    H = c.shape[-1]
    if xp.shape[-1] != 4 * H:
        raise ValueError(f"xp needs 4 * {H} gate columns for a state of {H}")
    gates = h @ w_hh.T
    gates += _gate_input(xp, t)
    _sigmoid_(gates[:, :2 * H])
    np.tanh(gates[:, 2 * H:3 * H], out=gates[:, 2 * H:3 * H])
    _sigmoid_(gates[:, 3 * H:])
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    out = np.empty((2, *c.shape), gates.dtype)
    new_h, new_c = out
    np.multiply(f, c, out=new_c)
    new_c += i * g
    tanh_c = np.tanh(new_c)
    np.multiply(o, tanh_c, out=new_h)

    def backward(grad):
        """dL/d(gate pre-activations) and dL/dc', from dL/dh' = grad[0], dL/dc' = grad[1]."""
        dh = grad[0]
        dc = grad[1] + dh * o * (1 - tanh_c * tanh_c)   # c' reaches L directly and through h'
        da = np.empty_like(gates)
        np.multiply(dc * g, i * (1 - i), out=da[:, :H])            # dc'/di = g
        np.multiply(dc * c, f * (1 - f), out=da[:, H:2 * H])       # dc'/df = c
        np.multiply(dc * i, 1 - g * g, out=da[:, 2 * H:3 * H])     # dc'/dg = i
        np.multiply(dh * tanh_c, o * (1 - o), out=da[:, 3 * H:])   # dh'/do = tanh(c')
        return da, dc

    def state_vjp(grad):
        da, dc = back(grad)
        d_hc = np.empty_like(out)
        np.matmul(da, w_hh, out=d_hc[0])                           # da/dh = W_hh
        np.multiply(dc, f, out=d_hc[1])                            # dc'/dc = f
        return d_hc

    back = _shared(backward)
    return out, (_gate_input_vjp(lambda grad: back(grad)[0], t), state_vjp,
                 lambda grad: Product(back(grad)[0], h))


@op
def gru_cell(xp, h, w_hh, b_hn=None, t=None):
    """h' from xp (B, 3H) in gate order r, z, n (b_hr, b_hz folded in, b_hn
    not: r multiplies it), h (B, H), w_hh (3H, H) and b_hn (H,)."""
    H = h.shape[-1]
    if xp.shape[-1] != 3 * H:
        raise ValueError(f"xp needs 3 * {H} gate columns for a state of {H}")
    xp = _gate_input(xp, t)
    hw = h @ w_hh.T                                   # [h W_r^T, h W_z^T, h W_n^T]
    if b_hn is not None:
        hw[:, 2 * H:] += b_hn
    rz = _sigmoid_(xp[:, :2 * H] + hw[:, :2 * H])
    r, z = rz[:, :H], rz[:, H:]
    hn = hw[:, 2 * H:]                                # h W_n^T + b_hn
    n = np.tanh(xp[:, 2 * H:] + r * hn)
    new_h = n + z * (h - n)                           # = (1 - z) n + z h

    def backward(grad):
        """dL/dxp and dL/d(h W_hh^T + [0, 0, b_hn]), the two gate-side gradients."""
        dn = grad * (1 - z) * (1 - n * n)             # through n = tanh(.)
        dxp = np.empty_like(xp)
        np.multiply(dn * hn, r * (1 - r), out=dxp[:, :H])           # dn/dr = h W_n^T + b_hn
        np.multiply(grad * (h - n), z * (1 - z), out=dxp[:, H:2 * H])  # dh'/dz = h - n
        dxp[:, 2 * H:] = dn
        dhw = dxp.copy()
        dhw[:, 2 * H:] *= r                           # r scales the hidden part of n
        return dxp, dhw

    back = _shared(backward)
    return new_h, (_gate_input_vjp(lambda grad: back(grad)[0], t),
                   lambda grad: back(grad)[1] @ w_hh + grad * z,       # h enters hw and z h
                   lambda grad: Product(back(grad)[1], h),
                   lambda grad: back(grad)[1][:, 2 * H:])
