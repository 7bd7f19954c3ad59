"""Lesson 4: backpropagation through time, truncation, vanishing and exploding gradients.

    the graph      a tanh RNN unrolled over 6 steps, one box per step, drawn
                   before and after backward() and coloured by gradient norm
    dL/dh_t        measured at every step for W_hh of spectral radius 0.5, 1.0
                   and 1.5, against the product of the step Jacobians' norms
    clipping       the same diverging run, with and without gradient clipping
    truncation     backpropagation cut after k steps: exactly zero beyond them
    tanh vs ReLU   the same measurements with a ReLU recurrence

    .venv/bin/python lessons/04_bptt.py [--quick] [--seed S] [--out DIR]
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq import nn
from microseq.functional import mse_loss
from microseq.lesson import Lesson
from microseq.optim import SGD, clip_grad_norm_

lesson = Lesson(4, "Backpropagation through time", arguments={
    "--radius": dict(type=float, default=1.5, metavar="R",
                     help="spectral radius of W_hh when the clipping runs start (default 1.5)"),
    "--clip": dict(type=float, default=1.0, metavar="C",
                   help="the norm gradients are clipped to in the clipped run (default 1.0)"),
    "--truncate": dict(type=int, default=8, metavar="K",
                       help="steps truncated BPTT keeps, of 24 (default 8)")})
quick = lesson.quick
rng = np.random.default_rng(lesson.seed)
ms.manual_seed(lesson.seed)


def orthogonal(n, radius):
    """radius * Q for a random orthogonal Q: every eigenvalue has modulus
    `radius` and the matrix stretches every vector by exactly `radius`."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return radius * q * np.sign(np.diag(r))  # the signs make Q uniformly distributed


def unroll(xs, h, W_ih, W_hh, b, nonlinearity="tanh", truncate=None):
    """h_t = f(W_ih x_t + W_hh h_(t-1) + b) for t = 1..T, each step in its own
    scope; x_t and h_t are rows of a batch, so in code x_t @ W_ih^T. With
    `truncate=k`, the state is detached after every k steps: same values, but
    backpropagation stops there. Returns [h_1, ..., h_T]."""
    f = ms.tanh if nonlinearity == "tanh" else ms.relu
    W_ih_T, W_hh_T = ms.transpose(W_ih), ms.transpose(W_hh)   # once, shared by every step
    W_ih_T.label, W_hh_T.label = "W_ih^T", "W_hh^T"
    states = []
    for t, x in enumerate(xs, start=1):
        if truncate and t > 1 and (t - 1) % truncate == 0:
            h = h.detach()
        with ms.scope(f"t={t}"):
            h = f(ms.tensor(x, label=f"x_{t}") @ W_ih_T + h @ W_hh_T + b)
        h.label = f"h_{t}"
        states.append(h)
    return states


def grad_norms(states):
    """||dL/dh_t|| for every t, read from each h_t's .grad (0 where none arrived)."""
    return np.array([0.0 if h.grad is None else np.linalg.norm(h.grad) for h in states])


# ================================================================== the graph
lesson.section("The unrolled graph")
lesson.say("""
    A recurrent net applies the same step again and again, for t = 1, ..., T,
""")
lesson.equation("h_t = tanh(W_ih x_t + W_hh h_(t-1) + b)",
                r"h_t = \tanh(W_{ih}\, x_t + W_{hh}\, h_{t-1} + b)")
lesson.say("""
    (one bias b stands for PyTorch's b_ih + b_hh), so its computation graph,
    written out for a sequence of length T, is T copies of that step in a
    row, all sharing the same W_ih, W_hh and b.
    Backpropagation through time (BPTT) is nothing more than ordinary
    backpropagation on this unrolled graph: the gradient enters at the loss
    and walks back through every step, and each shared weight collects one
    contribution per step.

    Below, 6 steps of a 3-unit tanh RNN, each built inside scope("t=k") so
    the drawing puts it in its own box. The loss is L = sum(u * h_6).
""")
D, H, T = 2, 3, 6
W_ih = nn.Parameter(rng.uniform(-1, 1, (D, H)).T.copy(), label="W_ih")   # (H, D), as PyTorch
W_hh = nn.Parameter(orthogonal(H, 0.5).T.copy(), label="W_hh")
b = nn.Parameter(np.zeros(H), label="b")
u = ms.tensor(np.ones(H), label="u")
states = unroll(rng.standard_normal((T, 1, D)), ms.tensor(np.zeros((1, H)), label="h_0"),
                W_ih, W_hh, b)
