"""Lesson 2: the RNN cell, and the shapes an RNN comes in.

    the cell       h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh), computed by
                   the library and by hand in numpy: the same numbers
    many-to-one    is the sum of a sequence of numbers positive?
    many-to-many   tag the people, places and dates in generated sentences,
                   with padded batches and a mask
    one-to-many    write a number out in English words ("four hundred twelve")

Every stage prints the shapes of the tensors that flow through it.

    .venv/bin/python lessons/02_rnn_shapes.py [--quick] [--seed S] [--out DIR]
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

import microseq as ms
from microseq import nn
from microseq.data import (
    PAD, START, CharVocab, WordVocab, entity_f1, leak_free_split, minibatches, pad_batch,
    running_sum_sign, tagging,
)
from microseq.lesson import Lesson
from microseq.models.seq2seq import cut_at_pad
from microseq.models.sequence import ManyToMany, ManyToOne, OneToMany, final_hidden
from microseq.optim import Adam
from microseq.reference import rnn_forward
from microseq.train import History, train

lesson = Lesson(2, "The RNN cell and its shapes", arguments={
    "--length": dict(type=int, default=16, metavar="T",
                     help="steps of the many-to-one sequences (default 16)"),
    "--hidden": dict(type=int, default=32, metavar="H",
                     help="hidden units of the many-to-one RNN (default 32)")})
quick = lesson.quick
rng = np.random.default_rng(lesson.seed)
ms.manual_seed(lesson.seed)


def show_shapes(title, stages):
    """Print (stage, array or Tensor or shape) pairs as a small table."""
    rows = "\n".join(f"    {name:<44}{str(getattr(x, 'shape', x)):>16}" for name, x in stages)
    lesson.say(f"{title}\n\n{rows}")


def fit(model, batches, loss_fn, steps, evaluate, desc, lr=3e-3):
    """Adam for `steps` steps: the first three quarters at `lr`, the rest at
    lr / 10, where the noisy late steps settle. Returns one History."""
    optimizer = Adam(model.parameters(), lr=lr)
    first = steps * 3 // 4
    history = History()
    for part, n in enumerate((first, steps - first)):
        optimizer.lr = lr / 10 if part else lr
        done = len(history)
        run = train(model, optimizer, batches, loss_fn, n, seed=lesson.seed + part,
                    evaluate=evaluate, eval_every=max(1, steps // 20),
                    desc=f"{desc}, lr {optimizer.lr:g}")
        history += [(step + done, loss, metrics) for step, loss, metrics in run]
    return history


# ================================================================== the cell
lesson.section("One step of the cell")
D, H, B, T = 3, 4, 2, 5
lesson.say("""
    A recurrent cell keeps a hidden state h, a vector of H numbers, and
    updates it with every input x_t, for t = 1, 2, ..., T, from h_0:
