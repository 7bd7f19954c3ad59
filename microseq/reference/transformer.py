"""The Transformer encoder block, forward and backward, derived by hand in numpy.

Each `*_forward` returns its output and a cache; the matching `*_backward`
takes dL/d(output) and the cache and returns a dict of gradients. Shapes are
batch-first, weights laid out and named as in torch.nn:

    x (N, L, E)   N sequences of L positions, E = embed size, h heads of d = E/h

    layer norm    y = (x - mean) / sqrt(var + eps) * weight + bias      (over E)
    attention     A = softmax(q k^T / sqrt(d) + mask),  out = A v        (per head)
    self-attn     q|k|v = x W_in^T + b_in,  out = concat(heads) W_out^T + b_out
    feed-forward  f = act(x W1^T + b1) W2^T + b2
    block, post-norm  x1 = norm1(x + attn(x)),         y = norm2(x1 + ff(x1))
    block, pre-norm   x1 = x + attn(norm1(x)),         y = x1 + ff(norm2(x1))

A mask is boolean (True = may attend) or additive (0 keeps, -inf drops),
broadcastable to the scores (N, h, L, S). A query that may attend to nothing
gets all-zero weights (and zero gradients) instead of 0/0.
"""
import math

import numpy as np

from microseq.reference.word2vec import scatter_add_rows
from microseq.special import erfc


def _rows(a):
    """(..., D) -> (rows, D): gradients of weights sum over every position."""
    return a.reshape(-1, a.shape[-1])


def _linear(x, weight, bias):
    """y = x W^T + b on x (..., in): one 2-D product over all rows, which BLAS
    runs faster than a stack of per-sequence ones."""
    return (_rows(x) @ weight.T + bias).reshape(*x.shape[:-1], weight.shape[0])


def _linear_backward(dy, x, weight):
    """y = x W^T + b  =>  dx = dy W,  dW = dy^T x (over all rows),  db = sum of dy rows."""
    dx = (_rows(dy) @ weight).reshape(x.shape)
    return dx, _rows(dy).T @ _rows(x), _rows(dy).sum(0)


# ---------------------------------------------------------------- layer norm

def layer_norm_forward(x, weight, bias, eps=1e-5):
    """Normalise over the last axis. Returns y and a cache."""
    centred = x - x.mean(-1, keepdims=True)
    r = 1 / np.sqrt((centred * centred).mean(-1, keepdims=True) + eps)  # 1 / std
    x_hat = centred * r
    return x_hat * weight + bias, (x_hat, r, weight)


def layer_norm_backward(dy, cache):
    """x_hat_i = (x_i - mean) r with r = (var + eps)^(-1/2), var = mean((x - mean)^2):

        d x_hat_i / d x_j = r (delta_ij - 1/E - x_hat_i x_hat_j / E)

    (the 1/E through the mean, the x_hat x_hat / E through the variance), so
    with g = dy * weight, the gradient reaching x_hat,

        dx = r (g - mean(g) - x_hat mean(g x_hat))
    """
    x_hat, r, weight = cache
    g = dy * weight
    dx = r * (g - g.mean(-1, keepdims=True) - x_hat * (g * x_hat).mean(-1, keepdims=True))
    return {"x": dx, "weight": _rows(dy * x_hat).sum(0), "bias": _rows(dy).sum(0)}


# ---------------------------------------------------------------- attention

def attention_forward(q, k, v, mask=None):
    """Scaled dot-product attention. q (..., L, d), k (..., S, d), v (..., S, dv).
    Returns out (..., L, dv), the weights A (..., L, S) and a cache."""
    c = 1 / math.sqrt(q.shape[-1])
    s = (q @ k.swapaxes(-1, -2)) * c             # scores (..., L, S)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    top = s.max(-1, keepdims=True)
    top[np.isneginf(top)] = 0                    # a row with no key left: exp(-inf) = 0 everywhere
    a = np.exp(s - top)                          # softmax is shift-invariant; avoids overflow
    total = a.sum(-1, keepdims=True)
    total[total == 0] = 1
    a /= total                                   # A = softmax(s) over keys
    return a @ v, a, (q, k, v, a, c)


def attention_backward(dout, cache):
    """out = A v  =>  dA = dout v^T,  dv = A^T dout
    A = softmax(s) =>  ds = A * (dA - sum_keys(dA * A))   (masked keys: A = 0, so ds = 0)
    s = c q k^T    =>  dq = c ds k,  dk = c ds^T q"""
    q, k, v, a, c = cache
    da = dout @ v.swapaxes(-1, -2)
    dv = a.swapaxes(-1, -2) @ dout
    ds = a * (da - (da * a).sum(-1, keepdims=True))
    ds *= c
    return {"q": ds @ k, "k": ds.swapaxes(-1, -2) @ q, "v": dv}


