"""Batches: truncated-BPTT windows over one long stream, padding, minibatches."""
import numpy as np

from microseq.data.text import DataError


class BPTTBatcher:
    """Contiguous windows for truncated backpropagation through time.

    The id stream is cut into `batch_size` parallel streams of equal length
    S = (len(ids) - 1) // batch_size: stream b is ids[b*S : (b+1)*S], and its
    targets are the same positions shifted by one. Iterating yields
    `(x, y)`, two int64 arrays of shape (batch_size, seq_len) with
    y[:, t] the token after x[:, t]. Window k+1 of row b starts exactly where
    window k of row b ended, so the hidden state at the end of one window
    is the right initial state for the next: carry it over (detached) and
    the model sees each stream as one unbroken sequence. The few tokens that
    do not fill a whole window are dropped.

    len() is the number of windows per pass, S // seq_len.
    """

    def __init__(self, ids, batch_size, seq_len):
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1:
            raise DataError(f"BPTTBatcher wants a 1-D id stream, got shape {ids.shape}")
        if batch_size < 1 or seq_len < 1:
            raise DataError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        stream_len = (len(ids) - 1) // batch_size
        if stream_len < seq_len:
            raise DataError(
                f"{len(ids)} tokens are too few for one window of {batch_size} streams x "
                f"{seq_len} steps (need at least {batch_size * seq_len + 1})")
        self.batch_size, self.seq_len, self.stream_len = batch_size, seq_len, stream_len
        used = batch_size * stream_len
        self.x = ids[:used].reshape(batch_size, stream_len)
        self.y = ids[1:used + 1].reshape(batch_size, stream_len)

    def __len__(self):
        return self.stream_len // self.seq_len

    def __iter__(self):
        for start in range(0, len(self) * self.seq_len, self.seq_len):
            window = slice(start, start + self.seq_len)
            yield self.x[:, window], self.y[:, window]


def pad_batch(seqs, pad_id, length=None):
    """Stack sequences of ids into one array, padding on the right.

    Returns `(ids, mask)`, both of shape (len(seqs), length): ids int64 with
    `pad_id` after each sequence's end, mask bool and True on real tokens.
    `length` defaults to the longest sequence; a longer one is an error.
    """
    lengths = [len(s) for s in seqs]
    if length is None:
        length = max(lengths, default=0)
    elif max(lengths, default=0) > length:
        raise DataError(f"a sequence of length {max(lengths)} does not fit in length={length}")
    ids = np.full((len(seqs), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), length), dtype=bool)
    for row, (seq, n) in enumerate(zip(seqs, lengths)):
        ids[row, :n] = seq
        mask[row, :n] = True
    return ids, mask


def minibatches(n, batch_size, rng=None):
    """Index arrays that cover range(n) exactly once, `batch_size` at a time.

    `rng` (a numpy Generator or an int seed) shuffles the order; with None
    the order is kept, which is what evaluation wants. Only the last batch
    may be smaller.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    order = np.arange(n) if rng is None else np.random.default_rng(rng).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
