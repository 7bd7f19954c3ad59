"""Word tokens, BERT's masking recipe and the docstring-topic task.

Round trips under hypothesis: text made of vocabulary words decodes to its
words; ids of ordinary words survive decode then encode. The masking
recipe's proportions are measured on a large batch and compared with
15 % chosen, of which 80 / 10 / 10 % masked / random / kept, within a few
standard errors.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microseq.data import DataError, words
from microseq.data.tokens import (
    IGNORE_INDEX,
    SPECIAL_TOKENS,
    WordTokenizer,
    mask_tokens,
)
from microseq.data.topics import docstring_topics, label_budget, topic_split

CORPUS = ("the cat sat on the mat and the dog sat on the log while a bird "
          "sang to the cat in the tree the end").split()
TOK = WordTokenizer(CORPUS, size=12)
KNOWN = TOK.vocab.itos[len(SPECIAL_TOKENS):]
separators = st.sampled_from([" ", "  ", ", ", ". ", "\n", "! ", " (", ") ", "-"])


def test_special_tokens_come_first_and_words_by_frequency():
    assert TOK.vocab.itos[:5] == list(SPECIAL_TOKENS)
    assert (TOK.pad_id, TOK.cls_id, TOK.sep_id, TOK.mask_id, TOK.unk_id) == (0, 1, 2, 3, 4)
    assert len(TOK) == 12
    assert KNOWN[:3] == ["the", "cat", "on"]  # 6, then 2, 2 (ties alphabetical), ...


@given(st.lists(st.tuples(st.sampled_from(KNOWN), separators), max_size=20),
       st.sampled_from(["", "Word ", "THE "]))
def test_text_of_known_words_round_trips(pieces, lead):
    text = lead.lower() + "".join(w.upper() if i % 2 else w for i, (w, sep) in
                                  enumerate(pieces) for w in [w + sep])
    ids = TOK.encode(text)
    assert ids[0] == TOK.cls_id and ids[-1] == TOK.sep_id
    expected = [w if w in KNOWN else "[UNK]" for w in words(text)]
    assert TOK.decode(ids).split() == ["[CLS]", *expected, "[SEP]"]
    assert TOK.decode(ids, skip_special_tokens=True).split() == [w for w in expected
                                                                  if w != "[UNK]"]


@given(st.lists(st.integers(len(SPECIAL_TOKENS), 11), max_size=30))
def test_ids_of_words_round_trip(ids):
    again = TOK.encode(TOK.decode(ids), add_special_tokens=False)
    assert again.tolist() == ids


@given(st.lists(st.text("abcxyz ", max_size=12), min_size=1, max_size=5), st.integers(2, 8))
def test_encode_batch_frames_cuts_and_pads(texts, length):
    out = TOK.encode_batch(texts, length)
    assert out.shape == (len(texts), length)
    for row, text in zip(out, texts, strict=True):
        full = TOK.encode(text)
        n = min(len(full), length)
        assert row[0] == TOK.cls_id and row[n - 1] == TOK.sep_id
        assert np.array_equal(row[1:n - 1], full[1:n - 1])
        assert np.all(row[n:] == TOK.pad_id)


@given(st.lists(st.sampled_from("ab ba cab abc c b a bb".split()), min_size=1, max_size=40),
       st.integers(6, 12), st.lists(st.sampled_from("ab ba cab abc c b a bb zz".split()),
                                    max_size=10))
def test_from_words_gives_the_same_ids(corpus, size, text):
    built = WordTokenizer(corpus, size)
    again = WordTokenizer.from_words(built.words)
    assert again.vocab.itos == built.vocab.itos
    assert again.encode(" ".join(text)).tolist() == built.encode(" ".join(text)).tolist()
    assert (again.pad_id, again.mask_id, again.unk_id) == (built.pad_id, built.mask_id,
                                                           built.unk_id)


def test_from_words_refuses_a_word_twice_or_a_special_token():
    with pytest.raises(DataError, match="hold every word once"):
        WordTokenizer.from_words(["the", "cat", "the"])
    with pytest.raises(DataError, match="hold every word once"):
        WordTokenizer.from_words(["the", "[MASK]"])


def test_bad_sizes_and_ids_are_named():
    with pytest.raises(DataError, match="size=5"):
        WordTokenizer(CORPUS, size=5)
    with pytest.raises(DataError, match="id 12 is outside"):
        TOK.decode([5, 12])
    with pytest.raises(DataError, match="length=1"):
        TOK.encode_batch(["the"], 1)


def test_masking_proportions_are_bert_recipe():
    rng = np.random.default_rng(0)
    tok = WordTokenizer([f"w{i}" for i in range(200)], size=205)
    ids = rng.integers(len(SPECIAL_TOKENS), len(tok), (400, 250))
    ids[:, 0], ids[:, -1], ids[:, -10:-1] = tok.cls_id, tok.sep_id, tok.pad_id
    inputs, targets = mask_tokens(ids, rng, tok)
    ordinary = ids >= len(SPECIAL_TOKENS)
    chosen = targets != IGNORE_INDEX
    n = chosen.sum()
    # specials are never chosen, never changed; targets are the originals
    assert not np.any(chosen & ~ordinary)
    assert np.array_equal(inputs[~chosen], ids[~chosen])
    assert np.array_equal(targets[chosen], ids[chosen])
    masked = np.mean(inputs[chosen] == tok.mask_id)
    kept = np.mean(inputs[chosen] == ids[chosen])
    replaced = 1 - masked - kept
    # a random replacement equals the original 1 time in 200: the kept share grows by 0.1/200
    for measured, p, total in [(n / ordinary.sum(), 0.15, ordinary.sum()),
                               (masked, 0.8, n), (kept, 0.1 + 0.1 / 200, n),
                               (replaced, 0.1 - 0.1 / 200, n)]:
        assert abs(measured - p) < 4 * np.sqrt(p * (1 - p) / total), (measured, p)
    assert np.all(inputs[chosen] != tok.unk_id)
    assert np.all(inputs[chosen & (inputs != tok.mask_id)] >= len(SPECIAL_TOKENS))


def test_docstring_topics_split_shares_no_sentence():
    texts, labels = docstring_topics()
    keys = [" ".join(words(t)) for t in texts]
    assert len(set(keys)) == len(keys)
    train, test = topic_split(labels, 50, seed=3)
    assert not set(train) & set(test) and len(train) + len(test) == len(texts)
    assert np.all(np.bincount(labels[test]) == 50)
    picked = label_budget(labels[train], 8, np.random.default_rng(0))
    assert np.all(np.bincount(labels[train][picked]) == 8)
    with pytest.raises(DataError, match="per_class"):
        label_budget(labels[train], 10_000, np.random.default_rng(0))
