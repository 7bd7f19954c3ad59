"""The primitive ops: each one's forward and vector-Jacobian products, side by side.

Every op takes numpy arrays and returns `(value, vjps)`: one VJP per
positional input, mapping the output's gradient `g` to that input's. A VJP may
return a gradient in the broadcast shape: the engine sums it back to the
input's shape in one place (tensor._unbroadcast). Each VJP is the plain math;
this file is the engine's whole calculus, and everything else is composed
from it. (microseq.fast computes some of the same gradients with fewer
allocations; the tests check it against these.)

Shapes in the docstrings: `(..., n, k)` is any number of leading axes,
"broadcast" means numpy's broadcasting rules.
"""
import builtins
import math

import numpy as np

from microseq.special import erfc
from microseq.tensor import ShapeError, Tensor, op

# --- elementwise arithmetic (numpy broadcasting) ---------------------------


@op
def add(a, b):
    """a + b, elementwise; a and b broadcast to the output's shape."""
    return a + b, (lambda g: g, lambda g: g)


@op
def sub(a, b):
    """a - b, elementwise; a and b broadcast."""
    return a - b, (lambda g: g, lambda g: -g)


@op
def mul(a, b):
    """a * b, elementwise; a and b broadcast."""
    return a * b, (lambda g: g * b, lambda g: g * a)


@op
def div(a, b):
    """a / b, elementwise; a and b broadcast."""
    return a / b, (lambda g: g / b, lambda g: -g * a / (b * b))


@op
def neg(a):
    """-a, any shape."""
    return -a, lambda g: -g


@op
def pow(a, exponent):
    """a ** exponent, elementwise, for a number `exponent` (use exp and log for
    a learned one); a any shape."""
    if not np.isscalar(exponent):
        raise TypeError(f"exponent must be a number, got {type(exponent).__name__}")
    return a ** exponent, (lambda g: g * exponent * a ** (exponent - 1), None)


@op
def maximum(a, b):
    """max(a, b), elementwise; a and b broadcast. At a tie the gradient is
    split evenly between a and b."""
    share_a = (a > b) + 0.5 * (a == b)
    return np.maximum(a, b), (lambda g: g * share_a, lambda g: g * (1 - share_a))


@op
def where(condition, a, b):
    """a where `condition` holds, else b; all three broadcast. The condition
    (booleans) gets no gradient."""
    condition = np.asarray(condition, dtype=bool)
    return np.where(condition, a, b), (None, lambda g: g * condition, lambda g: g * ~condition)


# --- elementwise functions -------------------------------------------------


@op
def exp(a):
    """e ** a, elementwise, any shape."""
    y = np.exp(a)
    return y, lambda g: g * y


@op
def log(a):
    """The natural logarithm, elementwise, any shape (a > 0)."""
    return np.log(a), lambda g: g / a


@op
def tanh(a):
    """tanh(a), elementwise, any shape."""
    y = np.tanh(a)
    return y, lambda g: g * (1 - y * y)


@op
def sigmoid(a):
    """1 / (1 + e ** -a), elementwise, any shape."""
    y = 0.5 * (1 + np.tanh(0.5 * a))  # = 1/(1+e^-a), without overflow for large |a|
    return y, lambda g: g * y * (1 - y)


@op
def relu(a):
    """max(a, 0), elementwise, any shape; the gradient at exactly 0 is 0."""
    positive = a > 0
    return a * positive, lambda g: g * positive


# --- linear algebra ---------------------------------------------------------


@op
def matmul(a, b):
    """a @ b: a (..., n, k) and b (..., k, m) -> (..., n, m), leading axes
    broadcast, as np.matmul (both need at least 2 dimensions).

    The gradients are g b^T and a^T g, each summed over any leading axes it
    was broadcast along."""
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError("both operands need at least 2 dimensions")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inner dimensions {a.shape[-1]} and {b.shape[-2]} differ")
    if a.ndim > 2 and b.ndim == 2:
        # (..., n, k) @ (k, m), as a layer over a sequence: the rows of a, all
        # at once, as one 2-D product (BLAS runs that much faster than a stack
        # of small ones); b's gradient rows^T g then sums over the rows too.
        rows = a.reshape(-1, a.shape[-1])
        return ((rows @ b).reshape(*a.shape[:-1], b.shape[1]),
                (lambda g: (g.reshape(-1, g.shape[-1]) @ b.T).reshape(a.shape),
                 lambda g: rows.T @ g.reshape(-1, g.shape[-1])))
    return a @ b, (lambda g: g @ np.swapaxes(b, -1, -2), lambda g: np.swapaxes(a, -1, -2) @ g)