loss = ms.sum(states[-1] * u)
loss.label = "L"
before = lesson.draw(loss, "bptt_graph_before", title="6 steps of a tanh RNN, before backward()")
loss.backward()
after = lesson.draw(loss, "bptt_graph_after",
                    title="after backward(): darker = larger |dL/d node|, log scale")
norms = grad_norms(states)
lesson.say(f"""
    Drawn: {before} and {after}. After backward() every node is shaded by the
    norm of the gradient that reached it. W_hh here has spectral radius 0.5,
    and tanh' is at most 1, so each step back shrinks the gradient by half or
    more: the boxes fade from right to left. The gradient at each hidden
    state, read from h_t.grad (intermediate tensors keep theirs):

        t          {"".join(f"{t:>9}" for t in range(1, T + 1))}
        |dL/dh_t|  {"".join(f"{n:9.4f}" for n in norms)}
""")

# ================================================================== vanishing / exploding
lesson.section("Vanishing and exploding gradients")
H, D, T = (32, 4, 30) if quick else (64, 8, 40)
radii = (0.5, 1.0, 1.5)
lesson.say(f"""
    Why the fade? By the chain rule, one step back multiplies the gradient
    by that step's Jacobian:

        dL/dh_(t-1) = J_t^T dL/dh_t,    J_t = dh_t/dh_(t-1) = diag(1 - h_t^2) W_hh

    so dL/dh_1 is dL/dh_T times a product of T-1 such matrices, and its norm
    is at most ||dL/dh_T|| times the product of their norms. The tanh
    derivative 1 - h^2 is at most 1, so when W_hh shrinks vectors the
    product vanishes geometrically; when W_hh stretches them it can blow up.

    We measure it: a {H}-unit tanh RNN over T = {T} steps, inputs small
    enough that tanh works near its linear part, L = u . h_T for a fixed unit
    vector u, and W_hh = radius x (a random orthogonal matrix). For such a
    matrix the spectral radius (its largest |eigenvalue|) is also its norm:
    it stretches every vector by exactly `radius`.
""")
W_in = (rng.uniform(-1, 1, (D, H)) / np.sqrt(D)).T.copy()   # W_ih, (H, D)
x_scale = 0.1   # small inputs: tanh starts out near its linear part
xs = x_scale * rng.standard_normal((T, 1, D))
u = rng.standard_normal(H)
u /= np.linalg.norm(u)
Q = orthogonal(H, 1.0).T.copy()


def measure(radius, nonlinearity="tanh"):
    """Unroll over xs with W_hh = radius * Q, backpropagate L = u . h_T.
    Returns (||dL/dh_t|| for each t, ||h_t|| for each t, the spectral norm of
    each step's Jacobian J_t for t = 2..T, and its RMS singular value)."""
    W_hh = radius * Q
    states = unroll(xs, ms.tensor(np.zeros((1, H))), ms.tensor(W_in), nn.Parameter(W_hh),
                    ms.tensor(np.zeros(H)), nonlinearity)
    ms.sum(states[-1] * u).backward()
    slopes = [(1 - h.data[0] ** 2) if nonlinearity == "tanh" else (h.data[0] > 0) * 1.0
              for h in states]
    jacobians = [slopes[t][:, None] * W_hh for t in range(1, T)]   # diag(f'(a_t)) W_hh
    spectral = np.array([np.linalg.norm(J, 2) for J in jacobians])
    rms = np.array([np.linalg.norm(J) / np.sqrt(H) for J in jacobians])
    return grad_norms(states), np.array([np.linalg.norm(h.data) for h in states]), spectral, rms


def per_step(x):
    """The geometric mean of a product's factors: its per-step rate."""
    return float(np.exp(np.mean(np.log(x))))


