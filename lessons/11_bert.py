"""Lesson 11: BERT-style pretraining, then fine-tuning with few labels.

A Transformer encoder learns to fill in hidden words of Python's own help
texts and docstrings (no labels needed). Then it learns a labelled task,
which part of the standard library a docstring sentence comes from, from
only a handful of labelled sentences, against the same encoder trained
from scratch on the same labels.

    .venv/bin/python lessons/11_bert.py [--quick] [--seed S] [--out DIR] [--text FILE]
"""
import copy
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import microseq as ms
from microseq import nn
from microseq.data import DataError, load_text, minibatches, pydoc_topics, stdlib_docstrings, words
from microseq.data.tokens import IGNORE_INDEX, WordTokenizer, mask_tokens
from microseq.data.topics import TOPICS, docstring_topics, label_budget, topic_split
from microseq.lesson import Lesson
from microseq.models import save
from microseq.models.bert import Bert, accuracy, fill_blanks
from microseq.models.ngram import NgramLM
from microseq.optim import Adam
from microseq.train import train

started = time.perf_counter()
lesson = Lesson(11, "BERT-style pretraining, then fine-tuning with few labels",
                arguments={"--text": dict(help="pretrain on this UTF-8 text file instead of "
                                               "Python's help texts and docstrings")})
quick = lesson.quick
if quick:  # a few seconds: every step of the story, on a tiny model
    VOCAB, D_MODEL, FF, PRE_STEPS, FT_STEPS = 500, 32, 64, 60, 10
    BUDGETS, SEEDS = (4, 16), 2
else:
    VOCAB, D_MODEL, FF, PRE_STEPS, FT_STEPS = 2000, 64, 128, 4000, 80
    BUDGETS, SEEDS = (8, 32, 128), 3
T, HEADS, LAYERS, BATCH, FT_BATCH = 32, 4, 2, 32, 16
PRE_LR, FT_LR, WARMUP = 3e-3, 1e-3, 50
N_TEST_PER_TOPIC = 80
rng = np.random.default_rng(lesson.seed)

# ---------------------------------------------------------------- tokens
lesson.section("Tokens")
try:
    corpus = load_text(lesson.args.text) if lesson.args.text else (
        pydoc_topics() + "\n\n" + stdlib_docstrings())
except DataError as e:
    sys.exit(f"lesson 11: {e}")
if len(words(corpus)) < 50 * (T - 2):
    sys.exit(f"lesson 11: {lesson.args.text}: {len(words(corpus)):,} words make fewer than 50 "
             f"windows of {T - 2}, too few to pretrain on")
texts, labels = docstring_topics()
train_idx, test_idx = topic_split(labels, N_TEST_PER_TOPIC, lesson.seed)
# The test sentences of the labelled task are taken out of the pretraining text:
# the encoder never reads them before it is tested on them.
corpus = " ".join(corpus.split())
for i in test_idx:
    corpus = corpus.replace(texts[i], " ")
stream = words(corpus)
tok = WordTokenizer(stream, VOCAB)
ids = tok.vocab.encode(stream)
unk_share = float(np.mean(ids == tok.unk_id))
example = texts[train_idx[0]]
lesson.say(f"""
    A token here is a lowercase word. The pretraining text (Python's help
    texts and the standard library's docstrings: {len(stream):,} words) gives
    the vocabulary: five special tokens, then the {VOCAB - 5:,} most frequent
    words; any other word becomes [UNK] ({unk_share:.1%} of the text).

        [PAD]  fills a short sentence up to the batch's length; never attended to
        [CLS]  starts every sequence (BERT classifies a sentence from its output)
        [SEP]  ends it
        [MASK] stands where a word was hidden
        [UNK]  any word outside the vocabulary

    "{example}"
    encodes to {tok.encode(example).tolist()}
    and decodes to "{tok.decode(tok.encode(example))}".
    """)

# ---------------------------------------------------------------- masking
lesson.section("The masking recipe")
n_windows = len(ids) // (T - 2)
windows = ids[:n_windows * (T - 2)].reshape(n_windows, T - 2)
windows = np.concatenate([np.full((n_windows, 1), tok.cls_id), windows,
                          np.full((n_windows, 1), tok.sep_id)], axis=1)
