"""Lesson 0: autograd from scratch.

One neuron computed by hand and drawn before and after backward(); its
gradients checked against finite differences; a small MLP trained on two
moons with the loss going down; a 3-step scalar RNN unrolled in time,
drawn as the first backpropagation-through-time graph; and a new op with a
slip in its derivative, which hypothesis finds, shrinks and sees fixed.

    python lessons/00_autograd.py [--quick] [--seed N] [--out DIR]
                                  [--hidden N] [--noise S] [--w-hh W]
"""
import inspect
import random
import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq.data.moons import make_moons
from microseq.gradcheck import (
    GradcheckError, autograd_scalar, gradcheck, gradcheck_scalar, numerical_grad_scalar,
)
from microseq.lesson import Lesson
from microseq.scalar import Value
from microseq.scope import scope
from microseq.tensor import op
from microseq.testing import Counterexample, arrays, check_op

lesson = Lesson(0, "autograd from scratch", arguments={
    "--hidden": dict(type=int, default=None, metavar="N",
                     help="neurons in each hidden layer of the MLP (default 8 quick, 16 full)"),
    "--noise": dict(type=float, default=0.1, metavar="S",
                    help="spread of the two moons' points (default 0.1)"),
    "--w-hh": dict(type=float, default=0.9, metavar="W",
                   help="the recurrent weight of the 3-step RNN (default 0.9)")})
rng = random.Random(lesson.seed)

# --- 1. A neuron by hand --------------------------------------------------------

lesson.section("1. A neuron, by hand")
lesson.say("""
    A Value is a number that remembers the op that made it and the local
    derivative of that op with respect to each input. Here is one neuron,
    built from single numbers:
""")
lesson.equation("o = tanh(x1*w1 + x2*w2 + b)", r"o = \tanh(x_1 w_1 + x_2 w_2 + b)")
x1, x2 = Value(1.5, label="x1"), Value(-0.5, label="x2")
w1, w2 = Value(0.8, label="w1"), Value(-1.2, label="w2")
b = Value(0.1, label="b")
n = x1 * w1 + x2 * w2 + b
n.label = "n"
o = n.tanh()
o.label = "o"
before = lesson.draw(o, "neuron_before", title="o = tanh(x1 w1 + x2 w2 + b), before backward()")
o.backward()
after = lesson.draw(o, "neuron_after", title="o = tanh(x1 w1 + x2 w2 + b), after backward()")

lesson.say(f"""
    The forward pass gives o = {o.data:.4f}. backward() then visits the graph
    from o back to the leaves and multiplies local derivatives along every
    path (the chain rule). By hand: do/dn = 1 - o^2 = {1 - o.data ** 2:.4f}, and
    n is a sum of products, so do/dw1 = (1 - o^2) * x1 and do/dx1 = (1 - o^2) * w1.
""")
print("\n    leaf   autograd   by hand")
local = 1 - o.data ** 2
for leaf, by_hand in [(w1, local * x1.data), (w2, local * x2.data), (b, local),
                      (x1, local * w1.data), (x2, local * w2.data)]:
    print(f"    {leaf.label:<5} {leaf.grad:9.5f} {by_hand:9.5f}")
lesson.say(f"The graph before and after backward(): {before} and {after}.")

# --- 2. Checking gradients ------------------------------------------------------

lesson.section("2. Checking gradients numerically")
lesson.say("""
    A derivative can also be estimated without any calculus: nudge one input
    by a tiny eps both ways and look at the change, (f(x+eps) - f(x-eps)) / 2eps.
    gradcheck_scalar compares that estimate with autograd for every input and
    fails loudly, naming the worst input, when they disagree. We check the
    neuron and a function that uses every op of the engine.
""")


def neuron(v):
    x1, x2, w1, w2, b = v
    return (x1 * w1 + x2 * w2 + b).tanh()


def every_op(v):
    a, c, d = v
    return ((a * c - d / a) ** 2 + 1).log() + (c - 2).exp() * d.sigmoid() \
        - (3 * a).relu() / (1 + c.tanh() ** 2) + 2 ** d - (-a) ** 3


checks = {"neuron": (neuron, [1.5, -0.5, 0.8, -1.2, 0.1]),
          "every op": (every_op, [0.7, -1.3, 0.4])}
