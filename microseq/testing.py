"""Property-based gradient tests for your own ops, cells and modules.

Write an op, then let hypothesis search for an input where its gradient is
wrong; when it finds one it shrinks it to the smallest it can and shows it:

    from microseq.testing import arrays, check_op
    check_op(softplus, arrays())          # any shape, values in [-2, 2]
    check_op(ms.mul, *broadcastable_arrays(2))

Each input is checked in float64 by `microseq.gradcheck`: autograd against
central differences, |autograd - numeric| <= atol + rtol * |numeric|. A
failure raises `Counterexample`, whose message holds the op, the smallest
failing input, the element and both numbers. `check_module` does the same for
a Module (random weights, every parameter's gradient) and `check_scalar_op`
for an op written on `Value`.

The strategies keep values where central differences can be trusted: away
from kinks (relu at 0, ties of max) and domain edges (log at 0, a divisor
near 0). They run under the caller's hypothesis settings profile.
"""
import functools
import inspect
import math
import operator
from contextlib import contextmanager

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from microseq.gradcheck import GradcheckError, gradcheck, gradcheck_scalar
from microseq.nn.module import Module, Parameter
from microseq.ops import concat, reshape
from microseq.scalar import Value
from microseq.tensor import Tensor

__all__ = [
    "VALUE_BINARY", "VALUE_OPS", "VALUE_UNARY", "Counterexample", "arrays", "broadcastable_arrays",
    "broadcastable_shapes", "check_module", "check_op", "check_scalar_op", "distinct_arrays",
    "evaluate", "expressions", "floats", "ids", "random_weights", "sequence_batches", "shapes",
]

# === Tensor engine: strategies ================================================
# float64 arrays from ranges where every op is smooth, so that central
# differences are a trustworthy witness.


def shapes(min_dims=0, max_dims=3, max_side=4):
    """Array shapes of min_dims..max_dims axes, each of size 1..max_side; () is a scalar."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4):
    """Tuples of shapes that broadcast together in every way numpy allows:
    leading axes added, size-1 axes stretched, 0-d scalars."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, max_dims=max_dims, max_side=max_side).map(lambda s: s.input_shapes)