order = np.random.default_rng(lesson.seed).permutation(n_windows)
n_val = max(n_windows // 20, 8)
val_windows, pre_windows = windows[order[:n_val]], windows[order[n_val:]]
val_inputs, val_targets = mask_tokens(val_windows, np.random.default_rng(lesson.seed + 1), tok)
chosen = val_targets != IGNORE_INDEX
words_only = ~np.isin(val_windows, tok.special_ids)
as_mask = (val_inputs == tok.mask_id) & chosen
kept = (val_inputs == val_targets) & chosen
lesson.say(f"""
    The text is cut into {n_windows:,} windows of {T - 2} words, each framed as
    [CLS] ... [SEP]; {n_val} windows are held out. In every window, each word
    (not [UNK] or another special token) is chosen with probability 15 %,
    and a chosen word becomes [MASK] 80 % of the time, a random word 10 % of
    the time, and stays itself 10 % of the time. The model must give every
    chosen word back. On the held-out windows
    that chose {chosen.sum() / words_only.sum():.1%} of the words; of the chosen,
    {as_mask.sum() / chosen.sum():.1%} became [MASK] and {kept.sum() / chosen.sum():.1%} stayed.

    Why not always [MASK]? Fine-tuning never shows a [MASK], so an encoder
    that only learned to read masks would see inputs it never trained on.
    The random 10 % make every input word suspect: the model cannot copy
    the word it sees, so it keeps a good representation of every position.
    The kept 10 % make the answer sometimes be the word that is there, so
    those representations stay close to the real word.

        {tok.decode(val_windows[0][:16])} ...
        {tok.decode(val_inputs[0][:16])} ...
    """)

# ---------------------------------------------------------------- pretraining
lesson.section("Pretraining: fill in the masked words")
ms.manual_seed(lesson.seed)
CONFIG = dict(vocab_size=len(tok), num_classes=len(TOPICS), pad_id=tok.pad_id, d_model=D_MODEL,
              nhead=HEADS, num_layers=LAYERS, dim_feedforward=FF, max_len=T)
pretrained = Bert(**CONFIG)
n_params = sum(p.data.size for p in pretrained.parameters())


def masked_batches(rng):
    for idx in minibatches(len(pre_windows), BATCH, rng):
        yield mask_tokens(pre_windows[idx], rng, tok)


def masked_accuracy(model):
    correct = total = 0
    for idx in minibatches(len(val_windows), 64):
        logits, target = model.mlm_logits(val_inputs[idx], val_targets[idx])
        correct += np.sum(np.argmax(logits.data, axis=-1) == target)
        total += len(target)
    return {"masked_accuracy": correct / total}


def warm_up_then_decay(step):
    """The rate rises linearly over WARMUP steps, then falls linearly to a tenth."""
    if step < WARMUP:
        return PRE_LR * (step + 1) / WARMUP
    return PRE_LR * (1 - 0.9 * (step - WARMUP) / max(PRE_STEPS - WARMUP, 1))


history = train(pretrained, Adam(pretrained.parameters(), lr=PRE_LR), masked_batches,
                lambda model, batch: model.mlm_loss(*batch), PRE_STEPS, seed=lesson.seed,
                clip=1.0, lr_schedule=warm_up_then_decay,
                evaluate=masked_accuracy, eval_every=max(PRE_STEPS // 8, 1),
                desc="pretraining")
mlm_acc = history.metric("masked_accuracy")[1][-1]

# baselines: the commonest word, and the commonest word after the word before
train_stream = pre_windows.ravel()
unigram = NgramLM(train_stream, len(tok), order=1, k=0.01)
bigram = NgramLM(train_stream, len(tok), order=2, k=0.01)
rows, cols = np.nonzero(chosen)
truth = val_targets[rows, cols]
ordinary = np.arange(len(tok)) >= len(tok.special_ids)  # the answer is never a special token
most_common = int(np.argmax(unigram.probs() * ordinary))
unigram_acc = float(np.mean(truth == most_common))
before = val_inputs[rows, cols - 1]
guesses = np.array([most_common if b in tok.special_ids
                    else int(np.argmax(bigram.probs((b,)) * ordinary)) for b in before])
bigram_acc = float(np.mean(truth == guesses))

steps, accs = history.metric("masked_accuracy")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.plot(history.steps, history.losses, lw=0.6)
ax1.set(xlabel="step", ylabel="cross-entropy of the masked words (nats)",
        title="pretraining loss")
ax2.plot(steps, accs, "o-", label="encoder")
ax2.axhline(unigram_acc, color="gray", ls="--", label=f'always "{tok.vocab.itos[most_common]}"')
ax2.axhline(bigram_acc, color="gray", ls=":", label="commonest after the word before")
ax2.set(xlabel="step", ylabel="held-out masked-word accuracy", title="filling in the blanks")
ax2.legend()
lesson.savefig(fig, "pretraining")
lesson.say(f"""
    The encoder ({LAYERS} pre-norm layers, d_model {D_MODEL}, {HEADS} heads,
    feed-forward {FF}, GELU; {n_params:,} parameters, most of them the word
    embeddings, which the output layer shares) trained for {PRE_STEPS} steps of
    {BATCH} windows with Adam, the rate rising to {PRE_LR} over the first {WARMUP}, then
    falling linearly to a tenth of it.
    Only the chosen tokens go through the output layer: the loss
    is taken there alone.

    Held-out masked-word accuracy: {mlm_acc:.1%}. Always guessing the commonest
    word ("{tok.vocab.itos[most_common]}") scores {unigram_acc:.1%}; guessing the commonest
    word after the word before scores {bigram_acc:.1%}. The encoder is
    {mlm_acc / unigram_acc:.1f} times the first baseline and
    {(mlm_acc - bigram_acc) * 100:+.1f} points from the second.
    """, lesson.claim(
    "encoder > before", encoder=mlm_acc, before=bigram_acc,
    yes="Reading both sides of the blank, it does better than the word before alone.",
    no="It does not yet beat the word before alone: two sides of context are not yet used.",
    short="This quick run is too short to beat the word before alone."))
lesson.metric("masked_accuracy_over_unigram", mlm_acc / unigram_acc,
              threshold=1.2 if quick else 2.0)

# ---------------------------------------------------------------- fill the blank
lesson.section("Fill the blank")
blanks = [("return a new [MASK] object", "list"),
          ("raise a [MASK] if the key is not found", "keyerror"),
          ("the file is opened in binary [MASK]", "mode"),
          ("if the optional argument is [MASK] the default is used", "omitted"),
          ("this method returns the number of [MASK] written", "bytes")]
lines, in_top5 = [], 0
for sentence, answer in blanks:
    guesses = fill_blanks(pretrained, tok, sentence)[0]
    hit = answer in guesses
    in_top5 += hit
    lines.append(f"    {sentence:<55} {' '.join(guesses):<50} {'yes' if hit else 'no'}")
print(f"\n    {'sentence':<55} {'top-5 guesses, best first':<50} original in top 5")
print("\n".join(lines))
pretrained.eval()
with ms.no_grad():
    logits, answers = pretrained.mlm_logits(val_inputs, val_targets)
scores = logits.data.copy()
scores[:, tok.special_ids] = -np.inf  # as in the table: the answer is never a special token
top5_guesses = np.argsort(-scores, axis=1)[:, :5]
held_out_top5 = float(np.mean(np.any(top5_guesses == answers[:, None], axis=1)))
lesson.say(f"""
    The word that was there is among the top five guesses in {in_top5} of
    {len(blanks)} of these sentences; over all the held-out masked words it is
    among the top five {held_out_top5:.1%} of the time.
    """)

# ---------------------------------------------------------------- attention
lesson.section("What the heads attend to")
shown = "return the number of bytes written to the file"
shown_ids = tok.encode(shown)
labels_shown = tok.decode(shown_ids).split()
with ms.no_grad():
    maps = pretrained.attention_maps(shown_ids)
fig, axes = plt.subplots(LAYERS, HEADS, figsize=(3.6 * HEADS, 3.4 * LAYERS), squeeze=False,
                         gridspec_kw=dict(wspace=0.45, hspace=0.45))
for layer, weights in enumerate(maps):
    for head in range(HEADS):
        ax = axes[layer, head]
        image = ax.imshow(weights[head], cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels_shown)), labels_shown, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels_shown)), labels_shown, fontsize=7)
        ax.set_title(f"layer {layer} head {head}", fontsize=9)
fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight (row: query, column: key)")
lesson.savefig(fig, "attention")


def head_scores(offset):
    """(mean weight a token gives the token `offset` places away, layer, head), per head."""
    return [(np.mean(np.diagonal(w[h], offset=offset)), layer, h)
            for layer, w in enumerate(maps) for h in range(HEADS)]


uniform = 1 / len(shown_ids)
before_w, before_l, before_h = max(head_scores(-1))
after_w, after_l, after_h = max(head_scores(1))
peak_w, peak_l, peak_h = max((w[h].max(axis=1).mean(), layer, h) for layer, w in enumerate(maps)
                             for h in range(HEADS))
peak_key = labels_shown[int(np.argmax(maps[peak_l][peak_h].sum(axis=0)))]
lesson.say(f"""
    attention.png shows each head's weights on "{shown}" (uniform
    attention would give every token {uniform:.1%}). Layer {before_l} head {before_h} gives the
    word before {before_w:.1%} of a token's attention on average, layer {after_l} head {after_h}
    gives the word after {after_w:.1%}. The most focused head, layer {peak_l}
    head {peak_h}, puts {peak_w:.1%} of each row's weight on one token, most of all
    on "{peak_key}".
    """)

# ---------------------------------------------------------------- fine-tuning
lesson.section("Fine-tuning with few labels")
counts = np.bincount(labels[train_idx], minlength=len(TOPICS))
lesson.say(f"""
    The labelled task: which part of the standard library does a docstring
    sentence come from? {len(texts):,} distinct sentences of 4 to 30 words, from
    {len(TOPICS)} topics:
    """)