results = {r: measure(r) for r in radii}
rows, rates = [], {}
for r, (g, _, spectral, rms) in results.items():
    measured = (g[0] / g[-1]) ** (1 / (T - 1))
    rates[r] = measured, per_step(spectral), per_step(rms)
    rows.append(f"        {r:6.1f}   {g[0] / g[-1]:12.3g}   {measured:8.4f}   "
                f"{per_step(spectral):8.4f}   {per_step(rms):8.4f}")
lesson.say(f"""
    Per step (the geometric mean over the {T - 1} steps back from h_T to h_1):

        radius   |g_1|/|g_T|    measured   prod ||J_t||   RMS gain
{chr(10).join(rows)}

    "prod ||J_t||" uses each Jacobian's spectral norm, the most it can
    stretch any vector: the bound. "RMS gain" is its root-mean-square
    singular value, what it does to a vector pointing nowhere in particular.
""", lesson.claim(
    "gap <= 1.05", gap=max(max(m / g, g / m) for m, _, g in rates.values()),
    yes="""The RMS gain tracks the measurement closely at every radius (within a
        factor of {gap:.3f}).""",
    no="""The RMS gain is only a rough guide to the measurement here (off by up to
        a factor of {gap:.3f})."""), f"""
    At radius 0.5 the gradient reaching h_1 is about 0.5^{T - 1}: for learning
    purposes, nothing.
    """ + lesson.claim(
    "slow < 1 and slow > 0.9 and fast > 1 and fast < 1.25 and loose > 1.1",
    slow=rates[1.0][0], fast=rates[1.5][0], loose=rates[1.5][1] / rates[1.5][0],
    yes="""At 1.0 it decays slowly ({slow:.4f} per step: tanh' < 1 takes a little
        at each step). At 1.5 it grows as it travels back, though by much less
        than 1.5 per step ({fast:.4f}): the state itself grows until tanh
        saturates, and a saturated unit passes little gradient. The bound, which
        assumes the steepest direction at every step, is loose there (a factor
        of {loose:.2f} per step).""",
    no="""At 1.0 it changes by {slow:.4f} per step, at 1.5 by {fast:.4f}, where the
        bound is {loose:.2f} times the measured rate."""))

measured, bound, _ = rates[0.5]
factor = 1.1
lesson.say(f"""
    The check: at radius 0.5 the measured decay rate is {measured:.4f} per
    step and the product of Jacobian norms allows {bound:.4f}; they agree
    within a factor of {bound / measured:.4f} (stated tolerance: {factor}).
    """ + lesson.claim(
    "factor <= 1.1", factor=bound / measured,
    yes="""The bound is nearly reached because the states stay small, so tanh' is
        close to 1 and W_hh alone sets the pace.""",
    no="""The bound is not nearly reached: the states grow large enough for tanh'
        to fall well below 1."""))
lesson.metric("decay_rate_rho0.5_factor_vs_jacobian_norms", max(bound / measured, measured / bound),
              threshold=factor, higher_is_better=False)
lesson.metric("gradient_fade_rho0.5_g1_over_gT", results[0.5][0][0] / results[0.5][0][-1],
              threshold=1e-6, higher_is_better=False)
lesson.metric("gradient_growth_rho1.5_g1_over_gT", results[1.5][0][0] / results[1.5][0][-1],
              threshold=10.0)

fig, ax = plt.subplots(figsize=(7, 4))
time_steps = np.arange(1, T + 1)
for r, (g, _, spectral, _) in results.items():
    line, = ax.semilogy(time_steps, g, "o-", ms=3, label=f"radius {r}")
    # the bound: ||g_T|| times the product of the norms of the Jacobians in between
    bound_curve = g[-1] * np.concatenate([np.cumprod(spectral[::-1])[::-1], [1.0]])
    ax.semilogy(time_steps, bound_curve, "--", color=line.get_color(), lw=1)
ax.set(xlabel="time step t", ylabel="||dL/dh_t|| (log scale)",
       title=f"Gradient reaching each step of a tanh RNN (L = u . h_{T}):\n"
             "does it fade towards t = 1 for radius < 1 and grow for radius > 1?")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(title="W_hh (dashed: product of ||J||)")
lesson.savefig(fig, "gradient_norms")

