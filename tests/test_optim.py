"""Optimisers against hand-written numpy versions of the same equations,
closed forms for momentum and weight decay, clipping, and state round trips."""
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microseq import Tensor
from microseq.optim import SGD, Adam, clip_grad_norm_

pytestmark = pytest.mark.nn

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**32 - 1)
sgd_settings = st.fixed_dictionaries({
    "lr": st.floats(1e-4, 1.0),
    "momentum": st.sampled_from([0.0, 0.5, 0.9]),
    "weight_decay": st.sampled_from([0.0, 1e-2, 0.5]),
})
adam_settings = st.fixed_dictionaries({
    "lr": st.floats(1e-4, 1.0),
    "betas": st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.9999)),
    "eps": st.sampled_from([1e-8, 1e-3]),
    "weight_decay": st.sampled_from([0.0, 1e-2, 0.5]),
})


def parameter(values):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


def run(optimizer, params, grads):
    """Apply a list of steps; each step is one gradient per parameter."""
    for step in grads:
        optimizer.zero_grad()
        for p, g in zip(params, step, strict=True):
            p.grad = g.copy()
        optimizer.step()


def random_grads(rng, shape, steps):
    return [rng.standard_normal(shape) for _ in range(steps)]


def sgd_reference(p, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    buf = None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d if buf is None else momentum * buf + d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def adam_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    b1, b2 = betas
    m = v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat_over_lr = m / (1 - b1**t)
        p = p - lr * m_hat_over_lr / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    return p


# --- updates equal the equations ---------------------------------------------


@given(shape=shapes, seed=seeds, steps=st.integers(1, 6), settings=sgd_settings,
       nesterov=st.booleans())
def test_sgd_matches_numpy_reference(shape, seed, steps, settings, nesterov):
    nesterov = nesterov and settings["momentum"] > 0
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(shape)
    grads = random_grads(rng, shape, steps)
    p = parameter(start)
    run(SGD([p], nesterov=nesterov, **settings), [p], [[g] for g in grads])
    expected = sgd_reference(start, grads, nesterov=nesterov, **settings)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-12)


@given(shape=shapes, seed=seeds, steps=st.integers(1, 6), settings=adam_settings)
def test_adam_matches_numpy_reference(shape, seed, steps, settings):
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(shape)
    grads = random_grads(rng, shape, steps)
    p = parameter(start)
    run(Adam([p], **settings), [p], [[g] for g in grads])
    expected = adam_reference(start, grads, **settings)
    np.testing.assert_allclose(p.data, expected, rtol=1e-10, atol=1e-12)


def test_sgd_momentum_on_a_constant_gradient_is_a_geometric_series():
    # with g fixed, the buffer after j steps is g (1 + m + ... + m^(j-1))
    m, lr, g, n = 0.9, 0.1, np.array([1.0, -2.0]), 5
    p = parameter([0.0, 0.0])
    run(SGD([p], lr=lr, momentum=m), [p], [[g]] * n)
    travelled = sum((1 - m**j) / (1 - m) for j in range(1, n + 1))
    np.testing.assert_allclose(p.data, -lr * g * travelled, rtol=1e-12)


def test_sgd_weight_decay_alone_shrinks_geometrically():
    lr, wd, n = 0.1, 0.5, 4
    p = parameter([1.0, -3.0])
    run(SGD([p], lr=lr, weight_decay=wd), [p], [[np.zeros(2)]] * n)
    np.testing.assert_allclose(p.data, np.array([1.0, -3.0]) * (1 - lr * wd) ** n, rtol=1e-12)


def test_adam_weight_decay_alone_moves_lr_toward_zero_at_first():
    # step 1 with g = wd p: m/(1-b1) = g, sqrt(v/(1-b2)) = |g|, so p moves by lr * sign(p)
    p = parameter([2.0, -3.0])
    run(Adam([p], lr=0.01, eps=0.0, weight_decay=0.1), [p], [[np.zeros(2)]])
    np.testing.assert_allclose(p.data, [1.99, -2.99], rtol=1e-12)


def test_parameters_without_gradient_are_skipped():
    a, b = parameter([1.0]), parameter([2.0])
    for optimizer in (SGD([a, b], lr=0.1, momentum=0.9), Adam([a, b], lr=0.1)):
        optimizer.zero_grad()
        a.grad = np.array([1.0])
        optimizer.step()
        assert b.data[0] == 2.0 and optimizer.state[1] == {}
        assert a.data[0] != 1.0


def test_update_is_in_place_on_the_same_array():
    p = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    data = p.data
    for optimizer in (SGD([p], lr=0.1, momentum=0.9, nesterov=True), Adam([p])):
        p.grad = np.ones(3, dtype=np.float32)
        optimizer.step()
    assert p.data is data and p.data.dtype == np.float32


def test_training_through_backward_leaves_gradients_alone():
    # sum() gives a read-only broadcast gradient: the optimiser must not write to it
    p = parameter([1.0, 2.0])
    p.sum().backward()
    grad = p.grad.copy()
    SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1).step()
    np.testing.assert_array_equal(p.grad, grad)


