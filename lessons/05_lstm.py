"""Lesson 5: the LSTM.

    the gates        one LSTM step written out in numpy, equal to nn.LSTM
    the backward     the hand-derived BPTT of microseq.reference equal to autograd
    a long memory    the adding problem: a plain RNN fails where the LSTM succeeds
    the gradients    ||dL/dh_t|| over t for both, before and after training
    inside           what the gates and the cell state do on one sequence

    .venv/bin/python lessons/05_lstm.py [--quick] [--seed S] [--out DIR]
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq import nn
from microseq import reference as ref
from microseq.data import adding_problem
from microseq.lesson import Lesson
from microseq.models.long_range import SequenceRegressor, fit, gradient_per_step, mse

lesson = Lesson(5, "The LSTM: gates, a hand-derived backward, and a long memory", arguments={
    "--forget-bias": dict(type=float, default=1.0, metavar="B",
                          help="the LSTM forget gate's starting bias (default 1.0)"),
    "--length": dict(type=int, default=None, metavar="T",
                     help="steps of the adding problem (default 20 quick, 50 full)")})
quick = lesson.quick
ms.manual_seed(lesson.seed)
rng = np.random.default_rng(lesson.seed)

lesson.say("""
    A plain RNN keeps everything it knows in one vector h and rewrites all of
    it at every step: h_t = tanh(W_ih x_t + W_hh h_(t-1) + b). Whatever it saw fifty
    steps ago has been squeezed through fifty matrix products and fifty
    tanh's since, and the gradient that should tell it what to remember
    travels back through the same products and fades on the way.

    The LSTM (long short-term memory) adds a second state, the cell state c,
    which is not rewritten but edited: at each step a gate decides how much
    of each cell to keep, another how much new content to write into it.
    Where the gates say "keep", the cell carries its value, and its
    gradient, across many steps unchanged.
""")

# ================================================================== the gates
lesson.section("The gates, one step at a time")
lesson.say("""
    From the input x_t and the previous hidden state h_(t-1), one matrix
    product, W_ih x_t + b_ih + W_hh h_(t-1) + b_hh, gives four blocks of
    pre-activations a_i, a_f, a_g, a_o, one per gate (PyTorch's order
    i, f, g, o). Each is squashed: the three gates by a sigmoid, into (0, 1),
    the candidate content by a tanh, into (-1, 1).

        i = sigmoid(a_i)   input gate:  how much of the candidate to write
        f = sigmoid(a_f)   forget gate: how much of the old cell to keep
        g = tanh(a_g)      candidate:   what could be written
        o = sigmoid(a_o)   output gate: how much of the cell to show

        c_t = f * c_(t-1) + i * g   the cell is edited, not rewritten
        h_t = o * tanh(c_t)         the hidden state is a view of the cell

    Written out in numpy, one step is five lines (lstm_by_hand runs it over the
    sequence from zero states):
""")


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def lstm_step_by_hand(x_t, h, c, W_ih, W_hh, b_ih, b_hh):
    a = x_t @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=-1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, c, (i, f, g, o)


def lstm_by_hand(x, W_ih, W_hh, b_ih, b_hh):
    """Run the equations above over x (T, B, D) from zero states; returns
    the hidden states, the cell states and the gates i, f, g, o, each (T, B, H)."""
    T, B, _ = x.shape
    H = W_hh.shape[1]
    h, c = np.zeros((B, H)), np.zeros((B, H))
    record = {name: [] for name in ("h", "c", "i", "f", "g", "o")}
    for t in range(T):
        h, c, gates = lstm_step_by_hand(x[t], h, c, W_ih, W_hh, b_ih, b_hh)
        for name, value in zip(record, (h, c, *gates)):
            record[name].append(value)
    return {name: np.stack(values) for name, values in record.items()}


lesson.show_source(lstm_step_by_hand)

T, B, D, H = 7, 3, 2, 4
small = nn.LSTM(D, H).to(np.float64)
weights = [small.weight_ih_l0.data, small.weight_hh_l0.data, small.bias_ih_l0.data,
           small.bias_hh_l0.data]
x_small = rng.standard_normal((T, B, D))
by_hand = lstm_by_hand(x_small, *weights)
with ms.no_grad():
    out, (h_n, c_n) = small(x_small)
forward_diff = max(np.abs(out.data - by_hand["h"]).max(),
                   np.abs(c_n.data[0] - by_hand["c"][-1]).max())
lesson.say(f"""
    nn.LSTM({D}, {H}) on a random batch, x of shape (T, B, D) = {x_small.shape}: its
    output (T, B, H) = {out.shape} and final cell state (1, B, H) = {c_n.shape}
    match the step above, run over it, to {forward_diff:.1e}. Its weight_ih_l0 has
    shape
    {small.weight_ih_l0.shape}: the four gates' (H, D) blocks stacked, so one
    product serves them all. The gates of the first sequence at the last step:
""")
for name in "ifgo":
    print(f"        {name} = {np.array2string(by_hand[name][-1, 0], precision=3, sign=' ')}")
lesson.metric("numpy_step_vs_nn_lstm_max_abs_diff", forward_diff, threshold=1e-12,
              higher_is_better=False)

# ================================================================== the backward
lesson.section("The backward pass, derived by hand")
nn_lstm_steps = (
    "runs each step as one fused op instead (as PyTorch and cuDNN do), whose backward is this "
    "derivation again, written for one step (microseq.fused_cells.lstm_cell)"
    if ms.fast.enabled() else
    "builds its steps from the same primitive ops here, as MICROSEQ_FAST=0 asks")
lesson.say(f"""
    microseq.reference.lstm_backward is backpropagation through time for
    this cell written out by hand: walking from the last step to the first,
    the gradient on h_t and the one on c_t are pushed through the four gates
    (sigmoid' = s (1 - s), tanh' = 1 - t^2) and into the step before. The
    cell's own path back is the short one:

        dL/dc_{{t-1}}  gets  dL/dc_t * f          (times the forget gate, no more)

    Autograd knows nothing of this derivation when the LSTM is built from
    primitive ops, as below: it differentiates each op of the graph. nn.LSTM
    {nn_lstm_steps}. On a random batch in float64, with a
    random weighting of every output so that every element's gradient
    counts, all three must agree to rounding error.""")


def lstm_from_primitives(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """The LSTM over x, each step built from primitive ops; returns every h."""
    hs = []
    for t in range(len(x)):
        i, f, g, o = ms.split(x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=-1)
        c = ms.sigmoid(f) * c + ms.sigmoid(i) * ms.tanh(g)
        h = ms.sigmoid(o) * ms.tanh(c)
        hs.append(h)
    return ms.stack(hs)


lesson.show_source(lstm_from_primitives)

T, B, D, H = 12, 5, 3, 6
lstm = nn.LSTM(D, H).to(np.float64)
params = {"W_ih": lstm.weight_ih_l0, "W_hh": lstm.weight_hh_l0, "b_ih": lstm.bias_ih_l0,
          "b_hh": lstm.bias_hh_l0}
x_data, h0_data, c0_data = (rng.standard_normal(shape) for shape in [(T, B, D), (B, H), (B, H)])
upstream = rng.standard_normal((T, B, H))    # dL/d output: L = sum(upstream * output)


def gradients(run):
    """Every input's and weight's dL/d, from autograd over run(x, h0, c0)."""
    inputs = [ms.tensor(a, requires_grad=True) for a in (x_data, h0_data, c0_data)]
    for p in params.values():
        p.grad = None
    (run(*inputs) * upstream).sum().backward()
    return {**dict(zip(("x", "h0", "c0"), (t.grad for t in inputs))),
            **{name: p.grad for name, p in params.items()}}


from_primitives = gradients(lambda x, h0, c0: lstm_from_primitives(x, h0, c0, *params.values()))
fused = gradients(lambda x, h0, c0: lstm(x, (h0[None], c0[None]))[0])
hs, _, cache = ref.lstm_forward(x_data, h0_data, c0_data, *(p.data for p in params.values()))
by_hand = ref.lstm_backward(upstream, cache)
backward_diff = lesson.compare_gradients(by_hand, {"primitives": from_primitives,
                                                    "nn.LSTM": fused})
lesson.say(f"""
    Largest difference over every gradient: {backward_diff:.2e}. float64
    carries about 16 digits, so this is agreement to the last few of them.