max_error = 0.0
for name, (f, point) in checks.items():
    gradcheck_scalar(f, point)
    error = max(abs(a - n) for a, n in zip(autograd_scalar(f, point),
                                           numerical_grad_scalar(f, point), strict=True))
    max_error = max(max_error, error)
    print(f"    {name:<9} inputs={len(point)}  max |autograd - numeric| = {error:.2e}")

# --- 3. A tiny MLP --------------------------------------------------------------

lesson.section("3. Training a tiny MLP")
n_points, hidden, steps = (40, 8, 40) if lesson.quick else (100, 16, 100)
hidden = lesson.args.hidden or hidden
lesson.say(f"""
    Neurons in layers make a multi-layer perceptron: 2 inputs, two hidden
    layers of {hidden} ReLU neurons, one output whose sign is the class. We
    train it on {n_points} points of two interleaved half-moons with a
    max-margin loss, mean(relu(1 - y * score)), plus a little L2 penalty, by
    plain gradient descent. Leaf gradients accumulate across backward()
    calls, so each step first sets them back to zero.
""")


def layer(n_in, n_out):
    return [([Value(rng.uniform(-1, 1)) for _ in range(n_in)], Value(0.0)) for _ in range(n_out)]


def mlp(model, x, y):
    """The score of point (x, y): positive means class +1."""
    h = [x, y]
    for i, neurons in enumerate(model):
        sums = [sum((wi * hi for wi, hi in zip(w, h, strict=True)), b) for w, b in neurons]
        h = sums if i == len(model) - 1 else [s.relu() for s in sums]
    return h[0]


points = make_moons(n_points, rng, noise=lesson.args.noise)
model = [layer(2, hidden), layer(hidden, hidden), layer(hidden, 1)]
params = [p for neurons in model for w, b in neurons for p in (*w, b)]


def loss_and_accuracy():
    scores = [mlp(model, x, y) for x, y, _ in points]
    labels = [label for _, _, label in points]
    data_loss = sum((1 - y * s).relu() for y, s in zip(labels, scores, strict=True)) / len(points)
    right = sum((s.data > 0) == (y > 0) for y, s in zip(labels, scores, strict=True))
    return data_loss + 1e-4 * sum(p * p for p in params), right / len(points)


def train_step(k):
    """One step of gradient descent; returns the loss before it. Its graph is freed on return."""
    loss, _ = loss_and_accuracy()
    for p in params:
        p.grad = 0.0
    loss.backward()
    rate = 1.0 - 0.9 * k / steps  # decays from 1.0 to 0.1
    for p in params:
        p.data -= rate * p.grad
    return loss.data


losses = [train_step(k) for k in lesson.progress(range(steps), "training")]
final_loss, accuracy = loss_and_accuracy()
final_loss = final_loss.data
print(f"    {len(params)} parameters; loss {losses[0]:.3f} -> {final_loss:.3f}, "
      f"accuracy on the training points {accuracy:.0%}")

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses)
ax.set(xlabel="step", ylabel="loss", yscale="log",
       title=f"MLP training loss: {losses[0]:.3g} down to {final_loss:.3g}")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
lesson.savefig(fig, "mlp_loss")

grid = 15 if lesson.quick else 40
xs = [-1.6 + 4.2 * i / (grid - 1) for i in range(grid)]
ys = [-1.1 + 2.7 * j / (grid - 1) for j in range(grid)]
scores = [[mlp(model, x, y).data for x in xs] for y in ys]
fig, ax = plt.subplots(figsize=(5, 4))
ax.contourf(xs, ys, scores, levels=[-1e9, 0, 1e9], colors=["#f4b6b6", "#b6c8f4"])
for label, colour in [(-1, "#c0392b"), (1, "#2453b3")]:
    ax.scatter([x for x, _, c in points if c == label], [y for _, y, c in points if c == label],
               s=12, color=colour, label=f"class {label:+d}")
ax.set(xlabel="input 1 (x)", ylabel="input 2 (y)",
       title=f"Shaded: the class the MLP predicts; it gets {accuracy:.0%} of the points right")
