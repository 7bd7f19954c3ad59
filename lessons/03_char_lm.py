"""Lesson 3: a character-level language model.

    the toy       learn "hello": from "hell", predict "ello", one character at a time
    the corpus    Python's own help texts (pydoc_data.topics) or --text FILE
    baselines     unigram and add-k character n-gram counts on the same split
    training      contiguous truncated-BPTT windows, state carried across them, clipping
    results       held-out bits per character, samples at several temperatures,
                  and what a few hidden units do over a passage

    .venv/bin/python lessons/03_char_lm.py [--quick] [--seed S] [--out DIR] [--text FILE]
"""
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq.data import BPTTBatcher, CharVocab, char_split, load_text
from microseq.lesson import Lesson
from microseq.models import save
from microseq.models.char_lm import CharLM, truncated_bptt
from microseq.models.ngram import fit_add_k
from microseq.optim import Adam
from microseq.train import train

lesson = Lesson(3, "A character-level language model",
                arguments={"--text": dict(metavar="FILE", default=None,
                                          help="a UTF-8 text file to learn instead of the "
                                               "pydoc help texts"),
                           "--hidden": dict(type=int, default=None, metavar="N",
                                            help="hidden units of the RNN (default 128 quick, "
                                                 "256 full)"),
                           "--seq-len": dict(type=int, default=None, metavar="T",
                                             help="characters per truncated-BPTT window "
                                                  "(default 32 quick, 64 full)")})
quick = lesson.quick
ms.manual_seed(lesson.seed)
batch, seq_len, hidden, steps, eval_every = ((32, 32, 128, 300, 100) if quick
                                             else (64, 64, 256, 900, 100))
