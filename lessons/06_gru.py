"""Lesson 6: the GRU.

    the gates        update and reset gates: one GRU step in numpy, equal to nn.GRU
    the backward     the hand-derived BPTT of microseq.reference equal to autograd
    a long memory    RNN, LSTM and GRU on the adding problem, sequences of 50 steps
    text             the same three as character language models on Python's help texts
    the bill         parameters, time per step and final score, side by side

    .venv/bin/python lessons/06_gru.py [--quick] [--seed S] [--out DIR] [--text FILE]
"""
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq import nn
from microseq import reference as ref
from microseq.data import BPTTBatcher, adding_problem, char_split, load_text
from microseq.lesson import Lesson
from microseq.models.char_lm import CharLM, truncated_bptt
from microseq.models.long_range import SequenceRegressor, fit, mse
from microseq.models.ngram import fit_add_k
from microseq.optim import Adam
from microseq.train import train

lesson = Lesson(6, "The GRU: two gates, one state",
                arguments={"--text": dict(metavar="FILE", default=None,
                                          help="a UTF-8 text file for the language models "
                                               "instead of the pydoc help texts"),
                           "--length": dict(type=int, default=None, metavar="T",
                                            help="steps of the adding problem (default 20 "
                                                 "quick, 50 full)"),
                           "--hidden": dict(type=int, default=32, metavar="H",
                                            help="hidden units of the adding-problem models "
                                                 "(default 32)")})
