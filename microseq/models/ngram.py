"""Count baselines for character (or word) language models.

An n-gram model predicts the next symbol from the n-1 before it by counting.
With add-k (Lidstone) smoothing every symbol gets k pseudo-counts, so

    P(c | ctx) = (count(ctx, c) + k) / (count(ctx) + k V)

is a proper distribution over the V symbols for every context, even one never
seen in training (it is then uniform). Order 1 has an empty context: the
unigram model. Before the first symbol of a text the context is filled with a
"start" symbol, id V, so every position of a text gets a prediction.

Counts are kept sparse: each (context, next) pair is one int64 key in base
V + 1, so any order works as long as (V + 1)^n fits in 63 bits. Evaluation
looks keys up with np.searchsorted: no Python loop over the text.

    model = NgramLM(train_ids, vocab_size=len(vocab), order=3, k=0.1)
    model.bits_per_char(test_ids)
    best = fit_add_k(train_ids, len(vocab), order=3)   # k tuned on held-out text
"""
import math

import numpy as np


class NgramLM:
    """An add-k-smoothed n-gram model over integer ids 0..vocab_size-1."""

    def __init__(self, ids, vocab_size, order=3, k=1.0):
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        if k <= 0:
            raise ValueError(f"k must be positive (k = 0 gives unseen symbols probability 0), "
                             f"got {k}")
        if (vocab_size + 1) ** order >= 2 ** 63:
            raise ValueError(f"order {order} over {vocab_size} symbols does not fit in int64 keys")
        self.vocab_size, self.order, self.k = vocab_size, order, float(k)
        contexts, targets = self._contexts(ids)
        self.pair_keys, self.pair_counts = np.unique(contexts * self._base + targets,
                                                     return_counts=True)
        self.context_keys, self.context_counts = np.unique(contexts, return_counts=True)

    @property
    def _base(self):
        return self.vocab_size + 1  # one more than the ids: room for the start symbol

    def _contexts(self, ids):
        """(context key, target) of every position of `ids`; a context is the
        order-1 preceding ids, start-padded, read as a number in base V + 1."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or (ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size)):
            raise ValueError(f"ids must be a 1-D array of values in 0..{self.vocab_size - 1}")
        padded = np.concatenate([np.full(self.order - 1, self.vocab_size, np.int64), ids])
        keys = np.zeros(len(ids), np.int64)
        for j in range(self.order - 1):  # oldest symbol first, so it is the highest digit
            keys = keys * self._base + padded[j:j + len(ids)]
        return keys, ids

    @staticmethod
    def _lookup(keys, counts, queries):
        """counts[keys == query] for every query, 0 where the key is absent."""
        at = np.searchsorted(keys, queries)
        at = np.minimum(at, len(keys) - 1)
        return np.where(keys[at] == queries, counts[at], 0)

    def _prob(self, contexts, targets):
        pair = self._lookup(self.pair_keys, self.pair_counts, contexts * self._base + targets)
        total = self._lookup(self.context_keys, self.context_counts, contexts)
        return (pair + self.k) / (total + self.k * self.vocab_size)

    def _last_context(self, context):
        """The last order-1 ids of `context`, start-padded if it is shorter."""
        context = np.asarray(context, dtype=np.int64)[max(len(context) - self.order + 1, 0):]
        pad = np.full(self.order - 1 - len(context), self.vocab_size, np.int64)
        return np.concatenate([pad, context])

    def probs(self, context=()):
        """The next-symbol distribution (V,) after `context`, a sequence of ids
        (only its last order-1 ids matter; a shorter one is start-padded)."""
        key = 0
        for symbol in self._last_context(context):
            key = key * self._base + int(symbol)
        return self._prob(np.full(self.vocab_size, key, np.int64), np.arange(self.vocab_size))

    def log_probs(self, ids):
        """log P(ids[i] | the order-1 ids before it) for every i, in nats.
        The first ids of `ids` see start symbols as context."""
        contexts, targets = self._contexts(ids)
        return np.log(self._prob(contexts, targets))

    def bits_per_char(self, ids, context=()):
        """Mean -log2 P over the symbols of `ids`. `context` (ids that come
        right before them, e.g. the end of the training text) replaces the
        start padding, so the first few symbols are predicted fairly."""
        context = np.asarray(context, dtype=np.int64)[max(len(context) - self.order + 1, 0):]
        scores = self.log_probs(np.concatenate([context, np.asarray(ids, np.int64)]))
        return float(-scores[len(context):].mean() / math.log(2))

    def __repr__(self):
        return f"NgramLM(order={self.order}, k={self.k:g}, {len(self.pair_keys)} distinct n-grams)"


def fit_add_k(ids, vocab_size, order, ks=(1.0, 0.3, 0.1, 0.03, 0.01, 0.003), valid_fraction=0.1):
    """An NgramLM on all of `ids` with k chosen from `ks` on held-out text.

    Each k is tried on a model counted from the first 1 - valid_fraction of
    `ids` and scored on the rest; the k with the lowest bits per character
    is then refitted on all of `ids`. The text a model is finally scored on
    (a test split) plays no part in choosing k.
    """
    cut = int(len(ids) * (1 - valid_fraction))
    head, tail = ids[:cut], ids[cut:]
    best = min(ks, key=lambda k: NgramLM(head, vocab_size, order, k)
               .bits_per_char(tail, context=head))
    return NgramLM(ids, vocab_size, order, best)
