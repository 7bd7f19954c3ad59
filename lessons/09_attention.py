"""Lesson 9: attention, on dates.

People write one date in many ways ("september 27, 1994", "9/27/94",
"TUE 27 SEP 1994", "27.09.1994", ...); a program wants one: 1994-09-27.
An encoder-decoder with attention learns the conversion, and its attention
weights show which input characters it reads for each output character.
Lesson 8's best model (peeky decoder, reversed input, no attention) learns
the same data in the same budget, for comparison.

    .venv/bin/python lessons/09_attention.py [--quick] [--seed S] [--out DIR]
"""
import math
import string
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq.data import (
    PAD, START, date_layouts, dates, encode_seq2seq, leak_free_split, seq2seq_vocab,
)
from microseq.lesson import Lesson
from microseq.models import save
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
    N, N_TEST, HIDDEN, BATCH, EPOCHS, LR = 50_000, 5_000, 128, 128, 3, 1e-2
HIDDEN, EPOCHS = lesson.args.hidden or HIDDEN, lesson.args.epochs or EPOCHS
EMBED, CLIP = 16, 5.0

# ---------------------------------------------------------------- the data
lesson.section("One date, many spellings")
inputs, targets, kinds = dates(N, lesson.seed, with_layouts=True)
date_of = dict(zip(inputs, targets, strict=True))
# Group by the date itself: a test date is never seen in training, in any format.
train_idx, test_idx = leak_free_split(inputs, N_TEST, lesson.seed, key=date_of.get)
# Every letter, so that any date a person types can be read, even in a spelling
# the training dates never used.
vocab = seq2seq_vocab(inputs, targets, alphabet=string.ascii_letters)
pad_id, start_id = vocab.stoi[PAD], vocab.stoi[START]
layouts = list(dict.fromkeys(layout for layout, _ in date_layouts()))
cases = list(dict.fromkeys(case for _, case in date_layouts()))
# One example of every layout, in a different case each time, and of the two
# that can start with the weekday (four words instead of three) once more.
shown = [next(i for i, kind in enumerate(kinds) if kind[0] == layout
              and kind[1] in (cases[k % 3], "-")) for k, layout in enumerate(layouts)]
shown += [i for layout in layouts for i in [next(
    (i for i, kind in enumerate(kinds) if kind[0] == layout and len(inputs[i].split()) == 4),
    None)] if i is not None]
examples = "\n".join(f"        {inputs[i]:<32} -> {targets[i]}" for i in shown)
lesson.say(f"""
    We generate {N:,} distinct date strings between 1950 and 2049, each with
    its ISO form as the target. A date is written in one of {len(layouts)} layouts,
    each equally often; a layout with names is typed in lower case, in Title
    Case or in UPPER CASE, and the two that can start with the weekday do so
    half the time. One example of each layout:

{examples}

    {len(train_idx):,} are for training and {len(test_idx):,} for the test, split
    by the date they mean: no test date appears in training in any format,
    so the model must really read day, month and year. The vocabulary has
    {len(vocab)} characters (every letter in both cases, digits, punctuation,
    and "{PAD}" and "{START}"); inputs are padded to {max(map(len, inputs))} characters.
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
CONFIG = dict(vocab_size=len(vocab), pad_id=pad_id, embed_size=EMBED, hidden_size=HIDDEN)
models["attention"] = AttentionSeq2Seq(**CONFIG)
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
# Every layout ends with the year: the weight each year digit of the output
# puts on the input's last run of digits says whether it reads the year there.
year_weight = np.mean([w[:4, len(inputs[i].rstrip(string.digits)):len(inputs[i])].sum(axis=1)
                       for i, w in zip(picked, weights, strict=True)])
lesson.say("""
    attention.png draws the weights for six test dates: one row per output
    character, one column per input character, brighter = more weight.
    """, lesson.claim(
    "year > 0.5", year=year_weight,
    yes="""The year digits of the output look at the year in the input, wherever
        the layout put it: on average {year:.0%} of their weight falls on the
        input's year.""",
    no="""The year digits of the output do not yet look at the year in the
        input: only {year:.0%} of their weight falls there.""",
    short="""This quick run is too short for clear pictures: only {year:.0%} of the
        year digits' weight falls on the input's year."""), """
    Look in the pictures for the month digits reading the month's name or
    number and the day digits reading the day; the dashes, which are always
    there, need no particular input. (The padding columns are cut off: their
    weight is exactly zero.)
    """)

# ------------------------------------------------------------- the verdict
lesson.section("Attention against a single summary")
baseline, attn = "no attention (peeky + reversed)", "attention"
early = {name: h.metric("exact")[1][0] for name, h in histories.items()}
# As in lesson 8, the comparison is judged on the mean over the whole curve.
mean = {name: float(np.mean(h.metric("exact")[1])) for name, h in histories.items()}
numbers = dict(attention=final[attn]["exact"], summary=final[baseline]["exact"],
               early_attention=early[attn], early_summary=early[baseline],
               mean_attention=mean[attn], mean_summary=mean[baseline])
