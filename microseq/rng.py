"""The random generator behind randn(), dropout and the layers' initial weights.

`manual_seed(s)` before building a model makes its weights (and everything
else drawn from the default generator) repeat from run to run.
"""
import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the generator behind randn() and the layers' initial weights."""
    global _rng
    _rng = np.random.default_rng(seed)


def default_rng():
    """The generator randn() and layer initialisers use unless given one."""
    return _rng
