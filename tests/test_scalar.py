"""The scalar engine: every op's gradient against central differences, by hand, and in depth.

Tolerance of the property test: gradcheck_scalar in float64 with eps=1e-6,
accepting |autograd - numeric| <= 1e-6 + 1e-5 |numeric|. Expressions keep
every intermediate value within 100, where the rounding error of the central
difference is about 1e-16 * 100 / 1e-6 = 1e-8, well inside that.
"""
import gc
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microseq.gradcheck import GradcheckError, gradcheck_scalar
from microseq.scalar import Value
from microseq.scope import scope
from microseq.testing import VALUE_BINARY, VALUE_OPS, VALUE_UNARY, evaluate, expressions

pytestmark = pytest.mark.scalar


def check_gradient(tree, point):
    assert gradcheck_scalar(lambda xs: evaluate(tree, xs), point, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", VALUE_OPS)
@given(data=st.data())
def test_each_op_matches_central_differences(op, data):
    check_gradient(*data.draw(expressions(root=op)))


@given(expressions())
def test_random_expressions_match_central_differences(expression):
    check_gradient(*expression)


@given(expressions())
def test_forward_matches_plain_floats(expression):
    tree, point = expression
    value = evaluate(tree, [Value(x) for x in point])
    assert value.data == pytest.approx(evaluate(tree, point), rel=1e-12, abs=1e-12)


def test_the_strategy_covers_every_op():
    methods = {m for m in dir(Value) if not m.startswith("_") and callable(getattr(Value, m))}
    assert methods - {"backward"} <= set(VALUE_UNARY)
    assert {"+", "-", "*", "/", "**"} <= set(VALUE_BINARY) and "neg" in VALUE_UNARY


# --- gradients derived by hand -------------------------------------------------

def grads(f, *xs):
    leaves = [Value(x) for x in xs]
    f(*leaves).backward()
    return [v.grad for v in leaves]


@pytest.mark.parametrize("f, x, expected", [
    (lambda x: x.exp(), 0.7, math.exp(0.7)),
    (lambda x: x.log(), 0.7, 1 / 0.7),
    (lambda x: x.tanh(), 0.7, 1 - math.tanh(0.7) ** 2),
    (lambda x: x.sigmoid(), 0.7, (s := 1 / (1 + math.exp(-0.7))) * (1 - s)),
    (lambda x: x.relu(), 0.7, 1.0),
    (lambda x: x.relu(), -0.7, 0.0),
    (lambda x: -x, 0.7, -1.0),
    (lambda x: x ** 3, 0.7, 3 * 0.7 ** 2),
    (lambda x: x ** 0.5, 0.7, 0.5 / math.sqrt(0.7)),
    (lambda x: x ** 0, 0.0, 0.0),
    (lambda x: 2 ** x, 0.7, 2 ** 0.7 * math.log(2)),
    (lambda x: 1 - x, 0.7, -1.0),
    (lambda x: 1 / x, 0.7, -1 / 0.7 ** 2),
    (lambda x: 3 * x + 1, 0.7, 3.0),
])
def test_single_op_derivatives(f, x, expected):
    assert grads(f, x) == [pytest.approx(expected, rel=1e-12)]


def test_sigmoid_does_not_overflow():
    assert grads(lambda x: x.sigmoid(), -1000.0) == [0.0]
    assert Value(1000.0).sigmoid().data == 1.0


def test_sum_of_products():
    # f = x y + y^3: df/dx = y, df/dy = x + 3 y^2
    assert grads(lambda x, y: x * y + y ** 3, 2.0, -1.5) == [-1.5, 2.0 + 3 * 1.5 ** 2]


def test_quotient():
    # f = a / b: df/da = 1/b, df/db = -a/b^2
    assert grads(lambda a, b: a / b, 3.0, -2.0) == [pytest.approx(-0.5), pytest.approx(-0.75)]


def test_neuron():
    # o = tanh(w x + b): do/dw = (1 - o^2) x, do/dx = (1 - o^2) w, do/db = 1 - o^2
    w, x, b = 0.8, 1.5, 0.1
    d = 1 - math.tanh(w * x + b) ** 2
    expected = [d * x, d * w, d]
    assert grads(lambda w, x, b: (w * x + b).tanh(), w, x, b) == pytest.approx(expected)


# --- reuse, accumulation, depth --------------------------------------------------

def test_a_value_used_twice_receives_both_contributions():
    assert grads(lambda a: a * a, 3.0) == [6.0]
    assert grads(lambda a: a + a, 3.0) == [2.0]
    # a diamond: b = 3a, c = b^2 + b, so dc/da = (2b + 1) * 3
    assert grads(lambda a: (b := a * 3) * b + b, 2.0) == [(2 * 6.0 + 1) * 3]


def test_leaf_grads_accumulate_but_intermediate_grads_are_recomputed():
    x = Value(2.0)
    y = x * x
    z = y * 3
    z.backward()
    assert (x.grad, y.grad, z.grad) == (12.0, 3.0, 1.0)
    z.backward()
    assert (x.grad, y.grad, z.grad) == (24.0, 3.0, 1.0)
    x.grad = 0.0
    (y + 1).backward()
    assert (x.grad, y.grad) == (4.0, 1.0)


def test_backward_on_a_leaf():
    x = Value(5.0)
    x.backward()
    x.backward()
    assert x.grad == 2.0


def test_a_chain_of_100_000_ops_backpropagates():
    x = Value(1.0)
    v = x
    for _ in range(100_000):
        v = v * 1.00001
    v.backward()
    assert x.grad == pytest.approx(1.00001 ** 100_000, rel=1e-9)


def test_graphs_are_freed_by_reference_counting_alone():
    gc.collect()
    gc.disable()
    try:
        x = Value(0.3)
        loss = ((x * 2).tanh() + x.exp() / (1 + x.sigmoid())).log() ** 2
        loss.backward()
        del loss, x
        assert gc.collect() == 0  # nothing was left for the cycle collector
    finally:
        gc.enable()


def test_values_record_their_scope():
    with scope("t=1"):
        y = Value(1.0) * 2
    assert y._scope == "t=1" and (y * 2)._scope is None


# --- errors ----------------------------------------------------------------------

def test_log_of_a_non_positive_number():
    with pytest.raises(ValueError, match=r"^log: input must be positive, got -1.0$"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="got 0.0"):
        Value(0).log()


def test_power_errors():
    with pytest.raises(TypeError, match=r"\*\*: the exponent must be a number, got Value"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(ValueError, match="base must be positive for the non-integer exponent"):
        Value(-8.0) ** (1 / 3)
    with pytest.raises(ValueError, match="cannot be raised to the negative power"):
        Value(0.0) ** -1
    with pytest.raises(ValueError, match="needs a positive base"):
        (-2) ** Value(1.0)


# --- gradcheck itself --------------------------------------------------------------

def test_gradcheck_reports_the_worst_input():
    # .data cuts the graph: autograd misses how the product depends on b
    def wrong(v):
        a, b = v
        return a * b.data + b
    with pytest.raises(GradcheckError) as failure:
        gradcheck_scalar(wrong, [2.0, 3.0])
    message = str(failure.value)
    assert isinstance(failure.value, AssertionError)
    assert "1 of 2 inputs" in message and "input 1:" in message
    assert "autograd=1," in message and "numeric=3" in message and "> tol" in message


def test_gradcheck_passes_and_leaves_its_inputs_alone():
    a = Value(0.5)
    assert gradcheck_scalar(lambda v: v[0].tanh() * v[0], [a]) is True
    assert a.grad == 0.0


def test_exp_overflow_names_the_op():
    with pytest.raises(OverflowError, match=r"exp: e\*\*1000 is too large for a float"):
        Value(1000.0).exp()
    assert Value(709.0).exp().data > 1e307
