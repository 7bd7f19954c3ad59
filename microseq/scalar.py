"""The scalar engine: reverse-mode autograd on single numbers, in one class.

Every op computes its output and, right beside it, the local derivative of
that output with respect to each input (d out / d input). backward() walks the
graph from the root and, by the chain rule, adds `local * out.grad` into each
input's grad; a value used twice simply receives two contributions.

A node keeps its inputs and those local derivatives, never a closure over
itself, so a graph holds no reference cycles: reference counting frees it as
soon as the last output is dropped, and Python's cycle collector never has to
free it. That, with `__slots__` and one object per op, makes this engine fast.
"""
import math
import numbers

from microseq.scope import current


class Value:
    """A number that remembers how it was computed.

    `data` is the number, `grad` is d(root)/d(self) after `root.backward()`,
    `label` an optional name for drawings. `_op` names the op that made this
    value ("" for a leaf), `_a` and `_b` are its one or two inputs and `_da`,
    `_db` the partial derivatives of this value with respect to them; `_scope`
    is the scope it was built in (see microseq.scope).

    Inputs sit in slots rather than in tuples so that an op allocates one
    object, not three: fewer objects for Python's garbage collector to walk
    while a large graph is alive (a third of the MLP benchmark's time).
    """

    __slots__ = ("_a", "_b", "_da", "_db", "_op", "_scope", "data", "grad", "label")

    def __init__(self, data, _op="", _a=None, _da=0.0, _b=None, _db=0.0, label=None):
        self.data = float(data)
        self.grad = 0.0
        self._op, self._a, self._da, self._b, self._db = _op, _a, _da, _b, _db
        self._scope = current()
        self.label = label

    @property
    def _parents(self):
        """The inputs of the op that made this value (graph.py draws them)."""
        return tuple(p for p in (self._a, self._b) if p is not None)

    def __repr__(self):
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    # --- ops: the output, the op, then each input and d out / d input --------

    def __add__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data + other.data, "+", self, 1.0, other, 1.0)

    def __sub__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data - other.data, "-", self, 1.0, other, -1.0)

    def __mul__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data * other.data, "*", self, other.data, other, self.data)

    def __truediv__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        a, b = self.data, other.data
        return Value(a / b, "/", self, 1.0 / b, other, -a / (b * b))

    def __neg__(self):
        return Value(-self.data, "neg", self, -1.0)

    def __pow__(self, n):
        if not isinstance(n, numbers.Real):
            raise TypeError(
                f"**: the exponent must be a number, got {type(n).__name__}; "
                "for a Value exponent write (x.log() * y).exp()")
        x = self.data
        if not float(n).is_integer() and x <= 0:
            raise ValueError(f"**: base must be positive for the non-integer exponent {n}, got {x}")
        if n < 0 and x == 0:
            raise ValueError(f"**: 0.0 cannot be raised to the negative power {n}")
        # d/dx x**n = n x**(n-1); written so that n = 0 needs no x**-1 at x = 0
        return Value(x ** n, f"**{n:g}", self, n * x ** (n - 1) if n else 0.0)

    def __rpow__(self, base):
        # base**x = exp(x ln base), so d/dx = base**x * ln(base)
        if base <= 0:
            raise ValueError(f"**: a number raised to a Value needs a positive base, got {base}")
        out = base ** self.data
        return Value(out, f"{base:g}**", self, out * math.log(base))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, "exp", self, e)

    def log(self):
        x = self.data
        if x <= 0:
            raise ValueError(f"log: input must be positive, got {x}")
        return Value(math.log(x), "log", self, 1.0 / x)

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, "tanh", self, 1.0 - t * t)

    def sigmoid(self):
        x = self.data
        # two forms so that exp never overflows, whatever the sign of x
        if x >= 0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return Value(s, "sigmoid", self, s * (1.0 - s))

    def relu(self):
        # the derivative at exactly 0 is taken to be 0, as in PyTorch
        if self.data > 0:
            return Value(self.data, "relu", self, 1.0)
        return Value(0.0, "relu", self, 0.0)

    # numbers on the left: 2 + x, 2 - x, 2 * x, 2 / x
    def __radd__(self, other):
        return Value(other) + self

    def __rsub__(self, other):
        return Value(other) - self

    def __rmul__(self, other):
        return Value(other) * self

    def __rtruediv__(self, other):
        return Value(other) / self

    # --- the backward pass ----------------------------------------------------

    def backward(self):
        """Fill `.grad` of every value this one depends on with d(self)/d(value).

        Like PyTorch, gradients accumulate in leaves (values no op made, such
        as parameters): calling backward() twice, or on two losses, adds up, so
        reset them (`p.grad = 0.0`) between optimiser steps. Values made by ops
        are recomputed from zero on every call, never left stale. The root
        receives gradient 1 (it is accumulated too when the root is a leaf).
        """
        order = self._topological_order()
        self.grad += 1.0
        for v in reversed(order):
            if v._a is None:  # a leaf root: nothing to propagate
                continue
            g = v.grad
            v._a.grad += v._da * g
            if v._b is not None:
                v._b.grad += v._db * g

    def _topological_order(self):
        """The values made by ops that self depends on (and self), inputs first.

        Depth-first with an explicit stack rather than recursion, so that a
        chain of any length fits. Their grads are reset on the way, so that
        only leaves accumulate across backward() calls.
        """
        order, seen = [], set()
        stack = [self]
        while stack:
            v = stack.pop()
            if v is None:  # a marker: the inputs of the value below it are all in order
                v = stack.pop()
                if v._a is not None:
                    v.grad = 0.0
                order.append(v)
            elif v not in seen:
                seen.add(v)
                stack += (v, None)  # v comes back, after the marker, once its inputs are done
                for p in (v._a, v._b):
                    # leaves have nothing to propagate to: leave them out
                    if p is not None and p._a is not None and p not in seen:
                        stack.append(p)
        return order
