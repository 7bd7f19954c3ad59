"""word2vec: CBOW and skip-gram with negative sampling, the data they learn
from, and the ways to look at the vectors they learn.

Every word w owns two vectors: an input vector v_w (a row of `in_embed`,
the word vector we keep) and an output vector u_w (a row of `out_embed`).
From a hidden vector h, a model should tell the true word o apart from K
"negative" words drawn at random:

    loss = -log sigmoid(u_o . h) - sum_k log sigmoid(-u_k . h)

Skip-gram: h = v_c of the centre word, and o is one of its context words.
CBOW:      h = the mean of the context words' input vectors, o the centre word.

Both are built from microseq's engine: the lookups are nn.Embedding, whose
backward adds up the gradients of an id that occurs several times in a
batch, and the loss is binary cross-entropy with logits. The hand-derived
version of the same gradients is microseq.reference.word2vec.
"""
import numpy as np

from microseq.data import minibatches
from microseq.nn import Embedding, Module
from microseq.ops import binary_cross_entropy_with_logits
from microseq.tensor import default_rng

# --- the data: subsampling, windows, negatives ----------------------------------


def keep_probability(counts, t):
    """Mikolov et al.'s subsampling: an occurrence of word w is kept with
    probability min(1, sqrt(t / f(w))), f(w) its share of the corpus. Words
    rarer than t are always kept; "the" (6 % of an English text) is kept
    about one time in eight for t = 1e-3."""
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / counts.sum()
    keep = np.ones_like(freq)
    seen = freq > 0
    keep[seen] = np.minimum(1.0, np.sqrt(t / freq[seen]))
    return keep


def subsample(ids, counts, t, rng):
    """The ids with frequent words dropped at random (see keep_probability)."""
    ids = np.asarray(ids)
    return ids[rng.random(len(ids)) < keep_probability(counts, t)[ids]]


def skipgram_pairs(ids, window, rng=None):
    """(centers, contexts): every pair of positions at most `window` apart,
    in both directions. With an rng, a pair d apart is kept with probability
    (window - d + 1) / window: word2vec's randomly shrunk window, which makes
    near neighbours count more than far ones."""
    ids = np.asarray(ids)
    centers, contexts = [], []
    for d in range(1, window + 1):
        for c, x in ((ids[:-d], ids[d:]), (ids[d:], ids[:-d])):
            if rng is not None:
                keep = rng.random(len(c)) < (window - d + 1) / window
                c, x = c[keep], x[keep]
            centers.append(c)
            contexts.append(x)
    return np.concatenate(centers), np.concatenate(contexts)


def cbow_windows(ids, window):
    """(contexts (N, 2 window), centers (N,)): each position that has `window`
    words on both sides, with those words in order, left then right."""
    ids = np.asarray(ids)
    if len(ids) < 2 * window + 1:
        return np.zeros((0, 2 * window), ids.dtype), np.zeros(0, ids.dtype)
    spans = np.lib.stride_tricks.sliding_window_view(ids, 2 * window + 1)
    return np.delete(spans, window, axis=1), spans[:, window].copy()


class NegativeSampler:
    """Draws negative words with probability proportional to count ** power.

    The power 0.75 flattens the unigram distribution: rare words are drawn
    more often than their share of the text, "the" less often.
    """

    def __init__(self, counts, power=0.75):
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1 or (counts < 0).any() or counts.sum() <= 0:
            raise ValueError("NegativeSampler: counts must be a 1-D array of non-negative "
                             "numbers, not all zero")
        weights = counts ** power
        self.probs = weights / weights.sum()
        self._cdf = np.cumsum(self.probs)
        self._cdf[-1] = 1.0  # no draw may fall past the last word through rounding

    def _draw(self, shape, rng):
        return np.searchsorted(self._cdf, rng.random(shape), side="right")

    def sample(self, targets, k, rng, exclude_target=True):
        """k negatives for each target id: an int array of shape targets.shape + (k,).

        With exclude_target, a negative that equals its own target is drawn
        again until it does not: exactly the distribution above with the
        target's share removed. A frequent word asks for a few redraws
        (1 / (1 - p) draws on average), which cost nothing to speak of.
        """
        targets = np.asarray(targets)
        negatives = self._draw(targets.shape + (k,), rng)
        if not exclude_target:
            return negatives
        if np.any(self.probs[targets] >= 1.0):
            raise ValueError("NegativeSampler: a target is the only word that can be drawn, "
                             "so it has no negatives other than itself")
        clash = negatives == targets[..., None]
        while clash.any():
            negatives[clash] = self._draw(int(clash.sum()), rng)
            clash = negatives == targets[..., None]
        return negatives


def make_batches(kind, ids, counts, *, window, batch_size, negatives, t, sampler=None):
    """A function rng -> one epoch of batches, for microseq.train.train.

    Each epoch subsamples the corpus afresh, cuts it into (context, centre)
    examples, shuffles them and draws new negatives. A batch is the argument
    tuple of the model: (contexts, centers, negatives) for "cbow",
    (centers, contexts, negatives) for "skipgram"; the positive word, whose
    own id is never drawn as its negative, is the middle entry.
    """
    if kind not in ("cbow", "skipgram"):
        raise ValueError(f"kind must be 'cbow' or 'skipgram', got {kind!r}")
    sampler = sampler or NegativeSampler(counts)

    def epoch(rng):
        kept = subsample(ids, counts, t, rng)
        if kind == "cbow":
            inputs, positives = cbow_windows(kept, window)
        else:
            inputs, positives = skipgram_pairs(kept, window, rng)
        for idx in minibatches(len(positives), batch_size, rng):
            yield inputs[idx], positives[idx], sampler.sample(positives[idx], negatives, rng)

    return epoch


