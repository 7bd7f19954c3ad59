"""Name scopes: ops built inside `with scope("t=3"):` are tagged "t=3".

Both engines read `current()` when they build a node, and graph.py draws
every scope as a cluster, so an unrolled RNN renders one box per time step.
Nested scopes join with "/": `encoder/t=3`.
"""
from contextlib import contextmanager

_stack = []
_current = None


def current():
    """The scope new nodes are tagged with, or None outside any scope."""
    return _current


@contextmanager
def scope(name):
    global _current
    _stack.append(str(name))
    _current = "/".join(_stack)
    try:
        yield
    finally:
        _stack.pop()
        _current = "/".join(_stack) or None