# --- reductions -------------------------------------------------------------


def _expand(g, shape, axis, keepdims):
    """Give a reduced gradient back its reduced axes, ready to broadcast."""
    if axis is None or keepdims:
        return g if axis is not None else np.reshape(g, (1,) * len(shape))
    return np.expand_dims(g, axis)


@op
def sum(a, axis=None, keepdims=False):
    """The sum over `axis` (an int, a tuple, or None for every axis), as np.sum."""
    shape = a.shape
    return (np.asarray(np.sum(a, axis=axis, keepdims=keepdims)),
            lambda g: np.broadcast_to(_expand(g, shape, axis, keepdims), shape))


@op
def mean(a, axis=None, keepdims=False):
    """The mean over `axis` (an int, a tuple, or None for every axis), as np.mean."""
    shape = a.shape
    value = np.asarray(np.mean(a, axis=axis, keepdims=keepdims))
    count = a.size // builtins.max(value.size, 1)
    return value, lambda g: np.broadcast_to(_expand(g, shape, axis, keepdims) / count, shape)


@op
def max(a, axis=None, keepdims=False):
    """The max over `axis` (an int, a tuple, or None), as np.max; tied maxima
    share the gradient evenly (a subgradient)."""
    value = np.asarray(np.max(a, axis=axis, keepdims=keepdims))
    winners = a == np.max(a, axis=axis, keepdims=True)
    share = winners / winners.sum(axis=axis, keepdims=True)
    return value, lambda g: _expand(g, a.shape, axis, keepdims) * share


# --- shape ------------------------------------------------------------------


@op
def reshape(a, shape):
    """The same values in a new shape (a tuple; one entry may be -1), as np.reshape."""
    return a.reshape(shape), lambda g: g.reshape(a.shape)


@op
def transpose(a, axes=None):
    """The axes reordered as `axes` (a permutation), or reversed when None, as np.transpose."""
    inverse = None if axes is None else np.argsort([axis % a.ndim for axis in axes])
    return np.transpose(a, axes), lambda g: np.transpose(g, inverse)


@op
def getitem(a, index):
    """a[index], for any numpy index: ints, slices, integer or boolean arrays.

    The gradient is zeros but for g added at the index; an index may repeat
    (an embedding lookup of the same word twice), and then its gradients add
    up, which np.add.at does (`grad[index] += g` would keep only one)."""
    def vjp(g):
        grad = np.zeros_like(a)
        np.add.at(grad, index, g)
        return grad

    return a[index], (vjp, None)


def _check_axis(axis, ndim):
    if not isinstance(axis, int | np.integer) or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {ndim} axes "
                         f"(allowed: {-ndim} to {ndim - 1})")


def concat(tensors, axis=0):
    """Join tensors along an existing axis, as np.concatenate: shapes
    (..., n_i, ...) -> (..., sum n_i, ...), equal on every other axis."""
    if not len(tensors):
        raise ShapeError("concat: needs at least one tensor")
    return _concat(*tensors, axis=axis)


@op
def _concat(*arrays, axis=0):
    _check_axis(axis, arrays[0].ndim)
    ends = np.cumsum([x.shape[axis] for x in arrays])
    pieces = [slice(end - x.shape[axis], end) for x, end in zip(arrays, ends)]

    def piece_vjp(piece):
        return lambda g: g[(slice(None),) * (axis % g.ndim) + (piece,)]

    return np.concatenate(arrays, axis=axis), tuple(piece_vjp(p) for p in pieces)


def stack(tensors, axis=0):
    """Join tensors of one shape S along a new axis, as np.stack: n tensors
    S -> (n, *S) for axis 0."""
    if not len(tensors):
        raise ShapeError("stack: needs at least one tensor")
    return _stack(*tensors, axis=axis)


