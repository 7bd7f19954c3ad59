"""Recurrent cells (one step) and layers (a whole sequence), laid out as PyTorch's.

    microseq                PyTorch        weights (G = 1 RNN, 4 LSTM, 3 GRU)
    RNNCell(D, H)           nn.RNNCell     weight_ih (G*H, D)   weight_hh (G*H, H)
    LSTMCell(D, H)          nn.LSTMCell    bias_ih (G*H,)       bias_hh (G*H,)
    GRUCell(D, H)           nn.GRUCell     gate blocks stacked in rows: LSTM i, f, g, o;
                                           GRU r, z, n
    RNN(D, H, num_layers)   nn.RNN         weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
    LSTM(D, H, num_layers)  nn.LSTM        bias_hh_l{k} for layer k; layer k > 0 takes
    GRU(D, H, num_layers)   nn.GRU         the H outputs of layer k-1 as its input

Calls and shapes are PyTorch's too: `cell(x (B, D), h (B, H))` -> h, and
`lstm_cell(x, (h, c))` -> (h, c); `rnn(x (T, B, D), h0 (L, B, H))` ->
(output (T, B, H), h_n (L, B, H)) and `lstm(x, (h0, c0))` -> (output,
(h_n, c_n)), with (B, T, ...) for x and output when batch_first. A missing
initial state is zeros. Every weight starts uniform(-1/sqrt(H), 1/sqrt(H)).
`dropout` applies, while training, to the outputs of every layer but the last.
So `{k: v.numpy() for k, v in torch_module.state_dict().items()}` loads with
load_state_dict and gives the same outputs.

The equations, with W_i* x + b_i* the input part and W_h* h + b_h* the hidden
part of each gate:

    RNN   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)          (or relu)
    LSTM  i, f, o = sigmoid(.), g = tanh(.)
          c' = f * c + i * g,   h' = o * tanh(c')
    GRU   r, z = sigmoid(.),    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
          h' = (1 - z) * n + z * h

How a step is built. Only the hidden part depends on the previous step, so a
layer computes the input part of every gate for all T steps with ONE matmul
before its loop (as cuDNN does), `xp = x W_ih^T + b_ih (+ b_hh)`, and then
runs the step T times. Each cell kind is one row of the table `KINDS`: its
number of gate blocks, which biases fold into xp, and its step, written
twice. The plain step (`rnn_step`, `lstm_step`, `gru_step` below) is the
equations above in primitive ops; the fused step (microseq.fused_cells) is
one op per step with a hand-derived backward, used while the fast path is on
(see microseq.fast). Both take the same arguments and give the same numbers.
Inside a layer, an LSTM's state (h, c) travels stacked as one (2, B, H)
tensor, the form both LSTM steps take and return.

Scopes, for graph rendering: step t of a layer is built inside `scope(f"t={t}")`,
and with num_layers > 1 each layer inside `scope(f"layer{k}")` around them, so
step 3 of the second layer is tagged "layer1/t=3". Wrap the call in a scope of
your own ("encoder") to prefix it.
"""
from contextlib import nullcontext
from typing import NamedTuple

import numpy as np

from microseq import fast
from microseq import functional as F
from microseq.fused_cells import gru_cell, lstm_cell, rnn_cell
from microseq.nn.layers import uniform
from microseq.nn.module import Module
from microseq.ops import relu, sigmoid, split, stack, tanh, transpose
from microseq.scope import scope
from microseq.tensor import ShapeError, Tensor, default_rng


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _nonlinearity(name):
    if name not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {name!r}")
    return name


# --- one step of each cell kind, in primitive ops ------------------------------------

def rnn_step(xp, h, w_hh, nonlinearity="tanh"):
    """h' = tanh(xp + h W_hh^T), or relu: xp (B, H), h (B, H), w_hh (H, H) -> (B, H)."""
    a = xp + h @ transpose(w_hh)
    return tanh(a) if nonlinearity == "tanh" else relu(a)


