"""A character-level language model: embedding -> RNN, LSTM or GRU -> linear.

    model = CharLM(vocab_size=len(vocab), hidden_size=256, cell="rnn")
    logits, state = model(x)              # x (B, T) int ids -> logits (B, T, V)
    loss, state = model.loss(x, y, state)  # mean cross-entropy in nats
    state = detach_state(state)           # truncated BPTT: keep the values, cut the graph
    batches, loss_fn = truncated_bptt(BPTTBatcher(ids, 32, 64))   # the same, for train()
    model.bits_per_char(test_ids)         # batched, state carried across windows
    model.sample(vocab.encode("The "), 200, temperature=0.8)

`state` is whatever the recurrent layer returns as its final state: h_n of
shape (num_layers, B, H) for "rnn" and "gru", (h_n, c_n) for "lstm"; None
means zeros. Feeding a window's final state into the next window makes the
windows one unbroken sequence for the forward pass; detaching it in between
stops backpropagation at the window boundary (truncated BPTT).
"""
import math

import numpy as np

from microseq import nn
from microseq.ops import cross_entropy, softmax
from microseq.tensor import Tensor, no_grad

_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def detach_state(state):
    """The same state with its graph cut: an array-backed Tensor, or a tuple of them."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def truncated_bptt(batcher):
    """train()'s `batches` and `loss_fn` for a CharLM on a BPTTBatcher's windows.

        batches, loss_fn = truncated_bptt(BPTTBatcher(train_ids, 32, 64))
        train(model, Adam(model.parameters()), batches, loss_fn, steps, clip=1.0)

    Each window starts from the previous window's final state, detached, so
    every row is read as one unbroken text while backpropagation stops at
    the window edge; each pass over the stream starts again from zeros.
    The carried state belongs to this pair: one pair per model.
    """
    def batches(rng):
        for i, (x, y) in enumerate(batcher):
            yield x, y, i == 0   # first: the state restarts

    carried = None

    def loss_fn(model, window):
        nonlocal carried
        x, y, first = window
        loss, state = model.loss(x, y, None if first else carried)
        carried = detach_state(state)   # keep the values, cut the graph
        return loss

    return batches, loss_fn


class CharLM(nn.Module):
    """Predicts each next character from the characters so far.

    vocab_size: number of distinct characters (ids 0..V-1).
    hidden_size, num_layers: size of the recurrent layer.
    embed_size: width of the character embedding fed to the recurrent layer.
    cell: "rnn" (Elman, `nonlinearity` "tanh" or "relu"), "lstm" or "gru".
    """

    def __init__(self, vocab_size, hidden_size=128, embed_size=32, cell="rnn", num_layers=1,
                 nonlinearity="tanh"):
        if cell not in _LAYERS:
            raise ValueError(f"cell must be one of {sorted(_LAYERS)}, got {cell!r}")
        self.vocab_size, self.cell = vocab_size, cell
        self.embed = nn.Embedding(vocab_size, embed_size)
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = _LAYERS[cell](embed_size, hidden_size, num_layers, batch_first=True, **options)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids, state=None):
        """ids (B, T) -> (logits (B, T, V), final state)."""
        hidden, state = self.rnn(self.embed(ids), state)
        return self.head(hidden), state

    def loss(self, x, y, state=None):
        """Mean cross-entropy (nats per character) of predicting y (B, T) from
        x (B, T) starting in `state`; returns (loss, final state)."""
        logits, state = self(x, state)
        return cross_entropy(logits, y), state

    def hidden_states(self, ids, state=None):
        """The top layer's hidden state after each character, as an array:
        (T, H) for a 1-D id sequence, (B, T, H) for a (B, T) batch. What
        plots of single units show."""
        ids = np.asarray(ids)
        with no_grad():
            hidden, _ = self.rnn(self.embed(ids.reshape(-1, ids.shape[-1])), state)
        return hidden.data.reshape(*ids.shape, -1)

    def bits_per_char(self, ids, batch_size=64, seq_len=256):
        """Mean -log2 P(next character) over a 1-D id stream, batched.

        The stream is cut into batch_size rows of equal length S (as
        BPTTBatcher cuts it), each run in windows of seq_len with the state
        carried from window to window, so every row is read as one unbroken
        sequence. The targets scored are ids[1 : 1 + batch_size * S]; the
        fewer than batch_size characters after them are dropped.
        """
        ids = np.asarray(ids, dtype=np.int64)
        batch_size = max(1, min(batch_size, len(ids) - 1))
        S = (len(ids) - 1) // batch_size
        x = ids[:batch_size * S].reshape(batch_size, S)
        y = ids[1:batch_size * S + 1].reshape(batch_size, S)
        was_training, total, state = self.training, 0.0, None
        self.eval()
        with no_grad():
            for start in range(0, S, seq_len):
                window = slice(start, start + seq_len)
                logits, state = self(x[:, window], state)
                total += cross_entropy(logits, y[:, window], reduction="sum").item()
        self.train(was_training)
        return total / (batch_size * S) / math.log(2)

    def sample(self, prompt, length, temperature=1.0, n=1, rng=None):
        """Continue the id sequence `prompt` by `length` characters, n times in
        parallel. Each next character is drawn from softmax(logits /
        temperature): below 1 the model plays safe and repeats its favourite
        phrases, above 1 it takes risks and spells worse; temperature 0 always
        takes the most likely character. Returns an int array (n, length).
        """
        if not (temperature >= 0 and math.isfinite(temperature)):  # NaN fails both
            raise ValueError(f"sample: temperature must be a number >= 0 (0: always the most "
                             f"likely character), got {temperature}")
        rng = np.random.default_rng(rng)
        prompt = np.asarray(prompt, dtype=np.int64)
        if prompt.ndim != 1 or len(prompt) == 0:
            raise ValueError("sample: the prompt must be a non-empty 1-D sequence of ids")
        out = np.zeros((n, length), np.int64)
        was_training = self.training
        self.eval()
        with no_grad():
            logits, state = self(np.tile(prompt, (n, 1)))
            for t in range(length):
                last = logits.data[:, -1]
                if temperature == 0:
                    out[:, t] = last.argmax(-1)
                else:
                    p = softmax(Tensor(last.astype(np.float64) / temperature)).data
                    # inverse-CDF draw, one uniform number per row
                    u = rng.random((n, 1))
                    out[:, t] = np.minimum((p.cumsum(-1) < u).sum(-1), self.vocab_size - 1)
                logits, state = self(out[:, t:t + 1], state)
        self.train(was_training)
        return out
