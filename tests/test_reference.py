"""The hand-derived numpy passes in microseq.reference.

Every backward is compared with central finite differences of a scalar loss
L = sum(upstream * output) for random upstream arrays, for every input; every
forward is compared with a literal, one-gate-at-a-time transcription of
PyTorch's equations, which pins down the weight layout and the gate order.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microseq import reference as ref

# Central differences with eps = 1e-6 in float64: truncation error ~eps^2 and
# round-off ~1e-16 * |L| / eps, both far below rtol 1e-5 / atol 1e-7.
EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-7

seeds = st.integers(0, 2**32 - 1)
T_ = st.integers(1, 5)
B_ = st.integers(1, 3)
D_ = st.integers(1, 4)
H_ = st.integers(1, 4)


def numerical_grad(f, arr):
    """dL/darr by central differences of the scalar f(), perturbing arr in place."""
    flat = arr.reshape(-1)
    assert np.shares_memory(flat, arr), "arr must be contiguous"
    grad = np.zeros(flat.size)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + EPS
        up = f()
        flat[j] = old - EPS
        down = f()
        flat[j] = old
        grad[j] = (up - down) / (2 * EPS)
    return grad.reshape(arr.shape)


def assert_grads_match(f, inputs, grads):
    """Every array in inputs gets a gradient in grads equal to f's finite differences."""
    assert set(grads) == set(inputs)
    for name, arr in inputs.items():
        assert grads[name].shape == arr.shape, name
        np.testing.assert_allclose(grads[name], numerical_grad(f, arr),
                                   rtol=RTOL, atol=ATOL, err_msg=name)


def recurrent_inputs(rng, T, B, D, H, G, with_c=False):
    inputs = {"x": rng.standard_normal((T, B, D)), "h0": rng.standard_normal((B, H))}
    if with_c:
        inputs["c0"] = rng.standard_normal((B, H))
    inputs["W_ih"] = rng.standard_normal((G * H, D)) / np.sqrt(D)
    inputs["W_hh"] = rng.standard_normal((G * H, H)) / np.sqrt(H)
    inputs["b_ih"] = rng.standard_normal(G * H)
    inputs["b_hh"] = rng.standard_normal(G * H)
    return inputs


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def affine(x, h, W_ih, W_hh, b_ih, b_hh, k, H):
    """Gate k's pre-activation from its own rows of the stacked weights."""
    rows = slice(k * H, (k + 1) * H)
    return x @ W_ih[rows].T + b_ih[rows] + h @ W_hh[rows].T + b_hh[rows]


# ---------------------------------------------------------------- RNN

@given(T=T_, B=B_, D=D_, H=H_, seed=seeds, nonlinearity=st.sampled_from(["tanh", "relu"]))
def test_rnn_backward_matches_finite_differences(T, B, D, H, seed, nonlinearity):
    rng = np.random.default_rng(seed)
    inputs = recurrent_inputs(rng, T, B, D, H, G=1)
    dhs, dh_last = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))

    def loss():
        hs, _ = ref.rnn_forward(**inputs, nonlinearity=nonlinearity)
        return np.sum(dhs * hs) + np.sum(dh_last * hs[-1])

    _, cache = ref.rnn_forward(**inputs, nonlinearity=nonlinearity)
    assert_grads_match(loss, inputs, ref.rnn_backward(dhs, cache, dh_last))


