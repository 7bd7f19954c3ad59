"""Generated tasks where attention and recurrence part ways, made from a seed.

    associative_recall   a little dictionary, then one of its keys: answer its value
    which_first          two marked symbols among others: which of them comes first?

Like every generator in microseq.data, each takes its sizes first, then
`seed`, then options, and draws everything from `np.random.default_rng(seed)`.
"""
import numpy as np

from microseq.data.text import DataError


def associative_recall(n, pairs, seed, n_keys=32, n_values=16):
    """`n` dictionaries of `pairs` (key, value) entries, each followed by a query.

    Every row holds `pairs` distinct keys (ids 0 .. n_keys-1) with a random
    value each (ids 0 .. n_values-1), then one more position: one of those
    keys again, with the value id `n_values` ("?") in place of a value. The
    answer is the value stored under the queried key. One position carries
    one entry, key and value together, so reading the answer off needs one
    look-up, while a model that reads left to right must keep all `pairs`
    values until the query comes.

    Returns (keys (n, pairs + 1), values (n, pairs + 1), answers (n,)), int64.
    """
    if not 1 <= pairs <= n_keys:
        raise DataError(f"associative_recall: pairs must be between 1 and n_keys={n_keys}, "
                        f"got {pairs}")
    if n_values < 2:
        raise DataError(f"associative_recall: n_values must be >= 2, got {n_values}")
    rng = np.random.default_rng(seed)
    stored = np.argsort(rng.random((n, n_keys)), axis=1)[:, :pairs]   # distinct keys per row
    values = rng.integers(0, n_values, (n, pairs))
    asked = rng.integers(0, pairs, n)
    rows = np.arange(n)
    keys = np.concatenate([stored, stored[rows, asked][:, None]], axis=1)
    shown = np.concatenate([values, np.full((n, 1), n_values)], axis=1)
    return keys.astype(np.int64), shown.astype(np.int64), values[rows, asked].astype(np.int64)


def which_first(n, length, seed, n_symbols=8):
    """`n` sequences of `length` symbols where the order is the whole answer.

    Each row holds symbol 0 ("A") once and symbol 1 ("B") once, at random
    places, and symbols 2 .. n_symbols-1 everywhere else. The label is 1
    when A comes before B and 0 otherwise, half of each on average. Every
    row has a twin with A and B swapped and the opposite label, so a model
    that sees the symbols but not their order cannot beat a coin.

    Returns (ids (n, length) int64, labels (n,) int64).
    """
    if length < 2:
        raise DataError(f"which_first: length must be >= 2, got {length}")
    if n_symbols < 3:
        raise DataError(f"which_first: n_symbols must be >= 3 (A, B and a filler), "
                        f"got {n_symbols}")
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, n_symbols, (n, length))
    places = np.argsort(rng.random((n, length)), axis=1)[:, :2]   # two distinct positions
    rows = np.arange(n)
    ids[rows, places[:, 0]] = 0
    ids[rows, places[:, 1]] = 1
    return ids.astype(np.int64), (places[:, 0] < places[:, 1]).astype(np.int64)
