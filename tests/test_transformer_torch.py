"""The Transformer layers against PyTorch, when torch happens to be installed:
the same numpy state dict in both, then outputs, attention weights, input
gradients and parameter gradients equal in float64 to 1e-10 (and, for the
whole encoder, in float32 to 1e-5)."""
import numpy as np
import pytest

import microseq as ms
from microseq import functional as F
from microseq import nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.nn

TOL = {np.float64: 1e-10, np.float32: 1e-5}


def twins(ours, theirs, dtype=np.float64):
    """Random torch weights (LayerNorm's too, so that they matter), loaded
    into ours as numpy arrays: the state dicts must match key for key."""
    torch.manual_seed(0)
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-0.7, 0.7)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    ours.to(dtype).load_state_dict(state)
    return ours, theirs


def same(ours, theirs, name="", dtype=np.float64):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(ours, theirs, rtol=TOL[dtype], atol=TOL[dtype], err_msg=name)


def leaves(*arrays):
    """Each array as a microseq leaf and as a torch leaf, both requiring grad."""
    return ([ms.tensor(a, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


def backward_both(ours_out, theirs_out, seed=0):
    """L = sum(out * r) for one random r per output (an output or a tuple of
    them), the same in both engines, then backward."""
    ours_out = ours_out if isinstance(ours_out, tuple) else (ours_out,)
    theirs_out = theirs_out if isinstance(theirs_out, tuple) else (theirs_out,)
    rng = np.random.default_rng(seed)
    rs = [rng.standard_normal(o.shape) for o in ours_out]
    sum((o * r).sum() for o, r in zip(ours_out, rs, strict=True)).backward()
    sum((o * torch.tensor(r)).sum() for o, r in zip(theirs_out, rs, strict=True)).backward()


def same_parameter_grads(ours, theirs, dtype=np.float64):
    theirs = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        same(p.grad, theirs[name].grad, name, dtype)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch(approximate):
    x = np.concatenate([np.linspace(-12, 12, 2001), [-40.0, -1e-8, 0.0, 1e-8, 40.0]])
    (ours,), (theirs,) = leaves(x)
    out = ms.gelu(ours, approximate=approximate)
    torch_out = torch.nn.functional.gelu(theirs, approximate=approximate)
    same(out.data, torch_out)
    backward_both(out, torch_out)
    same(ours.grad, theirs.grad)


@pytest.mark.parametrize("shape,normalized_shape,options", [
    ((4, 3, 6), 6, {}), ((2, 3, 4), (3, 4), {}), ((5, 6), 6, {"elementwise_affine": False}),
    ((5, 6), 6, {"bias": False, "eps": 1e-3}),
])
def test_layer_norm_matches_torch(shape, normalized_shape, options):
    ours, theirs = twins(nn.LayerNorm(normalized_shape, **options),
                         torch.nn.LayerNorm(normalized_shape, **options))
    (x,), (tx,) = leaves(np.random.default_rng(1).standard_normal(shape) * 3 + 1)
    out, torch_out = ours(x), theirs(tx)
    same(out.data, torch_out)
    backward_both(out, torch_out)
    same(x.grad, tx.grad, "x")
    same_parameter_grads(ours, theirs)


def test_masked_softmax_matches_torch_softmax_of_masked_scores():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 5))
    keep = rng.random((3, 4, 5)) > 0.4
    keep[..., 0] = True  # torch gives NaN for a row with nothing kept
    additive = np.where(keep, rng.standard_normal((3, 4, 5)), -np.inf)
    for mask, torch_mask in ((keep, np.where(keep, 0, -np.inf)), (additive, additive)):
        (ours,), (theirs,) = leaves(x)
        out = ms.masked_softmax(ours, mask)
        torch_out = torch.softmax(theirs + torch.tensor(torch_mask), dim=-1)
        same(out.data, torch_out)
        backward_both(out, torch_out)
        same(ours.grad, theirs.grad)


def _mask(kind, N, h, L, S, rng):
    """An attn_mask of the given kind, keeping key 0 open for every query
    (torch turns a fully masked row into NaN; microseq into zeros)."""
    if kind is None:
        return None
    shape = (L, S) if kind.endswith("2d") else (N * h, L, S)
    blocked = rng.random(shape) < 0.4
    blocked[..., 0] = False
    if kind.startswith("bool"):
        return blocked
    return np.where(blocked, -np.inf, rng.standard_normal(shape))


def _padding(kind, N, S, rng):
    if kind is None:
        return None
    blocked = rng.random((N, S)) < 0.4
    blocked[:, 0] = False
    return blocked if kind == "bool" else np.where(blocked, -np.inf, 0.0)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("attn,padding", [
    (None, None), ("bool2d", None), ("float3d", None), (None, "bool"), ("bool3d", "bool"),
    ("float2d", "float"),
])
def test_multihead_self_attention_matches_torch(batch_first, attn, padding):
    E, h, N, L = 8, 2, 3, 5
    ours, theirs = twins(nn.MultiheadAttention(E, h, batch_first=batch_first),
                         torch.nn.MultiheadAttention(E, h, batch_first=batch_first))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, L, E) if batch_first else (L, N, E))
    attn_mask, key_padding_mask = _mask(attn, N, h, L, L, rng), _padding(padding, N, L, rng)
    (tx_ours,), (tx,) = leaves(x)
    masks = {"attn_mask": attn_mask, "key_padding_mask": key_padding_mask}
    out, weights = ours(tx_ours, tx_ours, tx_ours, **masks)
    torch_masks = {k: None if v is None else torch.tensor(v) for k, v in masks.items()}
    torch_out, torch_weights = theirs(tx, tx, tx, **torch_masks)
    same(out.data, torch_out, "output")
    same(weights.data, torch_weights, "weights")
    backward_both((out, weights), (torch_out, torch_weights))
    same(tx_ours.grad, tx.grad, "x")
    same_parameter_grads(ours, theirs)