def lstm_step(xp, hc, w_hh):
    """hc' from xp (B, 4H), gates i, f, g, o, the state hc (2, B, H), (h, c)
    stacked, and w_hh (4H, H) -> hc' (2, B, H)."""
    h, c = hc
    i, f, g, o = split(xp + h @ transpose(w_hh), 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    return stack([sigmoid(o) * tanh(c), c])


def gru_step(xp, h, w_hh, b_hn=None):
    """h' from xp (B, 3H), gates r, z, n (b_hr, b_hz folded in, b_hn not),
    h (B, H), w_hh (3H, H) and b_hn (H,) -> (B, H)."""
    H = h.shape[-1]
    x_rz, x_n = split(xp, [2 * H], axis=-1)
    h_rz, h_n = split(h @ transpose(w_hh), [2 * H], axis=-1)
    r, z = split(sigmoid(x_rz + h_rz), 2, axis=-1)
    n = tanh(x_n + r * (h_n if b_hn is None else h_n + b_hn))
    return (1 - z) * n + z * h


class CellKind(NamedTuple):
    """One cell kind: how its gates are laid out and its step, plain and fused."""

    gates: int      # gate blocks stacked in the rows of weight_ih and weight_hh
    fold: tuple     # per gate block: whether b_hh is added into xp (1) or kept for the step (0)
    step: object    # the step in primitive ops: step(xp_t, state, w_hh, *extra, **options)
    fused: object   # the same step as one op: fused(xp, state, w_hh, *extra, t=t, **options)


KINDS = {
    "rnn": CellKind(1, (1,), rnn_step, rnn_cell),
    "lstm": CellKind(4, (1, 1, 1, 1), lstm_step, lstm_cell),
    "gru": CellKind(3, (1, 1, 0), gru_step, gru_cell),  # b_hn is multiplied by r
}


def _project(kind, x, w_ih, b_ih, b_hh):
    """The input part of every gate, x W_ih^T + b_ih plus the parts of b_hh
    that are added right beside it, for x (..., D) -> (..., G*H)."""
    xp = x @ transpose(w_ih)
    if b_ih is None:
        return xp
    if all(kind.fold):
        return xp + (b_ih + b_hh)
    fold = np.repeat(np.array(kind.fold, b_hh.dtype), b_hh.shape[0] // kind.gates)
    return xp + (b_ih + b_hh * fold)


def _recurrent(kind, w_hh, b_hh):
    """What each step needs of the hidden weights: W_hh, and the GRU's b_hn."""
    if all(kind.fold):
        return (w_hh,)
    return w_hh, None if b_hh is None else b_hh[2 * w_hh.shape[1]:]


def _step(kind, xp, state, recurrent, t, options):
    """Step t: the fused op while the fast path is on (it slices xp[t] itself,
    which spares the graph a node), else the step in primitive ops."""
    if fast.enabled():
        return kind.fused(xp, state, *recurrent, t=t, **options)
    return kind.step(xp if t is None else xp[t], state, *recurrent, **options)


# --- cells --------------------------------------------------------------------


class _Cell(Module):
    kind = None  # a row of KINDS

    def __init__(self, input_size, hidden_size, bias=True):
        self.input_size, self.hidden_size = input_size, hidden_size
        rows, bound = self.kind.gates * hidden_size, 1 / np.sqrt(hidden_size)
        self.weight_ih = uniform(bound, rows, input_size)
        self.weight_hh = uniform(bound, rows, hidden_size)
        self.bias_ih = uniform(bound, rows) if bias else None
        self.bias_hh = uniform(bound, rows) if bias else None

    def _zeros(self, batch):
        return Tensor(np.zeros((batch, self.hidden_size), self.weight_hh.dtype))

    def _check(self, x):
        x = _as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"{type(self).__name__}: expected input (batch, {self.input_size}), "
                             f"got {x.shape}")
        return x

    def _run(self, x, state, options=None):
        xp = _project(self.kind, x, self.weight_ih, self.bias_ih, self.bias_hh)
        recurrent = _recurrent(self.kind, self.weight_hh, self.bias_hh)
        return _step(self.kind, xp, state, recurrent, None, options or {})

    def forward(self, x, h=None):
        x = self._check(x)
        return self._run(x, self._zeros(x.shape[0]) if h is None else _as_tensor(h))

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias_ih is not None
                                                           else ", bias=False")


