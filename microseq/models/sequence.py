"""Small recurrent models, one for each shape of the RNN diagram.

    many-to-one    ManyToOne    a sequence in, one answer out: the last
                                hidden state goes through a linear head
                                (sequence classification, regression)
    many-to-many   ManyToMany   one label per input step, read from every
                                hidden state (tagging); padded batches are
                                scored with `masked_cross_entropy`
    one-to-many    OneToMany    one input vector, a sequence of symbols out:
                                it sets the initial hidden state and is shown
                                again at every step, beside the previous symbol
    no memory      WindowMLP    the window as one flat vector through a
                                feed-forward net: the baseline a recurrent
                                model is measured against

Each recurrent model takes `cell="rnn"`, `"lstm"` or `"gru"` and the matching
layer from microseq.nn runs with batch_first=True, so inputs are (B, T, ...)
throughout. Inputs are either float features (B, T, D) or, when the model is
built with `vocab_size`, integer ids (B, T) looked up in an Embedding.
"""
import numpy as np

from microseq.models.seq2seq import repeat_steps
from microseq.nn.layers import Embedding, Linear
from microseq.nn.module import Module
from microseq.nn.recurrent import GRU, LSTM, RNN
from microseq.ops import concat, cross_entropy, tanh
from microseq.tensor import Tensor, no_grad

IGNORE = -100  # the target cross_entropy skips: padding, in a masked loss

_LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def recurrent_layer(cell, input_size, hidden_size, **options):
    """nn.RNN, nn.LSTM or nn.GRU by name, batch first."""
    if cell not in _LAYERS:
        raise ValueError(f"cell must be one of {sorted(_LAYERS)}, got {cell!r}")
    return _LAYERS[cell](input_size, hidden_size, batch_first=True, **options)


def final_hidden(state):
    """The top layer's last hidden state (B, H), from h_n or an LSTM's (h_n, c_n)."""
    h_n = state[0] if isinstance(state, tuple) else state
    return h_n[-1]


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def masked_cross_entropy(logits, targets, mask):
    """Mean cross-entropy over the positions where mask is True.

    logits (B, T, K), targets and mask (B, T). Positions outside the mask
    (padding) get the target IGNORE, so they add nothing to the loss, nor to
    the count it is averaged over, and send no gradient back.
    """
    return cross_entropy(logits, np.where(mask, targets, IGNORE), ignore_index=IGNORE)


class _SequenceReader(Module):
    """What the recurrent models share: ids or features in, a recurrent layer."""

    def __init__(self, input_size, hidden_size, vocab_size, cell, nonlinearity):
        self.embed = None if vocab_size is None else Embedding(vocab_size, input_size)
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = recurrent_layer(cell, input_size, hidden_size, **options)

    def inputs(self, x):
        """(B, T) ids -> (B, T, input_size) vectors; float features pass through."""
        return x if self.embed is None else self.embed(x)


class ManyToOne(_SequenceReader):
    """Read a whole sequence, answer once: (B, T, D) or ids (B, T) -> (B, output_size).

    The answer is a linear function of the last hidden state, so everything
    the model needs from the sequence must be carried there. Use its output
    as logits for classification or as the prediction for regression. With
    `vocab_size`, the inputs are ids and input_size is their embedding size.
    """

    def __init__(self, input_size, hidden_size, output_size, vocab_size=None, cell="rnn",
                 nonlinearity="tanh"):
        super().__init__(input_size, hidden_size, vocab_size, cell, nonlinearity)
        self.head = Linear(hidden_size, output_size)

    def forward(self, x):
        _, state = self.rnn(self.inputs(x))
        return self.head(final_hidden(state))


class ManyToMany(_SequenceReader):
    """A label for every step: ids (B, T) or (B, T, D) -> logits (B, T, num_labels).

    With `vocab_size`, the inputs are ids and input_size is their embedding
    size. The layer is causal, so the label at step t depends on steps 0..t only:
    padding placed after a sequence's end changes none of its real outputs.
    """

    def __init__(self, input_size, hidden_size, num_labels, vocab_size=None, cell="rnn",
                 nonlinearity="tanh"):
        super().__init__(input_size, hidden_size, vocab_size, cell, nonlinearity)
        self.head = Linear(hidden_size, num_labels)

    def forward(self, x):
        hs, _ = self.rnn(self.inputs(x))
        return self.head(hs)

    def loss(self, x, labels, mask):
        """Mean cross-entropy over the real (mask True) positions of a padded batch."""
        return masked_cross_entropy(self(x), labels, mask)


class OneToMany(Module):
    """One input vector, a sequence of symbols out.

    The condition c (B, condition_size) enters twice: through the initial
    hidden state h_0 = tanh(c W^T + b), and beside the previous symbol's
    embedding at every step, so a plain RNN need not carry it across the
    whole output (an image-captioning model likewise looks at its picture at
    every word). Training feeds the true previous symbols (teacher forcing,
    `forward`); `generate` feeds back the model's own guesses instead.
    """

    def __init__(self, condition_size, vocab_size, embed_size, hidden_size, cell="rnn"):
        self.cell = cell
        self.init = Linear(condition_size, hidden_size)
        self.embed = Embedding(vocab_size, embed_size)
        self.rnn = recurrent_layer(cell, embed_size + condition_size, hidden_size)
        self.head = Linear(hidden_size, vocab_size)

    def initial_state(self, condition):
        """The recurrent layer's starting state (1, B, H) from the condition
        (an LSTM's memory cell starts at zero)."""
        h0 = tanh(self.init(_as_tensor(condition)))
        h0 = h0.reshape(1, *h0.shape)
        return (h0, Tensor(np.zeros(h0.shape, h0.dtype))) if self.cell == "lstm" else h0

    def step_inputs(self, condition, previous):
        """What the layer reads at each step: the previous symbol's embedding
        beside the condition, (B, T, embed_size + condition_size)."""
        return concat([self.embed(previous), repeat_steps(condition, previous.shape[1])],
                      axis=-1)

    def decode(self, condition, previous, state):
        """Run the steps whose inputs are `previous` (B, T) ids; returns
        logits (B, T, V) for the symbol after each, and the state after."""
        hs, state = self.rnn(self.step_inputs(condition, previous), state)
        return self.head(hs), state

    def forward(self, condition, previous):
        """Teacher forcing: logits (B, T, V) given the true previous symbols (B, T)."""
        condition = _as_tensor(condition)
        logits, _ = self.decode(condition, previous, self.initial_state(condition))
        return logits

    def generate(self, condition, start_id, steps):
        """Greedy free-running decoding of a whole batch: (B, steps) int64 ids."""
        with no_grad():
            condition = _as_tensor(condition)
            state = self.initial_state(condition)
            token = np.full((condition.shape[0], 1), start_id, dtype=np.int64)
            out = []
            for _ in range(steps):
                logits, state = self.decode(condition, token, state)
                token = logits.data.argmax(axis=-1)  # (B, 1): the next step's input
                out.append(token[:, 0])
        return np.stack(out, axis=1)


class WindowMLP(Module):
    """A feed-forward net over a fixed window: (B, width) -> (B, output_size).

    It sees the window as one flat vector, with no notion of order or of
    anything before the window: a nonlinear AR(width) model.
    """

    def __init__(self, width, hidden_size, output_size=1):
        self.hidden = Linear(width, hidden_size)
        self.out = Linear(hidden_size, output_size)

    def forward(self, x):
        return self.out(tanh(self.hidden(x)))