lesson.say(f"""
    Same data, same budget: {final[attn]['exact']:.2%} of the test dates exactly
    right with attention ({seconds[attn]:.0f} s of training), {final[baseline]['exact']:.2%}
    without ({seconds[baseline]:.0f} s).
    """ + lesson.claim(
    "early_attention > early_summary", **numbers,
    yes="""After half an epoch the numbers were {early_attention:.1%} and
        {early_summary:.1%}: with attention the model finds where to copy from
        sooner, while the single summary has to learn to pack the date into
        """ + f"{HIDDEN} numbers first.",
    no="""After half an epoch the numbers were {early_attention:.1%} and
        {early_summary:.1%}: attention gave no head start in this run.""",
    short="""After half an epoch the numbers were {early_attention:.1%} and
        {early_summary:.1%}: this quick run is too short to show a head start.""")
    + " " + lesson.claim(
    "summary >= 0.95", **numbers,
    yes="Given time, the summary gets there too on this task.",
    no="""The single summary does not get there in this budget
        ({summary:.1%}).""",
    short="""This quick run is too short for the single summary to get there
        ({summary:.1%}).""")
    + " " + lesson.claim(
    "mean_attention > mean_summary", **numbers,
    yes="""Over the whole run attention leads (a mean of {mean_attention:.1%} over
        the evaluations, against {mean_summary:.1%}), and shows its work.""",
    no="""On the mean over the evaluations attention does not lead here
        ({mean_attention:.1%} against {mean_summary:.1%}), but it still shows its
        work."""))

# ------------------------------------------------------ by layout and case
lesson.section("Every layout, in every case")
_, preds = exact_match(model, xs[test_idx], target[test_idx], start_id, pad_id)
right = np.all(preds == target[test_idx], axis=1)
tested = [kinds[i] for i in test_idx]
table = np.full((len(layouts), len(cases)), np.nan)
counts = np.zeros(table.shape, dtype=int)
for r, layout in enumerate(layouts):
    for c, case in enumerate(cases):
        cell = np.array([kind == (layout, case) for kind in tested])
        counts[r, c] = cell.sum()
        if cell.any():
            table[r, c] = right[cell].mean()
rows = "\n".join(f"        {layout:<12}" + "".join(
    f"{table[r, c]:8.1%} ({counts[r, c]:>3})" if counts[r, c] else f"{'':>14}"
    for c in range(len(cases))) for r, layout in enumerate(layouts))
worst = np.unravel_index(np.nanargmin(table), table.shape)
where = f'"{layouts[worst[0]]}"' + ("" if cases[worst[1]] == "-" else f" in {cases[worst[1]]} case")
lesson.say(f"""
    A person may type a date in any of these ways, so the attention model's
    exact match is counted for every layout and case ("-": all digits, no
    case; in brackets the number of test dates):

        {"layout":<12}{"".join(f"{case:>14}" for case in cases)}
{rows}
    """, lesson.claim(
    "worst >= 0.99", worst=table[worst],
    yes=f"The weakest cell, {where}, is at {{worst:.1%}}: every way of typing is read.",
    no=f"Not every way of typing is read yet: {where} is at {{worst:.1%}}.",
    short=f"""This quick run is too short to read every way of typing ({where} is
        at {{worst:.1%}})."""))
fig, ax = plt.subplots(figsize=(6, 5))
image = ax.imshow(100 * table, cmap="RdYlGn", vmin=90, vmax=100, aspect="auto")
fig.colorbar(image, ax=ax, label="exact match (%)")
for (r, c), value in np.ndenumerate(table):
    if counts[r, c]:
        ax.text(c, r, f"{value:.1%} ({counts[r, c]})", ha="center", va="center", fontsize=8)
ax.set_xticks(range(len(cases)), ["lower", "Title", "UPPER", "digits"][:len(cases)])
ax.set_yticks(range(len(layouts)), layouts)
ax.set_xlabel("case")
ax.set_ylabel("layout")
ax.set_title("attention: is every layout read in every case (green)?")
lesson.savefig(fig, "by_layout")
(lesson.path("examples.tsv")).write_text("question\tanswer\tmodel\n" + "".join(
    f"{inputs[i]}\t{targets[i]}\t{vocab.decode(p).split(PAD)[0]}\n"
    for i, p in list(zip(test_idx, preds, strict=True))[:20]))
lesson.register(lesson.path("examples.tsv"))

lesson.metric("attention_test_exact_match", final[attn]["exact"],
              threshold=0.2 if quick else 0.995)
lesson.metric("attention_worst_layout_case_exact_match", table[worst],
              threshold=0.1 if quick else 0.99)
lesson.metric("attention_minus_no_attention_mean_exact_match",
              mean[attn] - mean[baseline], threshold=0.05)
for name, key in ((attn, "attention"), (baseline, "no_attention")):
    lesson.record(f"{key}_train_seconds", seconds[name])

lesson.section("Ask it yourself")
saved = save(lesson.out, model, CONFIG, vocab, reverse=False, question_length=xs.shape[1],
             answer_length=target.shape[1])
lesson.register(saved)
lesson.say(f"""
    The attention model is saved in {saved}. Ask it a date, typed as you
    would:

        make ask-9 Q="thursday, may 20, 1982"        (from the shell)
        microseq.models.load("{Path(saved).parent}").answer(["Wed 2 Jan 1980"])
    """)
lesson.try_this(
    ("--hidden 16", "With 16 hidden units, the model without attention must squeeze a date "
                    "into 16 numbers. Does attention's lead grow?"),
    ("--epochs 1", "After one epoch, are the attention maps already sharp, or still spread "
                   "over the whole input?"),
    ("--seed 1", "Are the six dates' attention maps alike with another seed?"))
lesson.finish()
