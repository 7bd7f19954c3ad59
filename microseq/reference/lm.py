"""Whole language-model training steps in plain numpy: the speed baseline.

    ids (B, T) -> embedding (T, B, E) -> RNN/LSTM/GRU (T, B, H) -> logits (T, B, V)
    L = mean over all B*T positions of -log softmax(logits)[next id]

Parameters are a dict of arrays, the recurrent weights laid out as in PyTorch:

    embed (V, E)   W_ih (G*H, E)   W_hh (G*H, H)   b_ih, b_hh (G*H,)
    W_out (V, H)   b_out (V,)                      G = 1 (rnn), 3 (gru), 4 (lstm)

`*_lm_loss_and_grads` return the loss, the gradient of every parameter and the
last recurrent state (carried over to the next batch for truncated BPTT);
`*_lm_step` also applies plain SGD in place.
"""
import numpy as np

from microseq.reference.gru import gru_backward, gru_forward
from microseq.reference.lstm import lstm_backward, lstm_forward
from microseq.reference.rnn import rnn_backward, rnn_forward
from microseq.reference.word2vec import scatter_add_rows

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
_RECURRENT = ("W_ih", "W_hh", "b_ih", "b_hh")


def init_lm_params(kind, vocab, embed, hidden, rng, dtype=np.float32):
    """PyTorch-like initial parameters: embedding N(0, 1), every other array
    uniform(-1/sqrt(hidden), 1/sqrt(hidden)). kind is "rnn", "gru" or "lstm"."""
    G = _GATES[kind]
    bound = 1 / np.sqrt(hidden)

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    return {
        "embed": rng.standard_normal((vocab, embed)).astype(dtype),
        "W_ih": uniform(G * hidden, embed),
        "W_hh": uniform(G * hidden, hidden),
        "b_ih": uniform(G * hidden),
        "b_hh": uniform(G * hidden),
        "W_out": uniform(vocab, hidden),
        "b_out": uniform(vocab),
    }


def _output_loss_and_grads(params, hs, y_ids):
    """Linear layer to logits and mean softmax cross-entropy.
    Returns the loss, dL/dhs (T, B, H) and the gradients of W_out, b_out."""
    T, B, H = hs.shape
    N = T * B
    h = hs.reshape(N, H)
    z = h @ params["W_out"].T + params["b_out"]  # logits, (N, V)
    y = y_ids.T.reshape(N)                       # targets, time-major like hs
    rows = np.arange(N)
    z -= z.max(1, keepdims=True)                 # softmax is shift-invariant; avoids overflow
    e = np.exp(z)
    sum_e = e.sum(1, keepdims=True)
    loss = np.mean(np.log(sum_e[:, 0]) - z[rows, y])  # -log softmax(z)_y = log sum e^z - z_y
    dz = np.divide(e, sum_e, out=e)              # softmax(z), in place
    dz[rows, y] -= 1
    dz /= N                                      # dL/dz = (softmax(z) - onehot(y)) / N
    grads = {"W_out": dz.T @ h, "b_out": dz.sum(0)}
    return float(loss), (dz @ params["W_out"]).reshape(T, B, H), grads


def _input_grads(grads, recurrent_grads, params, x_ids):
    """Add the recurrent weights' gradients and scatter dL/dx into the embedding."""
    for name in _RECURRENT:
        grads[name] = recurrent_grads[name]
    embed = params["embed"]
    dembed = np.zeros(embed.shape, embed.dtype)
    grads["embed"] = scatter_add_rows(dembed, x_ids.T, recurrent_grads["x"])  # repeats add up
    return grads


def rnn_lm_loss_and_grads(params, x_ids, y_ids, h0):
    """tanh-RNN language model on x_ids, y_ids (B, T) from state h0 (B, H).
    Returns (loss, grads, h_last)."""
    x = params["embed"][x_ids.T]                 # (T, B, E)
    hs, cache = rnn_forward(x, h0, *(params[name] for name in _RECURRENT))
    loss, dhs, grads = _output_loss_and_grads(params, hs, y_ids)
    _input_grads(grads, rnn_backward(dhs, cache), params, x_ids)
    return loss, grads, hs[-1].copy()


def gru_lm_loss_and_grads(params, x_ids, y_ids, h0):
    """GRU language model on x_ids, y_ids (B, T) from state h0 (B, H).
    Returns (loss, grads, h_last)."""
    x = params["embed"][x_ids.T]                 # (T, B, E)
    hs, cache = gru_forward(x, h0, *(params[name] for name in _RECURRENT))
    loss, dhs, grads = _output_loss_and_grads(params, hs, y_ids)
    _input_grads(grads, gru_backward(dhs, cache), params, x_ids)
    return loss, grads, hs[-1].copy()


def lstm_lm_loss_and_grads(params, x_ids, y_ids, state):
    """LSTM language model on x_ids, y_ids (B, T) from state = (h0, c0), each (B, H).
    Returns (loss, grads, (h_last, c_last))."""
    h0, c0 = state
    x = params["embed"][x_ids.T]                 # (T, B, E)
    hs, c_last, cache = lstm_forward(x, h0, c0, *(params[name] for name in _RECURRENT))
    loss, dhs, grads = _output_loss_and_grads(params, hs, y_ids)
    _input_grads(grads, lstm_backward(dhs, cache), params, x_ids)
    return loss, grads, (hs[-1].copy(), c_last.copy())


def _sgd(params, grads, lr):
    for name, p in params.items():
        p -= lr * grads[name]                    # p <- p - lr * dL/dp, in place


def rnn_lm_step(params, x_ids, y_ids, h0, lr):
    """One SGD step of the RNN language model. Returns (loss, h_last)."""
    loss, grads, h_last = rnn_lm_loss_and_grads(params, x_ids, y_ids, h0)
    _sgd(params, grads, lr)
    return loss, h_last


def gru_lm_step(params, x_ids, y_ids, h0, lr):
    """One SGD step of the GRU language model. Returns (loss, h_last)."""
    loss, grads, h_last = gru_lm_loss_and_grads(params, x_ids, y_ids, h0)
    _sgd(params, grads, lr)
    return loss, h_last


def lstm_lm_step(params, x_ids, y_ids, state, lr):
    """One SGD step of the LSTM language model; state = (h0, c0).
    Returns (loss, (h_last, c_last))."""
    loss, grads, state = lstm_lm_loss_and_grads(params, x_ids, y_ids, state)
    _sgd(params, grads, lr)
    return loss, state
