"""The scalar engine: reverse-mode autograd on single numbers, in one class.

Every op computes its output and, right beside it, the local derivative of
that output with respect to each input (d out / d input). backward() walks the
graph from the root and, by the chain rule, adds `local * out.grad` into each
input's grad; a value used twice simply receives two contributions.

A node keeps its inputs and those local derivatives, never a closure over
itself, so a graph holds no reference cycles: reference counting frees it as
soon as the last output is dropped, and Python's cycle collector never has to
free it. `__slots__` keeps each node small.

The tensor engine (microseq.tensor) is the same idea with numpy arrays: the
same node fields, the same topological order, and a backward() that reads
line for line like the one here (see microseq.node).
"""
import math
import numbers
import sys

from microseq.node import Node, creation_numbers, topological_order
from microseq.scope import current

_EXP_LIMIT = math.log(sys.float_info.max)  # e**x overflows a float above this


class Value(Node):
    """A number that remembers how it was computed.

    `data` is the number, `grad` is d(root)/d(self) after `root.backward()`,
    `label` an optional name for drawings. The other fields are those every
    node has (see microseq.node): `_op` names the op that made this value
    ("" for a leaf), `_parents` are its inputs and `_vjps` the local
    derivatives of this value with respect to each, `_scope` the scope it was
    built in, `_number` its creation number.
    """

    __slots__ = ("data", "grad", "label", "_op", "_parents", "_vjps", "_scope", "_number")

    def __init__(self, data, _op="", _parents=(), _vjps=(), label=None):
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self._op, self._parents, self._vjps = _op, _parents, _vjps
        self._scope = current()
        self._number = next(creation_numbers)

    def __repr__(self):
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    # --- ops: the output, the op, then each input and d out / d input --------

    def __add__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data + other.data, "+", (self, other), (1.0, 1.0))

    def __sub__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data - other.data, "-", (self, other), (1.0, -1.0))

    def __mul__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data * other.data, "*", (self, other), (other.data, self.data))

    def __truediv__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        a, b = self.data, other.data
        return Value(a / b, "/", (self, other), (1.0 / b, -a / (b * b)))

    def __neg__(self):
        return Value(-self.data, "neg", (self,), (-1.0,))

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
        return Value(x ** n, f"**{n:g}", (self,), (n * x ** (n - 1) if n else 0.0,))

    def __rpow__(self, base):
        # base**x = exp(x ln base), so d/dx = base**x * ln(base)
        if base <= 0:
            raise ValueError(f"**: a number raised to a Value needs a positive base, got {base}")
        out = base ** self.data
        return Value(out, f"{base:g}**", (self,), (out * math.log(base),))

    def exp(self):
        if self.data > _EXP_LIMIT:
            raise OverflowError(f"exp: e**{self.data:g} is too large for a float "
                                f"(the largest exponent is about {_EXP_LIMIT:.2f})")
        e = math.exp(self.data)
        return Value(e, "exp", (self,), (e,))

    def log(self):
        x = self.data
        if x <= 0:
            raise ValueError(f"log: input must be positive, got {x}")
        return Value(math.log(x), "log", (self,), (1.0 / x,))

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, "tanh", (self,), (1.0 - t * t,))

    def sigmoid(self):
        x = self.data
        # two forms so that exp never overflows, whatever the sign of x
        if x >= 0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return Value(s, "sigmoid", (self,), (s * (1.0 - s),))

    def relu(self):
        # the derivative at exactly 0 is taken to be 0, as in PyTorch
        if self.data > 0:
            return Value(self.data, "relu", (self,), (1.0,))
        return Value(0.0, "relu", (self,), (0.0,))

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

        The chain rule, in reverse topological order: each node, once every
        use of it has added its share to node.grad, passes local * node.grad
        on to each input; a value used twice simply receives two shares.
        Like PyTorch, gradients accumulate in leaves (values no op made, such
        as parameters): calling backward() twice, or on two losses, adds up,
        so reset them (`p.grad = 0.0`) between optimiser steps. Values made by
        ops are recomputed from zero on every call, never left stale.
        """
        order = topological_order(self)
        for node in order:
            node.grad = 0.0  # only leaves accumulate across calls
        self.grad += 1.0
        for node in order:
            for parent, local in zip(node._parents, node._vjps):
                parent.grad += local * node.grad
