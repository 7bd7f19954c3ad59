"""Lesson 1, time series: the quick run, and the gradients of its two nets.

The nets are checked in float64 at random small sizes: every parameter's
autograd gradient against central differences, element by element, and the
RNN's against the hand-derived BPTT in microseq.reference.
"""
from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick
from model_gradients import assert_matches_finite_differences as assert_matches
from model_gradients import randomize

from microseq import reference as ref
from microseq.functional import mse_loss
from microseq.models.sequence import ManyToOne, WindowMLP

pytestmark = pytest.mark.lesson

FIGURES = ("forecasts.png", "test_mse.png", "training.png")
EPS, RTOL, ATOL = 1e-6, 1e-5, 1e-8

seeds = st.integers(0, 2**32 - 1)
B_ = st.integers(1, 3)
T_ = st.integers(1, 5)
H_ = st.integers(1, 4)


def test_quick_run_meets_its_thresholds_and_repeats(tmp_path):
    _, report = run_quick("01_time_series", tmp_path / "a", "--seed", 0)
    assert_quick_run_passed(report, tmp_path / "a", {
        "ar_rnn_mse_over_noise", "ar2_rnn_mse_over_naive", "seasonal_rnn_mse_over_naive"},
        files=FIGURES, claims=2)
    # The same seed gives the same numbers, to the last digit.
    _, again = run_quick("01_time_series", tmp_path / "b", "--seed", 0)
    assert [m["value"] for m in again["metrics"]] == [m["value"] for m in report["metrics"]]


assert_matches_finite_differences = partial(assert_matches, eps=EPS, rtol=RTOL, atol=ATOL)


@given(B=B_, T=T_, H=H_, seed=seeds, cell=st.sampled_from(["rnn", "lstm", "gru"]))
def test_rnn_forecaster_gradients_match_finite_differences(B, T, H, seed, cell):
    rng = np.random.default_rng(seed)
    model = randomize(ManyToOne(1, H, 1, cell=cell), rng)
    windows, targets = rng.standard_normal((B, T, 1)), rng.standard_normal(B)
    assert_matches_finite_differences(lambda: mse_loss(model(windows)[:, 0], targets), model)


@given(B=B_, width=T_, H=H_, seed=seeds)
def test_windowed_net_gradients_match_finite_differences(B, width, H, seed):
    rng = np.random.default_rng(seed)
    model = randomize(WindowMLP(width, H), rng)
    windows, targets = rng.standard_normal((B, width)), rng.standard_normal(B)
    assert_matches_finite_differences(lambda: mse_loss(model(windows)[:, 0], targets), model)


@given(B=B_, T=T_, H=H_, seed=seeds)
def test_rnn_forecaster_gradients_match_the_reference_bptt(B, T, H, seed):
    """L = sum(R * forecast): the head's gradient by hand, then BPTT from
    dL/dh_T = R W_head through microseq.reference.rnn_backward."""
    rng = np.random.default_rng(seed)
    model = randomize(ManyToOne(1, H, 1), rng)
    windows, upstream = rng.standard_normal((B, T, 1)), rng.standard_normal((B, 1))
    (model(windows) * upstream).sum().backward()

    rnn, head = model.rnn, model.head
    weights = [p.data for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0,
                                rnn.bias_hh_l0)]
    hs, cache = ref.rnn_forward(windows.transpose(1, 0, 2), np.zeros((B, H)), *weights)
    grads = ref.rnn_backward(None, cache, dh_last=upstream @ head.weight.data)
    expected = {"rnn.weight_ih_l0": grads["W_ih"], "rnn.weight_hh_l0": grads["W_hh"],
                "rnn.bias_ih_l0": grads["b_ih"], "rnn.bias_hh_l0": grads["b_hh"],
                "head.weight": upstream.T @ hs[-1], "head.bias": upstream.sum(0)}
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-10, atol=1e-12, err_msg=name)
