"""microseq: a minimal reverse-mode autograd engine and tiny sequence models."""
from microseq import fast, functional, graph
from microseq.gradcheck import GradcheckError, gradcheck, gradcheck_scalar
from microseq.ops import (
    add, binary_cross_entropy_with_logits, concat, cross_entropy, div, exp, gelu, getitem, log,
    log_softmax, masked_softmax, matmul, max, maximum, mean, mul, neg, pow, relu, reshape,
    sigmoid, softmax, split, stack, sub, sum, tanh, transpose, where,
)
from microseq.scalar import Value
from microseq.scope import scope
from microseq.tensor import (
    AnomalyError, ShapeError, Tensor, default_rng, detect_anomaly, from_numpy, is_grad_enabled,
    manual_seed, no_grad, ones, op, randn, tensor, zeros,
)

__all__ = [
    "AnomalyError", "GradcheckError", "ShapeError", "Tensor", "Value", "add",
    "binary_cross_entropy_with_logits", "concat", "cross_entropy", "default_rng", "detect_anomaly",
    "div", "exp", "fast", "from_numpy", "functional", "gelu", "getitem", "gradcheck",
    "gradcheck_scalar", "graph", "is_grad_enabled", "log", "log_softmax", "manual_seed",
    "masked_softmax", "matmul", "max", "maximum", "mean", "mul", "neg", "no_grad", "ones", "op",
    "pow", "randn", "relu", "reshape", "scope", "sigmoid", "softmax", "split", "stack", "sub",
    "sum", "tanh", "tensor", "transpose", "where", "zeros",
]