@op
def _stack(*arrays, axis=0):
    _check_axis(axis, arrays[0].ndim + 1)  # a new axis may go last
    value = np.stack(arrays, axis=axis)
    lead = (slice(None),) * (axis % value.ndim)

    def part_vjp(i):
        index = lead + (i,)
        return lambda g: g[index]  # a view, not a copy

    return value, tuple(part_vjp(i) for i in range(len(arrays)))


def split(a, sections, axis=-1):
    """Split `a` along `axis` into `sections` equal parts (an int) or at the
    given indices (a list), as np.split; returns a list of tensors. Each part
    is a getitem, so its gradient lives there."""
    size = a.shape[axis]
    if isinstance(sections, int):
        if size % sections:
            raise ShapeError(f"split: axis {axis} of shape {a.shape} does not divide into "
                             f"{sections} equal parts")
        bounds = list(range(0, size + 1, size // sections))
    else:
        bounds = [0, *sections, size]
    lead = (slice(None),) * (axis % a.ndim)
    return [getitem(a, lead + (slice(lo, hi),)) for lo, hi in zip(bounds, bounds[1:])]


# --- fused: numerically stable softmax family and losses --------------------
# Fused because composing exp/sum/log overflows for large logits and costs
# several ops per step; each has a short closed-form VJP.


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@op
def softmax(x, axis=-1):
    """e ** x / sum(e ** x) along `axis`, any shape; computed without overflow."""
    y = np.exp(_log_softmax(x, axis))
    return y, lambda g: y * (g - np.sum(g * y, axis=axis, keepdims=True))


@op
def log_softmax(x, axis=-1):
    """log(softmax(x)) along `axis`, any shape; computed without overflow."""
    y = _log_softmax(x, axis)
    return y, lambda g: g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)


@op
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy of logits (..., C) against integer targets (...),
    as torch's F.cross_entropy with the class axis last: -log softmax(x)_y,
    averaged ("mean", over the positions counted) or summed ("sum").
    Positions whose target is ignore_index (padding) count for nothing.
    The gradient is (softmax(x) - onehot(y)) g, per position counted."""
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be integers, got {targets.dtype}")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits (..., C) need targets of shape {logits.shape[:-1]}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    keep = (targets != ignore_index).reshape(-1)
    safe = np.where(keep, targets.reshape(-1), 0)
    if np.any(safe >= logits.shape[-1]) or np.any(safe < 0):
        raise IndexError(f"a target is outside 0..{logits.shape[-1] - 1}")
    # -log softmax(x)_y = log sum_c e^(x_c - m) - (x_y - m), with m the row max:
    # softmax is unchanged by the shift, and e^x cannot overflow.
    shifted = (logits - np.max(logits, axis=-1, keepdims=True)).reshape(-1, logits.shape[-1])
    exps = np.exp(shifted)
    sums = exps.sum(axis=-1, keepdims=True)
    rows = np.arange(safe.size)
    scale = 1.0 / builtins.max(int(keep.sum()), 1) if reduction == "mean" else 1.0
    loss = ((np.log(sums[:, 0]) - shifted[rows, safe]) * keep).sum() * scale

    def vjp(g):
        grad = exps / sums  # softmax, then minus one at each target
        grad[rows, safe] -= 1
        grad *= (g * scale * keep)[:, None]
        return grad.reshape(logits.shape)

    return np.asarray(loss, logits.dtype), (vjp, None)


@op
def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """Sigmoid + binary cross-entropy of logits against targets in [0, 1], both
    of one shape, in one stable step, averaged ("mean") or summed ("sum"):
    loss = max(x, 0) - x t + log(1 + e^-|x|), gradient sigmoid(x) - t."""
    targets = np.asarray(targets, dtype=logits.dtype)
    losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    scale = 1.0 / builtins.max(losses.size, 1) if reduction == "mean" else 1.0

    def vjp(g):
        return (0.5 * (1 + np.tanh(0.5 * logits)) - targets) * (g * scale)

    return np.asarray(losses.sum() * scale, logits.dtype), (vjp, None)


# --- the Transformer's ops: layer norm, GELU, masked softmax -----------------
# Fused for the same reasons as the softmax family: each is several numpy steps
# with a short closed-form VJP, and composing them from primitives would cost
# a graph node (and a saved array) per step.


@op
def _layer_norm(x, weight=None, bias=None, normalized_ndim=1, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last
    `normalized_ndim` axes (var is the biased variance, as in PyTorch).

    With x_hat = (x - mean) * r, r = 1 / sqrt(var + eps), means taken over
    each row's normalised axes, and g_hat = g * weight (the gradient reaching x_hat):

        dx      = r * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat))
        dweight = sum over rows of g * x_hat,      dbias = sum over rows of g

    The two means are what moving one x does to every x_hat of its row
    through the shared mean and variance.
    """
    shape = x.shape[x.ndim - normalized_ndim:]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ValueError(f"{name} of shape {p.shape} does not fit normalized_shape {shape}")
    axes = tuple(range(-normalized_ndim, 0))
    centred = x - x.mean(axis=axes, keepdims=True)
    r = 1 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    x_hat = centred * r
    y = x_hat if weight is None else x_hat * weight
    if bias is not None:
        y = y + bias

    def dx(g):
        g_hat = g if weight is None else g * weight
        return r * (g_hat - g_hat.mean(axis=axes, keepdims=True)
                    - x_hat * (g_hat * x_hat).mean(axis=axes, keepdims=True))

    return y, (dx, lambda g: g * x_hat, lambda g: g)


# Python floats, not numpy scalars: they keep float32 inputs float32.
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_SCALE = math.sqrt(2 / math.pi)


@op
def gelu(x, approximate="none"):
    """GELU(x) = x * Phi(x), Phi the standard normal CDF, as torch's F.gelu.

    exact ("none"):  Phi(x) = erfc(-x / sqrt 2) / 2;  dy/dx = Phi(x) + x phi(x),
                     phi(x) = exp(-x^2 / 2) / sqrt(2 pi), the normal density
    "tanh":          y = x/2 (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
                     dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

    erfc comes from microseq.special (numpy has none), accurate to 1 ulp.
    """
    if approximate == "none":
        cdf = 0.5 * erfc(-x * _SQRT_HALF)
        return x * cdf, lambda g: g * (cdf + x * np.exp(-0.5 * x * x) * _INV_SQRT_2PI)
    if approximate == "tanh":
        t = np.tanh(_TANH_SCALE * (x + 0.044715 * x * x * x))
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _TANH_SCALE * (1 + 3 * 0.044715 * x * x)
        return 0.5 * x * (1 + t), lambda g: g * slope
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


@op
def masked_softmax(x, mask, axis=-1):
    """softmax(x) over `axis` among the entries the mask keeps; the rest get 0.

    mask, broadcastable to x and never differentiated, is either boolean
    (True = take part, as in F.scaled_dot_product_attention) or additive
    (added to x: 0 keeps, -inf drops, any other number biases). The VJP is the
    softmax's, y * (g - sum(g * y)): a dropped entry has y = 0 and gets none.

    A row with every entry dropped would be 0/0 = NaN; here it is all zeros,
    and so is its gradient (both factors of the VJP carry y = 0).
    """
    mask = np.asarray(mask)
    try:
        fits = np.broadcast_shapes(x.shape, mask.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {mask.shape} does not broadcast to {x.shape}")
    if mask.dtype == bool:
        shifted = np.where(mask, x, -np.inf)
    else:
        shifted = x + mask.astype(x.dtype, copy=False)
    top = np.max(shifted, axis=axis, keepdims=True)
    top[np.isneginf(top)] = 0  # a fully dropped row: exp(-inf - 0) = 0, not NaN
    y = np.exp(shifted - top)
    total = np.sum(y, axis=axis, keepdims=True)
    total[total == 0] = 1
    y /= total
    return y, (lambda g: y * (g - np.sum(g * y, axis=axis, keepdims=True)), None)


# --- convolution ------------------------------------------------------------
# A 2-D convolution is a sliding dot product: every kernel-sized window of the
# input (all channels) dotted with every filter. Copying the windows out as
# the rows of one matrix ("im2col") makes the whole layer one matmul, and its
# VJP two: the weight's gradient g^T cols, the windows' gradient g W, which
# "col2im" adds back to the pixels each window was copied from. A strided
# convolution also serves as the downsampling step (no pooling op needed).


def _pair(n, name):
    pair = (n, n) if isinstance(n, int) else tuple(n)
    if len(pair) != 2 or not all(isinstance(k, int) for k in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {n!r}")
    return pair


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Cross-correlation of x (N, C, H, W) with weight (F, C, kh, kw), plus
    bias (F,), as torch.nn.functional.conv2d: output (N, F, Ho, Wo) with
    Ho = (H + 2 padding - kh) // stride + 1 (and Wo alike)."""
    out = _conv2d(x, weight, stride=_pair(stride, "stride"), padding=_pair(padding, "padding"))
    return out if bias is None else out + reshape(bias, (1, -1, 1, 1))


@op
def _conv2d(x, weight, stride=(1, 1), padding=(0, 0)):
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError("input must be (N, C, H, W) and weight (F, C, kh, kw)")
    N, C, H, W = x.shape
    F, C_w, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    if C != C_w:
        raise ValueError(f"input has {C} channels, the weight expects {C_w}")
    if min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"stride {stride} must be >= 1 and padding {padding} >= 0")
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"kernel ({kh}, {kw}) is larger than the padded input "
                         f"({H + 2 * ph}, {W + 2 * pw})")
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    # windows[n, c, i, j, a, b] = padded[n, c, i*sh + a, j*sw + b]: a view, no copy yet
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    windows = windows[:, :, :(Ho - 1) * sh + 1:sh, :(Wo - 1) * sw + 1:sw]
    # im2col: one column per output pixel (n, i, j), one row per (c, a, b) of the window
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, N * Ho * Wo)
    filters = weight.reshape(F, C * kh * kw)
    out = (filters @ cols).reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)

    def rows_of(g):  # g (N, F, Ho, Wo) as (F, N * Ho * Wo), the layout of filters @ cols
        return g.transpose(1, 0, 2, 3).reshape(F, N * Ho * Wo)

    def x_vjp(g):
        g_cols = (filters.T @ rows_of(g)).reshape(C, kh, kw, N, Ho, Wo)
        g_padded = np.zeros((C, N) + padded.shape[2:], g.dtype)
        for a in range(kh):  # col2im: each window position adds back to its pixels
            for b in range(kw):
                g_padded[:, :, a:a + (Ho - 1) * sh + 1:sh, b:b + (Wo - 1) * sw + 1:sw] += \
                    g_cols[:, a, b]
        return g_padded[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3)

    def weight_vjp(g):
        return (rows_of(g) @ cols.T).reshape(weight.shape)

    return out, (x_vjp, weight_vjp)


# --- Tensor methods and operators, so models read like numpy/PyTorch --------

def _reflected(fn):
    return lambda self, other: fn(other, self)


Tensor.__add__, Tensor.__radd__ = add, _reflected(add)
Tensor.__sub__, Tensor.__rsub__ = sub, _reflected(sub)
Tensor.__mul__, Tensor.__rmul__ = mul, _reflected(mul)
Tensor.__truediv__, Tensor.__rtruediv__ = div, _reflected(div)
Tensor.__matmul__, Tensor.__rmatmul__ = matmul, _reflected(matmul)
Tensor.__neg__ = neg
Tensor.__pow__ = pow
Tensor.__getitem__ = getitem
Tensor.exp, Tensor.log, Tensor.tanh, Tensor.sigmoid, Tensor.relu = exp, log, tanh, sigmoid, relu
Tensor.sum, Tensor.mean, Tensor.max = sum, mean, max
Tensor.softmax, Tensor.log_softmax = softmax, log_softmax
Tensor.reshape = lambda self, *shape: reshape(self, shape[0] if len(shape) == 1 else shape)
Tensor.transpose = lambda self, *axes: transpose(self, axes or None)
Tensor.T = property(lambda self: transpose(self))