# ================================================================== clipping
lesson.section("Exploding gradients and clipping")
steps, T_task, H_task, batch, lr = (150 if quick else 300), 30, 32, 32, 0.1
clip, radius = lesson.args.clip, lesson.args.radius
lesson.say(f"""
    An exploding gradient is worse than a vanishing one: one huge step
    throws the weights somewhere the next gradient is even larger, and the
    run ends in overflow. We train a tanh RNN ({H_task} units, library
    nn.RNN plus a linear read-out) to output the sum of the last 5 of
    {T_task} random inputs (scaled so that always answering 0 scores a mean
    squared error of 1), starting with W_hh of radius {radius}, by plain
    SGD with lr {lr}. Twice, from the same initial weights and the same
    batches: once as is, once with the gradient's overall norm clipped to
    {clip} before every step (scaled down when larger, direction kept).
""")


orthogonal_task = orthogonal(H_task, radius).astype(np.float32)   # both runs start from it


def sum_task(task_rng):
    x = task_rng.uniform(-1, 1, (T_task, batch, 1)).astype(np.float32)
    return x, x[-5:].sum(0) / np.sqrt(5 / 3)   # unit variance target


def train_sum(clip_to):
    """SGD on the sum task; returns (losses, gradient norms before clipping).
    Stops early if the loss stops being a finite number."""
    ms.manual_seed(lesson.seed)
    rnn, head = nn.RNN(1, H_task), nn.Linear(H_task, 1)
    rnn.weight_hh_l0.data[...] = orthogonal_task
    params = rnn.parameters() + head.parameters()
    optimizer = SGD(params, lr=lr)
    task_rng = np.random.default_rng(lesson.seed)
    losses, norms = [], []
    with np.errstate(over="ignore", invalid="ignore"):   # the overflow is the point
        for _ in lesson.progress(range(steps), "clipped" if clip_to else "unclipped"):
            x, y = sum_task(task_rng)
            out, _ = rnn(x)
            loss = mse_loss(head(out[-1]), y)
            optimizer.zero_grad()
            loss.backward()
            norms.append(clip_grad_norm_(params, clip_to if clip_to else np.inf))
            optimizer.step()
            losses.append(loss.item())
            if not np.isfinite(losses[-1]):
                break
    return np.array(losses), np.array(norms)


plain_losses, plain_norms = train_sum(None)
clipped_losses, clipped_norms = train_sum(clip)


def final(losses):
    """The mean loss of the last 20 steps, or inf if the run blew up before the end."""
    return float(np.mean(losses[-20:])) if len(losses) == steps else float("inf")


plain_end, clipped_end = final(plain_losses), final(clipped_losses)
lesson.say(f"""
    Unclipped: the loss starts at {plain_losses[0]:.3f}; the gradient norm reaches
    {np.nanmax(plain_norms):.3g} and """ + lesson.claim(
    "steps_run < steps", steps_run=len(plain_losses), steps=steps, last=plain_losses[-1],
    yes="the run is dead after {steps_run:.0f} of {steps:.0f} steps (loss {last:.3g}).",
    no="the run survives all {steps:.0f} steps (last loss {last:.3g}).") + f"""
    Clipped: from the same start, {clipped_losses[0]:.3f} -> {clipped_end:.3f}
    (mean of the last 20 steps); its raw gradient norm peaked at
    {clipped_norms.max():.3g}, but no step was longer than lr x {clip}.
""")
plain_ok = np.isfinite(plain_end) and plain_end < plain_losses[0]
lesson.metric("clipped_final_over_start", clipped_end / clipped_losses[0], threshold=0.5,
              higher_is_better=False)
lesson.metric("unclipped_diverged", float(not plain_ok), threshold=1.0)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.semilogy(np.where(np.isfinite(plain_losses), plain_losses, np.nan), label="no clipping")
ax1.semilogy(clipped_losses, label=f"clipped to norm {clip}")
if not np.isfinite(plain_losses[-1]):
    ax1.axvline(len(plain_losses) - 1, color="C0", ls=":", label="overflow")
ax1.set(xlabel="SGD step", ylabel="training MSE (log scale)",
        title=f"Sum task, W_hh radius {radius}: which run keeps learning?",
        ylim=(0.5 * clipped_losses.min(), 1e3))   # the unclipped curve leaves the chart