""")
lesson.equation("h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)",
                r"h_t = \tanh(W_{ih}\, x_t + b_{ih} + W_{hh}\, h_{t-1} + b_{hh})")
lesson.say(f"""
    W_ih maps the input into the hidden space, W_hh carries the previous
    state forward, and tanh keeps every unit between -1 and 1. The same
    weights serve every step, which is what makes it recurrent. Here the
    inputs have D = {D} numbers and the state H = {H}, for a batch of B = {B}
    sequences: the batch is the first axis of every array.
    """)
cell = nn.RNNCell(D, H).to(np.float64)   # float64, so "equal" can mean equal to 1e-15
x_t = rng.standard_normal((B, D))
h_prev = rng.standard_normal((B, H))
h_lib = cell(x_t, h_prev).data
W_ih, W_hh, b_ih, b_hh = (p.data for p in (cell.weight_ih, cell.weight_hh,
                                           cell.bias_ih, cell.bias_hh))
h_hand = np.tanh(x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)
# The same step as ONE matrix on the joined vector [x_t, h_(t-1)].
W = np.concatenate([W_ih, W_hh], axis=1)
joined = np.concatenate([x_t, h_prev], axis=1)
h_joined = np.tanh(joined @ W.T + b_ih + b_hh)
show_shapes("The shapes of one step (the library stores W as (out, in), like PyTorch):", [
    ("x_t", x_t), ("h_(t-1)", h_prev), ("W_ih", W_ih), ("W_hh", W_hh), ("b_ih, b_hh", b_ih),
    ("x_t W_ih^T", x_t @ W_ih.T), ("h_(t-1) W_hh^T", h_prev @ W_hh.T), ("h_t", h_lib),
    ("[x_t, h_(t-1)] joined", joined), ("W = [W_ih, W_hh] side by side", W)])
step_diff = max(np.abs(h_lib - h_hand).max(), np.abs(h_lib - h_joined).max())
lesson.say(f"""
    By hand, in numpy, the step is one line:

        h_t = np.tanh(x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)

    It can also be written with a single matrix W = [W_ih, W_hh] applied to
    the joined vector [x_t, h_(t-1)] of D + H numbers, which shows that the
    two matrices are really one, cut in two:

        h_t = np.tanh(np.concatenate([x_t, h_prev], 1) @ W.T + b_ih + b_hh)

    nn.RNNCell and both numpy lines agree to {step_diff:.1e}.
    """)

lesson.section("The cell over a sequence")
layer = nn.RNN(D, H, batch_first=True).to(np.float64)
layer.load_state_dict({f"{name}_l0": p.data for name, p in (
    ("weight_ih", cell.weight_ih), ("weight_hh", cell.weight_hh),
    ("bias_ih", cell.bias_ih), ("bias_hh", cell.bias_hh))})
xs = rng.standard_normal((B, T, D))
h0 = rng.standard_normal((B, H))
out, h_n = layer(xs, h0[None])
h, by_hand = h0, []
for t in range(T):                 # the loop nn.RNN runs, written out in numpy
    h = np.tanh(xs[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
    by_hand.append(h)
by_hand = np.stack(by_hand, axis=1)
reference, _ = rnn_forward(xs.transpose(1, 0, 2), h0, W_ih, W_hh, b_ih, b_hh)
sequence_diff = max(np.abs(out.data - by_hand).max(), np.abs(h_n.data[0] - by_hand[:, -1]).max(),
                    np.abs(out.data - reference.transpose(1, 0, 2)).max())
show_shapes(f"nn.RNN runs the cell over all T = {T} steps (batch_first=True):", [
    ("x: a batch of sequences (B, T, D)", xs), ("h0: the initial state (layers, B, H)", h0[None]),
    ("output: h_t of every step (B, T, H)", out), ("h_n: the last state (layers, B, H)", h_n)])
lesson.say(f"""
    Its outputs equal the numpy loop over the cell equation, and the
    hand-derived reference in microseq.reference, to {sequence_diff:.1e}.
    output[:, -1] and h_n[0] are the same numbers: h_n exists so that a
    stack of layers (or an LSTM's extra memory) can hand all its last states
    on at once.
    """)
lesson.metric("cell_library_vs_numpy_max_diff", max(step_diff, sequence_diff), threshold=1e-12,
              higher_is_better=False)

# The unrolled graph: three steps of a tiny many-to-one model, after backward.
tiny = ManyToOne(2, 3, 1).to(np.float64)
tiny_loss = (tiny(ms.tensor(rng.standard_normal((1, 3, 2)), label="x")) ** 2).sum()
tiny_loss.backward()
graph_file = lesson.draw(tiny_loss, "rnn_unrolled", title="an RNN over 3 steps, then a linear head")
inside_a_box = (
    "Inside a box, nn.RNN runs the cell equation as one fused op, rnn_cell, with its backward "
    "written by hand (lesson 4 builds the same step from matmul, add and tanh)."
    if ms.fast.enabled() else
    "Inside a box, nn.RNN builds the cell equation from matmul, add and tanh (MICROSEQ_FAST=0; "
    "by default it runs it as one fused op, rnn_cell, with its backward written by hand).")
lesson.say(f"""
    {graph_file.name} draws the computation of a tiny RNN over three steps,
    one box per step, followed by a linear head. The inputs of all steps are
    projected by W_ih in one matmul before the loop, so only W_hh enters
    every box. {inside_a_box} Each node is shaded by the size of its
    gradient after backward(); lesson 4 uses the same shading to watch
    gradients fade as they travel back through the steps.
    """)


# ============================================================ many-to-one
lesson.section("Many-to-one: is the sum positive?")
m2o_length, m2o_hidden = lesson.args.length, lesson.args.hidden
m2o_train, m2o_test = (2000, 500) if quick else (5000, 1000)
m2o_steps, m2o_batch = (250, 64) if quick else (2000, 128)
digits, signs = running_sum_sign(m2o_train + m2o_test, m2o_length, lesson.seed)
series = (digits / 9).astype(np.float32)[..., None]      # one number per step, scaled to [-1, 1]
x_train, y_train = series[:m2o_train], signs[:m2o_train]
x_test, y_test = series[m2o_train:], signs[m2o_train:]
lesson.say(f"""
    Each example is a sequence of {m2o_length} whole numbers between -9 and 9,
    for instance {' '.join(f'{v:+d}' for v in digits[0])},
    and the question is whether they add up to more than zero (this one:
    {'yes' if signs[0] else 'no'}). The answer comes once, after the last number,
    so only the final hidden state is read: many inputs, one output. To get
    it right the RNN must keep a running total in its state; near zero a
    single unit of error flips the answer.
    """)
m2o = ManyToOne(1, m2o_hidden, 2)
sample = x_test[:4]
hs, state = m2o.rnn(sample)
show_shapes("Shapes, for a batch of 4:", [
    ("inputs (B, T, 1)", sample), ("rnn output: every h_t (B, T, H)", hs),
    ("h_n (layers, B, H)", state), ("last hidden state h_T (B, H)", final_hidden(state)),
    ("logits for no/yes (B, 2)", m2o(sample))])


def m2o_batches(rng):
    for idx in minibatches(len(x_train), m2o_batch, rng):
        yield x_train[idx], y_train[idx]


def m2o_accuracy(model):
    return {"accuracy": float(np.mean(model(x_test).data.argmax(-1) == y_test))}


m2o_history = fit(m2o, m2o_batches, lambda model, b: ms.cross_entropy(model(b[0]), b[1]),
                  m2o_steps, m2o_accuracy, "many-to-one")
with ms.no_grad():
    m2o_acc = m2o_accuracy(m2o)["accuracy"]
    wrong = m2o(x_test).data.argmax(-1) != y_test
totals = digits[m2o_train:].sum(axis=1)
lesson.say(f"Test accuracy on {m2o_test} new sequences: {m2o_acc:.1%}. " + (lesson.claim(
    "wrong < overall", wrong=np.abs(totals[wrong]).mean(), overall=np.abs(totals).mean(),
    yes=f"""The mistakes sit where the question is hardest: the {int(wrong.sum())} wrong
        answers have sums of average size {{wrong:.1f}}, against {{overall:.1f}} over
        all test sequences.""",
    no=f"""The {int(wrong.sum())} wrong answers do not sit only near zero: their sums
        have an average size of {{wrong:.1f}}, against {{overall:.1f}} over all test
        sequences.""") if wrong.any() else "Not one answer is wrong."))
lesson.metric("many_to_one_accuracy", m2o_acc, threshold=0.9 if quick else 0.95)


# ========================================================== many-to-many
lesson.section("Many-to-many: tagging people, places and dates")
n_sentences = 1500 if quick else 3000
sentences, tag_seqs, tag_names = tagging(n_sentences, lesson.seed)
train_idx, test_idx = leak_free_split([" ".join(s) for s in sentences], n_sentences // 5,
                                      lesson.seed)
vocab = WordVocab([w for i in train_idx for w in sentences[i]], specials=("<pad>",))
tag_id = {tag: i for i, tag in enumerate(tag_names)}
word_ids = [vocab.encode(s) for s in sentences]
tag_ids = [np.array([tag_id[t] for t in tags]) for tags in tag_seqs]
example = int(test_idx[0])
widths = [max(len(w), len(t)) for w, t in zip(sentences[example], tag_seqs[example], strict=True)]
# Words the training sentences use both as (part of) a person and as a place.
kinds = {}
for i in train_idx:
    for w, t in zip(sentences[i], tag_seqs[i], strict=True):
        kinds.setdefault(w, set()).add(t[2:])
ambiguous = sorted(w for w, k in kinds.items() if {"PER", "LOC"} <= k)
lesson.say(f"""
    Now an output at every step: a tag for every word of a sentence. The
    sentences are generated from templates and the tags say where a person,
    a place or a date begins (B-) and continues (I-), or that a word is
    outside every name (O):

        {' '.join(w.ljust(n) for w, n in zip(sentences[example], widths, strict=True))}
        {' '.join(t.ljust(n) for t, n in zip(tag_seqs[example], widths, strict=True))}

    Some words name both people and places ({', '.join(ambiguous)}), so a
    word alone does not give its tag: only the words before it do.
    {len(train_idx)} sentences train the tagger, {len(test_idx)} others test it,
    and no test sentence appears among the training ones. The vocabulary
    has {len(vocab)} words, with id 0 kept for padding.
    """)

lesson.say("""
    Sentences differ in length, but a batch is one array. So every sentence
    is padded with id 0 up to the longest in its batch, and a mask records
    which positions are real. The loss is averaged over the real positions
    only: padding gets the target that cross_entropy ignores, so it adds
    nothing to the loss and sends no gradient back. Since the RNN reads left
    to right, padding after a sentence cannot change its real outputs either.
    """)
tagger = ManyToMany(32, 64, len(tag_names), vocab_size=len(vocab))
batch_ids, batch_mask = pad_batch([word_ids[i] for i in test_idx[:4]], pad_id=0)
batch_tags, _ = pad_batch([tag_ids[i] for i in test_idx[:4]], pad_id=0)
hs, _ = tagger.rnn(tagger.embed(batch_ids))
show_shapes("Shapes, for a batch of 4 sentences padded to the longest:", [
    ("word ids (B, T)", batch_ids), ("mask: True on real words (B, T)", batch_mask),
    ("embedded words (B, T, E)", tagger.embed(batch_ids)),
    ("rnn output: every h_t (B, T, H)", hs), ("logits, one row per word (B, T, tags)",
                                              tagger.head(hs)),
    (f"loss over the {int(batch_mask.sum())} real words", tagger.loss(batch_ids, batch_tags,
                                                                        batch_mask))])


def padded(indices):
    ids, mask = pad_batch([word_ids[i] for i in indices], pad_id=0)
    tags, _ = pad_batch([tag_ids[i] for i in indices], pad_id=0)
    return ids, tags, mask


def tag_batches(rng):
    for idx in minibatches(len(train_idx), 32, rng):
        yield padded(train_idx[idx])


test_ids, test_tags, test_mask = padded(test_idx)


def tag_scores(model):
    """Token accuracy over real words, and entity-level F1."""
    predicted = model(test_ids).data.argmax(-1)
    accuracy = float(np.mean(predicted[test_mask] == test_tags[test_mask]))
    guesses = [[tag_names[k] for k in row[:len(tag_seqs[i])]]
               for row, i in zip(predicted, test_idx, strict=True)]
    return {"token_accuracy": accuracy,
            "entity_f1": entity_f1([tag_seqs[i] for i in test_idx], guesses)}


tag_history = fit(tagger, tag_batches, lambda model, b: model.loss(*b),
                  150 if quick else 600, tag_scores, "tagger")
with ms.no_grad():
    scores = tag_scores(tagger)
lesson.say(f"""
    On the {len(test_idx)} test sentences the tagger gets {scores['token_accuracy']:.1%} of
    the words right and an entity-level F1 of {scores['entity_f1']:.3f}: an entity
    counts only if its type, first word and last word are all right.
    """)


def ambiguous_examples():
    """Two test sentences where the same word is a person in one and a place in the other."""
    for word in ambiguous:
        found = {}
        for i in test_idx:
            for position, (w, t) in enumerate(zip(sentences[i], tag_seqs[i], strict=True)):
                if w == word and t[2:] in ("PER", "LOC"):
                    found.setdefault(t[2:], (i, position))
        if len(found) == 2:
            return word, [found["PER"], found["LOC"]]
    return None, []


word, pair = ambiguous_examples()
if pair:
    fig, axes = plt.subplots(len(pair), 1, figsize=(10, 6), layout="constrained")
    for ax, (i, position) in zip(axes, pair, strict=True):
        with ms.no_grad():
            probs = ms.softmax(tagger(word_ids[i][None]), axis=-1).data[0]
        image = ax.imshow(probs.T, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(sentences[i])), sentences[i], fontsize=8)
        ax.set_yticks(range(len(tag_names)), tag_names, fontsize=8)
        ax.set(xlabel="word of the sentence (the ambiguous one in bold)", ylabel="tag")
        ax.get_xticklabels()[position].set_fontweight("bold")
        guess = tag_names[int(probs[position].argmax())]
        ax.set_title(f"'{word}' tagged {guess} (true: {tag_seqs[i][position]})", fontsize=9)
    fig.colorbar(image, ax=axes, label="probability of the tag")
    fig.suptitle(f"Tag probabilities for every word (many-to-many): is '{word}' read from "
                 "its neighbours?")
    lesson.savefig(fig, "tagging")
    lines = []
    for i, _ in pair:
        with ms.no_grad():
            guess = tagger(word_ids[i][None]).data[0].argmax(-1)
        lines.append("    " + " ".join(f"{w}/{tag_names[g]}"
                                       for w, g in zip(sentences[i], guess, strict=True)))
    lesson.say(f"The word '{word}' in two test sentences, with the tags predicted:\n\n"
               + "\n".join(lines),
               "tagging.png shows the probability of every tag for every word of both.")
lesson.metric("tagging_entity_f1", scores["entity_f1"], threshold=0.9 if quick else 0.95)
lesson.metric("tagging_token_accuracy", scores["token_accuracy"],
              threshold=0.95 if quick else 0.98)


# =========================================================== one-to-many
lesson.section("One-to-many: writing numbers out in words")
ONES = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def in_words(n):
    """0..999 in English words: 412 -> "four hundred twelve", 70 -> "seventy"."""
    hundreds, rest = divmod(n, 100)
    words = [f"{ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        words.append(TENS[rest // 10] + (f"-{ONES[rest % 10]}" if rest % 10 else ""))
    elif rest >= 10:
        words.append(TEENS[rest - 10])
    elif rest or not hundreds:
        words.append(ONES[rest])
    return " ".join(words)


numbers = np.arange(1000)
texts = [in_words(n) for n in numbers]
chars = CharVocab("".join(texts), specials=(PAD, START))
# The one input: the three digits, each as a one-hot vector of 10, side by side.
digit_matrix = np.array([[int(d) for d in f"{n:03d}"] for n in numbers])
conditions = np.zeros((len(numbers), 30), np.float32)
conditions[numbers[:, None], digit_matrix + [0, 10, 20]] = 1
targets, _ = pad_batch([chars.encode(t) for t in texts], chars.stoi[PAD],
                       length=max(map(len, texts)) + 1)   # every answer ends with a PAD
previous = np.concatenate([np.full((len(numbers), 1), chars.stoi[START]), targets[:, :-1]], 1)
order = rng.permutation(len(numbers))
o2m_test, o2m_train = order[:200], order[200:]
lesson.say(f"""
    Last, one input and many outputs. The input is a number from 0 to 999,
    given as one vector: its three digits, each one-hot, side by side (30
    numbers). The output is the number in words, one character at a time:
    {numbers[order[0]]} -> "{texts[order[0]]}". Answers end with "{PAD}" and are up to
    {targets.shape[1]} characters long.

    The input sets the first hidden state, h_0 = tanh(W c + b), and is shown
    again beside the previous character at every step: a plain RNN tends to
    forget what it was told {targets.shape[1]} steps earlier (lesson 4 shows why),
    so we do not ask it to remember. While training, the previous character
    is the true one (teacher forcing); when writing on its own, the model
    is fed its own last character, starting from "{START}".

    {len(o2m_train)} numbers train it; the other {len(o2m_test)} are never seen, and an
    answer counts only if every character is right.
    """)
o2m = OneToMany(30, len(chars), 16, 64)
sample = o2m_test[:4]
first_state = o2m.initial_state(conditions[sample])
logits = o2m(conditions[sample], previous[sample])
show_shapes("Shapes, for a batch of 4 numbers (teacher forcing):", [
    ("the one input: three one-hot digits (B, 30)", conditions[sample]),
    ("h_0 = tanh(W c + b) (layers, B, H)", first_state),
    ("previous characters (B, T)", previous[sample]),
    ("their embeddings (B, T, E)", o2m.embed(previous[sample])),
    ("each step's input: embedding and c (B, T, E+30)",
     o2m.step_inputs(ms.tensor(conditions[sample]), previous[sample])),
    ("logits for the next character (B, T, V)", logits),
    ("greedy answer written alone (B, T)", o2m.generate(conditions[sample], chars.stoi[START],
                                                        targets.shape[1]))])


def o2m_batches(rng):
    for idx in minibatches(len(o2m_train), 64, rng):
        rows = o2m_train[idx]
        yield conditions[rows], previous[rows], targets[rows]


def written(model, rows):
    ids = model.generate(conditions[rows], chars.stoi[START], targets.shape[1])
    return cut_at_pad(ids, chars.stoi[PAD])


def o2m_accuracy(model):
    return {"exact": float(np.mean(np.all(written(model, o2m_test) == targets[o2m_test],
                                          axis=1)))}


o2m_history = fit(o2m, o2m_batches,
                  lambda model, b: ms.cross_entropy(model(b[0], b[1]), b[2]),
                  300 if quick else 1500, o2m_accuracy, "one-to-many", lr=5e-3)
with ms.no_grad():
    o2m_exact = o2m_accuracy(o2m)["exact"]
    answers = written(o2m, o2m_test)
right = np.all(answers == targets[o2m_test], axis=1)
# A few answers, and every mistake among the first 50 (at most four).
picks = [*range(6), *[k for k in np.flatnonzero(~right) if k < 50][:4]]
shown = [f"    {numbers[o2m_test[k]]:>3} -> {chars.decode(answers[k]).split(PAD)[0]}"
         + ("" if right[k] else f"   (should be: {texts[o2m_test[k]]})")
         for k in sorted(set(picks))]
lesson.say("Numbers the model never saw, written out on its own:\n\n" + "\n".join(shown),
           f"Exact-sequence accuracy on the {len(o2m_test)} unseen numbers: {o2m_exact:.1%}.")
n_wrong, small = int(np.sum(~right)), int(np.sum(~right & (o2m_test < 100)))
if n_wrong:
    lesson.say(lesson.claim(
        "wrong_small > test_small", wrong_small=small / n_wrong,
        test_small=np.mean(o2m_test < 100),
        yes=f"""{"All" if small == n_wrong else f"{small} of the"} {n_wrong} wrong answers are
            numbers below 100 ({{wrong_small:.0%}} of the mistakes, against
            {{test_small:.0%}} of the test): they follow a pattern of their own (no
            "hundred") and are only a tenth of the training set.""",
        no=f"""{small} of the {n_wrong} wrong answers are numbers below 100, no more
            than their share of the test ({{test_small:.0%}}): the mistakes are
            spread over all sizes."""))
lesson.metric("one_to_many_exact_accuracy", o2m_exact, threshold=0.75 if quick else 0.90)


# ============================================================== the curves
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
curves = ((m2o_history, "accuracy", "many-to-one: sign of the sum", "test accuracy"),
          (tag_history, "entity_f1", "many-to-many: tagging", "test entity F1"),
          (o2m_history, "exact", "one-to-many: numbers in words", "test exact match"))
for ax, (history, key, title, label) in zip(axes, curves, strict=True):
    ax.plot(history.steps, history.losses, color="0.7", lw=0.8, label="training loss")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss (log scale)", color="0.5")
    ax.set_title(title, fontsize=10)
    twin = ax.twinx()
    twin.plot(*history.metric(key), color="C3", label=label)
    twin.set_ylim(0, 1.02)
    twin.set_ylabel(label, color="C3")
fig.suptitle("Training, step by step: the training loss (grey, left axis) against the "
             "test score (red, right axis)", fontsize=11)
fig.tight_layout()
lesson.savefig(fig, "training")
lesson.try_this(
    ("--length 64", "Summing the signs of 64 numbers instead of 16, does the many-to-one RNN "
                    "still reach 95 %, or does the start of the sequence fade from its state?"),
    ("--hidden 2", "With only 2 hidden units, can the RNN still keep a running sum? What is "
                   "the least it needs?"))
lesson.finish()
