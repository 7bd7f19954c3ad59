"""Name scopes: ops built inside `with scope("t=3"):` are tagged "t=3".

Both engines read `current()` when they build a node, and graph.py draws
every scope as a cluster, so an unrolled RNN renders one box per time step.
Nested scopes join with "/": `encoder/t=3`.
"""

_current = None


def current():
    """The scope new nodes are tagged with, or None outside any scope."""
    return _current


class scope:
    """`with scope(name):` tags every node built inside with name. A class
    rather than a generator context manager: layers enter one per time step,
    and this costs a fraction as much."""

    __slots__ = ("name", "outer")

    def __init__(self, name):
        self.name = str(name)

    def __enter__(self):
        global _current
        self.outer = _current
        _current = self.name if _current is None else f"{_current}/{self.name}"

    def __exit__(self, *exc):
        global _current
        _current = self.outer
