"""Lesson 10: self-attention and the Transformer.

Lesson 9's decoder attended over the encoder's states. Here a sequence
attends over itself, and attention becomes the whole model:

    self-attention   queries, keys and values from the same sequence
    sqrt(d)          why the scores are scaled: softmax saturation, measured
    causal mask      what a language model may not see
    positions        self-attention alone cannot tell order; a task that needs it
    recall           a task where attention beats an LSTM of the same size
    a tiny GPT       on lesson 3's corpus, against an LSTM of the same size
    heads            what each head looks at, on a real passage
    one block        its drawn graph, a box per sublayer

    .venv/bin/python lessons/10_transformer.py [--quick] [--seed S] [--out DIR] [--text FILE]
"""
import time

import matplotlib.pyplot as plt
import numpy as np

import microseq as ms
from microseq import nn
from microseq.data import BPTTBatcher, char_split, load_text
from microseq.data.recall import associative_recall, which_first
from microseq.lesson import Lesson
from microseq.models.char_lm import CharLM, truncated_bptt
from microseq.models.gpt import CharGPT
from microseq.models.recall import OrderClassifier, RecallTransformer, matching_lstm
from microseq.optim import Adam
from microseq.train import cosine_decay, train

lesson = Lesson(10, "Self-attention and the Transformer",
                arguments={"--text": dict(metavar="FILE", default=None,
                                          help="a UTF-8 text file for the tiny GPT instead of "
                                               "the pydoc help texts")})
quick = lesson.quick
if quick:
    D_MODEL, LAYERS, HEADS, CONTEXT, BATCH, STEPS, LR = 32, 2, 4, 32, 16, 60, 1e-2
else:
    D_MODEL, LAYERS, HEADS, CONTEXT, BATCH, STEPS, LR = 64, 2, 4, 64, 32, 800, 1e-2
