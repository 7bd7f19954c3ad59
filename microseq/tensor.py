"""The tensor engine: Tensor, the `op` decorator, backward, no_grad.

An op is a plain numpy function that returns its value together with its
vector-Jacobian products, one per input:

    @op
    def mul(a, b):
        return a * b, (lambda g: g * b, lambda g: g * a)

`op` turns it into a function on Tensors that records the graph. The VJPs
close over numpy arrays only, never over the output Tensor, so a graph is
freed by reference counting as soon as nothing points at it.
"""
import ctypes
import itertools
from contextlib import contextmanager

import numpy as np

from microseq.scope import current as current_scope

DEFAULT_DTYPE = np.float32
_grad_enabled = True
_rng = np.random.default_rng(0)
_counter = itertools.count()  # creation numbers: a node is always newer than its inputs
_anomaly = False


def _keep_freed_memory():
    """A training step frees a graph of mid-sized arrays and builds the next
    one just like it. By default glibc hands that memory back to the OS and
    page-faults it in again every step (measured: a third to half of an LSTM
    step). Keep it in the process instead, as framework allocators do."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: arrays up to 32 MiB come from the heap
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of freed heap


_keep_freed_memory()


class ShapeError(ValueError):
    """An op was called with inputs whose shapes (or dtypes) do not fit."""


class AnomalyError(FloatingPointError):
    """Inside detect_anomaly(): an op produced a NaN or Inf."""


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "_parents", "_vjp", "_op", "_scope", "label",
                 "_number", "__weakref__")
    __array_ufunc__ = None  # `ndarray * Tensor` defers to Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, label=None):
        if isinstance(data, Tensor):  # a new leaf with a copy of the values, as torch.tensor
            data = data.data.copy()
        if dtype is None and not isinstance(data, np.ndarray | np.generic):
            data = np.asarray(data)
            if data.dtype.kind == "f":  # python floats: the default dtype, like torch.tensor
                data = data.astype(DEFAULT_DTYPE)
        else:
            data = np.asarray(data, dtype=dtype)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = requires_grad
        self._parents = ()
        self._vjp = None
        self._op = ""
        self._scope = current_scope()
        self.label = label
        self._number = next(_counter)

    # --- plain properties -------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def numpy(self):
        return self.data

    def item(self):
        return self.data.item()

    def detach(self):
        """The same values, cut from the graph."""
        return Tensor(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._op}" if self._op else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{grad}{op})"

    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        Intermediate tensors keep their .grad too (so graphs can be coloured by
        gradient and lessons can read dL/dh_t). Unless retain_graph is true the
        VJPs are dropped afterwards, which frees the arrays they saved.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no graph was built)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implied only for a single value, "
                                   f"got shape {self.shape}; pass grad=")
            grad = np.ones_like(self.data)
        else:
            # a copy: VJPs may keep it (fused_cells share work per gradient object)
            grad = np.array(grad.data if isinstance(grad, Tensor) else grad, self.data.dtype)
            if grad.shape != self.shape:
                raise ShapeError(f"backward: grad of shape {grad.shape} for a tensor of shape "
                                 f"{self.shape}")
        self.grad = grad
        owned = set()  # tensors whose .grad array this pass allocated
        deferred = {}  # tensor -> its Scatter and Product contributions, not yet summed
        for node in _topological_order(self):
            if deferred and node in deferred:  # every use of node is done: sum them now
                _settle(node, deferred.pop(node), owned)
            vjps, grad = node._vjp, node.grad
            if vjps is None:
                raise RuntimeError(
                    f"backward: the graph through '{node._op}' was already freed by an earlier "
                    "backward(); call backward(retain_graph=True) the first time")
            if not retain_graph:
                node._vjp = None
            for parent, vjp in zip(node._parents, vjps):
                if vjp is None or not (isinstance(parent, Tensor) and parent.requires_grad):
                    continue  # a constant, or an input that needs no gradient
                contribution = vjp(grad)
                if _anomaly and not np.isfinite(_values(contribution)).all():
                    raise AnomalyError(f"{_where(node)}: its gradient became NaN/Inf")
                if type(contribution) is Scatter or type(contribution) is Product:
                    deferred.setdefault(parent, []).append(contribution)
                    continue
                if (contribution.shape != parent.data.shape
                        or contribution.dtype != parent.data.dtype):
                    contribution = _fit(contribution, parent.data)
                # Only arrays this pass allocated (`owned`) are added into in place: any
                # other array may belong to another node or to the user.
                if parent.grad is None:
                    parent.grad = contribution
                elif parent in owned:
                    parent.grad += contribution
                else:
                    parent.grad = parent.grad + contribution
                    owned.add(parent)
        for leaf, parts in deferred.items():
            _settle(leaf, parts, owned)


class Scatter:
    """A gradient that is zero but for `values` at `index`: what getitem's VJP
    returns. Slicing a (T, ...) tensor once per time step then costs O(T),
    not T full-size arrays of zeros."""

    __slots__ = ("index", "values", "add")

    def __init__(self, index, values, add):
        self.index, self.values, self.add = index, values, add  # add(grad, index, values)


class Product:
    """The gradient a^T g of a matmul's right operand, not yet multiplied out.
    A weight used at every step of a recurrence gets one per step; summed as
    ONE product of the stacked rows, concat(a)^T concat(g), they cost less
    than T small matmuls and T additions (BLAS runs big products faster)."""

    __slots__ = ("a", "g")

    def __init__(self, a, g):
        self.a, self.g = a, g  # (n, k) and (n, m): the gradient is (k, m)


def _settle(tensor, parts, owned):
    """Add the Scatters and Products deferred for `tensor` into its .grad,
    once every use of it has contributed."""
    products = [p for p in parts if type(p) is Product]
    scatters = [p for p in parts if type(p) is Scatter]
    if products:
        if len(products) == 1:
            a, g = products[0].a, products[0].g
        else:
            a = np.concatenate([p.a for p in products])
            g = np.concatenate([p.g for p in products])
        total = _fit(a.T @ g, tensor.data)
        tensor.grad = total if tensor.grad is None else tensor.grad + total
        owned.add(tensor)
    by_row = {s.index: s for s in scatters if type(s.index) is int}
    if scatters and len(by_row) == len(scatters) == len(tensor.data) and all(
            t in by_row for t in range(len(scatters))):
        # x[t] taken once for every t, as a layer runs over a sequence: the
        # gradient is those of the rows, stacked (one copy, no zero-filling).
        total = _fit(np.stack([by_row[t].values for t in range(len(scatters))]), tensor.data)
        tensor.grad = total if tensor.grad is None else tensor.grad + total
        owned.add(tensor)
        return
    for scatter in scatters:  # in place, into an array this pass owns
        if tensor not in owned:
            if tensor.grad is None:
                tensor.grad = np.zeros(tensor.data.shape, tensor.data.dtype)
            else:
                tensor.grad = tensor.grad.copy()  # C-ordered and writable, even from a view
            owned.add(tensor)
        scatter.add(tensor.grad, scatter.index, scatter.values)


def _values(contribution):
    """The numbers of a contribution, for the anomaly check."""
    if type(contribution) is Scatter:
        return contribution.values
    return contribution.g if type(contribution) is Product else contribution


def _fit(grad, data):
    """A gradient in the broadcast shape or another dtype (a float64 input met
    float32 weights), made to fit the input it belongs to."""
    grad = _unbroadcast(np.asarray(grad), data.shape)
    return grad if grad.dtype == data.dtype else grad.astype(data.dtype)


def _topological_order(root):
    """The op nodes behind root, outputs first. A node is always created after
    its inputs, so sorting by creation number is a topological order; finding
    the nodes is a plain stack walk (no recursion: BPTT graphs are deep).
    Stale .grad on these intermediate nodes is cleared: only leaves accumulate
    across backward() calls."""
    found, stack = {root._number: root}, [root]
    while stack:
        for parent in stack.pop()._parents:
            if (isinstance(parent, Tensor) and parent._op and parent.requires_grad
                    and parent._number not in found):
                found[parent._number] = parent
                parent.grad = None
                stack.append(parent)
    return [found[number] for number in sorted(found, reverse=True)]


def _unbroadcast(grad, shape):
    """Sum a gradient back to the shape of the input it belongs to: over the
    leading axes broadcasting added, then over the axes that were size 1.
    The one place broadcasting is undone; no op does it by hand."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if ones:
        grad = grad.sum(axis=ones, keepdims=True)
    return grad.reshape(shape)


