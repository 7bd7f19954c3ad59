"""Lesson 12: its quick run, and the captioner it trains.

Gradients in float64: autograd against central differences along a random
direction for every parameter of a tiny captioner, with and without
attention. Properties: attention weights are a distribution over the 64
cells; greedy decoding of a batch equals decoding each picture alone.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick

import microseq as ms
from microseq.data import scenes as S
from microseq.gradcheck import central_difference
from microseq.models.captioner import Captioner

pytestmark = pytest.mark.lesson

# The encoder has thousands of ReLUs: one may sit within 1e-6 of its kink, where
# a central difference of that step is off. Of two step sizes, one must agree.
EPS, RTOL, ATOL = (1e-6, 1e-7), 1e-6, 1e-8
seeds = st.integers(0, 2**32 - 1)


def test_quick_run(tmp_path):
    _, report = run_quick("12_captioning", tmp_path, timeout=240)
    assert_quick_run_passed(
        report, tmp_path, {"attention_test_word_accuracy"},
        files=["conv_graph.svg", "scenes.png", "filters.png", "attention_1.png"])


def tiny_captioner(rng, attention):
    """A float64 captioner with 2-3 channels per layer, weights ~ N(0, 1/fan_in)."""
    ms.manual_seed(int(rng.integers(2**31)))
    model = Captioner(S.word_kinds(S.caption_vocab()), attention=attention, channels=(2, 3, 3),
                      embed_size=3, hidden_size=4, attention_size=3).to(np.float64)
    for p in model.parameters():
        fan_in = p.data[0].size if p.ndim > 1 else p.shape[0]
        p.data[...] = rng.standard_normal(p.shape) / np.sqrt(fan_in)
    return model


def batch(rng, B, T):
    scenes = S.generate(B, int(rng.integers(2**31)))
    V = len(S.caption_vocab())
    return scenes.images.astype(np.float64), rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))


@settings(max_examples=8)
@given(attention=st.booleans(), B=st.integers(1, 2), T=st.integers(1, 3), seed=seeds)
def test_captioner_matches_finite_differences(attention, B, T, seed):
    rng = np.random.default_rng(seed)
    model = tiny_captioner(rng, attention)
    data = batch(rng, B, T)
    model.loss(*data).backward()
    for name, p in model.named_parameters():
        d = rng.standard_normal(p.shape)
        analytic = np.sum(p.grad * d)
        numerics = [central_difference(lambda: model.loss(*data), [p], [d], eps) for eps in EPS]
        assert any(abs(analytic - numeric) <= ATOL + RTOL * abs(numeric)
                   for numeric in numerics), (name, analytic, numerics)


@settings(max_examples=8)
@given(B=st.integers(1, 3), steps=st.integers(1, 4), seed=seeds)
def test_attention_is_a_distribution_and_batches_decode_as_each_alone(B, steps, seed):
    rng = np.random.default_rng(seed)
    model = tiny_captioner(rng, True)
    images = batch(rng, B, 1)[0]
    ids, weights = model.generate(images, 1, steps, return_weights=True)
    assert weights.shape == (B, steps, 64) and np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    alone = [model.generate(images[i:i + 1], 1, steps, return_weights=True) for i in range(B)]
    assert np.array_equal(ids, np.concatenate([a for a, _ in alone]))
    np.testing.assert_allclose(weights, np.concatenate([w for _, w in alone]), rtol=1e-9,
                               atol=1e-12)
