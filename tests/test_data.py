"""Tests for microseq.data: every check compares against something computed
independently (the standard library, a hand-worked example, a second
implementation written here), never against the code under test."""
import datetime
import inspect
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microseq.data import (
    char_split,
    PAD,
    START,
    TAGS,
    BPTTBatcher,
    CharVocab,
    DataError,
    WordVocab,
    adding_problem,
    addition,
    date_layouts,
    ar_series,
    balanced_brackets,
    class_grammar_corpus,
    copy_task,
    dates,
    encode_seq2seq,
    entities,
    entity_f1,
    leak_free_split,
    load_text,
    minibatches,
    operand_lengths,
    pad_batch,
    pydoc_topics,
    running_sum_sign,
    seasonal_series,
    seq2seq_vocab,
    stdlib_docstrings,
    tagging,
    windows,
    words,
)

pytestmark = pytest.mark.data


# ------------------------------------------------------------------------ text

def test_load_text_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.txt"
    with pytest.raises(DataError, match="nowhere.txt: cannot read"):
        load_text(path)


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"])
def test_load_text_empty_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match="empty.txt: file is empty"):
        load_text(path)


def test_load_text_bad_bytes_give_line_and_offset(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("first line\nsecond\nab\xe9".encode() + b"c\xffd\n")
    # line 3 is b"ab\xc3\xa9c\xffd": the bad byte is at offset 5 of it
    with pytest.raises(DataError, match=r"notes.txt: line 3: not UTF-8 \(byte 0xff at offset 5"):
        load_text(str(path))


def test_load_text_is_a_value_error_for_callers_that_catch_those(tmp_path):
    with pytest.raises(ValueError):
        load_text(tmp_path / "missing.txt")


def test_load_text_normalises_newlines_and_bom(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes("\ufeffcafé\r\nnaïve\rend\n".encode("utf-8"))
    assert load_text(path) == "café\nnaïve\nend\n"


def test_default_corpus_is_every_pydoc_topic():
    from pydoc_data.topics import topics
    text = load_text()
    assert text == pydoc_topics()
    assert 400_000 < len(text) < 600_000
    assert all(body.strip() in text for body in topics.values())


def test_stdlib_docstrings_are_deterministic_silent_and_cut():
    # Two fresh interpreters with different hash seeds: set or dict order
    # leaking into the text would change the digest, and anything printed
    # on import would show up in stdout. Fresh interpreters also keep the
    # comparison clear of other tests' imports that patch stdlib functions.
    code = ("import hashlib; from microseq.data import stdlib_docstrings; "
            "print(hashlib.sha256(stdlib_docstrings().encode()).hexdigest())")
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, cwd=Path(__file__).parents[1], check=True)
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1] and len(outputs[0]) == 65
    text = stdlib_docstrings()
    assert inspect.cleandoc(json.__doc__) in text
    assert inspect.cleandoc(json.dumps.__doc__) in text
    assert stdlib_docstrings(max_chars=1000) == text[:1000]


def test_words():
    expected = ["don't", "panic", "it's", "o'clock", "ok"]
    assert words("Don't PANIC: it's 42 o'clock -- ok?") == expected


# ----------------------------------------------------------------------- vocab

@given(st.text(min_size=1), st.text())
def test_char_vocab_round_trip(corpus, sample):
    vocab = CharVocab(corpus)
    assert vocab.itos == sorted(set(corpus))
    ids = vocab.encode(corpus)
    assert ids.dtype == np.int64 and ids.shape == (len(corpus),)
    assert vocab.decode(ids) == corpus
    assert all(vocab.stoi[ch] == i for i, ch in enumerate(vocab.itos))
    unknown = set(sample) - set(corpus)
    if unknown:
        with pytest.raises(DataError, match="is not in the vocabulary"):
            vocab.encode(sample)


def test_char_vocab_specials_come_first():
    vocab = CharVocab("b+a", specials="_=")
    assert vocab.itos == ["_", "=", "+", "a", "b"] and len(vocab) == 5
    with pytest.raises(DataError, match="'z' is not in the vocabulary"):
        vocab.encode("az")
    with pytest.raises(DataError):
        CharVocab("abc", specials=("<pad>",))


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "the", "of"]), max_size=60),
       st.integers(1, 4))
