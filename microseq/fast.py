"""The speed devices, kept beside the plain engine, and the one switch for all of them.

tensor.py and ops.py are the plain calculus: backward() calls every VJP and
adds the results up. That is the whole idea, and it is all a reader needs.
This module makes the same computation cheaper where a recurrent network
spends its time, without changing a single result:

1. Deferred weight gradients. A weight used at every step of a recurrence
   (W_hh, an output layer's W) gets one gradient a_t^T g_t per step. They
   are kept as `Product`s and summed as ONE product of the stacked rows,
   concat(a)^T concat(g), which BLAS runs faster than T small matmuls and T
   additions.
2. Sparse slice gradients. getitem's plain VJP is a zero array of the
   input's size with g added at the index; a (T, ...) tensor sliced once per
   time step then costs T full-size arrays. Here it is a `Scatter`, added in
   place; and when every row x[t] was taken once, the gradient is the rows'
   gradients stacked (one copy, no zero-filling).
3. Owned buffers. A gradient array this pass allocated is added into in
   place instead of being replaced by a new sum.
4. Fused recurrent cells (microseq.fused_cells): nn's RNN, LSTM and GRU run
   each time step as one op with a hand-derived backward; switched off,
   they build their steps from the primitive ops.
5. `keep_freed_memory()`: an allocator setting, made only when called.

All of it is on by default. `MICROSEQ_FAST=0` in the environment, or
`microseq.fast.enable(False)` in code, switches every device off; the tests
run both ways and check that values and gradients agree. The core reaches
this module through one hook, `microseq.tensor.backward_hook`, which
enable() sets to `backward_pass` below.
"""
import ctypes
import importlib
import os
from contextlib import contextmanager

import numpy as np

from microseq.tensor import Tensor

tensor = importlib.import_module("microseq.tensor")  # the module (microseq.tensor is a function)

_SWITCH = {"1": True, "on": True, "true": True, "yes": True,
           "0": False, "off": False, "false": False, "no": False}
_enabled = False


def enable(on=True):
    """Switch every speed device on (the default) or off; returns the previous setting."""
    global _enabled
    before, _enabled = _enabled, bool(on)
    tensor.backward_hook = backward_pass if _enabled else None
    return before


def enabled():
    """Whether the speed devices are on."""
    return _enabled


@contextmanager
def switched(on):
    """Run a block with the speed devices on or off, then restore the setting."""
    before = enable(on)
    try:
        yield
    finally:
        enable(before)


def from_environment():
    """The setting MICROSEQ_FAST asks for: on unless it is 0 (or off, false, no)."""
    value = os.environ.get("MICROSEQ_FAST", "1").strip().lower() or "1"
    if value not in _SWITCH:
        raise ValueError(f"MICROSEQ_FAST={value!r}: use 1 (speed devices on, the default) "
                         "or 0 (the plain path only)")
    return _SWITCH[value]


def keep_freed_memory():
    """Ask glibc to keep freed memory in the process (when the devices are on).

    A training step frees a graph of mid-sized arrays and builds the next one
    just like it. By default glibc hands that memory back to the OS and
    page-faults it in again every step (measured: a third to half of an LSTM
    step). Framework allocators keep it; this does the same. It changes a
    process-wide setting, so it is never done on import: lessons and the
    benchmarks call it, as a notebook may. Returns whether it was applied.
    """
    if not _enabled:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False  # not glibc: nothing to tune
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: arrays up to 32 MiB come from the heap
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of freed heap
    return True


# --- deferred gradients -----------------------------------------------------------

class Scatter:
    """A gradient that is zero but for `values` at `index`, not yet written out.
    `add(grad, index, values)` adds it into a gradient array in place."""

    __slots__ = ("index", "values", "add")

    def __init__(self, index, values, add):
        self.index, self.values, self.add = index, values, add


class Product:
    """The gradient a^T g of a matmul's right operand, not yet multiplied out:
    a (n, k) and g (n, m) give a (k, m) gradient."""

    __slots__ = ("a", "g")

    def __init__(self, a, g):
        self.a, self.g = a, g


def add_slice(grad, index, values):
    grad[index] += values  # a basic index selects each element at most once


def _add_rows(grad, ids, values):
    """grad[ids[j]] += values[j], repeats summed. np.add.at over whole rows is
    slow; over the flat array with one index per element it takes numpy's
    fast path."""
    row = grad[0].size if grad.shape[0] else 0
    flat = ((ids.reshape(-1, 1) % grad.shape[0]) * row + np.arange(row)).ravel()
    np.add.at(grad.reshape(-1), flat, values.reshape(-1))


