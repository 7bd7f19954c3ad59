"""A convolution layer's forward and backward, autograd against hand-written numpy.

The workload is the captioner's middle layer at lesson 12's batch size:
nn.Conv2d(16, 32, 3, stride=2, padding=1) on (64, 16, 16, 16) float32
feature maps, then the same layer at stride 1; forward, a weighted sum as
the loss, backward to the input, weight and bias. The reference is
microseq.reference's conv2d_forward / conv2d_backward: the hand-derived
passes, one channel mix per kernel offset. The tests check that both give
the same output and gradients.
"""
import numpy as np

import microseq as ms
from bench.common import compare_ms, record
from microseq import nn
from microseq.reference import conv2d_backward, conv2d_forward


def conv_step(layer, x, dy):
    """Ours: forward, loss = sum(y * dy), backward; returns y and the gradients."""
    x = ms.tensor(x, requires_grad=True)
    layer.weight.grad = layer.bias.grad = None
    y = layer(x)
    (y * dy).sum().backward()
    return y.data, {"x": x.grad, "w": layer.weight.grad, "b": layer.bias.grad}


def reference_step(params, x, dy, stride, padding):
    """The same by hand: y and the gradients."""
    y, cache = conv2d_forward(x, params["weight"], params["bias"], stride, padding)
    return y, conv2d_backward(dy, cache)


def workloads():
    """(name, layer, x, dy) for each benchmarked layer."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 16, 16)).astype(np.float32)
    for stride in (2, 1):
        ms.manual_seed(0)
        layer = nn.Conv2d(16, 32, 3, stride=stride, padding=1)
        size = 16 // stride
        dy = rng.standard_normal((64, 32, size, size)).astype(np.float32)
        yield f"conv2d 3x3 stride {stride} (B 64, 16 -> 32 ch, 16x16) fwd+bwd", layer, x, dy


def run(repeats):
    rows = []
    for name, layer, x, dy in workloads():
        params = layer.state_dict()
        ours_ms, ref_ms = compare_ms(
            lambda layer=layer, x=x, dy=dy: conv_step(layer, x, dy),
            lambda layer=layer, x=x, dy=dy, p=params: reference_step(
                p, x, dy, layer.stride, layer.padding), repeats=repeats)
        rows.append(record(name, ours_ms, "reference conv2d_forward/backward", ref_ms))
    return rows