def test_word_vocab_order_counts_and_unk(tokens, min_count):
    vocab = WordVocab(tokens, min_count=min_count, specials=("<pad>",))
    seen = Counter(tokens)
    frequent = [w for w in seen if seen[w] >= min_count]
    expected = sorted(frequent, key=lambda w: (-seen[w], w))
    assert vocab.itos == ["<pad>", "<unk>"] + expected
    ids = vocab.encode(tokens)
    assert vocab.decode(ids) == [w if seen[w] >= min_count else "<unk>" for w in tokens]
    assert vocab.counts.tolist() == np.bincount(ids, minlength=len(vocab)).tolist()


def test_word_vocab_without_unk_rejects_unknown_words():
    vocab = WordVocab(["a", "b", "a"], unk=None)
    assert vocab.itos == ["a", "b"] and vocab.counts.tolist() == [2, 1]
    with pytest.raises(DataError, match="'zebra' is not in the vocabulary"):
        vocab.encode(["a", "zebra"])


# -------------------------------------------------------------------- batching

@given(st.integers(2, 300), st.integers(1, 6), st.integers(1, 12))
def test_bptt_windows_continue_each_stream(n_tokens, batch_size, seq_len):
    stream_len = (n_tokens - 1) // batch_size  # the documented layout
    if stream_len < seq_len:
        with pytest.raises(DataError, match="too few"):
            BPTTBatcher(np.arange(n_tokens), batch_size, seq_len)
        return
    # Ids equal to positions make every window say where it came from.
    positions = BPTTBatcher(np.arange(n_tokens), batch_size, seq_len)
    n_windows = stream_len // seq_len
    assert len(positions) == n_windows
    windows_ = list(positions)
    assert len(windows_) == n_windows
    for x, y in windows_:
        assert x.shape == y.shape == (batch_size, seq_len)
        assert x.dtype == y.dtype == np.int64
        np.testing.assert_array_equal(y, x + 1)  # y is the next token
    streams = np.concatenate([x for x, _ in windows_], axis=1)
    for b in range(batch_size):
        start = b * stream_len
        np.testing.assert_array_equal(streams[b], np.arange(start, start + n_windows * seq_len))
    # The same positions pick the same tokens out of any id stream.
    ids = np.random.default_rng(n_tokens).integers(0, 50, size=n_tokens).astype(np.int32)
    for (x, y), (px, py) in zip(BPTTBatcher(ids, batch_size, seq_len), windows_):
        np.testing.assert_array_equal(x, ids[px])
        np.testing.assert_array_equal(y, ids[py])


@given(st.lists(st.lists(st.integers(1, 9), max_size=8), max_size=6), st.integers(0, 3))
def test_pad_batch(seqs, extra):
    longest = max(map(len, seqs), default=0)
    ids, mask = pad_batch(seqs, pad_id=0, length=longest + extra)
    assert ids.shape == mask.shape == (len(seqs), longest + extra)
    assert ids.dtype == np.int64 and mask.dtype == bool
    for row, seq in enumerate(seqs):
        assert ids[row][mask[row]].tolist() == seq
        assert mask[row].tolist() == [True] * len(seq) + [False] * (longest + extra - len(seq))
    assert (ids[~mask] == 0).all()
    assert pad_batch(seqs, pad_id=0)[0].shape == (len(seqs), longest)
    if longest:
        with pytest.raises(DataError):
            pad_batch(seqs, pad_id=0, length=longest - 1)


@given(st.integers(0, 100), st.integers(1, 17), st.integers(0, 5))
def test_minibatches_cover_every_example_once(n, batch_size, seed):
    batches = minibatches(n, batch_size, rng=seed)
    everything = np.concatenate(batches) if batches else np.array([], dtype=int)
    assert sorted(everything.tolist()) == list(range(n))
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, minibatches(n, batch_size, seed)))
    in_order = minibatches(n, batch_size)
    assert (np.concatenate(in_order) if in_order else everything[:0]).tolist() == list(range(n))


