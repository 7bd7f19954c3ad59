"""Conv2d, with PyTorch's arguments, parameter names, layout and initialisation."""
import numpy as np

from microseq.nn.layers import uniform
from microseq.nn.module import Module
from microseq.ops import _pair, conv2d
from microseq.tensor import ShapeError, Tensor


class Conv2d(Module):
    """y = conv2d(x, weight, bias, stride, padding) on x (N, C, H, W).

    weight (out_channels, in_channels, kh, kw) and bias (out_channels,) start
    uniform in +-1/sqrt(in_channels kh kw), as PyTorch's do.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.padding = _pair(stride, "stride"), _pair(padding, "padding")
        bound = 1 / np.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        self.weight = uniform(bound, out_channels, in_channels, *self.kernel_size)
        self.bias = uniform(bound, out_channels) if bias else None

    def forward(self, x):
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"Conv2d: input must be (N, {self.in_channels}, H, W), "
                             f"got {x.shape}")
        return conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")
