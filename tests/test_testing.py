"""microseq.testing, the public gradient checks: a wrong VJP fails with a shrunk
counterexample in the message, a right one passes; the strategies draw what
they promise. The checks run gradcheck (float64, eps=1e-6, |autograd -
numeric| <= 1e-6 + 1e-4 |numeric|), so each failure here is a real disagreement."""
import importlib.metadata
import math

import numpy as np
import pytest
from hypothesis import given

import microseq as ms
from microseq import nn
from microseq.gradcheck import gradcheck
from microseq.scalar import Value
from microseq.testing import (
    Counterexample, arrays, broadcastable_arrays, check_module, check_op, check_scalar_op, floats,
    ids, sequence_batches,
)

pytestmark = pytest.mark.tensor


@ms.op
def softplus(x):
    return np.logaddexp(0, x), lambda g: g / (1 + np.exp(-x))


@ms.op
def softplus_with_a_sign_slip(x):
    """d softplus / dx = sigmoid(x); this VJP has sigmoid(-x), right only at x = 0."""
    return np.logaddexp(0, x), lambda g: g / (1 + np.exp(x))


def test_a_right_vjp_passes():
    assert check_op(softplus, arrays(), max_examples=20) == 20


def test_a_wrong_vjp_fails_with_the_shrunk_counterexample():
    with pytest.raises(Counterexample) as caught:
        check_op(softplus_with_a_sign_slip, arrays(), seed=0, max_examples=50)
    e = caught.value
    (x,) = e.inputs
    message = str(e)
    assert message.startswith("softplus_with_a_sign_slip: autograd and central differences")
    with np.printoptions(floatmode="unique", precision=17):
        assert f"x (input 0) = {x!r}" in message  # the input, recreatable from the message
    assert "worst input 0 at" in message and "autograd=" in message and "numeric=" in message
    assert x.size == 1  # shrunk: one element is enough to show the mistake
    assert e.examples >= e.found_at >= 1 and e.first[0].size >= x.size
    for failing in (e.inputs, e.first):  # both really fail, by gradcheck alone
        with pytest.raises(ms.GradcheckError):
            gradcheck(softplus_with_a_sign_slip, *failing)


def test_integer_inputs_are_held_fixed_and_broadcasting_is_covered():
    assert check_op(lambda table, i: table[i] * 2, arrays((5, 3)), ids(5), max_examples=15) == 15
    assert check_op(ms.mul, *broadcastable_arrays(2), max_examples=15) == 15
    fixed_ids = np.array([0, 2, 2])  # a plain value instead of a strategy: passed as it is
    assert check_op(lambda table, i: table[i], arrays((3, 2)), fixed_ids, max_examples=5) == 5


def test_a_function_not_returning_a_tensor_is_named():
    with pytest.raises(TypeError, match="must return a Tensor, got ndarray"):
        check_op(lambda x: np.tanh(x.data), arrays((1,)), max_examples=2)


@ms.op
def tanh_forgetting_the_square(x):
    y = np.tanh(x)
    return y, lambda g: g * (1 - y)


class TwoLayers(nn.Module):
    def __init__(self, activation, sizes=(3, 4, 2)):
        self.first, self.second = nn.Linear(*sizes[:2]), nn.Linear(*sizes[1:])
        self.activation = activation

    def forward(self, x):
        return self.second(self.activation(self.first(x)))


def test_check_module_passes_a_right_module_and_restores_its_weights():
    model = TwoLayers(ms.tanh)
    before = model.state_dict()
    assert check_module(model, arrays((2, 3)), max_examples=10) == 10
    after = model.state_dict()
    assert all(after[k].dtype == np.float32 and np.array_equal(after[k], v)
               for k, v in before.items())
    assert check_module(nn.LSTM(2, 3), sequence_batches(2, max_steps=3, max_batch=2),
                        max_examples=3, max_elements=8) == 3
    assert check_module(nn.Embedding(6, 3), ids(6), max_examples=5) == 5


def test_check_module_names_the_parameter_of_a_wrong_gradient():
    with pytest.raises(Counterexample) as caught:
        check_module(TwoLayers(tanh_forgetting_the_square, (2, 2, 1)), arrays((1, 2)), seed=0,
                     max_examples=30)
    message = str(caught.value)
    assert message.startswith("TwoLayers: autograd and central differences disagree")
    assert "weights seed = " in message and "x (input 4) = " in message
    assert "input 0 is first.weight (2, 2)" in message  # which number is which parameter


def square_root(x):
    return x ** 0.5


def wrong_product(x, y):
    """x * y whose local derivative for y is y itself (should be x)."""
    return Value(x.data * y.data, "*", (x, y), (y.data, y.data))


def test_scalar_twin():
    assert check_scalar_op(square_root, floats(0.1, 3.0), max_examples=20) == 20
    with pytest.raises(Counterexample) as caught:
        check_scalar_op(wrong_product, floats(), floats(), seed=0, max_examples=50)
    x, y = caught.value.inputs
    assert "wrong_product" in str(caught.value) and f"y (input 1) = {y!r}" in str(caught.value)
    assert not math.isclose(x, y)  # the smallest input where y != x, where the slip shows


@given(sequence_batches(4, max_steps=6, max_batch=2), ids(7, (3, 2)))
def test_strategies_draw_what_they_promise(batch, token_ids):
    T, B, features = batch.shape
    assert 1 <= T <= 6 and 1 <= B <= 2 and features == 4 and batch.dtype == np.float64
    assert np.all(np.abs(batch) <= 2)
    assert token_ids.shape == (3, 2) and token_ids.dtype.kind == "i"
    assert token_ids.min() >= 0 and token_ids.max() < 7


def test_hypothesis_is_a_dependency_of_an_installed_microseq():
    """`pip install microseq` brings hypothesis along (not behind an extra), so
    `from microseq.testing import check_op` works in a learner's install."""
    needs = [r for r in importlib.metadata.requires("microseq") if "extra ==" not in r]
    assert any(r.replace(" ", "").startswith("hypothesis>=") for r in needs), needs
