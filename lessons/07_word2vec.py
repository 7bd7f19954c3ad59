"""Lesson 7: word2vec, CBOW and skip-gram with negative sampling.

A word is known by the company it keeps. Both models turn that sentence
into a training signal:

    CBOW        the mean of the context words' vectors predicts the centre word
    skip-gram   the centre word's vector predicts each of its context words

and both replace the softmax over the whole vocabulary by negative sampling:
tell the true word apart from a few random ones.

The vectors are measured twice: on a generated corpus whose word classes we
planted (each word's nearest neighbours should be its classmates), and on
the documentation that ships with Python (pairs of related words we chose,
such as read/write, should be near each other). Then we look: nearest
neighbours, a PCA map, analogies.

    .venv/bin/python lessons/07_word2vec.py [--quick] [--seed S] [--out DIR] [--text FILE]
"""
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq import nn
from microseq.data import (
    DataError, WordVocab, class_grammar_corpus, load_text, pydoc_topics, stdlib_docstrings, words,
)
from microseq.lesson import Lesson
from microseq.models.word2vec import (
    CBOW, NegativeSampler, SkipGram, analogy, cbow_windows, class_purity, keep_probability,
    make_batches, nearest, partner_ranks, pca, skipgram_pairs,
)
from microseq.optim import Adam
from microseq.reference.word2vec import cbow_ns_loss_and_grads, skipgram_ns_loss_and_grads
from microseq.train import train

# Related pairs, chosen for their meaning before any model was trained.
RELATED = """
    true false    read write     key value       start end        open close
    get set       list tuple     int float       keys values      upper lower
    first last    left right     input output    positional keyword
    getattr setattr              getitem setitem encode decode    add remove
    append extend str bytes      args kwargs     enter exit       break continue
    try except    global nonlocal                local global     lists tuples
    dict dictionary              file directory  before after     header body
    prefix suffix lowercase uppercase            if else          day month
    """.split()
RELATED = list(zip(RELATED[::2], RELATED[1::2], strict=True))
# "a is to b as c is to d", each answer a word of the vocabulary.
ANALOGIES = [
    ("getattr", "setattr", "getitem", "setitem"),
    ("list", "lists", "tuple", "tuples"),
    ("class", "classes", "function", "functions"),
    ("key", "keys", "value", "values"),
    ("upper", "lower", "uppercase", "lowercase"),
    ("first", "last", "start", "end"),
    ("int", "integer", "str", "string"),
    ("positional", "keyword", "args", "kwargs"),
    ("encode", "encoded", "decode", "decoded"),
]
PROBES = "true list read exception int dictionary import string".split()
KINDS = {"cbow": CBOW, "skipgram": SkipGram}
NAMES = {"cbow": "CBOW", "skipgram": "skip-gram"}

lesson = Lesson(7, "word2vec: CBOW and skip-gram with negative sampling", arguments={
    "--text": dict(help="learn from this UTF-8 text file instead of Python's own documentation"),
    "--dim": dict(type=int, default=None, metavar="D",
                  help="dimensions of the word vectors (default 50 quick, 100 full)"),
    "--window": dict(type=int, default=5, metavar="W",
                     help="context words on each side of a word, on real text (default 5)"),
    "--negatives": dict(type=int, default=5, metavar="K",
                        help="random negative words per example (default 5)"),
})
quick = lesson.quick
seed = lesson.seed
DIM = lesson.args.dim or (50 if quick else 100)
WINDOW, NEGATIVES = lesson.args.window, lesson.args.negatives
MIN_COUNT, SUBSAMPLE_T = 5, 1e-3
BATCH = {"cbow": 512, "skipgram": 1024}
EPOCHS = 1 if quick else 5
MIN_STEPS = 50 if quick else 300  # so that a short --text still trains for a while
LR = 0.01

