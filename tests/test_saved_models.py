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
from microseq.data.tokens import IGNORE_INDEX, WordTokenizer
from microseq.models.attention_seq2seq import AttentionSeq2Seq
from microseq.models.bert import Bert, fill_blanks
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
    assert "lessons 3, 8, 9, 11 do" in ask(5, "x").stderr
    assert 'make ask-9 Q="..."' in ask(9, "--model", tmp_path).stderr
    small_addition_model(tmp_path, Seq2Seq, True)
    assert "cannot ask that: question '4x4'" in ask(8, "4x4", "--model", tmp_path).stderr


def small_bert(tmp_path):
    tok = WordTokenizer("raise a key error if the key is not found in the file".split(), 16)
    config = dict(vocab_size=len(tok), num_classes=2, pad_id=tok.pad_id, d_model=8, nhead=2,
                  num_layers=1, dim_feedforward=6, max_len=8)
    ms.manual_seed(3)
    network = Bert(**config)
    network.mlm_head.bias.data[tok.special_ids] = 100.0  # the specials would win if allowed
    models.save(tmp_path, network, config, tok, guesses=3)
    return network, tok


def test_a_bert_fills_each_blank_with_its_likeliest_ordinary_words(tmp_path):
    network, tok = small_bert(tmp_path)
    ids = np.array([[tok.cls_id, tok.vocab.stoi["raise"], tok.mask_id, tok.unk_id,
                     tok.mask_id, tok.sep_id]])
    targets = np.where(ids == tok.mask_id, 0, IGNORE_INDEX)
    scores = network.mlm_logits(ids, targets)[0].data[:, len(tok.special_ids):]
    expected = [[tok.words[i] for i in np.argsort(-row)[:3]] for row in scores]
    sentence = "Raise [MASK] PYTHON [mask]"
    assert fill_blanks(network, tok, sentence, k=3) == expected
    model = models.load(tmp_path)
    assert model.vocab.vocab.itos == tok.vocab.itos
    assert model.answer([sentence]) == ["; ".join(", ".join(g) for g in expected)]
    assert ask(11, sentence, "--model", tmp_path).stdout == (
        f"{sentence} -> {model.answer([sentence])[0]}\n")


def test_a_bert_names_a_sentence_it_cannot_read(tmp_path):
    small_bert(tmp_path)
    model = models.load(tmp_path)
    with pytest.raises(DataError, match="has no \\[MASK\\]: write \\[MASK\\] where a word"):
        model.answer(["no blank here"])
    with pytest.raises(DataError, match="is 8 words and blanks long; the model reads at most 6"):
        model.answer(["the key is not [MASK] in the file"])
    with pytest.raises(TypeError, match="a sentence is a str"):
        model.answer([3])
    assert "cannot ask that: 'the key' has no [MASK]" in ask(11, "the key", "--model",
                                                             tmp_path).stderr
