"""Optimisers (SGD with momentum, Adam) and gradient-norm clipping.

The update rules are exactly PyTorch's, written out as equations beside the
code. Each optimiser changes `p.data` in place, so a model keeps the same
parameter arrays for its whole life; a parameter whose `.grad` is None (it
took no part in the loss) is skipped, as in PyTorch.

    optimizer = Adam(model.parameters(), lr=1e-3)
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm_(optimizer.params, max_norm=1.0)
    optimizer.step()
"""
import math

import numpy as np

from microseq.tensor import Tensor


class Optimizer:
    """A list of parameters and, per parameter, the buffers its updates need.

    Subclasses name their hyperparameters (saved with the state, as PyTorch
    does, so a learning rate changed during training survives a resume) and
    define `_update(p, g, state)` for one parameter array `p`, its gradient
    `g` and its state dict.
    """

    hyperparameters = ()

    def __init__(self, params):
        self.params = list(params)  # a generator such as model.parameters() is read once
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for p in self.params:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"optimizer: expected Tensors with requires_grad=True, got {p!r}")
        self.state = [{} for _ in self.params]  # filled at each parameter's first update

    def zero_grad(self):
        """Forget the gradients: backward() accumulates into .grad."""
        for p in self.params:
            p.grad = None

    def step(self):
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is not None:
                self._update(p.data, p.grad, state)

    def _update(self, p, g, state):
        raise NotImplementedError

    def state_dict(self):
        """A flat dict of numbers and arrays (it can go straight into an .npz):
        the hyperparameters, and `state.<i>.<buffer>` for parameter i."""
        out = {name: getattr(self, name) for name in self.hyperparameters}
        out["num_params"] = len(self.params)
        for i, state in enumerate(self.state):
            for key, value in state.items():
                out[f"state.{i}.{key}"] = value.copy() if isinstance(value, np.ndarray) else value
        return out

    def load_state_dict(self, state_dict):
        """Restore what state_dict() returned (values may be 0-d arrays, as
        from an .npz). Everything is checked before anything is changed."""
        n = int(state_dict["num_params"])
        if n != len(self.params):
            raise ValueError(f"optimizer state is for {n} parameters, this optimizer has "
                             f"{len(self.params)}")
        states = [{} for _ in self.params]
        for name, value in state_dict.items():
            if not name.startswith("state."):
                continue
            index, key = name[len("state."):].split(".", 1)
            p = self.params[int(index)]
            if key == "step":
                states[int(index)][key] = int(value)
                continue
            value = np.asarray(value)
            if value.shape != p.shape:
                raise ValueError(f"optimizer state '{name}' has shape {value.shape}, but "
                                 f"parameter {index} has shape {p.shape}")
            states[int(index)][key] = value.astype(p.dtype, copy=True)
        hyper = {}
        for name in self.hyperparameters:
            if name not in state_dict:
                raise KeyError(f"optimizer state has no '{name}'")
            kind, value = type(getattr(self, name)), state_dict[name]
            hyper[name] = tuple(float(v) for v in value) if kind is tuple else kind(value)
        for name, value in hyper.items():
            setattr(self, name, value)
        self.state = states


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum and
    L2 weight decay. PyTorch's rule (with dampening 0), for gradient g:

        g <- g + weight_decay * p
        b <- g                                  at the first step
        b <- momentum * b + g                   afterwards
        g <- g + momentum * b   if nesterov,    else  g <- b
        p <- p - lr * g
    """

    hyperparameters = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got "
                             f"{lr}, {momentum}, {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.lr, self.momentum = float(lr), float(momentum)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = np.array(g)  # a copy, updated in place
            else:
                b *= self.momentum
                b += g
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g


class Adam(Optimizer):
    """Adam with bias correction and L2 weight decay added to the gradient
    (PyTorch's Adam, not AdamW). At step t = 1, 2, ... for gradient g:

        g <- g + weight_decay * p
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    eps is added after v's bias correction, where PyTorch adds it; adding it
    before (as the paper's pseudocode reads) changes early steps noticeably.
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"Adam: lr, eps and weight_decay must be >= 0, got "
                             f"{lr}, {eps}, {weight_decay}")
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        self.lr, self.eps, self.weight_decay = float(lr), float(eps), float(weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))

    def _update(self, p, g, state):
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
        state["step"] += 1
        t = state["step"]
        if self.weight_decay:
            g = g + self.weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        p -= (self.lr / (1 - beta1 ** t)) * m / denom


def clip_grad_norm_(params, max_norm):
    """Scale all gradients together so that their joint L2 norm is at most
    max_norm, and return the norm they had before (PyTorch's semantics).

    The scale is max_norm / (norm + 1e-6), applied only when it is below 1;
    the 1e-6 keeps it finite for an all-zero gradient. The norm is summed in
    float64, so float32 gradients that explode do not overflow it first.
    """
    if isinstance(params, Tensor):
        params = [params]
    params = [p for p in params if p.grad is not None]
    norm = math.sqrt(sum(float(np.sum(np.square(p.grad, dtype=np.float64))) for p in params))
    scale = max_norm / (norm + 1e-6)
    if scale < 1:
        for p in params:
            # a new array, not `*=`: a gradient may be a read-only broadcast view
            p.grad = p.grad * np.asarray(scale, p.grad.dtype)
    return norm