quick = lesson.quick
ms.manual_seed(lesson.seed)
rng = np.random.default_rng(lesson.seed)
lm_hidden, batch, seq_len, lm_steps = (64, 16, 32, 80) if quick else (128, 32, 32, 500)
# Read the corpus first, so that a bad --text fails at once: the language models
# train on the first 90 %, which must fill at least one window of batch x seq_len.
text = load_text(lesson.args.text, min_chars=(batch * seq_len + 1) * 10 // 9 + 1)

lesson.say("""
    The LSTM keeps two states, a hidden state h and a cell state c, and
    needs four blocks of weights to run its three gates and its candidate.
    The GRU (gated recurrent unit) asks whether all of that is needed. It
    keeps a single state h, and makes each new h a blend of the old one and
    a fresh candidate, with one gate choosing the mix and another choosing
    how much of the past the candidate may look at. Three blocks of weights
    instead of four; the question of this lesson is what that costs.
""")

# ================================================================== the gates
lesson.section("The update and reset gates")
lesson.say("""
    With PyTorch's gate order r, z, n, each gate sees the input and the
    previous state through its own block of weights:

        r = sigmoid(W_ir x_t + b_ir + W_hr h_(t-1) + b_hr)     reset gate
        z = sigmoid(W_iz x_t + b_iz + W_hz h_(t-1) + b_hz)     update gate
        n = tanh(W_in x_t + b_in + r * (W_hn h_(t-1) + b_hn))  candidate
        h_t = (1 - z) * n + z * h_(t-1)

    The update gate z is the GRU's memory: where z is near 1, h_t is simply
    h_(t-1), copied forward untouched, as an LSTM cell with its forget gate open
    and its input gate shut; where z is near 0 the unit is overwritten by
    the candidate. One gate does both jobs, so keeping and writing always
    add up to one. (Some texts write z and 1 - z the other way round; the
    idea is the same.) The reset gate r decides how much of the old state
    the candidate is built from: near 0, the candidate depends on the input
    alone, as if the sequence had just begun.

    In numpy, one step (gru_by_hand runs it over a whole sequence):
""")


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def gru_step_by_hand(x_t, h, W_ih, W_hh, b_ih, b_hh):
    x_r, x_z, x_n = np.split(x_t @ W_ih.T + b_ih, 3, axis=-1)
    h_r, h_z, h_n = np.split(h @ W_hh.T + b_hh, 3, axis=-1)
    r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    h = (1 - z) * n + z * h
    return h, (r, z, n)


def gru_by_hand(x, W_ih, W_hh, b_ih, b_hh):
    """Run the equations above over x (T, B, D) from a zero state; returns the
    hidden states and the gates r, z and candidate n, each (T, B, H)."""
    T, B, _ = x.shape
    h = np.zeros((B, W_hh.shape[1]))
    record = {name: [] for name in ("h", "r", "z", "n")}
    for t in range(T):
        h, gates = gru_step_by_hand(x[t], h, W_ih, W_hh, b_ih, b_hh)
        for name, value in zip(record, (h, *gates)):
            record[name].append(value)
    return {name: np.stack(values) for name, values in record.items()}


lesson.show_source(gru_step_by_hand)

T, B, D, H = 7, 3, 2, 4
small = nn.GRU(D, H).to(np.float64)
x_small = rng.standard_normal((T, B, D))
by_hand = gru_by_hand(x_small, small.weight_ih_l0.data, small.weight_hh_l0.data,
                      small.bias_ih_l0.data, small.bias_hh_l0.data)
with ms.no_grad():
    out, h_n = small(x_small)
forward_diff = np.abs(out.data - by_hand["h"]).max()
between = np.all((by_hand["h"][1:] - by_hand["h"][:-1]) * (by_hand["h"][1:] - by_hand["n"][1:])
                 <= 1e-15)
lesson.say(f"""
    nn.GRU({D}, {H}) on a random batch of shape (T, B, D) = {x_small.shape} gives
    outputs (T, B, H) = {out.shape} equal to the step above, run over it, to
    {forward_diff:.1e}. Its
    weight_ih_l0 is {small.weight_ih_l0.shape}: three (H, D) blocks where the LSTM
    has four. The reset gate multiplies the hidden part of the candidate
    only, so, unlike the LSTM's, the GRU's hidden and input products cannot
    be summed before the gates are split off. And because h_t is a weighted
    average, every new state lies between the old one and the candidate,
    element by element: {"true" if between else "FALSE"} at every step here. The gates of the
    first sequence at the last step:
""")
for name in "rzn":
    print(f"        {name} = {np.array2string(by_hand[name][-1, 0], precision=3, sign=' ')}")
lesson.metric("numpy_step_vs_nn_gru_max_abs_diff", forward_diff, threshold=1e-12,
              higher_is_better=False)

# ================================================================== the backward
lesson.section("The backward pass, derived by hand")
nn_gru_steps = ("each step one fused op whose backward is this derivation for one step, "
                "microseq.fused_cells.gru_cell" if ms.fast.enabled() else
                "here built from the same primitive ops, as MICROSEQ_FAST=0 asks")
lesson.say(f"""
    microseq.reference.gru_backward is backpropagation through time for the
    GRU, written out by hand. The state's own path back is the blend's:

        dL/dh_{{t-1}}  gets  dL/dh_t * z          (plus the paths through r, z and n)

    so where z is near 1 the gradient, like the state, passes through a
    step unchanged. As for the LSTM, three must agree to rounding on a
    random float64 batch with every output weighted at random: autograd
    over the GRU built from primitive ops (below), nn.GRU ({nn_gru_steps}),
    and the hand derivation.""")


def gru_from_primitives(x, h, W_ih, W_hh, b_ih, b_hh):
    """The GRU over x, each step built from primitive ops; returns every h."""
    hs = []
    for t in range(len(x)):
        x_r, x_z, x_n = ms.split(x[t] @ W_ih.T + b_ih, 3, axis=-1)
        h_r, h_z, h_n = ms.split(h @ W_hh.T + b_hh, 3, axis=-1)
        r, z = ms.sigmoid(x_r + h_r), ms.sigmoid(x_z + h_z)
        n = ms.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        hs.append(h)
    return ms.stack(hs)


lesson.show_source(gru_from_primitives)

T, B, D, H = 12, 5, 3, 6
gru = nn.GRU(D, H).to(np.float64)
params = {"W_ih": gru.weight_ih_l0, "W_hh": gru.weight_hh_l0, "b_ih": gru.bias_ih_l0,
          "b_hh": gru.bias_hh_l0}
x_data, h0_data = rng.standard_normal((T, B, D)), rng.standard_normal((B, H))
upstream = rng.standard_normal((T, B, H))    # dL/d output: L = sum(upstream * output)


def gradients(run):
    """Every input's and weight's dL/d, from autograd over run(x, h0)."""
    inputs = [ms.tensor(a, requires_grad=True) for a in (x_data, h0_data)]
    for p in params.values():
        p.grad = None
    (run(*inputs) * upstream).sum().backward()
    return {"x": inputs[0].grad, "h0": inputs[1].grad,
            **{name: p.grad for name, p in params.items()}}


from_primitives = gradients(lambda x, h0: gru_from_primitives(x, h0, *params.values()))
fused = gradients(lambda x, h0: gru(x, h0[None])[0])
hs, cache = ref.gru_forward(x_data, h0_data, *(p.data for p in params.values()))
by_hand = ref.gru_backward(upstream, cache)
backward_diff = lesson.compare_gradients(by_hand, {"primitives": from_primitives,
                                                    "nn.GRU": fused})
lesson.say(f"""
    Largest difference over every gradient: {backward_diff:.2e}, agreement
    to the last digits float64 has.
""")
lesson.metric("reference_vs_autograd_max_abs_diff", backward_diff, threshold=1e-10,
              higher_is_better=False)

# ================================================================== the adding problem
lesson.section("RNN, LSTM and GRU on the adding problem")
kinds = ("rnn", "lstm", "gru")
length, steps, n_train, n_test = (20, 400, 5000, 1000) if quick else (50, 1200, 20000, 2000)
length, hidden = lesson.args.length or length, lesson.args.hidden
x_train, y_train = adding_problem(n_train, length, seed=lesson.seed)
x_test, y_test = adding_problem(n_test, length, seed=lesson.seed + 1000)
baseline = float(np.mean((y_test - 1.0) ** 2))
lesson.say(f"""
    The task: {length} steps, each a value in [0, 1) and a marker; the target is
    the sum of the two marked values, one in each half of the sequence.
    Always answering the mean, 1.0, scores the variance of that sum, 1/6 ~
    0.167 ({baseline:.3f} on these {n_test} test sequences): a model below it has
    learned to remember. The three models get the same {hidden} hidden units,
    the same {n_train} training sequences and the same {steps} Adam steps
    (learning rate 0.01, batches of 64, gradients clipped to norm 1); the
    LSTM's forget-gate bias starts at 1.
""")
long_range, histories, seconds = {}, {}, {}
for kind in kinds:
    long_range[kind] = SequenceRegressor(kind, 2, hidden)
    histories[kind], seconds[kind] = fit(
        long_range[kind], x_train, y_train, steps, seed=lesson.seed, eval_every=50,
        evaluate=lambda m: {"mse": mse(m, x_test, y_test)}, desc=f"{kind.upper()} adding")
test_mse = {kind: histories[kind].metric("mse")[1][-1] for kind in kinds}

# Left: the three models' test error; right, one above the other: the trained
# GRU's state h and update gate z on one test sequence, each on its own axis.
fig = plt.figure(figsize=(12, 5), layout="constrained")
left, right = fig.subfigures(1, 2)
axes = [left.subplots(), *right.subplots(2, 1, sharex=True)]
for kind in kinds:
    axes[0].plot(*histories[kind].metric("mse"), "o-", ms=3, label=kind.upper())
axes[0].axhline(baseline, color="grey", ls="--", label=f"always 1.0: {baseline:.3f}")
axes[0].axhline(0.01, color="grey", ls=":", label="threshold 0.01")
axes[0].set(yscale="log", xlabel="training step", ylabel="test MSE (log scale)",
            title=f"The adding problem, length {length}: which models get below 0.01?")
axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
axes[0].legend()


def solved_at(history):
    """The first evaluated step with a test MSE below half the baseline."""
    return next((s for s, v in zip(*history.metric("mse")) if v < baseline / 2), None)


rows = "\n".join(
    f"        {kind.upper():<6}{long_range[kind].num_parameters():7,d}"
    f"{1000 * seconds[kind] / steps:10.1f} ms{test_mse[kind]:12.4f}"
    f"{'never' if solved_at(histories[kind]) is None else solved_at(histories[kind]):>12}"
    for kind in kinds)
lesson.say(f"""
    Test mean squared error after {steps} steps, and the first evaluation
    (every 50 steps) where it was below half the baseline:

        model  params  time/step    test MSE   below half from step
{rows}
""")
lesson.metric("gru_test_mse", test_mse["gru"], threshold=0.03 if quick else 0.01,
              higher_is_better=False)
lesson.metric("lstm_test_mse", test_mse["lstm"], threshold=0.03 if quick else 0.01,
              higher_is_better=False)
lesson.metric("rnn_test_mse_over_baseline", test_mse["rnn"] / baseline, threshold=0.75)

# ================================================================== inside the GRU
trained = long_range["gru"].rnn
weights = [getattr(trained, f"{name}_l0").data.astype(np.float64)
           for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
inside = gru_by_hand(x_test[:500].transpose(1, 0, 2), *weights)
running_sum = np.cumsum(x_test[:500, :, 0] * x_test[:500, :, 1], axis=1).T   # (T, B)
states = inside["h"].reshape(length * 500, hidden)
r = np.array([np.corrcoef(states[:, k], running_sum.reshape(-1))[0, 1] for k in range(hidden)])
units = np.argsort(-np.abs(r))[:2]
marks = x_test[:500, :, 1].T.astype(bool)
z = inside["z"][..., units]
solved = dict(gru_test_mse=test_mse["gru"], lstm_test_mse=test_mse["lstm"],
              rnn_test_mse_over_baseline=test_mse["rnn"] / baseline, half=baseline / 2)
lesson.say(lesson.claim(
    "gru_test_mse < half and lstm_test_mse < half and rnn_test_mse_over_baseline >= 0.75",
    **solved,
    yes="Both gated models solve it; the plain RNN does not move from the baseline.",
    no="""Not as expected: the GRU ends at {gru_test_mse:.4f}, the LSTM at
        {lstm_test_mse:.4f} (half the baseline is {half:.3f}), the RNN at
        {rnn_test_mse_over_baseline:.0%} of the baseline.""") + f"""
    Inside the trained GRU, the two hidden units that best follow the running
    sum of the marked values (correlations {r[units[0]]:+.2f} and {r[units[1]]:+.2f} over
    500 test sequences) have an update gate z of {z[~marks].mean():.2f} on average at
    unmarked steps and {z[marks].mean():.2f} at the marked ones.
    """ + lesson.claim(
    "unmarked >= 0.75 and marked < unmarked", unmarked=z[~marks].mean(),
    marked=z[marks].mean(),
    yes="""Between the marks they copy themselves forward almost unchanged; at a
        mark z falls and the candidate, which carries the marked value, gets
        written in.""",
    no="""So z does not simply hold between the marks and open at them: these
        units store the marked values some other way."""),
    "(right-hand panel of gru_comparison.png, on the first test sequence)")
example = x_test[0]
t_axis = np.arange(1, length + 1)   # steps counted from 1
for colour, k in zip(("C0", "C2"), units):
    axes[1].plot(t_axis, inside["h"][:, 0, k], ".-", color=colour, label=f"unit {k}")
    axes[2].plot(t_axis, inside["z"][:, 0, k], ".-", color=colour, label=f"unit {k}")
for ax in axes[1:]:
    for m in np.flatnonzero(example[:, 1]) + 1:
        ax.axvline(m, color="C3", lw=0.8, ls=":")
    ax.legend(fontsize=8)
axes[1].set(ylabel="hidden state h_t",
            title="Trained GRU, one test sequence (marked steps dotted red):\n"
                  "does h change at the marks, where the update gate z dips?")
axes[2].set(xlabel="step t", ylabel="update gate z_t", ylim=(-0.05, 1.05))
axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
lesson.savefig(fig, "gru_comparison")

# ================================================================== text
lesson.section("RNN, LSTM and GRU as character language models")
if quick:
    text = text[:100_000]
vocab, train_ids, test_ids = char_split(text)
eval_rows = min(64, len(test_ids) - 1)
scored = test_ids[1:1 + eval_rows * ((len(test_ids) - 1) // eval_rows)]
trigram = fit_add_k(train_ids, len(vocab), order=3).bits_per_char(
    scored, context=np.concatenate([train_ids, test_ids[:1]]))
source = lesson.args.text or "pydoc_data.topics"
lesson.say(f"""
    Now text, briefly: {source}, {len(text):,} characters, {len(vocab)} distinct.
    Each model embeds characters into 32 numbers, reads them with {lm_hidden}
    hidden units and predicts the next character; {lm_steps} Adam steps
    (learning rate 0.01, clipping at 1) on {batch} rows of {seq_len}-character windows,
    the state carried from one window to the next and detached between them
    (truncated BPTT). The score is bits per character on the last 10 % of
    the text, which no model trains on; an add-k character 3-gram scores
    {trigram:.3f} on the same characters.
""")

language_models, lm_histories, lm_seconds = {}, {}, {}
for kind in kinds:
    model = language_models[kind] = CharLM(len(vocab), hidden_size=lm_hidden, embed_size=32,
                                           cell=kind)
    windows, loss_fn = truncated_bptt(BPTTBatcher(train_ids, batch, seq_len))
    start = time.perf_counter()
    lm_histories[kind] = train(model, Adam(model.parameters(), lr=1e-2), windows, loss_fn,
                               lm_steps, seed=lesson.seed, clip=1.0, desc=f"{kind.upper()} text")
    lm_seconds[kind] = time.perf_counter() - start
bpc = {kind: m.bits_per_char(test_ids, eval_rows) for kind, m in language_models.items()}

fig, ax = plt.subplots(figsize=(7, 4))
for kind in kinds:
    losses = np.array(lm_histories[kind].losses) / np.log(2)
    smooth = np.convolve(losses, np.ones(20) / 20, mode="valid")
    ax.plot(np.arange(20, lm_steps + 1), smooth,
            label=f"{kind.upper()}: held-out {bpc[kind]:.3f}")
ax.axhline(trigram, color="grey", ls="--", label=f"3-gram: {trigram:.3f}")
ax.set(xlabel="training step", ylabel="bits per character (training, running mean)",
       title=f"Character language models, {lm_hidden} hidden units: lower is better")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend()
lesson.savefig(fig, "char_lm_comparison")

rows = "\n".join(f"        {kind.upper():<6}{language_models[kind].num_parameters():7,d}"
                 f"{1000 * lm_seconds[kind] / lm_steps:10.1f} ms{bpc[kind]:12.3f}"
                 for kind in kinds)
lesson.say(f"""
    After {lm_steps} steps:

        model  params  time/step   held-out bits/char
{rows}
""")
lesson.metric("gru_heldout_bpc_minus_rnn", bpc["gru"] - bpc["rnn"], threshold=0.0,
              higher_is_better=False)

# ================================================================== the bill
lesson.section("The bill")
never = steps + 1  # "never below half the baseline" counts as after the last step
gru_at, lstm_at = solved_at(histories["gru"]) or never, solved_at(histories["lstm"]) or never
gru_share = long_range["gru"].num_parameters() / long_range["lstm"].num_parameters()
best_kind = min(kinds, key=bpc.get)
text_scores = dict(rnn=bpc["rnn"], gated=min(bpc["lstm"], bpc["gru"]), best=bpc[best_kind],
                   trigram=trigram)
lesson.say("""
    For the same hidden size the three differ only in how many blocks of
    weights each step multiplies by: one for the RNN, three for the GRU,
    four for the LSTM, hence parameter counts in the ratio of about 1 : 3 : 4
    (the embedding and output layer they share blur it in the language
    models).
    """ + lesson.claim(
    "adding > 0.85", adding=seconds["gru"] / seconds["lstm"],
    text=lm_seconds["gru"] / lm_seconds["lstm"],
    yes="""Time does not follow the arithmetic so closely. At these sizes much of
        a step is the fixed cost of running many small operations, and the GRU's
        step has a few more of them than the LSTM's: its reset gate sits inside
        the candidate, so its hidden products are split off on their own. Its
        step took {adding:.0%} of the LSTM's time on the adding problem and
        {text:.0%} on text.""",
    no="""Time roughly follows the arithmetic here: the GRU's step took
        {adding:.0%} of the LSTM's time on the adding problem and {text:.0%} on
        text."""), lesson.claim(
    "rnn < 0.6", rnn=seconds["rnn"] / min(seconds["gru"], seconds["lstm"]),
    yes="""The RNN is by far the cheapest per step ({rnn:.0%} of the quicker gated
        model's time on the adding problem).""",
    no="""The RNN's step is not much cheaper here ({rnn:.0%} of the quicker gated
        model's time on the adding problem).""") + """
    On text, where most of what predicts a character lies a few characters
    back, it learns;
    """ + lesson.claim(
    "gated < rnn", **text_scores,
    yes=f"""the better gated model is {{gated:.3f}} bits per character against the
        RNN's {{rnn:.3f}} after {lm_steps} steps.""",
    no=f"""after {lm_steps} steps it is even level with the gated models or ahead
        ({{rnn:.3f}} bits per character against {{gated:.3f}}).""") + " " + lesson.claim(
    "best < trigram", **text_scores,
    yes=f"The best of the three, the {best_kind.upper()}, beats the 3-gram's {{trigram:.3f}}.",
    no=f"""All three are still worse than the add-k 3-gram ({{trigram:.3f}}):
        {lm_steps} steps are too few to overtake plain counting."""), """
    """ + lesson.claim(
    "rnn_test_mse_over_baseline >= 0.75", **solved,
    yes=f"When what matters lies {length} steps back, the RNN fails outright.",
    no=f"""When what matters lies {length} steps back, the RNN makes some headway
        here ({{rnn_test_mse_over_baseline:.0%}} of the baseline).""") + " " + lesson.claim(
    "gru_at < lstm_at", gru_at=gru_at, lstm_at=lstm_at,
    yes=f"""The GRU and the LSTM both carry information across those steps; the
        GRU does it with {gru_share:.0%} of the LSTM's parameters, and on the adding
        problem it left the baseline sooner.""",
    no=f"""The GRU and the LSTM both carry information across those steps; the
        GRU does it with {gru_share:.0%} of the LSTM's parameters, and on the adding
        problem it left the baseline no sooner."""), lesson.claim(
    "gru_mse < lstm_mse and gru_bpc < lstm_bpc", gru_mse=test_mse["gru"],
    lstm_mse=test_mse["lstm"], gru_bpc=bpc["gru"], lstm_bpc=bpc["lstm"],
    yes="""In this run the GRU did better on both tasks (adding problem MSE
        {gru_mse:.4f} against {lstm_mse:.4f}; {gru_bpc:.3f} against {lstm_bpc:.3f}
        bits per character on text), with fewer parameters. One run at one size
        settles little: both are in wide use, and the LSTM's separate cell and
        output gate give it room that some tasks use.""",
    no="""Neither did better on both tasks in this run (adding problem MSE: GRU
        {gru_mse:.4f}, LSTM {lstm_mse:.4f}; bits per character on text: GRU
        {gru_bpc:.3f}, LSTM {lstm_bpc:.3f}), and both are in wide use: the GRU
        is the smaller model, the LSTM's separate cell and output gate give it
        room that some tasks use."""))

lesson.try_this(
    ("--length 10", "On sequences of only 10 steps, can the plain RNN now solve the adding "
                    "problem too?"),
    ("--length 100", "At 100 steps, which of the GRU and the LSTM still gets below 0.01, and "
                     "when does each start to learn?"),
    ("--hidden 4", "With 4 hidden units, is there still room for a unit that keeps the running "
                   "sum, and does the GRU's update gate still dip at the marks?"))
lesson.finish()