@pytest.mark.parametrize("options", [
    {}, {"kdim": 3, "vdim": 5}, {"bias": False}, {"batch_first": True, "kdim": 4},
    {"add_bias_kv": True}, {"add_zero_attn": True, "batch_first": True},
    {"add_bias_kv": True, "add_zero_attn": True, "kdim": 2},
])
@pytest.mark.parametrize("average", [True, False])
def test_multihead_cross_attention_matches_torch(options, average):
    E, h, N, L, S = 6, 3, 2, 4, 5
    ours, theirs = twins(nn.MultiheadAttention(E, h, **options),
                         torch.nn.MultiheadAttention(E, h, **options))
    rng = np.random.default_rng(4)
    batch_first = options.get("batch_first", False)
    lead = (lambda T: (N, T)) if batch_first else (lambda T: (T, N))
    arrays = (rng.standard_normal((*lead(L), E)),
              rng.standard_normal((*lead(S), options.get("kdim", E))),
              rng.standard_normal((*lead(S), options.get("vdim", E))))
    ours_in, theirs_in = leaves(*arrays)
    padding = _padding("bool", N, S, rng)
    out, weights = ours(*ours_in, key_padding_mask=padding, average_attn_weights=average)
    torch_out, torch_weights = theirs(*theirs_in, key_padding_mask=torch.tensor(padding),
                                      average_attn_weights=average)
    same(out.data, torch_out, "output")
    same(weights.data, torch_weights, "weights")
    backward_both((out, weights), (torch_out, torch_weights))
    for name, a, b in zip("qkv", ours_in, theirs_in):
        same(a.grad, b.grad, name)
    same_parameter_grads(ours, theirs)


def test_multihead_attention_unbatched_and_without_weights():
    E, h, L, S = 4, 2, 3, 5
    ours, theirs = twins(nn.MultiheadAttention(E, h), torch.nn.MultiheadAttention(E, h))
    rng = np.random.default_rng(5)
    q, kv = rng.standard_normal((L, E)), rng.standard_normal((S, E))
    padding = np.array([False, True, False, False, True])
    out, weights = ours(q, kv, kv, key_padding_mask=padding)
    torch_out, torch_weights = theirs(*(torch.tensor(a) for a in (q, kv, kv)),
                                      key_padding_mask=torch.tensor(padding))
    same(out.data, torch_out)
    same(weights.data, torch_weights)
    out, weights = ours(q, kv, kv, need_weights=False)
    torch_out, _ = theirs(*(torch.tensor(a) for a in (q, kv, kv)), need_weights=False)
    same(out.data, torch_out)
    assert weights is None


