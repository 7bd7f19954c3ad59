"""The tensor engine: Tensor, the `op` decorator, backward, no_grad.

An op is a plain numpy function that returns its value together with its
vector-Jacobian products, one per input:

    @op
    def mul(a, b):
        return a * b, (lambda g: g * b, lambda g: g * a)

`op` turns it into a function on Tensors that records the graph. The VJPs
close over numpy arrays only, never over the output Tensor, so a graph is
freed by reference counting as soon as nothing points at it.

A Tensor is a node with the same fields as the scalar engine's Value, and
Tensor.backward reads line for line like Value.backward (see microseq.node).

One hook leads out of this file: `backward_hook`. When microseq.fast sets it
(the default; MICROSEQ_FAST=0 or `microseq.fast.enable(False)` clears it),
backward() hands the ordered nodes to that function, which computes the
same gradients with fewer allocations. The tests check both give the same.
"""
import functools
from contextlib import contextmanager

import numpy as np

from microseq.node import Node, creation_numbers, topological_order
from microseq.rng import default_rng, manual_seed  # noqa: F401 (constructors use them; re-exported)
from microseq.scope import current as current_scope

DEFAULT_DTYPE = np.float32
_grad_enabled, _anomaly = True, False  # see no_grad() and detect_anomaly()
backward_hook = None  # None: the plain loop in Tensor.backward; see the module docstring


class ShapeError(ValueError):
    """An op was called with inputs whose shapes (or dtypes) do not fit."""


class IndexShapeError(ShapeError, IndexError):
    """An index outside a tensor's shape. An IndexError too, as numpy's and
    PyTorch's are, so that `except IndexError` and iteration protocols work."""


class AnomalyError(FloatingPointError):
    """Inside detect_anomaly(): an op produced a NaN or Inf."""


class Tensor(Node):
    """A numpy array that remembers how it was computed.

    `data` is the array, `grad` is d(root)/d(self) after `root.backward()`
    (an array of the same shape, or None), `requires_grad` says whether
    gradients flow to it, `label` an optional name for drawings. The other
    fields are those every node has (see microseq.node).

    `Tensor(array)` wraps the array without copying it; `microseq.tensor`
    copies, as torch.tensor does, and `microseq.from_numpy` shares, as
    torch.from_numpy does.
    """

    __slots__ = ("data", "grad", "label", "requires_grad", "_op", "_parents", "_vjps",
                 "_scope", "_number", "__weakref__")
    __array_ufunc__ = None  # `ndarray * Tensor` defers to Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, label=None):
        python_numbers = dtype is None and not isinstance(data, np.ndarray | np.generic | Tensor)
        data = np.asarray(data, dtype=dtype)
        if python_numbers and data.dtype.kind == "f":  # the default dtype, like torch.tensor
            data = data.astype(DEFAULT_DTYPE)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got {data.dtype}")
        self.data, self.grad, self.label, self.requires_grad = data, None, label, requires_grad
        self._op, self._parents, self._vjps = "", (), ()
        self._scope, self._number = current_scope(), next(creation_numbers)

    # --- plain properties -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        """The rows along the first axis, each a getitem: `for row in t`, `a, b = t`."""
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t): the values, as numpy sees a torch tensor's."""
        return self.data.astype(dtype or self.data.dtype, copy=bool(copy))

    def numpy(self):
        """The values, as the numpy array itself (shared, not copied)."""
        return self.data

    def item(self):
        """The value of a one-element tensor, as a Python number."""
        return self.data.item()

    def detach(self):
        """The same values (shared, not copied), cut from the graph."""
        return Tensor(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._op}" if self._op else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{grad}{op})"

    def backward(self, grad=None, retain_graph=False):
        """Fill `.grad` of every tensor this one depends on with d(self)/d(tensor).

        The chain rule, in reverse topological order, exactly as
        Value.backward: each node, once every use of it has added its share
        to node.grad, passes vjp(node.grad) on to each input. Leaves
        accumulate across calls, as in PyTorch; intermediate tensors keep
        their .grad too (lessons read dL/dh_t), recomputed on every call.
        Unless retain_graph is true the VJPs are dropped as they are used,
        which frees the arrays they saved.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no graph was built)")
        if grad is None and self.data.size != 1:
            raise RuntimeError(f"backward: grad can be implied only for a single value, "
                               f"got shape {self.shape}; pass grad=")
        grad = np.ones_like(self.data) if grad is None else np.array(  # a copy: VJPs may keep it
            grad.data if isinstance(grad, Tensor) else grad, self.data.dtype)
        if grad.shape != self.shape:
            raise ShapeError(f"backward: grad of shape {grad.shape} for a tensor of shape "
                             f"{self.shape}")
        order = topological_order(self)
        for node in order:
            node.grad = None  # only leaves accumulate across calls
        self.grad = grad
        if backward_hook is not None:
            return backward_hook(order, retain_graph)
        for node in order:
            for parent, vjp in zip(node._parents, take_vjps(node, retain_graph)):
                if vjp is not None and isinstance(parent, Tensor) and parent.requires_grad:
                    share = fit(vjp(node.grad), parent.data, node)
                    parent.grad = share if parent.grad is None else parent.grad + share


def take_vjps(node, retain_graph):
    """node's VJPs, dropped from the node unless retain_graph (frees what they saved)."""
    vjps = node._vjps
    if vjps is None:
        raise RuntimeError(f"backward: the graph through '{node._op}' was already freed by an "
                           "earlier backward(); call backward(retain_graph=True) the first time")
    if not retain_graph:
        node._vjps = None
    return vjps