print("\n".join(f"    {name:<20} {', '.join(mods)}" for name, mods in TOPICS.items()))
lesson.say(f"""
    {N_TEST_PER_TOPIC} sentences of each topic are the test ({len(test_idx)} in all, none
    seen in pretraining); a fine-tuning run may use only a budget of
    labelled sentences per topic, drawn from the other {len(train_idx):,} (at least
    {counts.min()} per topic). As in BERT, the classifier is one linear layer
    on the output vector of [CLS], the token every sentence starts with.
    Both models train all their weights for {FT_STEPS} steps of {FT_BATCH} with
    Adam at {FT_LR}; the pretrained one starts from the encoder above, the other
    from random weights. Each budget is drawn {SEEDS} times.
    """)
test_ids = tok.encode_batch([texts[i] for i in test_idx], T)
test_labels = labels[test_idx]
train_ids = tok.encode_batch([texts[i] for i in train_idx], T)
train_labels = labels[train_idx]


def trimmed(x):
    """x without the columns that are [PAD] in every row."""
    return x[:, :int(np.max(np.sum(x != tok.pad_id, axis=1)))]


def test_accuracy(model):
    model.eval()
    with ms.no_grad():
        scores = np.concatenate([model.classify(trimmed(test_ids[idx])).data
                                 for idx in minibatches(len(test_ids), 100)])
    return accuracy(scores, test_labels)


def fine_tune(model, picked, seed):
    def batches(rng):
        for idx in minibatches(len(picked), FT_BATCH, rng):
            yield trimmed(train_ids[picked[idx]]), train_labels[picked[idx]]

    train(model, Adam(model.parameters(), lr=FT_LR), batches,
          lambda m, batch: m.classification_loss(*batch), FT_STEPS, seed=seed,
          desc="fine-tuning")
    return test_accuracy(model)


results = {"pretrained": np.zeros((len(BUDGETS), SEEDS)),
           "from scratch": np.zeros((len(BUDGETS), SEEDS))}
for b, budget in enumerate(BUDGETS):
    for s in range(SEEDS):
        seed = lesson.seed * 100 + s
        picked = label_budget(train_labels, budget, np.random.default_rng(seed))
        ms.manual_seed(seed)
        model = copy.deepcopy(pretrained)
        model.classifier = nn.Linear(D_MODEL, len(TOPICS))  # a fresh head for the new task
        results["pretrained"][b, s] = fine_tune(model, picked, seed)
        ms.manual_seed(seed)
        scratch = Bert(**CONFIG)
        results["from scratch"][b, s] = fine_tune(scratch, picked, seed)

