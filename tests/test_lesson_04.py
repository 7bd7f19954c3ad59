"""Lesson 4, backpropagation through time: the quick run, and the facts the
lesson rests on, at random small sizes in float64.

- dL/dh_t read from each h_t's .grad is the chain rule's recursion
  g_(t-1) = (g_t * f'(a_t)) W_hh^T, and its norm never decays slower than the
  product of the step Jacobians' spectral norms allows;
- the recurrence's gradients equal the hand-derived BPTT in
  microseq.reference and central differences (the library nn.RNN as the
  lesson trains it, too);
- detaching every k steps leaves the forward values alone, gives exactly
  zero gradient before the last window and the full gradient inside it.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick

import microseq as ms
from microseq import nn
from microseq import reference as ref
from microseq.functional import mse_loss
from microseq.gradcheck import gradcheck_parameters

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-8

seeds = st.integers(0, 2**32 - 1)
B_ = st.integers(1, 3)
T_ = st.integers(1, 8)
D_ = st.integers(1, 3)
H_ = st.integers(1, 5)
nonlinearities = st.sampled_from(["tanh", "relu"])
radii = st.floats(0.2, 2.0)


def test_quick_run_meets_its_thresholds(tmp_path):
    _, report = run_quick("04_bptt", tmp_path)
    assert_quick_run_passed(report, tmp_path, {
        "decay_rate_rho0.5_factor_vs_jacobian_norms", "gradient_fade_rho0.5_g1_over_gT",
        "gradient_growth_rho1.5_g1_over_gT", "clipped_final_over_start", "unclipped_diverged",
        "truncated_grad_beyond_window_max", "truncated_vs_full_inside_window_max_diff"},
        files=("gradient_norms.png", "clipping.png", "truncation.png", "tanh_vs_relu.png",
               "bptt_graph_before.gv", "bptt_graph_after.gv"))
    # one cluster per time step, and the coloured version has a legend
    after = (tmp_path / "bptt_graph_after.gv").read_text()
    assert all(f'label="t={t}"' in after for t in range(1, 7)) and "legend" in after


def unroll(xs, h, W_xh, W_hh, b, nonlinearity="tanh", truncate=None):
    """The lesson's recurrence, h_t = f(x_t W_xh + h_(t-1) W_hh + b)."""
    f = ms.tanh if nonlinearity == "tanh" else ms.relu
    states = []
    for t, x in enumerate(xs, start=1):
        if truncate and t > 1 and (t - 1) % truncate == 0:
            h = h.detach()
        h = f(x @ W_xh + h @ W_hh + b)   # x: an array, or a Tensor to differentiate
        states.append(h)
    return states


def problem(B, T, D, H, seed, radius=1.0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((H, H)))
    params = [ms.Tensor(rng.standard_normal((D, H)), requires_grad=True),
              ms.Tensor(radius * q, requires_grad=True),
              ms.Tensor(0.3 * rng.standard_normal(H), requires_grad=True)]
    h0 = ms.Tensor(rng.standard_normal((B, H)), requires_grad=True)
    return rng.standard_normal((T, B, D)), h0, params, rng.standard_normal((B, H))


def slope(h, nonlinearity):
    return 1 - h ** 2 if nonlinearity == "tanh" else (h > 0) * 1.0


@given(B=B_, T=T_, D=D_, H=H_, seed=seeds, f=nonlinearities, radius=radii)
def test_grad_of_each_state_is_the_jacobian_recursion_and_obeys_the_norm_bound(
        B, T, D, H, seed, f, radius):
    xs, h0, params, u = problem(B, T, D, H, seed, radius)
    states = unroll(xs, h0, *params, nonlinearity=f)
    ms.sum(states[-1] * u).backward()
    W = params[1].data
    g = u
    for t in range(T - 1, 0, -1):   # g_(t-1) = (g_t * f'(a_t)) W_hh^T
        g = (g * slope(states[t].data, f)) @ W.T
        got = np.zeros_like(g) if states[t - 1].grad is None else states[t - 1].grad
        np.testing.assert_allclose(got, g, rtol=1e-10, atol=1e-12)
    for b in range(B):   # per sequence: ||g_1|| <= ||g_T|| * prod_t ||J_t||
        jacobian_norms = [np.linalg.norm(slope(states[t].data[b], f)[:, None] * W.T, 2)
                          for t in range(1, T)]
        first = states[0].grad[b] if states[0].grad is not None else 0.0
        assert np.linalg.norm(first) <= np.linalg.norm(u[b]) * np.prod(jacobian_norms) * (1 + 1e-9)


