"""Generated tasks: every data set the lessons need, made from a seed.

Each generator takes its sizes first, then `seed`, then options with
defaults, and draws everything from `np.random.default_rng(seed)`: the same
arguments give the same data on every machine, so a lesson's numbers can be
reproduced and a test can pin them.

    seq2seq      addition, operand_lengths, dates, leak_free_split, seq2seq_vocab, encode_seq2seq
    long range   copy_task, adding_problem
    sequence     balanced_brackets, running_sum_sign
    labelling    tagging, entities, entity_f1
    time series  ar_series, seasonal_series, windows
    word2vec     class_grammar_corpus
"""
import datetime

import numpy as np

from microseq.data.batching import pad_batch
from microseq.data.text import DataError
from microseq.data.vocab import CharVocab


def _pick(options, rng):
    """One of `options`, uniformly at random."""
    return options[rng.integers(len(options))]


# --------------------------------------------------------------------- seq2seq

PAD = "_"    # fills questions and answers out to a common width
START = "="  # the decoder's first input: "now answer"


def addition(n, seed, max_digits=3):
    """`n` addition problems: questions like "16+75", answers like "91".

    Each operand's length (1 .. max_digits digits) is drawn evenly, then its
    value uniformly among the numbers of that length (0-9, 10-99, 100-999),
    so "4+4" is as likely a shape of problem as "417+385". There are only
    100 one-digit-plus-one-digit problems, so short problems repeat: split
    with `leak_free_split` to keep every copy of a question on one side.
    Returns two lists of str.
    """
    if max_digits < 1:
        raise DataError(f"addition: max_digits must be at least 1, got {max_digits}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_digits + 1, size=(2, n))
    low = np.where(lengths == 1, 0, 10 ** (lengths - 1))
    a, b = rng.integers(low, 10 ** lengths).tolist()
    questions = [f"{x}+{y}" for x, y in zip(a, b)]
    answers = [str(x + y) for x, y in zip(a, b)]
    return questions, answers


def operand_lengths(question):
    """The digit counts of the two operands of "a+b": "7+85" -> (1, 2)."""
    a, b = question.split("+")
    return len(a), len(b)


_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# The layouts `dates` writes, each as (template, weekday prefix or None).
# Every layout reads back to one date: the only numeric day/month orders are
# m/d with slashes and d.m with dots, and a two-digit year yy means 19yy for
# yy >= 50 and 20yy below (the range 1950..2049 covers each yy once).
_DATE_LAYOUTS = {
    "month d, Y": ("{month} {d}, {Y}", "{weekday}, "),   # (tuesday, )september 27, 1994
    "mon d, Y": ("{mon} {d}, {Y}", None),                # sep 27, 1994
    "d mon Y": ("{d} {mon} {Y}", "{wd} "),               # (tue )27 sep 1994
    "d month Y": ("{d} {month} {Y}", None),              # 27 september 1994
    "d mon y": ("{d} {mon} {y}", None),                  # 27 sep 94
    "m/d/y": ("{m}/{d}/{y}", None),                      # 9/27/94
    "m/d/Y": ("{m}/{d}/{Y}", None),                      # 9/27/1994
    "dd.mm.Y": ("{dd}.{mm}.{Y}", None),                  # 27.09.1994
}
# How a layout with words is typed; an all-digit layout has no case ("-").
_CASES = {"lower": str.lower, "Title": str.title, "UPPER": str.upper}
_FIRST_DAY = datetime.date(1950, 1, 1).toordinal()
_LAST_DAY = datetime.date(2049, 12, 31).toordinal()


def date_layouts():
    """Every (layout, case) pair `dates` writes, layouts in the order listed:
    the layouts with month or weekday names in each of lower, Title and
    UPPER case, the all-digit ones once, with case "-"."""
    return [(layout, case) for layout, (template, _) in _DATE_LAYOUTS.items()
            for case in (_CASES if "mon" in template else ["-"])]


def _date_fields(day):
    """Every piece a date template can use, for one datetime.date."""
    month, weekday = _MONTHS[day.month - 1], _WEEKDAYS[day.weekday()]
    return {"d": day.day, "dd": f"{day.day:02d}", "m": day.month, "mm": f"{day.month:02d}",
            "Y": day.year, "y": f"{day.year % 100:02d}", "month": month, "mon": month[:3],
            "weekday": weekday, "wd": weekday[:3]}


def dates(n, seed, with_layouts=False):
    """`n` distinct human-written dates and their ISO forms.

    Dates are uniform between 1950-01-01 and 2049-12-31. Each is written in
    a layout drawn evenly from eight ("september 27, 1994", "27 sep 94",
    "9/27/94", "27.09.1994", ...; see `date_layouts`); one with names is
    typed in lower, Title or UPPER case, evenly, and where the layout can
    start with the weekday ("Tuesday, September 27, 1994", "TUE 27 SEP
    1994") it does so half the time. Targets look like "1994-09-27".
    Returns (inputs, targets), two lists of str, and with `with_layouts` a
    third: each input's (layout, case), as in `date_layouts()`.
    """
    capacity = (_LAST_DAY - _FIRST_DAY + 1) * len(date_layouts())
    if n > capacity // 2:  # beyond this, drawing distinct inputs slows to a crawl
        raise DataError(f"dates: ask for at most {capacity // 2} examples, not {n}")
    rng = np.random.default_rng(seed)
    pairs = {}  # input text -> (ISO date, (layout, case)), in the order drawn
    layouts = list(_DATE_LAYOUTS)
    while len(pairs) < n:
        day = datetime.date.fromordinal(int(rng.integers(_FIRST_DAY, _LAST_DAY + 1)))
        layout = _pick(layouts, rng)
        template, weekday = _DATE_LAYOUTS[layout]
        if weekday and rng.random() < 0.5:
            template = weekday + template
        case = _pick(list(_CASES), rng) if "mon" in template else "-"
        text = template.format(**_date_fields(day))
        text = _CASES[case](text) if case in _CASES else text
        pairs.setdefault(text, (day.isoformat(), (layout, case)))
    inputs = list(pairs)
    targets, kinds = [iso for iso, _ in pairs.values()], [kind for _, kind in pairs.values()]
    return (inputs, targets, kinds) if with_layouts else (inputs, targets)


def leak_free_split(questions, n_test, seed, key=None):
    """Split example indices into train and test so no question is in both.

    Examples with equal `key(question)` (the question itself by default)
    form a group and go to the same side; pass e.g. a key that sorts the
    operands of "a+b" to keep "16+75" and "75+16" together too. Groups are
    drawn at random until test holds `n_test` examples (fewer only if no
    remaining group fits). Returns (train_idx, test_idx), sorted int64 arrays.
    """
    if not 0 <= n_test <= len(questions):
        raise DataError(f"n_test={n_test} is not between 0 and {len(questions)}")
    groups = {}
    for i, q in enumerate(questions):
        groups.setdefault(q if key is None else key(q), []).append(i)
    groups = list(groups.values())
    test = []
    for g in np.random.default_rng(seed).permutation(len(groups)):
        if len(test) + len(groups[g]) <= n_test:
            test.extend(groups[g])
        if len(test) == n_test:
            break
    is_test = np.zeros(len(questions), dtype=bool)
    is_test[test] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def seq2seq_vocab(questions, answers, alphabet=""):
    """A CharVocab over questions, answers and the characters of `alphabet`
    (e.g. every letter, for input a person may type), with PAD at id 0 and
    START at id 1."""
    return CharVocab("".join(questions) + "".join(answers) + alphabet, specials=(PAD, START))


def encode_seq2seq(questions, answers, vocab, reverse=False):
    """Fixed-width id arrays for an encoder-decoder.

    Returns (xs, dec_in, target), all int64:
      xs      (N, Lq)  each question padded with PAD to the longest, Lq;
                       with reverse=True every row is reversed as a whole,
                       so the padding comes first and the question's first
                       character is the encoder's last input.
                       xs[:, ::-1] undoes it exactly.
      target  (N, La)  each answer padded with PAD to the longest, La.
      dec_in  (N, La)  START followed by target[:, :-1]: teacher forcing.
    PAD ends an answer: read a prediction back with
    `vocab.decode(row).split(PAD)[0]`. The vocabulary must hold PAD and
    START (see `seq2seq_vocab`), and the texts must not.
    """
    if len(questions) != len(answers):
        raise DataError(f"{len(questions)} questions but {len(answers)} answers")
    for text in (*questions, *answers):
        if PAD in text or START in text:
            raise DataError(f"{text!r} contains the reserved symbol {PAD!r} or {START!r}")
    if PAD not in vocab.stoi or START not in vocab.stoi:
        raise DataError(f"the vocabulary lacks {PAD!r} or {START!r}: build it with seq2seq_vocab")
    pad_id = vocab.stoi[PAD]
    xs, _ = pad_batch([vocab.encode(q) for q in questions], pad_id)
    target, _ = pad_batch([vocab.encode(a) for a in answers], pad_id)
    if reverse:
        xs = np.ascontiguousarray(xs[:, ::-1])
    dec_in = np.empty_like(target)
    dec_in[:, 0] = vocab.stoi[START]
    dec_in[:, 1:] = target[:, :-1]
    return xs, dec_in, target


# ------------------------------------------------------------------ long range

def copy_task(n, length, seed, n_symbols=8):
    """Remember the first symbol through `length` distractors.

    x (n, length + 1) int64: every position uniform in 0 .. n_symbols - 1;
    y (n,) int64 is x[:, 0]. Only the first step matters, so a model must
    carry it across the whole sequence; chance accuracy is 1 / n_symbols.
    """
    x = np.random.default_rng(seed).integers(n_symbols, size=(n, length + 1))
    return x, x[:, 0].copy()


def adding_problem(n, length, seed):
    """The adding problem (Hochreiter & Schmidhuber, 1997).

    x (n, length, 2) float64: channel 0 holds values uniform in [0, 1);
    channel 1 is 1 at exactly two steps, one in each half, and 0 elsewhere.
    y (n,) is the sum of the two marked values. Always predicting 1.0 (the
    mean of y) gives MSE 1/6, about 0.167: a model must beat that to have
    learned anything.
    """
    if length < 2:
        raise DataError(f"adding_problem needs length >= 2, got {length}")
    rng = np.random.default_rng(seed)
    values = rng.random((n, length))
    rows = np.arange(n)
    first = rng.integers(0, length // 2, size=n)
    second = rng.integers(length // 2, length, size=n)
    markers = np.zeros((n, length))
    markers[rows, first] = markers[rows, second] = 1.0
    return np.stack([values, markers], axis=-1), values[rows, first] + values[rows, second]


# -------------------------------------------------------------------- sequence

def balanced_brackets(n, length, seed, pairs="()[]"):
    """Is the bracket string balanced? Strings of `length` chars from `pairs`.

    n // 2 strings are balanced; the others are hard negatives: a balanced
    string with two brackets swapped, so every bracket kind still occurs as
    often opened as closed and counting alone cannot tell them apart.
    Returns (strings, labels): a list of str and an int64 array, 1 = balanced.
    """
    if length < 2 or length % 2 or len(pairs) % 2:
        raise DataError(f"need an even length >= 2 and open/close pairs, got {length}, {pairs!r}")
    rng = np.random.default_rng(seed)
    labels = (rng.permutation(n) < n // 2).astype(np.int64)
    strings = []
    for label in labels:
        s = _random_balanced(length, pairs, rng)
        strings.append(s if label else _unbalance(s, pairs, rng))
    return strings, labels


def _random_balanced(length, pairs, rng):
    """A random balanced string: open or close at random while both are possible."""
    out, stack = [], []
    for i in range(length):
        if stack and (len(stack) == length - i or rng.random() < 0.5):
            out.append(pairs[2 * stack.pop() + 1])
        else:
            kind = int(rng.integers(len(pairs) // 2))
            stack.append(kind)
            out.append(pairs[2 * kind])
    return "".join(out)


def _unbalance(s, pairs, rng):
    """Swap two different characters of balanced `s` until it is unbalanced.
    (Swapping the first and last always works, so this ends quickly.)"""
    while True:
        i, j = rng.choice(len(s), size=2, replace=False)
        chars = list(s)
        chars[i], chars[j] = chars[j], chars[i]
        if chars[i] != chars[j] and not _is_balanced(chars, pairs):
            return "".join(chars)


def _is_balanced(chars, pairs):
    stack = []
    for ch in chars:
        k = pairs.index(ch)
        if k % 2 == 0:
            stack.append(k + 1)
        elif not stack or stack.pop() != k:
            return False
    return not stack


def running_sum_sign(n, length, seed):
    """Is the sum positive? x (n, length) int64 uniform in -9..9;
    y (n,) int64 is 1 where x.sum(axis=1) > 0 (a zero sum counts as 0)."""
    x = np.random.default_rng(seed).integers(-9, 10, size=(n, length))
    return x, (x.sum(axis=1) > 0).astype(np.int64)


# ------------------------------------------------------------------- labelling

TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-DATE", "I-DATE")

# Some words are both first names and places ("Florence", "Sydney", ...) and
# some both surnames and places ("Lincoln"): only the context tells which.
_FIRST_NAMES = ["Anna", "Omar", "Yuki", "Lars", "Maria", "Chen", "Priya", "Kofi", "Elena",
                "Tom", "Florence", "Sydney", "Jordan", "Austin", "Victoria"]
_SURNAMES = ["Berg", "Okafor", "Tanaka", "Silva", "Novak", "Khan", "Weber", "Moreau", "Lincoln"]
_PLACES = ["Oslo", "Lima", "Cairo", "Berlin", "Nairobi", "Florence", "Sydney", "Jordan",
           "Austin", "Victoria", "Lincoln", "New_York", "Buenos_Aires", "Cape_Town",
           "Hong_Kong", "San_Diego"]
_TEMPLATES = (
    "PER moved to LOC in DATE .",
    "on DATE PER flew from LOC to LOC .",
    "PER met PER in LOC .",
    "PER was born in LOC on DATE .",
    "the office in LOC opened on DATE .",
    "PER called PER from LOC .",
    "PER never visited LOC .",
    "in DATE the team moved to LOC .",
    "PER and PER left LOC before DATE .",
    "a letter from PER arrived on DATE .",
)


def tagging(n, seed):
    """`n` template sentences with person, place and date entities, BIO-tagged.

    Persons are a first name or first name + surname, places one or two
    tokens ("New York"), dates "3 may 1990", "may 1990" or "1990". Some
    names are also places, so a tagger must use the context.
    Returns (sentences, tags, TAGS): two lists of equally long token lists
    and the tuple of all tag names (index = tag id).
    """
    rng = np.random.default_rng(seed)
    sentences, tag_seqs = [], []
    for _ in range(n):
        tokens, tags = [], []
        for slot in _pick(_TEMPLATES, rng).split():
            if slot in ("PER", "LOC", "DATE"):
                words = _entity(slot, rng)
                tokens += words
                tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(words) - 1)
            else:
                tokens.append(slot)
                tags.append("O")
        sentences.append(tokens)
        tag_seqs.append(tags)
    return sentences, tag_seqs, TAGS


def _entity(kind, rng):
    """The tokens of one random entity of `kind` (PER, LOC or DATE)."""
    if kind == "PER":
        name = [_pick(_FIRST_NAMES, rng)]
        return name + [_pick(_SURNAMES, rng)] if rng.random() < 0.5 else name
    if kind == "LOC":
        return _pick(_PLACES, rng).split("_")
    day, month, year = rng.integers(1, 29), _pick(_MONTHS, rng), rng.integers(1950, 2021)
    return _pick(([str(day), month, str(year)], [month, str(year)], [str(year)]), rng)


def entities(tags):
    """The entity spans of one BIO tag sequence: a set of (type, start, end),
    end exclusive. As in the CoNLL evaluation script, an I-X that does not
    continue an X entity starts a new one, so any tag sequence can be scored."""
    spans, kind, start = set(), None, 0
    for i, tag in enumerate([*tags, "O"]):  # the sentinel closes a final entity
        prefix, _, tag_kind = tag.partition("-")
        if kind is not None and (prefix != "I" or tag_kind != kind):
            spans.add((kind, start, i))
            kind = None
        if kind is None and prefix in ("B", "I"):
            kind, start = tag_kind, i
    return spans


def entity_f1(true_tag_seqs, pred_tag_seqs):
    """Entity-level F1 over many sentences: an entity counts as found only
    if its type, start and end all match. 1.0 when neither side has any."""
    if len(true_tag_seqs) != len(pred_tag_seqs):
        raise DataError(f"{len(true_tag_seqs)} true sequences but {len(pred_tag_seqs)} predicted")
    n_true = n_pred = n_hit = 0
    for true, pred in zip(true_tag_seqs, pred_tag_seqs):
        if len(true) != len(pred):
            raise DataError(f"tag sequences of lengths {len(true)} and {len(pred)} differ")
        t, p = entities(true), entities(pred)
        n_true, n_pred, n_hit = n_true + len(t), n_pred + len(p), n_hit + len(t & p)
    # F1 = 2PR / (P + R) with P = hit/pred, R = hit/true, written without divisions by 0
    return 1.0 if n_true + n_pred == 0 else 2 * n_hit / (n_true + n_pred)


# ----------------------------------------------------------------- time series

def ar_series(n, seed, coeffs=(1.2, -0.5), noise_std=1.0):
    """`n` steps of the AR(p) process x[t] = sum_i coeffs[i] * x[t-1-i] + noise.

    The noise is Gaussian with std `noise_std`. The default coefficients give
    a stationary process that oscillates (complex roots), so a forecaster
    has something to learn; coefficients whose process would blow up are a
    DataError. The first 500 steps are discarded so the series starts in
    its stationary regime rather than at zero. Returns a float64 array (n,).
    """
    coeffs = np.asarray(coeffs, dtype=np.float64)
    p = len(coeffs)
    companion = np.eye(p, k=-1)  # maps (x[t-1], ..., x[t-p]) to (x[t], ..., x[t-p+1])
    companion[0] = coeffs
    if np.abs(np.linalg.eigvals(companion)).max() >= 1:
        raise DataError(f"AR coefficients {coeffs.tolist()} are not stationary")
    burn_in = 500
    noise = np.random.default_rng(seed).normal(0.0, noise_std, size=burn_in + n)
    x = np.zeros(p + burn_in + n)
    for t in range(p, len(x)):
        x[t] = coeffs @ x[t - p:t][::-1] + noise[t - p]
    return x[-n:]


def seasonal_series(n, seed, period=12, noise_std=0.1):
    """sin(2 pi t / period) plus Gaussian noise of std `noise_std`: a seasonal
    series with no trend. Returns a float64 array (n,)."""
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0.0, noise_std, size=n)
    return np.sin(2 * np.pi * t / period) + noise


def windows(series, width):
    """One-step-ahead forecasting pairs: X (N, width) holds series[i:i+width]
    and y (N,) holds series[i+width], for N = len(series) - width."""
    series = np.asarray(series)
    if len(series) <= width:
        raise DataError(f"a series of {len(series)} steps has no window of width {width} + 1")
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], width)
    return X.copy(), series[width:].copy()


# -------------------------------------------------------------------- word2vec

_WORD_CLASSES = {
    "animal": ["cat", "dog", "horse", "rabbit", "mouse", "goat", "sheep", "fox"],
    "color": ["red", "blue", "green", "yellow", "black", "white", "brown", "purple"],
    "verb": ["eats", "finds", "wants", "sees", "likes", "takes", "smells", "carries"],
    "food": ["apple", "bread", "cheese", "rice", "carrot", "cake", "soup", "grape"],
    "place": ["garden", "kitchen", "forest", "market", "river", "field", "barn", "village"],
    "number": ["two", "three", "four", "five", "six", "seven", "eight", "nine"],
}
# Each class has its own neighbours (colours before animals, numbers before
# foods, "the" and "in" before places), so classes differ in context while
# the words inside a class are interchangeable.
_GRAMMAR = (
    "the color animal verb number food in the place .",
    "number food lie in the place .",
    "the animal from the place verb the food .",
    "a color animal verb number food .",
)


def class_grammar_corpus(n_sentences, seed):
    """A corpus with planted structure, for word2vec.

    Sentences come from a few templates whose slots are word classes
    (animals, colours, verbs, foods, places, numbers; eight words each),
    filled uniformly at random. Words of one class share every context, so
    good embeddings put each word's nearest neighbours in its own class:
    with 2000 sentences (about 16k tokens) even raw co-occurrence counts
    (PPMI, window 2) put every word's 5 nearest neighbours in its class.
    Returns (tokens, word_class): a flat token list, each sentence ending in
    ".", and a dict from every class word to its class name.
    """
    rng = np.random.default_rng(seed)
    tokens = []
    for _ in range(n_sentences):
        for slot in _pick(_GRAMMAR, rng).split():
            tokens.append(_pick(_WORD_CLASSES[slot], rng) if slot in _WORD_CLASSES else slot)
    word_class = {w: c for c, ws in _WORD_CLASSES.items() for w in ws}
    return tokens, word_class
