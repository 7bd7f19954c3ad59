"""An LSTM encoder-decoder (seq2seq), with the peeky decoder as an option.

    encoder   embed the question, run an LSTM over it; keep its final (h, c)
    decoder   start from that (h, c) and predict the answer one symbol at a
              time, each step fed the symbol before it
    peeky     also hand the encoder's final h to every decoder step: beside
              the symbol in the LSTM's input, and beside the LSTM's output
              in the layer that scores the next symbol

Reversing the question is a matter of the data (`encode_seq2seq(...,
reverse=True)`), not of the model: the same Seq2Seq learns from either.
Every LSTM starts with its forget gates biased open (`open_forget_gates`).

Training uses teacher forcing: the decoder's inputs are the true answer
shifted right by one (START first), all known in advance, so the whole
decoder runs as one LSTM call over the sequence. `generate` is free running
instead: each step's input is the model's own previous guess, so it must go
one step at a time; it does so for a whole batch at once.
"""
import math
import time

import numpy as np

from microseq.data import minibatches
from microseq.nn.layers import Embedding, Linear
from microseq.nn.module import Module
from microseq.nn.recurrent import LSTM
from microseq.ops import concat, cross_entropy
from microseq.optim import Adam
from microseq.scope import scope
from microseq.tensor import no_grad
from microseq.train import cosine_decay, train


def open_forget_gates(lstm, bias=2.0):
    """Start an LSTM's forget gates at sigmoid(bias), about 0.88 for 2, rather
    than about 0.5: the cell state then carries over many steps from the
    first update on, so the gradient reaches the early inputs and training
    skips much of its initial plateau (Gers et al. 2000; Jozefowicz et al.
    2015). The two bias vectors add up, so each gets half; rows H:2H are
    the forget gate's."""
    H = lstm.hidden_size
    for k in range(lstm.num_layers):
        for b in (getattr(lstm, f"bias_ih_l{k}"), getattr(lstm, f"bias_hh_l{k}")):
            b.data[H:2 * H] = bias / 2
    return lstm


def repeat_steps(x, steps):
    """(B, H) -> (B, steps, H), the same vector at every step. It is a
    broadcast add, so the gradient comes back summed over the steps."""
    batch, size = x.shape
    return x.reshape(batch, 1, size) + np.zeros((1, steps, 1), x.dtype)


class Encoder(Module):
    """Embedding + LSTM; returns every hidden state and the final (h, c)."""

    def __init__(self, vocab_size, embed_size, hidden_size):
        self.embed = Embedding(vocab_size, embed_size)
        self.lstm = open_forget_gates(LSTM(embed_size, hidden_size, batch_first=True))

    def forward(self, xs):
        """xs (B, T) ids -> hs (B, T, H), (h, c) each (1, B, H)."""
        with scope("encoder"):
            return self.lstm(self.embed(xs))


class Decoder(Module):
    """Embedding + LSTM + a linear layer that scores the next symbol."""

    def __init__(self, vocab_size, embed_size, hidden_size, peeky=False):
        self.peeky = peeky
        peek = hidden_size if peeky else 0
        self.embed = Embedding(vocab_size, embed_size)
        self.lstm = open_forget_gates(LSTM(embed_size + peek, hidden_size, batch_first=True))
        self.out = Linear(hidden_size + peek, vocab_size)

    def forward(self, ys, state, summary):
        """ys (B, T) input ids, state the LSTM's (h, c), summary (B, H) the
        encoder's final h (used only when peeky). Returns logits (B, T, V)
        and the state after the last step, to continue from."""
        with scope("decoder"):
            x = self.embed(ys)
            if self.peeky:
                peek = repeat_steps(summary, ys.shape[1])
                x = concat([x, peek], axis=-1)
            hs, state = self.lstm(x, state)
            if self.peeky:
                hs = concat([hs, peek], axis=-1)
            return self.out(hs), state


class Seq2Seq(Module):
    """Encoder + decoder; the decoder starts from the encoder's final state."""

    def __init__(self, vocab_size, embed_size=16, hidden_size=128, peeky=False):
        self.encoder = Encoder(vocab_size, embed_size, hidden_size)
        self.decoder = Decoder(vocab_size, embed_size, hidden_size, peeky)

    def forward(self, xs, dec_in):
        """Teacher forcing: logits (B, T, V) for the next symbol after each of
        dec_in (B, T), the true answer shifted right behind START."""
        _, state = self.encoder(xs)
        logits, _ = self.decoder(dec_in, state, state[0][0])
        return logits

    def loss(self, xs, dec_in, target):
        """Mean cross-entropy over every answer position, the padding after
        an answer included: predicting PAD is how the model says "done"."""
        return cross_entropy(self(xs, dec_in), target)

    def generate(self, xs, start_id, steps):
        """Greedy free-running decoding of a batch: (B, steps) int64 ids."""
        with no_grad():
            _, state = self.encoder(xs)
            summary = state[0][0]
            token = np.full((len(xs), 1), start_id, dtype=np.int64)
            out = []
            for _ in range(steps):
                logits, state = self.decoder(token, state, summary)
                token = logits.data.argmax(axis=-1)  # (B, 1): the next step's input
                out.append(token[:, 0])
        return np.stack(out, axis=1)


def cut_at_pad(ids, pad_id):
    """Everything from a row's first PAD on becomes PAD: an answer ends at
    its first PAD, and what a model writes after it does not count."""
    ended = np.cumsum(ids == pad_id, axis=1) > 0
    return np.where(ended, pad_id, ids)


def exact_match(model, xs, target, start_id, pad_id, batch_size=2500):
    """Fraction of rows whose greedy answer equals `target` exactly, and
    the predictions (N, T), cut at their first PAD. Decoded in batches."""
    preds = np.concatenate([model.generate(xs[i:i + batch_size], start_id, target.shape[1])
                            for i in range(0, len(xs), batch_size)])
    preds = cut_at_pad(preds, pad_id)
    return float(np.mean(np.all(preds == target, axis=1))), preds


# --- training ---------------------------------------------------------------------


def fit(model, xs, dec_in, target, train_idx, *, epochs, batch_size, lr, clip, seed,
        evaluate=None, evals_per_epoch=1, desc="train"):
    """Teacher-forced training on the rows `train_idx` of (xs, dec_in, target).

    Adam with its learning rate on `cosine_decay`, gradients clipped to
    norm `clip`, shuffled batches drawn from `seed`; `evaluate(model) ->
    dict` runs `evals_per_epoch` times an epoch. Returns the History of
    microseq.train and the seconds the whole run took, evaluations included.
    """
    steps_per_epoch = math.ceil(len(train_idx) / batch_size)
    steps = epochs * steps_per_epoch
    optimizer = Adam(model.parameters(), lr=lr)

    def batches(rng):
        for idx in minibatches(len(train_idx), batch_size, rng):
            rows = train_idx[idx]
            yield xs[rows], dec_in[rows], target[rows]

    def loss_fn(model, batch):
        return model.loss(*batch)

    start = time.perf_counter()
    history = train(model, optimizer, batches, loss_fn, steps, seed=seed, clip=clip,
                    lr_schedule=lambda step: cosine_decay(step, steps, lr), evaluate=evaluate,
                    eval_every=steps_per_epoch // evals_per_epoch, desc=desc)
    return history, time.perf_counter() - start
