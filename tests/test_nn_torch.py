"""microseq.nn against PyTorch, when torch happens to be installed (it is not
a dependency): the same numpy state dict in both, the same outputs and the
same gradients, in float64 and in float32."""
import numpy as np
import pytest

import microseq as ms
from microseq import nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.nn

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def twins(ours, theirs, dtype):
    """Random torch weights, loaded into ours as numpy arrays."""
    torch.manual_seed(0)
    theirs = theirs.to(TORCH_DTYPE[dtype])
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-0.7, 0.7)
    ours.to(dtype).load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def assert_same(ours, theirs, dtype, name=""):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype],
                               err_msg=name)


def flat(output, state):
    return (output, *state) if isinstance(state, tuple) else (output, state)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,options", [
    ("RNN", {}), ("RNN", {"nonlinearity": "relu", "bias": False}), ("LSTM", {}),
    ("LSTM", {"batch_first": True}), ("GRU", {}), ("GRU", {"batch_first": True, "bias": False}),
])
def test_recurrent_layers_match_torch(kind, options, dtype):
    ours, theirs = twins(getattr(nn, kind)(3, 5, num_layers=2, **options),
                         getattr(torch.nn, kind)(3, 5, num_layers=2, **options), dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 3)).astype(dtype)
    h0 = rng.standard_normal((2, 6 if not options.get("batch_first") else 4, 5)).astype(dtype)
    state = (h0, 0.5 * h0) if kind == "LSTM" else h0
    x_ours, state_ours = ms.Tensor(x, requires_grad=True), _leaves(state, ms.Tensor)
    x_theirs, state_theirs = torch.tensor(x, requires_grad=True), _leaves(state, torch.tensor)
    ours_out = flat(*ours(x_ours, state_ours))
    theirs_out = flat(*theirs(x_theirs, state_theirs))
    weights = [rng.standard_normal(o.shape).astype(dtype) for o in ours_out]
    sum((o * w).sum() for o, w in zip(ours_out, weights, strict=True)).backward()
    sum((o * torch.tensor(w)).sum() for o, w in zip(theirs_out, weights, strict=True)).backward()
    for a, b in zip(ours_out, theirs_out, strict=True):
        assert_same(a.data, b, dtype)
    assert_same(x_ours.grad, x_theirs.grad, dtype, "x")
    for a, b in zip(_as_tuple(state_ours), _as_tuple(state_theirs), strict=True):
        assert_same(a.grad, b.grad, dtype, "initial state")
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_same(p.grad, their_params[name].grad, dtype, name)


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def _leaves(state, make):
    leaves = tuple(make(s, requires_grad=True) for s in _as_tuple(state))
    return leaves if isinstance(state, tuple) else leaves[0]


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(kind):
    ours, theirs = twins(getattr(nn, kind)(3, 4), getattr(torch.nn, kind)(3, 4), np.float64)
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    state = (h, -h) if kind == "LSTMCell" else h
    ours_out = ours(x, _leaves(state, ms.Tensor))
    theirs_out = theirs(torch.tensor(x), _leaves(state, torch.tensor))
    for a, b in zip(_as_tuple(ours_out), _as_tuple(theirs_out), strict=True):
        assert_same(a.data, b, np.float64)
    sum(a.sum() for a in _as_tuple(ours_out)).backward()
    sum(b.sum() for b in _as_tuple(theirs_out)).backward()
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_same(p.grad, their_params[name].grad, np.float64, name)


def test_linear_and_embedding_match_torch():
    linear, torch_linear = twins(nn.Linear(4, 3), torch.nn.Linear(4, 3), np.float64)
    embed, torch_embed = twins(nn.Embedding(6, 4, padding_idx=2),
                               torch.nn.Embedding(6, 4, padding_idx=2), np.float64)
    # torch's padding row starts at zero; random weights overwrote it, so zero both again.
    with torch.no_grad():
        torch_embed.weight[2] = 0
    embed.weight.data[2] = 0
    ids = np.array([[0, 2, 5], [5, 5, 1]])
    out = linear(embed(ids))
    torch_out = torch_linear(torch_embed(torch.tensor(ids)))
    assert_same(out.data, torch_out, np.float64)
    out.sum().backward()
    torch_out.sum().backward()
    for ours, theirs in ((linear, torch_linear), (embed, torch_embed)):
        their_params = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_same(p.grad, their_params[name].grad, np.float64, name)


def test_dot_attention_matches_torch():
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((2, n, 4)) for n in (3, 5, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1]], bool)
    context, weights = nn.DotAttention()(q, k, v, mask)
    torch_context = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a) for a in (q, k, v)), attn_mask=torch.tensor(mask)[:, None, :])
    assert_same(context.data, torch_context, np.float64)
    assert (weights.data[~np.broadcast_to(mask[:, None], weights.shape)] == 0).all()


def test_load_state_dict_reports_the_keys_pytorch_reports():
    ours, theirs = nn.LSTM(2, 3, num_layers=2), torch.nn.LSTM(2, 3, num_layers=2)
    state = {k: v.numpy() for k, v in theirs.state_dict().items() if "l1" not in k}
    state["weight_hh_10"] = state.pop("weight_hh_l0")  # a misspelled key
    got = ours.load_state_dict(state, strict=False)
    want = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()},
                                  strict=False)
    assert (got.missing_keys, got.unexpected_keys) == (want.missing_keys, want.unexpected_keys)
    assert got.missing_keys and got.unexpected_keys == ["weight_hh_10"]
    assert repr(ours.load_state_dict(ours.state_dict())) == repr(
        theirs.load_state_dict(theirs.state_dict()))
