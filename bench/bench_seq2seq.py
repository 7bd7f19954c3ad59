"""One training step of lesson 8's peeky seq2seq, autograd against hand-written numpy.

The workload: 3-digit addition questions, reversed (batch 128, 7 input and 4
output characters), embedding 16, hidden 128, peeky decoder; forward,
cross-entropy, backward, gradient clipping and an Adam update. The reference
computes the same loss and gradients by hand (the LSTM parts with
microseq.reference.seq2seq) and then takes the same
Adam step, so the ratio is the price of autograd alone. The tests check that
both give the same loss and gradients.
"""
import microseq as ms
from bench.common import compare_ms, record
from microseq.data import addition, encode_seq2seq, seq2seq_vocab
from microseq.models.seq2seq import Seq2Seq
from microseq.optim import Adam, clip_grad_norm_
from microseq.reference import peeky_loss_and_grads


def run(repeats=5):
    """Time one peeky + reversed training step at batch 128, both ways.

    Returns [{name, ms, reference, reference_ms, ratio}], ratio = ms /
    reference_ms (below 1 means autograd is faster than the numpy code).
    """
    questions, answers = addition(128, seed=0)
    vocab = seq2seq_vocab(questions, answers)
    xs, dec_in, target = encode_seq2seq(questions, answers, vocab, reverse=True)
    ms.manual_seed(0)
    model = Seq2Seq(len(vocab), embed_size=16, hidden_size=128, peeky=True)
    optimizer = Adam(model.parameters(), lr=1e-3)
    params = dict(model.named_parameters())

    def autograd_step():
        optimizer.zero_grad()
        model.loss(xs, dec_in, target).backward()
        clip_grad_norm_(optimizer.params, 5.0)
        optimizer.step()

    def numpy_step():
        _, grads = peeky_loss_and_grads(
            {name: p.data for name, p in params.items()}, xs, dec_in, target)
        for name, p in params.items():
            p.grad = grads[name]
        clip_grad_norm_(optimizer.params, 5.0)
        optimizer.step()

    ms_ours, ms_reference = compare_ms(autograd_step, numpy_step, repeats)
    return [record("seq2seq peeky+reversed step, B=128 H=128", ms_ours,
                   "hand-derived numpy backward", ms_reference)]
