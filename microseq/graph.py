"""Draw a computation graph (of Values or of Tensors) with graphviz.

    to_dot(loss, title="...")          -> the DOT source, a string
    draw(loss, "runs/x/graph")         -> runs/x/graph.svg (and always runs/x/graph.gv)

Value graphs are drawn as micrograd draws them, one record per value (the op
that made it, its label, data, grad), left to right; an unrolled one (with
scopes) top to bottom, one time step below the other, so that it fits a
page. Tensor graphs are drawn one box per tensor: its name or the op that made
it, and its shape, so that an unrolled RNN stays legible.

Both engines' nodes are read through the same small protocol (see
microseq.node): `parents`, `op`, `scope`, `label`, `data` and `grad`, plus
`shape` for a Tensor; anything with those can be drawn.

Scopes (see microseq.scope) become clusters: everything built inside
`with scope("t=3"):` is drawn in a box labelled "t=3". Nested scopes nest:
"enc/t=3" is a box "t=3" inside a box "enc". A node is drawn in the scope it
was made in, so parameters and inputs created before the loop sit outside all
the boxes, once, with an edge into every step that uses them. The boxes are
laid out one after another, in the order they were built.

Once backward() has run, nodes are filled by the norm of their gradient on a
log scale, with a legend: a gradient that vanishes across the time steps of
an RNN shows as a fade from dark to pale.

The picture needs graphviz's `dot` program. It is looked for, in this order:
the MICROSEQ_DOT environment variable (a path or a program name), `dot` on
PATH, then `graphviz-pure` (the pip package microseq depends on) on PATH or
beside the running Python. An explicit MICROSEQ_DOT is never second-guessed,
so `MICROSEQ_DOT=none` hides every program: draw() then writes the .gv only.
"""
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from microseq.scalar import Value

# Pale to dark blue: a small gradient is pale, a large one dark.
_PALE, _DARK = (239, 243, 255), (8, 81, 156)
_LEGEND_STEPS = 5


def to_dot(root, title=None):
    """The DOT source of the graph that produced `root` (a Value or a Tensor)."""
    nodes = _collect(root)
    index = {id(n): i for i, n in enumerate(nodes)}
    colours = _Colours(nodes)
    body = {}  # scope -> the statements drawn inside its cluster ("" = top level)
    edges = []
    for i, node in enumerate(nodes):
        body.setdefault(node.scope or "", []).extend(_node(node, i, colours(node)))
        edges += [f"n{index[id(p)]} -> n{i};" for p in node.parents]
    edges += _step_order(nodes, index)

    # A scalar step is a chain of several ops: side by side, three steps would
    # be metres wide, one below the other they fit a page.
    unrolled = any(isinstance(n, Value) and n.scope for n in nodes)
    # newrank: rank the whole graph at once, so clusters do not pile up at the left
    # Tight spacing and small margins: six tensor steps fit in about 1,700 pt.
    attrs = (f'rankdir={"TB" if unrolled else "LR"}, newrank=true, fontname="Helvetica", '
             f'fontsize=11, nodesep=0.15, ranksep={0.25 if unrolled else 0.15}')
    if title:
        attrs += f", label={_quote(title)}, labelloc=t"
    out = ["digraph G {", f"  graph [{attrs}];",
           '  node [fontname="Helvetica", fontsize=9, height=0.25, width=0.4, '
           'margin="0.04,0.02"];',
           '  edge [color="#555555", arrowsize=0.6];']
    out += ["  " + line for line in body.pop("", [])]
    out += _clusters(body)
    out += ["  " + e for e in edges]
    out += colours.legend()
    out.append("}")
    return "\n".join(out) + "\n"


