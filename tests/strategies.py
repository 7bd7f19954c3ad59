"""Hypothesis strategies shared by the tests, one section per engine."""
import functools
import math
import operator

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from microseq.scalar import Value

# === Scalar engine ============================================================
#
# An expression is a tree of tuples: ("x", i) is input i, (name, operand) a
# unary op, (symbol, left, right) a binary op; a plain number is a constant,
# which puts Python numbers on either side of an operator (2 - x, x ** 3,
# 2 ** x). `evaluate` computes a tree on Values (to differentiate it) or on
# floats (to check where it is safe to). Together UNARY and BINARY cover every
# op of Value.

MARGIN = 0.1  # distance kept from relu's kink and from the edges of log, / and **
BOUND = 100.0  # largest magnitude allowed anywhere inside an expression

UNARY = {  # name -> (on a Value, on a float)
    "neg": (operator.neg, operator.neg),
    "exp": (Value.exp, math.exp),
    "log": (Value.log, math.log),
    "tanh": (Value.tanh, math.tanh),
    "sigmoid": (Value.sigmoid, lambda x: 1 / (1 + math.exp(-x))),
    "relu": (Value.relu, lambda x: max(x, 0.0)),
}
ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
BINARY = {**ARITHMETIC, "**": operator.pow}
OPS = [*UNARY, *BINARY]
EXPONENTS = [2, 3, -1, 0.5, 1.5, -0.5]  # x ** n: integer, fractional and negative powers
BASES = [0.5, 2.0, 3.0]  # n ** x

constants = st.one_of(st.floats(0.25, 3.0), st.floats(-3.0, -0.25))


def _rooted(name, operands):
    """Trees whose root is the op `name`, with Value operands drawn from `operands`."""
    if name in UNARY:
        return st.tuples(st.just(name), operands)
    if name == "**":
        return st.one_of(st.tuples(st.just(name), operands, st.sampled_from(EXPONENTS)),
                         st.tuples(st.just(name), st.sampled_from(BASES), operands))
    return st.one_of(st.tuples(st.just(name), operands, operands),
                     st.tuples(st.just(name), operands, constants),
                     st.tuples(st.just(name), constants, operands))


@functools.cache  # built once: hypothesis analyses a new recursive strategy slowly
def expression_trees(n_inputs=3, max_leaves=8, root=None):
    """Random expression trees over inputs 0..n_inputs-1 and every op of Value
    (or, given `root`, only trees whose outermost op is that one)."""
    inputs = st.integers(0, n_inputs - 1).map(lambda i: ("x", i))
    trees = st.recursive(inputs, lambda sub: st.one_of([_rooted(op, sub) for op in OPS]),
                         max_leaves=max_leaves)
    return trees if root is None else _rooted(root, trees)


def evaluate(tree, xs):
    """The value of `tree` at xs: a list of Values (giving a Value) or of floats."""
    if not isinstance(tree, tuple):
        return tree
    name, *args = tree
    if name == "x":
        return xs[args[0]]
    args = [evaluate(a, xs) for a in args]
    if name in UNARY:
        on_value, on_float = UNARY[name]
        return on_value(args[0]) if isinstance(args[0], Value) else on_float(args[0])
    return BINARY[name](*args)


def well_conditioned(tree, point):
    """True if every op in tree, at point, is at least MARGIN from a kink or a
    domain edge and every intermediate value is within BOUND: there a central
    difference with a small eps cannot step across an edge."""
    def check(tree):
        if not isinstance(tree, tuple) or tree[0] == "x":
            return evaluate(tree, point)
        name, *args = tree
        values = [check(a) for a in args]
        x = values[0]
        if ((name == "log" and x < MARGIN) or (name == "relu" and abs(x) < MARGIN)
                or (name == "/" and abs(values[1]) < MARGIN)):
            raise ArithmeticError
        if name == "**" and isinstance(args[0], tuple):  # a Value to a number's power
            n = values[1]
            if (n != int(n) and x < MARGIN) or (n < 0 and abs(x) < MARGIN):
                raise ArithmeticError
        y = evaluate((name, *values), point)
        if not abs(y) <= BOUND:
            raise ArithmeticError
        return y

    try:
        check(tree)
    except ArithmeticError:  # also OverflowError from math.exp
        return False
    return True


@st.composite
def expressions(draw, n_inputs=3, root=None):
    """(tree, point): a random expression and a point where it is well-conditioned."""
    tree = draw(expression_trees(n_inputs, root=root))
    point = draw(st.lists(st.floats(-2.0, 2.0), min_size=n_inputs, max_size=n_inputs)
                 .filter(lambda p: well_conditioned(tree, p)))
    return tree, point


# === Tensor engine ============================================================
# Arrays are float64 and drawn from ranges where every op is smooth: away from
# relu's kink at 0, from log's pole, and (for max) with no near-ties, so that
# central differences are a trustworthy witness.

def shapes(min_dims=0, max_dims=3, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4):
    """Shape tuples that broadcast together in every way numpy allows:
    leading axes added, size-1 axes stretched, 0-d scalars."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, max_dims=max_dims, max_side=max_side).map(lambda s: s.input_shapes)


def floats(low=-2.0, high=2.0):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape, low=-2.0, high=2.0, away_from_zero=0.0):
    """float64 arrays in [low, high]; with away_from_zero > 0, no element is
    closer than that to 0 (relu's kink, a divisor, a power of a negative)."""
    elements = floats(low, high)
    if away_from_zero:
        elements = elements.filter(lambda v: abs(v) >= away_from_zero)
    return hnp.arrays(np.float64, shape, elements=elements)


def distinct_arrays(shape, gap=1e-2):
    """float64 arrays whose elements are at least `gap` apart: max has no ties."""
    size = int(np.prod(shape, dtype=int))
    return st.permutations(range(size)).flatmap(
        lambda order: hnp.arrays(np.float64, (size,), elements=floats(0, 0.4 * gap)).map(
            lambda jitter: (np.asarray(order) * gap + jitter).reshape(shape) - size * gap / 2))
