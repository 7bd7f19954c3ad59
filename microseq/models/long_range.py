"""Many-to-one regression over a sequence with an RNN, LSTM or GRU, for
long-range tasks such as the adding problem.

    model = SequenceRegressor("lstm", input_size=2, hidden_size=32)
    history, seconds = fit(model, x_train, y_train, steps=1200)
    test_mse = mse(model, x_test, y_test)

The recurrent layer reads the whole sequence (batch_first) and a linear head
turns its last hidden state into one number. `unrolled(x)` runs the same
weights one step at a time, so the hidden state of every step is a tensor of
its own whose `.grad` holds dL/dh_t after backward: the gradient that reaches
step t from the loss at the end.
"""
import time

import numpy as np

from microseq import functional as F
from microseq import nn
from microseq.data import minibatches
from microseq.optim import Adam
from microseq.tensor import Tensor, no_grad
from microseq.train import train

LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceRegressor(nn.Module):
    """x (batch, time, input_size) -> one prediction per sequence, (batch,).

    kind is "rnn", "lstm" or "gru". For the LSTM, forget_bias sets the forget
    gate's bias: at 1.0, sigmoid(1) = 0.73 of the cell state survives each step
    from the start, instead of about half, so the memory starts out long and
    gradients reach early steps before the gate has learned anything.
    """

    def __init__(self, kind, input_size, hidden_size, forget_bias=1.0):
        if kind not in LAYERS:
            raise ValueError(f"kind must be one of {sorted(LAYERS)}, got {kind!r}")
        self.kind = kind
        self.rnn = LAYERS[kind](input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)
        if kind == "lstm" and forget_bias is not None:
            # PyTorch's gate order is i, f, g, o, and the two biases are added:
            # put the whole forget bias in bias_ih and none in bias_hh.
            forget = slice(hidden_size, 2 * hidden_size)
            self.rnn.bias_ih_l0.data[forget] = forget_bias
            self.rnn.bias_hh_l0.data[forget] = 0.0

    def forward(self, x):
        _, state = self.rnn(x)
        h_last = state[0] if self.kind == "lstm" else state  # (1, batch, hidden)
        return self.head(h_last[0]).reshape(-1)

    def unrolled(self, x):
        """The prediction and the list of hidden states h_1 ... h_T, (1, batch,
        hidden) each, computed one step at a time with the same weights: after
        backward, h_t.grad is dL/dh_t."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        state, hidden = None, []
        for t in range(x.shape[1]):
            _, state = self.rnn(x[:, t:t + 1], state)
            hidden.append(state[0] if self.kind == "lstm" else state)
        return self.head(hidden[-1][0]).reshape(-1), hidden


def mse(model, x, y, batch_size=1000):
    """Mean squared error over the whole set, in batches, without a graph."""
    total = 0.0
    with no_grad():
        for start in range(0, len(x), batch_size):
            pred = model(x[start:start + batch_size]).data
            total += float(np.sum((pred - y[start:start + batch_size]) ** 2))
    return total / len(x)


def gradient_per_step(model, x, y):
    """||dL/dh_t|| for t = 1 ... T, averaged over the batch, for the MSE loss
    on (x, y). The parameters' .grad is left as it was."""
    saved = [p.grad for p in model.parameters()]
    prediction, hidden = model.unrolled(x)
    F.mse_loss(prediction, y).backward()
    for p, g in zip(model.parameters(), saved):
        p.grad = g
    return np.array([np.linalg.norm(h.grad[0], axis=-1).mean() for h in hidden])


def fit(model, x, y, steps, batch_size=64, lr=1e-2, clip=1.0, seed=0, evaluate=None,
        eval_every=None, progress=None, desc=None):
    """Train with Adam on the MSE loss, the gradient norm clipped to `clip`.

    The defaults solve the adding problem at length 50 (hidden size 32)
    within about 1000 steps for the LSTM, which first sits on a plateau for
    a few hundred, and a few hundred for the GRU; a large learning rate
    shortens the plateau. evaluate and eval_every go to train(), e.g.
    evaluate=lambda m: {"mse": mse(m, x_test, y_test)}.

    Returns the train() History and the seconds spent training, evaluation
    excluded, so that seconds / steps is the cost of one step.
    """
    x = x.astype(np.float32)
    y = y.astype(np.float32)

    def batches(rng):
        for idx in minibatches(len(x), batch_size, rng):
            yield x[idx], y[idx]

    def loss_fn(model, batch):
        inputs, targets = batch
        return F.mse_loss(model(inputs), targets)

    evaluating = 0.0

    def timed_evaluate(model):
        nonlocal evaluating
        start = time.perf_counter()
        result = evaluate(model)
        evaluating += time.perf_counter() - start
        return result

    start = time.perf_counter()
    history = train(model, Adam(model.parameters(), lr=lr), batches, loss_fn, steps, seed=seed,
                    clip=clip, evaluate=evaluate and timed_evaluate, eval_every=eval_every,
                    progress=progress, desc=desc or model.kind)
    return history, time.perf_counter() - start - evaluating
