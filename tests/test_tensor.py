"""The tensor engine: every primitive and fused op against numpy (forward) and
central differences (backward), under hypothesis, MiniTorch-style: one table
drives the properties, so adding an op to the table tests it everywhere.

Tolerances: gradcheck runs in float64 with eps=1e-6 and accepts
|autograd - numeric| <= 1e-6 + 1e-4 |numeric|.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import microseq as ms
from microseq.gradcheck import gradcheck
from microseq.testing import arrays, broadcastable_shapes, distinct_arrays, shapes

pytestmark = pytest.mark.tensor


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _gelu(x):
    return x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


# name -> (our op, numpy witness, domain keyword arguments for `arrays`)
UNARY = {
    "neg": (ms.neg, np.negative, {}),
    "exp": (ms.exp, np.exp, {}),
    "log": (ms.log, np.log, dict(low=0.2, high=3.0)),
    "tanh": (ms.tanh, np.tanh, {}),
    "sigmoid": (ms.sigmoid, _sigmoid, {}),
    "relu": (ms.relu, lambda x: np.maximum(x, 0), dict(away_from_zero=0.05)),
    "pow": (lambda x: ms.pow(x, 3), lambda x: x ** 3, {}),
    "pow_fractional": (lambda x: x ** 0.5, np.sqrt, dict(low=0.2, high=3.0)),
    "pow_negative": (lambda x: x ** -2, lambda x: x ** -2.0, dict(away_from_zero=0.3)),
    "softmax": (ms.softmax, lambda x: np.exp(_log_softmax(x)), {}),
    "log_softmax": (ms.log_softmax, _log_softmax, {}),
    "gelu": (ms.gelu, _gelu, {}),
    "gelu_tanh": (lambda x: ms.gelu(x, approximate="tanh"), _gelu_tanh, {}),
}

BINARY = {
    "add": (ms.add, np.add, {}),
    "sub": (ms.sub, np.subtract, {}),
    "mul": (ms.mul, np.multiply, {}),
    "div": (ms.div, np.divide, dict(away_from_zero=0.3)),
    "maximum": (ms.maximum, np.maximum, {}),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_ops(name, data):
    ours, numpy_fn, domain = UNARY[name]
    x = data.draw(shapes().flatmap(lambda s: arrays(s, **domain)))
    np.testing.assert_allclose(ours(ms.tensor(x)).data, numpy_fn(x), rtol=1e-12, atol=1e-12)
    assert gradcheck(ours, x)


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_ops_broadcast(name, data):
    ours, numpy_fn, domain = BINARY[name]
    shape_a, shape_b = data.draw(broadcastable_shapes())
    a = data.draw(arrays(shape_a))
    b = data.draw(arrays(shape_b, **domain))
    if name == "maximum":  # keep away from ties, where max has a kink
        a = np.where(np.abs(a - b) < 0.05, a + 0.1, a)
    got = ours(ms.tensor(a), ms.tensor(b))
    np.testing.assert_allclose(got.data, numpy_fn(a, b), rtol=1e-12)
    assert gradcheck(ours, a, b)


@given(data=st.data())
def test_binary_ops_with_plain_numbers(data):
    x = data.draw(shapes().flatmap(lambda s: arrays(s, away_from_zero=0.3)))
    cases = [lambda t: 2 * t, lambda t: t - 1.5, lambda t: 1.5 - t, lambda t: 3 / t,
             lambda t: t / 4, lambda t: t + np.ones(x.shape)]
    for f in cases:
        assert gradcheck(f, x)


@given(data=st.data())
def test_matmul_2d_and_batched(data):
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    batch = data.draw(st.sampled_from([(), (2,), (2, 3)]))
    b_batch = data.draw(st.sampled_from([batch, batch[-1:], ()]))  # W shared across the batch
    a = data.draw(arrays(batch + (n, k)))
    b = data.draw(arrays(b_batch + (k, m)))
    np.testing.assert_allclose((ms.tensor(a) @ ms.tensor(b)).data, a @ b, rtol=1e-12)
    assert gradcheck(ms.matmul, a, b)


REDUCTIONS = {"sum": (ms.sum, np.sum), "mean": (ms.mean, np.mean), "max": (ms.max, np.max)}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data(), keepdims=st.booleans())
def test_reductions(name, data, keepdims):
    ours, numpy_fn = REDUCTIONS[name]
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(distinct_arrays(shape))
    axis = data.draw(st.sampled_from([None, *range(len(shape)), -1]))
    got = ours(ms.tensor(x), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(got.data, numpy_fn(x, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert gradcheck(lambda t: ours(t, axis=axis, keepdims=keepdims), x)


def test_max_splits_the_gradient_between_ties():
    x = ms.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    ms.max(x).backward()
    np.testing.assert_array_equal(x.grad, [0, 0.5, 0.5, 0])
    a, b = ms.tensor([1.0, 2.0], requires_grad=True), ms.tensor([1.0, 5.0], requires_grad=True)
    ms.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5, 0])
    np.testing.assert_array_equal(b.grad, [0.5, 1])


@given(data=st.data())
def test_reshape_and_transpose(data):
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(arrays(shape))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    assert gradcheck(lambda t: ms.transpose(t, axes), x)
    assert gradcheck(lambda t: ms.transpose(t, tuple(a - len(shape) for a in axes)), x)
    assert gradcheck(lambda t: t.T, x)
    assert gradcheck(lambda t: ms.reshape(t, (-1,)), x)
    assert gradcheck(lambda t: t.reshape(x.size, 1), x)


@given(data=st.data())
def test_getitem_slices_and_repeated_integer_indices(data):
    rows, cols = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    table = data.draw(arrays((rows, cols)))
    ids = np.array(data.draw(st.lists(st.integers(0, rows - 1), min_size=1, max_size=8)))
    np.testing.assert_array_equal(ms.tensor(table)[ids].data, table[ids])
    assert gradcheck(lambda t: t[ids], table)  # an embedding lookup
    assert gradcheck(lambda t: t[1:, ::2], table)
    assert gradcheck(lambda t: t[:, -1], table)
    assert gradcheck(lambda t: ms.getitem(t, (ids, ids % cols)), table)


def test_getitem_repeated_index_accumulates():
    table = ms.tensor(np.zeros((3, 2)), requires_grad=True)
    table[np.array([0, 2, 0, 0])].sum().backward()
    np.testing.assert_array_equal(table.grad, [[3, 3], [0, 0], [1, 1]])


@given(data=st.data())
def test_concat_stack_split(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a, b = data.draw(arrays(shape)), data.draw(arrays(shape))
    np.testing.assert_array_equal(ms.concat([a, b], axis=axis).data,
                                  np.concatenate([a, b], axis=axis))
    np.testing.assert_array_equal(ms.stack([a, b], axis=axis).data, np.stack([a, b], axis=axis))
    assert gradcheck(lambda s, t: ms.concat([s, t, s], axis=axis), a, b)
    assert gradcheck(lambda s, t: ms.stack([s, t], axis=axis), a, b)
    assert gradcheck(lambda s: ms.concat(ms.split(s, 2, axis=axis)[::-1], axis=axis),
                     np.concatenate([a, b], axis=axis))
    parts = ms.split(ms.tensor(np.concatenate([a, b, a], axis=axis)), [shape[axis]], axis=axis)
    assert [p.shape[axis] for p in parts] == [shape[axis], 2 * shape[axis]]


@given(data=st.data())
def test_where(data):
    shape_c, shape_a, shape_b = data.draw(broadcastable_shapes(num_shapes=3))
    cond = data.draw(st.builds(lambda s: np.random.default_rng(s).random(shape_c) > 0.5,
                               st.integers(0, 2**32 - 1)))
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    np.testing.assert_array_equal(ms.where(cond, a, b).data, np.where(cond, a, b))
    assert gradcheck(lambda s, t: ms.where(cond, s, t), a, b)


@given(data=st.data(), reduction=st.sampled_from(["mean", "sum"]))
def test_cross_entropy_with_ignore_index(data, reduction):
    n, classes = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 5))
    logits = data.draw(arrays((n, classes), -4, 4))
    targets = np.array(data.draw(st.lists(st.integers(-1, classes - 1), min_size=n, max_size=n)))
    kept = targets != -1
    picked = -_log_softmax(logits)[np.arange(n), np.where(kept, targets, 0)] * kept
    expected = picked.sum() / (max(kept.sum(), 1) if reduction == "mean" else 1)
    got = ms.cross_entropy(ms.tensor(logits), targets, ignore_index=-1, reduction=reduction)
    np.testing.assert_allclose(got.item(), expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda t: ms.cross_entropy(t, targets, ignore_index=-1,
                                                reduction=reduction), logits)


@given(data=st.data())
def test_cross_entropy_over_a_sequence_batch(data):
    b, t, classes = (data.draw(st.integers(1, 3)) for _ in range(3))
    logits = data.draw(arrays((b, t, classes + 1), -3, 3))
    targets = np.random.default_rng(b * t).integers(0, classes + 1, (b, t))
    assert gradcheck(lambda x: ms.cross_entropy(x, targets), logits)


@given(data=st.data())
def test_binary_cross_entropy_with_logits(data):
    logits = data.draw(shapes(min_dims=1).flatmap(lambda s: arrays(s, -4, 4)))
    targets = (np.arange(logits.size).reshape(logits.shape) % 2).astype(float)
    p = _sigmoid(logits)
    expected = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean()
    got = ms.binary_cross_entropy_with_logits(ms.tensor(logits), targets)
    np.testing.assert_allclose(got.item(), expected, rtol=1e-10)
    assert gradcheck(lambda t: ms.binary_cross_entropy_with_logits(t, targets), logits)


def test_fused_losses_stay_finite_for_huge_logits():
    logits = ms.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]]), requires_grad=True)
    loss = ms.cross_entropy(logits, np.array([1, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad).all()
    np.testing.assert_allclose(loss.item(), 2e4)
    flat = ms.tensor(np.array([1e4, -1e4]), requires_grad=True)
    bce = ms.binary_cross_entropy_with_logits(flat, np.array([0.0, 1.0]))
    bce.backward()
    np.testing.assert_allclose(bce.item(), 1e4)
    np.testing.assert_allclose(flat.grad, [0.5, -0.5])
    for op in (ms.softmax, ms.log_softmax, ms.sigmoid):
        assert np.isfinite(op(ms.tensor(np.array([1e4, -1e4]))).data).all()


@given(data=st.data())
def test_random_compositions(data):
    """Small networks of ops, the way models use them, checked end to end."""
    n, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    x, w, b = data.draw(arrays((n, d))), data.draw(arrays((d, d))), data.draw(arrays((d,)))

    def net(x, w, b):
        h = ms.tanh(x @ w + b)
        gate = ms.sigmoid(h * 2 - b)
        mixed = gate * h + (1 - gate) * ms.exp(-x * x)
        return ms.log_softmax(mixed, axis=-1).sum(axis=0) / (1 + ms.relu(b) ** 2)

    assert gradcheck(net, x, w, b)


def test_gradients_accumulate_over_uses_and_calls():
    x = ms.tensor(np.array([2.0]), requires_grad=True)
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1
    np.testing.assert_allclose(x.grad, [5.0])
    (x * 3).sum().backward()  # leaves accumulate, like PyTorch
    np.testing.assert_allclose(x.grad, [8.0])


@given(data=st.data())
def test_deferred_weight_products_and_row_slices_sum_like_dense_gradients(data):
    """With the speed devices on (microseq.fast), backward() defers a matmul's
    weight gradient a^T g (a Product) and a slice's gradient (a Scatter)
    until every use is in, then sums them: the products as one matmul,
    slices taking each row once by stacking, any other slices by adding in
    place. Each path, mixed with dense gradients of the same tensors, against
    central differences (with the devices off: the plain path on the same)."""
    T, B, D = (data.draw(st.integers(1, 4)) for _ in range(3))
    x, w = data.draw(arrays((T, B, D))), data.draw(arrays((D, D)))

    def every_row_once(x, w):  # x: one Scatter per row (stacked); w: T Products
        return ms.stack([ms.tanh(x[t] @ w) for t in range(T)])

    def rows_mixed_with_dense_uses(x, w):  # a repeated row, a slice, the whole x
        steps = [x[t] @ w for t in range(T)] + [x[0] @ w, x[-1:].sum(0) @ w]
        return ms.stack(steps) * 2 + (x @ w).sum(0)

    assert gradcheck(every_row_once, x, w)
    assert gradcheck(rows_mixed_with_dense_uses, x, w)


def test_deferred_gradients_accumulate_into_leaves_over_calls():
    w = ms.tensor(np.eye(2), requires_grad=True)
    x = ms.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    for _ in range(2):
        ms.stack([x[t:t + 1] @ w for t in range(2)] + [x[0:1] @ w]).sum().backward()
    np.testing.assert_allclose(w.grad, 2 * np.array([[5.0, 5.0], [8.0, 8.0]]))
    np.testing.assert_allclose(x.grad, 2 * np.array([[2.0, 2.0], [1.0, 1.0]]))


def test_intermediate_gradients_are_kept_and_not_stale():
    x = ms.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2
    loss = (h * h).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(h.grad, 2 * h.data)
    loss.backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)  # recomputed, not doubled
    np.testing.assert_allclose(x.grad, 2 * 8 * x.data)


def test_backward_twice_needs_retain_graph():
    x = ms.tensor(np.ones(3), requires_grad=True)
    loss = ms.tanh(x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        loss.backward()


def test_a_10000_step_chain_backpropagates_without_recursion():
    x = ms.tensor(np.array([0.5]), requires_grad=True)
    h = x
    for _ in range(10_000):
        h = ms.tanh(h * 0.5 + 0.1)
    h.sum().backward()
    assert x.grad.shape == (1,) and np.isfinite(x.grad).all()


def test_no_grad_builds_no_graph():
    w = ms.tensor(np.ones(2), requires_grad=True)
    with ms.no_grad():
        y = w * 2
    assert not y.requires_grad and y._parents == ()
    assert (w * 2).requires_grad


def test_float32_weights_get_float32_gradients_from_float64_inputs():
    w = ms.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    (ms.tensor(np.ones((1, 2))) @ w).sum().backward()
    assert w.grad.dtype == np.float32


def test_constructors():
    assert ms.zeros(2, 3).shape == (2, 3) and ms.ones((4,)).data.sum() == 4
    assert ms.tensor([1.0, 2.0]).dtype == np.float32  # python floats: the default dtype
    assert ms.tensor(np.array([1.0])).dtype == np.float64  # numpy arrays keep theirs
    np.testing.assert_array_equal(ms.randn(3, rng=7).data, ms.randn(3, rng=7).data)
    ms.manual_seed(3)
    first = ms.randn(4).data
    ms.manual_seed(3)
    np.testing.assert_array_equal(ms.randn(4).data, first)
    t = ms.tensor([[1.0, 2.0]], requires_grad=True)
    assert t.detach().requires_grad is False and t.numpy() is t.data
    assert ms.tensor(3.5).item() == 3.5 and len(t) == 1
    copy = ms.tensor(t, requires_grad=True)  # from a Tensor: a new leaf with its own values
    copy.data += 1
    assert t.data.tolist() == [[1.0, 2.0]] and copy._parents == ()


def test_tensors_iterate_like_numpy_arrays():
    rows = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = ms.tensor(rows, requires_grad=True)
    assert [r.data.tolist() for r in t] == rows.tolist()
    a, b = t
    (a * 2 + b).sum().backward()  # the rows are getitems: gradients flow back
    np.testing.assert_array_equal(t.grad, [[2.0, 2.0], [1.0, 1.0]])
    np.testing.assert_array_equal(np.asarray(t), rows)
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    with pytest.raises(IndexError, match=r"getitem: \(2, 2\) and int: index 5 is out of bounds"):
        t[5]  # an IndexError, as numpy's, and still a ShapeError naming the op
    with pytest.raises(ms.ShapeError):
        t[5]
    with pytest.raises(TypeError):
        iter(ms.tensor(1.0))  # a 0-d tensor has no rows


def test_tensor_copies_and_from_numpy_shares():
    array = np.ones(3)
    copied, shared = ms.tensor(array, requires_grad=True), ms.from_numpy(array)
    copied.data += 1
    assert array.tolist() == [1.0, 1.0, 1.0]
    shared.data += 1
    assert array.tolist() == [2.0, 2.0, 2.0] and shared.dtype == np.float64
    with pytest.raises(TypeError, match="from_numpy: expected a numpy array, got list"):
        ms.from_numpy([1.0])


# --- errors name the op and the shapes, at the call site -----------------------

@pytest.mark.parametrize("call, message", [
    (lambda: ms.ones(3, 4) @ ms.ones(5, 2),
     r"matmul: \(3, 4\) and \(5, 2\): inner dimensions 4 and 5"),
    (lambda: ms.ones(3) @ ms.ones(3, 2), r"matmul: \(3,\) and \(3, 2\): both operands need"),
    (lambda: ms.ones(3, 4) + ms.ones(5), r"add: \(3, 4\) and \(5,\)"),
    (lambda: ms.ones(3, 4) * ms.ones(2, 4), r"mul: \(3, 4\) and \(2, 4\)"),
    (lambda: ms.ones(2, 3).reshape(4, 2), r"reshape: \(2, 3\)"),
    (lambda: ms.ones(2, 3)[5], r"getitem: \(2, 3\)"),
    (lambda: ms.concat([ms.ones(2, 3), ms.ones(3, 2)]), r"concat: \(2, 3\) and \(3, 2\)"),
    (lambda: ms.concat([ms.ones(2, 3), ms.ones(2, 3)], axis=2),
     r"concat: \(2, 3\) and \(2, 3\): axis 2 is out of range for 2 axes \(allowed: -2 to 1\)"),
    (lambda: ms.stack([ms.ones(2, 3)], axis=-4), r"stack: \(2, 3\): axis -4 is out of range"),
    (lambda: ms.concat([]), r"concat: needs at least one tensor"),
    (lambda: ms.split(ms.ones(2, 3), 2), r"split: axis -1 of shape \(2, 3\)"),
    (lambda: ms.cross_entropy(ms.ones(4, 3), np.zeros(5, int)),
     r"cross_entropy: .*targets of shape \(4,\)"),
    (lambda: ms.cross_entropy(ms.ones(4, 3), np.full(4, 3)), r"cross_entropy: .*outside 0..2"),
    (lambda: ms.cross_entropy(ms.ones(4, 3), np.zeros(4)), r"cross_entropy: .*must be integers"),
    (lambda: ms.pow(ms.ones(2), ms.ones(2)), r"pow: .*exponent must be a number"),
])
def test_errors_name_the_op_and_shapes(call, message):
    with pytest.raises(ms.ShapeError, match=message):
        call()


def test_backward_errors():
    with pytest.raises(RuntimeError, match="single value"):
        (ms.ones(3, requires_grad=True) * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        ms.ones(1).backward()
    with pytest.raises(ms.ShapeError, match=r"grad of shape \(2,\) for a tensor of shape \(3,\)"):
        (ms.ones(3, requires_grad=True) * 2).backward(np.ones(2))


def test_detect_anomaly_names_the_op_and_scope():
    x = ms.tensor(np.array([1.0, -1.0]), requires_grad=True)
    with ms.detect_anomaly(), ms.scope("t=2"), np.errstate(all="ignore"):
        with pytest.raises(ms.AnomalyError, match="log in scope 't=2': its value became NaN"):
            ms.log(x)
    y = ms.tensor(np.array([0.0]), requires_grad=True)
    loss = (y ** 0.5).sum()  # finite value, infinite gradient at 0
    with ms.detect_anomaly(), np.errstate(all="ignore"), \
            pytest.raises(ms.AnomalyError, match="pow: its gradient"):
        loss.backward()


def test_scopes_tag_the_nodes_built_inside():
    x = ms.ones(2, requires_grad=True)
    with ms.scope("encoder"), ms.scope("t=1"):
        h = ms.tanh(x)
    assert h._scope == "encoder/t=1" and (h * 2)._scope is None


# --- the scalar engine and the tensor engine agree ----------------------------

SCALAR_TWINS = {
    "exp": (lambda v: v.exp(), ms.exp), "log": (lambda v: v.log(), ms.log),
    "tanh": (lambda v: v.tanh(), ms.tanh), "sigmoid": (lambda v: v.sigmoid(), ms.sigmoid),
    "relu": (lambda v: v.relu(), ms.relu), "neg": (lambda v: -v, ms.neg),
    "pow": (lambda v: v ** 3, lambda t: t ** 3),
}


@given(data=st.data())
def test_scalar_and_tensor_engines_agree_elementwise(data):
    from microseq.scalar import Value

    x = data.draw(arrays((3,), 0.2, 2.0))
    y = data.draw(arrays((3,), 0.2, 2.0))
    for name, (scalar_op, tensor_op) in SCALAR_TWINS.items():
        values = [Value(v) for v in x]
        for v in values:
            scalar_op(v).backward()
        t = ms.tensor(x, requires_grad=True)
        tensor_op(t).sum().backward()
        np.testing.assert_allclose(t.grad, [v.grad for v in values], rtol=1e-12, err_msg=name)
    for scalar_op, tensor_op in [(lambda a, b: a * b + a / b - b, lambda a, b: a * b + a / b - b)]:
        va, vb = [Value(v) for v in x], [Value(v) for v in y]
        for a, b in zip(va, vb):
            scalar_op(a, b).backward()
        ta, tb = ms.tensor(x, requires_grad=True), ms.tensor(y, requires_grad=True)
        tensor_op(ta, tb).sum().backward()
        np.testing.assert_allclose(ta.grad, [v.grad for v in va], rtol=1e-12)
        np.testing.assert_allclose(tb.grad, [v.grad for v in vb], rtol=1e-12)


@given(data=st.data())
def test_scalar_and_tensor_engines_agree_on_a_small_matmul(data):
    from microseq.scalar import Value

    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    a, b = data.draw(arrays((n, k))), data.draw(arrays((k, m)))
    va = [[Value(v) for v in row] for row in a]
    vb = [[Value(v) for v in row] for row in b]
    total = sum((sum((va[i][j] * vb[j][c] for j in range(k)), Value(0.0)).tanh()
                 for i in range(n) for c in range(m)), Value(0.0))
    total.backward()
    ta, tb = ms.tensor(a, requires_grad=True), ms.tensor(b, requires_grad=True)
    ms.tanh(ta @ tb).sum().backward()
    np.testing.assert_allclose(total.data, ms.tanh(ms.tensor(a) @ ms.tensor(b)).data.sum())
    np.testing.assert_allclose(ta.grad, [[v.grad for v in row] for row in va],
                               rtol=1e-10, atol=1e-12)  # tanh' near 0 where x saturates
    np.testing.assert_allclose(tb.grad, [[v.grad for v in row] for row in vb],
                               rtol=1e-10, atol=1e-12)  # tanh' near 0 where x saturates
