"""Three witnesses for the Transformer's gradients: autograd (microseq's ops and
layers) = the hand derivation (microseq.reference.transformer) = central
finite differences of the reference's forward, under hypothesis, in float64.

Autograd and the derivation must agree to 1e-10 (they differ only by
rounding). For the third witness the derivation is wrapped as an op (its
forward for the value, its backward for the VJPs) and handed to gradcheck,
whose tolerance is |derived - numeric| <= 1e-6 + 1e-4 |numeric|.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microseq as ms
from microseq import functional as F
from microseq import nn
from microseq.gradcheck import gradcheck
from microseq.reference import transformer as ref
from microseq.tensor import op

pytestmark = pytest.mark.nn

seeds = st.integers(0, 2**32 - 1)
CLOSE = dict(rtol=1e-10, atol=1e-12)


def derived(forward, backward, names):
    """The hand derivation as an op of the inputs `names`: value from
    forward(*arrays) -> (out, cache), VJPs from backward(g, cache)[name]."""
    def derivation(*arrays):
        out, cache = forward(*arrays)
        return out, tuple((lambda g, name=name: backward(g, cache)[name]) for name in names)

    derivation.__name__ = forward.__name__
    return op(derivation)


def _loss_weights(rng, shape):
    """L = sum(r * output) for a random r: every output element matters."""
    return rng.standard_normal(shape)


@given(seed=seeds, rows=st.integers(1, 4), E=st.integers(1, 5))
def test_layer_norm_three_witnesses(seed, rows, E):
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.standard_normal((rows, 2, E)) * 2, "weight": rng.standard_normal(E),
              "bias": rng.standard_normal(E)}
    r = _loss_weights(rng, inputs["x"].shape)
    y, cache = ref.layer_norm_forward(*inputs.values(), eps=0.1)
    grads = ref.layer_norm_backward(r, cache)
    leaves = {k: ms.tensor(v, requires_grad=True) for k, v in inputs.items()}
    ours = F.layer_norm(leaves["x"], E, leaves["weight"], leaves["bias"], eps=0.1)
    (ours * r).sum().backward()
    np.testing.assert_allclose(ours.data, y, **CLOSE)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(leaf.grad, grads[name], err_msg=name, **CLOSE)
    layer_norm = derived(lambda *a: ref.layer_norm_forward(*a, eps=0.1),
                         ref.layer_norm_backward, list(inputs))
    assert gradcheck(layer_norm, *inputs.values())


def _attention_mask(rng, kind, shape):
    """None, a boolean mask (True = attend) or an additive one (0 / bias / -inf);
    some queries may lose every key."""
    if kind is None:
        return None
    keep = rng.random(shape) < 0.7
    if kind == "bool":
        return keep
    return np.where(keep, rng.standard_normal(shape) * (rng.random(shape) < 0.5), -np.inf)


@given(seed=seeds, L=st.integers(1, 4), S=st.integers(1, 4), d=st.integers(1, 3),
       kind=st.sampled_from([None, "bool", "additive"]))
def test_masked_attention_three_witnesses(seed, L, S, d, kind):
    rng = np.random.default_rng(seed)
    inputs = {"q": rng.standard_normal((2, L, d)), "k": rng.standard_normal((2, S, d)),
              "v": rng.standard_normal((2, S, d + 1))}
    mask = _attention_mask(rng, kind, (L, S))
    r = _loss_weights(rng, (2, L, d + 1))
    out, _, cache = ref.attention_forward(*inputs.values(), mask)
    grads = ref.attention_backward(r, cache)
    q, k, v = (ms.tensor(a, requires_grad=True) for a in inputs.values())
    scores = (q * (1 / np.sqrt(d))) @ k.transpose(0, 2, 1)
    ours = (ms.softmax(scores) if mask is None else ms.masked_softmax(scores, mask)) @ v
    (ours * r).sum().backward()
    np.testing.assert_allclose(ours.data, out, **CLOSE)
    for name, leaf in zip("qkv", (q, k, v)):
        np.testing.assert_allclose(leaf.grad, grads[name], err_msg=name, **CLOSE)
    attention = derived(lambda *a: ref.attention_forward(*a, mask)[::2],
                        ref.attention_backward, list(inputs))
    assert gradcheck(attention, *inputs.values())


@settings(max_examples=6)
@given(seed=seeds, N=st.integers(1, 2), L=st.integers(1, 3), heads=st.sampled_from([1, 2]),
       norm_first=st.booleans(), activation=st.sampled_from(["relu", "gelu"]),
       kind=st.sampled_from([None, "bool", "additive"]))
def test_encoder_block_three_witnesses(seed, N, L, heads, norm_first, activation, kind):
    E, hidden = 4, 5
    rng = np.random.default_rng(seed)
    layer = nn.TransformerEncoderLayer(E, heads, dim_feedforward=hidden, dropout=0.0,
                                       activation=activation, norm_first=norm_first,
                                       batch_first=True).to(np.float64)
    params = {name: rng.uniform(-0.8, 0.8, p.shape) for name, p in layer.state_dict().items()}
    layer.load_state_dict(params)
    x = rng.standard_normal((N, L, E))
    keep = _attention_mask(rng, kind, (L, L))
    # the reference takes masks as the ops do (True = attend); the layer as torch (True = block)
    layer_mask = None if keep is None else (~keep if keep.dtype == bool else keep)
    r = _loss_weights(rng, x.shape)
    y, cache = ref.encoder_block_forward(x, params, heads, keep, norm_first, activation)
    grads = ref.encoder_block_backward(r, cache)
    tx = ms.tensor(x, requires_grad=True)
    ours = layer(tx, src_mask=layer_mask)
    (ours * r).sum().backward()
    np.testing.assert_allclose(ours.data, y, **CLOSE)
    np.testing.assert_allclose(tx.grad, grads["x"], err_msg="x", **CLOSE)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name], err_msg=name, **CLOSE)
    names = ["x", *params]

    def forward(x, *weights):
        return ref.encoder_block_forward(x, dict(zip(names[1:], weights)), heads, keep,
                                         norm_first, activation)

    block = derived(forward, ref.encoder_block_backward, names)
    assert gradcheck(block, x, *params.values())


@settings(max_examples=10)
@given(seed=seeds, N=st.integers(1, 2), L=st.integers(1, 4), heads=st.sampled_from([1, 2]),
       layers=st.integers(1, 3), norm_first=st.booleans(),
       kind=st.sampled_from([None, "bool", "additive"]))
def test_encoder_attention_maps_are_each_blocks_weights(seed, N, L, heads, layers, norm_first,
                                                         kind):
    """attention_maps against the reference run block by block: layer k's map
    is the weights the hand-derived block k computes on what block k-1 gave."""
    E, hidden = 4, 5
    rng = np.random.default_rng(seed)
    layer = nn.TransformerEncoderLayer(E, heads, dim_feedforward=hidden, dropout=0.0,
                                       norm_first=norm_first, batch_first=True)
    encoder = nn.TransformerEncoder(layer, layers).to(np.float64)
    params = {name: rng.uniform(-0.8, 0.8, p.shape) for name, p in encoder.state_dict().items()}
    encoder.load_state_dict(params)
    x = rng.standard_normal((N, L, E))
    keep = _attention_mask(rng, kind, (L, L))
    maps = encoder.attention_maps(x, mask=None if keep is None else
                                  (~keep if keep.dtype == bool else keep))
    assert len(maps) == layers
    for k, got in enumerate(maps):
        prefix = f"layers.{k}."
        block = {n[len(prefix):]: v for n, v in params.items() if n.startswith(prefix)}
        x, cache = ref.encoder_block_forward(x, block, heads, keep, norm_first)
        weights = cache[2][2][3]  # block cache -> self-attention cache -> attention's A
        np.testing.assert_allclose(got, weights, err_msg=f"layer {k}", **CLOSE)