def test_adam_fits_a_linear_regression():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    w_true, b_true = np.array([[1.5], [-2.0], [0.5]]), 0.3
    y = x @ w_true + b_true
    w, b = parameter(np.zeros((3, 1))), parameter(np.zeros(1))
    optimizer = Adam([w, b], lr=0.05)
    for _ in range(500):
        optimizer.zero_grad()
        diff = Tensor(x) @ w + b - Tensor(y)
        loss = (diff * diff).mean()
        loss.backward()
        optimizer.step()
    assert loss.item() < 1e-6
    np.testing.assert_allclose(w.data, w_true, atol=1e-3)
    np.testing.assert_allclose(b.data, [b_true], atol=1e-3)


# --- clipping -------------------------------------------------------------------


@given(seed=seeds, sizes=st.lists(shapes, min_size=1, max_size=4),
       scale=st.floats(1e-3, 1e3), max_norm=st.floats(1e-2, 10.0))
def test_clip_returns_norm_before_and_bounds_norm_after(seed, sizes, scale, max_norm):
    rng = np.random.default_rng(seed)
    params = [parameter(np.zeros(shape)) for shape in sizes]
    grads = [scale * rng.standard_normal(shape) for shape in sizes]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.copy()
    norm = clip_grad_norm_(params, max_norm)
    assert norm == pytest.approx(np.sqrt(sum(np.sum(g**2) for g in grads)), rel=1e-12)
    after = np.sqrt(sum(np.sum(p.grad**2) for p in params))
    assert after <= max_norm * (1 + 1e-9)
    if norm <= max_norm:
        for p, g in zip(params, grads, strict=True):
            np.testing.assert_array_equal(p.grad, g)
    else:  # one common scale: every gradient keeps its direction
        for p, g in zip(params, grads, strict=True):
            np.testing.assert_allclose(p.grad, g * max_norm / (norm + 1e-6), rtol=1e-12)


def test_clip_handles_float32_overflow_missing_grads_and_read_only_grads():
    big = Tensor(np.zeros(2, np.float32), requires_grad=True)
    big.grad = np.full(2, 1e30, np.float32)  # its square overflows float32
    unused = Tensor(np.zeros(2, np.float32), requires_grad=True)
    assert clip_grad_norm_([big, unused], 1.0) == pytest.approx(np.sqrt(2) * 1e30, rel=1e-6)
    assert np.all(np.isfinite(big.grad)) and unused.grad is None

    p = parameter([1.0, 2.0])
    p.sum().backward()  # a read-only broadcast view
    clip_grad_norm_(p, 0.5)
    np.testing.assert_allclose(p.grad, [0.5 / np.sqrt(2)] * 2, rtol=1e-5)


# --- state round trip --------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
])
def test_state_dict_round_trip_through_npz_gives_identical_updates(make):
    rng = np.random.default_rng(1)
    shapes_ = [(3, 2), (2,), ()]
    grads = [[rng.standard_normal(s) for s in shapes_] for _ in range(6)]
    params = [parameter(rng.standard_normal(s)) for s in shapes_]
    optimizer = make(params)
    run(optimizer, params, grads[:3])
    optimizer.lr *= 0.5  # a schedule's change must survive the round trip

    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **optimizer.state_dict())
    buffer.seek(0)
    loaded = dict(np.load(buffer, allow_pickle=False))
    copies = [parameter(p.data.copy()) for p in params]
    restored = make(copies)
    restored.load_state_dict(loaded)
    assert restored.lr == optimizer.lr

    run(optimizer, params, grads[3:])
    run(restored, copies, grads[3:])
    for p, q in zip(params, copies, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_rejects_a_different_model():
    params = [parameter(np.zeros((2, 3)))]
    optimizer = Adam(params)
    params[0].grad = np.ones((2, 3))
    optimizer.step()
    state = optimizer.state_dict()
    with pytest.raises(ValueError, match="for 1 parameters, this optimizer has 2"):
        Adam([parameter(np.zeros((2, 3))), parameter(np.zeros(1))]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state.0.exp_avg.*\(2, 3\).*\(3, 2\)"):
        Adam([parameter(np.zeros((3, 2)))]).load_state_dict(state)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="requires_grad"):
        SGD([Tensor(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([parameter([0.0])], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        Adam([parameter([0.0])], betas=(0.9, 1.0))


# --- PyTorch, when it is installed ---------------------------------------------


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.1, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.1}),
])
def test_matches_torch_optim(name, kwargs):
    torch = pytest.importorskip("torch")
    import microseq.optim as optim

    rng = np.random.default_rng(2)
    start = rng.standard_normal((4, 3))
    grads = random_grads(rng, (4, 3), 8)
    ours = parameter(start)
    run(getattr(optim, name)([ours], **kwargs), [ours], [[g] for g in grads])
    theirs = torch.tensor(start, requires_grad=True)
    reference = getattr(torch.optim, name)([theirs], **kwargs)
    for g in grads:
        theirs.grad = torch.tensor(g)
        reference.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
