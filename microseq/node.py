"""What the two engines share: a node of the graph, and the order backward() visits nodes in.

A node, a `scalar.Value` or a `tensor.Tensor`, stores:

    data       its value (a float, or a numpy array)
    grad       d(root)/d(node) once root.backward() has run
    label      an optional name, for drawings
    _op        the name of the op that made it ("" for a leaf)
    _parents   the op's inputs, in order (a Tensor op may also take arrays and numbers)
    _vjps      one entry per input: how the output's grad becomes that input's.
               A Value keeps the local derivative d out / d input (a number the
               grad is multiplied by); a Tensor keeps a function, g -> its share
    _scope     the scope it was built in (see microseq.scope)
    _number    its creation number: a node is always created after its inputs

and shows the public, read-only protocol graph.py draws with:
`parents` (the input nodes, constants left out), `op`, `scope`, `label`,
`data`, `grad`.
"""
import itertools

creation_numbers = itertools.count()  # shared, so that numbers never repeat in a process


class Node:
    """The base both engines' nodes share: the drawing protocol, nothing else."""

    __slots__ = ()

    @property
    def parents(self):
        """The nodes this one was computed from (numbers and arrays left out)."""
        return tuple(p for p in self._parents if isinstance(p, Node))

    @property
    def op(self):
        """The name of the op that made this node; "" for a leaf."""
        return self._op

    @property
    def scope(self):
        """The scope the node was built in ("encoder/t=3"), or None."""
        return self._scope


def topological_order(root):
    """The nodes made by ops that root depends on, root first, newest to oldest.

    A node is always created after its inputs, so sorting by creation number
    is a topological order: every node comes before the inputs it passes its
    gradient to. Finding the nodes is a plain stack walk (no recursion: BPTT
    graphs are deep). Leaves, and nodes that recorded no inputs, are left
    out: they have nothing to pass on.
    """
    found = {root._number: root} if root._parents else {}
    stack = list(found.values())
    while stack:
        for parent in stack.pop()._parents:
            if isinstance(parent, Node) and parent._parents and parent._number not in found:
                found[parent._number] = parent
                stack.append(parent)
    return [found[number] for number in sorted(found, reverse=True)]
