"""Gradient checking: compare autograd with central finite differences.

    d f / d x_i  ~  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

The error of this estimate is O(eps^2) from truncation plus about
machine-epsilon * |f| / eps from rounding, so in float64 eps = 1e-6 agrees
with a correct gradient to roughly 1e-8 relative. An input passes when
|autograd - numeric| <= atol + rtol * |numeric| (the rule of numpy.isclose).
"""
import math

import numpy as np

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
    point = [x.data if isinstance(x, Value) else float(x) for x in inputs]

    def f_at(i, shift):
        return f([Value(x + shift if j == i else x) for j, x in enumerate(point)]).data

    return [(f_at(i, eps) - f_at(i, -eps)) / (2 * eps) for i in range(len(point))]


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
        with no_grad():
            return float((f(*xs).data * weights).sum())

    autograd, numeric, names = [], [], []
    for i, x in enumerate(xs):
        if not x.requires_grad:
            continue
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad
        flat = x.data.reshape(-1)  # a view: nudging it nudges x
        picks = range(flat.size)
        if flat.size > max_elements:
            picks = rng.choice(flat.size, max_elements, replace=False)
        for j in picks:
            saved = flat[j]
            flat[j] = saved + eps
            up = objective()
            flat[j] = saved - eps
            down = objective()
            flat[j] = saved
            numeric.append((up - down) / (2 * eps))
            autograd.append(float(analytic.reshape(-1)[j]))
            names.append(f"{i} at {tuple(int(k) for k in np.unravel_index(j, x.shape))}")
    check_close(autograd, numeric, rtol, atol, names)
    return True