ax.legend(loc="lower left", fontsize=8)
lesson.savefig(fig, "mlp_boundary")

# --- 4. A recurrent neuron, unrolled --------------------------------------------

lesson.section("4. A 3-step RNN: the first BPTT graph")
lesson.say("""
    A recurrent neuron reuses the same three weights at every time step
    t = 1, 2, 3, starting from h_0 = 0 (one bias b stands for PyTorch's
    b_ih + b_hh):
""")
lesson.equation("h_t = tanh(w_ih * x_t + w_hh * h_(t-1) + b)",
                r"h_t = \tanh(w_{ih}\, x_t + w_{hh}\, h_{t-1} + b)")
lesson.say("""
    Unrolling it over 3 inputs gives an ordinary graph, so backward() works
    unchanged; that is all backpropagation through time is. Each step is
    built inside scope("t=k"), which the drawing turns into one box per step.
""")
w_ih, w_hh = Value(0.5, label="w_ih"), Value(lesson.args.w_hh, label="w_hh")
b_h = Value(0.1, label="b")
inputs, target = [1.0, -0.5, 0.8], 0.2


def rnn(weights, keep=None):
    """The loss (h_3 - target)^2; `keep` collects each step's (h_(t-1), a_t, h_t)."""
    w_ih, w_hh, b = weights
    h = Value(0.0, label="h_0")
    for t, x in enumerate(inputs, 1):
        with scope(f"t={t}"):
            a = w_ih * Value(x, label=f"x_{t}") + w_hh * h + b
            a.label = f"a_{t}"
            h_next = a.tanh()
            h_next.label = f"h_{t}"
        if keep is not None:
            keep.append((h, a, h_next))
        h = h_next
    loss = (h - Value(target, label="target")) ** 2
    loss.label = "loss"
    return loss


steps_seen = []
loss = rnn([w_ih, w_hh, b_h], steps_seen)
loss.backward()
bptt = lesson.draw(loss, "rnn_bptt",
                   title="BPTT: h_t = tanh(w_ih x_t + w_hh h_(t-1) + b), 3 steps")
gradcheck_scalar(rnn, [w_ih, w_hh, b_h])
error = max(abs(a - n) for a, n in zip(autograd_scalar(rnn, [w_ih, w_hh, b_h]),
                                       numerical_grad_scalar(rnn, [w_ih, w_hh, b_h]),
                                       strict=True))
max_error = max(max_error, error)

factors = [w_hh.data * (1 - h.data ** 2) for _, _, h in steps_seen[1:]]
reaching = {f"g{t}": abs(h.grad) for t, (_, _, h) in enumerate(steps_seen, 1)}
lesson.say("""
    The gradient reaching step t is multiplied by w_hh * (1 - h_(t+1)^2) on its
    way back from the step after it.
    """ + lesson.claim(
    "factor < 1 and g1 < g2 and g2 < g3", factor=max(factors), **reaching,
    yes="""That factor is below 1 here (at most {factor:.3f}), so earlier steps
        receive less: |dL/dh_t| is {g3:.4f}, {g2:.4f}, {g1:.4f} for t = 3, 2, 1,
        the seed of the vanishing gradient.""",
    no="""Here that factor reaches {factor:.3f}, and |dL/dh_t| is {g3:.4f},
        {g2:.4f}, {g1:.4f} for t = 3, 2, 1: the gradient does not fade
        steadily."""), """
    And because w_hh is shared, its gradient is the sum of one contribution
    per step, dL/da_t * h_(t-1), where a_t is the pre-activation:
""")
print("\n    step   dL/dh_t   dL/da_t * h_(t-1)")
for t, (h_prev, a, h) in enumerate(steps_seen, 1):
    print(f"    t={t}  {h.grad:9.5f}  {a.grad * h_prev.data:12.5f}")
contributions = sum(a.grad * h_prev.data for h_prev, a, _ in steps_seen)
print(f"    sum             {contributions:12.5f}  = w_hh.grad {w_hh.grad:.5f}")
lesson.say(f"The unrolled graph: {bptt}; gradcheck agrees with it to {error:.1e}.")

# --- 5. Testing your own op: find, shrink, fix ---------------------------------

