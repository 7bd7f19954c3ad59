"""Data for the lessons: corpora shipped with Python, vocabularies, batching
and generated tasks. Only the standard library and numpy; nothing is downloaded."""
from microseq.data.batching import BPTTBatcher, minibatches, pad_batch
from microseq.data.tasks import (
    PAD,
    START,
    TAGS,
    adding_problem,
    addition,
    ar_series,
    balanced_brackets,
    class_grammar_corpus,
    copy_task,
    date_layouts,
    dates,
    encode_seq2seq,
    entities,
    entity_f1,
    leak_free_split,
    operand_lengths,
    running_sum_sign,
    seasonal_series,
    seq2seq_vocab,
    tagging,
    windows,
)
from microseq.data.text import DataError, load_text, pydoc_topics, stdlib_docstrings, words
from microseq.data.vocab import CharVocab, WordVocab, char_split

__all__ = [
    "PAD", "START", "TAGS", "BPTTBatcher", "CharVocab", "DataError", "WordVocab",
    "adding_problem", "addition", "ar_series", "balanced_brackets", "char_split",
    "class_grammar_corpus",
    "copy_task", "date_layouts", "dates", "encode_seq2seq", "entities", "entity_f1",
    "leak_free_split", "load_text", "minibatches", "operand_lengths", "pad_batch",
    "pydoc_topics", "running_sum_sign", "seasonal_series", "seq2seq_vocab",
    "stdlib_docstrings", "tagging", "windows", "words",
]
