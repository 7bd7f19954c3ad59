"""Lesson 2, the RNN cell and its shapes: the quick run, the cell equation,
the gradients of the three models, and what padding may and may not do.

Gradients are checked in float64 at random small sizes: every parameter's
autograd gradient against central differences, element by element, and the
RNN versions against the hand-derived BPTT in microseq.reference.
"""
from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lesson_runs import assert_quick_run_passed, run_quick
from model_gradients import assert_matches_finite_differences as assert_matches
from model_gradients import randomize

import microseq as ms
from microseq import nn
from microseq import reference as ref
from microseq.data import pad_batch
from microseq.models.sequence import ManyToMany, ManyToOne, OneToMany, masked_cross_entropy

pytestmark = pytest.mark.lesson

EPS, RTOL, ATOL = 1e-6, 1e-5, 1e-8

seeds = st.integers(0, 2**32 - 1)
B_ = st.integers(1, 3)
T_ = st.integers(1, 5)
D_ = st.integers(1, 3)
H_ = st.integers(1, 4)
V_ = st.integers(2, 5)
cells = st.sampled_from(["rnn", "lstm", "gru"])


def test_quick_run_meets_its_thresholds(tmp_path):
    result, report = run_quick("02_rnn_shapes", tmp_path)
    assert_quick_run_passed(report, tmp_path, {
        "cell_library_vs_numpy_max_diff", "many_to_one_accuracy", "tagging_entity_f1",
        "tagging_token_accuracy", "one_to_many_exact_accuracy"},
        files=("training.png", "tagging.png", "rnn_unrolled.gv"), claims=1)
    for stage in ("(B, T, 1)", "(B, T, H)", "(B, T, tags)", "(B, T, V)"):  # shapes are printed
        assert stage in result.stdout, stage


# ------------------------------------------------------------------ the cell

