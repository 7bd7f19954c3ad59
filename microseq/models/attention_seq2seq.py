"""An LSTM encoder-decoder with dot-product attention over the encoder's states.

The plain seq2seq squeezes the whole input into the encoder's final state.
Here the decoder keeps every encoder hidden state and, at each output step,
asks which of them matter now:

    encoder     hs (B, Tx, H): one hidden state per input character
    decoder     d_t, the decoder LSTM's hidden state at output step t
    attention   w_t = softmax over the input of d_t . hs_j / sqrt(H)
                (padding masked out, so it gets exactly zero weight)
    context     c_t = sum_j w_tj hs_j
    output      scores of the next symbol from [c_t, d_t]

The context is used for the output only, not fed back into the LSTM, so
under teacher forcing the decoder LSTM still runs as one call over the whole
answer, and the attention of all output steps is one batched matmul.
"""
import numpy as np

from microseq.models.seq2seq import Encoder, open_forget_gates
from microseq.nn.attention import DotAttention
from microseq.nn.layers import Embedding, Linear
from microseq.nn.module import Module
from microseq.nn.recurrent import LSTM
from microseq.ops import concat, cross_entropy
from microseq.scope import scope
from microseq.tensor import no_grad


class AttentionDecoder(Module):
    """Embedding + LSTM, then attention over the encoder states, then the scores."""

    def __init__(self, vocab_size, embed_size, hidden_size):
        self.embed = Embedding(vocab_size, embed_size)
        self.lstm = open_forget_gates(LSTM(embed_size, hidden_size, batch_first=True))
        self.attention = DotAttention()
        self.out = Linear(2 * hidden_size, vocab_size)

    def forward(self, ys, state, enc_hs, mask):
        """ys (B, T) input ids, state the LSTM's (h, c), enc_hs (B, Tx, H) and
        mask (B, Tx), True on real input characters. Returns logits (B, T, V),
        the state after the last step and the attention weights (B, T, Tx)."""
        with scope("decoder"):
            hs, state = self.lstm(self.embed(ys), state)
            context, weights = self.attention(hs, enc_hs, enc_hs, mask)
            return self.out(concat([context, hs], axis=-1)), state, weights


class AttentionSeq2Seq(Module):
    """Encoder + attention decoder. `pad_id` marks the input padding to mask."""

    def __init__(self, vocab_size, pad_id, embed_size=16, hidden_size=128):
        self.pad_id = pad_id
        self.encoder = Encoder(vocab_size, embed_size, hidden_size)
        self.decoder = AttentionDecoder(vocab_size, embed_size, hidden_size)

    def forward(self, xs, dec_in):
        """Teacher forcing: logits (B, T, V) and attention weights (B, T, Tx)."""
        enc_hs, state = self.encoder(xs)
        logits, _, weights = self.decoder(dec_in, state, enc_hs, xs != self.pad_id)
        return logits, weights

    def loss(self, xs, dec_in, target):
        """Mean cross-entropy over every answer position."""
        return cross_entropy(self(xs, dec_in)[0], target)

    def generate(self, xs, start_id, steps, return_weights=False):
        """Greedy free-running decoding of a batch: ids (B, steps), and with
        return_weights the attention of each step too, (B, steps, Tx)."""
        with no_grad():
            enc_hs, state = self.encoder(xs)
            mask = xs != self.pad_id
            token = np.full((len(xs), 1), start_id, dtype=np.int64)
            out, weights = [], []
            for _ in range(steps):
                logits, state, w = self.decoder(token, state, enc_hs, mask)
                token = logits.data.argmax(axis=-1)  # (B, 1): the next step's input
                out.append(token[:, 0])
                weights.append(w.data[:, 0])
        ids = np.stack(out, axis=1)
        return (ids, np.stack(weights, axis=1)) if return_weights else ids
