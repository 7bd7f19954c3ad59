"""Lesson 7, word2vec: the --quick run, CBOW and skip-gram gradients against
the hand-derived reference and finite differences, the negative sampler,
and the data and lookup helpers of microseq.models.word2vec."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick

import microseq as ms
from microseq.graph import find_dot
from microseq.models.word2vec import (
    CBOW, NegativeSampler, SkipGram, analogy, cbow_windows, class_purity, keep_probability,
    make_batches, nearest, partner_ranks, skipgram_pairs, subsample,
)
from microseq.reference.word2vec import cbow_ns_loss_and_grads, skipgram_ns_loss_and_grads

pytestmark = pytest.mark.lesson

FIGURES = ["planted_pca.png", "training.png", "partner_ranks.png", "pca.png", "cbow_graph.gv"]

seeds = st.integers(0, 2**32 - 1)


def test_quick_run(tmp_path):
    _, report = run_quick("07_word2vec", tmp_path, timeout=120)
    assert_quick_run_passed(report, tmp_path, {
        "planted_cbow_neighbour_purity", "planted_skipgram_neighbour_purity",
        "cbow_median_partner_rank", "skipgram_median_partner_rank"}, exactly=False,
        files=FIGURES + (["cbow_graph.svg"] if find_dot() else []), claims=3)


# --- gradients: autograd == hand-derived reference == finite differences ------

MODELS = {"cbow": (CBOW, cbow_ns_loss_and_grads),
          "skipgram": (SkipGram, skipgram_ns_loss_and_grads)}


def random_case(kind, V, D, B, C, K, seed):
    """A float64 model with random weights and a batch of random ids (small
    vocabularies make repeated ids, and negatives equal to the target, common)."""
    rng = np.random.default_rng(seed)
    model = MODELS[kind][0](V, D).to(np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    inputs = rng.integers(0, V, (B, C)) if kind == "cbow" else rng.integers(0, V, B)
    return model, (inputs, rng.integers(0, V, B), rng.integers(0, V, (B, K)))


def numerical_grad(f, arr, eps=1e-6):
    """d f() / d arr by central differences, perturbing arr in place."""
    grad = np.zeros_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + eps
        up = f()
        arr[i] = old - eps
        down = f()
        arr[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("kind", MODELS)
@given(V=st.integers(2, 6), D=st.integers(1, 4), B=st.integers(1, 4), C=st.integers(1, 4),
       K=st.integers(1, 3), seed=seeds)
def test_gradients_match_reference_and_finite_differences(kind, V, D, B, C, K, seed):
    model, batch = random_case(kind, V, D, B, C, K, seed)
    loss = model(*batch)
    loss.backward()
    W_in, W_out = model.in_embed.weight, model.out_embed.weight
    ref_loss, grads = MODELS[kind][1](W_in.data.copy(), W_out.data.copy(), *batch)
    np.testing.assert_allclose(loss.item(), ref_loss, rtol=1e-12)
    np.testing.assert_allclose(W_in.grad, grads["W_in"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(W_out.grad, grads["W_out"], rtol=1e-10, atol=1e-12)

    def f():
        with ms.no_grad():
            return model(*batch).item()

    for p in (W_in, W_out):
        np.testing.assert_allclose(p.grad, numerical_grad(f, p.data), rtol=1e-5, atol=1e-8)


def test_repeated_ids_accumulate():
    """One word filling every context slot of every example gets the sum of
    all their gradients, as the reference's np.add.at scatter gives."""
    model, (_, centers, negatives) = random_case("cbow", 5, 3, 4, 6, 2, seed=1)
    contexts = np.full((4, 6), 2)
    model(contexts, centers, negatives).backward()
    _, grads = cbow_ns_loss_and_grads(model.in_embed.weight.data, model.out_embed.weight.data,
                                      contexts, centers, negatives)
    np.testing.assert_allclose(model.in_embed.weight.grad, grads["W_in"], rtol=1e-12)
    assert np.abs(model.in_embed.weight.grad[[0, 1, 3, 4]]).max() == 0


# --- the negative sampler ------------------------------------------------------

counts_with_two_words = st.lists(st.integers(0, 30), min_size=2, max_size=12).filter(
    lambda c: sum(x > 0 for x in c) >= 2)


@given(counts=counts_with_two_words, k=st.integers(1, 8), n=st.integers(1, 20), seed=seeds)
def test_sampler_never_draws_the_target(counts, k, n, seed):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, len(counts), n)
    negatives = NegativeSampler(counts).sample(targets, k, rng)
    assert negatives.shape == (n, k)
    assert not (negatives == targets[:, None]).any()
    assert (np.asarray(counts)[negatives] > 0).all()  # a word never seen is never drawn


