"""microseq.fused_cells: each recurrent step as one op with a hand-derived VJP.

Two witnesses, both in float64:
- the same step composed from primitive ops (matmul, split, sigmoid, tanh,
  products), differentiated by the engine: values and every input's gradient
  must agree to 1e-10;
- central differences (gradcheck: |autograd - numeric| <= 1e-6 + 1e-4 |numeric|).
"""
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import microseq as ms
from microseq.fused_cells import gru_cell, lstm_cell, rnn_cell
from microseq.gradcheck import gradcheck
from microseq.ops import relu, sigmoid, split, stack, tanh

pytestmark = pytest.mark.nn

TOL = 1e-10


@pytest.fixture(autouse=True)
def fast_path():
    """The fused cells are a speed device: their VJPs feed the fast backward pass."""
    with ms.fast.switched(True):
        yield


def composed_rnn(xp, h, w_hh, nonlinearity="tanh"):
    a = xp + h @ w_hh.T
    return tanh(a) if nonlinearity == "tanh" else relu(a)


def composed_lstm(xp, hc, w_hh):
    h, c = hc[0], hc[1]
    i, f, g, o = split(xp + h @ w_hh.T, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    return stack([sigmoid(o) * tanh(c), c])


def composed_gru(xp, h, w_hh, b_hn):
    H = h.shape[-1]
    x_rz, x_n = split(xp, [2 * H], axis=-1)
    h_rz, h_n = split(h @ w_hh.T, [2 * H], axis=-1)
    r, z = split(sigmoid(x_rz + h_rz), 2, axis=-1)
    n = tanh(x_n + r * (h_n + b_hn))
    return (1 - z) * n + z * h


def cell_inputs(kind, B, H, rng):
    """Random float64 inputs of one step, scaled to reach every nonlinearity."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    state = (2, B, H) if kind == "lstm" else (B, H)  # the LSTM's (h, c), stacked
    inputs = [rng.standard_normal((B, G * H)), rng.standard_normal(state)]
    inputs.append(rng.standard_normal((G * H, H)) / np.sqrt(H))
    if kind == "gru":
        inputs.append(rng.standard_normal(H))
    return inputs


CASES = {  # name -> (fused op, the same step from primitives, kind)
    "rnn_tanh": (rnn_cell, composed_rnn, "rnn"),
    "rnn_relu": (lambda *a, **t: rnn_cell(*a, nonlinearity="relu", **t),
                 lambda *a: composed_rnn(*a, "relu"), "rnn"),
    "lstm": (lstm_cell, composed_lstm, "lstm"),
    "gru": (gru_cell, composed_gru, "gru"),
}


def values_and_grads(step, arrays, upstream):
    leaves = [ms.tensor(a, requires_grad=True) for a in arrays]
    out = step(*leaves)
    (out * upstream).sum().backward()
    return out.data, [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("name", sorted(CASES))
@given(B=st.integers(1, 4), H=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_fused_step_equals_the_step_composed_from_primitives(name, B, H, seed):
    fused, composed, kind = CASES[name]
    rng = np.random.default_rng(seed)
    arrays = cell_inputs(kind, B, H, rng)
    if name == "rnn_relu":  # keep pre-activations away from relu's kink
        arrays[0] += np.sign(arrays[0]) * 0.5
    upstream = rng.standard_normal((2, B, H) if kind == "lstm" else (B, H))
    got, got_grads = values_and_grads(fused, arrays, upstream)
    want, want_grads = values_and_grads(composed, arrays, upstream)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=TOL)


@pytest.mark.parametrize("name", sorted(CASES))
@given(T=st.integers(1, 4), B=st.integers(1, 3), H=st.integers(1, 3), data=st.data())
def test_a_step_given_every_steps_input_takes_its_own(name, T, B, H, data):
    """As a layer calls it: xp (T, B, G*H) and t. Same values and gradients
    as the step given xp[t] alone; the other steps' rows get zero gradient."""
    fused, composed, kind = CASES[name]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    t = data.draw(st.integers(0, T - 1))
    every = np.stack([cell_inputs(kind, B, H, rng)[0] for _ in range(T)])
    rest = cell_inputs(kind, B, H, rng)[1:]
    if name == "rnn_relu":
        every += np.sign(every) * 0.5
    upstream = rng.standard_normal((2, B, H) if kind == "lstm" else (B, H))
    got, got_grads = values_and_grads(lambda xp, *r: fused(xp, *r, t=t), [every, *rest],
                                      upstream)
    want, want_grads = values_and_grads(lambda xp, *r: composed(xp[t], *r), [every, *rest],
                                        upstream)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=TOL)


@pytest.mark.parametrize("name", sorted(CASES))
@given(B=st.integers(1, 3), H=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_fused_step_matches_central_differences(name, B, H, seed):
    fused, _, kind = CASES[name]
    arrays = cell_inputs(kind, B, H, np.random.default_rng(seed))
    if name == "rnn_relu":
        arrays[0] += np.sign(arrays[0]) * 0.5
    assert gradcheck(fused, *arrays)


def test_backward_twice_with_retain_graph_recomputes_the_shared_part():
    """The VJPs of one op share their common part per upstream gradient; a
    second backward() with another gradient must not reuse the first one's."""
    rng = np.random.default_rng(0)
    leaves = [ms.tensor(a, requires_grad=True) for a in cell_inputs("lstm", 2, 3, rng)]
    out = lstm_cell(*leaves)
    first, second = rng.standard_normal((2, 2, 2, 3))
    out.backward(first, retain_graph=True)
    after_first = [leaf.grad.copy() for leaf in leaves]
    out.backward(second)
    _, only_second = values_and_grads(lstm_cell, [leaf.data for leaf in leaves], second)
    for leaf, g1, g2 in zip(leaves, after_first, only_second, strict=True):
        np.testing.assert_allclose(leaf.grad, g1 + g2, rtol=0, atol=TOL)


@pytest.mark.parametrize("call, message", [
    (lambda: rnn_cell(np.ones((2, 3)), np.ones((2, 4)), np.ones((3, 3))),
     "rnn_cell: (2, 3) and (2, 4) and (3, 3)"),
    (lambda: rnn_cell(np.ones((2, 3)), np.ones((2, 4)), np.ones((4, 4))), "rnn_cell"),
    (lambda: rnn_cell(np.ones((2, 3)), np.ones((2, 3)), np.ones((3, 3)), nonlinearity="gelu"),
     "nonlinearity must be"),
    (lambda: lstm_cell(np.ones((2, 8)), np.ones((2, 2, 2)), np.ones((3, 8))),
     "lstm_cell: (2, 8) and (2, 2, 2) and (3, 8)"),
    (lambda: lstm_cell(np.ones((2, 12)), np.ones((2, 2, 2)), np.ones((2, 12))),
     "xp needs 4 * 2 gate columns"),
    (lambda: gru_cell(np.ones((2, 8)), np.ones((2, 2)), np.ones((2, 8))),
     "xp needs 3 * 2 gate columns"),
])
def test_shape_errors_name_the_cell_and_the_shapes(call, message):
    with pytest.raises(ms.ShapeError, match=re.escape(message)):
        call()
