"""The Transformer layers without PyTorch: gradients against finite
differences, the properties masks promise (no peeking at the future, padding
ignored, no NaN for a query with nothing to attend to), permutation
equivariance, dropout, copies, positional encodings and error messages."""
import numpy as np
import pytest
from hypothesis import strategies as st

import microseq as ms
from microseq import functional as F
from microseq import nn
from microseq.testing import arrays, check_module

pytestmark = pytest.mark.nn

seeds = st.integers(0, 2**32 - 1)


def encoder_layer(d=4, h=2, **options):
    ms.manual_seed(0)
    options = {"dim_feedforward": 6, "dropout": 0.0, **options}
    return nn.TransformerEncoderLayer(d, h, **options).to(np.float64)


PADDING = np.array([[False, False, True], [False, True, True]])
CAUSAL = np.triu(np.ones((3, 3), bool), k=1)  # bool: check_module differentiates float arrays


@pytest.mark.parametrize("name,module,inputs,examples", [
    ("cross-attention, padded", nn.MultiheadAttention(4, 2, batch_first=True),
     (arrays((2, 2, 4)), arrays((2, 3, 4)), arrays((2, 3, 4)), PADDING), 4),
    ("kdim and vdim, causal, (L, N, E)", nn.MultiheadAttention(4, 2, kdim=3, vdim=2),
     (arrays((3, 2, 4)), arrays((3, 2, 3)), arrays((3, 2, 2)), None, True, CAUSAL), 4),
    ("post-norm relu layer", encoder_layer(batch_first=True), (arrays((2, 3, 4)), CAUSAL), 4),
    ("pre-norm gelu encoder", nn.TransformerEncoder(
        encoder_layer(norm_first=True, activation="gelu"), 2, norm=nn.LayerNorm(4)),
     (arrays((3, 2, 4)), None, PADDING), 2),
])
def test_layers_gradients(name, module, inputs, examples):
    """Every parameter and every input against finite differences, through
    every output (attention's weights too), for random weights and inputs;
    4 elements of each array per example keep a 2-layer encoder cheap."""
    assert check_module(module, *inputs, max_examples=examples, max_elements=4)


def test_a_causal_layer_never_looks_ahead():
    """Output t depends on inputs 0..t only: changing the future changes
    nothing before it, and its gradient there is exactly 0."""
    layer = encoder_layer(batch_first=True)
    x = np.random.default_rng(0).standard_normal((2, 6, 4))
    later = x.copy()
    later[:, 4:] += 1.0
    first, second = layer(x, is_causal=True), layer(later, is_causal=True)
    np.testing.assert_array_equal(first.data[:, :4], second.data[:, :4])
    assert not np.allclose(first.data[:, 4:], second.data[:, 4:])
    tx = ms.tensor(x, requires_grad=True)
    out = layer(tx, src_mask=nn.generate_square_subsequent_mask(6, np.float64))
    (out[:, 2] * np.arange(1.0, 5.0)).sum().backward()  # weighted: a LayerNorm's plain sum is flat
    np.testing.assert_array_equal(tx.grad[:, 3:], 0)
    assert np.abs(tx.grad[:, :3]).min() > 0


def test_padded_keys_are_ignored_and_fully_masked_queries_give_no_nan():
    layer = encoder_layer(batch_first=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 5, 4))
    padding = np.array([[False, False, False, True, True]])
    other = x.copy()
    other[:, 3:] = rng.standard_normal((1, 2, 4))  # new values at padding only
    first = layer(x, src_key_padding_mask=padding).data
    np.testing.assert_allclose(layer(other, src_key_padding_mask=padding).data[:, :3],
                               first[:, :3], rtol=1e-12)
    # every key masked for every query: zero weights, finite output and gradients
    attention = layer.self_attn
    tx = ms.tensor(x, requires_grad=True)
    out, weights = attention(tx, tx, tx, key_padding_mask=np.ones((1, 5), bool))
    np.testing.assert_array_equal(weights.data, 0)
    np.testing.assert_allclose(out.data, np.broadcast_to(attention.out_proj.bias.data, out.shape))
    out.sum().backward()
    assert all(np.isfinite(p.grad).all() for p in attention.parameters() if p.grad is not None)
    assert np.isfinite(tx.grad).all()


def test_self_attention_without_positions_is_permutation_equivariant():
    layer = encoder_layer(batch_first=True, activation="gelu")
    x = np.random.default_rng(2).standard_normal((2, 5, 4))
    order = np.array([3, 0, 4, 1, 2])
    np.testing.assert_allclose(layer(x[:, order]).data, layer(x).data[:, order], rtol=1e-12,
                               atol=1e-12)
    with_positions = nn.PositionalEncoding(4, batch_first=True)
    shuffled = layer(with_positions(x[:, order])).data
    assert not np.allclose(shuffled, layer(with_positions(x)).data[:, order])