# --------------------------------------------------------------------- seq2seq

def test_addition_answers_are_sums():
    questions, answers = addition(2000, seed=0)
    for q, a in zip(questions, answers):
        x, y = q.split("+")
        assert 0 <= int(x) < 1000 and 0 <= int(y) < 1000
        assert int(a) == int(x) + int(y)
        assert str(int(x)) == x and str(int(y)) == y  # no leading zeros
        assert operand_lengths(q) == (len(x), len(y))


def test_addition_draws_operand_lengths_evenly():
    n = 18_000
    questions, _ = addition(n, seed=1)
    shapes = Counter(operand_lengths(q) for q in questions)
    assert set(shapes) == {(a, b) for a in (1, 2, 3) for b in (1, 2, 3)}
    # each of the 9 shapes has probability 1/9: 2000 expected, sd about 42
    assert all(abs(count - n / 9) < 6 * 42 for count in shapes.values()), shapes
    # and within a length every value: all 100 one-digit-plus-one-digit problems
    assert {q for q in questions if operand_lengths(q) == (1, 1)} == {
        f"{a}+{b}" for a in range(10) for b in range(10)}
    with pytest.raises(DataError, match="max_digits"):
        addition(10, seed=1, max_digits=0)


def test_leak_free_split_keeps_equal_questions_together():
    questions, _ = addition(500, seed=2)
    doubled = questions + questions[:100]  # 100 questions now occur twice
    train, test = leak_free_split(doubled, n_test=150, seed=0)
    assert len(test) == 150 and len(train) + len(test) == len(doubled)
    assert set(train.tolist()) | set(test.tolist()) == set(range(len(doubled)))
    assert not {doubled[i] for i in test} & {doubled[i] for i in train}


def test_leak_free_split_with_a_commutative_key():
    questions, _ = addition(80, seed=3, max_digits=1)

    def key(q):
        return tuple(sorted(q.split("+")))

    train, test = leak_free_split(questions, n_test=20, seed=5, key=key)
    assert len(test) <= 20 and len(train) + len(test) == 80
    assert not {key(questions[i]) for i in test} & {key(questions[i]) for i in train}


def test_encode_seq2seq_layout_and_exact_reversal():
    questions, answers = addition(300, seed=4)
    vocab = seq2seq_vocab(questions, answers)
    assert vocab.stoi[PAD] == 0 and vocab.stoi[START] == 1
    xs, dec_in, target = encode_seq2seq(questions, answers, vocab)
    rev, dec_in_r, target_r = encode_seq2seq(questions, answers, vocab, reverse=True)
    width_q, width_a = max(map(len, questions)), max(map(len, answers))
    assert xs.shape == rev.shape == (300, width_q)
    assert dec_in.shape == target.shape == (300, width_a)
    np.testing.assert_array_equal(dec_in, dec_in_r)
    np.testing.assert_array_equal(target, target_r)
    for i, (q, a) in enumerate(zip(questions, answers)):
        assert vocab.decode(xs[i]) == q + PAD * (width_q - len(q))
        assert vocab.decode(rev[i]) == (q + PAD * (width_q - len(q)))[::-1]
        assert vocab.decode(rev[i][::-1]).split(PAD)[0] == q  # reversal is undone exactly
        assert vocab.decode(target[i]).split(PAD)[0] == a
        assert vocab.decode(dec_in[i]) == (START + a + PAD * width_a)[:width_a]


def test_encode_seq2seq_rejects_reserved_symbols():
    vocab = seq2seq_vocab(["1+1"], ["2"])
    with pytest.raises(DataError, match="reserved"):
        encode_seq2seq(["1_1"], ["2"], CharVocab("1_2", specials="_="))
    with pytest.raises(DataError, match="lacks"):
        encode_seq2seq(["1+1"], ["2"], CharVocab("1+2"))
    with pytest.raises(DataError):
        encode_seq2seq(["1+1"], ["2", "3"], vocab)


