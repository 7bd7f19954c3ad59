"""One training step of lesson 8's peeky seq2seq, autograd against hand-written numpy.

The workload: addition questions of up to 3 digits, reversed (batch 128, 7 input and 4
output characters), embedding 16, hidden 128, peeky decoder; forward,
cross-entropy, backward, gradient clipping and an Adam update. The reference
computes the same loss and gradients by hand (the LSTM parts with
microseq.reference's lstm_forward / lstm_backward) and then takes the same
Adam step, so the ratio is the price of autograd alone. The tests check that
both give the same loss and gradients.
"""
import numpy as np

import microseq as ms
from bench.common import compare_ms, record
from microseq.data import addition, encode_seq2seq, seq2seq_vocab
from microseq.models.seq2seq import Seq2Seq
from microseq.optim import Adam, clip_grad_norm_
from microseq.reference import lstm_backward, lstm_forward

LSTM_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def peeky_loss_and_grads(params, xs, dec_in, target):
    """Loss and gradients of Seq2Seq(peeky=True), by hand.

    params: the model's state_dict (its arrays are only read). Returns the
    mean cross-entropy and a dict of gradients with the same keys.
    """
    p = params
    B, Ta = target.shape
    E = p["encoder.embed.weight"].shape[1]
    H = p["encoder.lstm.weight_hh_l0"].shape[1]
    zeros = np.zeros((B, H), p["encoder.lstm.weight_hh_l0"].dtype)
    # Encoder, time-major (T, B, E).
    hs_enc, c_enc, enc_cache = lstm_forward(
        p["encoder.embed.weight"][xs.T], zeros, zeros, *(
            p[f"encoder.lstm.{w}_l0"] for w in LSTM_WEIGHTS))
    h = hs_enc[-1]
    # Peeky decoder: h beside every input and every output of the decoder LSTM.
    peek = np.broadcast_to(h, (Ta, B, H))
    dec_x = np.concatenate([p["decoder.embed.weight"][dec_in.T], peek], axis=-1)
    hs_dec, _, dec_cache = lstm_forward(dec_x, h, c_enc, *(
        p[f"decoder.lstm.{w}_l0"] for w in LSTM_WEIGHTS))
    features = np.concatenate([hs_dec, peek], axis=-1).reshape(Ta * B, 2 * H)
    logits = features @ p["decoder.out.weight"].T + p["decoder.out.bias"]
    # Softmax cross-entropy, mean over the Ta * B positions.
    labels = target.T.reshape(-1)
    rows = np.arange(len(labels))
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(probs[rows, labels]))
    dlogits = probs
    dlogits[rows, labels] -= 1                   # d loss / d logits = softmax - onehot
    dlogits /= len(labels)

    g = {"decoder.out.weight": dlogits.T @ features, "decoder.out.bias": dlogits.sum(axis=0)}
    dfeatures = (dlogits @ p["decoder.out.weight"]).reshape(Ta, B, 2 * H)
    dec = lstm_backward(dfeatures[..., :H], dec_cache)
    for w in LSTM_WEIGHTS:
        g[f"decoder.lstm.{w}_l0"] = dec[_ref_name(w)]
    # h reached the loss three ways: as the decoder's initial state, and as the
    # copies beside every decoder input and every decoder output.
    dh = dec["h0"] + dfeatures[..., H:].sum(axis=0) + dec["x"][..., E:].sum(axis=0)
    g["decoder.embed.weight"] = _scatter(p["decoder.embed.weight"], dec_in.T, dec["x"][..., :E])
    enc = lstm_backward(None, enc_cache, dh_last=dh, dc_last=dec["c0"])
    for w in LSTM_WEIGHTS:
        g[f"encoder.lstm.{w}_l0"] = enc[_ref_name(w)]
    g["encoder.embed.weight"] = _scatter(p["encoder.embed.weight"], xs.T, enc["x"])
    return loss, g


def _ref_name(name):
    """'weight_ih' -> 'W_ih', 'bias_hh' -> 'b_hh': reference/lstm.py's names."""
    kind, part = name.split("_")
    return ("W_" if kind == "weight" else "b_") + part


def _scatter(table, ids, grads):
    """The embedding table's gradient: each looked-up row's gradient, summed per id."""
    out = np.zeros_like(table)
    np.add.at(out, ids, grads)
    return out


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
