"""Lesson 10: its quick run, the models it trains and the tasks it sets.

Every model's gradient is checked in float64 against central differences
along a random direction for every parameter. Properties: self-attention
without positions is permutation-equivariant (and the order classifier
without positions cannot tell a sequence from its shuffle), the GPT's
prediction at t never depends on what comes after t, its held-out score
counts every character exactly once, and the generated tasks mean what
they say.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_lesson, run_quick
from model_gradients import assert_directional_derivatives_match, randomize

import microseq as ms
from microseq import nn
from microseq.data import DataError
from microseq.data.recall import associative_recall, which_first
from microseq.models.gpt import CharGPT
from microseq.models.recall import OrderClassifier, RecallTransformer, matching_lstm

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-6, 1e-8
seeds = st.integers(0, 2**32 - 1)
few = settings(max_examples=10, deadline=None)


def test_quick_run(tmp_path):
    _, report = run_quick("10_transformer", tmp_path, timeout=300)
    assert_quick_run_passed(
        report, tmp_path,
        {"self_attention_equals_dot_attention_max_diff",
         "unscaled_over_scaled_median_softmax_gradient_at_largest_d",
         "causal_mask_change_before_last_position",
         "permutation_equivariance_max_diff_without_positions",
         "order_task_accuracy_with_learned_positions", "order_task_accuracy_without_positions",
         "recall_transformer_accuracy", "recall_transformer_minus_lstm_accuracy",
         "gpt_heldout_bpc", "gpt_minus_lstm_heldout_bpc"},
        files=["scaling.png", "recall.png", "gpt_vs_lstm.png", "heads.png", "samples.txt",
               "block.gv"])


# ------------------------------------------------------------- gradients


@few
@given(B=st.integers(1, 3), T=st.integers(1, 5), heads=st.sampled_from([1, 2]),
       layers=st.integers(1, 2), V=st.integers(2, 6), seed=seeds)
def test_char_gpt_matches_finite_differences(B, T, heads, layers, V, seed):
    rng = np.random.default_rng(seed)
    model = randomize(CharGPT(V, d_model=4, nhead=heads, num_layers=layers, context=5), rng)
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    assert_directional_derivatives_match(lambda: model.loss(x, y), model, rng, EPS, RTOL, ATOL)


@few
@given(B=st.integers(1, 3), pairs=st.integers(1, 4), seed=seeds)
def test_recall_models_match_finite_differences(B, pairs, seed):
    rng = np.random.default_rng(seed)
    keys, values, answers = associative_recall(B, pairs, seed, n_keys=5, n_values=3)
    transformer = randomize(RecallTransformer(5, 3, d_model=4, nhead=2, dim_feedforward=6), rng)
    lstm = randomize(matching_lstm(5, 3, transformer.num_parameters(), embed_size=4), rng)
    for model in (transformer, lstm):
        assert_directional_derivatives_match(lambda m=model: m.loss(keys, values, answers),
                                             model, rng, EPS, RTOL, ATOL)


@few
@given(B=st.integers(1, 3), T=st.integers(2, 5),
       positions=st.sampled_from([None, "sinusoidal", "learned"]), seed=seeds)
def test_order_classifier_matches_finite_differences(B, T, positions, seed):
    rng = np.random.default_rng(seed)
    ids, labels = which_first(B, T, seed, n_symbols=4)
    model = randomize(OrderClassifier(4, T, d_model=4, nhead=2, dim_feedforward=6,
                                      positions=positions), rng)
    assert_directional_derivatives_match(lambda: model.loss(ids, labels), model, rng, EPS, RTOL,
                                         ATOL)


# ------------------------------------------------------------- order and positions


@given(T=st.integers(2, 7), norm_first=st.booleans(), seed=seeds)
def test_encoder_layer_without_positions_is_permutation_equivariant(T, norm_first, seed):
    rng = np.random.default_rng(seed)
    ms.manual_seed(seed % 2**32)
    layer = nn.TransformerEncoderLayer(6, 2, 8, dropout=0.0, batch_first=True,
                                       norm_first=norm_first).to(np.float64)
    x = rng.standard_normal((2, T, 6))
    perm = rng.permutation(T)
    np.testing.assert_allclose(layer(x[:, perm]).data, layer(x).data[:, perm], rtol=0,
                               atol=1e-12)


@given(T=st.integers(2, 8), seed=seeds)
def test_order_classifier_without_positions_cannot_see_order(T, seed):
    rng = np.random.default_rng(seed)
    ms.manual_seed(seed % 2**32)
    model = OrderClassifier(5, T, d_model=6, nhead=2, positions=None).to(np.float64)
    ids = rng.integers(0, 5, (3, T))
    shuffled = ids[:, rng.permutation(T)]
    np.testing.assert_allclose(model(shuffled).data, model(ids).data, rtol=0, atol=1e-12)


@given(T=st.integers(3, 8), seed=seeds)
def test_order_classifier_with_positions_can_see_order(T, seed):
    """The positive control of the test above: with positions, swapping A and
    B changes the output."""
    ms.manual_seed(seed % 2**32)
    model = OrderClassifier(3, T, d_model=6, nhead=2, positions="learned").to(np.float64)
    ids, _ = which_first(1, T, seed, n_symbols=3)
    twin = np.where(ids == 0, 1, np.where(ids == 1, 0, ids))
    assert np.abs(model(twin).data - model(ids).data).max() > 1e-9


# ------------------------------------------------------------- the GPT


@few
@given(T=st.integers(2, 6), cut=st.integers(0, 5), seed=seeds)
def test_char_gpt_prediction_at_t_ignores_the_future(T, cut, seed):
    cut = min(cut, T - 1)
    rng = np.random.default_rng(seed)
    model = randomize(CharGPT(7, d_model=8, nhead=2, num_layers=2, context=6), rng)
    ids = rng.integers(0, 7, (2, T))
    changed = ids.copy()
    changed[:, cut + 1:] = rng.integers(0, 7, (2, T - cut - 1))
    np.testing.assert_array_equal(model(changed).data[:, :cut + 1], model(ids).data[:, :cut + 1])


@few
@given(n=st.integers(2, 40), context=st.integers(1, 8), batch=st.integers(1, 5), seed=seeds)
def test_char_gpt_bits_per_char_counts_every_character_once(n, context, batch, seed):
    """With its blocks' outputs and its positions zeroed, the GPT predicts each
    character from the one before alone: then the score is plain arithmetic,
    and any target counted twice or missed would change it."""
    rng = np.random.default_rng(seed)
    model = randomize(CharGPT(5, d_model=4, nhead=2, num_layers=1, context=context), rng)
    for block in model.blocks.layers:
        for linear in (block.self_attn.out_proj, block.linear2):
            linear.weight.data[...] = 0
            linear.bias.data[...] = 0
    model.positions.weight.data[...] = 0
    ids = rng.integers(0, 5, n)
    table = model.head(model.blocks.norm(model.tok_embed(np.arange(5)))).data   # (V, V)
    logp = table - np.log(np.exp(table).sum(-1, keepdims=True))
    want = -logp[ids[:-1], ids[1:]].mean() / np.log(2)
    assert abs(model.bits_per_char(ids, batch_size=batch) - want) < 1e-10


@few
@given(prompt_len=st.integers(1, 7), length=st.integers(1, 4), seed=seeds)
def test_char_gpt_greedy_sample_takes_the_most_likely_next_character(prompt_len, length, seed):
    """Temperature 0, prompts longer than the context included: each step is the
    argmax of the logits at the last position, given the last `context` ids."""
    rng = np.random.default_rng(seed)
    model = randomize(CharGPT(6, d_model=4, nhead=2, num_layers=1, context=4), rng)
    text = list(rng.integers(0, 6, prompt_len))
    out = model.sample(text, length, temperature=0)
    for _ in range(length):
        text.append(int(model(np.array([text[-4:]])).data[0, -1].argmax()))
    assert out.tolist() == [text[prompt_len:]]


def test_char_gpt_refuses_inputs_longer_than_its_context():
    model = CharGPT(5, d_model=4, nhead=2, num_layers=1, context=3)
    with pytest.raises(ValueError, match="context"):
        model(np.zeros((1, 4), dtype=np.int64))


def test_char_gpt_attention_maps_are_causal_distributions():
    rng = np.random.default_rng(0)
    model = randomize(CharGPT(6, d_model=8, nhead=2, num_layers=2, context=10), rng)
    maps = model.attention_maps(rng.integers(0, 6, 7))
    assert maps.shape == (2, 2, 7, 7)
    assert np.all(np.triu(maps, k=1) == 0)
    np.testing.assert_allclose(maps.sum(-1), 1.0, rtol=1e-12)


# ------------------------------------------------------------- the tasks


@given(n=st.integers(1, 50), pairs=st.integers(1, 10), seed=seeds)
def test_associative_recall_answers_the_value_stored_under_the_query(n, pairs, seed):
    keys, values, answers = associative_recall(n, pairs, seed, n_keys=10, n_values=4)
    assert keys.shape == values.shape == (n, pairs + 1)
    assert np.all(values[:, -1] == 4) and np.all(values[:, :-1] < 4)
    for row in range(n):
        stored = dict(zip(keys[row, :-1], values[row, :-1], strict=True))
        assert len(stored) == pairs                      # distinct keys
        assert stored[keys[row, -1]] == answers[row]


@given(n=st.integers(1, 50), length=st.integers(2, 12), seed=seeds)
def test_which_first_labels_say_whether_a_comes_before_b(n, length, seed):
    ids, labels = which_first(n, length, seed, n_symbols=5)
    assert np.all((ids == 0).sum(1) == 1) and np.all((ids == 1).sum(1) == 1)
    assert np.array_equal(labels, ((ids == 0).argmax(1) < (ids == 1).argmax(1)).astype(np.int64))


@pytest.mark.parametrize("call, message", [
    (lambda: associative_recall(3, 0, 0), "pairs"),
    (lambda: associative_recall(3, 40, 0, n_keys=32), "pairs"),
    (lambda: which_first(3, 1, 0), "length"),
    (lambda: which_first(3, 5, 0, n_symbols=2), "n_symbols"),
])
def test_generators_name_a_bad_argument(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_a_text_too_short_for_the_gpt_is_refused_by_name(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("far too short\n")
    run = run_lesson("10_transformer", "--quick", "--text", short, "--out", tmp_path / "out",
                     timeout=120)
    assert run.returncode != 0
    assert str(short) in run.stderr and "too short" in run.stderr
