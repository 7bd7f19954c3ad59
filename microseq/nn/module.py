"""Module and Parameter: layers that find their own weights.

A Module's parameters are discovered from its attributes, in the order they
were assigned: a Parameter, a Module (its parameters get the attribute name as
a prefix), or a list/tuple of Modules (prefixed by position). Names follow
PyTorch, so `model.state_dict()` has keys like `encoder.weight_ih_l0` and
`layers.0.weight`.
"""
from collections import namedtuple

import numpy as np

from microseq.tensor import Tensor


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns: the parameter names it did not find in
    the state, and the names in the state the model does not have."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


class Parameter(Tensor):
    """A Tensor that a Module trains: it always requires grad.

    Args:
        data: the initial values: a numpy array (its dtype kept) or Python
            numbers (stored as float32).
        dtype: a dtype to convert them to (optional).
        label: a name for drawings; a Module names its parameters itself.

    Assigned as an attribute of a Module, it is found by `parameters()` and
    `named_parameters()` and saved by `state_dict()`.
    """

    __slots__ = ()

    def __init__(self, data, dtype=None, label=None):
        super().__init__(data, requires_grad=True, dtype=dtype, label=label)


class Module:
    """Base class of every layer and model.

    A subclass assigns its Parameters and sub-Modules as attributes in
    `__init__` and defines `forward`; `model(x)` calls `model.forward(x)`::

        class Tagger(Module):
            def __init__(self, vocab_size, hidden_size, num_tags):
                self.embed = Embedding(vocab_size, hidden_size)
                self.rnn = RNN(hidden_size, hidden_size, batch_first=True)
                self.head = Linear(hidden_size, num_tags)

            def forward(self, ids):              # ids: (B, T) integers
                h, _ = self.rnn(self.embed(ids))  # (B, T, H)
                return self.head(h)               # (B, T, num_tags)

    Parameters are found in assignment order and named by their path
    (`rnn.weight_ih_l0`), as in PyTorch: `parameters()`, `named_parameters()`,
    `state_dict()` / `load_state_dict()`, `zero_grad()`, `train()` / `eval()`
    (which Dropout obeys) and `to(dtype)`.
    """

    training = True  # a class default, so subclasses need not call super().__init__()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __setattr__(self, name, value):
        # Name a parameter when it is assigned, so a graph drawn before any
        # named_parameters() call still shows it; named_parameters() then
        # gives it its full dotted name.
        if isinstance(value, Parameter) and value.label is None:
            value.label = name
        object.__setattr__(self, name, value)

    # --- the tree of modules and parameters --------------------------------

    def named_children(self):
        """(name, module) for each direct submodule, lists expanded as `name.i`."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def children(self):
        return (module for _, module in self.named_children())

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ("") and every descendant."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_parameters(self):
        """(dotted name, Parameter) pairs in assignment order. A parameter
        shared by two modules (tied weights) is listed once, like PyTorch."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    value.label = f"{prefix}.{name}" if prefix else name
                    yield value.label, value

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, dtype):
        """Cast every parameter to dtype in place (float64 for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    # --- checkpoints --------------------------------------------------------

    def state_dict(self):
        """{name: a copy of the parameter's array}, in parameter order."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters of the same name; returns the names
        missing from `state` and those in it the model does not have, as
        IncompatibleKeys(missing_keys, unexpected_keys), as PyTorch does.
        With strict (the default) either kind is an error; a wrong shape
        always is. Nothing is changed unless everything fits."""
        params = dict(self.named_parameters())
        keys = IncompatibleKeys([name for name in params if name not in state],
                                [name for name in state if name not in params])
        problems = []
        if strict and keys.missing_keys:
            problems.append(f"missing keys: {', '.join(keys.missing_keys)}")
        if strict and keys.unexpected_keys:
            problems.append(f"unexpected keys: {', '.join(keys.unexpected_keys)}")
        arrays = {}
        for name, value in state.items():
            if name in params:
                value = np.asarray(value.data if isinstance(value, Tensor) else value)
                if value.shape != params[name].shape:
                    problems.append(f"{name}: expected shape {params[name].shape}, "
                                    f"got {value.shape}")
                arrays[name] = value
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for name, value in arrays.items():
            params[name].data[...] = value
        return keys

    # --- printing -----------------------------------------------------------

    def extra_repr(self):
        """The constructor arguments worth showing, e.g. "32, 128, num_layers=2"."""
        return ""

    def __repr__(self):
        children = list(self.named_children())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return head + "\n" + "\n".join(lines) + "\n)"
