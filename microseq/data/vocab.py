"""Vocabularies: symbols <-> integer ids.

Both vocabularies give the same interface: `stoi` (symbol -> id), `itos`
(id -> symbol), `encode`, `decode` and `len()`. Special symbols always come
first, in the order given, so their ids are known without looking them up:
`CharVocab(text, specials="_=")` has the pad "_" at id 0 and "=" at id 1.
"""
from collections import Counter

import numpy as np

from microseq.data.text import DataError


class CharVocab:
    """Ids for characters: the `specials` first, then the distinct characters
    of `text` in sorted order (sorting makes the ids independent of where in
    the text each character first appears).

    `specials` are single characters for seq2seq tasks, e.g. a pad and a
    start symbol that the data itself never contains.
    """

    def __init__(self, text, specials=()):
        specials = list(specials)
        if any(len(s) != 1 for s in specials) or len(set(specials)) != len(specials):
            raise DataError(f"specials must be distinct single characters, got {specials!r}")
        self.specials = specials
        self.itos = specials + sorted(set(text) - set(specials))
        self.stoi = {ch: i for i, ch in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"CharVocab({len(self)} characters)"

    def encode(self, text):
        """The ids of the characters of `text`, as an int64 array."""
        try:
            return np.array([self.stoi[ch] for ch in text], dtype=np.int64)
        except KeyError as e:
            raise DataError(
                f"character {e.args[0]!r} is not in the vocabulary "
                f"({len(self)} characters: {''.join(self.itos)!r})") from None

    def decode(self, ids):
        """The string whose characters have these ids."""
        return "".join(self.itos[i] for i in _checked_ids(ids, len(self)))


class WordVocab:
    """Ids for words, most frequent first (ties broken alphabetically).

    Layout: `specials`, then `unk` (unless it is None), then every word seen
    at least `min_count` times. Rarer words encode to `unk`; with unk=None
    they are an error instead. `counts[i]` is how many of the given tokens
    encode to id i (so rare words are counted under unk, or not at all when
    unk is None): the unigram counts a negative-sampling table is built from.
    """

    def __init__(self, tokens, min_count=1, unk="<unk>", specials=()):
        reserved = list(specials) + ([] if unk is None else [unk])
        if len(set(reserved)) != len(reserved):
            raise DataError(f"specials and unk must be distinct, got {reserved!r}")
        seen = Counter(tokens)
        kept = sorted((w for w, c in seen.items() if c >= min_count and w not in reserved),
                      key=lambda w: (-seen[w], w))
        self.itos = reserved + kept
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.unk_id = None if unk is None else self.stoi[unk]
        counts = np.zeros(len(self.itos), dtype=np.int64)
        for word, count in seen.items():
            i = self.stoi.get(word, self.unk_id)
            if i is not None:  # a rare word with no unk to stand for it
                counts[i] += count
        self.counts = counts

    @classmethod
    def from_itos(cls, itos, unk="<unk>", specials=()):
        """The vocabulary whose id i is itos[i]: a built one's `itos` written
        out and read back, so a saved model reads words with the ids it was
        trained on. itos must start with the specials, then unk. Nothing is
        counted: counts are all 0."""
        vocab = cls([], unk=unk, specials=specials)
        itos = list(itos)
        reserved = vocab.itos
        if itos[:len(reserved)] != reserved or len(set(itos)) != len(itos):
            raise DataError(f"WordVocab.from_itos: itos must start with {reserved!r} and "
                            f"hold every word once, got {itos[:len(reserved) + 2]!r}...")
        vocab.itos = itos
        vocab.stoi = {w: i for i, w in enumerate(itos)}
        vocab.counts = np.zeros(len(itos), dtype=np.int64)
        return vocab

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"WordVocab({len(self)} words)"

    def encode(self, tokens):
        """The ids of a list of words, as an int64 array."""
        if self.unk_id is not None:
            return np.array([self.stoi.get(w, self.unk_id) for w in tokens], dtype=np.int64)
        try:
            return np.array([self.stoi[w] for w in tokens], dtype=np.int64)
        except KeyError as e:
            raise DataError(f"word {e.args[0]!r} is not in the vocabulary "
                            f"({len(self)} words, no unk)") from None

    def decode(self, ids):
        """The list of words with these ids."""
        return [self.itos[i] for i in _checked_ids(ids, len(self))]


def _checked_ids(ids, size):
    """`ids` as a flat int64 array, or a DataError naming the first id that is
    not an integer in 0..size-1 (a negative id does not count from the end)."""
    ids = np.asarray(ids).ravel()
    if ids.size and ids.dtype.kind not in "iu":
        raise DataError(f"ids must be integers, got {ids.dtype} values such as {ids[0].item()!r}")
    bad = (ids < 0) | (ids >= size)
    if bad.any():
        raise DataError(f"id {ids[bad][0]} is not in the vocabulary (ids are 0 to {size - 1})")
    return ids.astype(np.int64)


def char_split(text, train_fraction=0.9):
    """A CharVocab over `text` and its ids cut in two, in order: the first
    `train_fraction` to train on, the rest held out (no shuffling: held-out
    text stays contiguous, as the language-model lessons score it).
    Returns (vocab, train_ids, test_ids)."""
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    cut = int(train_fraction * len(ids))
    return vocab, ids[:cut], ids[cut:]