class RNNCell(_Cell):
    """Elman cell: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), or relu.

    `cell(x, h=None)`: x (B, D), h (B, H) (zeros when None) -> h' (B, H).
    """

    kind = KINDS["rnn"]

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh"):
        self.nonlinearity = _nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, bias)

    def forward(self, x, h=None):
        x = self._check(x)
        h = self._zeros(x.shape[0]) if h is None else _as_tensor(h)
        return self._run(x, h, {"nonlinearity": self.nonlinearity})

    def extra_repr(self):
        relu_ = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().extra_repr() + relu_


class LSTMCell(_Cell):
    """LSTM cell, gates i, f, g, o.

    `cell(x, (h, c)=None)`: x (B, D), h and c (B, H) (zeros when None) ->
    (h', c'), each (B, H).
    """

    kind = KINDS["lstm"]

    def forward(self, x, state=None):
        x = self._check(x)
        h, c = _pair(self, state, lambda: (self._zeros(x.shape[0]), self._zeros(x.shape[0])))
        hc = self._run(x, stack([_as_tensor(h), _as_tensor(c)]))
        return hc[0], hc[1]


class GRUCell(_Cell):
    """GRU cell, gates r, z, n, with PyTorch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).

    `cell(x, h=None)`: x (B, D), h (B, H) (zeros when None) -> h' (B, H).
    """

    kind = KINDS["gru"]


def _pair(module, state, zeros):
    """An LSTM's state (h, c), or zeros for None; one tensor alone is an error."""
    if state is None:
        return zeros()
    if isinstance(state, Tensor | np.ndarray) or len(state) != 2:
        got = (f"one tensor of shape {state.shape}" if hasattr(state, "shape")
               else f"{len(state)} items")
        raise TypeError(f"{type(module).__name__}: the state must be a pair (h, c), got {got}")
    return state


# --- layers over a sequence ---------------------------------------------------