def test_sampler_distribution():
    """Frequencies follow count^0.75; excluding the target renormalises the rest."""
    counts = np.array([1000, 100, 10, 1, 0])
    sampler = NegativeSampler(counts)
    p = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(sampler.probs, p)
    rng = np.random.default_rng(0)
    n = 200_000
    free = sampler.sample(np.zeros(n, int), 1, rng, exclude_target=False).ravel()
    np.testing.assert_allclose(np.bincount(free, minlength=5) / n, p, atol=0.005)
    excluded = sampler.sample(np.zeros(n, int), 1, rng).ravel()
    rest = np.r_[0, p[1:] / p[1:].sum()]
    np.testing.assert_allclose(np.bincount(excluded, minlength=5) / n, rest, atol=0.005)


def test_sampler_refuses_a_target_with_no_alternative():
    with pytest.raises(ValueError, match="only word"):
        NegativeSampler([0, 7, 0]).sample(np.array([1]), 3, np.random.default_rng(0))


# --- windows, pairs, subsampling, batches ---------------------------------------

@given(n=st.integers(0, 12), window=st.integers(1, 4))
def test_skipgram_pairs_are_every_pair_within_the_window(n, window):
    ids = np.arange(n) * 10
    centers, contexts = skipgram_pairs(ids, window)
    want = sorted((ids[i], ids[j]) for i in range(n) for j in range(n) if 0 < abs(i - j) <= window)
    assert sorted(zip(centers.tolist(), contexts.tolist(), strict=True)) == want


@given(n=st.integers(2, 30), window=st.integers(1, 4), seed=seeds)
def test_shrunk_window_keeps_a_subset_and_all_neighbours(n, window, seed):
    ids = np.arange(n)
    centers, contexts = skipgram_pairs(ids, window, np.random.default_rng(seed))
    distance = np.abs(centers - contexts)
    assert ((distance >= 1) & (distance <= window)).all()
    assert (distance == 1).sum() == 2 * (n - 1)  # a shrunk window still holds its neighbours


@given(n=st.integers(0, 15), window=st.integers(1, 3))
def test_cbow_windows(n, window):
    ids = np.arange(n) + 100
    contexts, centers = cbow_windows(ids, window)
    assert contexts.shape == (max(0, n - 2 * window), 2 * window)
    for row, i in enumerate(range(window, n - window)):
        assert centers[row] == ids[i]
        around = np.r_[ids[i - window:i], ids[i + 1:i + window + 1]]
        assert contexts[row].tolist() == around.tolist()


def test_subsampling_thins_only_frequent_words():
    counts = np.array([9000, 990, 10])
    keep = keep_probability(counts, t=1e-3)
    np.testing.assert_allclose(keep, [np.sqrt(1e-3 / 0.9), np.sqrt(1e-3 / 0.099), 1.0])
    ids = np.repeat(np.arange(3), counts)
    kept = np.bincount(subsample(ids, counts, 1e-3, np.random.default_rng(0)), minlength=3)
    assert kept[2] == 10
    np.testing.assert_allclose(kept[:2] / counts[:2], keep[:2], rtol=0.25)


@pytest.mark.parametrize("kind", MODELS)
def test_batches_fit_the_models(kind):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, 500)
    counts = np.bincount(ids, minlength=20)
    epoch = make_batches(kind, ids, counts, window=2, batch_size=64, negatives=3, t=1e-2)
    batches = list(epoch(np.random.default_rng(1)))
    assert batches
    model = MODELS[kind][0](20, 4)
    for inputs, positives, negatives in batches:
        assert inputs.shape[0] == len(positives) == len(negatives) <= 64
        assert negatives.shape[1] == 3
        assert not (negatives == positives[:, None]).any()
        assert np.isfinite(model(inputs, positives, negatives).item())


# --- looking at vectors ------------------------------------------------------------

def test_nearest_ranks_and_analogy():
    # a=(1,0,0), b=(1,1,0), c=(0,0,1): b - a + c = (0,1,1), which is d.
    vectors = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [1, 0, 0.1], [-1, 0, 0]])
    neighbours, cosines = nearest(vectors, np.arange(6), k=2)
    assert not (neighbours == np.arange(6)[:, None]).any()
    assert (np.diff(cosines, axis=1) <= 0).all()
    assert neighbours[0, 0] == 4
    assert (partner_ranks(vectors, np.arange(6), neighbours[:, 0]) == 1).all()
    assert partner_ranks(vectors, [0], [5])[0] == 5  # the opposite vector comes last
    assert analogy(vectors, [0], [1], [2], k=1)[0, 0] == 3


def test_class_purity():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 8)) * 10
    vectors = np.repeat(centres, 6, axis=0) + rng.standard_normal((18, 8)) * 0.1
    labels = np.repeat(["a", "b", "c"], 6)
    assert class_purity(vectors, np.arange(18), labels, k=5) == 1.0
    assert class_purity(vectors, np.arange(18), rng.permutation(labels), k=5) < 0.9
