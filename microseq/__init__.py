"""microseq: a minimal reverse-mode autograd engine and tiny sequence models.

Learn sequence models by building them: two autograd engines small enough to
read, layers in PyTorch's image, and a curriculum of runnable lessons (RNN,
backpropagation through time, LSTM, GRU, word2vec, seq2seq, attention, the
Transformer, BERT-style pretraining, image captioning with attention).

The engines
    Value (microseq.scalar)     one number that remembers how it was made;
                                lesson 0 builds everything from it.
    Tensor (microseq.tensor)    a numpy array with a gradient: ms.tensor(x,
                                requires_grad=True), loss.backward(), x.grad.
    ops (microseq.ops)          the primitive ops (matmul, tanh, softmax,
                                cross_entropy, ...), each a numpy function with
                                its vector-Jacobian products, also as ms.<op>.
    gradcheck, gradcheck_scalar autograd against finite differences.
    scope, graph.draw           name the parts of a computation and draw its
                                graph, coloured by gradient (graphviz).
    microseq.fast               the speed devices beside the plain engine;
                                MICROSEQ_FAST=0 switches them all off.

Building models
    microseq.nn          Module, Parameter, Linear, Embedding, Dropout, RNN,
                         LSTM, GRU and their cells, DotAttention,
                         AdditiveAttention, MultiheadAttention, LayerNorm,
                         TransformerEncoder(Layer), Conv2d: PyTorch's names,
                         arguments and shapes.
    microseq.functional  linear, dropout, mse_loss.
    microseq.optim       SGD, Adam, clip_grad_norm_.
    microseq.train       a training loop with evaluation, learning-rate
                         schedules and checkpoints.
    microseq.data        corpora shipped with Python, vocabularies, word tokens
                         and masking, generated tasks (addition, dates, the
                         adding problem, scenes of shapes), batching.
    microseq.models      the lessons' models, ready to import.
    microseq.reference   hand-derived numpy forward and backward passes.

The lessons
    lessons/NN_topic.py, run with `make lesson-N` (`ARGS=--quick` for seconds);
    each writes its figures, graphs, metrics.json and a page,
    runs/lesson-N/index.html (microseq.lesson, microseq.report).

Where to start: lesson 0 (`make lesson-0`) and microseq/scalar.py, then
microseq/tensor.py and ops.py; help(microseq.nn.LSTM) for a layer's shapes.
A taste:

    >>> import numpy as np, microseq as ms
    >>> w = ms.tensor(np.ones((3, 2)), requires_grad=True)
    >>> loss = ms.sum(ms.tanh(ms.tensor(np.ones((4, 3))) @ w))
    >>> loss.backward()
    >>> w.grad.shape
    (3, 2)
"""
from microseq import fast, functional, graph
from microseq.gradcheck import GradcheckError, gradcheck, gradcheck_scalar
from microseq.ops import (
    add, binary_cross_entropy_with_logits, concat, conv2d, cross_entropy, div, exp, gelu, getitem,
    log, log_softmax, masked_softmax, matmul, max, maximum, mean, mul, neg, pow, relu, reshape,
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
    "binary_cross_entropy_with_logits", "concat", "conv2d", "cross_entropy", "default_rng",
    "detect_anomaly", "div", "exp", "fast", "from_numpy", "functional", "gelu", "getitem",
    "gradcheck", "gradcheck_scalar", "graph", "is_grad_enabled", "log", "log_softmax",
    "manual_seed",
    "masked_softmax", "matmul", "max", "maximum", "mean", "mul", "neg", "no_grad", "ones", "op",
    "pow", "randn", "relu", "reshape", "scope", "sigmoid", "softmax", "split", "stack", "sub",
    "sum", "tanh", "tensor", "transpose", "where", "zeros",
]
