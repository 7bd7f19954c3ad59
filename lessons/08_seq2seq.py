"""Lesson 8: sequence to sequence, on addition.

A question goes in as characters ("16+75") and the answer comes out as
characters ("91"), written by a second network that reads what the first one
understood. Two small changes make a large difference:

    plain              an LSTM encoder; an LSTM decoder that starts from its state
    reversed           the same model, with every question fed backwards
    peeky              the encoder's summary also goes to every decoder step
    peeky + reversed   both

All four learn from the same 45,000 problems and are tested on 5,000 others.

    .venv/bin/python lessons/08_seq2seq.py [--quick] [--seed S] [--out DIR]
"""
import math
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq.data import PAD, START, addition, encode_seq2seq, leak_free_split, seq2seq_vocab
from microseq.lesson import Lesson
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
    N, N_TEST, DIGITS, HIDDEN, BATCH, EPOCHS, LR = 50_000, 5_000, 3, 128, 128, 6, 1e-2
HIDDEN, EPOCHS = lesson.args.hidden or HIDDEN, lesson.args.epochs or EPOCHS
EMBED, CLIP = 16, 5.0

# ---------------------------------------------------------------- the data
lesson.section("Addition as translation")
questions, answers = addition(N, lesson.seed, max_digits=DIGITS)


def unordered(question):
    """'75+16' and '16+75' are the same problem for our split."""
    return "+".join(sorted(question.split("+")))


train_idx, test_idx = leak_free_split(questions, N_TEST, lesson.seed, key=unordered)
vocab = seq2seq_vocab(questions, answers)
pad_id, start_id = vocab.stoi[PAD], vocab.stoi[START]
common = Counter(answers[i] for i in train_idx).most_common(1)[0][0]
guess_rate = np.mean([answers[i] == common for i in test_idx])
examples = ", ".join(f'"{q}" -> "{a}"' for q, a in zip(questions[:4], answers[:4], strict=True))
lesson.say(f"""
    Addition makes a clean translation task: the input and the output are
    both strings, of different lengths, and there is exactly one right
    answer. We draw {N:,} distinct problems with operands up to {DIGITS} digits,
    for example {examples}.

    {len(train_idx):,} are for training and {len(test_idx):,} for the test. The
    split keeps "a+b" and "b+a" on the same side, so no test question, not
    even with its operands swapped, was ever seen in training: a perfect
    score can only come from having learned to add. For scale, always
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
for name, (_, peeky) in VARIANTS.items():
    ms.manual_seed(lesson.seed)  # each model's initial weights repeat with the seed
    models[name] = Seq2Seq(len(vocab), EMBED, HIDDEN, peeky=peeky)
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
    near = np.mean([guesses[i].isdigit() and abs(int(guesses[i]) - int(truth[i])) < 100
                    for i in wrong])
    lesson.say(f"""
        It gets {len(wrong)} of {len(test_idx):,} wrong, and {near:.0%} of those are
        off by less than 100: the model knows how big the sum is and slips
        on a digit or a carry.
        """)

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
lesson.say(f"""
    Reversing the question alone takes the plain model from {final['plain']:.1%}
    to {final['reversed']:.1%}; peeking alone gives {final['peeky']:.1%}; together
    they reach {final[BEST]:.1%}, and get there first. The peeky model's
    hidden state is no bigger: it is the same {HIDDEN} numbers. What changes
    is how far the information has to travel, and how far the gradient has
    to travel back.
    """)
lesson.metric("peeky_reversed_test_exact_match", best_acc, threshold=0.2 if quick else 0.98)
if not quick:  # a few seconds of training are too few to rank the variants reliably
    lesson.metric("reversed_minus_plain_mean_exact_match",
                  mean["reversed"] - mean["plain"], threshold=0.05)
    lesson.metric("peeky_reversed_minus_reversed_mean_exact_match",
                  mean[BEST] - mean["reversed"], threshold=0.05)
lesson.metric("peeky_reversed_train_seconds", seconds[BEST], threshold=20 if quick else 100,
              higher_is_better=False)
lesson.try_this(
    ("--hidden 16", "With 16 hidden units, does the peeky decoder's advantage grow or shrink? "
                    "Which of the four models suffers most?"),
    ("--epochs 1", "After a single epoch, which variant is ahead, and by how much?"),
    ("--seed 1", "Do the four models finish in the same order with another seed?"))
lesson.finish()
