"""A small BERT: a Transformer encoder with a masked-token head and a
classification head on the output vector of [CLS], the first token.

    model = Bert(vocab_size=len(tok), num_classes=5, pad_id=tok.pad_id)
    hidden = model(ids)                        # ids (B, T) -> (B, T, d_model)
    loss = model.mlm_loss(inputs, targets)     # mask_tokens' output; mean over chosen tokens
    loss = model.classification_loss(ids, labels)
    model.classify(ids)                        # (B, num_classes) scores
    fill_blanks(model, tok, "raise a [MASK] if the key is not found")   # [[5 words]]

[PAD] positions are keys no token attends to (key_padding_mask). The
encoder is pre-norm (as GPT-2: the residual path stays an identity), with
GELU and a final LayerNorm. Positions are the
sinusoidal encoding: its dot products depend on the distance between two
positions, so "look at the word next to you" needs no learning of
where each position is.
"""
import re

import numpy as np

from microseq import nn
from microseq.data.text import DataError
from microseq.data.tokens import IGNORE_INDEX, MASK_TOKEN
from microseq.models.gpt import gelu_tanh  # the original BERT's GELU, as GPT-2's
from microseq.ops import cross_entropy
from microseq.tensor import Tensor, no_grad


class Bert(nn.Module):
    def __init__(self, vocab_size, num_classes, pad_id=0, d_model=64, nhead=4, num_layers=2,
                 dim_feedforward=128, max_len=32, dropout=0.0):
        self.pad_id, self.max_len = pad_id, max_len
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.positions = nn.PositionalEncoding(d_model, max_len, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                           activation=gelu_tanh, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model))
        self.mlm_head = nn.Linear(d_model, vocab_size)      # a score for every word
        # Tied to the input embeddings, as in BERT: a word's score is its embedding's dot
        # product with the output vector, so every masked answer trains its own embedding
        # too (without the tie a 2000-word model stays at "always guess 'the'" for long).
        self.mlm_head.weight = self.embed.weight
        # Word vectors start at N(0, 1/d_model), so the tied output's first scores are
        # about N(0, 1), and are multiplied by sqrt(d_model) on the way in, so they
        # weigh as much as the positions (as in "Attention Is All You Need").
        self.embed.weight.data *= d_model ** -0.5
        self.scale = d_model ** 0.5
        self.classifier = nn.Linear(d_model, num_classes)   # reads [CLS]'s output vector

    def forward(self, ids):
        """ids (B, T) ints -> the encoder's output (B, T, d_model)."""
        ids = np.asarray(ids)
        return self.encoder(self.inputs(ids), src_key_padding_mask=ids == self.pad_id)

    def inputs(self, ids):
        """The encoder's input (B, T, d_model): scaled word vectors plus positions."""
        return self.positions(self.embed(ids) * self.scale)

    def mlm_logits(self, inputs, targets):
        """Scores (n, vocab_size) at the n places where targets are not
        IGNORE_INDEX, and those n targets: only the chosen tokens go
        through the (large) output layer."""
        targets = np.asarray(targets)
        rows, cols = np.nonzero(targets != IGNORE_INDEX)
        hidden = self(inputs)[rows, cols]                    # (n, E)
        return self.mlm_head(hidden), targets[rows, cols]

    def mlm_loss(self, inputs, targets):
        """Mean cross-entropy of the chosen tokens' original ids."""
        logits, chosen = self.mlm_logits(inputs, targets)
        return cross_entropy(logits, chosen)

    def classify(self, ids):
        """(B, num_classes) scores from the output vector of each sequence's
        first token, [CLS]. Nothing in masked-word pretraining asks [CLS]
        to predict anything (BERT's next-sentence objective did), but its
        vector is still made by the pretrained heads reading the whole
        sentence, so fine-tuning starts from a summary, not from noise."""
        return self.classifier(self(ids)[:, 0])

    def classification_loss(self, ids, labels):
        return cross_entropy(self.classify(ids), np.asarray(labels))

    def attention_maps(self, ids):
        """Each layer's attention weights on one sequence ids (T,): a list of
        (nhead, T, T) arrays, row i the weights query i gives the keys."""
        ids = np.asarray(ids)[None]
        with no_grad():
            maps = self.encoder.attention_maps(self.inputs(ids),
                                               src_key_padding_mask=ids == self.pad_id)
        return [layer[0] for layer in maps]


def accuracy(scores, labels):
    """Fraction of rows whose largest score is at the label."""
    scores = scores.data if isinstance(scores, Tensor) else scores
    return float(np.mean(np.argmax(scores, axis=-1) == np.asarray(labels)))


def fill_blanks(model, tokenizer, sentence, k=5):
    """The k likeliest words for each [MASK] in `sentence`, best first: one
    list of k words per [MASK]. The other words are read as the tokenizer
    reads them (lowercase; a word outside the vocabulary becomes [UNK]); a
    special token is never a guess."""
    if not isinstance(sentence, str):
        raise TypeError(f"fill_blanks: a sentence is a str, not {type(sentence).__name__}")
    pieces = re.split(re.escape(MASK_TOKEN), sentence, flags=re.IGNORECASE)
    if len(pieces) == 1:
        raise DataError(f"{sentence!r} has no {MASK_TOKEN}: write {MASK_TOKEN} where a word "
                        f"is hidden, e.g. 'raise a {MASK_TOKEN} if the key is not found'")
    ids = [tokenizer.cls_id]
    for i, piece in enumerate(pieces):
        ids.extend(tokenizer.encode(piece, add_special_tokens=False))
        ids.append(tokenizer.mask_id if i < len(pieces) - 1 else tokenizer.sep_id)
    if len(ids) > model.max_len:
        raise DataError(f"{sentence!r} is {len(ids) - 2} words and blanks long; the model "
                        f"reads at most {model.max_len - 2}")
    ids = np.array(ids)[None]
    targets = np.where(ids == tokenizer.mask_id, tokenizer.mask_id, IGNORE_INDEX)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            scores = model.mlm_logits(ids, targets)[0].data.copy()   # (blanks, vocab)
    finally:
        model.train(was_training)
    scores[:, tokenizer.special_ids] = -np.inf
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[tokenizer.vocab.itos[i] for i in row] for row in best]
