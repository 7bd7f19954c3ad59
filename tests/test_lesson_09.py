"""Lesson 9: its quick run, and the attention model it trains.

Gradients are checked in float64: autograd against central differences
along a random direction for every parameter, and the attention inside the
model against the hand-derived numpy forward and backward of
microseq.reference. Properties: attention weights are a distribution over
the real input characters (padding gets exactly zero); greedy decoding of a
batch equals decoding each example alone.
"""
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_answers_as_in_run, assert_quick_run_passed, run_quick

import microseq as ms
from microseq import reference as ref
from microseq.data import DataError
from microseq.models.attention_seq2seq import AttentionSeq2Seq

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-8
PAD_ID = 0
seeds = st.integers(0, 2**32 - 1)


def test_quick_run_and_its_saved_model(tmp_path):
    result, report = run_quick("09_attention", tmp_path, timeout=600)
    assert_quick_run_passed(
        report, tmp_path, {"attention_test_exact_match", "attention_worst_layout_case_exact_match",
                           "attention_minus_no_attention_mean_exact_match"},
        files=["accuracy.png", "attention.png", "by_layout.png", "examples.tsv", "model.npz"],
        claims=5)
    assert report["info"]["attention_train_seconds"] > 0  # recorded, never judged
    # the examples, one per line
    assert len(re.findall(r"^ +\S.* -> \d{4}-\d\d-\d\d$", result.stdout, re.MULTILINE)) >= 8
    model = assert_answers_as_in_run(tmp_path, 9)
    # any letter can be typed, in any case; a character outside the vocabulary is named
    assert len(model.answer(["Thursday, May 20, 1982", "quiz 7 xyz"])) == 2
    with pytest.raises(DataError, match="'é' is not in the vocabulary"):
        model.answer(["20 février 1982"])


def random_model(rng, V, E, H):
    """A float64 model with weights ~ N(0, 1/fan), large enough to reach
    every nonlinearity."""
    model = AttentionSeq2Seq(V, PAD_ID, E, H).to(np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return model


def padded_inputs(rng, V, lengths):
    """Rows of random non-pad ids, each padded on the right to the longest."""
    xs = np.full((len(lengths), max(lengths)), PAD_ID)
    for row, n in enumerate(lengths):
        xs[row, :n] = rng.integers(1, V, n)
    return xs


lengths_ = st.lists(st.integers(1, 5), min_size=1, max_size=4)


@given(lengths=lengths_, Ta=st.integers(1, 3), E=st.integers(1, 3), H=st.integers(1, 4),
       V=st.integers(2, 5), seed=seeds)
def test_attention_seq2seq_matches_finite_differences(lengths, Ta, E, H, V, seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, V, E, H)
    B = len(lengths)
    batch = (padded_inputs(rng, V, lengths), rng.integers(0, V, (B, Ta)),
             rng.integers(0, V, (B, Ta)))
    model.loss(*batch).backward()
    for name, p in model.named_parameters():
        d = rng.standard_normal(p.shape)
        original = p.data
        with ms.no_grad():
            p.data = original + EPS * d
            up = model.loss(*batch).item()
            p.data = original - EPS * d
            down = model.loss(*batch).item()
        p.data = original
        numeric = (up - down) / (2 * EPS)
        analytic = np.sum(p.grad * d)
        assert abs(analytic - numeric) <= ATOL + RTOL * abs(numeric), (name, analytic, numeric)


@given(lengths=lengths_, Ta=st.integers(1, 4), H=st.integers(1, 5), seed=seeds)
def test_attention_in_the_model_matches_hand_derived(lengths, Ta, H, seed):
    """The decoder's attention, on the model's own encoder and decoder
    states, gives the reference's weights, and the same gradients for them."""
    rng = np.random.default_rng(seed)
    V = 6
    model = random_model(rng, V, 3, H)
    xs = padded_inputs(rng, V, lengths)
    mask = xs != PAD_ID
    enc_hs, state = model.encoder(xs)
    dec_hs, _ = model.decoder.lstm(model.decoder.embed(rng.integers(0, V, (len(xs), Ta))), state)
    query, keys = ms.Tensor(dec_hs.data, requires_grad=True), ms.Tensor(enc_hs.data,
                                                                        requires_grad=True)
    context, weights = model.decoder.attention(query, keys, keys, mask)
    ref_context, ref_weights, cache = ref.dot_attention_forward(query.data, keys.data, keys.data,
                                                                mask)
    np.testing.assert_allclose(weights.data, ref_weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(context.data, ref_context, rtol=1e-12, atol=1e-15)
    dout = rng.standard_normal(context.shape)
    (context * dout).sum().backward()
    grads = ref.dot_attention_backward(dout, cache)
    np.testing.assert_allclose(query.grad, grads["q"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(keys.grad, grads["k"] + grads["v"], rtol=1e-10, atol=1e-12)


@given(lengths=lengths_, Ta=st.integers(1, 4), H=st.integers(1, 5), seed=seeds)
def test_attention_weights_are_a_distribution_over_real_characters(lengths, Ta, H, seed):
    rng = np.random.default_rng(seed)
    V = 6
    model = random_model(rng, V, 3, H)
    xs = padded_inputs(rng, V, lengths)
    _, weights = model(xs, rng.integers(0, V, (len(xs), Ta)))
    w = weights.data                                   # (B, Ta, Tx)
    real = (xs != PAD_ID)[:, None, :]
    assert np.all(w[np.broadcast_to(~real, w.shape)] == 0)  # exactly zero on padding
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)
    # the same holds when decoding freely, one step at a time
    _, free = model.generate(xs, 1, Ta, return_weights=True)
    assert np.all(free[np.broadcast_to(~real, free.shape)] == 0)
    np.testing.assert_allclose(free.sum(axis=-1), 1.0, rtol=1e-12)


@given(lengths=lengths_, steps=st.integers(1, 4), seed=seeds)
def test_greedy_decoding_of_a_batch_equals_each_alone(lengths, steps, seed):
    rng = np.random.default_rng(seed)
    V = 6
    model = random_model(rng, V, 3, 4)
    xs = padded_inputs(rng, V, lengths)
    together, w_together = model.generate(xs, 1, steps, return_weights=True)
    alone = [model.generate(xs[i:i + 1], 1, steps, return_weights=True) for i in range(len(xs))]
    assert np.array_equal(together, np.concatenate([ids for ids, _ in alone]))
    np.testing.assert_allclose(w_together, np.concatenate([w for _, w in alone]), rtol=1e-9,
                               atol=1e-12)