def floats(low=-2.0, high=2.0):
    """Finite float64 numbers in [low, high]."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape=None, low=-2.0, high=2.0, away_from_zero=0.0):
    """float64 arrays with elements in [low, high].

    shape: a tuple, a strategy of tuples, or None for any of `shapes()`.
    away_from_zero > 0 keeps every element at least that far from 0 (relu's
    kink, a divisor, a power of a negative number). For log, use low > 0.
    """
    elements = floats(low, high)
    if away_from_zero:
        elements = elements.filter(lambda v: abs(v) >= away_from_zero)
    return hnp.arrays(np.float64, shapes() if shape is None else shape, elements=elements,
                      fill=st.nothing())


def broadcastable_arrays(num_arrays=2, **domain):
    """`num_arrays` strategies whose arrays always broadcast together, e.g.
    `check_op(ms.mul, *broadcastable_arrays(2))`. `domain` is passed to
    `arrays` for every one of them."""
    shapes_ = broadcastable_shapes(num_arrays)
    # One shared draw: hypothesis draws the tuple of shapes once per example and
    # each input strategy picks its own shape out of it.
    shared = st.shared(shapes_, key=f"broadcastable_arrays-{id(shapes_)}")
    return tuple(shared.flatmap(lambda s, i=i: arrays(s[i], **domain)) for i in range(num_arrays))


def distinct_arrays(shape, gap=1e-2):
    """float64 arrays whose elements are at least `gap` apart: max has no ties."""
    size = int(np.prod(shape, dtype=int))
    return st.permutations(range(size)).flatmap(
        lambda order: hnp.arrays(np.float64, (size,), elements=floats(0, 0.4 * gap)).map(
            lambda jitter: (np.asarray(order) * gap + jitter).reshape(shape) - size * gap / 2))


def ids(num_embeddings, shape=None):
    """int64 arrays of token ids in 0..num_embeddings-1 (an Embedding's input).

    shape: a tuple, a strategy of tuples, or None for (B,) or (T, B) up to 5.
    check_op and check_module hold integer inputs fixed: they are not differentiated.
    """
    shape = shapes(min_dims=1, max_dims=2, max_side=5) if shape is None else shape
    return hnp.arrays(np.int64, shape, elements=st.integers(0, num_embeddings - 1))


def sequence_batches(features, max_steps=5, max_batch=3, low=-2.0, high=2.0):
    """float64 arrays of shape (T, B, features), T in 1..max_steps and B in
    1..max_batch: a batch of sequences for a recurrent cell or layer."""
    dims = st.tuples(st.integers(1, max_steps), st.integers(1, max_batch), st.just(features))
    return arrays(dims, low, high)


# === Tensor engine: checks ====================================================

class Counterexample(GradcheckError):
    """A gradient check found an input where autograd and central differences
    disagree. Attributes: `inputs` (the smallest failing inputs hypothesis
    found, in the op's order), `first` (the first failing inputs, before
    shrinking), `found_at` (which example that was), `examples` (how many
    were tried in all, shrinking included) and `mismatch` (gradcheck's line:
    the element and both numbers)."""

    def __init__(self, message, inputs=(), first=(), found_at=0, examples=0, mismatch=""):
        super().__init__(message)
        self.inputs, self.first, self.found_at = inputs, first, found_at
        self.examples, self.mismatch = examples, mismatch


class _Failure(Exception):
    """One failing example inside the search; check_* turn the last one into a Counterexample.
    labels: what to call each input, with the number gradcheck gave it."""

    def __init__(self, inputs, labels, mismatch):
        super().__init__(mismatch)
        self.inputs, self.labels, self.mismatch = inputs, labels, mismatch


def _name(fn):
    return getattr(fn, "__name__", None) or type(fn).__name__


def _argument_names(fn, count):
    """The names of fn's first `count` positional parameters, or input0, input1..."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return params[:count] if len(params) >= count else [f"input{i}" for i in range(count)]


def _show(x):
    """An input as Python that recreates it: floats in their shortest exact form."""
    if isinstance(x, np.ndarray):
        with np.printoptions(floatmode="unique", precision=17, threshold=200):
            return repr(x)
    return repr(x)


def _is_differentiable(x):
    return isinstance(x, float) or (isinstance(x, np.ndarray) and x.dtype.kind == "f")


def _search(check, strategies, max_examples, seed):
    """Run `check(*drawn)` under hypothesis and return how many examples ran;
    on a failure raise the shrunk `_Failure`, with the first failure's
    inputs (`first`), its number (`found_at`) and the count (`examples`)."""
    calls, failures = [0], []

    def record(drawn):
        calls[0] += 1
        try:
            check(*drawn)
        except _Failure as failure:
            failure.call = calls[0]
            failures.append(failure)
            raise

    # No example database (a check starts afresh, not from failures saved on
    # disk) and no explain phase (it reruns the test many times only to
    # annotate hypothesis's own report, which the Counterexample replaces).
    options = dict(deadline=None, database=None, report_multiple_bugs=False,
                   phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
    if max_examples is not None:
        options["max_examples"] = max_examples
    drawn = st.tuples(*(s if isinstance(s, st.SearchStrategy) else st.just(s) for s in strategies))
    run = settings(**options)(given(drawn)(record))
    if seed is not None:
        run = hypothesis_seed(seed)(run)
    try:
        run()
    except _Failure as failure:
        failure.first, failure.found_at, failure.examples = (
            failures[0].inputs, failures[0].call, calls[0])
        raise
    return calls[0]


def _counterexample(failure, title):
    lines = [f"{title}: autograd and central differences disagree. Smallest failing input "
             f"hypothesis found (it tried {failure.examples}):"]
    for label, x in zip(failure.labels, failure.inputs):
        head = f"    {label} = "
        lines.append(head + _show(x).replace("\n", "\n" + " " * len(head)))
    lines.append(failure.mismatch)
    return Counterexample("\n".join(lines), failure.inputs, failure.first, failure.found_at,
                          failure.examples, failure.mismatch)


def _labels(names, slots, first=0):
    """'x (input 0)' for the inputs gradcheck numbers (slots), 'ids (held fixed)' for the rest."""
    number = {i: first + k for k, i in enumerate(slots)}
    return [f"{name} (input {number[i]})" if i in number else f"{name} (held fixed)"
            for i, name in enumerate(names)]


def _on_floats(fn, inputs):
    """fn as a function of its float inputs only, the others held fixed; and
    those float inputs. gradcheck differentiates every input it is given."""
    slots = [i for i, x in enumerate(inputs) if _is_differentiable(x)]

    def of_floats(*tensors):
        args = list(inputs)
        for i, t in zip(slots, tensors):
            args[i] = t
        return fn(*args)

    return of_floats, [inputs[i] for i in slots], slots


def _tensor_output(title, out):
    if not isinstance(out, Tensor):
        raise TypeError(f"{title}: must return a Tensor, got {type(out).__name__}")
    return out


def check_op(fn, *inputs, max_examples=None, seed=None, eps=1e-6, rtol=1e-4, atol=1e-6):
    """Search for an input where fn's autograd gradient is wrong.

    fn: a function of Tensors returning a Tensor of any shape (an @op, or
    code built from ops). inputs: one hypothesis strategy per positional
    argument of fn, e.g. `arrays((3, 4))`, or a fixed value; float arrays
    are differentiated, integer arrays (`ids`) and other values are passed
    unchanged.
    max_examples: inputs to try (default: the active hypothesis profile's);
    seed: fixes the search. eps, rtol, atol: as in `microseq.gradcheck`.

    Returns the number of inputs tried, all passing; otherwise raises
    Counterexample with the smallest failing input.
    """
    title = _name(fn)
    names = _argument_names(fn, len(inputs))

    def check(*drawn):
        of_floats, floats_, slots = _on_floats(fn, drawn)
        try:
            gradcheck(lambda *ts: _tensor_output(title, of_floats(*ts)), *floats_,
                      eps=eps, rtol=rtol, atol=atol)
        except GradcheckError as e:
            raise _Failure(drawn, _labels(names, slots), str(e)) from None

    try:
        return _search(check, inputs, max_examples, seed)
    except _Failure as failure:
        raise _counterexample(failure, title) from None


# === Modules ==================================================================

def _parameter_sites(module):
    """(submodule, attribute, index into module.parameters()) for every
    attribute holding a parameter; a tied weight has several sites."""
    index = {id(p): i for i, p in enumerate(module.parameters())}
    return [(m, name, index[id(value)]) for _, m in module.named_modules()
            for name, value in vars(m).items() if isinstance(value, Parameter)]


@contextmanager
def _parameters_replaced(sites, params, tensors):
    """Inside, every site of params[i] holds tensors[i] instead."""
    try:
        for m, name, i in sites:
            object.__setattr__(m, name, tensors[i])
        yield
    finally:
        for m, name, i in sites:
            object.__setattr__(m, name, params[i])


def _flatten_tensors(out):
    """Every Tensor in out (a Tensor or nested tuples/lists, e.g. output, (h_n, c_n))."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flatten_tensors(item)]
    return []


def random_weights(module, seed):
    """Set module's parameters (cast to float64) to N(0, 1/fan_in), fan_in the
    last axis: large enough to reach every nonlinearity, never saturating it."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1] if p.ndim else 1)
        p.grad = None
    return module


def check_module(module, *inputs, max_examples=None, seed=None, eps=1e-6, rtol=1e-4, atol=1e-6,
                 max_elements=16):
    """check_op for a Module: for random weights (drawn anew for each example,
    see `random_weights`) and inputs drawn from `inputs` (one strategy per
    positional argument of forward), the gradient of every parameter and of
    every float input against central differences. Every Tensor the module
    returns counts (e.g. an LSTM's output, h_n and c_n). Parameters with more
    than `max_elements` elements are checked on that many, drawn anew for
    each example, which keeps a check of an LSTM to a fraction of a second.

    The module's own weights and dtype are restored afterwards. Returns the
    number of examples tried; raises Counterexample naming the parameter,
    with the weights seed: `random_weights(module, seed)` recreates them.
    """
    if not isinstance(module, Module):
        raise TypeError(f"check_module: expected a Module, got {type(module).__name__}")
    title = type(module).__name__
    names = _argument_names(module.forward, len(inputs))
    params = dict(module.named_parameters())
    saved = {name: p.data for name, p in params.items()}
    sites = _parameter_sites(module)

    def check(weights_seed, *drawn):
        random_weights(module, weights_seed)
        of_floats, floats_, slots = _on_floats(module, drawn)

        def outputs(*tensors):
            weights, xs = tensors[:len(params)], tensors[len(params):]
            with _parameters_replaced(sites, list(params.values()), weights):
                found = _flatten_tensors(of_floats(*xs))
            if not found:
                raise TypeError(f"{title}: forward returned no Tensor")
            return concat([reshape(t, (-1,)) for t in found])

        try:
            gradcheck(outputs, *[p.data for p in params.values()], *floats_,
                      eps=eps, rtol=rtol, atol=atol, max_elements=max_elements, seed=weights_seed)
        except GradcheckError as e:
            numbering = "; ".join(f"input {k} is {name} {p.shape}"
                                  for k, (name, p) in enumerate(params.items()))
            raise _Failure((weights_seed, *drawn),
                           ["weights seed", *_labels(names, slots, first=len(params))],
                           f"{e}\n({numbering})") from None

    try:
        return _search(check, (st.integers(0, 2**32 - 1), *inputs), max_examples, seed)
    except _Failure as failure:
        raise _counterexample(failure, title) from None
    finally:
        for name, p in params.items():
            p.data, p.grad = saved[name], None


# === Scalar engine ============================================================

def check_scalar_op(fn, *inputs, max_examples=None, seed=None, eps=1e-6, rtol=1e-5, atol=1e-8):
    """check_op for the scalar engine: fn maps Values to a Value; inputs are
    strategies of numbers, e.g. `floats()` or `floats(0.1, 3)` for a log.
    Each example is checked by `microseq.gradcheck.gradcheck_scalar`."""
    title = _name(fn)
    names = _argument_names(fn, len(inputs))

    def on_values(values):
        out = fn(*values)
        if not isinstance(out, Value):
            raise TypeError(f"{title}: must return a Value, got {type(out).__name__}")
        return out

    def check(*point):
        try:
            gradcheck_scalar(on_values, list(point), eps=eps, rtol=rtol, atol=atol)
        except GradcheckError as e:
            raise _Failure(point, _labels(names, range(len(names))), str(e)) from None

    try:
        return _search(check, inputs, max_examples, seed)
    except _Failure as failure:
        raise _counterexample(failure, title) from None


# Random expressions over every op of Value. An expression is a tree of
# tuples: ("x", i) is input i, (name, operand) a unary op, (symbol, left,
# right) a binary op; a plain number is a constant, which puts Python numbers
# on either side of an operator (2 - x, x ** 3, 2 ** x). `evaluate` computes a
# tree on Values (to differentiate it) or on floats (to check where it is safe to).

MARGIN = 0.1  # distance kept from relu's kink and from the edges of log, / and **
BOUND = 100.0  # largest magnitude allowed anywhere inside an expression

VALUE_UNARY = {  # name -> (on a Value, on a float)
    "neg": (operator.neg, operator.neg),
    "exp": (Value.exp, math.exp),
    "log": (Value.log, math.log),
    "tanh": (Value.tanh, math.tanh),
    "sigmoid": (Value.sigmoid, lambda x: 1 / (1 + math.exp(-x))),
    "relu": (Value.relu, lambda x: max(x, 0.0)),
}
VALUE_BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul,
                "/": operator.truediv, "**": operator.pow}
VALUE_OPS = [*VALUE_UNARY, *VALUE_BINARY]
EXPONENTS = [2, 3, -1, 0.5, 1.5, -0.5]  # x ** n: integer, fractional and negative powers
BASES = [0.5, 2.0, 3.0]  # n ** x

_constants = st.one_of(st.floats(0.25, 3.0), st.floats(-3.0, -0.25))


def _rooted(name, operands):
    """Trees whose root is the op `name`, with Value operands drawn from `operands`."""
    if name in VALUE_UNARY:
        return st.tuples(st.just(name), operands)
    if name == "**":
        return st.one_of(st.tuples(st.just(name), operands, st.sampled_from(EXPONENTS)),
                         st.tuples(st.just(name), st.sampled_from(BASES), operands))
    return st.one_of(st.tuples(st.just(name), operands, operands),
                     st.tuples(st.just(name), operands, _constants),
                     st.tuples(st.just(name), _constants, operands))


@functools.cache  # built once: hypothesis analyses a new recursive strategy slowly
def expression_trees(n_inputs=3, max_leaves=8, root=None):
    """Random expression trees over inputs 0..n_inputs-1 and every op of Value
    (or, given `root`, only trees whose outermost op is that one)."""
    leaves = st.integers(0, n_inputs - 1).map(lambda i: ("x", i))
    trees = st.recursive(leaves, lambda sub: st.one_of([_rooted(op, sub) for op in VALUE_OPS]),
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
    if name in VALUE_UNARY:
        on_value, on_float = VALUE_UNARY[name]
        return on_value(args[0]) if isinstance(args[0], Value) else on_float(args[0])
    return VALUE_BINARY[name](*args)


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
    """(tree, point): a random expression over every op of Value and a point
    where it is well-conditioned. `evaluate(tree, values)` computes it."""
    tree = draw(expression_trees(n_inputs, root=root))
    point = draw(st.lists(st.floats(-2.0, 2.0), min_size=n_inputs, max_size=n_inputs)
                 .filter(lambda p: well_conditioned(tree, p)))
    return tree, point
