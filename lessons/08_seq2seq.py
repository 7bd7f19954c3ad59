"""Lesson 8: sequence to sequence, on addition.

A question goes in as characters ("16+75") and the answer comes out as
characters ("91"), written by a second network that reads what the first one
understood. Two small changes make a large difference:

    plain              an LSTM encoder; an LSTM decoder that starts from its state
    reversed           the same model, with every question fed backwards
    peeky              the encoder's summary also goes to every decoder step
    peeky + reversed   both

All four learn from the same problems, with operands of one, two and three
digits equally often, and are tested on problems none of them saw.

    .venv/bin/python lessons/08_seq2seq.py [--quick] [--seed S] [--out DIR]
"""
import math
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq.data import (
    PAD, START, addition, encode_seq2seq, leak_free_split, operand_lengths, seq2seq_vocab,
)
from microseq.lesson import Lesson
from microseq.models import save
from microseq.models.seq2seq import Seq2Seq, exact_match, fit

VARIANTS = {  # name: (question reversed?, peeky decoder?)
    "plain": (False, False),
    "reversed": (True, False),
    "peeky": (False, True),
    "peeky + reversed": (True, True),
}
BEST = "peeky + reversed"

lesson = Lesson(8, "Sequence to sequence: addition, reversed input, a peeky decoder", arguments={
    "--hidden": dict(type=int, default=None, metavar="H",
                     help="LSTM hidden units (default 64 quick, 128 full)"),
    "--epochs": dict(type=int, default=None, metavar="N",
                     help="training epochs of each model (default 3 quick, 6 full)")})
quick = lesson.quick
if quick:  # two-digit sums and small nets: enough to see learning start, in seconds
    N, N_TEST, DIGITS, HIDDEN, BATCH, EPOCHS, LR = 6_000, 600, 2, 64, 32, 3, 2e-2
else:
    N, N_TEST, DIGITS, HIDDEN, BATCH, EPOCHS, LR = 50_000, 5_000, 3, 128, 128, 9, 1e-2
HIDDEN, EPOCHS = lesson.args.hidden or HIDDEN, lesson.args.epochs or EPOCHS
EMBED, CLIP = 16, 5.0

# ---------------------------------------------------------------- the data
lesson.section("Addition as translation")
questions, answers = addition(N, lesson.seed, max_digits=DIGITS)


def unordered(question):
    """'75+16' and '16+75' are the same problem for our split."""
    return "+".join(sorted(question.split("+")))


train_idx, test_idx = leak_free_split(questions, N_TEST, lesson.seed, key=unordered)
# Short problems repeat (there are only 100 of one digit plus one digit); each
# test question is asked once.
test_idx = np.array(sorted({questions[i]: i for i in test_idx[::-1]}.values()))
lengths = np.array([operand_lengths(q) for q in questions])
vocab = seq2seq_vocab(questions, answers)
pad_id, start_id = vocab.stoi[PAD], vocab.stoi[START]
common = Counter(answers[i] for i in train_idx).most_common(1)[0][0]
guess_rate = np.mean([answers[i] == common for i in test_idx])
examples = ", ".join(f'"{q}" -> "{a}"' for q, a in zip(questions[:4], answers[:4], strict=True))
lesson.say(f"""
    Addition makes a clean translation task: the input and the output are
    both strings, of different lengths, and there is exactly one right
    answer. We draw {N:,} problems, for example {examples}. Each operand
    has 1 to {DIGITS} digits, each length equally often, so that "4+4" is as
    common a shape as "{'417+385' if DIGITS == 3 else '41+38'}": drawn uniformly from all
    numbers below {10 ** DIGITS:,}, nearly every operand would have {DIGITS} digits and
    a model would hardly ever see a short sum. There are only 100 problems
    of one digit plus one digit, so short problems come up many times.

    {len(train_idx):,} draws are for training, and {len(test_idx):,} distinct questions
    for the test. The split keeps every copy of a question, and of "a+b"
    and "b+a", on the same side, so no test question, not even with its
    operands swapped, was ever seen in training: a perfect score can only
    come from having learned to add. For scale, always
    answering the most common training sum, "{common}", would be right on
    {guess_rate:.2%} of the test.

    Characters become ids in a vocabulary of {len(vocab)} symbols: the digits,
    "+", "{PAD}" that pads short strings and ends every answer, and "{START}" that
    tells the decoder to begin.
    """)

plain_xs, dec_in, target = encode_seq2seq(questions, answers, vocab)
reversed_xs, _, _ = encode_seq2seq(questions, answers, vocab, reverse=True)
assert np.array_equal(reversed_xs[:, ::-1], plain_xs)  # reversing is undone exactly
# An example short enough to show the padding on both sides.
row = next(i for i, (q, a) in enumerate(zip(questions, answers, strict=True))
           if len(q) < plain_xs.shape[1] and len(a) < target.shape[1])