def self_attention_forward(x, p, num_heads, mask=None):
    """Multi-head self-attention of x (N, L, E) with torch's parameters
    p["in_proj_weight"] (3E, E), p["in_proj_bias"], p["out_proj.weight"], p["out_proj.bias"]."""
    N, L, E = x.shape
    h, d = num_heads, E // num_heads
    qkv = _linear(x, p["in_proj_weight"], p["in_proj_bias"])   # (N, L, 3E)
    q, k, v = qkv.reshape(N, L, 3, h, d).transpose(2, 0, 3, 1, 4)  # (N, h, L, d) each
    heads, a, attention = attention_forward(q, k, v, mask)      # (N, h, L, d)
    joined = heads.transpose(0, 2, 1, 3).reshape(N, L, E)      # heads side by side
    out = _linear(joined, p["out_proj.weight"], p["out_proj.bias"])  # (N, L, E)
    return out, (x, joined, attention, p, h)


def self_attention_backward(dout, cache):
    x, joined, attention, p, h = cache
    N, L, E = x.shape
    djoined, dw_out, db_out = _linear_backward(dout, joined, p["out_proj.weight"])
    dheads = djoined.reshape(N, L, h, E // h).transpose(0, 2, 1, 3)    # (N, h, L, d)
    g = attention_backward(dheads, attention)
    # undo the split: (3, N, h, L, d) back to (N, L, 3, h, d), i.e. (N, L, 3E)
    dqkv = np.stack([g["q"], g["k"], g["v"]]).transpose(1, 3, 0, 2, 4).reshape(N, L, 3 * E)
    dx, dw_in, db_in = _linear_backward(dqkv, x, p["in_proj_weight"])
    return {"x": dx, "in_proj_weight": dw_in, "in_proj_bias": db_in,
            "out_proj.weight": dw_out, "out_proj.bias": db_out}


# ---------------------------------------------------------------- feed-forward

def _activation(z, kind):
    """act(z) and act'(z) for "relu" or the exact "gelu" z Phi(z)."""
    if kind == "relu":
        return np.maximum(z, 0), (z > 0).astype(z.dtype)
    if kind == "gelu":
        cdf = 0.5 * erfc(-z * math.sqrt(0.5))            # Phi(z)
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return z * cdf, cdf + z * pdf                      # d(z Phi(z)) = Phi + z phi
    raise ValueError(f"activation must be 'relu' or 'gelu', got {kind!r}")


def feed_forward_forward(x, p, activation="relu"):
    """f = act(x W1^T + b1) W2^T + b2, p with torch's linear1.* and linear2.*."""
    z = _linear(x, p["linear1.weight"], p["linear1.bias"])      # (N, L, F)
    hidden, slope = _activation(z, activation)
    return _linear(hidden, p["linear2.weight"], p["linear2.bias"]), (x, hidden, slope, p)


def feed_forward_backward(df, cache):
    x, hidden, slope, p = cache
    dhidden, dw2, db2 = _linear_backward(df, hidden, p["linear2.weight"])
    dz = dhidden * slope                                      # chain rule through act
    dx, dw1, db1 = _linear_backward(dz, x, p["linear1.weight"])
    return {"x": dx, "linear1.weight": dw1, "linear1.bias": db1,
            "linear2.weight": dw2, "linear2.bias": db2}


# ---------------------------------------------------------------- one encoder block

def _sub(p, prefix):
    """The parameters under `prefix.`, without it."""
    return {name[len(prefix) + 1:]: value for name, value in p.items()
            if name.startswith(prefix + ".")}


def encoder_block_forward(x, p, num_heads, mask=None, norm_first=False, activation="relu",
                          eps=1e-5):
    """One TransformerEncoderLayer (no dropout) on x (N, L, E); p holds its
    torch state dict (self_attn.*, linear1.*, linear2.*, norm1.*, norm2.*)."""
    attn, ff = _sub(p, "self_attn"), p
    n1, n2 = _sub(p, "norm1"), _sub(p, "norm2")
    if norm_first:
        u, c_n1 = layer_norm_forward(x, n1["weight"], n1["bias"], eps)
        a, c_sa = self_attention_forward(u, attn, num_heads, mask)
        x1 = x + a                                             # residual
        u, c_n2 = layer_norm_forward(x1, n2["weight"], n2["bias"], eps)
        f, c_ff = feed_forward_forward(u, ff, activation)
        y = x1 + f                                             # residual
    else:
        a, c_sa = self_attention_forward(x, attn, num_heads, mask)
        x1, c_n1 = layer_norm_forward(x + a, n1["weight"], n1["bias"], eps)
        f, c_ff = feed_forward_forward(x1, ff, activation)
        y, c_n2 = layer_norm_forward(x1 + f, n2["weight"], n2["bias"], eps)
    return y, (norm_first, c_n1, c_sa, c_n2, c_ff)


def encoder_block_backward(dy, cache):
    """Gradients of x and of every parameter, under the state dict's names.
    A residual x + g(x) passes its gradient to x twice: straight through and
    through g."""
    norm_first, c_n1, c_sa, c_n2, c_ff = cache
    if norm_first:
        g_ff = feed_forward_backward(dy, c_ff)
        g_n2 = layer_norm_backward(g_ff["x"], c_n2)
        dx1 = dy + g_n2["x"]                                  # y = x1 + ff(norm2(x1))
        g_sa = self_attention_backward(dx1, c_sa)
        g_n1 = layer_norm_backward(g_sa["x"], c_n1)
        dx = dx1 + g_n1["x"]                                  # x1 = x + attn(norm1(x))
    else:
        g_n2 = layer_norm_backward(dy, c_n2)                  # y = norm2(x1 + ff(x1))
        g_ff = feed_forward_backward(g_n2["x"], c_ff)
        dx1 = g_n2["x"] + g_ff["x"]
        g_n1 = layer_norm_backward(dx1, c_n1)                 # x1 = norm1(x + attn(x))
        g_sa = self_attention_backward(g_n1["x"], c_sa)
        dx = g_n1["x"] + g_sa["x"]
    grads = {"x": dx}
    for prefix, g in (("self_attn.", g_sa), ("", g_ff), ("norm1.", g_n1), ("norm2.", g_n2)):
        grads.update((prefix + name, value) for name, value in g.items() if name != "x")
    return grads


# ---------------------------------------------------------------- a GPT-style language model

def transformer_lm_loss_and_grads(p, x_ids, y_ids, num_heads, activation="gelu"):
    """A causal Transformer LM on ids (B, T), pre-norm blocks as GPT-2:

        x = embed.weight[ids] + pos.weight[:T]              (B, T, E)
        x = encoder.layers.K(x, causal mask) for each K     (pre-norm blocks)
        logits = encoder.norm(x) head.weight^T + head.bias  (B, T, V)
        L = mean over the B*T positions of -log softmax(logits)[next id]

    p holds the model's state dict under those names. Returns (loss, grads)."""
    B, T = x_ids.shape
    num_layers = len({name.split(".")[2] for name in p if name.startswith("encoder.layers.")})
    x = p["embed.weight"][x_ids] + p["pos.weight"][:T]        # (B, T, E)
    keep = np.tril(np.ones((T, T), bool))                      # position t sees 0..t
    caches = []
    for k in range(num_layers):
        x, cache = encoder_block_forward(x, _sub(p, f"encoder.layers.{k}"), num_heads, keep,
                                         norm_first=True, activation=activation)
        caches.append(cache)
    h, norm_cache = layer_norm_forward(x, p["encoder.norm.weight"], p["encoder.norm.bias"])
    logits = _rows(h) @ p["head.weight"].T + p["head.bias"]   # (B*T, V)
    targets = y_ids.reshape(-1)
    rows = np.arange(len(targets))
    logits -= logits.max(1, keepdims=True)                     # shift-invariant; avoids overflow
    e = np.exp(logits)
    total = e.sum(1)
    loss = float(np.mean(np.log(total) - logits[rows, targets]))
    dlogits = e / total[:, None]
    dlogits[rows, targets] -= 1
    dlogits /= len(targets)                                    # (softmax - onehot) / (B T)

    grads = {}
    dh, grads["head.weight"], grads["head.bias"] = _linear_backward(
        dlogits.reshape(B, T, -1), h, p["head.weight"])
    g = layer_norm_backward(dh, norm_cache)
    grads["encoder.norm.weight"], grads["encoder.norm.bias"] = g["weight"], g["bias"]
    dx = g["x"]
    for k in reversed(range(num_layers)):
        g = encoder_block_backward(dx, caches[k])
        dx = g.pop("x")
        grads.update((f"encoder.layers.{k}.{name}", value) for name, value in g.items())
    dpos = np.zeros_like(p["pos.weight"])
    dpos[:T] = dx.sum(0)                                       # every sequence uses rows 0..T-1
    grads["pos.weight"] = dpos
    grads["embed.weight"] = scatter_add_rows(np.zeros_like(p["embed.weight"]), x_ids, dx)
    return loss, grads


def transformer_lm_step(p, x_ids, y_ids, num_heads, lr, activation="gelu"):
    """One SGD step of transformer_lm_loss_and_grads, in place. Returns the loss."""
    loss, grads = transformer_lm_loss_and_grads(p, x_ids, y_ids, num_heads, activation)
    for name, value in p.items():
        value -= lr * grads[name]
    return loss
