"""Lesson 8's peeky seq2seq, forward and backward by hand.

The encoder and decoder LSTMs use lstm_forward / lstm_backward
(microseq.reference.lstm); the rest (embeddings, the peeky copies of the
encoder's last state, the read-out and softmax cross-entropy) is written out
here. The lesson 8 tests check Seq2Seq(peeky=True)'s autograd gradients
against it, and the seq2seq benchmark times it.
"""
import numpy as np

from microseq.reference.lstm import lstm_backward, lstm_forward

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