EVAL_ROWS = 64
# The first 90 % must hold a batch of windows, the last 10 % a row per evaluation row;
# the corpus is read first, so that a bad --text fails at once.
min_chars = max((BATCH * CONTEXT + CONTEXT + 2) * 10 // 9, 10 * (EVAL_ROWS + 2))
text = load_text(lesson.args.text, min_chars=min_chars)
rng = np.random.default_rng(lesson.seed)

# ============================================================ self-attention
lesson.section("From attention to self-attention")
ms.manual_seed(lesson.seed)
E, T = 8, 5
mha = nn.MultiheadAttention(E, num_heads=1, batch_first=True).to(np.float64)
x = rng.standard_normal((1, T, E))
out, weights = mha(x, x, x)
# The same thing with lesson 9's DotAttention on three projections of x.
Wq, Wk, Wv = np.split(mha.in_proj_weight.data, 3)
bq, bk, bv = np.split(mha.in_proj_bias.data, 3)
q, k, v = (ms.tensor(x @ W.T + b) for W, b in ((Wq, bq), (Wk, bk), (Wv, bv)))
context, by_hand = nn.DotAttention()(q, k, v)
by_hand_out = mha.out_proj(context)
gap = max(float(np.abs(by_hand_out.data - out.data).max()),
          float(np.abs(by_hand.data - weights.data).max()))
rows = "\n".join("        " + " ".join(f"{w:5.2f}" for w in row) for row in weights.data[0])
lesson.say(f"""
    In lesson 9 the queries came from the decoder and the keys and values from
    the encoder: one sequence asked, another answered. Self-attention asks and
    answers within one sequence x of T vectors. Three learned matrices turn
    each x_t into a query q_t = W_q x_t, a key k_t = W_k x_t and a value
    v_t = W_v x_t; position t then scores every position s by q_t . k_s /
    sqrt(d), a softmax over s turns the scores into weights, and the output
    at t is the weighted sum of the values (then one more linear map,
    out_proj). Every position gathers, from the whole sequence, what it
    needs, in one step: no state carried from left to right.

    nn.MultiheadAttention(embed_dim={E}, num_heads=1), PyTorch's layer and
    names, on x of {T} random vectors: the weights ({T} x {T}, row t = where
    position t looks) are

{rows}

    Lesson 9's DotAttention applied to the three projections, then out_proj:
    """, lesson.claim(
    "gap <= 1e-12", gap=gap,
    yes="""the same weights and outputs, to {gap:.1e} (float64). Self-attention is
        lesson 9's attention with q, k and v all made from x.""",
    no="""weights and outputs that differ by {gap:.1e}: more than rounding, so
        the two are not the same computation here."""))
lesson.metric("self_attention_equals_dot_attention_max_diff", gap, threshold=1e-12,
              higher_is_better=False)

# ============================================================ sqrt(d)
lesson.section("Why the scores are divided by sqrt(d)")
dims = 2 ** np.arange(1, 11)
N_Q, N_K = (200, 16) if quick else (2000, 16)


def softmax_health(d, scale):
    """Mean largest weight, and median |gradient| reaching the scores, of a
    softmax over N_K scores q . k (q, k ~ N(0, I_d)), scaled by 1/sqrt(d) or
    not; the gradient is that of (weights . g) for a random g."""
    q = rng.standard_normal((N_Q, 1, d))
    keys = rng.standard_normal((N_Q, N_K, d))
    scores = ms.tensor((q * keys).sum(-1) / (np.sqrt(d) if scale else 1.0), requires_grad=True)
    w = ms.softmax(scores)
    (w * rng.standard_normal(w.shape)).sum().backward()
    return float(w.data.max(-1).mean()), float(np.median(np.abs(scores.grad)))


health = {scale: np.array([softmax_health(d, scale) for d in dims]) for scale in (False, True)}
fig, axes = plt.subplots(1, 2, figsize=(11.5, 4))
for scale, style in ((False, "o-"), (True, "s-")):
    label = "q . k / sqrt(d)" if scale else "q . k"
    axes[0].plot(dims, health[scale][:, 0], style, label=label)
    axes[1].plot(dims, health[scale][:, 1], style, label=label)
axes[0].axhline(1 / N_K, color="grey", ls=":", label=f"uniform (1/{N_K})")
axes[0].set(xscale="log", xlabel="d (query and key size)", ylabel="mean largest weight",
            title=f"Saturation: softmax over {N_K} keys")
axes[1].set(xscale="log", yscale="log", xlabel="d (query and key size)",
            ylabel="median |gradient| reaching a score", title="What the softmax lets through")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
lesson.savefig(fig, "scaling")
d_max = int(dims[-1])
plain_top, plain_grad = health[False][-1]
scaled_top, scaled_grad = health[True][-1]
lesson.say(f"""
    If the entries of q and k have variance 1, their dot product is a sum of
    d products of variance 1: its variance is d. For large d the scores
    spread far apart, the softmax puts almost all weight on the largest,
    and its gradient, w_i (g_i - sum_j w_j g_j), vanishes: a saturated
    softmax learns nothing. Dividing by sqrt(d) brings the variance back to
    1 at every d.

    Measured on {N_Q:,} random queries against {N_K} random keys each
    (scaling.png): at d = {d_max} the plain dot product gives the largest key
    on average {plain_top:.0%} of the weight, and the median score gets a
    gradient of {plain_grad:.1e}; scaled, the largest key gets {scaled_top:.0%}
    and the median gradient is {scaled_grad:.1e}.
    """, lesson.claim(
    "spread <= 2", spread=health[True][:, 1].max() / health[True][:, 1].min(),
    low=health[True][:, 1].min(), high=health[True][:, 1].max(),
    yes=f"""With the scale the median gradient stays between {{low:.1e}} and
        {{high:.1e}} for every d from {int(dims[0])} to {d_max}: the softmax works
        the same at any width.""",
    no=f"""Even with the scale the median gradient moves from {{low:.1e}} to
        {{high:.1e}} between d = {int(dims[0])} and {d_max}."""))
lesson.metric("unscaled_over_scaled_median_softmax_gradient_at_largest_d",
              plain_grad / scaled_grad, threshold=1e-3, higher_is_better=False)

# ============================================================ causal mask
lesson.section("The causal mask")
ms.manual_seed(lesson.seed)
T = 6
mask = nn.generate_square_subsequent_mask(T)
mha = nn.MultiheadAttention(E, num_heads=2, batch_first=True).to(np.float64)
x = rng.standard_normal((1, T, E))
out, weights = mha(x, x, x, attn_mask=mask)
changed = x.copy()
changed[0, -1] = rng.standard_normal(E)     # a different last token
out_changed, _ = mha(changed, changed, changed, attn_mask=mask)
shift = np.abs(out_changed.data - out.data).max(-1)[0]   # per position
rows = "\n".join("        " + " ".join(f"{w:5.2f}" for w in row) for row in weights.data[0])
mask_rows = "\n".join("        " + " ".join(f"{m:5}" for m in row) for row in mask)
lesson.say(f"""
    A language model predicts each next character from the ones before it,
    so position t must not see t+1, t+2, ...: it would read the answer. The
    causal mask adds -inf to every score above the diagonal before the
    softmax (nn.generate_square_subsequent_mask({T}), PyTorch's name):

{mask_rows}

    exp(-inf) = 0, so those weights are exactly zero and every row spreads
    over the past only (the weights of a 2-head layer, averaged over heads):

{rows}

    Changing the last of the {T} inputs moves the outputs at positions
    0..{T - 2} by at most {shift[:-1].max():.1e}, and the last output by
    {shift[-1]:.2f}. With the mask, one pass over a sequence of T characters
    gives T predictions at once, each from its own past: training a
    Transformer language model needs no loop over time.
    """)
lesson.metric("causal_mask_change_before_last_position", shift[:-1].max(), threshold=0.0,
              higher_is_better=False)

# ============================================================ positions
lesson.section("Self-attention does not know order")
ms.manual_seed(lesson.seed)
block = nn.TransformerEncoderLayer(E, 2, 16, dropout=0.0, batch_first=True).to(np.float64)
T = 7
x = rng.standard_normal((1, T, E))
perm = rng.permutation(T)
y, y_perm = block(x).data, block(x[:, perm]).data
equivariance_gap = float(np.abs(y_perm - y[:, perm]).max())
sines = nn.PositionalEncoding(E, max_len=T, batch_first=True)
positioned = sines(ms.tensor(x)).data
y, y_perm = block(positioned).data, block(sines(ms.tensor(x[:, perm])).data).data
with_positions_gap = float(np.abs(y_perm - y[:, perm]).max())
lesson.say(f"""
    Nothing in self-attention refers to where a vector stands: every position
    is scored against every other by content alone. Shuffle the inputs and
    the outputs come out shuffled the same way, and otherwise unchanged: the
    layer is permutation-equivariant. A whole encoder layer
    (nn.TransformerEncoderLayer, float64) on {T} vectors, then on the same
    vectors in the order {perm.tolist()}: the outputs differ from the
    shuffled first outputs by at most {equivariance_gap:.1e}.

    A bag of symbols is fine for some tasks, and fatal for any where order is
    the point. Positional information breaks the symmetry: add to each input
    a vector that depends only on its position. The sinusoidal encoding of
    "Attention Is All You Need" (nn.PositionalEncoding) uses pairs of sines
    and cosines of many wavelengths. With it added, the same shuffle no
    longer just shuffles the outputs: they differ from the shuffled first
    outputs by up to {with_positions_gap:.2f}.
    """)
lesson.metric("permutation_equivariance_max_diff_without_positions", equivariance_gap,
              threshold=1e-12, higher_is_better=False)

L_ORDER, N_SYMBOLS = 12, 8
ORDER_STEPS, ORDER_BATCH, ORDER_LR = (50, 64, 1e-2) if quick else (200, 64, 1e-2)
order_x, order_y = which_first(20_000, L_ORDER, lesson.seed, N_SYMBOLS)
order_test_x, order_test_y = which_first(2_000, L_ORDER, lesson.seed + 1, N_SYMBOLS)


def classify(model, inputs, labels, steps, batch, lr, evaluate=None, eval_every=None,
             desc="train"):
    """Adam on shuffled batches of (inputs..., labels), learning rate on a
    half cosine; returns the History and the seconds it took."""
    def batches(rng):
        for _ in range(len(labels) // batch):
            rows = rng.integers(0, len(labels), batch)
            yield *(x[rows] for x in inputs), labels[rows]

    start = time.perf_counter()
    history = train(model, Adam(model.parameters(), lr=lr), batches,
                    lambda model, b: model.loss(*b), steps, seed=lesson.seed,
                    lr_schedule=lambda step: cosine_decay(step, steps, lr), evaluate=evaluate,
                    eval_every=eval_every, desc=desc)
    return history, time.perf_counter() - start


order_acc = {}
for positions in (None, "sinusoidal", "learned"):
    ms.manual_seed(lesson.seed)
    model = OrderClassifier(N_SYMBOLS, L_ORDER, positions=positions)
    classify(model, (order_x,), order_y, ORDER_STEPS, ORDER_BATCH, ORDER_LR,
             desc=f"order, {positions or 'no'} positions")
    order_acc[positions] = model.accuracy(order_test_x, order_test_y)
lesson.say(f"""
    The task (microseq.data.recall.which_first): {L_ORDER} symbols, among them
    one A and one B; say whether A comes first. Every sequence has a twin,
    A and B swapped, with the other answer, and without positions a model
    cannot tell the twins apart. A one-layer encoder averaged over positions,
    {ORDER_STEPS} Adam steps of {ORDER_BATCH}, test accuracy on {len(order_test_y):,}
    new sequences:

        no positions            {order_acc[None]:.1%}
        sinusoidal encoding     {order_acc['sinusoidal']:.1%}
        learned positions       {order_acc['learned']:.1%}
    """, lesson.claim(
    "none <= 0.6 and learned >= 0.95 and sines >= 0.95", none=order_acc[None],
    learned=order_acc["learned"], sines=order_acc["sinusoidal"],
    yes="""Without positions the model stays at a coin's {none:.0%}; with them it
        reads the order ({learned:.0%} learned, {sines:.0%} sinusoidal).""",
    no="""This run does not show the clean split: {none:.0%} without positions,
        {learned:.0%} with learned ones, {sines:.0%} with sinusoidal ones.""",
    short="""Without positions the model stays at {none:.0%}; this quick run is
        too short for both models with positions to learn the order fully
        ({learned:.0%} learned, {sines:.0%} sinusoidal)."""))
lesson.metric("order_task_accuracy_with_learned_positions", order_acc["learned"],
              threshold=0.8 if quick else 0.95)
lesson.metric("order_task_accuracy_without_positions", order_acc[None], threshold=0.6,
              higher_is_better=False)

# ============================================================ recall
lesson.section("Where attention beats recurrence: associative recall")
N_KEYS, N_VALUES = 32, 16
if quick:
    PAIRS, RECALL_STEPS, RECALL_BATCH, RECALL_LR = 8, 80, 64, 3e-3
else:
    PAIRS, RECALL_STEPS, RECALL_BATCH, RECALL_LR = 16, 400, 64, 3e-3
recall_train = associative_recall(20_000, PAIRS, lesson.seed, N_KEYS, N_VALUES)
recall_test = associative_recall(500 if quick else 2_000, PAIRS, lesson.seed + 1, N_KEYS, N_VALUES)
ms.manual_seed(lesson.seed)
recall_models = {"Transformer": RecallTransformer(N_KEYS, N_VALUES, d_model=64, nhead=4,
                                                  dim_feedforward=128)}
ms.manual_seed(lesson.seed)
recall_models["LSTM"] = matching_lstm(N_KEYS, N_VALUES, recall_models["Transformer"]
                                      .num_parameters())
keys, values, answers = recall_train
lesson.say(f"""
    The task (microseq.data.recall.associative_recall): a little dictionary of
    {PAIRS} entries, each a key (one of {N_KEYS}) with a value (one of {N_VALUES}), one
    entry per position, then one of the keys again with "?" for its value.
    The answer is the value stored under it. An example, keys as letters:

        {" ".join(f"{chr(97 + k)}{v}" for k, v in zip(keys[0, :-1], values[0, :-1], strict=True))}
        {chr(97 + keys[0, -1])}?  ->  {answers[0]}

    Attention does this in one look-up: the query position's query vector
    matches the key of the same letter, and reads its value. An LSTM reads
    left to right and cannot know which key will be asked: it has to keep
    all {PAIRS} values in its state until the end.

    Both have the same inputs (the sum of a key's and a value's embedding),
    about the same number of parameters (Transformer {recall_models['Transformer']
    .num_parameters():,}: one pre-norm encoder layer, d_model 64, 4 heads, no
    positions needed; LSTM {recall_models['LSTM'].num_parameters():,}: hidden size
    {recall_models['LSTM'].lstm.hidden_size}, forget gates open) and the same
    training: {RECALL_STEPS} Adam steps of {RECALL_BATCH}, learning rate
    {RECALL_LR:g} on a half cosine, tested on {len(recall_test[2]):,} new dictionaries.
    """)
recall_histories, recall_seconds = {}, {}
for name, model in recall_models.items():
    recall_histories[name], recall_seconds[name] = classify(
        model, recall_train[:2], recall_train[2], RECALL_STEPS, RECALL_BATCH, RECALL_LR,
        evaluate=lambda m: {"acc": m.accuracy(*recall_test)},
        eval_every=max(1, RECALL_STEPS // 8), desc=f"recall, {name}")
recall_acc = {name: h.metric("acc")[1][-1] for name, h in recall_histories.items()}

fig, ax = plt.subplots(figsize=(7, 4.5))
for name, history in recall_histories.items():
    at, acc = history.metric("acc")
    ax.plot(at, [100 * a for a in acc], "o-",
            label=f"{name} ({recall_models[name].num_parameters():,} parameters)")
ax.axhline(100 / N_VALUES, color="grey", ls=":", label=f"chance (1/{N_VALUES})")
ax.set(xlabel="training step", ylabel="test accuracy (%)", ylim=(0, 100),
       title=f"Associative recall, {PAIRS} entries")
ax.grid(alpha=0.3)
ax.legend()
lesson.savefig(fig, "recall")
lesson.say(f"""
    Test accuracy after {RECALL_STEPS} steps (recall.png has both curves):
    Transformer {recall_acc['Transformer']:.1%}, LSTM {recall_acc['LSTM']:.1%}
    (chance is {1 / N_VALUES:.1%}).
    """, lesson.claim(
    "transformer >= 0.95 and gap >= 0.2", transformer=recall_acc["Transformer"],
    lstm=recall_acc["LSTM"], gap=recall_acc["Transformer"] - recall_acc["LSTM"],
    points=100 * (recall_acc["Transformer"] - recall_acc["LSTM"]),
    yes="""Attention looks the answer up and is right {transformer:.0%} of the
        time; the LSTM, with as many parameters and as many steps, stays
        {points:.0f} percentage points behind: storing every entry in one
        state is the hard way to do this.""",
    no="""In this run the difference is not the clear one the lesson is about:
        {transformer:.0%} against {lstm:.0%}.""",
    short="""In this quick run (fewer entries, fewer steps) it is {transformer:.0%}
        against {lstm:.0%}, short of the clear gap the lesson is about."""))
lesson.metric("recall_transformer_accuracy", recall_acc["Transformer"],
              threshold=0.3 if quick else 0.95)
lesson.metric("recall_transformer_minus_lstm_accuracy",
              recall_acc["Transformer"] - recall_acc["LSTM"], threshold=0.0 if quick else 0.20)
for name, seconds in recall_seconds.items():
    lesson.record(f"recall_{name.lower()}_train_seconds", seconds)

# ============================================================ a tiny GPT
lesson.section("A tiny GPT on lesson 3's corpus")
if quick:
    text = text[:120_000]
vocab, train_ids, test_ids = char_split(text)
WARMUP, CLIP = max(1, STEPS // 16), 1.0
# The LSTM's batched evaluation scores the targets test_ids[1 : 1 + rows * S];
# the GPT is given exactly that stream, so both are scored on the same characters.
S = (len(test_ids) - 1) // EVAL_ROWS
scored = test_ids[:1 + EVAL_ROWS * S]
ms.manual_seed(lesson.seed)
gpt = CharGPT(len(vocab), D_MODEL, HEADS, LAYERS, CONTEXT)
hidden = 1
while CharLM(len(vocab), hidden + 1, 32, cell="lstm").num_parameters() <= gpt.num_parameters():
    hidden += 1
ms.manual_seed(lesson.seed)
lstm = CharLM(len(vocab), hidden, 32, cell="lstm")
source = lesson.args.text or "pydoc_data.topics (the help texts behind help('topic'))"
lesson.say(f"""
    Now the whole model is attention. A GPT reads characters, adds a learned
    position vector to each character's embedding, and runs {LAYERS} Transformer
    blocks under the causal mask; a linear layer turns each position's final
    vector into {len(vocab)} logits for the next character. Each block is
    nn.TransformerEncoderLayer(d_model={D_MODEL}, nhead={HEADS},
    dim_feedforward={4 * D_MODEL}, activation=GELU (tanh form), norm_first=True): layer
    norm before each sublayer, as in GPT-2, so the residual path from the
    input to the output is never normalised and gradients reach the first
    block undiminished. {gpt.num_parameters():,} parameters; the context is {CONTEXT}
    characters.

    Against it, lesson 3's model with an LSTM: CharLM(cell="lstm"), embedding
    32, hidden size {hidden}, {lstm.num_parameters():,} parameters. Both learn
    {source}, the same 90 / 10 split as lesson 3 ({len(train_ids):,} training
    and {len(test_ids):,} held-out characters), from the same number of
    training characters: {STEPS} Adam steps of {BATCH} x {CONTEXT}, learning
    rate {LR:g} after a warm-up of {WARMUP} steps, down a half cosine,
    gradients clipped to {CLIP:g}. The LSTM reads its windows in order with
    its state carried across them (lesson 3's truncated BPTT); the GPT reads
    windows from random places and sees only its {CONTEXT}-character context.

    Held-out bits per character are scored on the same {EVAL_ROWS * S:,} characters
    for both. The LSTM reads the held-out text as {EVAL_ROWS} long rows with its
    state carried; the GPT reads windows of {CONTEXT} overlapping by half, so each
    character is predicted from at least {CONTEXT // 2} before it.
    """)


def schedule(step):
    return cosine_decay(step, STEPS, LR) * min(1.0, (step + 1) / WARMUP)


def random_windows(rng):
    """One epoch of BATCH windows of CONTEXT + 1 characters from random places."""
    for _ in range(len(train_ids) // (BATCH * CONTEXT)):
        starts = rng.integers(0, len(train_ids) - CONTEXT - 1, BATCH)
        rows = np.stack([train_ids[s:s + CONTEXT + 1] for s in starts])
        yield rows[:, :-1], rows[:, 1:]


lm_histories, lm_seconds = {}, {}
start = time.perf_counter()
lm_histories["GPT"] = train(
    gpt, Adam(gpt.parameters(), lr=LR), random_windows, lambda m, b: m.loss(*b), STEPS,
    seed=lesson.seed, clip=CLIP, lr_schedule=schedule, eval_every=max(1, STEPS // 4),
    evaluate=lambda m: {"bpc": m.bits_per_char(scored)}, desc="GPT")
lm_seconds["GPT"] = time.perf_counter() - start
start = time.perf_counter()
epoch, loss_fn = truncated_bptt(BPTTBatcher(train_ids, BATCH, CONTEXT))
lm_histories["LSTM"] = train(
    lstm, Adam(lstm.parameters(), lr=LR), epoch, loss_fn, STEPS, seed=lesson.seed, clip=CLIP,
    lr_schedule=schedule, eval_every=max(1, STEPS // 4),
    evaluate=lambda m: {"bpc": m.bits_per_char(scored, EVAL_ROWS)}, desc="LSTM")
lm_seconds["LSTM"] = time.perf_counter() - start
bpc = {name: h.metric("bpc")[1][-1] for name, h in lm_histories.items()}

fig, ax = plt.subplots(figsize=(7, 4.5))
for name, history in lm_histories.items():
    at, values = history.metric("bpc")
    model = gpt if name == "GPT" else lstm
    ax.plot(np.array(at) * BATCH * CONTEXT / 1e6, values, "o-",
            label=f"{name} ({model.num_parameters():,} parameters)")
ax.set(xlabel="training characters (millions)", ylabel="held-out bits per character",
       title="A tiny GPT against lesson 3's LSTM")
ax.grid(alpha=0.3)
ax.legend()
lesson.savefig(fig, "gpt_vs_lstm")
lesson.say(f"""
    Held-out bits per character after {STEPS * BATCH * CONTEXT:,} training characters
    (gpt_vs_lstm.png): GPT {bpc['GPT']:.3f}, LSTM {bpc['LSTM']:.3f}.
    """, lesson.claim(
    "gpt <= lstm", gpt=bpc["GPT"], lstm=bpc["LSTM"], lead=bpc["LSTM"] - bpc["GPT"],
    behind=bpc["GPT"] - bpc["LSTM"],
    yes="""The GPT is ahead by {lead:.3f} bits: at this size attention does at
        least as well as recurrence on text too.""",
    no="""The LSTM is ahead by {behind:.3f} bits per character: at this tiny size
        and budget recurrence is a strong baseline on text, and the GPT's
        strengths (long contexts read in parallel, depth) have little room.""",
    short="""This quick run is far too short for either model to learn much
        ({gpt:.2f} and {lstm:.2f} bits)."""))
lesson.metric("gpt_heldout_bpc", bpc["GPT"], threshold=5.0 if quick else 2.3,
              higher_is_better=False)
lesson.metric("gpt_minus_lstm_heldout_bpc", bpc["GPT"] - bpc["LSTM"],
              threshold=1.0 if quick else 0.1, higher_is_better=False)
for name, seconds in lm_seconds.items():
    lesson.record(f"{name.lower()}_train_seconds", seconds)

prompt = "The " if all(c in vocab.stoi for c in "The ") else vocab.decode(test_ids[:4])
length, temperature = (100 if quick else 300), 0.7
samples = []
for name, model in (("GPT", gpt), ("LSTM", lstm)):
    out = model.sample(vocab.encode(prompt), length, temperature=temperature,
                       rng=lesson.seed)[0]
    samples.append(f"--- {name}, temperature {temperature} ---\n{prompt}{vocab.decode(out)}\n")
    print(f"\n  {name}, temperature {temperature}:\n")
    print("    " + (prompt + vocab.decode(out)).replace("\n", "\n    "))
lesson.path("samples.txt").write_text("\n".join(samples))
lesson.register(lesson.path("samples.txt"))

# ============================================================ heads
lesson.section("What the heads look at")
test_text = vocab.decode(test_ids)
width = min(CONTEXT, 40)


def prose(line):
    """A line of words (not code, not indentation): what the heads are shown on."""
    return "\n" not in line and "  " not in line and line.count(" ") >= 4 and sum(
        c.isalpha() for c in line) >= 0.75 * len(line)


# the first line of the held-out text that starts with prose, or else its start
begin = next((i + 1 for i in range(len(test_text) - width - 1)
              if test_text[i] == "\n" and prose(test_text[i + 1:i + 1 + width])), 0)
passage = test_text[begin:begin + width]
maps = gpt.attention_maps(vocab.encode(passage))            # (layers, heads, T, T)
labels = [{"\n": "¶", " ": "·"}.get(c, c) for c in passage]
fig, axes = plt.subplots(LAYERS, HEADS, figsize=(4.2 * HEADS, 4 * LAYERS), squeeze=False)
for layer in range(LAYERS):
    for head in range(HEADS):
        ax = axes[layer, head]
        image = ax.imshow(maps[layer, head], cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(width), labels, fontsize=6, family="monospace")
        ax.set_yticks(range(width), labels, fontsize=6, family="monospace")
        ax.set_title(f"layer {layer}, head {head}", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
fig.suptitle("Attention weights on held-out text: row = reading position, column = "
             "position attended to")
fig.tight_layout()
lesson.savefig(fig, "heads")
# Per head: how far back it looks on average, and its share on the character just before.
T = len(passage)
distance = np.arange(T)[:, None] - np.arange(T)[None, :]          # t - s
reach = (maps * distance).sum(-1)[..., 1:].mean(-1)               # (layers, heads)
previous = maps[..., np.arange(1, T), np.arange(T - 1)].mean(-1)   # (layers, heads)
table = "\n".join(f"        layer {i}, head {h}   {reach[i, h]:5.1f}       {previous[i, h]:6.1%}"
                  for i in range(LAYERS) for h in range(HEADS))
queries = np.arange(1, T)                        # query t sees t + 1 characters
even_previous, even_reach = np.mean(1 / (queries + 1)), np.mean(queries / 2)  # evenly spread
sharpest = np.unravel_index(previous.argmax(), previous.shape)
farthest = np.unravel_index(reach.argmax(), reach.shape)
lesson.say(f"""
    heads.png draws every head's weights over a held-out passage of {T}
    characters, one picture per head (colour bar: the weight). Each head
    computes its own queries and keys, so each can look for something else.
    Per head, how many characters back it looks on average, and its mean
    weight on the character just before:

                              back    on the previous

{table}

    Layer {sharpest[0]}, head {sharpest[1]} puts {previous[sharpest]:.0%} of its weight on the
    character just before; layer {farthest[0]}, head {farthest[1]} looks furthest back, on
    average {reach[farthest]:.1f} characters (attention spread evenly over what came
    before would give {even_previous:.0%} and {even_reach:.1f}). No head was told what to look at:
    whatever each one does, it does because that lowered the loss.
    """)

# ============================================================ one block
lesson.section("One block, drawn")
ms.manual_seed(lesson.seed)
block = nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, activation="gelu", batch_first=True,
                                   norm_first=True)
x = ms.tensor(rng.standard_normal((1, 3, 4)).astype(np.float32), requires_grad=True)
with ms.scope("block"):
    y = block(x, src_mask=nn.generate_square_subsequent_mask(3), is_causal=True)
loss = (y * y).mean()
loss.backward()
drawn = lesson.draw(loss, "block", title="one pre-norm Transformer block (d_model 4, 2 heads, "
                                         "3 positions)")
lesson.say(f"""
    {drawn.name} is the graph of one block on 3 positions of 4 numbers,
    coloured by the size of each gradient. Each sublayer draws as a box of
    its own: norm1, then self-attention (the heads box inside it: the
    projection to q, k and v, the scaled scores, the masked softmax, the
    weighted sum), a residual add, norm2, the feed-forward part (linear,
    GELU, linear) and the second residual add. Stacking blocks repeats this
    picture; a GPT is an embedding below the stack and a linear layer on top.
    """)

lesson.try_this(
    ("--seed 1", "With other initial weights and other recall data, does the Transformer still "
                 "solve associative recall while the LSTM of the same size stays far behind?"),
    ("--text README.md", "On a much shorter text of another kind, which reaches fewer bits per "
                         "character: the tiny GPT or the LSTM?"))
lesson.finish()
