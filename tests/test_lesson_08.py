"""Lesson 8: its quick run, and the seq2seq models it trains.

Gradients are checked in float64: autograd against central differences
along a random direction for every parameter of the four variants, and the
peeky model against the hand-derived numpy backward of microseq/reference/seq2seq.py.
Properties: reversed and padded batches invert exactly; greedy decoding of
a batch equals decoding each example alone.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick

import microseq as ms
from microseq.data import PAD, encode_seq2seq, seq2seq_vocab
from microseq.models.seq2seq import Seq2Seq, cosine_decay, cut_at_pad, exact_match
from microseq.reference import peeky_loss_and_grads

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-8
seeds = st.integers(0, 2**32 - 1)


def test_quick_run(tmp_path):
    _, report = run_quick("08_seq2seq", tmp_path, timeout=120)
    assert_quick_run_passed(
        report, tmp_path, {"peeky_reversed_test_exact_match", "peeky_reversed_train_seconds"},
        files=["accuracy.png", "examples.png"])


# ------------------------------------------------------------------ gradients

def random_model(rng, V, E, H, peeky):
    """A float64 model with weights ~ N(0, 1/fan), large enough to reach
    every nonlinearity."""
    model = Seq2Seq(V, E, H, peeky=peeky).to(np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return model


def random_batch(rng, V, B, Tq, Ta):
    return (rng.integers(0, V, (B, Tq)), rng.integers(0, V, (B, Ta)),
            rng.integers(0, V, (B, Ta)))


@given(B=st.integers(1, 3), Tq=st.integers(1, 4), Ta=st.integers(1, 3), E=st.integers(1, 3),
       H=st.integers(1, 4), V=st.integers(2, 5), peeky=st.booleans(), seed=seeds)
def test_seq2seq_matches_finite_differences(B, Tq, Ta, E, H, V, peeky, seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, V, E, H, peeky)
    batch = random_batch(rng, V, B, Tq, Ta)
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


@given(B=st.integers(1, 4), Tq=st.integers(1, 5), Ta=st.integers(1, 4), E=st.integers(1, 4),
       H=st.integers(1, 5), V=st.integers(2, 6), seed=seeds)
def test_peeky_seq2seq_matches_hand_derived_backward(B, Tq, Ta, E, H, V, seed):
    rng = np.random.default_rng(seed)
    model = random_model(rng, V, E, H, peeky=True)
    batch = random_batch(rng, V, B, Tq, Ta)
    loss = model.loss(*batch)
    loss.backward()
    ref_loss, ref_grads = peeky_loss_and_grads(model.state_dict(), *batch)
    assert np.isclose(loss.item(), ref_loss, rtol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, ref_grads[name], rtol=1e-9, atol=1e-12,
                                   err_msg=name)


# ----------------------------------------------------------------- properties

problems = st.lists(st.tuples(st.integers(0, 999), st.integers(0, 999)), min_size=1,
                    max_size=20)


@given(problems)
def test_reversed_and_padded_batches_invert_exactly(pairs):
    questions = [f"{a}+{b}" for a, b in pairs]
    answers = [str(a + b) for a, b in pairs]
    vocab = seq2seq_vocab(questions, answers)
    xs, dec_in, target = encode_seq2seq(questions, answers, vocab)
    rev, rev_dec_in, rev_target = encode_seq2seq(questions, answers, vocab, reverse=True)
    assert np.array_equal(rev[:, ::-1], xs)
    assert np.array_equal(rev_dec_in, dec_in) and np.array_equal(rev_target, target)
    assert [vocab.decode(row).split(PAD)[0] for row in xs] == questions
    assert [vocab.decode(row[::-1]).split(PAD)[0] for row in rev] == questions
    assert [vocab.decode(row).split(PAD)[0] for row in target] == answers
    assert np.array_equal(dec_in[:, 1:], target[:, :-1])


@given(B=st.integers(1, 6), Tq=st.integers(1, 5), steps=st.integers(1, 4),
       peeky=st.booleans(), seed=seeds)
def test_greedy_decoding_of_a_batch_equals_each_alone(B, Tq, steps, peeky, seed):
    rng = np.random.default_rng(seed)
    V = 6
    model = random_model(rng, V, 3, 4, peeky)
    xs = rng.integers(0, V, (B, Tq))
    together = model.generate(xs, 1, steps)
    alone = np.concatenate([model.generate(xs[i:i + 1], 1, steps) for i in range(B)])
    assert together.shape == (B, steps)
    assert np.array_equal(together, alone)


@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=6), min_size=1, max_size=5))
def test_cut_at_pad_keeps_everything_before_the_first_pad(rows):
    width = max(map(len, rows))
    ids = np.array([r + [1] * (width - len(r)) for r in rows])
    cut = cut_at_pad(ids, 0)
    for row, out in zip(ids, cut, strict=True):
        first = list(row).index(0) if 0 in row else len(row)
        assert list(out[:first]) == list(row[:first]) and not out[first:].any()


def test_exact_match_counts_whole_answers():
    class Echo:
        """Answers with the target itself, except for one wrong character in row 1."""

        def generate(self, xs, start_id, steps):
            out = target[:len(xs)].copy()
            if len(xs) > 1:
                out[1, 0] += 1
            return out

    target = np.array([[3, 4, 0], [5, 0, 0], [6, 7, 8]])
    acc, preds = exact_match(Echo(), np.zeros((3, 2), np.int64), target, 1, 0)
    assert acc == pytest.approx(2 / 3) and preds.shape == target.shape


def test_forget_gates_start_open():
    model = Seq2Seq(7, 3, 5, peeky=True)
    for lstm in (model.encoder.lstm, model.decoder.lstm):
        total = lstm.bias_ih_l0.data + lstm.bias_hh_l0.data
        np.testing.assert_allclose(total[5:10], 2.0)  # rows H:2H, the forget gate
        assert np.all(np.abs(total[:5]) < 1)          # the other gates keep their draw


@given(total=st.integers(1, 500))
def test_cosine_decay_falls_from_peak_to_zero(total):
    rates = np.array([cosine_decay(step, total, 0.1) for step in range(total + 1)])
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0, abs=1e-15)
    assert np.all(np.diff(rates) < 0)
