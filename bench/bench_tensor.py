"""Tensor engine benchmarks.

- op overhead: a chain of 1,000 small elementwise ops, forward + backward,
  against the same numpy calls written by hand (forward only): what the
  engine costs per op on top of numpy itself;
- a tanh RNN language-model step (vocabulary 65, hidden 128, batch 32,
  32 steps: embedding, RNN, linear, cross-entropy, backward, SGD) against
  the hand-derived numpy BPTT in microseq.reference.lm.
"""
import numpy as np

import microseq as ms
from microseq.optim import SGD
from bench.common import compare_ms, record
from microseq import nn
from microseq.reference.lm import init_lm_params, lstm_lm_step, rnn_lm_step

CHAIN = 1000


def _chain_numpy(x, w):
    for i in range(CHAIN // 4):
        x = np.tanh(x * w + 0.1) - 0.05 * i / CHAIN
    return x


def _chain_autograd(x, w):
    for i in range(CHAIN // 4):
        x = ms.tanh(x * w + 0.1) - 0.05 * i / CHAIN
    return x


def op_chain(repeats):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 8)), rng.standard_normal((4, 8)) * 0.5
    tw = ms.tensor(w, requires_grad=True)

    def ours():
        _chain_autograd(ms.tensor(x), tw).sum().backward()

    ms_ours, ms_reference = compare_ms(ours, lambda: _chain_numpy(x, w), repeats)
    return record("op chain: 1000 elementwise ops, fwd+bwd", ms_ours, "numpy forward calls",
                  ms_reference)


class RNNLM(nn.Module):
    """Embedding, RNN or LSTM, linear read-out; time-major (PyTorch's default
    layout, and the reference's): ids (T, B) -> logits (T, B, V)."""

    def __init__(self, vocab, embed, hidden, cell=nn.RNN):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = cell(embed, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, ids, state=None):
        hs, state = self.rnn(self.embed(ids), state)
        return self.out(hs), state


def lm_step(kind, repeats, vocab=65, embed=32, hidden=128, batch=32, steps=32, lr=0.1):
    """One LM training step with nn layers vs the hand-derived numpy reference.
    `kind` is "rnn" or "lstm"."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (batch, steps))
    y = rng.integers(0, vocab, (batch, steps))
    params = init_lm_params(kind, vocab, embed, hidden, rng)
    h0 = np.zeros((batch, hidden), np.float32)
    state0 = h0 if kind == "rnn" else (h0, h0.copy())
    model = RNNLM(vocab, embed, hidden, nn.RNN if kind == "rnn" else nn.LSTM)
    sgd = SGD(model.parameters(), lr=lr)

    def ours():
        sgd.zero_grad()
        logits, _ = model(x.T)  # the reference reads (B, T) ids time-major too
        ms.cross_entropy(logits, y.T).backward()
        sgd.step()

    def reference():
        if kind == "rnn":
            rnn_lm_step(params, x, y, h0, lr)
        else:
            lstm_lm_step(params, x, y, state0, lr)

    ms_ours, ms_reference = compare_ms(ours, reference, repeats)
    name = f"{kind} LM step (V65 E{embed} H{hidden} B{batch} T{steps})"
    return record(name, ms_ours, f"hand-derived numpy {kind.upper()}", ms_reference)


def run(repeats=7):
    return [op_chain(repeats), lm_step("rnn", repeats), lm_step("lstm", repeats)]