@given(B=B_, T=T_, D=D_, H=H_, seed=seeds, f=nonlinearities)
def test_recurrence_gradients_equal_the_reference_bptt(B, T, D, H, seed, f):
    xs, h0, params, u = problem(B, T, D, H, seed)
    x = ms.Tensor(xs, requires_grad=True)
    states = unroll([x[t] for t in range(T)], h0, *params, nonlinearity=f)
    ms.sum(states[-1] * u).backward()
    W_xh, W_hh, b = (p.data for p in params)
    zeros = np.zeros(H)
    # the reference uses PyTorch's layout: W_ih = W_xh^T, W_hh(ref) = W_hh^T
    _, cache = ref.rnn_forward(xs, h0.data, W_xh.T.copy(), W_hh.T.copy(), b, zeros, f)
    grads = ref.rnn_backward(None, cache, dh_last=u)
    np.testing.assert_allclose(x.grad, grads["x"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h0.grad, grads["h0"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params[0].grad, grads["W_ih"].T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params[1].grad, grads["W_hh"].T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(params[2].grad, grads["b_ih"], rtol=1e-10, atol=1e-12)


@given(B=B_, T=T_, D=D_, H=H_, seed=seeds, f=nonlinearities)
def test_recurrence_gradients_equal_central_differences(B, T, D, H, seed, f):
    xs, h0, params, u = problem(B, T, D, H, seed)
    rng = np.random.default_rng(seed + 1)

    def loss():
        return ms.sum(unroll(xs, h0, *params, nonlinearity=f)[-1] * u)

    named = [(f"param {i}", p) for i, p in enumerate(params)] + [("h0", h0)]
    gradcheck_parameters(loss, named, eps=EPS, rtol=RTOL, atol=ATOL, rng=rng)


@given(B=B_, T=T_, H=H_, seed=seeds)
def test_the_clipping_model_gradients_equal_central_differences(B, T, H, seed):
    """nn.RNN plus a linear read-out of the last step, under mean squared
    error: the model the lesson trains with and without clipping."""
    ms.manual_seed(seed)
    rnn, head = nn.RNN(1, H).to(np.float64), nn.Linear(H, 1).to(np.float64)
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1, 1, (T, B, 1)), rng.standard_normal((B, 1))

    def loss():
        out, _ = rnn(x)
        return mse_loss(head(out[-1]), y)

    named = [*rnn.named_parameters(), *(("head." + n, p) for n, p in head.named_parameters())]
    gradcheck_parameters(loss, named, eps=EPS, rtol=RTOL, atol=ATOL, rng=rng)


@given(B=B_, T=st.integers(2, 20), k=st.integers(1, 8), D=D_, H=H_, seed=seeds,
       f=nonlinearities)
def test_truncation_zeroes_the_gradient_before_the_last_window_only(B, T, k, D, H, seed, f):
    xs, h0, params, u = problem(B, T, D, H, seed)
    full = unroll(xs, h0, *params, nonlinearity=f)
    cut = unroll(xs, h0, *params, nonlinearity=f, truncate=k)
    for a, c in zip(full, cut, strict=True):            # the forward pass is untouched
        assert (a.data == c.data).all()
    ms.sum(full[-1] * u).backward()
    ms.sum(cut[-1] * u).backward()
    start = (T - 1) // k * k   # index of the first state in the last window
    for t in range(T):
        if t < start:
            assert cut[t].grad is None or not cut[t].grad.any()
        else:
            np.testing.assert_array_equal(cut[t].grad, full[t].grad)