lesson.say(f"""
    Each question is padded to the longest, {plain_xs.shape[1]} characters, and each
    answer to {target.shape[1]}. For "{questions[row]}" = "{answers[row]}":

        encoder input             {vocab.decode(plain_xs[row])}   ids {plain_xs[row].tolist()}
        encoder input, reversed   {vocab.decode(reversed_xs[row])}   ids {reversed_xs[row].tolist()}
        decoder input             {vocab.decode(dec_in[row])}
        decoder target            {vocab.decode(target[row])}

    The decoder target is the answer, with "{PAD}" after it to say "done". The
    decoder input is the same answer shifted right by one behind "{START}": at
    every step the decoder is shown the previous true character and asked for
    the next one.
    """)

# ------------------------------------------------------------ the four models
lesson.section("Four encoder-decoders")
lesson.say(f"""
    The encoder embeds each character in {EMBED} numbers and runs an LSTM with
    {HIDDEN} hidden units over the question. Its final hidden and cell state are
    everything the decoder will know about the question. The decoder is a
    second LSTM that starts from that state, reads the answer so far one
    character at a time and scores the {len(vocab)} possible next characters.

    Every LSTM here starts with its forget gates biased open: a bias of 2,
    so each gate starts near 0.88 rather than 0.5. The cell state then
    carries over many steps from the first update on, and training spends
    less time on the plateau before the first answers come out right.

    Reversed input: the question is fed backwards, "57+61" instead of
    "16+75". Nothing is lost, but the paths change. The answer is written
    from its first digit on, and reversing puts the start of the question
    right before the start of the answer, so that early output steps depend
    on recent inputs: shorter paths for the gradient, which then learns
    sooner. (The padding also moves to the front, where it can do no harm.)

    Peeky decoder: in the plain model the encoder's summary h enters the
    decoder once, as its initial state, and must survive every step after.
    A peeky decoder gets h again at every step, concatenated to the
    embedded character that goes into the LSTM and to the LSTM's output
    that goes into the scoring layer.
    """)

models = {}
CONFIG = dict(vocab_size=len(vocab), embed_size=EMBED, hidden_size=HIDDEN)
for name, (_, peeky) in VARIANTS.items():
    ms.manual_seed(lesson.seed)  # each model's initial weights repeat with the seed
    models[name] = Seq2Seq(**CONFIG, peeky=peeky)
lesson.say("Parameters per model: " + ", ".join(
    f"{name} {model.num_parameters():,}" for name, model in models.items()) + ".")

# ---------------------------------------------------------------- training
lesson.section("Training with teacher forcing")
steps_per_epoch = math.ceil(len(train_idx) / BATCH)
lesson.say(f"""
    Teacher forcing: while training, the decoder's input at each step is the
    true previous character, never its own guess. All inputs are then known
    before the decoder starts, so the decoder runs as one LSTM call over the
    whole answer, just like the encoder, and one mistake early in an answer
    cannot derail the rest of the training example.

    The loss is the cross-entropy of every answer character, the closing
    "{PAD}"s included. Each model trains for {EPOCHS} epochs of {steps_per_epoch}
    batches of {BATCH} with Adam, its learning rate falling from {LR} to 0
    along a half cosine, and gradients clipped to norm {CLIP}. After every
    epoch the model answers the {len(test_idx):,} test questions.
    """)


def exact_match_on_test(xs):
    """An evaluation for fit(): exact match on the test questions, in layout xs."""
    return lambda model: {"test acc": exact_match(model, xs[test_idx], target[test_idx],
                                                  start_id, pad_id)[0]}


curves, seconds = {}, {}
for name, model in models.items():
    xs = reversed_xs if VARIANTS[name][0] else plain_xs
    history, seconds[name] = fit(model, xs, dec_in, target, train_idx, epochs=EPOCHS,
                                 batch_size=BATCH, lr=LR, clip=CLIP, seed=lesson.seed,
                                 evaluate=exact_match_on_test(xs), desc=name)
    curves[name] = history.metric("test acc")[1]
    lesson.say(f"{name:>17}: test exact match {curves[name][-1]:7.2%} after "
               f"{seconds[name]:.1f} s of training")

