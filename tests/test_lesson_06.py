"""Lesson 6, the GRU: the quick run, the GRU regressor's gradients (autograd
== central differences, nn.GRU == the hand-derived reference backward), and
the update gate's two extremes.

Gradients are checked in float64 at random small sizes drawn by hypothesis.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_lesson, run_quick
from model_gradients import assert_directional_derivatives_match, randomize

import microseq as ms
from microseq import functional as F
from microseq import nn
from microseq import reference as ref
from microseq.models.long_range import SequenceRegressor

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-9

seeds = st.integers(0, 2**32 - 1)
B_ = st.integers(1, 4)
T_ = st.integers(1, 6)
D_ = st.integers(1, 3)
H_ = st.integers(1, 5)


def test_quick_run_meets_its_thresholds(tmp_path):
    result, report = run_quick("06_gru", tmp_path)
    assert_quick_run_passed(report, tmp_path, {
        "numpy_step_vs_nn_gru_max_abs_diff", "reference_vs_autograd_max_abs_diff",
        "gru_test_mse", "lstm_test_mse", "rnn_test_mse_over_baseline",
        "gru_heldout_bpc_minus_rnn"},
        files=("gru_comparison.png", "char_lm_comparison.png"), claims=8)
    for model in ("RNN", "LSTM", "GRU"):   # the comparison tables: indented rows
        rows = [line for line in result.stdout.splitlines()
                if line.startswith("    ") and line.split()[:1] == [model]]
        assert len(rows) == 2


def test_text_option_trains_the_language_models_on_a_given_file(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat. " * 2000)
    result = run_lesson("06_gru", "--quick", "--out", tmp_path, "--text", corpus)
    assert "corpus.txt, 48,000 characters" in result.stdout, result.stdout[-3000:]
    missing = run_lesson("06_gru", "--quick", "--out", tmp_path, "--text", tmp_path / "nope.txt",
                         timeout=60)
    assert missing.returncode != 0 and "lesson 6" in missing.stderr


# ------------------------------------------------------------------ gradients

@given(B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_gru_regressor_gradients_equal_central_differences(B, T, D, H, seed):
    ms.manual_seed(seed)
    model = SequenceRegressor("gru", D, H).to(np.float64)
    rng = np.random.default_rng(seed)
    randomize(model, rng)
    x, y = rng.standard_normal((B, T, D)), rng.standard_normal(B)
    assert_directional_derivatives_match(lambda: F.mse_loss(model(x), y), model, rng,
                                         EPS, RTOL, ATOL)


@given(B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_nn_gru_gradients_equal_the_reference_backward(B, T, D, H, seed):
    """Every input of nn.GRU, with gradients arriving on the outputs and on
    the final state."""
    ms.manual_seed(seed)
    gru = nn.GRU(D, H).to(np.float64)
    rng = np.random.default_rng(seed)
    x = ms.tensor(rng.standard_normal((T, B, D)), requires_grad=True)
    h0 = ms.tensor(rng.standard_normal((1, B, H)), requires_grad=True)
    d_out, d_h = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))
    out, h_n = gru(x, h0)
    ((out * d_out).sum() + (h_n[0] * d_h).sum()).backward()

    params = {"W_ih": gru.weight_ih_l0, "W_hh": gru.weight_hh_l0, "b_ih": gru.bias_ih_l0,
              "b_hh": gru.bias_hh_l0}
    hs, cache = ref.gru_forward(x.data, h0.data[0], *(p.data for p in params.values()))
    np.testing.assert_allclose(out.data, hs, rtol=1e-12, atol=1e-14)
    expected = ref.gru_backward(d_out, cache, dh_last=d_h)
    autograd = {"x": x.grad, "h0": h0.grad[0], **{name: p.grad for name, p in params.items()}}
    for name, g in autograd.items():
        np.testing.assert_allclose(g, expected[name], rtol=1e-9, atol=1e-12, err_msg=name)


# ------------------------------------------------------------------ the update gate

@given(B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_update_gate_at_one_copies_the_state_and_at_zero_forgets_it(B, T, D, H, seed):
    """z = 1: h_t = h_0 at every step, and the gradient reaches h_0 whole.
    z = 0: every step is the candidate, and the state's own path back is cut,
    so with the reset gate also shut h_0 has no influence at all."""
    ms.manual_seed(seed)
    gru = nn.GRU(D, H).to(np.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D))
    h0 = ms.tensor(rng.standard_normal((1, B, H)), requires_grad=True)
    update = slice(H, 2 * H)

    gru.bias_ih_l0.data[update] = 60.0
    out, h_n = gru(x, h0)
    np.testing.assert_allclose(out.data, np.broadcast_to(h0.data, out.shape), atol=1e-12)
    h_n.sum().backward()
    np.testing.assert_allclose(h0.grad, 1.0, atol=1e-12)

    gru.bias_ih_l0.data[update] = -60.0
    gru.bias_ih_l0.data[:H] = -60.0       # r = 0: the candidate ignores h as well
    h0.grad = None
    out, h_n = gru(x, h0)
    with ms.no_grad():
        fresh, _ = gru(x, np.zeros((1, B, H)))
    np.testing.assert_allclose(out.data, fresh.data, atol=1e-12)
    h_n.sum().backward()
    np.testing.assert_allclose(h0.grad, 0.0, atol=1e-12)


@given(B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_each_new_state_lies_between_the_old_state_and_the_candidate(B, T, D, H, seed):
    ms.manual_seed(seed)
    gru = nn.GRU(D, H).to(np.float64)
    rng = np.random.default_rng(seed)
    for p in gru.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    x, h0 = rng.standard_normal((T, B, D)), rng.standard_normal((B, H))
    hs, cache = ref.gru_forward(x, h0, *(p.data for p in gru.parameters()))
    with ms.no_grad():
        out, _ = gru(x, h0[None])
    np.testing.assert_allclose(out.data, hs, rtol=1e-12, atol=1e-14)
    n = cache[4][..., 2 * H:]      # the candidates, as the reference keeps them
    previous = np.concatenate([h0[None], hs[:-1]])
    assert ((hs - previous) * (hs - n) <= 1e-14).all()
