"""The Transformer's ops: erfc, layer_norm and masked_softmax, each against
an independent numpy/math witness (forward) and float64 central differences
(backward), under hypothesis. gelu sits in test_tensor.py's table of unary ops.

Tolerances: gradcheck's, |autograd - numeric| <= 1e-6 + 1e-4 |numeric|;
forward values to 1e-12.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import microseq as ms
from microseq import functional as F
from microseq.gradcheck import gradcheck
from microseq.special import erfc

pytestmark = pytest.mark.tensor

seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)

_math_erfc = np.vectorize(math.erfc)


def test_erfc_matches_math_to_double_precision():
    x = np.concatenate([np.linspace(-30, 30, 60001), [-np.inf, -1e-300, 0.0, 1e-300, np.inf]])
    np.testing.assert_allclose(erfc(x), _math_erfc(x), rtol=0, atol=4.5e-16)  # 1 ulp of 2
    near = np.linspace(-5, 2, 7001)  # where erfc > 0.005, relative precision is kept too
    np.testing.assert_allclose(erfc(near), _math_erfc(near), rtol=2e-15)
    assert erfc(np.float32(0.3)).dtype == np.float32


def test_gelu_keeps_float32_and_rejects_unknown_forms():
    assert ms.gelu(ms.randn(3)).dtype == np.float32
    assert ms.gelu(ms.randn(3), approximate="tanh").dtype == np.float32
    with pytest.raises(ms.ShapeError, match="gelu.*approximate must be 'none' or 'tanh'"):
        ms.gelu(ms.randn(3), approximate="sigmoid")


def _layer_norm_witness(x, n, weight, bias, eps):
    rows = x.reshape(-1, int(np.prod(x.shape[x.ndim - n:])))
    y = (rows - rows.mean(1, keepdims=True)) / np.sqrt(rows.var(1, keepdims=True) + eps)
    y = y.reshape(x.shape)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


@given(shape=shapes, seed=seeds, n=st.integers(1, 2), affine=st.sampled_from(["both", "weight",
                                                                             "none"]))
def test_layer_norm(shape, seed, n, affine):
    n = min(n, len(shape))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2 + 1
    normalized = shape[len(shape) - n:]
    weight = rng.standard_normal(normalized) if affine != "none" else None
    bias = rng.standard_normal(normalized) if affine == "both" else None
    eps = 0.1  # keeps a row of one element (variance 0) well-conditioned
    got = F.layer_norm(ms.tensor(x), normalized, weight, bias, eps=eps).data
    np.testing.assert_allclose(got, _layer_norm_witness(x, n, weight, bias, eps), rtol=1e-12,
                               atol=1e-12)
    params = [p for p in (weight, bias) if p is not None]
    assert gradcheck(lambda t, *ps: F.layer_norm(t, normalized, *ps, eps=eps), x, *params)


def test_layer_norm_names_the_bad_shape():
    with pytest.raises(ms.ShapeError, match=r"layer_norm: input of shape \(2, 3\) does not end in"):
        F.layer_norm(ms.randn(2, 3), 4)
    with pytest.raises(ms.ShapeError, match=r"weight of shape \(2,\) does not fit"):
        F.layer_norm(ms.randn(2, 3), 3, np.ones(2))


def _masked_softmax_witness(x, keep):
    """Row by row: softmax over the kept entries, 0 elsewhere (and for an empty row)."""
    rows, keep_rows = x.reshape(-1, x.shape[-1]), keep.reshape(-1, x.shape[-1])
    out = np.zeros_like(rows)
    for out_row, row, k in zip(out, rows, keep_rows):
        if k.any():
            e = np.exp(row[k] - row[k].max())
            out_row[k] = e / e.sum()
    return out.reshape(x.shape)


@given(shape=shapes, seed=seeds, additive=st.booleans())
def test_masked_softmax(shape, seed, additive):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    keep = rng.random(shape) < 0.6  # some rows lose every entry
    if additive:  # 0 or a finite bias where kept, -inf where dropped
        bias = np.where(rng.random(shape) < 0.5, 0.0, rng.standard_normal(shape))
        mask = np.where(keep, bias, -np.inf)
        expected = _masked_softmax_witness(x + bias, keep)
    else:
        mask, expected = keep, _masked_softmax_witness(x, keep)
    np.testing.assert_allclose(ms.masked_softmax(ms.tensor(x), mask).data, expected,
                               rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda t: ms.masked_softmax(t, mask), x)


def test_masked_softmax_of_a_fully_masked_row_has_zero_value_and_gradient():
    x = ms.tensor(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), requires_grad=True)
    for mask in (np.array([[True, False, True], [False, False, False]]),
                 np.array([[0.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf]])):
        x.grad = None
        y = ms.masked_softmax(x, mask)
        (y * np.arange(6.0).reshape(2, 3)).sum().backward()
        assert np.isfinite(x.grad).all()
        np.testing.assert_array_equal(y.data[1], 0)
        np.testing.assert_array_equal(x.grad[1], 0)
        np.testing.assert_array_equal(x.grad[0, 1], 0)  # a masked entry gets no gradient


def test_masked_softmax_mask_broadcasts_but_never_widens_x():
    x = ms.randn(2, 3, 4)
    causal = np.tril(np.ones((3, 4), bool))
    assert ms.masked_softmax(x, causal).shape == (2, 3, 4)
    with pytest.raises(ms.ShapeError, match=r"masked_softmax.*mask of shape \(5, 3, 4\)"):
        ms.masked_softmax(x, np.ones((5, 3, 4), bool))