lesson.section("5. Your own op, tested by hypothesis: find, shrink, fix")
lesson.say("""
    A new op means a derivative written by hand, and a slip there is silent:
    training still runs, only worse. softplus(x) = log(1 + e^x), a smooth
    relu, has derivative sigmoid(x) = 1 / (1 + e^-x). Here it is as an op of
    the tensor engine (value and vector-Jacobian product side by side, as
    every op in microseq/ops.py), with a sign slip: e^x where e^-x belongs.
""")


@op
def softplus_slipped(x):
    return np.logaddexp(0, x), lambda g: g / (1 + np.exp(x))  # the slip: exp(x)


def show_code(fn):
    print("\n" + textwrap.indent(inspect.getsource(fn), "    ").rstrip())


show_code(softplus_slipped)
try:
    gradcheck(softplus_slipped, np.zeros(3))
    at_zero = "passes"
except GradcheckError:
    at_zero = "fails"
lesson.say(f"""
    A check by hand at x = 0 {at_zero}: there sigmoid(x) and sigmoid(-x) are
    both 1/2. microseq.testing.check_op instead lets hypothesis draw inputs
    (4 x 3 arrays, values in [-2, 2]) and gradcheck each one; on a failure
    hypothesis shrinks the input to the smallest it can find that still fails.
""")
examples = 30 if lesson.quick else 200
try:
    check_op(softplus_slipped, arrays((4, 3)), seed=lesson.seed, max_examples=examples)
    caught = None
except Counterexample as e:
    caught = e
if caught is None:
    print(f"\n    hypothesis found no failing input in {examples} tries")
else:
    (first,), (x_min,) = caught.first, caught.inputs
    with np.printoptions(precision=3, suppress=True):
        print(f"\n    example {caught.found_at} failed, x =\n"
              + textwrap.indent(np.array2string(first), "        "))
    print(f"    hypothesis then tried {caught.examples - caught.found_at} simpler inputs, "
          f"and raised:\n\n" + textwrap.indent(str(caught), "    "))
    x = ms.tensor(x_min.flat[[np.argmax(np.abs(x_min))]], requires_grad=True)
    softplus_slipped(x).sum().backward()
    slope = 1 / (1 + np.exp(-x.data[0]))
    zeros = int((x_min == 0).sum())
    lesson.say(f"""
        In the smallest failing input {zeros} of the {x_min.size} elements are 0,
        where the slip does not show. gradcheck weighs each output by a fixed
        random number, so both numbers above carry the same factor; without
        it, at x = {x.data[0]:g} the VJP gives {x.grad[0]:.4f} and the true
        slope sigmoid({x.data[0]:g}) is {slope:.4f}. The fix is one sign:
    """)


@op
def softplus(x):
    return np.logaddexp(0, x), lambda g: g / (1 + np.exp(-x))


show_code(softplus)
passed = check_op(softplus, arrays((4, 3)), seed=lesson.seed, max_examples=examples)
lesson.say(f"""
    Now all {passed} inputs hypothesis draws pass. The same check works for
    code built from ops, for a whole Module (check_module: random weights,
    every parameter's gradient) and for an op on Value (check_scalar_op).
""")

# --- Results --------------------------------------------------------------------

lesson.metric("gradcheck_max_abs_error", max_error, threshold=1e-6, higher_is_better=False)
lesson.metric("wrong_vjp_caught", float(caught is not None), threshold=1.0)
lesson.metric("mlp_accuracy", accuracy, threshold=0.9 if lesson.quick else 0.97)
lesson.metric("mlp_loss_ratio", final_loss / losses[0], threshold=0.5 if lesson.quick else 0.1,
              higher_is_better=False)
lesson.try_this(
    ("--w-hh 2", "With a recurrent weight above 1, is dL/dh_1 now larger or smaller than "
                 "dL/dh_3? Does tanh's slope (1 - h_t^2) still keep the factor below 1?"),
    ("--hidden 2", "Can an MLP with two neurons per hidden layer still separate the moons? "
                   "What shape will its decision boundary take?"),
    ("--noise 0.3", "With the moons overlapping, does the training accuracy stay at 100 %, "
                    "and does the boundary get simpler or more tangled?"))
lesson.finish()
