"""Lesson 9: attention, on dates.

People write one date in many ways ("september 27, 1994", "9/27/94",
"Tue 27 Sep 1994", "27.09.1994", ...); a program wants one: 1994-09-27.
An encoder-decoder with attention learns the conversion, and its attention
weights show which input characters it reads for each output character.
Lesson 8's best model (peeky decoder, reversed input, no attention) learns
the same data in the same budget, for comparison.

    .venv/bin/python lessons/09_attention.py [--quick] [--seed S] [--out DIR]
"""
import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq.data import PAD, START, dates, encode_seq2seq, leak_free_split, seq2seq_vocab
from microseq.lesson import Lesson
from microseq.models.attention_seq2seq import AttentionSeq2Seq
from microseq.models.seq2seq import Seq2Seq, exact_match, fit

lesson = Lesson(9, "Attention: human-written dates to ISO 8601", arguments={
    "--hidden": dict(type=int, default=None, metavar="H",
                     help="LSTM hidden units (default 64 quick, 128 full)"),
    "--epochs": dict(type=int, default=None, metavar="N",
                     help="training epochs of each model (default 4 quick, 2 full)")})
quick = lesson.quick
if quick:  # a small net for a few seconds: enough to see attention pull ahead
    N, N_TEST, HIDDEN, BATCH, EPOCHS, LR = 3_000, 300, 64, 32, 4, 2e-2
else:
    N, N_TEST, HIDDEN, BATCH, EPOCHS, LR = 50_000, 5_000, 128, 128, 2, 1e-2
HIDDEN, EPOCHS = lesson.args.hidden or HIDDEN, lesson.args.epochs or EPOCHS
EMBED, CLIP = 16, 5.0

# ---------------------------------------------------------------- the data
lesson.section("One date, many spellings")
inputs, targets = dates(N, lesson.seed)
date_of = dict(zip(inputs, targets, strict=True))
# Group by the date itself: a test date is never seen in training, in any format.
train_idx, test_idx = leak_free_split(inputs, N_TEST, lesson.seed, key=date_of.get)
vocab = seq2seq_vocab(inputs, targets)
pad_id, start_id = vocab.stoi[PAD], vocab.stoi[START]
lesson.say(f"""
    We generate {N:,} distinct date strings between 1950 and 2049, each in one
    of ten formats, with its ISO form as the target:
    """)
lesson.say("\n".join(f"        {x:<30} -> {y}"
                     for x, y in zip(inputs[:8], targets[:8], strict=True)))
lesson.say(f"""
    {len(train_idx):,} are for training and {len(test_idx):,} for the test, split
    by the date they mean: no test date appears in training in any format,
    so the model must really read day, month and year. The vocabulary has
    {len(vocab)} characters (letters of both cases, digits, punctuation, and
    "{PAD}" and "{START}"); inputs are padded to {max(map(len, inputs))} characters.
    """)
xs, dec_in, target = encode_seq2seq(inputs, targets, vocab)
reversed_xs, _, _ = encode_seq2seq(inputs, targets, vocab, reverse=True)

# ---------------------------------------------------------------- the models
lesson.section("Attention")
lesson.say(f"""
    Lesson 8's encoder hands the decoder one summary of the whole input: a
    state of {HIDDEN} numbers. Here the decoder has to copy the year from one
    place, the month from another and the day from a third, and where each
    sits depends on the format. A summary can hold all of that, but the
    network must first learn to pack it in, and the decoder to unpack it.

    Attention keeps every encoder state, one per input character. At each
    output step the decoder's LSTM state d is compared with each encoder
    state h_j by a dot product, scaled by 1/sqrt({HIDDEN}); a softmax over the
    input turns the scores into weights that are positive and sum to one;
    their weighted sum of the h_j is the context, and the next character is
    scored from [context, d]. Padding is masked: its score is set to -1e9
    before the softmax, so its weight is exactly zero.

    The context is used only for the output, not fed back into the decoder
    LSTM, so with teacher forcing the decoder still runs as one LSTM call,
    and the attention of all {target.shape[1]} output steps is one batched matmul:
    (B, {target.shape[1]}, H) queries against (B, {xs.shape[1]}, H) keys.
    """)
ms.manual_seed(lesson.seed)
models = {"no attention (peeky + reversed)": Seq2Seq(len(vocab), EMBED, HIDDEN, peeky=True)}
ms.manual_seed(lesson.seed)
models["attention"] = AttentionSeq2Seq(len(vocab), pad_id, EMBED, HIDDEN)
model_inputs = {"no attention (peeky + reversed)": reversed_xs, "attention": xs}
lesson.say("Parameters: " + ", ".join(
    f"{name} {model.num_parameters():,}" for name, model in models.items()) + ".")

# ---------------------------------------------------------------- training
lesson.section("Training both, on the same budget")
steps_per_epoch = math.ceil(len(train_idx) / BATCH)
lesson.say(f"""
    Both models train as in lesson 8: teacher forcing, {EPOCHS} epochs of
    {steps_per_epoch} batches of {BATCH}, Adam with its learning rate falling
    from {LR} to 0 along a half cosine, gradients clipped to norm {CLIP}, and
    forget gates biased open. Every half epoch
    both decode the test dates greedily (free running) and we count the
    dates they get exactly right, and the characters.
    """)