fig, ax = plt.subplots(figsize=(7, 4.5))
for name, curve in curves.items():
    ax.plot(range(1, EPOCHS + 1), [100 * a for a in curve], marker="o", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("test exact match (%)")
ax.set_ylim(0, 100)
ax.set_title(f"Addition up to {DIGITS} digits, {len(test_idx):,} unseen questions:\n"
             "how fast does each variant climb?")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.grid(alpha=0.3)
ax.legend()
lesson.savefig(fig, "accuracy")

# ------------------------------------------------------------- free running
lesson.section("Free running: the decoder on its own")
lesson.say(f"""
    At test time there is no true answer to feed in. The decoder starts from
    "{START}", picks the highest-scoring character, and feeds that guess back
    in as the next step's input, until it writes "{PAD}" (greedy decoding).
    Now it must go one step at a time, but it still does so for a whole
    batch of questions at once. An answer counts only if every character is
    right.
    """)
best_xs = reversed_xs if VARIANTS[BEST][0] else plain_xs
best_acc, preds = exact_match(models[BEST], best_xs[test_idx], target[test_idx],
                              start_id, pad_id)
guesses = [vocab.decode(p).split(PAD)[0] for p in preds]
truth = [answers[j] for j in test_idx]
right = [i for i, (g, a) in enumerate(zip(guesses, truth, strict=True)) if g == a]
wrong = [i for i, (g, a) in enumerate(zip(guesses, truth, strict=True)) if g != a]
rows = [(questions[test_idx[i]], truth[i], guesses[i], verdict)
        for some, verdict in ((right[:6], "right"), (wrong[:6], "WRONG")) for i in some]
lesson.say(f"Answers of the {BEST} model to a few test questions:\n\n" + "\n".join(
    f"        {q:>8} = {a:<5} model says {g:<5} {verdict}" for q, a, g, verdict in rows))
if wrong:
    # A slip: the right number of digits, and only one of them wrong.
    slip = np.mean([len(guesses[i]) == len(truth[i])
                    and sum(g != t for g, t in zip(guesses[i], truth[i])) == 1 for i in wrong])
    lesson.say(f"It gets {len(wrong)} of {len(test_idx):,} wrong. " + lesson.claim(
        "slip >= 0.5", slip=slip,
        yes="""{slip:.0%} of those differ from the true sum in a single digit: the model
            knows how big the sum is and slips on a digit or a carry.""",
        no="""Only {slip:.0%} of those differ from the true sum in a single digit: most
            of its mistakes are more than a slip."""))
(lesson.path("examples.tsv")).write_text("question\tanswer\tmodel\n" + "".join(
    f"{questions[test_idx[i]]}\t{truth[i]}\t{guesses[i]}\n" for i in right[:6] + wrong[:6]))
lesson.register(lesson.path("examples.tsv"))

# ------------------------------------------------------- by operand length
lesson.section("Short sums and long sums")
tested = lengths[test_idx]
is_right = np.array([g == a for g, a in zip(guesses, truth, strict=True)])
by_length = np.full((DIGITS, DIGITS), np.nan)
counts = np.zeros((DIGITS, DIGITS), dtype=int)
for a in range(1, DIGITS + 1):
    for b in range(1, DIGITS + 1):
        cell = (tested[:, 0] == a) & (tested[:, 1] == b)
        counts[a - 1, b - 1] = cell.sum()
        if cell.any():
            by_length[a - 1, b - 1] = is_right[cell].mean()
header = "".join(f"{f'+ {b}-digit':>16}" for b in range(1, DIGITS + 1))
length_rows = "\n".join(f"        {f'{a}-digit':<10}" + "".join(
    f"{by_length[a - 1, b - 1]:9.1%} ({counts[a - 1, b - 1]:>4})" for b in range(1, DIGITS + 1))
    for a in range(1, DIGITS + 1))
worst = np.unravel_index(np.nanargmin(by_length), by_length.shape)
pair = f"{worst[0] + 1}-digit + {worst[1] + 1}-digit"
lesson.say(f"""
    A learner tries short sums first. Here is the {BEST} model's exact match
    for every pair of operand lengths (first operand down, second across;
    in brackets the number of distinct test questions of that shape):

        {"":<10}{header}
{length_rows}
    """, lesson.claim(
    "worst >= 0.97", worst=by_length[worst],
    yes=f"""Every shape of sum is answered, the short ones too: the weakest pair of
        lengths, {pair}, is at {{worst:.1%}}.""",
    no=f"""Not every shape of sum is learned: {pair} is answered right only
        {{worst:.1%}} of the time.""",
    short=f"""This quick run is too short to learn every shape of sum ({pair} is at
        {{worst:.1%}})."""))
fig, ax = plt.subplots(figsize=(4.8, 4))
image = ax.imshow(100 * by_length, cmap="RdYlGn", vmin=80, vmax=100)
fig.colorbar(image, ax=ax, label="exact match (%)")
for (a, b), value in np.ndenumerate(by_length):
    ax.text(b, a, f"{value:.1%}\n({counts[a, b]})", ha="center", va="center", fontsize=9)
ax.set_xticks(range(DIGITS), [f"{b + 1}" for b in range(DIGITS)])
ax.set_yticks(range(DIGITS), [f"{a + 1}" for a in range(DIGITS)])
ax.set_xlabel("digits of the second operand")
ax.set_ylabel("digits of the first operand")
ax.set_title(f"{BEST}: is every pair of operand lengths answered (green)?")
lesson.savefig(fig, "by_length")

fig, ax = plt.subplots(figsize=(6, 0.4 * len(rows) + 0.8))
ax.axis("off")
table = ax.table(cellText=rows, colLabels=["question", "answer", "model", ""],
                 cellLoc="center", bbox=[0, 0, 1, 1])
for (r, _), cell in table.get_celld().items():
    if r > 0:
        cell.set_facecolor("#e6f4e6" if rows[r - 1][3] == "right" else "#fbe3e3")
ax.set_title(f"{BEST}: greedy answers to test questions (green right, red wrong)")
lesson.savefig(fig, "examples")

# ------------------------------------------------------------- the verdict
lesson.section("What each change bought")
final = {name: curve[-1] for name, curve in curves.items()}
# The ranking is judged on the mean, which is steadier than the last point alone.
mean = {name: float(np.mean(curve)) for name, curve in curves.items()}
lesson.say(f"""
    Test exact match after the last epoch, and its mean over all {EPOCHS} epochs
    (the area under each curve: how soon a model learns as well as how far
    it gets):
    """)
lesson.say("\n".join([f"    {'':>17}  {'last':>7}  {'mean':>7}"] + [
    f"    {name:>17}  {final[name]:7.2%}  {mean[name]:7.2%}   ({seconds[name]:.1f} s)"
    for name in VARIANTS]))
means = dict(plain=mean["plain"], reversed=mean["reversed"], peeky=mean["peeky"],
             both=mean[BEST])
lesson.say(lesson.claim(
    "reversed > plain", **means,
    yes="""Reversing the question alone lifts the mean from {plain:.1%} to
        {reversed:.1%}.""",
    no="""Reversing the question alone did not help in this run: a mean of
        {reversed:.1%} against {plain:.1%} for the plain model.""",
    short="""This quick run is too short to show what reversing buys (a mean of
        {reversed:.1%} against {plain:.1%} plain).""")
    + " " + lesson.claim(
    "peeky > plain", **means,
    yes="Peeking alone lifts it to {peeky:.1%}.",
    no="Peeking alone did not help: {peeky:.1%}.",
    short="Nor does it show what peeking alone buys ({peeky:.1%}).")
    + " " + lesson.claim(
    "both > reversed and both > peeky", **means,
    yes="Together they reach {both:.1%}, the best of the four.",
    no="Together they reach {both:.1%}, which is not the best of the four here.",
    short="""Together they reach {both:.1%}; a quick run is too short to rank the
        four."""), f"""
    The peeky model's hidden state is no bigger: it is the same {HIDDEN}
    numbers. What changes is how far the information has to travel, and how
    far the gradient has to travel back.
    """)
lesson.metric("peeky_reversed_test_exact_match", best_acc, threshold=0.2 if quick else 0.99)
lesson.metric("peeky_reversed_worst_length_pair_exact_match", by_length[worst],
              threshold=0.2 if quick else 0.97)
if not quick:  # a few seconds of training are too few to rank the variants reliably
    lesson.metric("reversed_minus_plain_mean_exact_match",
                  mean["reversed"] - mean["plain"], threshold=0.05)
    lesson.metric("peeky_reversed_minus_reversed_mean_exact_match",
                  mean[BEST] - mean["reversed"], threshold=0.02)
for name in VARIANTS:
    lesson.record(f"{name.replace(' + ', '_').replace(' ', '_')}_train_seconds", seconds[name])

lesson.section("Ask it yourself")
saved = save(lesson.out, models[BEST], CONFIG | {"peeky": True}, vocab, reverse=True,
             question_length=plain_xs.shape[1], answer_length=target.shape[1])
lesson.register(saved)
lesson.say(f"""
    The {BEST} model is saved in {saved}. Ask it any sum of two numbers of
    up to {DIGITS} digits, typed as you would:

        make ask-8 Q="4+4"                    (from the shell)
        microseq.models.load("{Path(saved).parent}").answer(["4+4", "77+85"])
    """)
lesson.try_this(
    ("--hidden 16", "With 16 hidden units, does the peeky decoder's advantage grow or shrink? "
                    "Which of the four models suffers most?"),
    ("--epochs 1", "After a single epoch, which variant is ahead, and by how much?"),
    ("--seed 1", "Do the four models finish in the same order with another seed?"))
lesson.finish()
