"""Bad input, as a new user gives it, gets one clear error naming the problem:
tables of (what is given, the exception, words the message must contain).

The library raises a specific exception; a lesson turns a flag it cannot use,
a text it cannot learn from or a run that diverged into one line and a
non-zero exit, with no traceback.
"""
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lesson_runs import LESSONS, run_lesson

import microseq as ms
from microseq import nn
from microseq.checkpoint import CheckpointError
from microseq.data import CharVocab, DataError, WordVocab, load_text
from microseq.lesson import Lesson
from microseq.models.char_lm import CharLM
from microseq.train import NonFiniteLossError

# --- the library ------------------------------------------------------------------

CHARS = CharVocab("abc")
WORDS = WordVocab("a b c".split())


def embed(ids, padding_idx=None):
    return nn.Embedding(5, 2, padding_idx=padding_idx)(np.array(ids))


def sample(temperature):
    ms.manual_seed(0)
    return CharLM(3, hidden_size=4, embed_size=2).sample([0, 1], 3, temperature=temperature)


LIBRARY = {
    "Embedding, id -1": (lambda: embed([0, -1]), IndexError,
                         "Embedding: id -1 is outside the table of 5 rows (ids must be 0 to 4)"),
    "Embedding, id 5": (lambda: embed([[5, 0]]), IndexError, "id 5 is outside the table of 5"),
    "Embedding, id -1 with padding": (lambda: embed([-1], padding_idx=0), IndexError, "id -1"),
    "Embedding, float ids": (lambda: embed([0.5]), TypeError, "ids must be integers, got float64"),
    "CharVocab.decode, id -1": (lambda: CHARS.decode([0, -1]), DataError,
                                "id -1 is not in the vocabulary (ids are 0 to 2)"),
    "CharVocab.decode, id 3": (lambda: CHARS.decode(np.array([[3]])), DataError, "id 3 is not"),
    "CharVocab.decode, floats": (lambda: CHARS.decode([1.7]), DataError,
                                 "ids must be integers, got float64 values such as 1.7"),
    "WordVocab.decode, id -1": (lambda: WORDS.decode([-1]), DataError, "id -1 is not in the"),
    "sample, temperature -1": (lambda: sample(-1), ValueError,
                               "temperature must be a number >= 0 (0: always the most likely "
                               "character), got -1"),
    "sample, temperature NaN": (lambda: sample(math.nan), ValueError, "got nan"),
    "sample, temperature inf": (lambda: sample(math.inf), ValueError, "got inf"),
}


@pytest.mark.parametrize("call, kind, message", LIBRARY.values(), ids=LIBRARY)
def test_the_library_names_the_problem(call, kind, message):
    with pytest.raises(kind) as error:
        call()
    assert message in str(error.value)


def test_ids_in_range_still_work():
    assert embed([[0, 4]]).shape == (1, 2, 2)
    assert CHARS.decode([]) == "" and CHARS.decode(np.array([2, 0], np.int32)) == "ca"
    assert sample(0).shape == (1, 3)  # temperature 0: the most likely character


TEXTS = {
    "five characters": ("hello", 1139, "notes.txt: 5 characters, too short: at least 1,139 are "
                                       "needed (give a longer file)"),
    "one repeated character": ("a" * 3000 + "\n", 1, "notes.txt: the text is one character, "
                                                    "'a', repeated: there is nothing to learn"),
    "only spaces": ("   \n ", 1, "notes.txt: file is empty"),
}


@pytest.mark.parametrize("content, min_chars, message", TEXTS.values(), ids=TEXTS)
def test_load_text_refuses_a_text_too_small_or_with_nothing_to_learn(tmp_path, content,
                                                                     min_chars, message):
    path = tmp_path / "notes.txt"
    path.write_text(content)
    with pytest.raises(DataError) as error:
        load_text(path, min_chars=min_chars)
    assert str(error.value).startswith(str(tmp_path)) and message in str(error.value)
    path.write_text("ab" * 570)
    assert load_text(path, min_chars=1139) == "ab" * 570  # just long enough


# --- lessons: flags -------------------------------------------------------------------