# --- the models ---------------------------------------------------------------


def negative_sampling_loss(h, out_embed, positives, negatives):
    """Mean over the batch of -log sigmoid(u_o . h) - sum_k log sigmoid(-u_k . h).

    h (B, D) are hidden vectors, positives (B,) and negatives (B, K) word ids.
    The true word and its negatives are looked up together, as one
    (B, 1 + K) table of ids whose first column is labelled 1 and the rest 0;
    one batched matrix product gives all K + 1 scores u . h of an example,
    and the loss is binary cross-entropy on them.
    """
    B, D = h.shape
    ids = np.concatenate([np.asarray(positives)[:, None], negatives], axis=1)
    scores = (out_embed(ids) @ h.reshape(B, D, 1)).reshape(B, -1)   # u . h, (B, 1 + K)
    labels = np.zeros(scores.shape, scores.dtype)
    labels[:, 0] = 1
    return binary_cross_entropy_with_logits(scores, labels, reduction="sum") * (1.0 / B)


class Word2Vec(Module):
    """The two tables both models share. `in_embed.weight` is W_in of
    microseq.reference.word2vec (the word vectors), `out_embed.weight` W_out.

    Initialised as word2vec does: input vectors uniform in +-0.5 / dim,
    output vectors zero, so every score starts at 0 (sigmoid = 1/2).
    """

    def __init__(self, vocab_size, dim):
        self.vocab_size, self.dim = vocab_size, dim
        self.in_embed = Embedding(vocab_size, dim)
        self.out_embed = Embedding(vocab_size, dim)
        bound = 0.5 / dim
        self.in_embed.weight.data[...] = default_rng().uniform(-bound, bound, (vocab_size, dim))
        self.out_embed.weight.data[...] = 0

    @property
    def vectors(self):
        """The word vectors, (vocab_size, dim): a view of in_embed's weights."""
        return self.in_embed.weight.data

    def extra_repr(self):
        return f"{self.vocab_size}, {self.dim}"


class CBOW(Word2Vec):
    """Continuous bag of words: the mean of the context vectors predicts the centre."""

    def forward(self, contexts, centers, negatives):
        """contexts (B, C), centers (B,), negatives (B, K) ids -> the mean loss."""
        h = self.in_embed(contexts).mean(axis=1)               # (B, D)
        return negative_sampling_loss(h, self.out_embed, centers, negatives)


class SkipGram(Word2Vec):
    """Skip-gram: the centre word's vector predicts each context word."""

    def forward(self, centers, contexts, negatives):
        """centers (B,), contexts (B,), negatives (B, K) ids -> the mean loss."""
        return negative_sampling_loss(self.in_embed(centers), self.out_embed, contexts, negatives)


# --- looking at the vectors ---------------------------------------------------


def unit_rows(vectors):
    """Each row scaled to length 1, so that dot products are cosines."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _top_k(scores, k):
    """Column indices of the k largest scores of each row, best first."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


def nearest(vectors, ids, k=5):
    """The k words closest by cosine to each word in ids (never the word itself).

    Returns (neighbours (Q, k), cosines (Q, k)), best first.
    """
    ids = np.asarray(ids)
    unit = unit_rows(vectors)
    cos = unit[ids] @ unit.T
    cos[np.arange(len(ids)), ids] = -np.inf
    top = _top_k(cos, k)
    return top, np.take_along_axis(cos, top, 1)


def partner_ranks(vectors, a, b):
    """For each pair (a[i], b[i]): b's rank among all words by cosine to a,
    a itself left out. Rank 1 is the nearest word; a random partner has a
    rank of about half the vocabulary."""
    a, b = np.asarray(a), np.asarray(b)
    unit = unit_rows(vectors)
    cos = unit[a] @ unit.T
    rows = np.arange(len(a))
    cos[rows, a] = -np.inf
    return (cos > cos[rows, b][:, None]).sum(axis=1) + 1


def analogy(vectors, a, b, c, k=5):
    """"a is to b as c is to ?": the k words nearest by cosine to
    b - a + c (unit vectors), leaving out a, b and c themselves.
    a, b, c are equal-length id arrays; returns ids (Q, k), best first."""
    a, b, c = np.asarray(a), np.asarray(b), np.asarray(c)
    unit = unit_rows(vectors)
    cos = (unit[b] - unit[a] + unit[c]) @ unit.T
    rows = np.arange(len(a))
    for asked in (a, b, c):
        cos[rows, asked] = -np.inf
    return _top_k(cos, k)


def class_purity(vectors, ids, classes, k=5):
    """The fraction of each word's k nearest neighbours (among the whole
    vocabulary) that belong to its own class, averaged over the words.

    ids are the words that have a class, classes their labels (any
    comparable values); a neighbour without a class is never a match.
    """
    ids = np.asarray(ids)
    label = np.full(len(vectors), None, dtype=object)
    label[ids] = list(classes)
    neighbours, _ = nearest(vectors, ids, k)
    return float(np.mean(label[neighbours] == label[ids][:, None]))


def pca(vectors, n=2):
    """The vectors projected on their n main directions of variation, (N, n)."""
    centred = np.asarray(vectors, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:n].T