def test_dropout_is_on_in_training_and_off_in_eval():
    ms.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, dim_feedforward=8), 2)
    assert model.layers[0].dropout.p == 0.1 and model.layers[0].self_attn.dropout == 0.1
    x = np.random.default_rng(3).standard_normal((5, 2, 4)).astype(np.float32)
    assert not np.array_equal(model(x).data, model(x).data)
    model.eval()
    np.testing.assert_array_equal(model(x).data, model(x).data)


def test_encoder_copies_its_layer_into_independent_layers():
    model = nn.TransformerEncoder(encoder_layer(), 3, norm=nn.LayerNorm(4))
    names = list(model.state_dict())
    assert names[0] == "layers.0.self_attn.in_proj_weight"
    assert "layers.2.norm2.bias" in names and names[-2:] == ["norm.weight", "norm.bias"]
    first, second = model.layers[0].linear1.weight, model.layers[1].linear1.weight
    np.testing.assert_array_equal(first.data, second.data)  # equal copies, as in torch
    first.data += 1
    assert not np.array_equal(first.data, second.data)


def test_encoder_trains_every_parameter():
    model = nn.TransformerEncoder(encoder_layer(batch_first=True), 2, norm=nn.LayerNorm(4))
    model(np.random.default_rng(4).standard_normal((2, 3, 4)), is_causal=True).sum().backward()
    assert all(p.grad is not None and np.abs(p.grad).sum() > 0 for p in model.parameters())


def test_sinusoidal_encoding_follows_its_formula():
    pe = nn.sinusoidal_encoding(50, 7, np.float64)
    for pos in (0, 1, 17, 49):
        for i in range(7):
            angle = pos / 10000 ** (2 * (i // 2) / 7)
            assert pe[pos, i] == pytest.approx(np.sin(angle) if i % 2 == 0 else np.cos(angle),
                                               abs=1e-12)


def test_positional_encodings_add_to_each_position():
    x = np.zeros((3, 2, 4))
    out = nn.PositionalEncoding(4, max_len=10)(x).data
    np.testing.assert_allclose(out[:, 1], nn.sinusoidal_encoding(3, 4))
    learned = nn.LearnedPositionalEncoding(4, max_len=10, batch_first=True).to(np.float64)
    (learned(x.transpose(1, 0, 2)) * np.arange(4.0)).sum().backward()
    np.testing.assert_array_equal(learned.weight.grad[:3], np.tile(2 * np.arange(4.0), (3, 1)))
    np.testing.assert_array_equal(learned.weight.grad[3:], 0)
    assert [name for name, _ in learned.named_parameters()] == ["weight"]


@pytest.mark.parametrize("build,message", [
    (lambda: nn.MultiheadAttention(6, 4), "embed_dim 6 must be divisible by num_heads 4"),
    (lambda: nn.TransformerEncoderLayer(4, 2, activation="tanh"),
     "activation should be relu/gelu, not tanh"),
    (lambda: nn.MultiheadAttention(4, 2)(np.ones((3, 2, 5)), np.ones((3, 2, 5)),
                                         np.ones((3, 2, 5))), "query of shape .* last size 4"),
    (lambda: nn.MultiheadAttention(4, 2)(np.ones((3, 2, 4)), np.ones((5, 2, 4)),
                                         np.ones((4, 2, 4))), "do not agree"),
    (lambda: nn.MultiheadAttention(4, 2)(np.ones((3, 2, 4)), np.ones((3, 2, 4)),
                                         np.ones((3, 2, 4)), attn_mask=np.ones((2, 3), bool)),
     r"attn_mask must have shape \(L, S\) = \(3, 3\) or \(N \* num_heads, L, S\) = \(4, 3, 3\)"),
    (lambda: nn.MultiheadAttention(4, 2)(np.ones((3, 2, 4)), np.ones((3, 2, 4)),
                                         np.ones((3, 2, 4)), key_padding_mask=np.ones((3, 2))),
     r"key_padding_mask must have shape \(N, S\) = \(2, 3\)"),
    (lambda: nn.MultiheadAttention(4, 2)(np.ones((3, 2, 4)), np.ones((3, 2, 4)),
                                         np.ones((3, 2, 4)), attn_mask=np.ones((3, 3), int)),
     "attn_mask must be bool or float"),
    (lambda: nn.PositionalEncoding(4, max_len=5)(np.ones((6, 1, 4))), "longer than max_len=5"),
])
def test_bad_arguments_get_clear_errors(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_scaled_dot_product_attention_takes_a_mask_or_is_causal_not_both():
    q = ms.randn(2, 3, 4)
    causal = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    masked = F.scaled_dot_product_attention(q, q, q, attn_mask=np.tril(np.ones((3, 3), bool)))
    np.testing.assert_array_equal(causal.data, masked.data)
    with pytest.raises(ValueError, match="give attn_mask or is_causal, not both"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 3), bool), is_causal=True)
