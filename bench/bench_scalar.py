"""Scalar engine benchmarks: microseq's Value against micrograd's closure style.

Two workloads, each forward + backward on a freshly built graph, timed as the
median of several repeats after a warm-up, with Python's garbage collector on
(as in real use):

- micrograd's demo: a 2-16-16-1 ReLU MLP over 100 two-moons points, SVM
  max-margin loss plus L2 (about 70,000 nodes);
- a chain of 100,000 ops.

The reference is the classic design in which every op stores a `_backward`
closure over its output. Closure and output refer to each other, so every
graph is a heap of reference cycles that only the cycle collector can free;
the collector then runs over and over while the graph grows. Value keeps plain
numbers instead (see microseq/scalar.py).
"""
import gc
import itertools
import random
import statistics
import time

from microseq.data.moons import make_moons
from microseq.scalar import Value


class ClosureValue:
    """The reference: one `_backward` closure per op (iterative sort, so deep graphs work)."""

    def __init__(self, data, _children=()):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)

    def __add__(self, other):
        other = other if isinstance(other, ClosureValue) else ClosureValue(other)
        out = ClosureValue(self.data + other.data, (self, other))

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, ClosureValue) else ClosureValue(other)
        out = ClosureValue(self.data * other.data, (self, other))

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = ClosureValue(self.data if self.data > 0 else 0.0, (self,))

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
            elif v not in seen:
                seen.add(v)
                stack.append((v, True))
                stack.extend((p, False) for p in v._prev)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()


def make_mlp(value, sizes, rng):
    """micrograd's MLP as plain lists: per layer, a (weights, bias) pair per neuron."""
    return [[([value(rng.uniform(-1, 1)) for _ in range(n_in)], value(0.0)) for _ in range(n_out)]
            for n_in, n_out in itertools.pairwise(sizes)]


def mlp_loss(value, layers, points):
    """The loss of micrograd's demo: mean SVM max-margin loss + 1e-4 * L2."""
    scores = []
    for a, b, _ in points:
        x = [value(a), value(b)]
        for i, layer in enumerate(layers):
            acts = [sum((wi * xi for wi, xi in zip(w, x, strict=True)), bias) for w, bias in layer]
            x = acts if i == len(layers) - 1 else [act.relu() for act in acts]
        scores.append(x[0])
    losses = [(1 + -label * score).relu()
              for (_, _, label), score in zip(points, scores, strict=True)]
    params = [p for layer in layers for w, bias in layer for p in (*w, bias)]
    return sum(losses) * (1.0 / len(losses)) + 1e-4 * sum(p * p for p in params)


def chain(value, n=100_000):
    x = value(0.5)
    v = x
    for _ in range(n // 2):
        v = v * 0.999 + 0.001
    return v


def _median_ms(build, repeats):
    """Median time of build().backward() over `repeats` runs, after a warm-up.

    Freeing the graph is left out of the timing for both engines: Value's
    graph is freed by reference counting, the reference's only by the cycle
    collector, at some later time.
    """
    times = []
    for _ in range(repeats + 1):
        gc.collect()  # every run starts from the same clean heap; the collector stays on
        start = time.perf_counter()
        root = build()
        root.backward()
        times.append(time.perf_counter() - start)
        del root
    return 1000 * statistics.median(times[1:])


def run(repeats=5):
    """Time both workloads for Value and for the closure reference.

    Returns a list of dicts {name, ms, reference, reference_ms, ratio}, where
    ratio = ms / reference_ms (below 1 means microseq is faster).
    """
    points = make_moons(100, random.Random(0))

    def mlp(value):
        return mlp_loss(value, make_mlp(value, [2, 16, 16, 1], random.Random(0)), points)

    workloads = {"scalar MLP 2-16-16-1, 100 points, fwd+bwd": mlp,
                 "scalar chain of 100,000 ops, fwd+bwd": chain}
    results = []
    for name, build in workloads.items():
        ms, ref_ms = (_median_ms(lambda v=v, build=build: build(v), repeats)
                      for v in (Value, ClosureValue))
        results.append({"name": name, "ms": round(ms, 2), "reference": "micrograd-style closures",
                        "reference_ms": round(ref_ms, 2), "ratio": round(ms / ref_ms, 3)})
    return results