# Read the real text first, so that a bad --text fails before any training.
source = lesson.args.text or "pydoc_data.topics and standard-library docstrings"
text = load_text(source) if lesson.args.text else pydoc_topics() + "\n\n" + stdlib_docstrings()
text_tokens = words(text)
text_vocab = WordVocab(text_tokens, min_count=MIN_COUNT, unk=None)
if len(text_vocab) < 2 * NEGATIVES or text_vocab.counts.sum() < 10 * WINDOW:
    raise DataError(f"{source}: too few words to learn vectors from: {len(text_vocab)} distinct "
                    f"words occur at least {MIN_COUNT} times ({text_vocab.counts.sum():,} "
                    f"occurrences), and {2 * NEGATIVES} such words with {10 * WINDOW} occurrences "
                    "are needed (give a longer file)")


def label_apart(ax, xy, labels, colours=None, fontsize=7):
    """Write labels beside their points, in order, skipping any that would
    overlap one already written (a word map stays legible); returns how many
    were written."""
    ax.figure.canvas.draw()  # fixes the axis limits, and gives text its size
    renderer, placed = ax.figure.canvas.get_renderer(), []
    offsets = [((3, 2), "left", "bottom"), ((3, -2), "left", "top"),
               ((-3, 2), "right", "bottom"), ((-3, -2), "right", "top")]
    for k, (point, label) in enumerate(zip(xy, labels, strict=True)):
        for offset, ha, va in offsets:
            note = ax.annotate(label, point, xytext=offset, textcoords="offset points",
                               ha=ha, va=va, fontsize=fontsize,
                               color=None if colours is None else colours[k])
            box = note.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                placed.append(box)
                break
            note.remove()
    return len(placed)


# ------------------------------------------------------------------ the idea
lesson.section("Words from their neighbours")
example = "a tuple is an immutable sequence of values".split()
ctx, centre = cbow_windows(np.arange(len(example)), 2)
example_pairs = skipgram_pairs(np.arange(len(example)), 2)
ctx_words = [example[i] for i in ctx[2]]
sg_words = [example[x] for c, x in zip(*example_pairs, strict=True) if c == centre[2]]
lesson.say(f"""
    word2vec learns a vector for every word from nothing but running text.
    Take the sentence "{' '.join(example)}" and a window of two words on
    each side of the centre word "{example[centre[2]]}".

    CBOW (continuous bag of words) averages the vectors of the context
    words {ctx_words} and asks that average to predict the centre word.

    Skip-gram turns it around: the centre word's vector must predict each
    context word in turn, one (centre, context) pair at a time:
    {', '.join(f'({example[centre[2]]}, {w})' for w in sg_words)}.

    Words that keep the same company get pushed towards the same answers,
    so their vectors end up close together.
    """)

lesson.section("Negative sampling")
lesson.say(f"""
    Predicting one word out of thousands with a softmax would cost a dot
    product with every word of the vocabulary at every step. Negative
    sampling asks an easier question: is this the word that really occurred,
    or one of {NEGATIVES} drawn at random? Every word w has an input vector v_w
    (the word vector we keep) and an output vector u_w. From the hidden
    vector h (v_centre for skip-gram, the mean context vector for CBOW):

        loss = -log sigmoid(u_true . h) - sum over negatives k of log sigmoid(-u_k . h)

    The negatives are drawn from the word counts raised to the power 0.75,
    which gives rare words a bigger share than they have in the text. A
    negative equal to the true word would ask the model to say both yes and
    no to the same word, so the sampler draws it again.

    Frequent words are also thinned out: each occurrence of a word w is kept
    with probability sqrt(t / f(w)), f(w) being its share of the text
    (t = {SUBSAMPLE_T:g}). "the" then stops crowding every window, and each
    epoch sees a different random subset.
    """)

# ------------------------------------------------------- the gradient, twice
lesson.section("The gradient, by hand and by autograd")
table = nn.Embedding(4, 3)
table(np.array([1, 1, 1, 2])).sum().backward()
lesson.say(f"""
    The lookups are nn.Embedding: rows of a table picked by word id. When a
    word occurs several times in one batch its row receives the sum of all
    its gradients; looking up ids [1, 1, 1, 2] and summing gives row 1 a
    gradient of {table.weight.grad[1].tolist()} and row 2 {table.weight.grad[2].tolist()}.
    """)