def draw(root, path, format="svg", title=None):
    """Write `<path>.gv` and render it to `<path>.<format>`; return the picture's Path.

    Without a working dot program the .gv is kept, one line says how to get
    one, and the .gv's Path is returned.
    """
    path = Path(path)
    if path.suffix == "." + format:
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    gv = path.with_name(path.name + ".gv")
    picture = path.with_name(path.name + "." + format)
    gv.write_text(to_dot(root, title))
    picture.unlink(missing_ok=True)  # never leave an old picture beside a new .gv

    dot = find_dot()
    how = "install one with `pip install graphviz-pure` or your system's graphviz package"
    if dot is None:
        print(f"graph: no dot program found, wrote {gv} only; {how}", file=sys.stderr)
        return gv
    try:
        result = subprocess.run([dot, f"-T{format}", str(gv), "-o", str(picture)],
                                capture_output=True, text=True, timeout=300, check=False)
        failure = result.stderr.strip().splitlines()[-1:] if result.returncode else None
    except (OSError, subprocess.TimeoutExpired) as e:
        failure = [str(e)]
    if failure is not None or not picture.exists():
        reason = failure[0] if failure else "no output"
        print(f"graph: {dot} failed ({reason}), kept {gv}; {how}", file=sys.stderr)
        return gv
    return picture


def find_dot():
    """The dot program draw() will run, or None (the search order is in the module doc)."""
    explicit = os.environ.get("MICROSEQ_DOT")
    if explicit:
        return shutil.which(explicit)
    return (shutil.which("dot") or shutil.which("graphviz-pure")
            or shutil.which("graphviz-pure", path=os.path.dirname(sys.executable)))


# --- the graph --------------------------------------------------------------

