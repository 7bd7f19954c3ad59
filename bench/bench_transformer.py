"""One training step of a GPT-style Transformer language model, nn layers
against the hand-derived numpy of microseq.reference.transformer.

The workload: vocabulary 65, d_model 64, 4 heads, 2 pre-norm layers with a
256-wide GELU feed-forward, batch 32 of 64 positions, float32: embedding +
learned positions, causal self-attention, final LayerNorm, linear read-out,
cross-entropy, backward and an SGD step. The reference computes the same
loss and gradients by hand and takes the same step, so the ratio is the
price of autograd alone. tests/test_bench_transformer.py checks that both
give the same loss and gradients.
"""
import numpy as np

import microseq as ms
from bench.common import compare_ms, record
from microseq import nn
from microseq.optim import SGD
from microseq.reference.transformer import transformer_lm_step


class TransformerLM(nn.Module):
    """ids (B, T) -> logits (B, T, V); the parameter names are the ones
    microseq.reference.transformer_lm_loss_and_grads reads."""

    def __init__(self, vocab, d_model, nhead, num_layers, max_len):
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.LearnedPositionalEncoding(d_model, max_len, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, vocab)

    def forward(self, ids):
        x = self.pos(self.embed(ids))                  # (B, T, E)
        return self.head(self.encoder(x, is_causal=True))  # (B, T, V)


def setup(vocab=65, d_model=64, nhead=4, num_layers=2, batch=32, steps=64, seed=0):
    """The model, a copy of its parameters for the reference, and one batch."""
    ms.manual_seed(seed)
    model = TransformerLM(vocab, d_model, nhead, num_layers, steps)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, (batch, steps))
    y = rng.integers(0, vocab, (batch, steps))
    return model, model.state_dict(), x, y


def lm_step(repeats, lr=0.1, **sizes):
    model, params, x, y = setup(**sizes)
    sgd = SGD(model.parameters(), lr=lr)
    nhead = model.encoder.layers[0].self_attn.num_heads

    def ours():
        sgd.zero_grad()
        ms.cross_entropy(model(x), y).backward()
        sgd.step()

    def reference():
        transformer_lm_step(params, x, y, nhead, lr)

    ms_ours, ms_reference = compare_ms(ours, reference, repeats)
    B, T = x.shape
    E = model.embed.embedding_dim
    name = f"transformer LM step (L2 E{E} h{nhead} B{B} T{T})"
    return record(name, ms_ours, "hand-derived numpy Transformer", ms_reference)


def run(repeats=7):
    return [lm_step(repeats)]