""")
lesson.metric("reference_vs_autograd_max_abs_diff", backward_diff, threshold=1e-10,
              higher_is_better=False)

# ================================================================== the adding problem
lesson.section("A task that needs a long memory: the adding problem")
length, steps, n_train, n_test = (20, 400, 5000, 1000) if quick else (50, 1200, 20000, 2000)
length, forget_bias = lesson.args.length or length, lesson.args.forget_bias
hidden, eval_every = 32, 50
x_train, y_train = adding_problem(n_train, length, seed=lesson.seed)
x_test, y_test = adding_problem(n_test, length, seed=lesson.seed + 1000)
baseline = float(np.mean((y_test - 1.0) ** 2))
example = x_test[0]
marked = np.flatnonzero(example[:, 1]) + 1    # steps are counted from 1
lesson.say(f"""
    Each input is a sequence of {length} steps with two numbers per step: a
    value drawn uniformly from [0, 1), and a marker that is 1 at exactly two
    steps (one in each half) and 0 elsewhere. The target is the sum of the
    two marked values. In the first test sequence the marks are at steps
    {marked[0]} and {marked[1]} of {length}, on {example[marked[0] - 1, 0]:.3f} and
    {example[marked[1] - 1, 0]:.3f}: target {y_test[0]:.3f}.

    A model has to notice a mark, hold its value for up to {length - 1}
    steps of distraction, and add. One that learns nothing does best by
    always answering the mean, 1.0: its mean squared error is the variance
    of a sum of two uniform numbers, 2/12 = 1/6 ~ 0.167 ({baseline:.3f} on
    our {n_test} test sequences). That is the baseline to beat.

    Both models read the sequence with {hidden} hidden units and answer
    from their last hidden state through one linear layer; both train for
    {steps} Adam steps (learning rate 0.01, batches of 64, gradient norm
    clipped to 1) on {n_train} training sequences. The LSTM's forget-gate
    bias starts at {forget_bias:g}, so that from the first step its cells keep
    sigmoid({forget_bias:g}) = {1 / (1 + np.exp(-forget_bias)):.2f} of their content per step
    (a bias of 0 would keep half).
""")

models = {kind: SequenceRegressor(kind, 2, hidden, forget_bias=forget_bias)
          for kind in ("rnn", "lstm")}
# float64 inputs make the whole unrolled graph float64: the RNN's gradient at
# step 1 can fall below the smallest float32 number
probe_x, probe_y = x_test[:256], y_test[:256]
grad_before = {kind: gradient_per_step(m, probe_x, probe_y) for kind, m in models.items()}
histories, seconds = {}, {}
for kind, model in models.items():
    histories[kind], seconds[kind] = fit(
        model, x_train, y_train, steps, seed=lesson.seed, eval_every=eval_every,
        evaluate=lambda m: {"mse": mse(m, x_test, y_test)}, desc=f"{kind.upper()} training")
grad_after = {kind: gradient_per_step(m, probe_x, probe_y) for kind, m in models.items()}
test_mse = {kind: histories[kind].metric("mse")[1][-1] for kind in models}

fig, ax = plt.subplots(figsize=(7, 4))
for kind, history in histories.items():
    ax.plot(*history.metric("mse"), "o-", label=f"{kind.upper()} ({seconds[kind]:.0f} s)")
ax.axhline(baseline, color="grey", ls="--", label=f"always 1.0: {baseline:.3f}")
ax.axhline(0.01, color="grey", ls=":", label="threshold 0.01")
ax.set(yscale="log", xlabel="training step", ylabel="test MSE (log scale)",
       title=f"The adding problem, length {length}: which model gets below 0.01?")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend()
lesson.savefig(fig, "adding_problem")

share = {kind: test_mse[kind] / baseline for kind in models}
rows = "\n".join(f"        {kind.upper():<6} {test_mse[kind]:.4f}   {share[kind]:6.1%} of the "
                 f"baseline   trained in {seconds[kind]:.1f} s" for kind in models)
escape = next((step for step, value in zip(*histories["lstm"].metric("mse"))
               if value < baseline / 2), steps)
lesson.say(f"""
    Test mean squared error after {steps} steps:

{rows}
""", lesson.claim(
    "rnn_test_mse_over_baseline >= 0.75", rnn_test_mse_over_baseline=share["rnn"],
    yes="""The RNN never leaves the neighbourhood of the baseline: it has learned
        to answer about 1.0, which needs no memory at all.""",
    no="""The RNN gets below the baseline here ({rnn_test_mse_over_baseline:.0%}
        of it): with this seed it has found some of the marks."""), lesson.claim(
    "escape < steps and lstm_test_mse < 0.02", escape=escape, steps=steps,
    lstm_test_mse=test_mse["lstm"], baseline=baseline,
    yes="""The LSTM sits on the same plateau at first, while nothing in its weights
        links the marks to the answer yet; by step {escape:.0f} it has found them
        (error below half the baseline) and from there its error falls to
        {lstm_test_mse:.4f}, a small fraction of the baseline's {baseline:.3f}
        (adding_problem.png).""",
    no="""The LSTM has not solved the task in {steps:.0f} steps: its error is
        {lstm_test_mse:.4f} against the baseline's {baseline:.3f}
        (adding_problem.png)."""))
lesson.metric("lstm_test_mse", test_mse["lstm"], threshold=0.03 if quick else 0.01,
              higher_is_better=False)
lesson.metric("rnn_test_mse_over_baseline", share["rnn"], threshold=0.75)

# ================================================================== gradients per step
lesson.section("Where the gradient goes")
lesson.say("""
    What separates the two? The loss is computed at the last step; to
    learn to keep a marked value, the weights must feel how the loss would
    change if step t had stored it differently: dL/dh_t. The models can run
    one step at a time with the same weights, so every h_t is a tensor of
    its own, and after backward() each one holds its gradient. We plot the
    size of that gradient at every step, averaged over 256 test sequences,
    for both models before and after training, as a fraction of its size at
    the last step (a trained model's loss, and so its whole gradient, is
    smaller: the fraction is what shows how far back it reaches).
""")
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
t_axis = np.arange(1, length + 1)
for ax, kind in zip(axes, models):
    ax.plot(t_axis, grad_before[kind] / grad_before[kind][-1], label="at initialisation")
    ax.plot(t_axis, grad_after[kind] / grad_after[kind][-1], label=f"after {steps} steps")
    ax.set(yscale="log", xlabel="step t", title=f"{kind.upper()}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
axes[0].set_ylabel(f"||dL/dh_t|| / ||dL/dh_{length}|| (log scale)")
fig.suptitle("How much of the last step's gradient reaches each earlier step?")
lesson.savefig(fig, "gradient_per_step")


def reach(norms):
    """How much of the gradient at the last step reaches the first."""
    return norms[0] / norms[-1]


orders = np.log10(reach(grad_after["lstm"]) / reach(grad_after["rnn"]))
rows = "\n".join(f"        {kind.upper():<5} {reach(grad_before[kind]):12.2e} "
                 f"{reach(grad_after[kind]):14.2e}" for kind in models)
lesson.say(f"""
    ||dL/dh_1|| / ||dL/dh_{length}||, the share of the gradient that reaches the
    first step:

                initial   after training
{rows}

    In the RNN every step back multiplies the gradient by W_hh^T and by the
    slope of tanh, both small, so it shrinks geometrically: the early steps,
    where the first mark usually is, hear almost nothing from the loss, and
    training never starts. In the LSTM the cell's path back multiplies only
    by the forget gate.
    """ + lesson.claim(
    "lstm_over_rnn_gradient_reach_orders_of_magnitude >= 1",
    lstm_over_rnn_gradient_reach_orders_of_magnitude=orders, share=reach(grad_after["lstm"]),
    yes=f"""After training, {{share:.0%}} of the gradient at the last step still
        reaches the first, {length - 1} steps back: about
        10^{{lstm_over_rnn_gradient_reach_orders_of_magnitude:.1f}} times as much as
        in the RNN (gradient_per_step.png).""",
    no=f"""After training, {{share:.0%}} of the gradient at the last step reaches the
        first, {length - 1} steps back: only
        10^{{lstm_over_rnn_gradient_reach_orders_of_magnitude:.1f}} times as much as
        in the RNN (gradient_per_step.png)."""))
lesson.metric("lstm_over_rnn_gradient_reach_orders_of_magnitude", orders, threshold=1.0)

# ================================================================== inside the LSTM
lesson.section("Inside the trained LSTM")
lesson.say("""
    Running the trained weights through lstm_by_hand shows what each gate
    does. For every cell unit we correlate its value with the running sum of
    the marked values seen so far, across the test set, and pick the two
    units that track it best, then follow them through the first test
    sequence (gates.png).