def _causal_with_padding(N, L, rng, dtype=bool):
    """A causal mask and a key padding mask, both bool or both float (torch
    warns when they differ)."""
    padding = rng.random((N, L)) < 0.3
    padding[:, 0] = False
    causal = nn.generate_square_subsequent_mask(L, np.float64)
    if dtype is bool:
        return np.isneginf(causal), padding
    return causal.astype(dtype), np.where(padding, -np.inf, 0).astype(dtype)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "callable"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(norm_first, activation, batch_first):
    d, h, N, L = 8, 2, 3, 6
    options = dict(dim_feedforward=12, norm_first=norm_first, batch_first=batch_first)
    ours_act = theirs_act = activation
    if activation == "callable":
        ours_act = lambda x: ms.gelu(x, approximate="tanh")  # noqa: E731
        theirs_act = lambda x: torch.nn.functional.gelu(x, approximate="tanh")  # noqa: E731
    ours, theirs = twins(nn.TransformerEncoderLayer(d, h, activation=ours_act, **options),
                         torch.nn.TransformerEncoderLayer(d, h, activation=theirs_act, **options))
    ours.eval()
    theirs.eval()
    rng = np.random.default_rng(6)
    mask, padding = _causal_with_padding(N, L, rng)
    (x,), (tx,) = leaves(rng.standard_normal((N, L, d) if batch_first else (L, N, d)))
    out = ours(x, src_mask=mask, src_key_padding_mask=padding)
    torch_out = theirs(tx, src_mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(padding))
    same(out.data, torch_out, "output")
    backward_both(out, torch_out)
    same(x.grad, tx.grad, "x")
    same_parameter_grads(ours, theirs)


@pytest.mark.parametrize("norm_first,dtype", [(False, np.float64), (True, np.float64),
                                              (True, np.float32)])
def test_encoder_matches_torch(norm_first, dtype):
    d, h, N, L = 8, 4, 2, 7
    layer_options = dict(dim_feedforward=16, activation="gelu", norm_first=norm_first,
                         batch_first=True)
    ours, theirs = twins(
        nn.TransformerEncoder(nn.TransformerEncoderLayer(d, h, **layer_options), 2,
                              norm=nn.LayerNorm(d)),
        torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(d, h, **layer_options), 2,
                                    norm=torch.nn.LayerNorm(d), enable_nested_tensor=False),
        dtype)
    ours.eval()
    theirs.eval()
    rng = np.random.default_rng(7)
    mask, padding = _causal_with_padding(N, L, rng, dtype)
    (x,), (tx,) = leaves(rng.standard_normal((N, L, d)).astype(dtype))
    out = ours(x, mask=mask, src_key_padding_mask=padding)
    torch_out = theirs(tx, mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(padding))
    assert out.dtype == dtype
    same(out.data, torch_out, "output", dtype)
    backward_both(out, torch_out)
    same(x.grad, tx.grad, "x", dtype)
    same_parameter_grads(ours, theirs, dtype)
    # is_causal=True alone builds the causal mask that torch must be given
    causal = ours(ms.tensor(x.data), is_causal=True)
    same(causal.data, theirs(tx, mask=torch.tensor(mask), is_causal=True), "causal", dtype)


@pytest.mark.parametrize("mask,options", [
    (None, {}), ("bool", {}), ("float", {"scale": 0.3}), (None, {"is_causal": True}),
])
def test_scaled_dot_product_attention_matches_torch(mask, options):
    rng = np.random.default_rng(8)
    arrays = (rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)),
              rng.standard_normal((2, 3, 6, 2)))
    attn_mask = None
    if mask is not None:  # True / 0 = may attend; key 0 always open (torch: NaN otherwise)
        keep = rng.random((4, 6)) < 0.6
        keep[:, 0] = True
        attn_mask = keep if mask == "bool" else np.where(keep, rng.standard_normal((4, 6)),
                                                         -np.inf)
    ours_in, theirs_in = leaves(*arrays)
    out = F.scaled_dot_product_attention(*ours_in, attn_mask=attn_mask, **options)
    torch_out = torch.nn.functional.scaled_dot_product_attention(
        *theirs_in, attn_mask=None if attn_mask is None else torch.tensor(attn_mask), **options)
    same(out.data, torch_out)
    backward_both(out, torch_out)
    for name, a, b in zip("qkv", ours_in, theirs_in):
        same(a.grad, b.grad, name)
