"""BLEU against cases computed by hand."""
import math

import pytest

from microseq.data.bleu import corpus_bleu

pytestmark = pytest.mark.data

REF = "a small red circle left of a big green square".split()


def test_identical_captions_score_one():
    assert corpus_bleu([REF, REF[:4]], [REF, REF[:4]]) == 1.0


def test_one_wrong_word():
    cand = "a small red circle left of a big blue square".split()
    # n-grams matched: 9 of 10 words, 7 of 9 bigrams, 6 of 8 trigrams, 5 of 7 4-grams
    want = (9 / 10 * 7 / 9 * 6 / 8 * 5 / 7) ** 0.25
    assert corpus_bleu([cand], [REF]) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx((3 / 8) ** 0.25)


def test_counts_are_clipped_to_the_reference():
    cand = "the the the the the the the".split()
    ref = "the cat is on the mat".split()
    assert corpus_bleu([cand], [ref], max_n=1) == pytest.approx(2 / 7)  # 7 >= 6 words: BP 1
    assert corpus_bleu([cand], [ref]) == 0.0  # "the the" is not in the reference


def test_short_candidates_pay_the_brevity_penalty():
    assert corpus_bleu([REF[:4]], [REF]) == pytest.approx(math.exp(1 - 10 / 4))


def test_corpus_level_sums_counts_before_dividing():
    cand = "a small red circle left of a big blue square".split()
    # 10 + 4 words; 13 of 14 unigrams, 10 of 12 bigrams, 8 of 10 trigrams, 6 of 8 4-grams
    want = (13 / 14 * 10 / 12 * 8 / 10 * 6 / 8) ** 0.25
    assert corpus_bleu([cand, REF[:4]], [REF, REF[:4]]) == pytest.approx(want, rel=1e-12)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="2 candidates but 1 references"):
        corpus_bleu([REF, REF], [REF])
