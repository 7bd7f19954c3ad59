"""Lesson 3, the character-level language model: the quick run, the model's
gradients, the state hand-off between truncated-BPTT windows, sampling, and
the count baselines.

Gradients are checked in float64 at random small sizes: against the
hand-derived language-model backward in microseq.reference (every parameter,
element by element) and against central differences along random directions.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick

import microseq as ms
from microseq import reference as ref
from microseq.data import BPTTBatcher
from microseq.gradcheck import gradcheck_parameters
from microseq.models.char_lm import CharLM, detach_state, truncated_bptt
from microseq.models.ngram import NgramLM, fit_add_k

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-8

seeds = st.integers(0, 2**32 - 1)
B_ = st.integers(1, 3)
T_ = st.integers(1, 5)
V_ = st.integers(2, 6)
E_ = st.integers(1, 3)
H_ = st.integers(1, 4)
cells = st.sampled_from(["rnn", "lstm", "gru"])
REFERENCE = {"rnn": ref.rnn_lm_loss_and_grads, "lstm": ref.lstm_lm_loss_and_grads,
             "gru": ref.gru_lm_loss_and_grads}


def test_quick_run_meets_its_thresholds(tmp_path):
    result, report = run_quick("03_char_lm", tmp_path)
    assert_quick_run_passed(report, tmp_path, {
        "toy_predicts_ello", "heldout_bpc_rnn", "rnn_bpc_minus_3gram_bpc"},
        files=("learning_curve.png", "hidden_units.png", "samples.txt"))
    assert "temperature 0.3" in result.stdout and "P(o)" in result.stdout


def small_model(cell, V, E, H, seed):
    ms.manual_seed(seed)
    model = CharLM(V, hidden_size=H, embed_size=E, cell=cell).to(np.float64)
    rng = np.random.default_rng(seed)
    for p in model.parameters():   # large enough to reach every nonlinearity
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return model, rng


def random_state(cell, B, H, rng):
    h = ms.tensor(rng.standard_normal((1, B, H)))
    return (h, ms.tensor(rng.standard_normal((1, B, H)))) if cell == "lstm" else h


# ------------------------------------------------------------------ gradients

@given(cell=cells, B=B_, T=T_, V=V_, E=E_, H=H_, seed=seeds)
def test_model_gradients_equal_the_reference_backward(cell, B, T, V, E, H, seed):
    model, rng = small_model(cell, V, E, H, seed)
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = random_state(cell, B, H, rng)
    model.zero_grad()
    loss, _ = model.loss(x, y, state)
    loss.backward()

    params = {"embed": model.embed.weight, "W_ih": model.rnn.weight_ih_l0,
              "W_hh": model.rnn.weight_hh_l0, "b_ih": model.rnn.bias_ih_l0,
              "b_hh": model.rnn.bias_hh_l0, "W_out": model.head.weight, "b_out": model.head.bias}
    h0 = (state[0].data[0], state[1].data[0]) if cell == "lstm" else state.data[0]
    expected, grads, _ = REFERENCE[cell]({k: p.data for k, p in params.items()}, x, y, h0)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    for name, p in params.items():
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


@given(cell=cells, B=B_, T=T_, V=V_, E=E_, H=H_, seed=seeds)
def test_model_gradients_equal_central_differences(cell, B, T, V, E, H, seed):
    model, rng = small_model(cell, V, E, H, seed)
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = random_state(cell, B, H, rng)
    gradcheck_parameters(lambda: model.loss(x, y, state)[0], model.named_parameters(),
                         eps=EPS, rtol=RTOL, atol=ATOL, rng=rng)


# ------------------------------------------------------------------ state hand-off

@given(cell=cells, B=B_, T1=T_, T2=T_, H=H_, seed=seeds)
def test_carried_state_equals_one_long_run(cell, B, T1, T2, H, seed):
    """Two windows, the second started from the first's (detached) final
    state, give the same logits and final state as one run over both."""
    model, rng = small_model(cell, 5, 3, H, seed)
    ids = rng.integers(0, 5, (B, T1 + T2))
    with ms.no_grad():
        whole, whole_state = model(ids)
        first, state = model(ids[:, :T1])
        second, state = model(ids[:, T1:], detach_state(state))
    np.testing.assert_allclose(np.concatenate([first.data, second.data], axis=1), whole.data,
                               rtol=1e-12, atol=1e-12)
    pairs = zip(state, whole_state, strict=True) if cell == "lstm" else [(state, whole_state)]
    for a, b in pairs:
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-12)


@settings(max_examples=15)
@given(cell=cells, n=st.integers(30, 120), batch=st.integers(1, 4), seq_len=st.integers(1, 7),
       seed=seeds)
def test_batcher_windows_with_carried_state_read_each_row_unbroken(cell, n, batch, seq_len,
                                                                  seed):
    """The lesson's training loop: BPTTBatcher windows, state carried and
    detached between them. Its logits equal one run over each whole row."""
    model, rng = small_model(cell, 6, 2, 3, seed)
    ids = rng.integers(0, 6, n)
    if (n - 1) // batch < seq_len:
        return
    batcher = BPTTBatcher(ids, batch, seq_len)
    pieces, state = [], None
    with ms.no_grad():
        for x, _ in batcher:
            logits, state = model(x, state)
            state = detach_state(state)
            pieces.append(logits.data)
        whole, _ = model(batcher.x[:, :len(batcher) * seq_len])
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole.data, rtol=1e-12,
                               atol=1e-12)


@settings(max_examples=15)
@given(cell=cells, n=st.integers(30, 120), batch=st.integers(1, 4), seq_len=st.integers(1, 7),
       seed=seeds)
def test_truncated_bptt_losses_are_those_of_one_run_and_each_pass_restarts(cell, n, batch,
                                                                           seq_len, seed):
    """The batches and loss_fn the lessons give train(): each window's loss
    equals the loss on that stretch of one run over the whole rows, and a
    second pass over the stream repeats the first (the state starts afresh)."""
    model, rng = small_model(cell, 6, 2, 3, seed)
    ids = rng.integers(0, 6, n)
    if (n - 1) // batch < seq_len:
        return
    batcher = BPTTBatcher(ids, batch, seq_len)
    batches, loss_fn = truncated_bptt(batcher)
    with ms.no_grad():
        passes = [[loss_fn(model, window).item() for window in batches(None)] for _ in range(2)]
        whole, _ = model(batcher.x[:, :len(batcher) * seq_len])
        expected = [ms.cross_entropy(whole[:, i * seq_len:(i + 1) * seq_len], y).item()
                    for i, (_, y) in enumerate(batcher)]
    np.testing.assert_allclose(passes[0], expected, rtol=1e-12, atol=1e-12)
    assert passes[1] == passes[0]


@settings(max_examples=15)
@given(cell=cells, n=st.integers(20, 200), batch=st.integers(1, 8), seed=seeds)
def test_bits_per_char_does_not_depend_on_the_window_length(cell, n, batch, seed):
    model, rng = small_model(cell, 6, 2, 3, seed)
    ids = rng.integers(0, 6, n)
    short, long = (model.bits_per_char(ids, batch, seq_len) for seq_len in (3, 1000))
    assert short == pytest.approx(long, rel=1e-10)
    # and it is the mean -log2 P of the targets it documents
    rows = min(batch, n - 1)
    S = (n - 1) // rows
    with ms.no_grad():
        logits, _ = model(ids[:rows * S].reshape(rows, S))
    logp = ms.log_softmax(logits).data
    targets = ids[1:rows * S + 1].reshape(rows, S)
    expected = -np.take_along_axis(logp, targets[..., None], -1).mean() / math.log(2)
    assert short == pytest.approx(expected, rel=1e-10)


# ------------------------------------------------------------------ sampling

@given(cell=cells, length=st.integers(1, 6), seed=seeds)
def test_greedy_sampling_equals_rereading_the_whole_text_each_step(cell, length, seed):
    """Sampling carries the state from step to step; at temperature 0 the
    result equals taking the argmax after rereading everything from scratch."""
    model, rng = small_model(cell, 5, 2, 3, seed)
    prompt = rng.integers(0, 5, 3)
    fast = model.sample(prompt, length, temperature=0, n=2)
    text = list(prompt)
    for _ in range(length):
        with ms.no_grad():
            logits, _ = model(np.array([text]))
        text.append(int(logits.data[0, -1].argmax()))
    assert (fast == np.array(text[3:])).all()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_samples_follow_softmax_of_logits_over_temperature(temperature):
    model, _ = small_model("gru", 5, 2, 4, 0)
    prompt = [1, 2, 3]
    draws = model.sample(prompt, 1, temperature=temperature, n=4000, rng=7)[:, 0]
    assert (draws == model.sample(prompt, 1, temperature=temperature, n=4000, rng=7)[:, 0]).all()
    with ms.no_grad():
        logits, _ = model(np.array([prompt]))
    expected = ms.softmax(ms.tensor(logits.data[0, -1] / temperature)).data
    frequencies = np.bincount(draws, minlength=5) / len(draws)
    # 4000 draws: each frequency is within 0.03 of its probability (> 4 standard deviations)
    np.testing.assert_allclose(frequencies, expected, atol=0.03)


# ------------------------------------------------------------------ count baselines

ids_ = st.lists(st.integers(0, 5), min_size=1, max_size=60)


@given(ids=ids_, extra=st.integers(0, 3), order=st.integers(1, 4),
       k=st.floats(1e-3, 5.0), context=st.lists(st.integers(0, 8), max_size=5))
def test_ngram_probabilities_sum_to_one_after_any_context(ids, extra, order, k, context):
    V = max(ids) + 1 + extra        # some symbols may never occur in training
    context = [c % V for c in context]
    model = NgramLM(np.array(ids), V, order, k)
    p = model.probs(context)
    assert p.shape == (V,) and (p > 0).all()
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


@given(ids=ids_, order=st.integers(1, 4), k=st.floats(1e-3, 5.0), text=ids_)
def test_ngram_log_probs_match_probs_and_counts(ids, order, k, text):
    V = 6
    model = NgramLM(np.array(ids), V, order, k)
    text = np.array(text)
    scores = model.log_probs(text)
    for i, c in enumerate(text):
        assert scores[i] == pytest.approx(math.log(model.probs(text[:i])[c]), abs=1e-12)
    # the definition, counted by hand for the last position
    padded = [V] * (order - 1) + list(ids)
    grams = [tuple(padded[j:j + order]) for j in range(len(ids))]
    ctx = tuple(([V] * (order - 1) + list(text))[len(text) - 1:len(text) - 1 + order - 1])
    pair = sum(g == ctx + (text[-1],) for g in grams)
    total = sum(g[:-1] == ctx for g in grams)
    assert math.exp(scores[-1]) == pytest.approx((pair + k) / (total + k * V), rel=1e-12)


def test_bits_per_char_context_replaces_the_start_padding():
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 4, 500), rng.integers(0, 4, 50)
    model = NgramLM(train, 4, order=3, k=0.5)
    together = model.log_probs(np.concatenate([train[-2:], test]))[2:]
    assert model.bits_per_char(test, context=train) == pytest.approx(
        -together.mean() / math.log(2), rel=1e-12)
    unigram = NgramLM(train, 4, order=1, k=0.5)
    assert unigram.bits_per_char(test, context=train) == unigram.bits_per_char(test)


def test_fit_add_k_chooses_on_held_out_text_and_refits_on_all():
    rng = np.random.default_rng(1)
    ids = np.tile(rng.integers(0, 5, 40), 30)       # a repeated phrase: little smoothing wins
    model = fit_add_k(ids, 5, order=3, ks=(1.0, 0.01))
    assert model.k == 0.01 and model.order == 3
    assert model.pair_counts.sum() == len(ids)


def test_ngram_rejects_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        NgramLM(np.array([0, 1]), 2, order=0)
    with pytest.raises(ValueError, match="k must be positive"):
        NgramLM(np.array([0, 1]), 2, k=0)
    with pytest.raises(ValueError, match="0..1"):
        NgramLM(np.array([0, 2]), 2)