def _getitem_share(node, i, g):
    """getitem's input gradient as a Scatter."""
    index = node._parents[1]
    index = index.data if isinstance(index, Tensor) else index
    if isinstance(index, np.ndarray) and index.dtype.kind in "iu":
        return Scatter(index, g, _add_rows)
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, list | np.ndarray) for p in parts):
        return Scatter(index, g, np.add.at)  # `grad[index] += g` would drop repeats
    return Scatter(index, g, add_slice)


def _matmul_share(node, i, g):
    """matmul's right-operand gradient as a Product, when that operand is 2-D:
    a (..., n, k) @ b (k, m) has rows a.reshape(-1, k), and b's gradient is
    rows^T g.reshape(-1, m), as ops.matmul computes it."""
    if i != 1 or node._parents[1].ndim != 2:
        return None
    a = node._parents[0]
    a = a.data if isinstance(a, Tensor) else np.asarray(a)
    return Product(a.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1]))


_DEFERRED = {"getitem": _getitem_share, "matmul": _matmul_share}  # op -> its share


# --- the pass -----------------------------------------------------------------------

def backward_pass(order, retain_graph):
    """Tensor.backward's loop over the same nodes, with the devices above.
    Written out rather than calling helpers per edge: a chain of small ops
    spends as much time here as in numpy."""
    owned = set()  # tensors whose .grad array this pass allocated: safe to add into
    deferred = {}  # tensor -> its Scatter and Product shares, not yet summed
    take_vjps, fit, anomaly = tensor.take_vjps, tensor.fit, tensor._anomaly
    for node in order:
        if deferred and node in deferred:  # every use of node is in: sum them now
            _settle(node, deferred.pop(node), owned)
        rule, grad = _DEFERRED.get(node._op), node.grad
        for i, (parent, vjp) in enumerate(zip(node._parents, take_vjps(node, retain_graph))):
            if vjp is None or not (isinstance(parent, Tensor) and parent.requires_grad):
                continue
            share = None if rule is None else rule(node, i, grad)
            if share is None:
                share = vjp(grad)
            if type(share) is Scatter or type(share) is Product:
                if anomaly:
                    values = share.values if type(share) is Scatter else share.g
                    tensor.check_finite(values, node._op, node._scope, "gradient")
                deferred.setdefault(parent, []).append(share)
                continue
            data = parent.data
            if anomaly or share.shape != data.shape or share.dtype != data.dtype:
                share = fit(share, data, node)
            if parent.grad is None:  # _add(parent, share, owned), spelled out
                parent.grad = share
            elif parent in owned:
                parent.grad += share
            else:
                parent.grad = parent.grad + share
                owned.add(parent)
    for leaf, shares in deferred.items():
        _settle(leaf, shares, owned)


def _add(t, share, owned, fresh=False):
    """t.grad += share, in place only into an array this pass allocated (a
    `fresh` share is one): any other array may belong to another node or to
    the user."""
    if t.grad is None:
        t.grad = share
        if fresh:
            owned.add(t)
    elif t in owned:
        t.grad += share
    else:
        t.grad = t.grad + share
        owned.add(t)


def _settle(t, shares, owned):
    """Add the Scatters and Products deferred for `t` into its .grad, once
    every use of it has contributed."""
    products = [p for p in shares if type(p) is Product]
    scatters = [p for p in shares if type(p) is Scatter]
    if products:
        if len(products) == 1:
            a, g = products[0].a, products[0].g
        else:
            a = np.concatenate([p.a for p in products])
            g = np.concatenate([p.g for p in products])
        _add(t, tensor.fit(a.T @ g, t.data), owned, fresh=True)
    by_row = {s.index: s for s in scatters if type(s.index) is int}
    if scatters and len(by_row) == len(scatters) == len(t.data) and all(
            row in by_row for row in range(len(scatters))):
        # x[t] taken once for every t, as a layer runs over a sequence: the
        # gradient is those of the rows, stacked (one copy, no zero-filling).
        rows = np.stack([by_row[row].values for row in range(len(scatters))])
        _add(t, tensor.fit(rows, t.data), owned, fresh=True)
        return
    for scatter in scatters:  # in place, into an array this pass owns
        if t not in owned:
            t.grad = (np.zeros(t.data.shape, t.data.dtype) if t.grad is None
                      else t.grad.copy())  # C-ordered and writable, even from a view
            owned.add(t)
        scatter.add(t.grad, scatter.index, scatter.values)


enable(from_environment())
