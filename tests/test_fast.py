"""The speed devices (microseq.fast) against the plain path they stand in for.

Every op, layer and lesson model is run twice in float64, once with the
speed devices on and once with them off, from the same inputs and weights:
the values and every gradient must agree to 1e-10 relative (the devices sum
the same terms in another order, nothing more). The plain path itself is
checked against central differences everywhere else in the suite, and
`MICROSEQ_FAST=0 make test` runs the whole suite on it.
"""
import importlib

import numpy as np
import pytest

import microseq as ms
from microseq import nn
from microseq.models.attention_seq2seq import AttentionSeq2Seq
from microseq.models.char_lm import CharLM
from microseq.models.long_range import SequenceRegressor
from microseq.models.seq2seq import Seq2Seq
from microseq.models.sequence import ManyToMany, ManyToOne, OneToMany
from microseq.models.word2vec import CBOW, SkipGram

RTOL, ATOL = 1e-10, 1e-12
tensor_module = importlib.import_module("microseq.tensor")  # ms.tensor is the function


def both_ways(run):
    """run() -> (value, {name: grad}), once fast and once plain."""
    results = []
    for on in (True, False):
        with ms.fast.switched(on):
            results.append(run())
    return results


def assert_agree(fast, plain):
    (value_f, grads_f), (value_p, grads_p) = fast, plain
    np.testing.assert_allclose(value_f, value_p, rtol=RTOL, atol=ATOL, err_msg="value")
    assert grads_f.keys() == grads_p.keys()
    for name in grads_f:
        assert (grads_f[name] is None) == (grads_p[name] is None), name
        if grads_f[name] is not None:
            assert grads_f[name].dtype == grads_p[name].dtype, name
            np.testing.assert_allclose(grads_f[name], grads_p[name], rtol=RTOL, atol=ATOL,
                                       err_msg=name)


# --- ops: each path of the fast backward pass, mixed with dense uses ----------------

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 3, 5))
W = rng.standard_normal((5, 5))
IDS = np.array([2, 0, 2, 3])  # a repeated row