FLAGS = {
    "--seed -1": (["--seed", "-1"], "lesson 1: argument --seed: must be a whole number >= 0, "
                                    "got '-1' (--help lists the options)"),
    "--seed 1.5": (["--seed", "1.5"], "argument --seed: must be a whole number >= 0, got '1.5'"),
    "--out a file": (["--out", "{file}"], "argument --out: {file} is a file, not a directory"),
    "--out under a file": (["--out", "{file}/runs"], "argument --out: {file} is a file, not a "
                                                     "directory, so {file}/runs cannot be made"),
    "an unknown flag": (["--speed", "2"], "lesson 1: unrecognized arguments: --speed 2"),
}


@pytest.mark.parametrize("argv, message", FLAGS.values(), ids=FLAGS)
def test_a_bad_flag_is_one_line_naming_it(tmp_path, capsys, argv, message):
    file = tmp_path / "README.md"
    file.write_text("a file")
    with pytest.raises(SystemExit) as exit_:
        Lesson(1, "a test", argv=[arg.format(file=file) for arg in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(file=file) in err, err


def test_an_unwritable_out_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "touch", refuse)  # also as root, who may write anywhere
    with pytest.raises(SystemExit):
        Lesson(1, "a test", argv=["--out", str(tmp_path / "out")])
    assert capsys.readouterr().err == (f"lesson 1: argument --out: cannot create or write to "
                                       f"{tmp_path / 'out'}: Permission denied "
                                       "(--help lists the options)\n")


USER_ERRORS = [DataError("notes.txt: too short"), CheckpointError("ck.npz is damaged"),
               NonFiniteLossError("train: the loss is nan at step 7")]


@pytest.mark.parametrize("error", USER_ERRORS, ids=lambda e: type(e).__name__)
def test_the_library_errors_a_lesson_meets_are_one_line(tmp_path, capsys, monkeypatch, error):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # put back after the test
    Lesson(4, "a test", argv=["--out", str(tmp_path)])
    capsys.readouterr()
    sys.excepthook(type(error), error, None)
    assert capsys.readouterr().err == f"lesson 4: {error}\n"
    sys.excepthook(KeyError, KeyError("a bug"), None)  # anything else keeps its traceback
    assert "KeyError: 'a bug'" in capsys.readouterr().err


# --- lessons: text files, run as a learner runs them -------------------------------


TEXT_RUNS = {
    "lesson 3, five characters": ("03_char_lm", "hello", "lesson 3: {file}: 5 characters, too "
                                  "short: at least 1,139 are needed (give a longer file)"),
    "lesson 7, one short sentence": ("07_word2vec", "the cat sat on the mat\n", "lesson 7: "
                                     "{file}: too few words to learn vectors from: 0 distinct "
                                     "words occur at least 5 times"),
}


@pytest.mark.lesson
@pytest.mark.parametrize("stem, content, message", TEXT_RUNS.values(), ids=TEXT_RUNS)
def test_a_text_file_a_lesson_cannot_use_is_one_line_before_any_training(tmp_path, stem,
                                                                         content, message):
    file = tmp_path / "notes.txt"
    file.write_text(content)
    run = run_lesson(stem, "--quick", "--out", tmp_path / "out", "--text", file, timeout=60)
    assert run.returncode == 1
    assert run.stderr == message.format(file=file) + run.stderr[len(message.format(file=file)):]
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stdout.count("\n") == 1  # the banner, and no section: nothing ran


# --- make lesson-N ----------------------------------------------------------------------


MAKE = {
    "lesson-abc": ("lesson-abc", "make lesson-N: N must be a lesson number (one of: 0 1 2"),
    "lesson-1.5": ("lesson-1.5", "N must be a lesson number (one of: 0 1 2 3 4 5 6 7 8 9"),
    "lesson-42": ("lesson-42", "make lesson-N: there is no lesson 42 (one of: 0 1 2"),
}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target, message", MAKE.values(), ids=MAKE)
def test_make_lesson_checks_its_number(target, message):
    root = LESSONS.parent
    # STAMP= skips the .venv step; PY=echo shows which lesson would run
    made = subprocess.run(["make", "-s", "-C", root, target, "STAMP=", "PY=echo"],
                          capture_output=True, text=True)
    assert made.returncode != 0 and made.stdout == "" and message in made.stderr, made
    runs = subprocess.run(["make", "-s", "-C", root, "lesson-08", "STAMP=", "PY=echo"],
                          capture_output=True, text=True)
    assert runs.stdout.splitlines()[-1] == "lessons/08_seq2seq.py"  # 08 is not octal
