"""A 2-D convolution layer, forward and backward, in plain numpy.

    x (N, C, H, W)   w (F, C, kh, kw)   b (F,)   stride s   padding p

    xp = x with p zeros around each image
    y[n, o, i, j] = b[o] + sum_{c, a, e} w[o, c, a, e] xp[n, c, s i + a, s j + e]

Read per kernel offset (a, e), the sum is a matrix product: the image
shifted by (a, e) and sampled every s pixels, xs_ae (N, C, Ho, Wo), mixed
over channels by w[:, :, a, e] (F, C). So the layer is kh * kw channel mixes
of shifted images, added up:

    y = b + sum_{a, e} w[:, :, a, e] . xs_ae          (over c)

and each term's backward is a matrix product's:

    dL/dw[:, :, a, e] = sum_{n, i, j} dy . xs_ae       (over n, i, j)
    dL/dxs_ae         = w[:, :, a, e]^T . dy            (over o)
    dL/dxp            = every dL/dxs_ae added back where xs_ae was sampled
    dL/dx             = dL/dxp without its padding;   dL/db = sum_{n, i, j} dy

The engine's conv2d (ops.py) computes the same sums the other way round,
window by window (im2col), so the two are independent witnesses.
"""
import numpy as np


def _shifted(xp, a, e, stride, out_hw):
    """xp sampled from (a, e) every `stride` pixels: (N, C, Ho, Wo), a view."""
    (sh, sw), (Ho, Wo) = stride, out_hw
    return xp[:, :, a:a + sh * (Ho - 1) + 1:sh, e:e + sw * (Wo - 1) + 1:sw]


def conv2d_forward(x, w, b=None, stride=(1, 1), padding=(0, 0)):
    """Returns y (N, F, Ho, Wo) and a cache for conv2d_backward."""
    (ph, pw), (sh, sw) = padding, stride
    F, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho, Wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.zeros((x.shape[0], F, Ho, Wo), np.result_type(x, w))
    for a in range(kh):
        for e in range(kw):
            xs = _shifted(xp, a, e, stride, (Ho, Wo))
            y += np.einsum("oc,nchw->nohw", w[:, :, a, e], xs, optimize=True)
    if b is not None:
        y += b[None, :, None, None]
    return y, (x.shape, xp, w, b is not None, stride, padding)


def conv2d_backward(dy, cache):
    """dy (N, F, Ho, Wo) is dL/dy. Returns {"x", "w"} gradients, and "b" with a bias."""
    x_shape, xp, w, has_bias, stride, (ph, pw) = cache
    _, _, kh, kw = w.shape
    out_hw = dy.shape[2:]
    dw = np.zeros_like(w)
    dxp = np.zeros_like(xp)
    for a in range(kh):
        for e in range(kw):
            xs = _shifted(xp, a, e, stride, out_hw)
            dw[:, :, a, e] = np.einsum("nohw,nchw->oc", dy, xs, optimize=True)
            _shifted(dxp, a, e, stride, out_hw)[...] += np.einsum(
                "oc,nohw->nchw", w[:, :, a, e], dy, optimize=True)
    grads = {"x": dxp[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]], "w": dw}
    if has_bias:
        grads["b"] = dy.sum(axis=(0, 2, 3))
    return grads