ax1.legend()
ax2.semilogy(np.where(np.isfinite(plain_norms), plain_norms, np.nan), label="no clipping")
ax2.semilogy(clipped_norms, label="clipped run (before clipping)")
ax2.axhline(clip, color="grey", ls="--", label="clip threshold")
ax2.set(xlabel="SGD step", ylabel="gradient norm (log scale)",
        title="The gradient each step, before clipping")
ax2.legend()
for ax in (ax1, ax2):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
lesson.savefig(fig, "clipping")

# ================================================================== truncation
lesson.section("Truncated BPTT")
k, T_trunc = lesson.args.truncate, 24
lesson.say(f"""
    Backpropagating through a whole long text costs memory and time in
    proportion to its length. Truncated BPTT runs the forward pass over
    everything but detaches the hidden state every k steps (lesson 3 did it
    between windows): the values flow on, the graph does not. Here k = {k}
    over {T_trunc} steps, radius 1.0, L = u . h_{T_trunc}, once in full and once
    truncated.
""")
xs_trunc = x_scale * rng.standard_normal((T_trunc, 1, D))
W_full, W_trunc = nn.Parameter(Q), nn.Parameter(Q)
full = unroll(xs_trunc, ms.tensor(np.zeros((1, H))), ms.tensor(W_in), W_full,
              ms.tensor(np.zeros(H)))
cut = unroll(xs_trunc, ms.tensor(np.zeros((1, H))), ms.tensor(W_in), W_trunc,
             ms.tensor(np.zeros(H)), truncate=k)
ms.sum(full[-1] * u).backward()
ms.sum(cut[-1] * u).backward()
g_full, g_cut = grad_norms(full), grad_norms(cut)
window = slice(T_trunc - k, T_trunc)            # the last k steps: h_(24-k+1) .. h_24
before_window = slice(0, T_trunc - k)
forward_diff = max(np.abs(a.data - c.data).max() for a, c in zip(full, cut, strict=True))
beyond = g_cut[before_window].max()
inside_diff = max(np.abs(a.grad - c.grad).max() for a, c in zip(full[window], cut[window],
                                                                strict=True))
kept = np.linalg.norm(W_trunc.grad) / np.linalg.norm(W_full.grad)
cosine = float(np.sum(W_full.grad * W_trunc.grad)
               / (np.linalg.norm(W_full.grad) * np.linalg.norm(W_trunc.grad)))
lesson.say(f"""
    Checked:

        forward values, truncated vs full       max |difference| = {forward_diff:.1g}
        ||dL/dh_t|| past the window, t <= {T_trunc - k}  max = {beyond:.1g}
        dL/dh_t inside it, truncated vs full    max |difference| = {inside_diff:.1g}
        ||dL/dW_hh||, truncated / full          {kept:.3f}
        cosine(dL/dW_hh truncated, full)        {cosine:.4f}

    Truncation changes nothing in the forward pass and nothing inside the
    window; it only drops what the steps before it would have added to the
    weights' gradient. That is cheap when those contributions had faded
    anyway (radius below 1), and a real loss when the task needs them.
""")
lesson.metric("truncated_grad_beyond_window_max", beyond, threshold=0.0, higher_is_better=False)
lesson.metric("truncated_vs_full_inside_window_max_diff", inside_diff, threshold=1e-12,
              higher_is_better=False)

fig, ax = plt.subplots(figsize=(7, 3.6))
t_axis = np.arange(1, T_trunc + 1)
ax.plot(t_axis, g_full, "o-", label="full BPTT")
ax.plot(t_axis[window], g_cut[window], "s--", label=f"truncated, k = {k}")
ax.plot(t_axis[before_window], g_cut[before_window], "x", color="C1",
        label="truncated, before the window (its values, all exactly 0)")
ax.axvspan(T_trunc - k + 0.5, T_trunc + 0.5, color="grey", alpha=0.15)
# symlog: logarithmic above the smallest full-BPTT gradient, linear through 0,
# so the truncated steps' zeros sit at 0 itself
ax.set_yscale("symlog", linthresh=g_full.min())
ax.set_ylim(bottom=-0.1 * g_full.min())
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.set(xlabel="time step t", ylabel="||dL/dh_t|| (0, then log scale)",
       title=f"Truncated BPTT: the same gradient inside the last {k} steps (shaded), "
             "none before")