def _where(node):
    return f"{node._op}" + (f" in scope '{node._scope}'" if node._scope else "")


def _describe(args):
    """'(3, 4) and (5,)': the shapes an op was given, for error messages."""
    parts = []
    for a in args:
        a = a.data if isinstance(a, Tensor) else a
        parts.append(str(a.shape) if hasattr(a, "shape") else type(a).__name__)
    return " and ".join(parts)


def op(fn):
    """Make `fn(*arrays, **options) -> (value, vjps)` an op on Tensors.

    Positional arguments are the op's inputs (Tensors, arrays or numbers);
    keyword arguments are options (axis, keepdims...). `vjps` is one function
    per positional input, or a single function when there is one input.
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
            a = args[0]
            arrays = (a.data if isinstance(a, Tensor) else a,)
        else:
            arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        try:
            value, vjps = fn(*arrays, **options)
        except (ValueError, IndexError, TypeError) as e:
            raise ShapeError(f"{name}: {_describe(args)}: {e}") from None
        if _anomaly and not np.isfinite(value).all():
            where = f" in scope '{current_scope()}'" if current_scope() else ""
            raise AnomalyError(f"{name}{where}: its value became NaN/Inf")
        out = Tensor.__new__(Tensor)
        out.data = value
        out.grad = out.label = out._vjp = None
        out._op = name
        out._scope = current_scope()
        out._number = next(_counter)
        out.requires_grad = False
        out._parents = ()
        if _grad_enabled:
            for a in args:
                if isinstance(a, Tensor) and a.requires_grad:
                    # inputs as passed (constants included); vjps aligned with them
                    out.requires_grad = True
                    out._parents = args
                    out._vjp = (vjps,) if callable(vjps) else vjps
                    break
        return out

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = fn.__doc__
    apply.__wrapped__ = fn
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
    return _grad_enabled


# --- constructors ----------------------------------------------------------

def tensor(data, requires_grad=False, dtype=None, label=None):
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, label=label)


def zeros(*shape, requires_grad=False, dtype=None):
    return Tensor(np.zeros(_shape(shape), dtype or DEFAULT_DTYPE), requires_grad)


def ones(*shape, requires_grad=False, dtype=None):
    return Tensor(np.ones(_shape(shape), dtype or DEFAULT_DTYPE), requires_grad)


def manual_seed(seed):
    """Reseed the generator behind randn() and the layers' initial weights."""
    global _rng
    _rng = np.random.default_rng(seed)


def default_rng():
    """The generator randn() and layer initialisers use unless given one."""
    return _rng


def randn(*shape, requires_grad=False, dtype=None, rng=None):
    """Standard normal values, from `rng` (a Generator or a seed) or the default generator."""
    if rng is None:
        rng = _rng
    elif not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return Tensor(rng.standard_normal(_shape(shape)).astype(dtype or DEFAULT_DTYPE), requires_grad)


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