def _collect(root):
    """Every node root depends on, each once, inputs before the ops that use them."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack += [(p, False) for p in reversed(node.parents) if id(p) not in seen]
    return order


def _node(node, i, colour):
    """The DOT statement for node number i: a Value's record or a Tensor's box."""
    fill, font = colour
    if not isinstance(node, Value):
        return [f'n{i} [{_tensor_attrs(node)}, fillcolor="{fill}", fontcolor={font}];']
    return [f'n{i} [shape=record, style=filled, fillcolor="{fill}", fontcolor={font}, '
            f"label={_value_label(node)}];"]


def _step_order(nodes, index):
    """Invisible edges that start each scope's cluster after the one built before it.

    Without them dot ranks whatever in a step does not depend on the previous
    step (x_t and its matmul) at the far left, stretching every cluster across
    the picture; with them an unrolled RNN reads left to right, step by step.
    """
    members = {}
    for i, node in enumerate(nodes):
        if node.scope:
            members.setdefault(node.scope, []).append(i)
    steps = sorted(members.values(), key=lambda m: m[-1])  # by each scope's last node
    edges = []
    for before, after in itertools.pairwise(steps):
        inside = set(after)
        edges += [f"n{before[-1]} -> n{i} [style=invis];" for i in after
                  if not any(index[id(p)] in inside for p in nodes[i].parents)]
    return edges


def _clusters(body):
    """Nested `subgraph cluster_k` blocks, one per scope and per prefix of a nested scope."""
    tree = {}  # scope path -> subtree; a scope's own nodes are body[path]
    for path in body:
        level = tree
        parts = path.split("/")
        for i in range(len(parts)):
            level = level.setdefault("/".join(parts[:i + 1]), {})
    out, counter = [], itertools.count()

    def emit(level, indent):
        for path, children in level.items():
            pad = "  " * indent
            out.append(f"{pad}subgraph cluster_{next(counter)} {{")
            out.append(f'{pad}  label={_quote(path.rsplit("/", 1)[-1])}; style="rounded,filled"; '
                       'fillcolor="#f7f7f7"; color="#aaaaaa"; fontsize=11;')
            out.extend(f"{pad}  {line}" for line in body.get(path, []))
            emit(children, indent + 1)
            out.append(f"{pad}}}")

    emit(tree, 1)
    return out


# --- labels -----------------------------------------------------------------

def _fmt(x):
    return f"{x:.4g}"


def _value_label(v):
    """A quoted record label: op | label | data ... | grad ..., the fields side by
    side in a top-to-bottom drawing and stacked in a left-to-right one."""
    fields = [f for f in (v.op, v.label) if f]
    fields += [f"data {_fmt(v.data)}", f"grad {_fmt(v.grad)}"]
    return '"' + " | ".join(_record_escape(f) for f in fields) + '"'


def _shape(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _notation(label):
    """A parameter's name in the lessons' notation: rnn.weight_hh_l0 -> rnn.W_hh,
    decoder.lstm.bias_ih_l1 -> decoder.lstm.b_ih_l1 (PyTorch's names, shortened)."""
    def short(m):
        layer = f"_l{m[3]}" if m[3] != "0" else ""
        return ("W" if m[1] == "weight" else "b") + f"_{m[2]}" + layer
    return re.sub(r"\b(weight|bias)_(ih|hh)_l(\d+)$", short, label)


def _tensor_attrs(t):
    """A short two-line label: what made the tensor (or its name), and its shape."""
    shape = _shape(t.shape)
    name = _notation(t.label) if t.label else None
    if t.op:
        head = f"{name}: {t.op}" if name else t.op
        style = 'shape=box, style="rounded,filled"'
    else:  # a leaf: a parameter or an input, square-cornered with a heavier border
        head = name or "input"  # parameters all have names; a nameless leaf is data
        style = "shape=box, style=filled, penwidth=1.6"
    tip = (f"{head} {shape}" + (f" ({t.label})" if name != t.label else "")
           + (f" in {t.scope}" if t.scope else ""))
    if t.grad is not None:
        tip += f", |grad| {_fmt(_norm(t.grad))}"
    return f"{style}, label={_quote(head + chr(10) + shape)}, tooltip={_quote(tip)}"


def _escape(s):
    # in a DOT label, \\ is a backslash, \" a quote and \n a line break
    return str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _quote(s):
    return f'"{_escape(s)}"'


def _record_escape(s):
    s = _escape(s)
    for ch in "{}|<>":  # these structure a record label
        s = s.replace(ch, "\\" + ch)
    return s


# --- gradient colours -------------------------------------------------------

def _norm(grad):
    return float(np.linalg.norm(np.asarray(grad, dtype=np.float64)))


class _Colours:
    """Fill and font colour of each node: pale to dark blue as log10 |grad| goes
    from the smallest to the largest in the graph; white before backward()."""

    def __init__(self, nodes):
        norms = [_norm(n.grad) for n in nodes if n.grad is not None]
        logs = [math.log10(n) for n in norms if 0 < n < math.inf]
        # Values start with grad 0.0, so "after backward" means: some gradient is not zero
        self.on = any(norms)
        self.lo, self.hi = (min(logs), max(logs)) if logs else (0.0, 0.0)

    def shade(self, norm):
        """(fill, font) for a gradient norm."""
        if not norm > 0:
            return "#ffffff", "black"
        span = self.hi - self.lo
        t = 1.0 if norm == math.inf or span == 0 else (math.log10(norm) - self.lo) / span
        t = min(max(t, 0.0), 1.0)
        rgb = (round(p + t * (d - p)) for p, d in zip(_PALE, _DARK, strict=True))
        fill = "#" + "".join(f"{c:02x}" for c in rgb)
        return fill, "white" if t > 0.55 else "black"

    def __call__(self, node):
        if not self.on or node.grad is None:
            return "#ffffff", "black"
        return self.shade(_norm(node.grad))

    def legend(self):
        """A node with a row of swatches from the smallest to the largest |grad|."""
        if not self.on:
            return []
        cells = []
        for k in range(_LEGEND_STEPS):
            norm = 10 ** (self.lo + (self.hi - self.lo) * k / (_LEGEND_STEPS - 1))
            fill, font = self.shade(norm)
            cells.append(f'<td bgcolor="{fill}"><font color="{font}">{norm:.0e}</font></td>')
        table = ('<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
                 f'<tr><td colspan="{_LEGEND_STEPS}">|grad|, log scale</td></tr>'
                 f'<tr>{"".join(cells)}</tr></table>>')
        return [f"  legend [shape=plaintext, label={table}];"]
