"""Lesson 5, the LSTM: the quick run, the long-range model's gradients
(autograd == central differences, nn.LSTM == the hand-derived reference
backward), what its per-step gradients mean, and the cell's gates.

Gradients are checked in float64 at random small sizes drawn by hypothesis.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick
from model_gradients import assert_directional_derivatives_match

import microseq as ms
from microseq import functional as F
from microseq import nn
from microseq import reference as ref
from microseq.models.long_range import SequenceRegressor, fit, gradient_per_step, mse

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-9

seeds = st.integers(0, 2**32 - 1)
B_ = st.integers(1, 4)
T_ = st.integers(1, 6)
D_ = st.integers(1, 3)
H_ = st.integers(1, 5)
kinds = st.sampled_from(["rnn", "lstm"])


def test_quick_run_meets_its_thresholds(tmp_path):
    result, report = run_quick("05_lstm", tmp_path)
    assert_quick_run_passed(report, tmp_path, {
        "numpy_step_vs_nn_lstm_max_abs_diff", "reference_vs_autograd_max_abs_diff",
        "lstm_test_mse", "rnn_test_mse_over_baseline",
        "lstm_over_rnn_gradient_reach_orders_of_magnitude"},
        files=("adding_problem.png", "gradient_per_step.png", "gates.png"), claims=5)
    assert "|primitives - by hand|" in result.stdout and "|nn.LSTM - by hand|" in result.stdout


def small_regressor(kind, D, H, seed):
    ms.manual_seed(seed)
    model = SequenceRegressor(kind, D, H).to(np.float64)
    rng = np.random.default_rng(seed)
    for p in model.parameters():   # large enough to reach every nonlinearity
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return model, rng


# ------------------------------------------------------------------ gradients

@given(kind=kinds, B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_regressor_gradients_equal_central_differences(kind, B, T, D, H, seed):
    model, rng = small_regressor(kind, D, H, seed)
    x, y = rng.standard_normal((B, T, D)), rng.standard_normal(B)
    assert_directional_derivatives_match(lambda: F.mse_loss(model(x), y), model, rng,
                                         EPS, RTOL, ATOL)


@given(B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_nn_lstm_gradients_equal_the_reference_backward(B, T, D, H, seed):
    """Every input of nn.LSTM, with gradients arriving on the outputs and on
    both final states."""
    ms.manual_seed(seed)
    lstm = nn.LSTM(D, H).to(np.float64)
    rng = np.random.default_rng(seed)
    x = ms.tensor(rng.standard_normal((T, B, D)), requires_grad=True)
    h0 = ms.tensor(rng.standard_normal((1, B, H)), requires_grad=True)
    c0 = ms.tensor(rng.standard_normal((1, B, H)), requires_grad=True)
    d_out, d_h, d_c = (rng.standard_normal(s) for s in ((T, B, H), (B, H), (B, H)))
    out, (h_n, c_n) = lstm(x, (h0, c0))
    ((out * d_out).sum() + (h_n[0] * d_h).sum() + (c_n[0] * d_c).sum()).backward()

    params = {"W_ih": lstm.weight_ih_l0, "W_hh": lstm.weight_hh_l0, "b_ih": lstm.bias_ih_l0,
              "b_hh": lstm.bias_hh_l0}
    hs, c_last, cache = ref.lstm_forward(x.data, h0.data[0], c0.data[0],
                                         *(p.data for p in params.values()))
    np.testing.assert_allclose(out.data, hs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_n.data[0], c_last, rtol=1e-12, atol=1e-14)
    expected = ref.lstm_backward(d_out, cache, dh_last=d_h, dc_last=d_c)
    autograd = {"x": x.grad, "h0": h0.grad[0], "c0": c0.grad[0],
                **{name: p.grad for name, p in params.items()}}
    for name, g in autograd.items():
        np.testing.assert_allclose(g, expected[name], rtol=1e-9, atol=1e-12, err_msg=name)


# ------------------------------------------------------------------ per-step gradients

@given(kind=kinds, B=B_, T=st.integers(2, 6), D=D_, H=H_, seed=seeds, data=st.data())
def test_h_t_grad_is_the_gradient_of_a_run_started_at_step_t(kind, B, T, D, H, seed, data):
    """What the lesson plots as dL/dh_t is exactly that: restart the model at
    step t from state h_t (and c_t, held fixed) and the gradient of the same
    loss with respect to that starting h equals h_t.grad."""
    model, rng = small_regressor(kind, D, H, seed)
    x, y = rng.standard_normal((B, T, D)), rng.standard_normal(B)
    t = data.draw(st.integers(0, T - 2))
    prediction, hidden = model.unrolled(x)
    with ms.no_grad():
        np.testing.assert_allclose(prediction.data, model(x).data, rtol=1e-12, atol=1e-14)
    F.mse_loss(prediction, y).backward()
    start = ms.tensor(hidden[t].data, requires_grad=True)
    if kind == "lstm":
        with ms.no_grad():
            _, (h_t, c_t) = model.rnn(x[:, :t + 1])
        np.testing.assert_allclose(h_t.data, hidden[t].data, rtol=1e-12, atol=1e-14)
        state = (start, c_t)
    else:
        state = start
    _, final = model.rnn(x[:, t + 1:], state)
    h_last = final[0] if kind == "lstm" else final
    F.mse_loss(model.head(h_last[0]).reshape(-1), y).backward()
    np.testing.assert_allclose(start.grad, hidden[t].grad, rtol=1e-9, atol=1e-13)


@given(kind=kinds, B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_gradient_per_step_ends_at_the_heads_gradient_and_keeps_parameter_grads(
        kind, B, T, D, H, seed):
    model, rng = small_regressor(kind, D, H, seed)
    x, y = rng.standard_normal((B, T, D)), rng.standard_normal(B)
    for p in model.parameters():
        p.grad = np.full(p.shape, 7.0)
    norms = gradient_per_step(model, x, y)
    assert norms.shape == (T,) and (norms >= 0).all()
    assert all((p.grad == 7.0).all() for p in model.parameters())
    with ms.no_grad():
        residual = model(x).data - y
    # L = mean(residual^2) and prediction = head(h_T): dL/dh_T = 2 residual / B * w
    last = np.abs(2 * residual / B) * np.linalg.norm(model.head.weight.data)
    assert norms[-1] == pytest.approx(last.mean(), rel=1e-9, abs=1e-15)


# ------------------------------------------------------------------ the model and its routine

@given(kind=kinds, n=st.integers(1, 30), batch_size=st.integers(1, 40), seed=seeds)
def test_mse_does_not_depend_on_the_evaluation_batch_size(kind, n, batch_size, seed):
    model, rng = small_regressor(kind, 2, 3, seed)
    x, y = rng.standard_normal((n, 4, 2)), rng.standard_normal(n)
    with ms.no_grad():
        direct = float(np.mean((model(x).data - y) ** 2))
    assert mse(model, x, y, batch_size) == pytest.approx(direct, rel=1e-12)


def test_forget_gate_bias_starts_at_one():
    model = SequenceRegressor("lstm", 2, 5)
    total = model.rnn.bias_ih_l0.data + model.rnn.bias_hh_l0.data
    np.testing.assert_allclose(total[5:10], 1.0)
    assert not np.allclose(total[:5], 1.0)


def test_an_open_forget_gate_and_a_shut_input_gate_keep_the_cell():
    """The conveyor belt: with f = 1 and i = 0 the cell state passes through
    any number of steps unchanged, whatever the input."""
    H = 3
    lstm = nn.LSTM(2, H).to(np.float64)
    lstm.bias_ih_l0.data[:H] = -60.0      # i = sigmoid(-60 + ...) = 0
    lstm.bias_ih_l0.data[H:2 * H] = 60.0  # f = 1
    rng = np.random.default_rng(0)
    c0 = rng.standard_normal((1, 4, H))
    with ms.no_grad():
        _, (_, c_n) = lstm(rng.standard_normal((30, 4, 2)), (np.zeros((1, 4, H)), c0))
    np.testing.assert_allclose(c_n.data, c0, atol=1e-12)


def test_fit_repeats_exactly_with_the_same_seed():
    x, y = np.random.default_rng(0).random((40, 5, 2)), np.random.default_rng(1).random(40)
    runs = []
    for _ in range(2):
        ms.manual_seed(3)
        model = SequenceRegressor("lstm", 2, 4)
        history, seconds = fit(model, x, y, steps=6, batch_size=16, seed=3, progress=False,
                               evaluate=lambda m: {"mse": mse(m, x, y)}, eval_every=3)
        assert seconds > 0 and len(history) == 6
        runs.append((history.losses, history.metric("mse"), model.state_dict()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    for name, value in runs[0][2].items():
        np.testing.assert_array_equal(value, runs[1][2][name])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        SequenceRegressor("transformer", 2, 4)
