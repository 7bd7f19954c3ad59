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
the true word) gets the sum of its gradients (scatter_add_rows).
"""
import numpy as np


def scatter_add_rows(out, ids, rows):
    """out[ids[j]] += rows[j] for every j, summing over repeated ids: np.add.at(out, ids, rows).

    np.add.at on whole rows is slow; on the flat array, with one index per
    element, it takes numpy's fast path (5-8x faster). out must be C-contiguous.
    """
    if not out.flags.c_contiguous:
        raise ValueError("scatter_add_rows: out must be C-contiguous")
    D = out.shape[-1]
    flat_ids = (ids.reshape(-1, 1) * D + np.arange(D)).ravel()  # row id * D + column
    np.add.at(out.reshape(-1), flat_ids, rows.reshape(-1))
    return out


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
    s_neg = (u_neg @ h[:, :, None])[..., 0]      # u_k . h, (B, K)
    loss = -(_log_sigmoid(s_pos).sum() + _log_sigmoid(-s_neg).sum()) / B
    g_pos = (_sigmoid(s_pos) - 1) / B            # dL/ds_pos
    g_neg = _sigmoid(s_neg) / B                  # dL/ds_neg
    dh = g_pos[:, None] * u_pos + (g_neg[:, None, :] @ u_neg)[:, 0]  # ds/dh = u
    du_pos = g_pos[:, None] * h                  # ds/du = h
    du_neg = g_neg[:, :, None] * h[:, None, :]
    return float(loss), dh, du_pos, du_neg


def _scatter_out(W_out, ids_pos, du_pos, ids_neg, du_neg):
    """dL/dW_out from the gradients of the rows that were looked up."""
    dW_out = np.zeros(W_out.shape, W_out.dtype)
    scatter_add_rows(dW_out, ids_pos, du_pos)
    return scatter_add_rows(dW_out, ids_neg, du_neg)


def skipgram_ns_loss_and_grads(W_in, W_out, centers, contexts, negatives):
    """Skip-gram: predict the context word from the centre word.

    centers (B,), contexts (B,), negatives (B, K) are word ids.
    Returns (loss, {"W_in": (V, D), "W_out": (V, D)}).
    """
    h = W_in[centers]                            # h = v_c, (B, D)
    loss, dh, du_pos, du_neg = _negative_sampling(h, W_out[contexts], W_out[negatives])
    dW_in = scatter_add_rows(np.zeros(W_in.shape, W_in.dtype), centers, dh)
    return loss, {"W_in": dW_in, "W_out": _scatter_out(W_out, contexts, du_pos, negatives, du_neg)}


def cbow_ns_loss_and_grads(W_in, W_out, contexts, centers, negatives):
    """CBOW: predict the centre word from the mean of its context words.

    contexts (B, C), centers (B,), negatives (B, K) are word ids.
    Returns (loss, {"W_in": (V, D), "W_out": (V, D)}).
    """
    C = contexts.shape[1]
    h = W_in[contexts].mean(1)                   # h = (1/C) sum_j v_j, (B, D)
    loss, dh, du_pos, du_neg = _negative_sampling(h, W_out[centers], W_out[negatives])
    dv = np.broadcast_to(dh[:, None, :] / C, (*contexts.shape, h.shape[1]))  # dh/dv_j = 1/C
    dW_in = scatter_add_rows(np.zeros(W_in.shape, W_in.dtype), contexts, dv)
    return loss, {"W_in": dW_in, "W_out": _scatter_out(W_out, centers, du_pos, negatives, du_neg)}
