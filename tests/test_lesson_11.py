"""Lesson 11: its quick run, and the BERT model it trains.

The model's gradients (masked-word loss and classification loss, with
padding in the batch) are checked against central differences in float64,
along a random direction for every parameter, on hypothesis-drawn small
sizes. Padding is
inert: appending [PAD] to a sequence changes neither [CLS]'s output nor
the masked-word scores.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_lesson, run_quick
from model_gradients import assert_directional_derivatives_match, randomize

import microseq as ms
from microseq import models
from microseq.models.bert import IGNORE_INDEX, Bert

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-5, 1e-8
PAD = 0
seeds = st.integers(0, 2**32 - 1)


def test_quick_run(tmp_path):
    run, report = run_quick("11_bert", tmp_path, timeout=300)
    assert_quick_run_passed(
        report, tmp_path, {"masked_accuracy_over_unigram"},
        files=["pretraining.png", "attention.png", "fine_tuning.png", "model.npz"])
    # The saved encoder, asked a sentence of the fill-the-blank table, gives that row's guesses.
    sentence = "raise a [MASK] if the key is not found"
    row = next(line for line in run.stdout.splitlines() if line.strip().startswith(sentence))
    guesses = models.load(tmp_path).answer([sentence])[0].split(", ")
    assert row.split()[len(sentence.split()):][:5] == guesses


def test_too_short_text_is_named(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("the cat sat on the mat. " * 20)
    run = run_lesson("11_bert", "--quick", "--text", short, "--out", tmp_path, timeout=120)
    assert run.returncode != 0
    assert f"{short}: 120 words make fewer than 50 windows" in run.stderr, run.stderr[-2000:]


def random_batch(rng, V, lengths, T):
    """Rows of random word ids (>= 1) padded with PAD to T; a masked-word
    target at a random real position of every row."""
    ids = np.full((len(lengths), T), PAD)
    targets = np.full((len(lengths), T), IGNORE_INDEX)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, V, n)
        targets[row, rng.integers(0, n)] = rng.integers(1, V)
    return ids, targets


@settings(max_examples=6)  # each example runs the model a few hundred times
@given(lengths=st.lists(st.integers(1, 4), min_size=1, max_size=3), heads=st.sampled_from([1, 2]),
       layers=st.integers(1, 2), seed=seeds)
def test_bert_gradients_match_finite_differences(lengths, heads, layers, seed):
    rng = np.random.default_rng(seed)
    V, K, T = 6, 3, max(lengths)
    ms.manual_seed(seed)
    model = randomize(Bert(V, K, PAD, d_model=4, nhead=heads, num_layers=layers,
                           dim_feedforward=5, max_len=4), rng)
    ids, targets = random_batch(rng, V, lengths, T)
    labels = rng.integers(0, K, len(lengths))

    def loss():
        return model.mlm_loss(ids, targets) + model.classification_loss(ids, labels)

    assert_directional_derivatives_match(loss, model, rng, EPS, RTOL, ATOL)


@settings(max_examples=10)
@given(n=st.integers(1, 5), extra=st.integers(1, 3), seed=seeds)
def test_padding_changes_nothing(n, extra, seed):
    rng = np.random.default_rng(seed)
    ms.manual_seed(seed)
    model = randomize(Bert(7, 2, PAD, d_model=8, nhead=2, dim_feedforward=6, max_len=8), rng)
    ids, targets = random_batch(rng, 7, [n], n)
    padded = np.concatenate([ids, np.full((1, extra), PAD)], axis=1)
    padded_targets = np.concatenate([targets, np.full((1, extra), IGNORE_INDEX)], axis=1)
    np.testing.assert_allclose(model.classify(padded).data, model.classify(ids).data,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.mlm_logits(padded, padded_targets)[0].data,
                               model.mlm_logits(ids, targets)[0].data, rtol=1e-10, atol=1e-12)


def test_attention_maps_are_distributions_over_real_tokens():
    rng = np.random.default_rng(0)
    ms.manual_seed(0)
    model = randomize(Bert(7, 2, PAD, d_model=8, nhead=2, dim_feedforward=6, max_len=8), rng)
    ids = np.array([1, 5, 3, 2, PAD, PAD])
    maps = model.attention_maps(ids)
    assert len(maps) == 2 and maps[0].shape == (2, 6, 6)
    for w in maps:
        assert np.all(w[:, :, 4:] == 0)
        np.testing.assert_allclose(w[:, :4].sum(axis=-1), 1.0, rtol=1e-12)