@given(T=T_, B=B_, D=D_, H=H_, seed=seeds, nonlinearity=st.sampled_from(["tanh", "relu"]))
def test_rnn_forward_matches_equations(T, B, D, H, seed, nonlinearity):
    rng = np.random.default_rng(seed)
    p = recurrent_inputs(rng, T, B, D, H, G=1)
    act = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    hs, _ = ref.rnn_forward(**p, nonlinearity=nonlinearity)
    h = p["h0"]
    for t in range(T):
        h = act(affine(p["x"][t], h, p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], 0, H))
        np.testing.assert_allclose(hs[t], h, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- LSTM

@given(T=T_, B=B_, D=D_, H=H_, seed=seeds)
def test_lstm_backward_matches_finite_differences(T, B, D, H, seed):
    rng = np.random.default_rng(seed)
    inputs = recurrent_inputs(rng, T, B, D, H, G=4, with_c=True)
    dhs = rng.standard_normal((T, B, H))
    dh_last, dc_last = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def loss():
        hs, c_last, _ = ref.lstm_forward(**inputs)
        return np.sum(dhs * hs) + np.sum(dh_last * hs[-1]) + np.sum(dc_last * c_last)

    _, _, cache = ref.lstm_forward(**inputs)
    assert_grads_match(loss, inputs, ref.lstm_backward(dhs, cache, dh_last, dc_last))


@given(T=T_, B=B_, D=D_, H=H_, seed=seeds)
def test_lstm_forward_matches_equations(T, B, D, H, seed):
    rng = np.random.default_rng(seed)
    p = recurrent_inputs(rng, T, B, D, H, G=4, with_c=True)
    hs, c_last, _ = ref.lstm_forward(**p)
    h, c = p["h0"], p["c0"]
    for t in range(T):
        i, f, g, o = (affine(p["x"][t], h, p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], k, H)
                      for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        np.testing.assert_allclose(hs[t], h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c_last, c, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- GRU

@given(T=T_, B=B_, D=D_, H=H_, seed=seeds)
def test_gru_backward_matches_finite_differences(T, B, D, H, seed):
    rng = np.random.default_rng(seed)
    inputs = recurrent_inputs(rng, T, B, D, H, G=3)
    dhs, dh_last = rng.standard_normal((T, B, H)), rng.standard_normal((B, H))

    def loss():
        hs, _ = ref.gru_forward(**inputs)
        return np.sum(dhs * hs) + np.sum(dh_last * hs[-1])

    _, cache = ref.gru_forward(**inputs)
    assert_grads_match(loss, inputs, ref.gru_backward(dhs, cache, dh_last))


@given(T=T_, B=B_, D=D_, H=H_, seed=seeds)
def test_gru_forward_matches_equations(T, B, D, H, seed):
    rng = np.random.default_rng(seed)
    p = recurrent_inputs(rng, T, B, D, H, G=3)
    hs, _ = ref.gru_forward(**p)
    h = p["h0"]
    W_ih, W_hh, b_ih, b_hh = p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"]
    for t in range(T):
        x = p["x"][t]
        r = sigmoid(affine(x, h, W_ih, W_hh, b_ih, b_hh, 0, H))
        z = sigmoid(affine(x, h, W_ih, W_hh, b_ih, b_hh, 1, H))
        n = np.tanh(x @ W_ih[2 * H:].T + b_ih[2 * H:] + r * (h @ W_hh[2 * H:].T + b_hh[2 * H:]))
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(hs[t], h, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- shared

def test_only_the_last_state_can_carry_gradient():
    """dhs=None (an encoder, many-to-one) equals dhs of zeros."""
    rng = np.random.default_rng(0)
    T, B, D, H = 4, 2, 3, 5
    dh_last, dc_last = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    zeros = np.zeros((T, B, H))
    runs = [
        (ref.rnn_forward, ref.rnn_backward, 1, False, (dh_last,)),
        (ref.gru_forward, ref.gru_backward, 3, False, (dh_last,)),
        (ref.lstm_forward, ref.lstm_backward, 4, True, (dh_last, dc_last)),
    ]
    for forward, backward, G, with_c, last in runs:
        cache = forward(**recurrent_inputs(rng, T, B, D, H, G, with_c))[-1]
        none, full = backward(None, cache, *last), backward(zeros, cache, *last)
        for name in full:
            np.testing.assert_array_equal(none[name], full[name])


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_float32_in_float32_out(kind):
    rng = np.random.default_rng(0)
    G, with_c = {"rnn": (1, False), "gru": (3, False), "lstm": (4, True)}[kind]
    forward = getattr(ref, f"{kind}_forward")
    backward = getattr(ref, f"{kind}_backward")
    inputs = {k: v.astype(np.float32)
              for k, v in recurrent_inputs(rng, 3, 2, 4, 5, G, with_c).items()}
    out = forward(**inputs)
    assert out[0].dtype == np.float32
    grads = backward(np.ones_like(out[0]), out[-1])
    assert all(g.dtype == np.float32 for g in grads.values())


# ---------------------------------------------------------------- attention

@given(B=B_, Tq=T_, Tk=T_, H=H_, seed=seeds, masked=st.booleans(), scale=st.booleans())
def test_attention_backward_matches_finite_differences(B, Tq, Tk, H, seed, masked, scale):
    rng = np.random.default_rng(seed)
    inputs = {"q": rng.standard_normal((B, Tq, H)),
              "k": rng.standard_normal((B, Tk, H)),
              "v": rng.standard_normal((B, Tk, H))}
    mask = None
    if masked:
        mask = rng.random((B, Tk)) < 0.5
        mask[np.arange(B), rng.integers(0, Tk, B)] = True   # every query keeps a key
    dout = rng.standard_normal((B, Tq, H))

    def loss():
        out, _, _ = ref.dot_attention_forward(**inputs, mask=mask, scale=scale)
        return np.sum(dout * out)

    out, w, cache = ref.dot_attention_forward(**inputs, mask=mask, scale=scale)
    assert_grads_match(loss, inputs, ref.dot_attention_backward(dout, cache))

    np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-12)
    s = inputs["q"] @ inputs["k"].transpose(0, 2, 1) / (np.sqrt(H) if scale else 1)
    e = np.exp(s) if mask is None else np.exp(s) * mask[:, None, :]
    np.testing.assert_allclose(w, e / e.sum(-1, keepdims=True), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out, w @ inputs["v"], rtol=1e-12, atol=1e-15)
    if mask is not None:
        assert np.all(w[np.broadcast_to(~mask[:, None, :], w.shape)] == 0)


# ---------------------------------------------------------------- word2vec

@given(V=st.integers(1, 4), D=D_, shape=st.lists(st.integers(1, 4), max_size=2), seed=seeds)
def test_scatter_add_rows_is_add_at(V, D, shape, seed):
    rng = np.random.default_rng(seed)
    ids, rows = rng.integers(0, V, shape), rng.standard_normal((*shape, D))
    expected = rng.standard_normal((V, D))
    out = ref.scatter_add_rows(expected.copy(), ids, rows)
    np.add.at(expected, ids, rows)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="C-contiguous"):
        ref.scatter_add_rows(np.zeros((4, 3)).T, np.array([0]), np.ones((1, 4)))


def ns_loss_literal(W_in, W_out, h_rows, pos, negatives):
    """The negative-sampling loss one example at a time; h_rows[b] are averaged."""
    total = 0.0
    for b in range(len(pos)):
        h = W_in[h_rows[b]].mean(0)
        total -= np.log(sigmoid(W_out[pos[b]] @ h))
        total -= sum(np.log(sigmoid(-W_out[k] @ h)) for k in negatives[b])
    return total / len(pos)


# A vocabulary of 4 words and batches of up to 6: ids repeat, and negatives
# often equal the true word, so the gradients must accumulate.
w2v_sizes = {"V": st.integers(1, 4), "D": D_, "B": st.integers(1, 6), "K": st.integers(1, 3),
             "seed": seeds}


@given(**w2v_sizes)
def test_skipgram_matches_finite_differences(V, D, B, K, seed):
    rng = np.random.default_rng(seed)
    inputs = {"W_in": rng.standard_normal((V, D)), "W_out": rng.standard_normal((V, D))}
    centers, contexts = rng.integers(0, V, B), rng.integers(0, V, B)
    negatives = rng.integers(0, V, (B, K))

    def loss():
        return ref.skipgram_ns_loss_and_grads(**inputs, centers=centers, contexts=contexts,
                                              negatives=negatives)[0]

    value, grads = ref.skipgram_ns_loss_and_grads(**inputs, centers=centers, contexts=contexts,
                                                  negatives=negatives)
    literal = ns_loss_literal(*inputs.values(), centers[:, None], contexts, negatives)
    np.testing.assert_allclose(value, literal, rtol=1e-12)
    assert_grads_match(loss, inputs, grads)


@given(**w2v_sizes, C=st.integers(1, 4))
def test_cbow_matches_finite_differences(V, D, B, K, C, seed):
    rng = np.random.default_rng(seed)
    inputs = {"W_in": rng.standard_normal((V, D)), "W_out": rng.standard_normal((V, D))}
    contexts, centers = rng.integers(0, V, (B, C)), rng.integers(0, V, B)
    negatives = rng.integers(0, V, (B, K))

    def loss():
        return ref.cbow_ns_loss_and_grads(**inputs, contexts=contexts, centers=centers,
                                          negatives=negatives)[0]

    value, grads = ref.cbow_ns_loss_and_grads(**inputs, contexts=contexts, centers=centers,
                                              negatives=negatives)
    literal = ns_loss_literal(*inputs.values(), contexts, centers, negatives)
    np.testing.assert_allclose(value, literal, rtol=1e-12)
    assert_grads_match(loss, inputs, grads)


def test_word2vec_one_repeated_word():
    """Every id is word 2: one row of each matrix collects every gradient."""
    rng = np.random.default_rng(1)
    W_in, W_out = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    ids = np.full(4, 2)
    for loss_and_grads, first in [(ref.skipgram_ns_loss_and_grads, ids),
                                  (ref.cbow_ns_loss_and_grads, np.full((4, 3), 2))]:
        _, grads = loss_and_grads(W_in, W_out, first, ids, np.full((4, 2), 2))
        for g in grads.values():
            assert np.all(g[[0, 1, 3, 4]] == 0) and np.any(g[2] != 0)
        assert_grads_match(lambda f=loss_and_grads, a=first:
                           f(W_in, W_out, a, ids, np.full((4, 2), 2))[0],
                           {"W_in": W_in, "W_out": W_out}, grads)


# ---------------------------------------------------------------- language models

def lm_state(kind, rng, B, H):
    h0 = rng.standard_normal((B, H))
    return (h0, rng.standard_normal((B, H))) if kind == "lstm" else h0


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@given(seed=seeds, B=B_, T=T_)
def test_lm_gradient_matches_finite_differences(kind, seed, B, T):
    rng = np.random.default_rng(seed)
    V, E, H = 5, 2, 3
    params = ref.init_lm_params(kind, V, E, H, rng, dtype=np.float64)
    x_ids, y_ids = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    state = lm_state(kind, rng, B, H)
    loss_and_grads = getattr(ref, f"{kind}_lm_loss_and_grads")
    _, grads, _ = loss_and_grads(params, x_ids, y_ids, state)
    assert_grads_match(lambda: loss_and_grads(params, x_ids, y_ids, state)[0], params, grads)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lm_step_learns_a_repeated_sequence(kind, dtype):
    rng = np.random.default_rng(0)
    V, E, H, B = 6, 8, 16, 2
    params = ref.init_lm_params(kind, V, E, H, rng, dtype=dtype)
    assert all(p.dtype == dtype for p in params.values())
    seq = np.tile(np.arange(V), 4)                       # 0 1 2 3 4 5 0 1 ...
    x_ids, y_ids = np.stack([seq[:-1]] * B), np.stack([seq[1:]] * B)
    zeros = np.zeros((B, H), dtype)
    state = (zeros, zeros) if kind == "lstm" else zeros
    step = getattr(ref, f"{kind}_lm_step")
    losses = [step(params, x_ids, y_ids, state, lr=1.0)[0] for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == dtype for p in params.values())
    _, last = step(params, x_ids, y_ids, state, lr=1.0)
    for s in (last if kind == "lstm" else (last,)):
        assert s.shape == (B, H) and s.dtype == dtype
