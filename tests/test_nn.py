"""microseq.nn: modules, layers, recurrent cells and layers, attention.

Gradients are checked in float64 two ways: against the hand-derived numpy
backward in microseq.reference (element by element, one layer), and against
central differences along a random direction for every input and parameter
(any layer count): <grad, d> == (L(x + eps d) - L(x - eps d)) / (2 eps).
The loss is L = sum(R * output) + sum(R' * final state) for random R, R'.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import microseq as ms
from microseq import nn
from microseq import reference as ref

pytestmark = pytest.mark.nn

seeds = st.integers(0, 2**32 - 1)
T_ = st.integers(1, 5)
B_ = st.integers(1, 3)
D_ = st.integers(1, 4)
H_ = st.integers(1, 4)
KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}

# eps = 1e-6 in float64: truncation ~eps^2, round-off ~1e-16 |L| / eps.
EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-8


def leaf(array):
    return ms.Tensor(np.asarray(array, np.float64), requires_grad=True)


def randomize(module, rng):
    """float64 parameters ~ N(0, 1/fan): large enough to reach every nonlinearity."""
    module.to(np.float64)
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(p.shape[-1])
    return module


def check_directional(loss, tensors, rng):
    """Autograd against central differences along one random direction per tensor."""
    for t in tensors.values():
        t.grad = None
    loss().backward()
    for name, t in tensors.items():
        d = rng.standard_normal(t.shape)
        analytic = np.sum(t.grad * d)
        original = t.data
        with ms.no_grad():
            t.data = original + EPS * d
            up = loss().item()
            t.data = original - EPS * d
            down = loss().item()
        t.data = original
        numeric = (up - down) / (2 * EPS)
        assert abs(analytic - numeric) <= ATOL + RTOL * abs(numeric), (name, analytic, numeric)


def initial_state(kind, rng, L, B, H):
    if kind == "lstm":
        return leaf(rng.standard_normal((L, B, H))), leaf(rng.standard_normal((L, B, H)))
    return leaf(rng.standard_normal((L, B, H)))


def state_tensors(kind, state):
    return dict(zip(("h0", "c0"), state, strict=True)) if kind == "lstm" else {"h0": state}


def weighted_sum(outputs, weights):
    return sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))


def flat(output, state):
    """output, h_n (or output, (h_n, c_n)) as one tuple."""
    return (output, *state) if isinstance(state, tuple) else (output, state)


# --- recurrent layers: reference and finite differences --------------------


@given(kind=st.sampled_from(sorted(KINDS)), T=T_, B=B_, D=D_, H=H_, seed=seeds,
       relu=st.booleans())
def test_recurrent_layer_matches_reference(kind, T, B, D, H, seed, relu):
    rng = np.random.default_rng(seed)
    options = {"nonlinearity": "relu" if relu else "tanh"} if kind == "rnn" else {}
    layer = randomize(KINDS[kind](D, H, **options), rng)
    x, state = leaf(rng.standard_normal((T, B, D))), initial_state(kind, rng, 1, B, H)
    out, final = layer(x, state)
    outputs = flat(out, final)
    weights = [rng.standard_normal(o.shape) for o in outputs]
    weighted_sum(outputs, weights).backward()

    W = [p.data for p in layer.parameters()]  # weight_ih, weight_hh, bias_ih, bias_hh
    dhs, dh_last = weights[0], weights[1][0]
    if kind == "rnn":
        hs, cache = ref.rnn_forward(x.data, state.data[0], *W, **options)
        grads = ref.rnn_backward(dhs, cache, dh_last)
    elif kind == "lstm":
        hs, c_last, cache = ref.lstm_forward(x.data, state[0].data[0], state[1].data[0], *W)
        grads = ref.lstm_backward(dhs, cache, dh_last, weights[2][0])
        np.testing.assert_allclose(final[1].data[0], c_last, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state[1].grad[0], grads["c0"], rtol=1e-10, atol=1e-12)
        state = state[0]
    else:
        hs, cache = ref.gru_forward(x.data, state.data[0], *W)
        grads = ref.gru_backward(dhs, cache, dh_last)
    np.testing.assert_allclose(out.data, hs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outputs[1].data[0], hs[-1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad, grads["x"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state.grad[0], grads["h0"], rtol=1e-10, atol=1e-12)
    for p, name in zip(layer.parameters(), ("W_ih", "W_hh", "b_ih", "b_hh"), strict=True):
        np.testing.assert_allclose(p.grad, grads[name], rtol=1e-10, atol=1e-12, err_msg=name)


@given(kind=st.sampled_from(sorted(KINDS)), T=T_, B=B_, D=D_, H=H_, L=st.integers(1, 2),
       bias=st.booleans(), batch_first=st.booleans(), seed=seeds)
def test_recurrent_layer_matches_finite_differences(kind, T, B, D, H, L, bias, batch_first,
                                                     seed):
    rng = np.random.default_rng(seed)
    layer = randomize(KINDS[kind](D, H, num_layers=L, bias=bias, batch_first=batch_first), rng)
    x = leaf(rng.standard_normal((B, T, D) if batch_first else (T, B, D)))
    state = initial_state(kind, rng, L, B, H)
    outputs = flat(*layer(x, state))
    weights = [rng.standard_normal(o.shape) for o in outputs]
    tensors = {"x": x, **state_tensors(kind, state), **dict(layer.named_parameters())}
    check_directional(lambda: weighted_sum(flat(*layer(x, state)), weights), tensors, rng)


@given(kind=st.sampled_from(sorted(KINDS)), T=T_, B=B_, D=D_, H=H_, seed=seeds)
def test_cell_loop_equals_layer(kind, T, B, D, H, seed):
    rng = np.random.default_rng(seed)
    layer = randomize(KINDS[kind](D, H), rng)
    cell = CELLS[kind](D, H).to(np.float64)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = rng.standard_normal((T, B, D))
    out, _ = layer(x)
    out.sum().backward()
    state, hs = None, []
    for t in range(T):
        state = cell(x[t], state)
        hs.append(state[0] if kind == "lstm" else state)
    ms.stack(hs).sum().backward()
    np.testing.assert_allclose(ms.stack(hs).data, out.data, rtol=1e-12, atol=1e-12)
    for (name, p), q in zip(layer.named_parameters(), cell.parameters(), strict=True):
        np.testing.assert_allclose(q.grad, p.grad, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_batch_first_equals_time_major(kind):
    rng = np.random.default_rng(0)
    time_major = randomize(KINDS[kind](3, 4, num_layers=2), rng)
    batch_first = KINDS[kind](3, 4, num_layers=2, batch_first=True).to(np.float64)
    batch_first.load_state_dict(time_major.state_dict())
    x = rng.standard_normal((5, 2, 3))
    out_t, state_t = time_major(x)
    out_b, state_b = batch_first(x.transpose(1, 0, 2))
    np.testing.assert_allclose(out_b.data, out_t.data.transpose(1, 0, 2), rtol=1e-12)
    for a, b in zip(flat(out_t, state_t)[1:], flat(out_b, state_b)[1:], strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_state_carries_across_chunks(kind):
    """Truncated BPTT: two chunks, the final state of the first starting the
    second, give the same outputs as the whole sequence at once."""
    rng = np.random.default_rng(1)
    layer = randomize(KINDS[kind](3, 4, num_layers=2), rng)
    x = rng.standard_normal((6, 2, 3))
    whole, _ = layer(x)
    first, state = layer(x[:4])
    second, _ = layer(x[4:], state)
    np.testing.assert_allclose(np.concatenate([first.data, second.data]), whole.data,
                               rtol=1e-12)


def graph_nodes(root):
    nodes, stack = {}, [root]
    while stack:
        node = stack.pop()
        if isinstance(node, ms.Tensor) and id(node) not in nodes:
            nodes[id(node)] = node
            stack.extend(node.parents)
    return list(nodes.values())


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("fast", [True, False])
def test_each_step_is_built_in_its_scope(kind, L, fast):
    """Fast: one fused cell op per step. Plain: the step from primitive ops,
    its own matmul by W_hh among them."""
    layer = KINDS[kind](3, 4, num_layers=L)
    with ms.fast.switched(fast), ms.scope("encoder"):
        out, _ = layer(np.ones((4, 2, 3), np.float32))
    ops = [n for n in graph_nodes(out) if n.op]
    prefix = ["encoder/layer0/", "encoder/layer1/"] if L == 2 else ["encoder/"]
    steps = {f"{p}t={t}" for p in prefix for t in range(1, 5)}  # numbered from 1
    assert {n.scope for n in ops} >= steps
    for scope in steps:
        cells = sum(n.op == f"{kind}_cell" and n.scope == scope for n in ops)
        matmuls = sum(n.op == "matmul" and n.scope == scope for n in ops)
        assert (cells, matmuls) == ((1, 0) if fast else (0, 1)), scope
    # The input projection (one matmul per layer) is outside the steps.
    layers = {p.rstrip("/") for p in prefix}
    assert sum(n.op == "matmul" and n.scope in layers for n in ops) == L


def test_recurrent_errors_name_the_layer_and_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(TypeError, match=r"LSTM: the state must be a pair \(h, c\), got one "
                                        r"tensor of shape \(2, 2, 4\)"):
        lstm(np.ones((5, 2, 3)), ms.zeros(2, 2, 4))
    with pytest.raises(TypeError, match=r"LSTMCell: the state must be a pair \(h, c\)"):
        nn.LSTMCell(3, 4)(np.ones((2, 3)), np.zeros((2, 4)))
    for layer in (nn.RNN(3, 4), nn.GRU(3, 4, batch_first=True), lstm):
        x = np.ones((2, 0, 3)) if layer.batch_first else np.ones((0, 2, 3))
        with pytest.raises(ms.ShapeError, match=type(layer).__name__ + ": the input sequence "
                                                "is empty"):
            layer(x)
    with pytest.raises(ms.ShapeError, match=r"LSTM: expected input \(time, batch, 3\)"):
        lstm(np.ones((5, 2, 4)))
    with pytest.raises(ms.ShapeError, match=r"expected initial state of shape \(2, 2, 4\)"):
        lstm(np.ones((5, 2, 3)), (np.zeros((2, 4)), np.zeros((2, 4))))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


def test_recurrent_dropout_only_while_training():
    ms.manual_seed(0)
    rnn = nn.GRU(3, 8, num_layers=2, dropout=0.5)
    x = np.ones((4, 2, 3), np.float32)
    a, _ = rnn(x)
    b, _ = rnn(x)
    assert not np.allclose(a.data, b.data)
    rnn.eval()
    c, _ = rnn(x)
    d, _ = rnn(x)
    np.testing.assert_array_equal(c.data, d.data)


# --- attention ---------------------------------------------------------------


def attention_inputs(rng, B, Tq, Tk, H):
    mask = rng.random((B, Tk)) < 0.7
    mask[:, 0] = True  # every query keeps at least one key
    return (leaf(rng.standard_normal((B, Tq, H))), leaf(rng.standard_normal((B, Tk, H))),
            leaf(rng.standard_normal((B, Tk, H))), mask)


def make_attention(kind, H, rng):
    if kind == "dot":
        return nn.DotAttention()
    return randomize(nn.AdditiveAttention(H, H, 3), rng)


@given(kind=st.sampled_from(["dot", "additive"]), B=B_, Tq=T_, Tk=T_, H=H_, seed=seeds)
def test_attention_matches_finite_differences(kind, B, Tq, Tk, H, seed):
    rng = np.random.default_rng(seed)
    attention = make_attention(kind, H, rng)
    q, k, v, mask = attention_inputs(rng, B, Tq, Tk, H)
    context, weights = attention(q, k, v, mask)
    np.testing.assert_array_equal(weights.data[~np.broadcast_to(mask[:, None], weights.shape)], 0)
    np.testing.assert_allclose(weights.data.sum(-1), 1, rtol=1e-12)
    R, S = rng.standard_normal(context.shape), rng.standard_normal(weights.shape)
    tensors = {"q": q, "k": k, "v": v, **dict(attention.named_parameters())}
    check_directional(lambda: weighted_sum(attention(q, k, v, mask), (R, S)), tensors, rng)


@given(B=B_, Tq=T_, Tk=T_, H=H_, seed=seeds, scale=st.booleans())
def test_dot_attention_matches_reference(B, Tq, Tk, H, seed, scale):
    rng = np.random.default_rng(seed)
    q, k, v, mask = attention_inputs(rng, B, Tq, Tk, H)
    context, weights = nn.DotAttention(scale)(q, k, v, mask)
    R = rng.standard_normal(context.shape)
    (context * R).sum().backward()
    out, w, cache = ref.dot_attention_forward(q.data, k.data, v.data, mask, scale=scale)
    grads = ref.dot_attention_backward(R, cache)
    np.testing.assert_allclose(context.data, out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, w, rtol=1e-10, atol=1e-12)
    for name, t in zip("qkv", (q, k, v), strict=True):
        np.testing.assert_allclose(t.grad, grads[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_attention_one_decoder_step(kind):
    rng = np.random.default_rng(0)
    attention = make_attention(kind, 4, rng)
    q, k, v, mask = attention_inputs(rng, 2, 1, 5, 4)
    context, weights = attention(q.data[:, 0], k, v, mask)
    assert context.shape == (2, 4) and weights.shape == (2, 5)
    full_context, full_weights = attention(q, k, v, mask)
    np.testing.assert_allclose(context.data, full_context.data[:, 0])
    np.testing.assert_allclose(weights.data, full_weights.data[:, 0])


@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_attention_with_every_key_masked_gives_zeros_not_nan(kind):
    rng = np.random.default_rng(0)
    attention = make_attention(kind, 4, rng)
    q, k, v, mask = attention_inputs(rng, 2, 3, 5, 4)
    mask[1] = False  # the second sequence hides all its keys
    context, weights = attention(q, k, v, mask)
    np.testing.assert_array_equal(weights.data[1], 0)
    np.testing.assert_array_equal(context.data[1], 0)
    np.testing.assert_allclose(weights.data[0].sum(-1), 1, rtol=1e-12)
    context.sum().backward()
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad))
        np.testing.assert_array_equal(t.grad[1], 0)


def test_attention_mask_shape_error():
    q = np.ones((2, 3, 4))
    with pytest.raises(ms.ShapeError, match=r"mask must have shape \(batch, keys\) = \(2, 3\)"):
        nn.DotAttention()(q, q, q, np.ones((2, 4), bool))


# --- Linear, Embedding, Dropout ----------------------------------------------


def test_linear_is_x_wt_plus_b_with_pytorch_init():
    ms.manual_seed(0)
    layer = nn.Linear(16, 3)
    assert layer.weight.shape == (3, 16) and layer.bias.shape == (3,)
    assert np.abs(layer.weight.data).max() <= 0.25 and layer.weight.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data.T + layer.bias.data,
                               rtol=1e-6)
    assert nn.Linear(4, 2, bias=False).num_parameters() == 8


def test_embedding_gradient_sums_repeated_ids():
    rng = np.random.default_rng(0)
    embed = nn.Embedding(5, 3)
    ids = np.array([[1, 3, 1], [1, 0, 3]])
    R = rng.standard_normal((2, 3, 3)).astype(np.float32)
    out = embed(ids)
    np.testing.assert_array_equal(out.data, embed.weight.data[ids])
    (out * R).sum().backward()
    expected = np.zeros((5, 3), np.float32)
    for position, i in np.ndenumerate(ids):
        expected[i] += R[position]
    np.testing.assert_allclose(embed.weight.grad, expected, rtol=1e-6)


def test_embedding_padding_row_is_zero_and_gets_no_gradient():
    embed = nn.Embedding(4, 2, padding_idx=0)
    np.testing.assert_array_equal(embed.weight.data[0], 0)
    ids = np.array([0, 2, 0])
    out = embed(ids)
    np.testing.assert_array_equal(out.data[[0, 2]], 0)
    out.sum().backward()
    np.testing.assert_array_equal(embed.weight.grad[0], 0)
    np.testing.assert_array_equal(embed.weight.grad[2], 1)
    with pytest.raises(TypeError, match="integers"):
        embed(np.array([0.0, 1.0]))


def test_dropout_scales_kept_values_and_is_identity_in_eval():
    ms.manual_seed(0)
    drop = nn.Dropout(0.25)
    out = drop(np.ones((100, 100), np.float32)).data
    assert set(np.unique(out)) == {0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.02
    ms.manual_seed(0)
    np.testing.assert_array_equal(drop(np.ones((100, 100), np.float32)).data, out)
    x = ms.ones(3, 3)
    assert drop.eval()(x) is x


# --- Module --------------------------------------------------------------------


class Tagger(nn.Module):
    def __init__(self):
        self.embed = nn.Embedding(10, 4)
        self.encoder = nn.LSTM(4, 6, num_layers=2)
        self.heads = [nn.Linear(6, 3), nn.Linear(6, 2, bias=False)]
        self.drop = nn.Dropout(0.1)

    def forward(self, ids):
        h, _ = self.encoder(self.drop(self.embed(ids)))
        return [head(h) for head in self.heads]


def test_parameters_are_named_like_pytorch():
    model = Tagger()
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        "embed.weight",
        "encoder.weight_ih_l0", "encoder.weight_hh_l0", "encoder.bias_ih_l0", "encoder.bias_hh_l0",
        "encoder.weight_ih_l1", "encoder.weight_hh_l1", "encoder.bias_ih_l1", "encoder.bias_hh_l1",
        "heads.0.weight", "heads.0.bias", "heads.1.weight",
    ]
    assert [p.label for p in model.parameters()] == names  # labels for graph rendering
    assert nn.GRUCell(2, 3).weight_hh.label == "weight_hh"  # named on assignment already
    assert model.encoder.weight_hh_l1.shape == (24, 6)
    assert model.num_parameters() == sum(p.size for p in model.parameters())
    assert [type(m).__name__ for m in model.children()] == [
        "Embedding", "LSTM", "Linear", "Linear", "Dropout"]
    assert len(list(model.modules())) == 6


def test_tied_parameter_is_listed_once():
    model = Tagger()
    model.heads[0].weight = model.embed.weight
    assert len(model.parameters()) == 11


def test_train_eval_zero_grad_and_repr():
    model = Tagger()
    assert model.eval() is model and not model.drop.training and not model.encoder.training
    model.train()
    assert all(m.training for m in model.modules())
    sum(out.sum() for out in model(np.array([[1, 2], [3, 4]]))).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    text = repr(model)
    assert "(encoder): LSTM(4, 6, num_layers=2)" in text
    assert "(heads.1): Linear(6, 2, bias=False)" in text


def test_state_dict_round_trip(tmp_path):
    model, other = Tagger().eval(), Tagger().eval()
    state = model.state_dict()
    assert list(state) == [name for name, _ in model.named_parameters()]
    state["embed.weight"][0] = 123.0  # a copy: the model is unchanged
    assert model.embed.weight.data[0, 0] != 123.0
    other.load_state_dict(model.state_dict())
    ids = np.array([[1, 2, 3]])
    for a, b in zip(model(ids), other(ids), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    np.savez(tmp_path / "model.npz", **model.state_dict())
    with np.load(tmp_path / "model.npz", allow_pickle=False) as saved:
        other.load_state_dict(dict(saved))


def test_load_state_dict_errors_name_keys_and_shapes():
    rnn = nn.RNN(16, 64)
    state = rnn.state_dict()
    before = rnn.weight_ih_l0.data.copy()
    bad = dict(state, weight_hh_l0=np.zeros((32, 16)), weight_ih_l0=np.ones((64, 16)))
    message = r"weight_hh_l0: expected shape \(64, 64\), got \(32, 16\)"
    with pytest.raises(ValueError, match=message):
        rnn.load_state_dict(bad)
    np.testing.assert_array_equal(rnn.weight_ih_l0.data, before)  # nothing was loaded
    del state["bias_hh_l0"]
    state["weight_ih_l1"] = np.zeros((64, 64))
    with pytest.raises(ValueError, match="missing keys: bias_hh_l0.*unexpected keys: weight_ih_l1"):
        rnn.load_state_dict(state)
    keys = rnn.load_state_dict(state, strict=False)
    assert keys == (["bias_hh_l0"], ["weight_ih_l1"])
    assert keys.missing_keys == ["bias_hh_l0"] and keys.unexpected_keys == ["weight_ih_l1"]


def test_load_state_dict_returns_missing_and_unexpected_keys_as_pytorch_does():
    rnn = nn.RNN(2, 3)
    matched = rnn.load_state_dict(rnn.state_dict())
    assert matched == ([], []) and repr(matched) == "<All keys matched successfully>"
    misspelled = {"weight_ih_10": np.ones((3, 2))}  # one, zero for l, zero
    keys = rnn.load_state_dict(misspelled, strict=False)
    assert keys.unexpected_keys == ["weight_ih_10"]
    assert keys.missing_keys == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert not (rnn.weight_ih_l0.data == 1).all()  # nothing loaded, and now the caller knows


def test_to_float64_casts_parameters():
    lstm = nn.LSTM(2, 3).to(np.float64)
    assert all(p.dtype == np.float64 for p in lstm.parameters())
    out, (h, c) = lstm(np.ones((2, 1, 2)))
    assert out.dtype == h.dtype == c.dtype == np.float64
