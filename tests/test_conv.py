"""conv2d and nn.Conv2d: three witnesses and PyTorch.

Under hypothesis (shapes, strides, paddings), in float64: the engine's
conv2d (im2col) against the hand-derived per-offset numpy forward and
backward of microseq.reference (to 1e-10), and both against central
differences (ms.gradcheck: |autograd - numeric| <= 1e-6 + 1e-4 |numeric|).
nn.Conv2d loads a PyTorch state dict and gives PyTorch's outputs and
gradients to 1e-10 in float64 (skipped without torch).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import microseq as ms
from microseq import nn
from microseq import reference as ref
from microseq.gradcheck import gradcheck

pytestmark = pytest.mark.tensor


@st.composite
def conv_cases(draw):
    """(x, w, b, stride, padding) with an output of at least one pixel."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 6))
    W = draw(st.integers(max(1, kw - 2 * pw), 6))
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, kh, kw)),
            rng.standard_normal(F), stride, (ph, pw))


@given(case=conv_cases())
def test_conv2d_three_witnesses(case):
    x, w, b, stride, padding = case
    xt, wt, bt = (ms.tensor(a, requires_grad=True) for a in (x, w, b))
    y = ms.conv2d(xt, wt, bt, stride=stride, padding=padding)
    want, cache = ref.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(y.data, want, rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    (y * dy).sum().backward()
    by_hand = ref.conv2d_backward(dy, cache)
    for name, t in (("x", xt), ("w", wt), ("b", bt)):
        np.testing.assert_allclose(t.grad, by_hand[name], rtol=1e-10, atol=1e-12, err_msg=name)
    assert gradcheck(lambda x, w, b: ms.conv2d(x, w, b, stride=stride, padding=padding), x, w, b)


@given(case=conv_cases())
def test_reference_conv_backward_matches_finite_differences(case):
    x, w, b, stride, padding = case
    y, cache = ref.conv2d_forward(x, w, b, stride, padding)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    grads = ref.conv2d_backward(dy, cache)
    eps = 1e-6
    for name, a in (("x", x), ("w", w), ("b", b)):
        direction = np.random.default_rng(2).standard_normal(a.shape)
        inputs = {"x": x, "w": w, "b": b}

        def loss(sign):
            moved = {**inputs, name: a + sign * eps * direction}  # noqa: B023
            return np.sum(ref.conv2d_forward(moved["x"], moved["w"], moved["b"], stride,
                                             padding)[0] * dy)

        numeric = (loss(1) - loss(-1)) / (2 * eps)
        assert abs(np.sum(grads[name] * direction) - numeric) <= 1e-6 + 1e-6 * abs(numeric), name


def test_conv2d_is_a_sliding_dot_product():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    y = ms.conv2d(ms.tensor(x), ms.tensor(w), stride=2).data
    assert y.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[0 - 5, 2 - 7], [8 - 13, 10 - 15]])


def test_conv2d_errors_name_the_op_and_shapes():
    x = ms.tensor(np.zeros((1, 3, 4, 4)))
    with pytest.raises(ms.ShapeError, match=r"conv2d: \(1, 3, 4, 4\) and \(2, 2, 3, 3\).*3 "
                                            r"channels"):
        ms.conv2d(x, ms.tensor(np.zeros((2, 2, 3, 3))))
    with pytest.raises(ms.ShapeError, match="larger than the padded input"):
        ms.conv2d(x, ms.tensor(np.zeros((2, 3, 5, 5))))
    with pytest.raises(ms.ShapeError, match=r"Conv2d: input must be \(N, 2, H, W\)"):
        nn.Conv2d(2, 4, 3)(x)
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        nn.Conv2d(3, 4, 3, stride=(1, 2, 3))


def test_conv2d_layer_initialises_like_pytorch():
    ms.manual_seed(0)
    layer = nn.Conv2d(4, 8, 3, stride=2, padding=1)
    bound = 1 / np.sqrt(4 * 9)
    assert layer.weight.shape == (8, 4, 3, 3) and layer.bias.shape == (8,)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    for p in (layer.weight, layer.bias):
        assert np.all(np.abs(p.data) <= bound) and np.abs(p.data).max() > 0.5 * bound
    assert layer(np.zeros((2, 4, 7, 7), np.float32)).shape == (2, 8, 4, 4)


@pytest.mark.parametrize("options", [dict(kernel_size=3, padding=1),
                                     dict(kernel_size=(3, 2), stride=2, padding=(0, 1)),
                                     dict(kernel_size=1, bias=False)])
def test_conv2d_layer_matches_torch(options):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(3, 5, **options).double()
    ours = nn.Conv2d(3, 5, **options).to(np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    x_ours, x_theirs = ms.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    dy = rng.standard_normal(y_ours.shape)
    (y_ours * dy).sum().backward()
    (y_theirs * torch.tensor(dy)).sum().backward()
    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), **tol)
    np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), **tol)
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, their_params[name].grad.numpy(), **tol, err_msg=name)


def test_bench_workloads_agree_with_the_reference():
    from bench.bench_conv import conv_step, reference_step, workloads
    for name, layer, x, dy in workloads():
        x, dy = x[:4], dy[:4]  # the bench's layers, on a few images
        y, grads = conv_step(layer, x, dy)
        want_y, want = reference_step(layer.state_dict(), x, dy, layer.stride, layer.padding)
        np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-4, err_msg=name)
        for key in ("x", "w", "b"):  # float32 sums of up to 1024 terms
            np.testing.assert_allclose(grads[key], want[key], rtol=1e-3, atol=1e-2, err_msg=key)
