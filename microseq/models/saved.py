"""A lesson's trained model, saved in its out directory and loaded back to be asked.

    model = microseq.models.load("runs/lesson-8")
    model.answer(["4+4", "77+85"])            # ["8", "162"]: questions as typed
    microseq.models.load("runs/lesson-3").answer(["def "])   # how the text goes on
    microseq.models.load("runs/lesson-11").answer(["raise a [MASK] if the key is not found"])

The file, model.npz, is one microseq checkpoint (plain arrays, no pickles):
the weights, and as text the network's class, its constructor arguments,
its vocabulary and how it reads a question. `load` needs nothing else.
"""
import json
from pathlib import Path

from microseq.checkpoint import Checkpoint, save_checkpoint
from microseq.data.batching import pad_batch
from microseq.data.tasks import PAD, START
from microseq.data.text import DataError
from microseq.data.tokens import WordTokenizer
from microseq.data.vocab import CharVocab
from microseq.models.attention_seq2seq import AttentionSeq2Seq
from microseq.models.bert import Bert, fill_blanks
from microseq.models.char_lm import CharLM
from microseq.models.seq2seq import Seq2Seq, cut_at_pad

FILE = "model.npz"
_NETWORKS = {cls.__name__: cls for cls in (Seq2Seq, AttentionSeq2Seq, CharLM, Bert)}


class TrainedModel:
    """A trained network with its vocabulary: text in, text out.

    network is the nn Module, vocab its CharVocab (a Bert's: its
    WordTokenizer), config the network's constructor arguments and reading
    how it reads a question: for an encoder-decoder `reverse`,
    `question_length` and `answer_length` as in training; for a language
    model the `length` and `temperature` of a continuation; for a Bert the
    number of `guesses` per [MASK].
    """

    def __init__(self, network, vocab, config, reading):
        self.network, self.vocab, self.config, self.reading = network, vocab, config, reading
        network.eval()

    def __repr__(self):
        return f"TrainedModel({type(self.network).__name__}, {self.vocab!r}, {self.reading})"

    def answer(self, questions, **options):
        """The answers to a list of questions, typed as a person types them
        (no padding, no reversal): a list of str. A language model answers
        with how each prompt goes on; `length`, `temperature` and `seed`
        (default 0) override its reading. A Bert answers a sentence with
        [MASK] where a word is hidden with its likeliest words for each
        blank, best first ("keyerror, typeerror, ...; ..." for two blanks)."""
        if isinstance(questions, str):
            raise TypeError(f"answer() takes a list of questions, not the string {questions!r}: "
                            f"write answer([{questions!r}])")
        questions = list(questions)
        if isinstance(self.network, Bert):
            if options:
                raise TypeError(f"answer() of a Bert takes no options: {sorted(options)}")
            return ["; ".join(", ".join(words) for words in fill_blanks(
                self.network, self.vocab, q, self.reading["guesses"])) for q in questions]
        ids = [self._encode(q) for q in questions]
        if not ids:
            return []
        if isinstance(self.network, CharLM):
            return self._continue(ids, **options)
        if options:
            raise TypeError(f"answer() of an encoder-decoder takes no options: {sorted(options)}")
        pad_id, reading = self.vocab.stoi[PAD], self.reading
        xs, _ = pad_batch(ids, pad_id, length=max(reading["question_length"], *map(len, ids)))
        if reading["reverse"]:
            xs = xs[:, ::-1].copy()
        out = self.network.generate(xs, self.vocab.stoi[START], reading["answer_length"])
        return [self.vocab.decode(row).split(PAD)[0] for row in cut_at_pad(out, pad_id)]

    def _encode(self, question):
        """The ids of one question, with an error that names it."""
        if not isinstance(question, str):
            raise TypeError(f"a question is a str, not {type(question).__name__}: {question!r}")
        if not isinstance(self.network, CharLM) and (PAD in question or START in question):
            raise DataError(f"question {question!r}: {PAD!r} and {START!r} are the model's own "
                            "padding and start symbols, not part of a question")
        if isinstance(self.network, CharLM) and not question:
            raise DataError("a language model needs a prompt of at least one character")
        try:
            return self.vocab.encode(question)
        except DataError as e:
            raise DataError(f"question {question!r}: {e}") from None

    def _continue(self, prompts, length=None, temperature=None, seed=0):
        length = self.reading["length"] if length is None else length
        temperature = self.reading["temperature"] if temperature is None else temperature
        return [self.vocab.decode(self.network.sample(ids, length, temperature=temperature,
                                                      rng=seed)[0]) for ids in prompts]


def save(directory, network, config, vocab, **reading):
    """Write `network` (built as `type(network)(**config)`), its CharVocab (or
    WordTokenizer) and its `reading` (see TrainedModel) to
    <directory>/model.npz, atomically. Returns the file's Path."""
    name = type(network).__name__
    if name not in _NETWORKS:
        raise TypeError(f"save: a {name} cannot be saved to be asked; one of {sorted(_NETWORKS)}")
    words = {"network": name, "config": config, "reading": reading}
    if isinstance(vocab, WordTokenizer):
        words["words"] = vocab.words
    else:
        words |= {"specials": vocab.specials, "symbols": "".join(vocab.itos[len(vocab.specials):])}
    path = Path(directory) / FILE
    save_checkpoint(path, network, extra={"about": json.dumps(words)})
    return path


def load(directory):
    """The TrainedModel saved in `directory` (a lesson's out directory, or
    the model.npz itself), ready to answer."""
    path = Path(directory)
    path = path / FILE if path.suffix != ".npz" else path
    if not path.is_file():
        raise FileNotFoundError(f"no trained model at {path}")
    checkpoint = Checkpoint(path)  # every entry read and checked
    if "about" not in checkpoint.extra:
        raise DataError(f"{path} is a checkpoint, but not of a model saved to be asked")
    words = json.loads(checkpoint.extra["about"])
    network = _NETWORKS[words["network"]](**words["config"])
    network.load_state_dict(checkpoint.model_state)  # the weights only: no random state
    if "words" in words:
        vocab = WordTokenizer.from_words(words["words"])
    else:
        vocab = CharVocab(words["symbols"], specials=words["specials"])
    return TrainedModel(network, vocab, words["config"], words["reading"])
