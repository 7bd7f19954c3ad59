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
cell's step is split in three static methods that the layers share:
`project(x, ...)` is the input part of every gate, `recurrent(...)` what each
step needs of the hidden weights (W_hh, and the GRU's b_hn), and `step(xp,
state, ..., t)` the recurrence itself: one op from microseq.fused_cells, whose
forward and hand-derived backward hold the equations above. A layer projects
the inputs of all T steps with ONE matmul before its loop (as cuDNN does) and
then runs the cell's step T times, each taking its own xp[t].

Scopes, for graph rendering: step t of a layer is built inside `scope(f"t={t}")`,
and with num_layers > 1 each layer inside `scope(f"layer{k}")` around them, so
step 3 of the second layer is tagged "layer1/t=3". Wrap the call in a scope of
your own ("encoder") to prefix it.
"""
from contextlib import nullcontext

import numpy as np

from microseq import functional as F
from microseq.nn.layers import uniform
from microseq.nn.module import Module
from microseq.fused_cells import gru_cell, lstm_cell, rnn_cell
from microseq.ops import stack, transpose
from microseq.scope import scope
from microseq.tensor import ShapeError, Tensor, default_rng


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


# --- cells --------------------------------------------------------------------


class _Cell(Module):
    gates = 1  # gate blocks stacked in the rows of weight_ih and weight_hh

    def __init__(self, input_size, hidden_size, bias=True):
        self.input_size, self.hidden_size = input_size, hidden_size
        rows, bound = self.gates * hidden_size, 1 / np.sqrt(hidden_size)
        self.weight_ih = uniform(bound, rows, input_size)
        self.weight_hh = uniform(bound, rows, hidden_size)
        self.bias_ih = uniform(bound, rows) if bias else None
        self.bias_hh = uniform(bound, rows) if bias else None

    @staticmethod
    def project(x, w_ih, b_ih, b_hh):
        """The input part of every gate, x W_ih^T + b_ih, for x (..., D).
        The RNN and LSTM add b_hh right beside b_ih, so it is folded in here."""
        xp = x @ transpose(w_ih)
        return xp if b_ih is None else xp + (b_ih + b_hh)

    @staticmethod
    def recurrent(w_hh, b_hh):
        """What each step needs of the hidden weights, computed once per sequence."""
        return (w_hh,)

    def zero_state(self, batch):
        return Tensor(np.zeros((batch, self.hidden_size), self.weight_hh.dtype))

    def forward(self, x, state=None):
        x = _as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"{type(self).__name__}: expected input (batch, {self.input_size}), "
                             f"got {x.shape}")
        if state is None:
            state = self.zero_state(x.shape[0])
        xp = self.project(x, self.weight_ih, self.bias_ih, self.bias_hh)
        return self._step(xp, state, *self.recurrent(self.weight_hh, self.bias_hh))

    def _step(self, xp, state, *recurrent):
        return self.step(xp, state, *recurrent)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias_ih is not None
                                                           else ", bias=False")


class RNNCell(_Cell):
    """Elman cell: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), or relu."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    @staticmethod
    def step(xp, h, w_hh, t=None, nonlinearity="tanh"):
        """h' from xp = x W_ih^T + b_ih + b_hh (or xp[t]) and h (B, H)."""
        return rnn_cell(xp, h, w_hh, t=t, nonlinearity=nonlinearity)

    def _step(self, xp, h, w_hh, t=None):
        return self.step(xp, h, w_hh, t, self.nonlinearity)

    def extra_repr(self):
        relu_ = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().extra_repr() + relu_


class LSTMCell(_Cell):
    """LSTM cell, gates i, f, g, o; `cell(x, (h, c))` -> (h', c')."""

    gates = 4

    @staticmethod
    def step(xp, hc, w_hh, t=None):
        """hc' from xp = x W_ih^T + b_ih + b_hh (or xp[t]) and hc, the state
        (h, c) stacked (2, B, H)."""
        return lstm_cell(xp, hc, w_hh, t=t)

    def _step(self, xp, state, w_hh, t=None):
        hc = self.step(xp, stack(list(state)), w_hh, t)
        return hc[0], hc[1]

    def zero_state(self, batch):
        return super().zero_state(batch), super().zero_state(batch)


class GRUCell(_Cell):
    """GRU cell, gates r, z, n, with PyTorch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn))."""

    gates = 3

    @staticmethod
    def project(x, w_ih, b_ih, b_hh):
        """x W_ih^T + b_ih, plus b_hr and b_hz: b_hn is multiplied by r, so it
        stays in the step."""
        xp = x @ transpose(w_ih)
        if b_ih is None:
            return xp
        fold = np.repeat(np.array([1, 1, 0], b_hh.dtype), b_hh.shape[0] // 3)
        return xp + (b_ih + b_hh * fold)

    @staticmethod
    def recurrent(w_hh, b_hh):
        b_hn = None if b_hh is None else b_hh[2 * w_hh.shape[1]:]
        return w_hh, b_hn

    @staticmethod
    def step(xp, h, w_hh, b_hn=None, t=None):
        """h' from xp = x W_ih^T + b_ih + [b_hr, b_hz, 0] (or xp[t]) and h (B, H)."""
        return gru_cell(xp, h, w_hh, b_hn, t=t)


# --- layers over a sequence ---------------------------------------------------


class _Recurrent(Module):
    cell = None  # the cell class whose project, recurrent and step the layer runs

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0):
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        rows, bound = self.cell.gates * hidden_size, 1 / np.sqrt(hidden_size)
        for k in range(num_layers):
            setattr(self, f"weight_ih_l{k}",
                    uniform(bound, rows, input_size if k == 0 else hidden_size))
            setattr(self, f"weight_hh_l{k}", uniform(bound, rows, hidden_size))
            if bias:
                setattr(self, f"bias_ih_l{k}", uniform(bound, rows))
                setattr(self, f"bias_hh_l{k}", uniform(bound, rows))

    def _step(self, xp, state, *recurrent, t=None):
        return self.cell.step(xp, state, *recurrent, t=t)

    def forward(self, x, state=None):
        x = _as_tensor(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "(batch, time, " if self.batch_first else "(time, batch, "
            raise ShapeError(f"{type(self).__name__}: expected input {layout}{self.input_size}), "
                             f"got {x.shape}")
        time_axis = 1 if self.batch_first else 0
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
        xp = self.cell.project(rows, w_ih, b_ih, b_hh).reshape(*x.shape[:2], -1)
        recurrent = self.cell.recurrent(w_hh, b_hh)
        states = []
        for t in range(x.shape[0]):
            with scope(f"t={t + 1}"):  # steps are numbered from 1, as in the lessons
                state = self._step(xp, state, *recurrent, t=t)  # the step takes its xp[t]
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
    """Elman RNN over a sequence: forward(x, h0=None) -> (output, h_n)."""

    cell = RNNCell

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        self.nonlinearity = nonlinearity

    def _step(self, xp, h, w_hh, t=None):
        return RNNCell.step(xp, h, w_hh, t, self.nonlinearity)

    def extra_repr(self):
        relu_ = ", nonlinearity='relu'" if self.nonlinearity == "relu" else ""
        return super().extra_repr() + relu_


class LSTM(_Recurrent):
    """LSTM over a sequence: forward(x, (h0, c0)=None) -> (output, (h_n, c_n))."""

    cell = LSTMCell

    # Inside, each layer's state (h, c) travels stacked as one (2, B, H) tensor,
    # what LSTMCell.step takes and returns.

    def _layer_states(self, state, batch):
        h0, c0 = (None, None) if state is None else state
        hs, cs = super()._layer_states(h0, batch), super()._layer_states(c0, batch)
        return [stack([h, c]) for h, c in zip(hs, cs, strict=True)]

    def _outputs(self, states, time_axis):
        hs = stack(states)[:, 0]  # (T, 2, B, H): h is the first of each pair
        return transpose(hs, (1, 0, 2)) if time_axis else hs

    def _final_state(self, finals):
        both = stack(finals, axis=1)  # (2, L, B, H)
        return both[0], both[1]


class GRU(_Recurrent):
    """GRU over a sequence: forward(x, h0=None) -> (output, h_n)."""

    cell = GRUCell