# An independent reader for every format dates() claims to write. %y is
# read by strptime as 1969..2068; the task's rule is 1950..2049.
_STRPTIME_FORMATS = ("%B %d, %Y", "%A, %B %d, %Y", "%b %d, %Y", "%d %b %Y", "%a %d %b %Y",
                     "%d %B %Y", "%d %b %y", "%m/%d/%y", "%m/%d/%Y", "%d.%m.%Y")


def _read_date(text):
    """Every (date, format) strptime can read from text, with 2-digit years fixed."""
    readings = []
    for fmt in _STRPTIME_FORMATS:
        try:
            parsed = time.strptime(text, fmt)
        except ValueError:
            continue
        year = parsed.tm_year - 100 if parsed.tm_year > 2049 else parsed.tm_year
        day = datetime.date(year, parsed.tm_mon, parsed.tm_mday)
        if "%A" in fmt or "%a" in fmt:
            assert parsed.tm_wday == day.weekday(), text  # the written weekday is right
        readings.append((day, fmt))
    return readings


def test_dates_read_back_to_their_iso_targets():
    inputs, targets = dates(3000, seed=0)
    assert len(set(inputs)) == 3000
    formats_seen, cases = set(), set()
    for text, iso in zip(inputs, targets):
        readings = _read_date(text)
        assert readings, f"{text!r} is in no known format"
        assert {day.isoformat() for day, _ in readings} == {iso}, text  # unambiguous
        assert datetime.date(1950, 1, 1) <= readings[0][0] <= datetime.date(2049, 12, 31)
        formats_seen |= {fmt for _, fmt in readings}
        letters = "".join(filter(str.isalpha, text))
        cases.add(letters.islower() and "lower" or letters.isupper() and "upper" or "mixed")
    assert len(formats_seen) == len(_STRPTIME_FORMATS)
    assert cases == {"lower", "upper", "mixed"}  # "mixed" includes the all-digit forms


def test_dates_come_in_every_layout_and_case():
    inputs, _, kinds = dates(3000, seed=1, with_layouts=True)
    assert set(kinds) == set(date_layouts())
    assert len(date_layouts()) == 5 * 3 + 3   # 5 layouts with names, 3 all-digit
    for text, (_, case) in zip(inputs, kinds):
        letters = "".join(filter(str.isalpha, text))
        expected = {"lower": letters.lower(), "Title": text.title(), "UPPER": letters.upper(),
                    "-": ""}[case]
        assert (letters if case != "Title" else text) == expected, (text, case)
    # the layouts that can start with a weekday do, about half the time
    for layout in ("month d, Y", "d mon Y"):
        words = [len(t.split()) for t, k in zip(inputs, kinds) if k[0] == layout]
        assert 0.35 < np.mean([n == 4 for n in words]) < 0.65, layout


# ------------------------------------------------------------------ long range

def test_copy_task_label_is_the_first_symbol():
    x, y = copy_task(50, length=20, seed=0, n_symbols=5)
    assert x.shape == (50, 21) and y.shape == (50,)
    assert x.min() >= 0 and x.max() < 5
    assert y.tolist() == [row[0] for row in x.tolist()]


