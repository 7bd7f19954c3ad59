"""microseq.models.save / load / answer and `python -m microseq.ask`, on small
untrained models (the lessons' own saved models are tested with their runs)."""
import subprocess
import sys

import numpy as np
import pytest

import microseq as ms
from microseq import models
from microseq.data import PAD, START, DataError, addition, encode_seq2seq, seq2seq_vocab
from microseq.data.vocab import CharVocab
from microseq.models.attention_seq2seq import AttentionSeq2Seq
from microseq.models.char_lm import CharLM
from microseq.models.seq2seq import Seq2Seq, cut_at_pad
from microseq.checkpoint import save_checkpoint


def small_addition_model(tmp_path, network, reverse):
    questions, answers = addition(50, seed=0, max_digits=2)
    vocab = seq2seq_vocab(questions, answers)
    config = dict(vocab_size=len(vocab), embed_size=3, hidden_size=5)
    if network is AttentionSeq2Seq:
        config["pad_id"] = vocab.stoi[PAD]
    ms.manual_seed(1)
    model = network(**config)
    xs, _, target = encode_seq2seq(questions, answers, vocab, reverse=reverse)
    models.save(tmp_path, model, config, vocab, reverse=reverse, question_length=xs.shape[1],
                answer_length=target.shape[1])
    return model, vocab, questions, xs, target


@pytest.mark.parametrize("network, reverse", [(Seq2Seq, True), (Seq2Seq, False),
                                              (AttentionSeq2Seq, False)])
def test_answers_equal_the_networks_own_greedy_decoding(tmp_path, network, reverse):
    model, vocab, questions, xs, target = small_addition_model(tmp_path, network, reverse)
    expected = cut_at_pad(model.generate(xs, vocab.stoi[START], target.shape[1]), 0)
    loaded = models.load(tmp_path)
    assert isinstance(loaded.network, network) and loaded.vocab.itos == vocab.itos
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.network.state_dict()[name], value)
    assert loaded.answer(questions) == [vocab.decode(row).split(PAD)[0] for row in expected]
    assert loaded.answer([]) == []


def test_bad_questions_get_errors_that_name_them(tmp_path):
    small_addition_model(tmp_path, Seq2Seq, True)
    model = models.load(tmp_path / "model.npz")
    with pytest.raises(TypeError, match=r"write answer\(\['4\+4'\]\)"):
        model.answer("4+4")
    with pytest.raises(DataError, match="question '4x4': character 'x'"):
        model.answer(["1+1", "4x4"])
    with pytest.raises(DataError, match="padding and start symbols"):
        model.answer(["4_4"])


def test_a_language_model_continues_a_prompt(tmp_path):
    vocab = CharVocab("def return(x):\n ")
    config = dict(vocab_size=len(vocab), hidden_size=6, embed_size=3)
    ms.manual_seed(2)
    network = CharLM(**config)
    models.save(tmp_path, network, config, vocab, length=12, temperature=0.7)
    written = network.sample(vocab.encode("def "), 12, temperature=0.7, rng=0)[0]
    model = models.load(tmp_path)
    assert model.answer(["def "]) == [vocab.decode(written)]
    assert len(model.answer(["x"], length=5)[0]) == 5
    with pytest.raises(DataError, match="at least one character"):
        model.answer([""])


def test_load_refuses_what_is_not_a_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained model"):
        models.load(tmp_path)
    save_checkpoint(tmp_path / "model.npz", Seq2Seq(5, 2, 3))  # weights alone
    with pytest.raises(DataError, match="not of a model saved to be asked"):
        models.load(tmp_path)


def ask(*args):
    return subprocess.run([sys.executable, "-m", "microseq.ask", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_ask_says_which_lesson_to_run(tmp_path):
    missing = ask(8, "4+4", "--model", tmp_path / "nothing")
    assert missing.returncode == 1 and "run `make lesson-8` first" in missing.stderr
    assert "lessons 3, 8, 9 do" in ask(5, "x").stderr
    assert 'make ask-9 Q="..."' in ask(9, "--model", tmp_path).stderr
    small_addition_model(tmp_path, Seq2Seq, True)
    assert "cannot ask that: question '4x4'" in ask(8, "4x4", "--model", tmp_path).stderr
