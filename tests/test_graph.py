"""Graph rendering: the DOT of Value and Tensor graphs; the dot program, or its absence."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import microseq as ms
from microseq import graph, nn
from microseq.scalar import Value
from microseq.scope import current, scope

pytestmark = pytest.mark.scalar


def parse(dot):
    """What a test needs from to_dot's output (one statement per line):
    clusters {id: (label, parent id)}, where each node sits {node: cluster or
    None}, and the visible edges [(tail, head)]."""
    clusters, where, edges, open_clusters = {}, {}, [], [None]
    for line in dot.splitlines():
        line = line.strip()
        if m := re.match(r"subgraph (cluster_\w+) \{", line):
            clusters[m[1]] = [None, open_clusters[-1]]
            open_clusters.append(m[1])
        elif line == "}":
            open_clusters.pop()
        elif m := re.match(r'label="([^"]*)"; style', line):
            clusters[open_clusters[-1]][0] = m[1]
        elif m := re.match(r"(\w+) -> (\w+)(.*);$", line):
            if "invis" not in m[3]:
                edges.append((m[1], m[2]))
        elif m := re.match(r"(n\d+) \[", line):
            where[m[1]] = open_clusters[-1]
    return {k: tuple(v) for k, v in clusters.items()}, where, edges


def scalar_rnn(steps=3):
    w_x, w_h, b = Value(0.5, label="w_x"), Value(0.9, label="w_h"), Value(0.1, label="b")
    h = Value(0.0, label="h0")
    for t in range(1, steps + 1):
        with scope(f"t={t}"):
            h = (w_x * (0.3 * t) + w_h * h + b).tanh()
    return (h - 0.2) ** 2


def tensor_rnn(steps=5, hidden=3):
    rng = np.random.default_rng(0)
    w_x = ms.tensor(rng.standard_normal((2, hidden)), requires_grad=True, label="W_xh")
    w_h = ms.tensor(rng.standard_normal((hidden, hidden)) * 0.3, requires_grad=True, label="W_hh")
    b = ms.tensor(np.zeros(hidden), requires_grad=True, label="b")
    xs = ms.tensor(rng.standard_normal((steps, 4, 2)), label="x")
    h = ms.zeros(4, hidden)
    for t in range(steps):
        with ms.scope(f"t={t + 1}"):
            h = ms.tanh(xs[t] @ w_x + h @ w_h + b)
    return ms.mean(h * h), [w_x, w_h, b]


class FakeTensor:
    """The node protocol graph.py draws (microseq.node): parents, op, scope,
    label, data, grad, and shape."""

    def __init__(self, shape, inputs=(), op="", label=None):
        self.data, self.grad = np.zeros(shape), None
        self.parents = tuple(p for p in inputs if isinstance(p, FakeTensor))  # not constants
        self.op, self.scope, self.label = op, current(), label
        self.shape = self.data.shape


def fake_rnn(steps):
    w, u = FakeTensor((3, 3), label="W"), FakeTensor((2, 3), label="U")
    h, nodes = FakeTensor((4, 3), label="h0"), []
    for t in range(1, steps + 1):
        with scope(f"t={t}"):
            x = FakeTensor((4, 2), op="getitem")
            xu = FakeTensor((4, 3), (x, u, 2.0), "matmul")
            h = FakeTensor((4, 3), (xu, h, w), "rnn_step", label=f"h{t}")
            nodes.append(h)
    return h, [w, u], nodes


def steps_reached(dot, param_label):
    """The clusters that the node labelled `param_label` has an edge into."""
    clusters, where, edges = parse(dot)
    node = re.search(rf'(n\d+) \[[^\n]*label="{{?\s*{param_label}\b', dot)[1]
    return {clusters[where[head]][0] for tail, head in edges if tail == node}


# --- structure -------------------------------------------------------------------

def test_each_value_is_drawn_once():
    x = Value(2.0, label="x")
    y = x * x + x
    clusters, where, edges = parse(graph.to_dot(y))
    assert len(where) == 3  # x, x*x, y: x appears once however often it is used
    x_id = re.search(r'(n\d+) \[[^\n]*label="x \|', graph.to_dot(y))[1]
    assert sum(tail == x_id for tail, _ in edges) == 3  # x * x and + x


def test_value_records_show_op_label_data_and_grad():
    x = Value(2.0, label="x")
    y = x * 3
    y.label = "y"
    y.backward()
    dot = graph.to_dot(y)
    assert 'label="x | data 2 | grad 3"' in dot
    assert 'label="data 3 | grad 2"' in dot  # the constant 3, unnamed
    assert 'label="* | y | data 6 | grad 1"' in dot
    assert "rankdir=LR" in dot  # a neuron reads left to right, as micrograd draws it


def test_an_unrolled_value_graph_is_drawn_top_to_bottom():
    assert "rankdir=TB" in graph.to_dot(scalar_rnn(steps=3))


def test_one_cluster_per_step_and_shared_weights_reach_every_step():
    dot = graph.to_dot(scalar_rnn(steps=4))
    clusters, where, _ = parse(dot)
    assert sorted(label for label, _ in clusters.values()) == ["t=1", "t=2", "t=3", "t=4"]
    for weight in ["w_x", "w_h", "b"]:
        assert steps_reached(dot, weight) == {"t=1", "t=2", "t=3", "t=4"}


def test_real_tensor_rnn():
    loss, params = tensor_rnn(steps=5)
    before = graph.to_dot(loss)
    assert "legend" not in before
    loss.backward()
    dot = graph.to_dot(loss, title="5 steps")
    clusters, where, edges = parse(dot)
    assert len(clusters) == 5
    for label in ["W_xh", "W_hh", "b"]:
        assert steps_reached(dot, label) == {f"t={t}" for t in range(1, 6)}
        node = re.search(rf'(n\d+) \[[^\n]*label="{label}\\n', dot)[1]
        assert where[node] is None  # parameters sit outside every step
    assert 'label="tanh\\n4x3"' in dot and 'label="W_hh\\n3x3"' in dot
    assert "legend" in dot and "|grad|, log scale" in dot


def test_gradient_colours_fade_with_the_gradient():
    h, _, steps = fake_rnn(4)
    for t, node in enumerate(steps):
        node.grad = np.zeros(node.shape)
        node.grad[0, 0] = 10.0 ** (t - 6)  # norms 1e-6 ... 1e-3, growing towards the last step
    dot = graph.to_dot(h)
    red = [re.search(rf'label="h{t}: [^\n]*fillcolor="#(\w\w)', dot)[1] for t in (1, 2, 3, 4)]
    assert red == sorted(red, reverse=True)  # pale first, darker at every step
    assert red[0] == "ef" and red[-1] == "08"  # the two ends of the scale
    assert "1e-06" in dot and "1e-03" in dot  # the legend spans the norms


def test_fake_tensors_and_constants_among_parents():
    h, params, _ = fake_rnn(3)
    dot = graph.to_dot(h)
    clusters, where, edges = parse(dot)
    assert len(clusters) == 3
    assert steps_reached(dot, "W") == {"t=1", "t=2", "t=3"}
    assert len(where) == 2 + 1 + 3 * 3  # W, U, h0 and per step x, matmul, h; 2.0 is not drawn


def test_nested_scopes_nest():
    x = Value(1.0, label="x")
    with scope("enc"):
        for t in (1, 2):
            with scope(f"t={t}"):
                x = x * 2
        with scope("t=1"), scope("inner"):
            x = x + 1
    clusters, where, _ = parse(graph.to_dot(x))
    by_label = {}
    for label, parent in clusters.values():
        by_label.setdefault(label, []).append(clusters[parent][0] if parent else None)
    assert by_label == {"enc": [None], "t=1": ["enc"], "t=2": ["enc"], "inner": ["t=1"]}


def test_labels_are_escaped(tmp_path):
    x = Value(1.0, label='a"b{c}|<d>\\')
    y = x.exp()
    y.label = "e\nf"
    dot = graph.to_dot(y, title='say "hi"')
    assert r'label="a\"b\{c\}\|\<d\>\\ | data 1' in dot and r'label="say \"hi\""' in dot
    assert graph.draw(y, tmp_path / "odd", title='say "hi"').suffix == ".svg"  # dot accepts it


# --- files and the dot program -----------------------------------------------------

def test_draw_renders_svg_and_png_with_clusters(tmp_path):
    loss = scalar_rnn()
    loss.backward()
    svg = graph.draw(loss, tmp_path / "bptt", title="BPTT")
    assert svg == tmp_path / "bptt.svg" and (tmp_path / "bptt.gv").exists()
    text = svg.read_text()
    assert "<svg" in text and all(f"t={t}" in text for t in (1, 2, 3))
    png = graph.draw(loss, tmp_path / "bptt.png", format="png")
    assert png == tmp_path / "bptt.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graphviz_pure_is_found_beside_the_interpreter_without_path(monkeypatch):
    monkeypatch.delenv("MICROSEQ_DOT", raising=False)
    monkeypatch.setenv("PATH", "")
    assert Path(graph.find_dot()).parent == Path(sys.executable).parent


def test_without_a_dot_program_the_gv_is_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MICROSEQ_DOT", str(tmp_path / "no-such-dot"))  # how dot is hidden
    assert graph.find_dot() is None
    result = graph.draw(scalar_rnn(), tmp_path / "g")
    assert result == tmp_path / "g.gv" and result.read_text().startswith("digraph")
    assert not (tmp_path / "g.svg").exists()
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "pip install graphviz-pure" in message


def test_a_failing_dot_program_keeps_the_gv(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "broken-dot"
    broken.write_text("#!/bin/sh\necho 'Error: syntax trouble' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("MICROSEQ_DOT", str(broken))
    (tmp_path / "g.svg").write_text("an old picture")
    assert graph.draw(Value(1.0) * 2, tmp_path / "g") == tmp_path / "g.gv"
    assert not (tmp_path / "g.svg").exists()
    message = capsys.readouterr().err
    assert "failed (Error: syntax trouble)" in message and "graphviz-pure" in message


def test_parameters_are_named_in_the_lessons_notation_and_data_as_input():
    rnn = nn.RNN(2, 3)
    for name, p in rnn.named_parameters():
        p.label = f"rnn.{name}"
    out, _ = rnn(np.zeros((4, 1, 2)))
    dot = graph.to_dot(ms.sum(out))
    for short, full in [("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"),
                        ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")]:
        assert f'label="rnn.{short}\\n' in dot and f"(rnn.{full})" in dot  # tooltip: full name
    assert 'label="input\\n' in dot and "leaf" not in dot
    clusters, _, _ = parse(dot)
    assert sorted(label for label, _ in clusters.values()) == ["t=1", "t=2", "t=3", "t=4"]