""")
trained = models["lstm"].rnn
weights = [getattr(trained, f"{name}_l0").data.astype(np.float64)
           for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
inside = lstm_by_hand(x_test[:500].transpose(1, 0, 2), *weights)
with ms.no_grad():
    answer = models["lstm"](example[None]).item()
running_sum = np.cumsum(x_test[:500, :, 0] * x_test[:500, :, 1], axis=1).T   # (T, B)
cells = inside["c"].reshape(length * 500, hidden)
r = np.array([np.corrcoef(cells[:, k], running_sum.reshape(-1))[0, 1] for k in range(hidden)])
units = np.argsort(-np.abs(r))[:2]
for k in units:
    print(f"        unit {k:2d}: correlation {r[k]:+.3f} with the running sum")

fig, axes = plt.subplots(4, 1, figsize=(9, 8), sharex=True)
t_axis = np.arange(1, length + 1)   # steps counted from 1
axes[0].bar(t_axis, example[:, 0], color=["C3" if m else "lightgrey" for m in example[:, 1]])
axes[0].set(ylabel="input value", title=f"One test sequence: marked values in red, "
                                       f"target {y_test[0]:.3f}, "
                                       f"LSTM says {answer:.3f}")
for row, (name, label) in enumerate([("c", "cell state c"), ("i", "input gate i"),
                                     ("f", "forget gate f")], start=1):
    for k in units:
        axes[row].plot(t_axis, inside[name][:, 0, k], ".-", label=f"unit {k}")
    axes[row].set(ylabel=label)
    for m in marked:
        axes[row].axvline(m, color="C3", lw=0.8, ls=":")
axes[1].legend()
axes[-1].set(xlabel="step t")
axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
fig.suptitle("Do the gates open at the marked steps (dotted red) and the cells hold on between?")
lesson.savefig(fig, "gates")
marks = x_test[:500, :, 1].T.astype(bool)                # (T, B), like the gates
gate_i, gate_f = inside["i"][..., units], inside["f"][..., units]
lesson.say(lesson.claim(
    "marked > unmarked", marked=gate_i[marks].mean(), unmarked=gate_i[~marks].mean(),
    yes="""Averaged over 500 test sequences, the input gate of these two units is
        {marked:.2f} at a marked step and {unmarked:.2f} elsewhere: it opens wider
        when there is something to store, and the cell steps up or down
        there.""",
    no="""Averaged over 500 test sequences, the input gate of these two units is
        {marked:.2f} at a marked step and {unmarked:.2f} elsewhere: it does not open
        wider at the marks, so the marks reach the cell another way.""")
    + " " + lesson.claim(
    "forget > 0.5", forget=gate_f.mean(),
    yes="""Their forget gate averages {forget:.2f}, so a cell keeps most of its
        content from one step to the next and the marked value is still in it
        at the end, beside a slow drift that the output layer has learned to
        discount.""",
    no="""Their forget gate averages only {forget:.2f}: a cell loses most of its
        content from one step to the next."""), """
    The cell state is the conveyor belt of the LSTM diagrams: content rides
    on it with little change, and the gates decide what gets on and off.
""")

lesson.try_this(
    ("--forget-bias 0", "Starting with cells that keep only half their content per step, does "
                        "the LSTM still solve the adding problem in the same number of steps?"),
    ("--forget-bias -3", "With the forget gate almost shut at the start, how far back does the "
                         "LSTM's gradient reach before training?"),
    ("--length 100", "At 100 steps, does the LSTM still get below the threshold, and how far "
                     "back does its gradient reach?"))
lesson.finish()