def test_adding_problem_markers_and_baseline():
    n, length = 20_000, 30
    x, y = adding_problem(n, length, seed=0)
    assert x.shape == (n, length, 2) and y.shape == (n,)
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (markers[:, :length // 2].sum(axis=1) == 1).all()
    assert (markers[:, length // 2:].sum(axis=1) == 1).all()
    for row in range(0, n, 997):
        marked = [v for v, m in zip(values[row], markers[row]) if m == 1]
        assert y[row] == pytest.approx(sum(marked))
    # predicting the mean 1.0 scores Var(U1 + U2) = 2/12
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.01)


# -------------------------------------------------------------------- sequence

def _balanced(s):
    closer = {"(": ")", "[": "]"}
    stack = []
    for ch in s:
        if ch in closer:
            stack.append(closer[ch])
        elif not stack or stack.pop() != ch:
            return False
    return not stack


def test_balanced_brackets_labels_and_hard_negatives():
    strings, labels = balanced_brackets(400, 12, seed=0)
    assert labels.sum() == 200 and len(strings) == 400
    for s, label in zip(strings, labels):
        assert len(s) == 12 and set(s) <= set("()[]")
        assert _balanced(s) == bool(label), s
        # negatives too open and close each kind equally often
        assert s.count("(") == s.count(")") and s.count("[") == s.count("]")


def test_running_sum_sign():
    x, y = running_sum_sign(300, 15, seed=0)
    assert x.shape == (300, 15) and x.min() >= -9 and x.max() <= 9
    assert y.tolist() == [int(sum(row) > 0) for row in x.tolist()]
    assert 0.35 < y.mean() < 0.65


# ------------------------------------------------------------------- labelling

def test_tagging_sentences_are_well_formed_bio():
    sentences, tags, tag_names = tagging(500, seed=0)
    assert list(tag_names) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    assert tag_names == TAGS
    seen_as = {}
    for tokens, seq in zip(sentences, tags):
        assert len(tokens) == len(seq) > 0
        for i, tag in enumerate(seq):
            assert tag in tag_names
            if tag.startswith("I-"):
                assert seq[i - 1] in ("B-" + tag[2:], tag), seq  # continues its entity
        for kind, start, end in entities(seq):
            span = tokens[start:end]
            seen_as.setdefault(span[0], set()).add(kind)
            if kind == "DATE":
                assert span[-1].isdigit() and 1950 <= int(span[-1]) <= 2020
            assert 1 <= len(span) <= 3
    # some words are persons in one sentence and places in another
    assert any({"PER", "LOC"} <= kinds for kinds in seen_as.values())


def test_entities_and_f1_on_hand_examples():
    true = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-DATE", "I-DATE", "I-DATE"]
    assert entities(true) == {("PER", 0, 2), ("LOC", 3, 4), ("DATE", 5, 8)}
    # an I- tag that does not continue an entity starts one (CoNLL rule)
    assert entities(["O", "I-LOC", "I-LOC", "I-PER"]) == {("LOC", 1, 3), ("PER", 3, 4)}
    assert entities(["B-PER", "B-PER"]) == {("PER", 0, 1), ("PER", 1, 2)}
    pred = ["B-PER", "O", "O", "B-LOC", "O", "B-DATE", "I-DATE", "I-DATE"]
    # 2 of 3 true entities found, 2 of 3 predicted are right: P = R = F1 = 2/3
    assert entity_f1([true], [pred]) == pytest.approx(2 / 3)
    assert entity_f1([["O"]], [["O"]]) == 1.0
    with pytest.raises(DataError):
        entity_f1([true], [pred[:-1]])


def test_entity_f1_is_one_on_truth_and_drops_when_perturbed():
    _, tags, _ = tagging(200, seed=1)
    assert entity_f1(tags, tags) == 1.0
    perturbed = [list(seq) for seq in tags]
    first = next(i for i, tag in enumerate(perturbed[0]) if tag.startswith("B-"))
    perturbed[0][first] = "O"
    n = sum(len(entities(seq)) for seq in tags)
    # n - 1 entities still match; if the lost one went on with I- tags,
    # those now form a wrong entity of their own: F1 = 2 hits / (true + predicted)
    has_tail = perturbed[0][first + 1:first + 2] == ["I-" + tags[0][first][2:]]
    n_pred = n if has_tail else n - 1
    assert entity_f1(tags, perturbed) == pytest.approx(2 * (n - 1) / (n + n_pred))


# ----------------------------------------------------------------- time series

def test_ar_series_recovers_its_coefficients():
    coeffs = (1.2, -0.5)
    x = ar_series(20_000, seed=0, coeffs=coeffs, noise_std=0.5)
    # ordinary least squares of x[t] on (x[t-1], x[t-2])
    design = np.stack([x[1:-1], x[:-2]], axis=1)
    fitted, *_ = np.linalg.lstsq(design, x[2:], rcond=None)
    np.testing.assert_allclose(fitted, coeffs, atol=0.02)
    residual = x[2:] - design @ fitted
    assert residual.std() == pytest.approx(0.5, rel=0.05)
    with pytest.raises(DataError, match="not stationary"):
        ar_series(10, seed=0, coeffs=(1.1,))


def test_seasonal_series_repeats_with_its_period():
    x = seasonal_series(100, seed=0, period=12, noise_std=0.0)
    np.testing.assert_allclose(x[12:], x[:-12], atol=1e-12)
    assert x.max() == pytest.approx(1.0, abs=0.05) and x.min() == pytest.approx(-1.0, abs=0.05)
    noisy = seasonal_series(5000, seed=0, period=12, noise_std=0.3)
    clean = seasonal_series(5000, seed=0, period=12, noise_std=0.0)
    assert (noisy - clean).std() == pytest.approx(0.3, rel=0.05)


@given(st.lists(st.floats(-10, 10), min_size=2, max_size=30), st.integers(1, 5))
def test_windows_are_one_step_ahead_pairs(series, width):
    if len(series) <= width:
        with pytest.raises(DataError):
            windows(series, width)
        return
    X, y = windows(series, width)
    assert X.shape == (len(series) - width, width) and y.shape == (len(series) - width,)
    for i in range(len(y)):
        assert X[i].tolist() == series[i:i + width] and y[i] == series[i + width]


# -------------------------------------------------------------------- word2vec

def test_class_grammar_corpus_plants_its_classes():
    tokens, word_class = class_grammar_corpus(2000, seed=0)
    classes = Counter(word_class.values())
    assert len(classes) >= 6 and min(classes.values()) >= 6
    # PPMI co-occurrence vectors (window 2): the simplest count-based
    # embedding. If even it finds each word's 5 nearest neighbours in the
    # word's class, the structure is there for word2vec to learn.
    vocab = WordVocab(tokens, unk=None)
    ids = vocab.encode(tokens)
    counts = np.zeros((len(vocab), len(vocab)))
    for offset in (1, 2):
        np.add.at(counts, (ids[:-offset], ids[offset:]), 1)
        np.add.at(counts, (ids[offset:], ids[:-offset]), 1)
    expected = np.outer(counts.sum(1), counts.sum(0)) / counts.sum()
    with np.errstate(divide="ignore"):
        ppmi = np.maximum(np.log(counts / expected), 0)
    unit = ppmi / np.linalg.norm(ppmi, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    for word, cls in word_class.items():
        nearest = np.argsort(-similarity[vocab.stoi[word]])[:5]
        assert {word_class.get(vocab.itos[j]) for j in nearest} == {cls}, word


# ----------------------------------------------------------------- determinism

_GENERATORS = {
    "addition": lambda seed: addition(50, seed),
    "dates": lambda seed: dates(50, seed),
    "split": lambda seed: leak_free_split(addition(50, 0)[0], 10, seed),
    "copy_task": lambda seed: copy_task(20, 10, seed),
    "adding_problem": lambda seed: adding_problem(20, 10, seed),
    "balanced_brackets": lambda seed: balanced_brackets(20, 10, seed),
    "running_sum_sign": lambda seed: running_sum_sign(20, 10, seed),
    "tagging": lambda seed: tagging(20, seed),
    "ar_series": lambda seed: ar_series(50, seed),
    "seasonal_series": lambda seed: seasonal_series(50, seed),
    "class_grammar_corpus": lambda seed: class_grammar_corpus(20, seed),
    "minibatches": lambda seed: minibatches(30, 7, seed),
}


def _canonical(data):
    """Nested data as JSON text, numpy arrays included, for exact comparison."""
    return json.dumps(data, default=lambda a: a.tolist(), sort_keys=True)


@pytest.mark.parametrize("name", sorted(_GENERATORS))
def test_generators_are_deterministic_in_their_seed(name):
    make = _GENERATORS[name]
    assert _canonical(make(7)) == _canonical(make(7))
    assert _canonical(make(7)) != _canonical(make(8))


@given(st.text(alphabet="abc \n", min_size=1, max_size=60), st.floats(0.1, 0.9))
def test_char_split_cuts_the_encoded_text_in_order(text, fraction):
    vocab, train_ids, test_ids = char_split(text, fraction)
    assert len(train_ids) == int(fraction * len(text))
    assert vocab.decode(list(train_ids) + list(test_ids)) == text
