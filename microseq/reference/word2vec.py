"""word2vec with negative sampling: skip-gram and CBOW losses and their gradients.

Every word has an input vector (a row of W_in, V x D) and an output vector (a
row of W_out, V x D). For a hidden vector h, its true word o and K sampled
negative words k, the negative-sampling loss of one example is

    l = -log sigmoid(u_o . h) - sum_k log sigmoid(-u_k . h)       (u = W_out rows)

    dl/d(u_o . h) = sigmoid(u_o . h) - 1
    dl/d(u_k . h) = sigmoid(u_k . h)

Skip-gram: h is the centre word's input vector, o a context word.
CBOW:      h is the mean of the C context words' input vectors, o the centre word.

The loss is the mean over the batch. Only the rows that were looked up get a
gradient; a row looked up several times (a repeated id, or a negative equal to
the true word) gets the sum of its gradients, via np.add.at.
"""
import numpy as np


def _log_sigmoid(s):
    """log sigmoid(s) = -log(1 + e^-s), without overflow."""
    return -np.logaddexp(0, -s)


def _sigmoid(s):
    """sigmoid(s) = (1 + tanh(s/2)) / 2, without overflow."""
    return 0.5 + 0.5 * np.tanh(0.5 * s)


def _negative_sampling(h, u_pos, u_neg):
    """Mean loss over the batch and its gradients with respect to h (B, D),
    u_pos (B, D) and u_neg (B, K, D)."""
    B = h.shape[0]
    s_pos = np.einsum("bd,bd->b", u_pos, h)      # u_o . h, (B,)
    s_neg = np.einsum("bkd,bd->bk", u_neg, h)    # u_k . h, (B, K)
    loss = -(_log_sigmoid(s_pos).sum() + _log_sigmoid(-s_neg).sum()) / B
    g_pos = (_sigmoid(s_pos) - 1) / B            # dL/ds_pos
    g_neg = _sigmoid(s_neg) / B                  # dL/ds_neg
    dh = g_pos[:, None] * u_pos + np.einsum("bk,bkd->bd", g_neg, u_neg)
    du_pos = g_pos[:, None] * h
    du_neg = g_neg[:, :, None] * h[:, None, :]
    return float(loss), dh, du_pos, du_neg


def _scatter_out(W_out, ids_pos, du_pos, ids_neg, du_neg):
    """dL/dW_out from the gradients of the rows that were looked up."""
    dW_out = np.zeros_like(W_out)
    np.add.at(dW_out, ids_pos, du_pos)
    np.add.at(dW_out, ids_neg, du_neg)
    return dW_out


def skipgram_ns_loss_and_grads(W_in, W_out, centers, contexts, negatives):
    """Skip-gram: predict the context word from the centre word.

    centers (B,), contexts (B,), negatives (B, K) are word ids.
    Returns (loss, {"W_in": (V, D), "W_out": (V, D)}).
    """
    h = W_in[centers]                            # h = v_c, (B, D)
    loss, dh, du_pos, du_neg = _negative_sampling(h, W_out[contexts], W_out[negatives])
    dW_in = np.zeros_like(W_in)
    np.add.at(dW_in, centers, dh)
    return loss, {"W_in": dW_in, "W_out": _scatter_out(W_out, contexts, du_pos, negatives, du_neg)}


def cbow_ns_loss_and_grads(W_in, W_out, contexts, centers, negatives):
    """CBOW: predict the centre word from the mean of its context words.

    contexts (B, C), centers (B,), negatives (B, K) are word ids.
    Returns (loss, {"W_in": (V, D), "W_out": (V, D)}).
    """
    C = contexts.shape[1]
    h = W_in[contexts].mean(1)                   # h = (1/C) sum_j v_j, (B, D)
    loss, dh, du_pos, du_neg = _negative_sampling(h, W_out[centers], W_out[negatives])
    dW_in = np.zeros_like(W_in)
    np.add.at(dW_in, contexts, np.broadcast_to(dh[:, None, :] / C, (*contexts.shape, h.shape[1])))
    return loss, {"W_in": dW_in, "W_out": _scatter_out(W_out, centers, du_pos, negatives, du_neg)}