rng = np.random.default_rng(seed)
V, D, B, C, K = 30, 8, 16, 2 * WINDOW, NEGATIVES
batch_ids = {"cbow": rng.integers(0, V, (B, C)), "skipgram": rng.integers(0, V, B)}
positives = rng.integers(0, V, B)
negative_ids = NegativeSampler(np.ones(V)).sample(positives, K, rng)
references = {"cbow": cbow_ns_loss_and_grads, "skipgram": skipgram_ns_loss_and_grads}
lines = []
for kind, Model in KINDS.items():
    model = Model(V, D).to(np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    loss = model(batch_ids[kind], positives, negative_ids)
    loss.backward(retain_graph=True)
    ref_loss, grads = references[kind](model.in_embed.weight.data, model.out_embed.weight.data,
                                       batch_ids[kind], positives, negative_ids)
    gap = max(np.abs(model.in_embed.weight.grad - grads["W_in"]).max(),
              np.abs(model.out_embed.weight.grad - grads["W_out"]).max())
    lines.append(f"    {NAMES[kind]:<10} loss {loss.item():.10f} (by hand {ref_loss:.10f}), "
                 f"largest gradient difference {gap:.1e}")
    if kind == "cbow":
        graph = lesson.draw(loss, "cbow_graph", title="CBOW loss with negative sampling")
lesson.say("microseq.reference.word2vec derives the same gradients by hand. On a random "
           f"batch of {B} in float64 the two agree to rounding:\n\n" + "\n".join(lines))
lesson.say(f"""
    The CBOW graph is in {graph.name}: two lookups, a mean, one batched
    matrix product for all the scores, and binary cross-entropy.
    """)


def train_word2vec(kind, ids, counts, epochs, window, t, batch_size, evaluate=None,
                   desc=None):
    """A fresh model of this kind, trained with Adam for about `epochs`
    passes over the subsampled text; returns (model, history, seconds).

    An epoch has about one example per kept token for CBOW and window + 1
    pairs per kept token for skip-gram (its window is shrunk at random).
    """
    kept = keep_probability(counts, t)[ids].sum()
    per_token = 1 if kind == "cbow" else window + 1
    steps = max(MIN_STEPS, int(epochs * kept * per_token / batch_size))
    ms.manual_seed(seed)
    model = KINDS[kind](len(counts), DIM)
    batches = make_batches(kind, ids, counts, window=window, batch_size=batch_size,
                           negatives=NEGATIVES, t=t)
    start = time.perf_counter()
    history = train(model, Adam(model.parameters(), lr=LR), batches,
                    lambda model, batch: model(*batch), steps, seed=seed, evaluate=evaluate,
                    eval_every=max(1, steps // 10), desc=desc or NAMES[kind])
    return model, history, time.perf_counter() - start


# ------------------------------------------------------ planted structure
lesson.section("A corpus with planted structure")
tokens, word_class = class_grammar_corpus(1000 if quick else 5000, seed)
vocab = WordVocab(tokens, unk=None)
ids = vocab.encode(tokens)
class_words = sorted(word_class)
class_ids = vocab.encode(class_words)
classes = [word_class[w] for w in class_words]
lesson.say(f"""
    Before trusting what the vectors say about real text, we test them where
    the answer is known. A small grammar writes {len(tokens):,} tokens of
    sentences like "{' '.join(tokens[:tokens.index('.') + 1])}", filling each
    slot with a word of one class ({', '.join(sorted(set(classes)))}; eight
    words each). Words of a class are interchangeable, so each word's five
    nearest neighbours by cosine, out of all {len(vocab)} words, should be
    its classmates.
    """)
lesson.say("""
    The sentences are short and every word is common, so here the window is
    two words on each side and nothing is subsampled.
    """)
planted = {}
for kind in KINDS:
    model, history, seconds = train_word2vec(kind, ids, vocab.counts, epochs=2, window=2,
                                             t=1.0, batch_size=256,
                                             desc=f"{NAMES[kind]}, planted")
    planted[kind] = model
    purity = class_purity(model.vectors, class_ids, classes, k=5)
    key = f"planted_{kind}_neighbour_purity"
    lesson.say(f"{NAMES[kind]}: {len(history)} steps in {seconds:.1f} s; " + lesson.claim(
        f"{key} >= 0.9", **{key: purity},
        yes=f"""the nearest neighbours are classmates, as they should be: {{{key}:.3f}}
            of the 5 nearest are in the word's own class.""",
        no=f"""only {{{key}:.3f}} of the 5 nearest neighbours are in the word's own
            class: the planted classes are not found yet."""))
    lesson.metric(f"planted_{kind}_neighbour_purity", purity, threshold=0.9)

fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), layout="constrained")
colour = {name: f"C{i}" for i, name in enumerate(sorted(set(classes)))}
maps = {kind: pca(model.vectors[class_ids]) for kind, model in planted.items()}
for ax, (kind, xy) in zip(axes, maps.items(), strict=True):
    for name in colour:
        mine = [j for j, c in enumerate(classes) if c == name]
        ax.scatter(xy[mine, 0], xy[mine, 1], color=colour[name], label=name, s=18)
    ax.set(xlabel="first principal component", ylabel="second principal component",
           title=f"{NAMES[kind]}: does each class form its own cluster?")
    ax.legend(fontsize=7)
fig.canvas.draw()  # lays the figure out once: labels are placed on its final positions
fig.set_layout_engine("none")
for ax, xy in zip(axes, maps.values(), strict=True):
    label_apart(ax, xy, class_words, [colour[c] for c in classes])
lesson.savefig(fig, "planted_pca")

# --------------------------------------------------------------- real text
lesson.section("Real text")
tokens, vocab = text_tokens, text_vocab
ids = vocab.encode([w for w in tokens if w in vocab.stoi])
pairs = [(a, b) for a, b in RELATED if a in vocab.stoi and b in vocab.stoi]
a_ids = vocab.encode([a for a, _ in pairs] + [b for _, b in pairs])
b_ids = vocab.encode([b for _, b in pairs] + [a for a, _ in pairs])
keep = keep_probability(vocab.counts, SUBSAMPLE_T)
sampler = NegativeSampler(vocab.counts)
top = vocab.itos[0]
lesson.say(f"""
    Now real text: {source}, {len(tokens):,} words. The {len(vocab):,} words
    seen at least {MIN_COUNT} times make the vocabulary; the rest are dropped.
    The most frequent word, "{top}", is {vocab.counts[0] / vocab.counts.sum():.1%} of
    the text; subsampling keeps {keep[0]:.0%} of its occurrences, and it
    makes up {sampler.probs[0]:.1%} of the negatives. The rarest words are kept
    {keep[-1]:.0%} of the time.

    Both models learn {DIM}-dimensional vectors with a window of {WINDOW} words
    on each side and {NEGATIVES} negatives per example, trained with Adam
    (learning rate {LR}) for {EPOCHS} epoch(s) and at least {MIN_STEPS} steps.
    CBOW makes one example per word of the text, skip-gram about {WINDOW + 1}
    pairs, so an epoch of skip-gram is several times the work; we give it
    batches twice as large.
    """)
if pairs:
    lesson.say(f"""
        The measure: {len(pairs)} pairs of related words chosen by meaning
        (true/false, read/write, key/value, getattr/setattr, ...). For each
        word of a pair we rank every other word of the vocabulary by cosine
        similarity and note where its partner lands; rank 1 is the nearest
        word, and a random partner would land near rank {len(vocab) // 2}.
        Both directions count, so there are {2 * len(pairs)} ranks per model.
        """)


def median_rank(model):
    return {"median_rank": float(np.median(partner_ranks(model.vectors, a_ids, b_ids)))}


real, histories, seconds = {}, {}, {}
for kind in KINDS:
    real[kind], histories[kind], seconds[kind] = train_word2vec(
        kind, ids, vocab.counts, EPOCHS, WINDOW, SUBSAMPLE_T, BATCH[kind],
        evaluate=median_rank if pairs else None)
    lesson.say(f"{NAMES[kind]}: {len(histories[kind])} steps of {BATCH[kind]} examples "
               f"in {seconds[kind]:.1f} s")

if pairs:
    ranks = {kind: partner_ranks(model.vectors, a_ids, b_ids) for kind, model in real.items()}
    n = len(pairs)
    rows = "\n".join(
        f"    {a + ' / ' + b:<22}" + "".join(
            f"{ranks[kind][i]:>8}{ranks[kind][n + i]:>6}" for kind in KINDS)
        for i, (a, b) in enumerate(pairs))
    lesson.say("Rank of the partner (left word -> right word, then right -> left):\n\n"
               f"    {'pair':<22}{'CBOW':>14}{'skip-gram':>14}\n{rows}")
    for kind in KINDS:
        median = float(np.median(ranks[kind]))
        lesson.say(f"{NAMES[kind]}: median partner rank {median:g} of {len(vocab) - 1} "
                   f"(trained in {seconds[kind]:.1f} s)")
        lesson.metric(f"{kind}_median_partner_rank", median,
                      threshold=100 if quick else 50, higher_is_better=False)
    best = np.min([ranks[kind][half] for kind in KINDS for half in (slice(n), slice(n, None))],
                  axis=0)
    misses = [f"{x}/{y}" for (x, y), r in zip(pairs, best, strict=True) if r > 50]
    medians = {f"{kind}_median_partner_rank": float(np.median(ranks[kind])) for kind in KINDS}
    lesson.say(lesson.claim(
        "cbow_median_partner_rank <= 5 and skipgram_median_partner_rank <= 5", **medians,
        chance_rank=(len(vocab) - 1) / 2,  # a partner placed at random
        yes="""Most partners land within the first few places (median rank
            {cbow_median_partner_rank:g} for CBOW, {skipgram_median_partner_rank:g}
            for skip-gram).""",
        no="""Half the partners land further down than the first few places: the
            median rank is {cbow_median_partner_rank:g} for CBOW and
            {skipgram_median_partner_rank:g} for skip-gram; chance is about
            {chance_rank:g}.""",
        short="""This quick run is too short for most partners to land within the
            first few places (median rank {cbow_median_partner_rank:g} for CBOW,
            {skipgram_median_partner_rank:g} for skip-gram; chance is about
            {chance_rank:g})."""), f"""
        Pairs that no model puts in the top 50 in either direction:
        {', '.join(misses) or 'none'}. Related in meaning, such words can still
        seldom appear in the same kind of sentence in this text, or be rare
        enough that their vectors are still noisy: the vectors know only the
        company a word keeps.
        """)
else:
    lesson.say("None of the related pairs occur in this text, so there is no rank to report.")

# ------------------------------------------------------------- looking
lesson.section("Nearest neighbours")
probes = [w for w in PROBES if w in vocab.stoi] or vocab.itos[20:26]
for kind, model in real.items():
    neighbours, _ = nearest(model.vectors, vocab.encode(probes), k=6)
    lines = "\n".join(f"    {w:<12}" + " ".join(vocab.decode(row)) for w, row in
                      zip(probes, neighbours, strict=True))
    lesson.say(f"{NAMES[kind]}, the six words closest by cosine:\n\n{lines}")

asked = [q for q in ANALOGIES if all(w in vocab.stoi for w in q)]
if asked:
    lesson.section("Analogies")
    a, b, c, d = (vocab.encode([q[i] for q in asked]) for i in range(4))
    lesson.say("""
        "a is to b as c is to ?": take the word nearest to b - a + c (unit
        vectors, leaving out a, b and c). This can work only where the text
        shows the relation often; the tables below show for which of these
        pairs it did.
        """)
    for kind, model in real.items():
        answers = analogy(model.vectors, a, b, c, k=5)
        hits = (answers == d[:, None]).any(axis=1)
        lines = "\n".join(
            f"    {' '.join(q[:2])} :: {q[2]} ?  " + " ".join(vocab.decode(row[:3]))
            + ("   *" if hit else "")
            for q, row, hit in zip(asked, answers, hits, strict=True))
        lesson.say(f"{NAMES[kind]}: the expected answer is among the first five for "
                   f"{hits.sum()} of {len(asked)} (marked *); the first three shown:\n\n{lines}")

# ------------------------------------------------------------------ figures
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for kind in KINDS:
    history = histories[kind]
    losses = np.convolve(history.losses, np.ones(20) / 20, mode="valid")
    epochs = (np.arange(len(losses)) + 20) / len(history) * EPOCHS
    axes[0].plot(epochs, losses, label=NAMES[kind])
    if pairs:
        steps, values = history.metric("median_rank")
        axes[1].plot(np.array(steps) / len(history) * EPOCHS, values, "o-", label=NAMES[kind])
axes[0].set(title="training loss (running mean of 20 steps): falling?", xlabel="epoch",
            ylabel="loss")
axes[1].set(title="median rank of a related word's partner: lower is better", xlabel="epoch",
            ylabel="median rank (log scale)", yscale="log")
for ax in axes:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
fig.tight_layout()
lesson.savefig(fig, "training")

if pairs:
    fig, ax = plt.subplots(figsize=(8, 0.28 * n + 1.5))
    rows = np.arange(n)
    for kind, marker in zip(KINDS, "ox", strict=True):
        for half, offset in ((slice(None, n), -0.12), (slice(n, None), 0.12)):
            ax.scatter(ranks[kind][half], rows + offset, marker=marker, s=18,
                       color="C0" if kind == "cbow" else "C1",
                       label=NAMES[kind] if offset < 0 else None)
    ax.axvline(50, color="k", ls="--", lw=1, label="rank 50")
    ax.axvline(len(vocab) / 2, color="0.6", ls=":", lw=1, label="chance (half the vocabulary)")
    ax.set(xscale="log", yticks=rows, yticklabels=[f"{x} / {y}" for x, y in pairs],
           xlabel="rank of the partner by cosine (both directions)",
           title="Related pairs: where each word's partner lands")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    lesson.savefig(fig, "partner_ranks")

frequent = np.arange(min(100, len(vocab)))
fig, axes = plt.subplots(1, 2, figsize=(14, 7), layout="constrained")
maps = {kind: pca(model.vectors[frequent]) for kind, model in real.items()}
for ax, xy in zip(axes, maps.values(), strict=True):
    ax.scatter(xy[:, 0], xy[:, 1], s=8)
    ax.set(xlabel="first principal component", ylabel="second principal component",
           title="\n")  # two lines, filled in once the labels are placed
fig.canvas.draw()
fig.set_layout_engine("none")
for ax, (kind, xy) in zip(axes, maps.items(), strict=True):
    shown = label_apart(ax, xy, [vocab.itos[i] for i in frequent], fontsize=8)
    ax.set_title(f"{NAMES[kind]}: the {len(frequent)} most frequent words; which sit together?\n"
                 f"({shown} labelled, most frequent first; the others would overlap)",
                 fontsize=10)
lesson.savefig(fig, "pca")

lesson.say("""
    pca.png maps the most frequent words on the two directions along which
    their vectors vary most. Two dimensions keep only a sliver of what the
    full vectors hold, so the map is a hint, not a measurement.
    """)
if not lesson.args.text:
    lesson.say("""
        Look for groups: the one-letter names of code examples (x, y, n, i),
        the words of classes and objects (class, instance, method, attribute,
        self), and the little words of English crowding together.
        """)
lesson.try_this(
    ("--negatives 1", "With a single random word to push away per example, do related "
                      "pairs still find their partners (median rank), and which model suffers "
                      "more?"),
    ("--window 1", "Seeing only the next and previous word, does skip-gram get better or worse "
                   "at the related pairs? Which kind of similarity does a narrow window favour?"),
    ("--dim 5", "Can 5 numbers per word still separate the planted classes?"))
lesson.finish()