class _Recurrent(Module):
    kind = None  # a row of KINDS

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0):
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        rows, bound = self.kind.gates * hidden_size, 1 / np.sqrt(hidden_size)
        for k in range(num_layers):
            setattr(self, f"weight_ih_l{k}",
                    uniform(bound, rows, input_size if k == 0 else hidden_size))
            setattr(self, f"weight_hh_l{k}", uniform(bound, rows, hidden_size))
            if bias:
                setattr(self, f"bias_ih_l{k}", uniform(bound, rows))
                setattr(self, f"bias_hh_l{k}", uniform(bound, rows))

    def _options(self):
        return {}  # keyword arguments of every step (the RNN's nonlinearity)

    def forward(self, x, state=None):
        x = _as_tensor(x)
        name = type(self).__name__
        layout = "(batch, time, " if self.batch_first else "(time, batch, "
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ShapeError(f"{name}: expected input {layout}{self.input_size}), got {x.shape}")
        time_axis = 1 if self.batch_first else 0
        if x.shape[time_axis] == 0:
            raise ShapeError(f"{name}: the input sequence is empty (0 time steps, input "
                             f"{layout}{self.input_size}) = {x.shape}); give at least one step")
        states = self._layer_states(state, x.shape[1 - time_axis])
        finals = []
        for k in range(self.num_layers):
            if k > 0 and self.dropout:
                x = F.dropout(x, self.dropout, self.training, rng=default_rng())
            with scope(f"layer{k}") if self.num_layers > 1 else nullcontext():
                x, final = self._run_layer(k, x, states[k], time_axis)
            finals.append(final)
        return x, self._final_state(finals)

    def _run_layer(self, k, x, state, time_axis):
        w_ih, w_hh, b_ih, b_hh = (getattr(self, f"{name}_l{k}", None)
                                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        if time_axis:  # time-major inside, so that each step's slice is contiguous
            x = transpose(x, (1, 0, 2))
        # All T input projections in one (T*B, D) @ (D, G*H) matmul.
        rows = x.reshape(-1, x.shape[2])
        xp = _project(self.kind, rows, w_ih, b_ih, b_hh).reshape(*x.shape[:2], -1)
        recurrent, options = _recurrent(self.kind, w_hh, b_hh), self._options()
        states = []
        for t in range(x.shape[0]):
            with scope(f"t={t + 1}"):  # steps are numbered from 1, as in the lessons
                state = _step(self.kind, xp, state, recurrent, t, options)
            states.append(state)
        return self._outputs(states, time_axis), state

    def _outputs(self, states, time_axis):
        """The layer's output, h of every step, from the state of every step."""
        hs = stack(states)
        return transpose(hs, (1, 0, 2)) if time_axis else hs

    def _layer_states(self, h0, batch):
        """The initial hidden state of each layer, from h0 (L, B, H) or zeros."""
        if h0 is None:
            zeros = Tensor(np.zeros((batch, self.hidden_size), self.weight_hh_l0.dtype))
            return [zeros] * self.num_layers
        h0 = _as_tensor(h0)
        expected = (self.num_layers, batch, self.hidden_size)
        if h0.shape != expected:
            raise ShapeError(f"{type(self).__name__}: expected initial state of shape "
                             f"{expected}, got {h0.shape}")
        return [h0[k] for k in range(self.num_layers)]

    def _final_state(self, finals):
        return stack(finals)

    def extra_repr(self):
        options = [f"num_layers={self.num_layers}"] if self.num_layers > 1 else []
        options += [] if self.bias else ["bias=False"]
        options += ["batch_first=True"] if self.batch_first else []
        options += [f"dropout={self.dropout}"] if self.dropout else []
        return ", ".join([str(self.input_size), str(self.hidden_size), *options])


class RNN(_Recurrent):
    """Elman RNN over a sequence: `rnn(x, h0=None)` -> (output, h_n).

    x (T, B, D), or (B, T, D) when batch_first; h0 (L, B, H), zeros when None.
    output (T, B, H) (or (B, T, H)) is the last layer's h at every step; h_n
    (L, B, H) is every layer's h after the last step.
    """

    kind = KINDS["rnn"]

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0):
        self.nonlinearity = _nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout)

    def _options(self):
        return {"nonlinearity": self.nonlinearity}

    def extra_repr(self):
        relu_ = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().extra_repr() + relu_


class LSTM(_Recurrent):
    """LSTM over a sequence: `lstm(x, (h0, c0)=None)` -> (output, (h_n, c_n)).

    x (T, B, D), or (B, T, D) when batch_first; h0 and c0 (L, B, H), zeros
    when None. output (T, B, H) (or (B, T, H)) is the last layer's h at every
    step; h_n and c_n (L, B, H) are every layer's h and c after the last step.
    """

    kind = KINDS["lstm"]

    def _layer_states(self, state, batch):
        h0, c0 = _pair(self, state, lambda: (None, None))
        hs, cs = super()._layer_states(h0, batch), super()._layer_states(c0, batch)
        return [stack([h, c]) for h, c in zip(hs, cs, strict=True)]

    def _outputs(self, states, time_axis):
        hs = stack(states)[:, 0]  # (T, 2, B, H): h is the first of each pair
        return transpose(hs, (1, 0, 2)) if time_axis else hs

    def _final_state(self, finals):
        both = stack(finals, axis=1)  # (2, L, B, H)
        return both[0], both[1]


class GRU(_Recurrent):
    """GRU over a sequence: `gru(x, h0=None)` -> (output, h_n).

    x (T, B, D), or (B, T, D) when batch_first; h0 (L, B, H), zeros when None.
    output (T, B, H) (or (B, T, H)) is the last layer's h at every step; h_n
    (L, B, H) is every layer's h after the last step.
    """

    kind = KINDS["gru"]
