"""word2vec benchmark: one CBOW + negative-sampling training step.

Lesson 7's size: a vocabulary of 2,000 words, 100-dimensional vectors, batch
512, a window of 5 words on each side (10 context words) and 5 negatives.
A step is forward, backward and a plain SGD update of both tables, for the
autograd model (microseq.models.word2vec.CBOW: Embedding lookups, mean,
binary cross-entropy with logits) and for the hand-derived numpy step in
microseq.reference.word2vec. Both get the same batch and start from the
same weights.
"""
import numpy as np

import microseq as ms
from bench.common import compare_ms, record
from microseq.models.word2vec import CBOW
from microseq.optim import SGD
from microseq.reference.word2vec import cbow_ns_loss_and_grads


def cbow_step(repeats, vocab=2000, dim=100, batch=512, window=5, negatives=5, lr=0.5):
    rng = np.random.default_rng(0)
    contexts = rng.integers(0, vocab, (batch, 2 * window))
    centers = rng.integers(0, vocab, batch)
    negative_ids = rng.integers(0, vocab, (batch, negatives))

    ms.manual_seed(0)
    model = CBOW(vocab, dim)
    model.out_embed.weight.data[...] = rng.uniform(-0.05, 0.05, (vocab, dim))
    optimizer = SGD(model.parameters(), lr=lr)
    W_in, W_out = model.in_embed.weight.data.copy(), model.out_embed.weight.data.copy()

    def ours():
        optimizer.zero_grad()
        model(contexts, centers, negative_ids).backward()
        optimizer.step()

    def reference():
        _, grads = cbow_ns_loss_and_grads(W_in, W_out, contexts, centers, negative_ids)
        W_in[...] -= lr * grads["W_in"]
        W_out[...] -= lr * grads["W_out"]

    name = f"CBOW+NS step V={vocab} D={dim} B={batch} C={2 * window} K={negatives}"
    ms_ours, ms_reference = compare_ms(ours, reference, repeats)
    return record(name, ms_ours, "hand-derived numpy (reference/word2vec)", ms_reference)


def run(repeats=5):
    """[{name, ms, reference, reference_ms, ratio}] with ratio = ours / reference."""
    return [cbow_step(repeats)]