seq_len, hidden = lesson.args.seq_len or seq_len, lesson.args.hidden or hidden
# Read the corpus first, so that a bad --text fails at once: the RNN trains on
# the first 90 %, which must fill at least one window of batch x seq_len steps.
text = load_text(lesson.args.text, min_chars=(batch * seq_len + 1) * 10 // 9 + 1)

# ================================================================== the toy
lesson.section("The toy: hell -> ello")
lesson.say("""
    A language model reads a text one token at a time and, at every step,
    gives a probability to each possible next token. At the level of
    characters the tokens are single letters. The smallest example there is:
    the word "hello". Fed h, e, l, l, the model should answer e, l, l, o.

    The pairs are (h -> e), (e -> l), (l -> l), (l -> o). The letter l comes
    twice and must be followed once by l and once by o, so no rule that looks
    only at the current letter can get both right. The recurrent state has
    to remember whether an l has been seen already.
""")
word = "hello"
toy_vocab = CharVocab(word)
x_toy = toy_vocab.encode(word[:-1])[None]   # (1, 4): "hell"
y_toy = toy_vocab.encode(word[1:])[None]    # (1, 4): "ello"
toy = CharLM(len(toy_vocab), hidden_size=8, embed_size=4)
toy_steps = 150
train(toy, Adam(toy.parameters(), lr=0.05), [(x_toy, y_toy)],
      lambda model, batch: model.loss(*batch)[0], steps=toy_steps, seed=lesson.seed,
      desc="toy")

with ms.no_grad():
    toy_logits, _ = toy(x_toy)
probs = ms.softmax(toy_logits).data[0]       # (4 steps, 4 characters)
predicted = toy_vocab.decode(probs.argmax(-1))
greedy = toy_vocab.decode(toy.sample(toy_vocab.encode("h"), 4, temperature=0)[0])
header = "".join(f"  P({c})" for c in toy_vocab.itos)
rows = "\n".join(f"        {t + 1}     {word[t]}      {word[t + 1]}    "
                 + "".join(f"{p:6.3f}" for p in probs[t]) + f"     {predicted[t]}"
                 for t in range(4))
lesson.say(f"""
    A tanh RNN with 8 hidden units, trained for {toy_steps} Adam steps on this
    one sequence. The softmax at every step (vocabulary {toy_vocab.itos}):

        step input target{header}   predicted
{rows}

    Teacher-forced (each step fed the true previous letter) it predicts
    "{predicted}". Free-running from "h" alone, feeding each prediction back
    in as the next input (the way text is generated), it writes "{greedy}".
""")
toy_ok = predicted == word[1:] and greedy == word[1:]
lesson.metric("toy_predicts_ello", float(toy_ok), threshold=1.0)

# ================================================================== the corpus
lesson.section("A real corpus")
if quick:
    text = text[:120_000]
vocab, train_ids, test_ids = char_split(text)
source = lesson.args.text or "pydoc_data.topics (the help texts behind help('topic'))"
lesson.say(f"""
    Now real text: {source}, {len(text):,} characters, {len(vocab)} distinct
    ones. The first 90 % ({len(train_ids):,} characters) is for training and
    counting, the last 10 % ({len(test_ids):,}) is held out: every number
    below is measured on text no model has seen.

    The score is bits per character (BPC): the average of -log2 P(the
    character that really came next). A model that knew nothing would pay
    log2 {len(vocab)} = {np.log2(len(vocab)):.2f} bits; a model that always
    knew would pay 0.
""")

# The RNN is scored on the targets its batched evaluation reads (see
# CharLM.bits_per_char); the count models are scored on exactly the same ones.
eval_rows = min(64, len(test_ids) - 1)
scored = test_ids[1:1 + eval_rows * ((len(test_ids) - 1) // eval_rows)]
context = np.concatenate([train_ids, test_ids[:1]])

lesson.section("Counting baselines")
lesson.say("""
    Before any training, two models made by counting. The unigram model
    gives each character its frequency in the training text and ignores the
    context. The n-gram model uses the n-1 characters before it; for n = 3,

        P(c | ab) = (count(abc) + k) / (count(ab) + k V)

    The k pseudo-counts (add-k smoothing) leave some probability for
    sequences never seen in training; k is picked on the last tenth of the
    training text, never on the held-out text.
""")
orders = (1, 2, 3, 4, 5)
ngram_bpc = {}
for order in lesson.progress(orders, "n-gram counts"):
    counts = fit_add_k(train_ids, len(vocab), order)
    ngram_bpc[order] = counts.bits_per_char(scored, context=context), counts.k
names = {1: "unigram", 2: "bigram", 3: "3-gram", 4: "4-gram", 5: "5-gram"}
table = "\n".join(f"        {names[n]:<10}{bpc:7.3f}   (k = {k:g})"
                  for n, (bpc, k) in ngram_bpc.items())
unigram_bpc, trigram_bpc = ngram_bpc[1][0], ngram_bpc[3][0]
best = min(ngram_bpc, key=lambda n: ngram_bpc[n][0])
lesson.say(f"""
    Held-out bits per character:

{table}
""", lesson.claim(
    "best < 5", best=best, five=ngram_bpc[5][0],
    yes=f"""The {names[best]} does best; with longer contexts, most contexts in new
        text were rarely or never seen and the smoothing takes over.""",
    no="""The 5-gram, the longest, does best here ({five:.3f}): this text is long
        enough for the counts to cover even 4 characters of context."""),
    "The 3-gram is the baseline the RNN has to beat.")

# ================================================================== training
lesson.section("Training the RNN with truncated BPTT")
lr, clip = (1e-2, 1.0) if quick else (3e-3, 1.0)
CONFIG = dict(vocab_size=len(vocab), hidden_size=hidden, embed_size=32)
model = CharLM(**CONFIG)
batcher = BPTTBatcher(train_ids, batch, seq_len)
lesson.say(f"""
    The model: each character id is looked up in an embedding table (32
    numbers), a tanh RNN with {hidden} units reads the embeddings, and a
    linear layer turns every hidden state into {len(vocab)} logits, one per
    possible next character. {model.num_parameters():,} parameters.

    Training text is one long stream. BPTTBatcher cuts it into {batch}
    parallel rows of {batcher.stream_len:,} characters and serves windows of
    {seq_len} characters, each row's window starting exactly where the
    previous one ended. So the hidden state at the end of one window is the
    right starting state for the next: we carry it over, and the RNN reads
    each row as one unbroken text. But we detach it first, keeping its values
    and cutting its graph, so backpropagation stops at the window edge
    (truncated BPTT): a step costs {seq_len} steps of backward, not the whole
    history. At the start of each pass over the text the state starts from
    zeros again.

    Adam (lr {lr:g}), {steps} steps of {batch} x {seq_len} characters, the
    gradient's norm clipped to {clip:g}: a single huge gradient, which a
    recurrent net produces now and then, cannot throw the weights far.
""")

epoch, loss_fn = truncated_bptt(batcher)   # windows in order, the state carried and detached
history = train(model, Adam(model.parameters(), lr=lr), epoch, loss_fn, steps=steps,
                seed=lesson.seed, clip=clip, eval_every=eval_every, desc="char RNN",
                evaluate=lambda m: {"bpc": m.bits_per_char(test_ids, eval_rows)})
rnn_bpc = history.metric("bpc")[1][-1]

fig, ax = plt.subplots(figsize=(7, 4))
losses = np.array(history.losses) / np.log(2)
smooth = np.convolve(losses, np.ones(20) / 20, mode="valid")
ax.plot(history.steps[19:], smooth, label="training windows (bits/char, running mean)")
ax.plot(*history.metric("bpc"), "o-", label="held-out text")
ax.axhline(unigram_bpc, color="grey", ls=":", label=f"unigram {unigram_bpc:.2f}")
ax.axhline(trigram_bpc, color="grey", ls="--", label=f"3-gram {trigram_bpc:.2f}")
if best != 3:
    ax.axhline(ngram_bpc[best][0], color="grey", ls="-.",
               label=f"{names[best]} (best count model) {ngram_bpc[best][0]:.2f}")
ax.set(xlabel="training step", ylabel="bits per character",
       title=f"Held-out bits per character: the RNN ends at "
             f"{history.metric('bpc')[1][-1]:.2f}, the 3-gram at {trigram_bpc:.2f}")
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend()
lesson.savefig(fig, "learning_curve")

scores = dict(rnn=rnn_bpc, trigram=trigram_bpc, best=ngram_bpc[best][0])
lesson.say(f"""
    Held-out bits per character after {steps} steps: {rnn_bpc:.3f}, against
    {trigram_bpc:.3f} for the 3-gram and {unigram_bpc:.3f} for the unigram
    (the best count model, the {names[best]}, scores {ngram_bpc[best][0]:.3f}).
""", lesson.claim(
    "rnn < best", **scores,
    yes="""The RNN beats every count model. A count model can only ever look n-1
        characters back; the RNN's state summarises everything it has read, so
        it can know it is inside a word, a quotation or an indented block of
        code.""",
    no=f"""The RNN {'beats the 3-gram but ' if rnn_bpc < trigram_bpc else ''}does not
        beat the {names[best]} after {steps} steps. Its state can summarise
        everything it has read, where a count model sees only n-1 characters
        back, but it has not yet learned to use more context than the
        {names[best]} does."""))
lesson.metric("heldout_bpc_rnn", rnn_bpc, threshold=2.55 if quick else 2.3,
              higher_is_better=False)
lesson.metric("rnn_bpc_minus_3gram_bpc", rnn_bpc - trigram_bpc, threshold=0.0,
              higher_is_better=False)

# ================================================================== sampling
lesson.section("Sampling")
prompt = "The " if all(c in vocab.stoi for c in "The ") else vocab.decode(test_ids[:4])
temperatures = (0.3, 0.7, 1.0, 1.3)
length = 120 if quick else 300
lesson.say(f"""
    To write, the model reads a prompt ("{prompt}"), then draws each next
    character from its own prediction and feeds it back in. Dividing the
    logits by a temperature before the softmax sharpens the distribution
    (below 1: safe, repetitive) or flattens it (above 1: inventive, and soon
    misspelt).
""")
samples = []
for temperature in temperatures:
    out = model.sample(vocab.encode(prompt), length, temperature=temperature,
                       rng=lesson.seed)[0]
    samples.append(f"--- temperature {temperature} ---\n{prompt}{vocab.decode(out)}\n")
    print(f"\n  temperature {temperature}:\n")
    print("    " + (prompt + vocab.decode(out)).replace("\n", "\n    "))
(lesson.path("samples.txt")).write_text("\n".join(samples))
lesson.register(lesson.path("samples.txt"))

# ================================================================== hidden units
lesson.section("Inside the hidden state")
lesson.say("""
    What do single hidden units do? We run the model over held-out text and
    correlate each unit with a few things a reader would track: whether the
    current character is a letter (inside a word), whether we are inside
    "double quotes" or (brackets) on the current line, and whether we are in
    the indentation at the start of a line. For each, the unit with the
    strongest correlation is drawn over a passage, red for +1, blue for -1.
""")


def features(chars):
    """Per character: is a letter, inside quotes, inside brackets, in indentation."""
    letter, quotes, brackets, indent = (np.zeros(len(chars)) for _ in range(4))
    in_quotes, depth, at_line_start = False, 0, True
    for i, c in enumerate(chars):
        if c == "\n":
            in_quotes, depth, at_line_start = False, 0, True
        elif c != " ":
            at_line_start = False
        in_quotes ^= c == '"'
        depth = max(0, depth + (c in "([{") - (c in ")]}"))
        letter[i], quotes[i] = c.isalpha(), in_quotes
        brackets[i], indent[i] = depth > 0, at_line_start and c == " "
    return {"letter": letter, "inside quotes": quotes, "inside brackets": brackets,
            "indentation": indent}


rows, row_len = (8, 500) if quick else (32, 600)
row_len = min(row_len, len(test_ids))
rows = max(1, min(rows, len(test_ids) // row_len))
stretch = test_ids[:rows * row_len]
states = model.hidden_states(stretch.reshape(rows, row_len)).reshape(-1, hidden)
found = []
for name, feature in features(vocab.decode(stretch)).items():
    if feature.std() == 0:
        continue  # this text never shows it
    centred = states - states.mean(0)
    r = centred.T @ (feature - feature.mean()) / (
        np.sqrt((centred ** 2).sum(0) * ((feature - feature.mean()) ** 2).sum()) + 1e-12)
    r[[unit for _, unit, _ in found]] = 0   # a different unit for every feature
    unit = int(np.abs(r).argmax())
    found.append((name, unit, float(r[unit])))
    print(f"    {name:<16} unit {unit:4d}   r = {r[unit]:+.2f}")

if not found:  # a text without letters, quotes, brackets or indentation
    print("    this text shows none of these features: there is no unit to draw")
    lesson.finish()
    sys.exit()

# a passage with quotes and brackets in it, if the held-out text has one
test_text = vocab.decode(test_ids)
width = 90
start = next((i for i in range(0, len(test_text) - width, 7)
              if '"' in test_text[i:i + width] and "(" in test_text[i:i + width]), 0)
passage = test_text[start:start + width]
trace = model.hidden_states(vocab.encode(passage))
marks = features(passage)
fig, axes = plt.subplots(len(found), 1, figsize=(width * 0.16, 1.5 * len(found) + 0.8),
                         squeeze=False, layout="constrained")
for ax, (name, unit, r) in zip(axes[:, 0], found, strict=True):
    # Row 0: the unit's activation under each character; row 1: where the feature holds.
    image = ax.imshow(trace[None, :, unit], cmap="coolwarm", vmin=-1, vmax=1, aspect="auto",
                      extent=(-0.5, width - 0.5, 0.5, -0.5))
    ax.imshow(marks[name][None, :], cmap="Greys", vmin=0, vmax=1.6, aspect="auto",
              extent=(-0.5, width - 0.5, 1.5, 0.5))
    ax.set_ylim(1.5, -0.5)
    for i, c in enumerate(passage):
        ax.text(i, 0, {"\n": "¶", " ": "·"}.get(c, c), ha="center", va="center",
                fontsize=8, family="monospace")
    ax.set_xticks([])
    ax.set_yticks([0, 1], [f"unit {unit}", name], fontsize=8)
    ax.set_title(f"unit {unit}: r = {r:+.2f} with '{name}'", fontsize=9, loc="left")
fig.colorbar(image, ax=axes, shrink=0.8, label="hidden unit h (tanh)")
fig.suptitle("Hidden units over held-out text: does each unit's colour (red +1, blue -1) "
             "follow the grey row of its feature?", fontsize=10)
lesson.savefig(fig, "hidden_units")
strengths = [abs(r) for _, _, r in found]
lesson.say(lesson.claim(
    "strongest >= 0.5 and weakest < 0.5", strongest=max(strengths), weakest=min(strengths),
    yes="""Some units follow their feature closely (|r| up to {strongest:.2f}),
        others only loosely (down to {weakest:.2f}).""",
    no="""The correlations range from {weakest:.2f} to {strongest:.2f}."""), """
    Nothing asked the network to track any of them: what a unit tracks, it
    tracks because that helped to predict the next character.
""")

lesson.section("Ask it yourself")
saved = save(lesson.out, model, CONFIG, vocab, length=length, temperature=0.7)
lesson.register(saved)
lesson.say(f"""
    The model is saved in {saved}. Give it the start of a text and it
    writes on (at temperature 0.7):

        make ask-3 Q="def "                 (from the shell)
        microseq.models.load("{Path(saved).parent}").answer(["The "])
""")
lesson.try_this(
    ("--seq-len 4", "Backpropagation now stops after 4 characters, though the state still "
                    "flows across windows. How much worse will the held-out bits per "
                    "character be, and will the 'inside quotes' unit survive?"),
    ("--hidden 16", "With 16 hidden units instead of 128, will the RNN still beat the "
                    "3-gram's bits per character?"),
    ("--text README.md", "On a short text of a different kind, which wins: the RNN or the "
                         "counting models?"))
lesson.finish()