@given(B=B_, T=T_, D=D_, H=H_, seed=seeds)
def test_cell_and_layer_equal_the_equation_by_hand(B, T, D, H, seed):
    rng = np.random.default_rng(seed)
    ms.manual_seed(seed)
    cell = nn.RNNCell(D, H).to(np.float64)
    W_ih, W_hh, b_ih, b_hh = (p.data for p in cell.parameters())
    x, h = rng.standard_normal((B, T, D)), rng.standard_normal((B, H))
    np.testing.assert_allclose(cell(x[:, 0], h).data,
                               np.tanh(x[:, 0] @ W_ih.T + b_ih + h @ W_hh.T + b_hh), atol=1e-14)

    layer = nn.RNN(D, H, batch_first=True).to(np.float64)
    layer.load_state_dict({f"{name}_l0": p for name, p in zip(
        ("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (W_ih, W_hh, b_ih, b_hh), strict=True)})
    out, h_n = layer(x, h[None])
    for t in range(T):
        h = np.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        np.testing.assert_allclose(out.data[:, t], h, atol=1e-14)
    np.testing.assert_allclose(h_n.data[0], h, atol=1e-14)


# ------------------------------------------------------------- gradients

assert_matches_finite_differences = partial(assert_matches, eps=EPS, rtol=RTOL, atol=ATOL)


def padded_batch(rng, B, T, V, K):
    """Ids in 1..V-1 (0 is padding), labels in 0..K-1, random lengths 1..T."""
    lengths = rng.integers(1, T + 1, size=B)
    ids, mask = pad_batch([rng.integers(1, V, size=n) for n in lengths], pad_id=0, length=T)
    labels, _ = pad_batch([rng.integers(0, K, size=n) for n in lengths], pad_id=0, length=T)
    return ids, labels, mask


@given(B=B_, T=T_, E=D_, H=H_, V=V_, seed=seeds, cell=cells)
def test_many_to_one_gradients_match_finite_differences(B, T, E, H, V, seed, cell):
    rng = np.random.default_rng(seed)
    model = randomize(ManyToOne(E, H, 2, vocab_size=V, cell=cell), rng)
    ids, labels = rng.integers(0, V, size=(B, T)), rng.integers(0, 2, size=B)
    assert_matches_finite_differences(lambda: ms.cross_entropy(model(ids), labels), model)


@given(B=B_, T=T_, E=D_, H=H_, V=V_, K=V_, seed=seeds, cell=cells)
def test_tagger_gradients_match_finite_differences(B, T, E, H, V, K, seed, cell):
    rng = np.random.default_rng(seed)
    model = randomize(ManyToMany(E, H, K, vocab_size=V, cell=cell), rng)
    ids, labels, mask = padded_batch(rng, B, T, V, K)
    assert_matches_finite_differences(lambda: model.loss(ids, labels, mask), model)


@given(B=B_, T=T_, C=D_, E=D_, H=H_, V=V_, seed=seeds, cell=cells)
def test_one_to_many_gradients_match_finite_differences(B, T, C, E, H, V, seed, cell):
    rng = np.random.default_rng(seed)
    model = randomize(OneToMany(C, V, E, H, cell=cell), rng)
    condition = rng.standard_normal((B, C))
    previous, targets = rng.integers(0, V, size=(B, T)), rng.integers(0, V, size=(B, T))
    assert_matches_finite_differences(
        lambda: ms.cross_entropy(model(condition, previous), targets), model)


@given(B=B_, T=T_, E=D_, H=H_, V=V_, K=V_, seed=seeds)
def test_tagger_gradients_match_the_reference_bptt(B, T, E, H, V, K, seed):
    """L = sum(R * logits * mask): the head's gradient by hand, BPTT through
    microseq.reference.rnn_backward, and the embedding's by scattering dx."""
    rng = np.random.default_rng(seed)
    model = randomize(ManyToMany(E, H, K, vocab_size=V), rng)
    ids, _, mask = padded_batch(rng, B, T, V, K)
    upstream = rng.standard_normal((B, T, K)) * mask[..., None]
    (model(ids) * upstream).sum().backward()

    rnn, head, table = model.rnn, model.head, model.embed.weight.data
    weights = [p.data for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0,
                                rnn.bias_hh_l0)]
    x = table[ids].transpose(1, 0, 2)                                   # (T, B, E)
    hs, cache = ref.rnn_forward(x, np.zeros((B, H)), *weights)
    dhs = (upstream @ head.weight.data).transpose(1, 0, 2)              # dL/dh_t from the head
    grads = ref.rnn_backward(dhs, cache)
    d_table = np.zeros_like(table)
    np.add.at(d_table, ids.T, grads["x"])
    expected = {"embed.weight": d_table, "rnn.weight_ih_l0": grads["W_ih"],
                "rnn.weight_hh_l0": grads["W_hh"], "rnn.bias_ih_l0": grads["b_ih"],
                "rnn.bias_hh_l0": grads["b_hh"],
                "head.weight": np.einsum("tbk,tbh->kh", upstream.transpose(1, 0, 2), hs),
                "head.bias": upstream.sum((0, 1))}
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


# ------------------------------------------------------------------ masking

@given(B=B_, T=T_, extra=st.integers(0, 3), E=D_, H=H_, V=V_, K=V_, seed=seeds, cell=cells)
def test_padding_contributes_nothing_to_loss_or_gradient(B, T, extra, E, H, V, K, seed, cell):
    """Whatever ids and labels sit in the padding, and however much padding
    there is, the masked loss and every gradient are the same; a word that
    only ever appears in padding gets exactly zero gradient; and the loss is
    the mean over real words of the loss of each sentence run alone."""
    rng = np.random.default_rng(seed)
    model = randomize(ManyToMany(E, H, K, vocab_size=V + 1, cell=cell), rng)
    ids, labels, mask = padded_batch(rng, B, T, V, K)

    def loss_and_grads(ids, labels, mask):
        model.zero_grad()
        loss = model.loss(ids, labels, mask)
        loss.backward()
        return loss.item(), {name: p.grad.copy() for name, p in model.named_parameters()}

    clean_loss, clean_grads = loss_and_grads(ids, labels, mask)

    # Junk in the padding: the word V (never a real word) and random labels,
    # and `extra` more padded columns on the right.
    junk_ids = np.pad(np.where(mask, ids, V), ((0, 0), (0, extra)), constant_values=V)
    junk_labels = np.pad(np.where(mask, labels, rng.integers(0, K, size=labels.shape)),
                         ((0, 0), (0, extra)), constant_values=K - 1)
    junk_mask = np.pad(mask, ((0, 0), (0, extra)))
    junk_loss, junk_grads = loss_and_grads(junk_ids, junk_labels, junk_mask)

    assert junk_loss == pytest.approx(clean_loss, rel=1e-12, abs=1e-14)
    for name in clean_grads:
        np.testing.assert_allclose(junk_grads[name], clean_grads[name], rtol=1e-10,
                                   atol=1e-14, err_msg=name)
    assert not np.any(junk_grads["embed.weight"][V])  # only ever padding: no gradient at all

    with ms.no_grad():  # each sentence alone, unpadded, summed over its words
        total = sum(ms.cross_entropy(model(ids[b, mask[b]][None]), labels[b, mask[b]][None],
                                     reduction="sum").item() for b in range(B))
    assert clean_loss == pytest.approx(total / mask.sum(), rel=1e-10)


@given(B=B_, T=T_, K=V_, seed=seeds)
def test_masked_cross_entropy_ignores_logits_outside_the_mask(B, T, K, seed):
    rng = np.random.default_rng(seed)
    _, labels, mask = padded_batch(rng, B, T, 3, K)
    logits = ms.Tensor(rng.standard_normal((B, T, K)), requires_grad=True)
    masked_cross_entropy(logits, labels, mask).backward()
    assert not np.any(logits.grad[~mask])
    assert np.all(np.abs(logits.grad[mask]).sum(-1) > 0)


# ------------------------------------------------------------- generation

@given(B=st.integers(2, 4), C=D_, H=H_, V=V_, steps=T_, seed=seeds, cell=cells)
def test_generating_a_batch_equals_generating_each_alone(B, C, H, V, steps, seed, cell):
    rng = np.random.default_rng(seed)
    model = randomize(OneToMany(C, V, 2, H, cell=cell), rng)
    condition = rng.standard_normal((B, C))
    together = model.generate(condition, 0, steps)
    alone = np.concatenate([model.generate(condition[b:b + 1], 0, steps) for b in range(B)])
    np.testing.assert_array_equal(together, alone)
