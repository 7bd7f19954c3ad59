"""Word tokens for a BERT-style encoder, and BERT's masking recipe.

    tok = WordTokenizer(words(text), size=2000)   # 5 special tokens + the 1995 commonest words
    ids = tok.encode("Return the list.")          # [CLS] return the list [SEP]
    tok.decode(ids)                               # '[CLS] return the list [SEP]'
    inputs, targets = mask_tokens(batch, rng, tok)

A word outside the vocabulary becomes [UNK]. The special tokens come first,
so their ids are fixed: [PAD] 0, [CLS] 1, [SEP] 2, [MASK] 3, [UNK] 4.
"""
from collections import Counter

import numpy as np

from microseq.data.text import DataError, words
from microseq.data.vocab import WordVocab

PAD_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN = "[PAD]", "[CLS]", "[SEP]", "[MASK]"
UNK_TOKEN = "[UNK]"
SPECIAL_TOKENS = (PAD_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN, UNK_TOKEN)
_SPECIALS = [s for s in SPECIAL_TOKENS if s != UNK_TOKEN]  # WordVocab puts unk after these
IGNORE_INDEX = -100  # cross_entropy's default ignore_index: "no target here"


class WordTokenizer:
    """Lowercase words (`microseq.data.words`) to ids: the special tokens,
    then the `size - 5` most frequent words of `tokens` (ties broken
    alphabetically); every other word is [UNK].

    Attributes: vocab (a WordVocab: stoi, itos), pad_id, cls_id, sep_id,
    mask_id, unk_id, special_ids.
    """

    def __init__(self, tokens, size):
        if size <= len(SPECIAL_TOKENS):
            raise DataError(f"WordTokenizer: size={size} leaves no room for words beside "
                            f"the {len(SPECIAL_TOKENS)} special tokens")
        tokens = list(tokens)
        counts = Counter(tokens)
        keep = set(sorted(counts, key=lambda w: (-counts[w], w))[:size - len(SPECIAL_TOKENS)])
        # WordVocab orders words by count, ties alphabetically: the same order as `keep`
        self._use(WordVocab([w for w in tokens if w in keep], unk=UNK_TOKEN, specials=_SPECIALS))

    @classmethod
    def from_words(cls, words):
        """The tokenizer whose ids are the special tokens, then `words` in
        this order: a built tokenizer's `words`, as a saved model keeps them."""
        tokenizer = cls.__new__(cls)
        tokenizer._use(WordVocab.from_itos([*SPECIAL_TOKENS, *words], unk=UNK_TOKEN,
                                           specials=_SPECIALS))
        return tokenizer

    def _use(self, vocab):
        self.vocab = vocab
        self.pad_id, self.cls_id, self.sep_id, self.mask_id, self.unk_id = (
            vocab.stoi[s] for s in SPECIAL_TOKENS)
        self.special_ids = np.arange(len(SPECIAL_TOKENS))

    @property
    def words(self):
        """The ordinary words, in id order (ids 5, 6, ...)."""
        return self.vocab.itos[len(SPECIAL_TOKENS):]

    def __len__(self):
        return len(self.vocab)

    def __repr__(self):
        return f"WordTokenizer({len(self)} tokens)"

    def encode(self, text, add_special_tokens=True):
        """The ids of the words of `text` (a string), as an int64 array:
        [CLS] w1 ... wn [SEP], or only the words."""
        ids = self.vocab.encode(words(text))
        if add_special_tokens:
            ids = np.concatenate([[self.cls_id], ids, [self.sep_id]]).astype(np.int64)
        return ids

    def decode(self, ids, skip_special_tokens=False):
        """The tokens with these ids joined by spaces ([PAD] dropped when
        skipping special tokens, as every other special token)."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        bad = ids[(ids < 0) | (ids >= len(self))]
        if bad.size:
            raise DataError(f"WordTokenizer.decode: id {bad[0]} is outside the vocabulary "
                            f"(ids 0..{len(self) - 1})")
        if skip_special_tokens:
            ids = ids[ids >= len(SPECIAL_TOKENS)]
        return " ".join(self.vocab.itos[i] for i in ids)

    def encode_batch(self, texts, length):
        """(len(texts), length) ids: each text as [CLS] words [SEP], cut to
        `length` (keeping [SEP] last) and padded with [PAD] on the right."""
        if length < 2:
            raise DataError(f"WordTokenizer.encode_batch: length={length} cannot hold [CLS] "
                            f"and [SEP]")
        out = np.full((len(texts), length), self.pad_id, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = self.encode(text)
            if len(ids) > length:
                ids = np.concatenate([ids[:length - 1], [self.sep_id]])
            out[row, :len(ids)] = ids
        return out


def mask_tokens(ids, rng, tokenizer, p=0.15):
    """BERT's masked-language-model recipe on a batch of ids (any shape).

    Each ordinary token (not a special one) is chosen with probability `p`.
    A chosen token becomes [MASK] with probability 0.8, a random ordinary
    token with 0.1, and stays itself with 0.1. Returns (inputs, targets):
    targets hold the original id at chosen places and IGNORE_INDEX elsewhere,
    so the loss is taken only where the model had to guess.
    """
    ids = np.asarray(ids, dtype=np.int64)
    ordinary = ~np.isin(ids, tokenizer.special_ids)
    chosen = ordinary & (rng.random(ids.shape) < p)
    action = rng.random(ids.shape)
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    inputs = ids.copy()
    inputs[to_mask] = tokenizer.mask_id
    inputs[to_random] = rng.integers(len(SPECIAL_TOKENS), len(tokenizer), to_random.sum())
    targets = np.where(chosen, ids, IGNORE_INDEX)
    return inputs, targets
