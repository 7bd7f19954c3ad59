"""A labelled task that needs language, offline: which part of the standard
library does a docstring sentence come from?

    sentences, labels = docstring_topics()          # labels index TOPICS
    train_idx, test_idx = topic_split(labels, n_test_per_topic=80, seed=0)

Labels come for free from where the text lives. Each topic gathers a few
modules about one subject, so a topic has a few hundred sentences; no
sentence (as a sequence of words) appears twice, so none can be in both
the training and the test split.
"""
import re

import numpy as np

from microseq.data.text import DataError, docstrings_of, words

TOPICS = {
    "mail": ("email.message", "mailbox", "smtplib"),
    "files": ("gzip", "pathlib", "shutil", "tarfile", "zipfile"),
    "web": ("ftplib", "http.client", "urllib.parse", "urllib.request"),
    "code": ("ast", "inspect", "tokenize", "traceback"),
    "logging and threads": ("logging", "queue", "threading"),
}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text, min_words=4, max_words=30):
    """The sentences of `text` (split after . ! or ? and a space), with
    runs of white space made single, that have min_words..max_words words."""
    out = []
    for s in _SENTENCE_END.split(" ".join(text.split())):
        if min_words <= len(words(s)) <= max_words:
            out.append(s)
    return out


def docstring_topics(topics=None):
    """(sentences, labels): every docstring sentence of each topic's modules,
    labelled with the topic's index in `topics` (default TOPICS, a dict
    {name: module names}). A sentence whose words occur in more than one
    place is dropped, so the split cannot leak and no label is ambiguous."""
    topics = TOPICS if topics is None else topics
    found = {}  # words of a sentence -> [sentence, label, times seen]
    for label, modules in enumerate(topics.values()):
        for module in modules:
            for doc in docstrings_of(module):
                for s in sentences(doc):
                    key = " ".join(words(s))
                    found.setdefault(key, [s, label, 0])[2] += 1
    kept = [(s, label) for s, label, times in found.values() if times == 1]
    if not kept:
        raise DataError(f"docstring_topics: no sentences found in {list(topics)}")
    texts, labels = zip(*kept, strict=True)
    return list(texts), np.array(labels, dtype=np.int64)


def topic_split(labels, n_test_per_topic, seed):
    """(train_idx, test_idx): `n_test_per_topic` random examples of every
    label for the test, the rest for training; sorted int64 arrays."""
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if len(idx) <= n_test_per_topic:
            raise DataError(f"topic_split: label {label} has {len(idx)} examples, not more "
                            f"than n_test_per_topic={n_test_per_topic}")
        test.extend(rng.choice(idx, n_test_per_topic, replace=False))
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def label_budget(labels, per_class, rng):
    """Indices into `labels` of `per_class` random examples of every label
    (the few labels a fine-tuning run may use), shuffled."""
    picked = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        if len(idx) < per_class:
            raise DataError(f"label_budget: label {label} has only {len(idx)} examples, "
                            f"fewer than per_class={per_class}")
        picked.extend(rng.choice(idx, per_class, replace=False))
    return rng.permutation(np.array(picked, dtype=np.int64))
