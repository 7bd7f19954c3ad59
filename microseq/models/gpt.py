"""A tiny character-level GPT: embeddings -> causal Transformer blocks -> linear.

    model = CharGPT(vocab_size=len(vocab), d_model=64, nhead=4, num_layers=2, context=64)
    logits = model(x)                     # x (B, T <= context) int ids -> logits (B, T, V)
    loss = model.loss(x, y)               # mean cross-entropy in nats
    model.bits_per_char(test_ids)         # every character scored with context/2 or more before it
    model.sample(vocab.encode("The "), 200, temperature=0.8)
    maps = model.attention_maps(ids)      # (layers, heads, T, T): who looks at whom

Each block is PyTorch's `nn.TransformerEncoderLayer` with the GPT-2
arrangement (`norm_first=True`: layer norm before each sublayer, the
residual path left clean; GPT-2's tanh form of GELU in the feed-forward
part, which costs a fraction of the exact one), run under a causal
mask so that position t sees positions 0..t only. Where each character
stands comes from a learned position embedding added to its token embedding.
"""
from functools import partial

import numpy as np

from microseq import nn
from microseq.ops import cross_entropy, gelu, log_softmax, softmax
from microseq.tensor import Tensor, no_grad

gelu_tanh = partial(gelu, approximate="tanh")  # GPT-2's and BERT's GELU


class CharGPT(nn.Module):
    """Predicts each next character from at most `context` characters before it.

    vocab_size: number of distinct characters (ids 0..V-1).
    d_model, nhead, num_layers, dim_feedforward (default 4 d_model): the blocks.
    context: the longest input, and the number of learned positions.
    """

    def __init__(self, vocab_size, d_model=64, nhead=4, num_layers=2, context=64,
                 dim_feedforward=None):
        self.vocab_size, self.context = vocab_size, context
        self.tok_embed = nn.Embedding(vocab_size, d_model)
        self.positions = nn.LearnedPositionalEncoding(d_model, context, batch_first=True)
        block = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward or 4 * d_model,
                                           dropout=0.0, activation=gelu_tanh, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, num_layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, vocab_size)

    def embed(self, ids):
        """Token plus position embeddings of ids (B, T): (B, T, d_model)."""
        T = ids.shape[-1]
        if not 1 <= T <= self.context:
            raise ValueError(f"CharGPT: inputs of 1 to {self.context} characters (its "
                             f"context), got {T}")
        return self.positions(self.tok_embed(ids))

    def forward(self, ids):
        """ids (B, T) -> logits (B, T, V); the logits at t depend on ids[:, :t+1] only."""
        ids = np.asarray(ids)
        mask = nn.generate_square_subsequent_mask(ids.shape[-1])
        hidden = self.blocks(self.embed(ids), mask=mask, is_causal=True)
        return self.head(hidden)

    def loss(self, x, y):
        """Mean cross-entropy (nats per character) of predicting y (B, T) from x (B, T)."""
        return cross_entropy(self(x), y)

    def attention_maps(self, ids):
        """Every head's attention weights over a 1-D id sequence, as an array
        (num_layers, nhead, T, T): row t is how position t spreads its
        attention over positions 0..t."""
        ids = np.asarray(ids)[None]
        mask = nn.generate_square_subsequent_mask(ids.shape[1])
        was_training = self.training
        self.eval()
        with no_grad():
            maps = self.blocks.attention_maps(self.embed(ids), mask=mask, is_causal=True)
        self.train(was_training)
        return np.stack([layer[0] for layer in maps])

    def bits_per_char(self, ids, batch_size=64):
        """Mean -log2 P(next character) over the 1-D id stream, scoring ids[1:].

        The stream is read in windows of `context` characters that overlap
        by half: the first window's predictions all count, each later
        window's only in its second half, so every character after the first
        half-window is predicted with at least context/2 characters before it.
        """
        ids = np.asarray(ids, dtype=np.int64)
        n, C = len(ids) - 1, self.context   # n targets: ids[1:]
        if n < 1:
            raise ValueError("bits_per_char: the stream needs at least two characters")
        half, width = max(1, C // 2), min(C, n)
        starts = list(range(0, n - width + 1, half))
        if starts[-1] != n - width:
            starts.append(n - width)       # the last window ends at the last target
        total, scored = 0.0, 0             # targets up to `scored` are counted
        was_training = self.training
        self.eval()
        with no_grad():
            for first in range(0, len(starts), batch_size):
                group = starts[first:first + batch_size]
                x = np.stack([ids[s:s + width] for s in group])
                y = np.stack([ids[s + 1:s + 1 + width] for s in group])
                logp = log_softmax(self(x)).data.astype(np.float64)
                logp = np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
                for row, s in enumerate(group):
                    keep = slice(max(scored, s) - s, width)   # targets not counted yet
                    total -= logp[row, keep].sum()
                    scored = s + width
        self.train(was_training)
        return total / n / np.log(2)

    def sample(self, prompt, length, temperature=1.0, n=1, rng=None):
        """Continue the id sequence `prompt` by `length` characters, n times in
        parallel, each next character drawn from softmax(logits / temperature)
        given the last `context` characters (temperature 0: the most likely).
        Returns an int array (n, length)."""
        rng = np.random.default_rng(rng)
        prompt = np.asarray(prompt, dtype=np.int64)
        if prompt.ndim != 1 or len(prompt) == 0:
            raise ValueError("sample: the prompt must be a non-empty 1-D sequence of ids")
        if temperature < 0:
            raise ValueError(f"sample: temperature must be >= 0, got {temperature}")
        text = np.tile(prompt, (n, 1))
        was_training = self.training
        self.eval()
        with no_grad():
            for _ in range(length):
                last = self(text[:, -self.context:]).data[:, -1]
                if temperature == 0:
                    nxt = last.argmax(-1)
                else:
                    p = softmax(Tensor(last.astype(np.float64) / temperature)).data
                    u = rng.random((n, 1))   # inverse-CDF draw, one uniform number per row
                    nxt = np.minimum((p.cumsum(-1) < u).sum(-1), self.vocab_size - 1)
                text = np.concatenate([text, nxt[:, None]], axis=1)
        self.train(was_training)
        return text[:, len(prompt):]
