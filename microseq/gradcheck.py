"""Gradient checking: compare autograd with central finite differences.

    d f / d x_i  ~  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

The error of this estimate is O(eps^2) from truncation plus about
machine-epsilon * |f| / eps from rounding, so in float64 eps = 1e-6 agrees
with a correct gradient to roughly 1e-8 relative. An input passes when
|autograd - numeric| <= atol + rtol * |numeric| (the rule of numpy.isclose).
"""
import math

import numpy as np

from microseq.node import Node
from microseq.scalar import Value
from microseq.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Autograd and finite differences disagree; the message names the worst input."""


def describe_mismatch(name, autograd, numeric, rtol, atol):
    """One line for an error message: 'input i: autograd=..., numeric=..., |diff|=... > tol ...'."""
    tol = atol + rtol * abs(numeric)
    return (f"input {name}: autograd={autograd:.10g}, numeric={numeric:.10g}, "
            f"|diff|={abs(autograd - numeric):.3g} > tol {tol:.3g} "
            f"(atol={atol:g} + rtol={rtol:g} * |numeric|)")


def check_close(autograd, numeric, rtol, atol, names=None):
    """Raise GradcheckError naming the worst input out of tolerance, if any.

    autograd, numeric: equal-length sequences of floats; names: what to call
    each input in the message (default: its index).
    """
    names = range(len(autograd)) if names is None else names
    excess = []  # (|diff| - tol, i) of each input out of tolerance; NaN counts as infinitely far
    for i, (a, b) in enumerate(zip(autograd, numeric, strict=True)):
        diff, tol = abs(a - b), atol + rtol * abs(b)
        if not diff <= tol:
            excess.append((math.inf if math.isnan(diff - tol) else diff - tol, i))
    if excess:
        i = max(excess)[1]
        raise GradcheckError(
            f"gradient check failed for {len(excess)} of {len(autograd)} inputs; worst "
            + describe_mismatch(names[i], autograd[i], numeric[i], rtol, atol))


def numerical_grad_scalar(f, inputs, eps=1e-6):
    """Central-difference estimate of d f / d input_i for every i.

    f maps a list of Values to a Value; inputs are numbers (or Values, whose
    .data is used). f is evaluated on fresh leaves, so nothing is modified.
    """
    leaves = [Value(x.data if isinstance(x, Value) else x) for x in inputs]
    return [central_difference(lambda: f(leaves), [leaf], [1.0], eps) for leaf in leaves]


def autograd_scalar(f, inputs):
    """d f / d input_i for every i, by backward() on fresh leaves."""
    leaves = [Value(x.data if isinstance(x, Value) else x) for x in inputs]
    f(leaves).backward()
    return [v.grad for v in leaves]


def gradcheck_scalar(f, inputs, eps=1e-6, rtol=1e-5, atol=1e-8):
    """Check the gradient of f (a list of Values -> a Value) at `inputs` numerically.

    Returns True when every input passes, else raises GradcheckError naming
    the worst input, both numbers and the tolerance.
    """
    check_close(autograd_scalar(f, inputs), numerical_grad_scalar(f, inputs, eps), rtol, atol)
    return True


def central_difference(objective, tensors, directions, eps=1e-6):
    """The derivative of objective() along `directions`, by central differences.

    Every node t (a Tensor, or a Value with a number for d) is moved to
    t + s d, its own direction d, at once, for s = +eps and -eps, and
    objective() (a function of no arguments that reads those nodes and
    returns a number, a Value or a one-element Tensor) is evaluated there
    without building a graph: (f(+eps) - f(-eps)) / (2 eps). A one-hot
    direction gives the partial derivative by one element. The nodes' values
    are restored afterwards. Every finite-difference check in microseq uses
    this.
    """
    originals = [t.data for t in tensors]

    def at(shift):
        for t, x, d in zip(tensors, originals, directions, strict=True):
            t.data = x + shift * d
        with no_grad():
            value = objective()
        return np.asarray(value.data if isinstance(value, Node) else value).item()

    try:
        return (at(eps) - at(-eps)) / (2 * eps)
    finally:
        for t, x in zip(tensors, originals):
            t.data = x


def _one_hot(shape, j):
    direction = np.zeros(shape)
    direction.reshape(-1)[j] = 1.0
    return direction


def gradcheck(f, *inputs, eps=1e-6, rtol=1e-4, atol=1e-6, max_elements=64, seed=0):
    """Check the autograd gradients of `f(*inputs)` against central differences.

    `f` maps Tensors to a Tensor of any shape; it is reduced to the scalar
    L = sum(f(...) * r) with a fixed random r, so every output element is
    tested at the cost of one backward pass. Inputs are copied to float64.
    Each input is checked on every element, or on `max_elements` of them drawn
    at random when it is larger. Returns True, or raises GradcheckError naming
    the input, the element, both numbers and the tolerance.
    """
    rng = np.random.default_rng(seed)
    xs = [Tensor(np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64),
                 requires_grad=getattr(x, "requires_grad", True)) for x in inputs]
    out = f(*xs)
    weights = rng.standard_normal(out.shape)
    (out * weights).sum().backward()

    def objective():
        return (f(*xs).data * weights).sum()

    autograd, numeric, names = [], [], []
    for i, x in enumerate(xs):
        if not x.requires_grad:
            continue
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad
        picks = range(x.data.size)
        if x.data.size > max_elements:
            picks = rng.choice(x.data.size, max_elements, replace=False)
        for j in picks:
            numeric.append(central_difference(objective, [x], [_one_hot(x.shape, j)], eps))
            autograd.append(float(analytic.reshape(-1)[j]))
            names.append(f"{i} at {tuple(int(k) for k in np.unravel_index(j, x.shape))}")
    check_close(autograd, numeric, rtol, atol, names)
    return True


def gradcheck_parameters(loss, named_parameters, eps=1e-6, rtol=1e-5, atol=1e-8, rng=None):
    """Check the gradients loss().backward() gives every parameter against
    central differences of loss() (a function of no arguments returning a
    scalar Tensor), for (name, Tensor) pairs such as model.named_parameters().

    Without `rng`, every element of every parameter is nudged on its own
    (exact, and slow for big models). With `rng` (a Generator), each
    parameter is checked once, along a random direction d: <grad, d> against
    the derivative along d, which is cheap at any size. Returns True, or
    raises GradcheckError naming the worst parameter (and element).
    """
    named_parameters = list(named_parameters)
    for _, p in named_parameters:
        p.grad = None
    loss().backward()
    autograd, numeric, names = [], [], []
    for name, p in named_parameters:
        grad = np.zeros(p.shape) if p.grad is None else p.grad
        if rng is not None:
            d = rng.standard_normal(p.shape)
            picks = [(d, float(np.sum(grad * d)), f"{name} along a random direction")]
        else:
            picks = [(_one_hot(p.shape, j), float(grad.reshape(-1)[j]),
                      f"{name} at {tuple(int(k) for k in np.unravel_index(j, p.shape))}")
                     for j in range(p.data.size)]
        for d, analytic, label in picks:
            numeric.append(central_difference(loss, [p], [d], eps))
            autograd.append(analytic)
            names.append(label)
    check_close(autograd, numeric, rtol, atol, names)
    return True