def accuracy_on_test(xs):
    """An evaluation for fit(): exact match and per-character accuracy on the
    test dates, in layout xs."""
    def evaluate(model):
        exact, preds = exact_match(model, xs[test_idx], target[test_idx], start_id, pad_id)
        return {"exact": exact, "chars": float(np.mean(preds == target[test_idx]))}
    return evaluate


histories, seconds, final = {}, {}, {}
for name, model in models.items():
    layout = model_inputs[name]
    histories[name], seconds[name] = fit(
        model, layout, dec_in, target, train_idx, epochs=EPOCHS, batch_size=BATCH, lr=LR,
        clip=CLIP, seed=lesson.seed, evaluate=accuracy_on_test(layout), evals_per_epoch=2,
        desc=name)
    final[name] = {key: histories[name].metric(key)[1][-1] for key in ("exact", "chars")}
    lesson.say(f"{name:>31}: {final[name]['exact']:7.2%} of test dates exactly right, "
               f"{final[name]['chars']:.2%} of characters, after {seconds[name]:.1f} s")

fig, ax = plt.subplots(figsize=(7, 4.5))
for name, history in histories.items():
    at, exact = history.metric("exact")
    ax.plot(np.array(at) / steps_per_epoch, [100 * a for a in exact], marker="o", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("test exact match (%)")
ax.set_ylim(0, 100)
ax.set_title(f"Dates to ISO 8601, {len(test_idx):,} unseen dates:\n"
             "how fast does each model climb, with and without attention?")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.grid(alpha=0.3)
ax.legend()
lesson.savefig(fig, "accuracy")

# ----------------------------------------------------------- where it looks
lesson.section("Where the decoder looks")
model = models["attention"]
# Six test dates of different lengths, and so mostly of different formats.
picked, seen_lengths = [], set()
for i in test_idx:
    if len(inputs[i]) not in seen_lengths:
        seen_lengths.add(len(inputs[i]))
        picked.append(i)
    if len(picked) == 6:
        break
ids, weights = model.generate(xs[picked], start_id, target.shape[1], return_weights=True)
fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), layout="constrained")
# magma runs from black (no weight) to pale yellow (the largest weight drawn),
# so that weights spread over a few characters still stand out
top = float(weights.max())
for ax, i, out, w in zip(axes.flat, picked, ids, weights, strict=True):
    n_in = len(inputs[i])
    image = ax.imshow(w[:, :n_in], cmap="magma", vmin=0, vmax=top, aspect="auto")
    ax.set_xticks(range(n_in), list(inputs[i]))
    ax.set_yticks(range(len(out)), list(vocab.decode(out)))
    ax.set_title(inputs[i], fontsize=10)
    ax.set_xlabel("input character")
    ax.set_ylabel("output character")
fig.colorbar(image, ax=axes, shrink=0.8, label=f"attention weight (0 to {top:.2f}, the largest)")
fig.suptitle("Attention weights, one row per output character: does each digit of the "
             "answer read the matching part of the input (the bright cells)?")
lesson.savefig(fig, "attention")
lesson.say("""
    attention.png draws the weights for six test dates: one row per output
    character, one column per input character, brighter = more weight. The
    year digits of the output look at the year in the input, the month
    digits at the month's name or number, the day digits at the day,
    wherever the format put them; the dashes, which are always there, need
    no particular input. (The padding columns are cut off: their weight is
    exactly zero.)
    """)

# ------------------------------------------------------------- the verdict
lesson.section("Attention against a single summary")
baseline, attn = "no attention (peeky + reversed)", "attention"
early = {name: h.metric("exact")[1][0] for name, h in histories.items()}
lesson.say(f"""
    Same data, same budget: {final[attn]['exact']:.2%} of the test dates exactly
    right with attention ({seconds[attn]:.0f} s of training), {final[baseline]['exact']:.2%}
    without ({seconds[baseline]:.0f} s). After half an epoch the numbers were
    {early[attn]:.1%} and {early[baseline]:.1%}: with attention the model
    finds where to copy from almost at once, while the single summary has
    to learn to pack the date into {HIDDEN} numbers first. Given time, the
    summary gets there too on this task; attention gets there sooner, and
    shows its work.
    """)
lesson.metric("attention_test_exact_match", final[attn]["exact"],
              threshold=0.2 if quick else 0.995)
# As in lesson 8, the comparison is judged on the mean over the whole curve.
mean = {name: float(np.mean(h.metric("exact")[1])) for name, h in histories.items()}
lesson.metric("attention_minus_no_attention_mean_exact_match",
              mean[attn] - mean[baseline], threshold=0.05)
lesson.metric("attention_train_seconds", seconds[attn], threshold=20 if quick else 120,
              higher_is_better=False)
lesson.try_this(
    ("--hidden 16", "With 16 hidden units, the model without attention must squeeze a date "
                    "into 16 numbers. Does attention's lead grow?"),
    ("--epochs 1", "After one epoch, are the attention maps already sharp, or still spread "
                   "over the whole input?"),
    ("--seed 1", "Are the six dates' attention maps alike with another seed?"))
lesson.finish()