ax.legend()
lesson.savefig(fig, "truncation")

# ================================================================== tanh vs relu
lesson.section("tanh against ReLU")
compare_radii = (0.5, 1.0, 1.5, 3.0)
lesson.say("""
    ReLU's derivative is 1 on active units and 0 on the rest, so it never
    shrinks a gradient the way a saturated tanh does, but it blocks it on
    every inactive unit, and nothing bounds its state: tanh keeps every unit
    in (-1, 1), ReLU lets the state grow like radius^t. The same measurement,
    both nonlinearities, one more radius (3.0):
""")
relu_runs = {r: measure(r, "relu") for r in compare_radii}
tanh_runs = {r: results[r] if r in results else measure(r) for r in compare_radii}
print("\n    radius   nonlinearity   |g_1|/|g_T|   max ||h_t||   RMS gain/step")
for r in compare_radii:
    for name, runs in (("tanh", tanh_runs), ("relu", relu_runs)):
        g, h, _, rms = runs[r]
        print(f"    {r:6.1f}   {name:<12} {g[0] / g[-1]:12.3g}  {h.max():12.3g}"
              f"  {per_step(rms):12.4f}")
relu_growth = relu_runs[3.0][1].max() / relu_runs[3.0][1][0]
lesson.say(lesson.claim(
    "fade_at_1 < 1 and growth > 1 and grad_at_3 > tanh_at_3",
    fade_at_1=relu_runs[1.0][0][0] / relu_runs[1.0][0][-1], growth=relu_growth,
    grad_at_3=relu_runs[3.0][0][0] / relu_runs[3.0][0][-1],
    tanh_at_3=tanh_runs[3.0][0][0] / tanh_runs[3.0][0][-1],
    yes=f"""With roughly half of its units off at any time, the ReLU recurrence
        passes a gradient at about radius x sqrt(1/2) per step: it fades even at
        radius 1.0 (|g_1|/|g_T| = {{fade_at_1:.3g}}). But at radius 3.0 its state
        grows by a factor {{growth:.2g}} over the sequence while tanh's stays
        below sqrt(H) = {np.sqrt(H):.1f}, and its gradient grows without the brake
        that tanh saturation provides ({{grad_at_3:.3g}} against tanh's
        {{tanh_at_3:.3g}}).""",
    no="""Here the ReLU recurrence does not behave as the rule of thumb says:
        |g_1|/|g_T| is {fade_at_1:.3g} at radius 1.0, and at radius 3.0 its state
        grows by {growth:.2g} and its gradient ratio is {grad_at_3:.3g}, against
        tanh's {tanh_at_3:.3g}."""), """
    Either way, a plain RNN's gradient is a product of T Jacobians, and such
    products rarely stay near 1: the problem the LSTM and GRU of lessons 5
    and 6 were built to solve.
""")

fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
for col, (name, runs) in enumerate((("tanh", tanh_runs), ("ReLU", relu_runs))):
    for r in compare_radii:
        g, h, _, _ = runs[r]
        axes[0, col].semilogy(time_steps, g, label=f"radius {r}")
        axes[1, col].semilogy(time_steps, h, label=f"radius {r}")
    axes[0, col].set(title=f"{name}: ||dL/dh_t||", ylabel="gradient norm (log scale)")
    axes[1, col].set(title=f"{name}: ||h_t||", xlabel="time step t",
                     ylabel="state norm (log scale)")
    axes[1, col].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, col].legend(fontsize=8)
fig.suptitle("tanh against ReLU, same W_hh: which gradients fade, which states grow?")
lesson.savefig(fig, "tanh_vs_relu")

lesson.try_this(
    ("--radius 0.9", "Starting with W_hh of radius 0.9, does the unclipped run still blow up, "
                     "or does clipping stop mattering?"),
    ("--clip 100", "With the clip at 100 instead of 1, which run does the clipped one now "
                   "resemble?"),
    ("--truncate 2", "Keeping only 2 steps of backward, how close is the truncated gradient of "
                     "W_hh to the full one (cosine)?"))
lesson.finish()