fig, ax = plt.subplots(figsize=(6, 4))
for name, acc in results.items():
    ax.errorbar(BUDGETS, acc.mean(axis=1), yerr=acc.std(axis=1), marker="o", capsize=4,
                label=name)
ax.axhline(1 / len(TOPICS), color="gray", ls="--", label="chance")
ax.set_xscale("log", base=2)
ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
ax.set(xlabel="labelled sentences per topic", ylabel="test accuracy",
       title=f"topic of a docstring sentence (mean ± sd of {SEEDS} draws)")
ax.legend()
lesson.savefig(fig, "fine_tuning")


def mean_sd(accuracies):
    return f"{accuracies.mean():.1%} ± {accuracies.std():.1%}"


table = [f"    {'labels per topic':>16}   {'pretrained':>16}   {'from scratch':>16}   gap"]
for b, budget in enumerate(BUDGETS):
    pre, scr = results["pretrained"][b], results["from scratch"][b]
    table.append(f"    {budget:>16}   {mean_sd(pre):>16}   {mean_sd(scr):>16}   "
                 f"{(pre.mean() - scr.mean()) * 100:+.1f} points")
print("\n" + "\n".join(table))
gap = results["pretrained"][0].mean() - results["from scratch"][0].mean()
lesson.say(f"""
    With {BUDGETS[0]} labelled sentences per topic the pretrained encoder reaches
    {results['pretrained'][0].mean():.1%} and the one trained from scratch
    {results['from scratch'][0].mean():.1%}
    ({gap * 100:+.1f} points; chance is {1 / len(TOPICS):.0%}). With {BUDGETS[-1]} per topic:
    {results['pretrained'][-1].mean():.1%} against {results['from scratch'][-1].mean():.1%}.
    """, lesson.claim(
    # a gap within the draws' own spread could be the luck of the draw
    "gap > spread", gap=gap * 100,
    spread=(results["pretrained"][0].std() + results["from scratch"][0].std()) * 100,
    yes="""With the fewest labels, what the encoder learned from unlabelled text
        helps: the gap is larger than the spread of the draws ({spread:.1f} points).""",
    no="""With the fewest labels the gap is within the spread of the draws
        ({spread:.1f} points): this run does not show that pretraining helps.""",
    short="""This quick run's encoder has pretrained too briefly to help by more
        than the spread of the draws ({spread:.1f} points)."""))
lesson.section("What we saw")
budget_lines = "; ".join(
    f"{budget} per topic: {mean_sd(results['pretrained'][b])} pretrained, "
    f"{mean_sd(results['from scratch'][b])} from scratch" for b, budget in enumerate(BUDGETS))
lesson.say(f"""
    Masked-word accuracy {mlm_acc:.1%} after {PRE_STEPS} steps ({mlm_acc / unigram_acc:.1f} x the
    unigram baseline's {unigram_acc:.1%}; the word-before baseline: {bigram_acc:.1%}). Topic
    accuracy over {SEEDS} draws of the labels (mean ± sd): {budget_lines}.
    The whole run took {time.perf_counter() - started:.0f} s.
    """)
lesson.section("Ask it yourself")
saved = save(lesson.out, pretrained, CONFIG, tok, guesses=5)
lesson.register(saved)
lesson.say(f"""
    The pretrained encoder is saved in {saved}. Write [MASK] where a word
    is hidden, and it gives its five likeliest words for each blank:

        make ask-11 Q="write the [MASK] to the file"        (from the shell)
        microseq.models.load("{saved.parent}").answer(["raise a [MASK] if it is empty"])
    """)
if not quick:  # a quick run's encoder has barely begun to learn: no gap to expect
    lesson.metric("pretrained_minus_scratch_points_at_smallest_budget", gap * 100,
                  threshold=10)
lesson.try_this(
    ("--quick", "With only seconds of pretraining, does the pretrained encoder still beat the "
                "one trained from scratch at the smallest label budget?"),
    ("--seed 1", "Another seed draws other masks, other labelled sentences and other weights: "
                 "does the gap at 8 labels per topic keep its sign?"))
lesson.finish()