def fit(grad, data, node=None):
    """A VJP's result made to fit the input it belongs to: summed back to its
    shape (a VJP may return the broadcast shape) and cast to its dtype (a
    float64 input may meet float32 weights). Inside detect_anomaly() it must
    also be finite."""
    if _anomaly:
        check_finite(grad, node._op, node._scope, "gradient")
    grad = _unbroadcast(grad, data.shape)
    return grad if grad.dtype == data.dtype else grad.astype(data.dtype)


def check_finite(array, name, scope, what):
    """Inside detect_anomaly(): raise AnomalyError naming the op if `array` has a NaN or Inf."""
    if not np.isfinite(array).all():
        raise AnomalyError(name + (f" in scope '{scope}'" if scope else "")
                           + f": its {what} became NaN/Inf")


def _unbroadcast(grad, shape):
    """Sum a gradient back to the shape of the input it belongs to: over the
    leading axes broadcasting added, then over the axes that were size 1.
    The one place broadcasting is undone; no op does it by hand."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    ones = tuple(i for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=ones, keepdims=True).reshape(shape)


def op(fn):
    """Make `fn(*arrays, **options) -> (value, vjps)` an op on Tensors.

    Positional arguments are the op's inputs (Tensors, arrays or numbers);
    keyword arguments are options (axis, keepdims...). `vjps` is one function
    per positional input (None for one that gets no gradient), or a single
    function when there is one input.
    """
    name = fn.__name__.lstrip("_")  # _concat(*arrays) is the op behind concat(list)

    def apply(*args, **options):
        # Tensors to arrays; spelled out for the common one and two inputs,
        # since a comprehension here costs as much as a small op's numpy call.
        if len(args) == 2:
            a, b = args
            arrays = (a.data if isinstance(a, Tensor) else a,
                      b.data if isinstance(b, Tensor) else b)
        elif len(args) == 1:
            arrays = (args[0].data if isinstance(args[0], Tensor) else args[0],)
        else:
            arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        try:
            value, vjps = fn(*arrays, **options)
        except (ValueError, IndexError, TypeError) as e:
            shapes = " and ".join(str(getattr(a, "shape", type(a).__name__)) for a in args)
            error = IndexShapeError if isinstance(e, IndexError) else ShapeError
            raise error(f"{name}: {shapes}: {e}") from None
        if _anomaly:
            check_finite(value, name, current_scope(), "value")
        out = Tensor.__new__(Tensor)  # what Tensor(value) makes, without its checks
        out.data, out._op, out.requires_grad = value, name, False
        out.grad = out.label = None
        out._parents = out._vjps = ()
        out._scope, out._number = current_scope(), next(creation_numbers)
        for a in args if _grad_enabled else ():
            if isinstance(a, Tensor) and a.requires_grad:  # then record the graph:
                out.requires_grad = True  # inputs as passed (constants too), a VJP for each
                out._parents, out._vjps = args, (vjps,) if callable(vjps) else vjps
                break
        return out

    functools.update_wrapper(apply, fn)  # its docstring, and __wrapped__ = fn
    apply.__name__ = apply.__qualname__ = name
    return apply


@contextmanager
def no_grad():
    """Build no graph inside: for evaluation and in-place parameter updates."""
    global _grad_enabled
    before, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = before


@contextmanager
def detect_anomaly():
    """Raise at the first op whose value or gradient is NaN/Inf, naming it and
    its scope. Costs a finiteness check per op, so it is off by default."""
    global _anomaly
    before, _anomaly = _anomaly, True
    try:
        yield
    finally:
        _anomaly = before


def is_grad_enabled():
    """False inside no_grad(): ops then record no graph."""
    return _grad_enabled


# --- constructors ----------------------------------------------------------

def tensor(data, requires_grad=False, dtype=None, label=None):
    """A new leaf tensor holding a copy of `data` (numbers, nested lists, an
    array or a Tensor), as torch.tensor: changing one never changes the other.
    Python floats become float32 (DEFAULT_DTYPE); arrays keep their dtype."""
    if isinstance(data, Tensor | np.ndarray | np.generic):
        data = np.array(data, dtype=dtype)
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, label=label)


def from_numpy(array, requires_grad=False):
    """A tensor that shares `array`'s memory, as torch.from_numpy: writing to
    one shows in the other (an optimizer step changes the array too)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy array, got {type(array).__name__}")
    return Tensor(array, requires_grad=requires_grad)


def zeros(*shape, requires_grad=False, dtype=None):
    """A tensor of zeros: zeros(2, 3) or zeros((2, 3)), float32 unless dtype says."""
    return Tensor(np.zeros(_shape(shape), dtype or DEFAULT_DTYPE), requires_grad)


def ones(*shape, requires_grad=False, dtype=None):
    """A tensor of ones: ones(2, 3) or ones((2, 3)), float32 unless dtype says."""
    return Tensor(np.ones(_shape(shape), dtype or DEFAULT_DTYPE), requires_grad)


def randn(*shape, requires_grad=False, dtype=None, rng=None):
    """Standard normal values, from `rng` (a Generator or a seed) or the default generator."""
    rng = default_rng() if rng is None else np.random.default_rng(rng)  # a Generator is kept
    return Tensor(rng.standard_normal(_shape(shape)).astype(dtype or DEFAULT_DTYPE), requires_grad)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