OPS = {  # name -> f(x (4, 3, 5), w (5, 5)), a tensor of any shape
    "elementwise": lambda x, w: ms.tanh(x * 2 - 1).exp() / (1 + ms.sigmoid(x)) + ms.relu(x) ** 2,
    "matmul 2-D": lambda x, w: x[0] @ w,
    "matmul 3-D by 2-D": lambda x, w: x @ w,
    "matmul batched": lambda x, w: x @ ms.transpose(x, (0, 2, 1)),
    "matmul constant left": lambda x, w: np.ones((2, 5)) @ w,
    "weight used at every step": lambda x, w: ms.stack([ms.tanh(x[t] @ w) for t in range(4)]),
    "rows mixed with dense uses": lambda x, w: (
        ms.stack([x[t] @ w for t in range(4)] + [x[0] @ w, x[-1:].sum(0) @ w]) * 2
        + (x @ w).sum(0)),
    "slices": lambda x, w: x[1:3, :, ::2] * x[:2, ..., 0:1] + x[:2, 1, None, :3],
    "integer-array rows, repeated": lambda x, w: x[IDS] * x[IDS[::-1]],
    "fancy index, repeated": lambda x, w: x[[0, 0, 3], [1, 1, 2]],
    "index given as a tensor": lambda x, w: x[ms.tensor(IDS)],
    "boolean mask": lambda x, w: x[x.data > 0],
    "reductions": lambda x, w: x.sum(0) + x.mean(axis=(1, 2), keepdims=True) + x.max(-1, True),
    "reshape, transpose, split, concat": lambda x, w: ms.concat(
        ms.split(x.reshape(4, 15).T, 3, axis=0)[::-1], axis=1),
    "softmax family": lambda x, w: ms.softmax(x, axis=1) * ms.log_softmax(x @ w),
    "where, maximum": lambda x, w: ms.where(x.data > 0, x, w[0]) + ms.maximum(x, x[0]),
    "cross_entropy": lambda x, w: ms.cross_entropy(x @ w, np.array([[1, -100, 4]] * 4)),
    "binary cross entropy": lambda x, w: ms.binary_cross_entropy_with_logits(x, X > 0),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_gives_the_same_values_and_gradients(name):
    def run():
        x, w = ms.tensor(X, requires_grad=True), ms.tensor(W, requires_grad=True)
        out = OPS[name](x, w)
        (out * np.cos(np.arange(out.size)).reshape(out.shape)).sum().backward()
        return out.data, {"x": x.grad, "w": w.grad}

    assert_agree(*both_ways(run))


def test_gradients_accumulate_over_calls_the_same_way():
    def run():
        x, w = ms.tensor(X, requires_grad=True), ms.tensor(W, requires_grad=True)
        for _ in range(2):
            OPS["rows mixed with dense uses"](x, w).sum().backward()
        return 0.0, {"x": x.grad, "w": w.grad}

    assert_agree(*both_ways(run))


# --- layers and lesson models -------------------------------------------------------

def model_run(build, loss):
    """A run() for both_ways: the model built from seed 0, in float64."""
    def run():
        ms.manual_seed(0)
        model = build()
        model.to(np.float64)
        value = loss(model)
        model.zero_grad()
        value.backward()
        return value.data, {name: p.grad for name, p in model.named_parameters()}

    return run


def ids(*shape, high=7):
    return np.random.default_rng(1).integers(0, high, shape)


def floats(*shape):
    return np.random.default_rng(2).standard_normal(shape)


def layer_loss(layer, x, state=None):
    out, final = layer(x, state)
    finals = final if isinstance(final, tuple) else (final,)
    return (out * out).sum() + sum((f * f).sum() for f in finals)


class EmbedLinear(nn.Module):
    def __init__(self):
        self.embed, self.linear = nn.Embedding(7, 3), nn.Linear(3, 2)

    def forward(self, ids):
        return self.linear(self.embed(ids))


MODELS = {  # name -> (build, loss(model))
    "RNN tanh, 2 layers": (lambda: nn.RNN(3, 4, num_layers=2),
                           lambda m: layer_loss(m, floats(5, 2, 3), floats(2, 2, 4))),
    "RNN relu, batch first": (lambda: nn.RNN(3, 4, nonlinearity="relu", batch_first=True),
                              lambda m: layer_loss(m, floats(2, 5, 3))),
    "LSTM, 2 layers": (lambda: nn.LSTM(3, 4, num_layers=2),
                       lambda m: layer_loss(m, floats(5, 2, 3), (floats(2, 2, 4),
                                                                 floats(2, 2, 4)))),
    "GRU, no bias": (lambda: nn.GRU(3, 4, bias=False), lambda m: layer_loss(m, floats(5, 2, 3))),
    "GRU, batch first": (lambda: nn.GRU(3, 4, batch_first=True),
                         lambda m: layer_loss(m, floats(2, 5, 3))),
    "RNNCell": (lambda: nn.RNNCell(3, 4), lambda m: (m(floats(2, 3), floats(2, 4)) ** 2).sum()),
    "LSTMCell": (lambda: nn.LSTMCell(3, 4),
                 lambda m: sum((s ** 2).sum() for s in m(floats(2, 3), (floats(2, 4),
                                                                          floats(2, 4))))),
    "GRUCell": (lambda: nn.GRUCell(3, 4), lambda m: (m(floats(2, 3)) ** 2).sum()),
    "Embedding, Linear": (lambda: EmbedLinear(), lambda m: (m(ids(4, 5)) ** 2).mean()),
    "ManyToOne (lesson 1)": (lambda: ManyToOne(1, 4, 1, cell="lstm"),
                             lambda m: (m(floats(3, 6, 1)) ** 2).mean()),
    "ManyToMany (lesson 2)": (lambda: ManyToMany(3, 4, 5, vocab_size=7, cell="gru"),
                              lambda m: m.loss(ids(3, 6), ids(3, 6, high=5), ids(3, 6) > 1)),
    "OneToMany (lesson 2)": (lambda: OneToMany(3, 7, 2, 4, cell="lstm"),
                             lambda m: ms.cross_entropy(m(floats(3, 3), ids(3, 5)), ids(3, 5))),
    "CharLM (lesson 3)": (lambda: CharLM(7, hidden_size=4, embed_size=3, cell="lstm",
                                         num_layers=2),
                          lambda m: m.loss(ids(3, 6), ids(3, 6))[0]),
    "SequenceRegressor (lesson 5)": (lambda: SequenceRegressor("lstm", 2, 4),
                                     lambda m: (m(floats(3, 6, 2)) ** 2).mean()),
    "SequenceRegressor GRU (lesson 6)": (lambda: SequenceRegressor("gru", 2, 4),
                                         lambda m: (m(floats(3, 6, 2)) ** 2).mean()),
    "CBOW (lesson 7)": (lambda: CBOW(7, 3), lambda m: m(ids(4, 2), ids(4), ids(4, 3))),
    "SkipGram (lesson 7)": (lambda: SkipGram(7, 3), lambda m: m(ids(4), ids(4), ids(4, 3))),
    "Seq2Seq peeky (lesson 8)": (lambda: Seq2Seq(7, embed_size=3, hidden_size=4, peeky=True),
                                 lambda m: m.loss(ids(3, 5), ids(3, 4), ids(3, 4))),
    "AttentionSeq2Seq (lesson 9)": (
        lambda: AttentionSeq2Seq(7, pad_id=0, embed_size=3, hidden_size=4),
        lambda m: m.loss(ids(3, 5), ids(3, 4), ids(3, 4))),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_layer_and_model_gives_the_same_values_and_gradients(name):
    assert_agree(*both_ways(model_run(*MODELS[name])))


def test_switched_off_the_layers_build_their_steps_from_primitive_ops():
    before = ms.fast.enabled()
    with ms.fast.switched(False):
        out, _ = nn.LSTM(2, 3)(np.ones((4, 1, 2)))
    assert ms.fast.enabled() == before  # restored on leaving the block
    ops = {node.op for node in _nodes(out)}
    assert "lstm_cell" not in ops and {"sigmoid", "tanh", "matmul"} <= ops


def test_enable_sets_the_one_hook_and_returns_the_previous_setting():
    before = ms.fast.enable(False)
    try:
        assert tensor_module.backward_hook is None and not ms.fast.enabled()
        assert ms.fast.enable(True) is False
        assert tensor_module.backward_hook is ms.fast.backward_pass
    finally:
        ms.fast.enable(before)


@pytest.mark.parametrize("value, on", [("0", False), ("off", False), ("1", True), ("", True)])
def test_the_environment_switch(monkeypatch, value, on):
    monkeypatch.setenv("MICROSEQ_FAST", value)
    assert ms.fast.from_environment() is on


def test_a_bad_environment_switch_names_the_variable(monkeypatch):
    monkeypatch.setenv("MICROSEQ_FAST", "fast")
    with pytest.raises(ValueError, match="MICROSEQ_FAST='fast': use 1 .* or 0"):
        ms.fast.from_environment()


def _nodes(root):
    seen, stack = {}, [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.parents)
    return seen.values()


def test_the_allocator_setting_is_left_alone_with_the_devices_off():
    with ms.fast.switched(False):
        assert ms.fast.keep_freed_memory() is False
