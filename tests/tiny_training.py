"""A small model and dataset with the randomness of a real lesson, shared by
the tests of the training loop and of checkpoints.

    model, history = run(seed=0, steps=10, directory=tmp_path, checkpoint_every=4)
"""
import numpy as np

import microseq
from microseq import Tensor, nn
from microseq.optim import Adam
from microseq.train import train


class Net(nn.Module):
    """A GRU over a short sequence, dropout, and a linear read-out: small, but
    with the randomness (dropout draws from microseq's default generator) and
    the train/eval switch a real lesson has."""

    def __init__(self, n_in=3, hidden=8, n_out=2):
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x):
        _, h = self.gru(Tensor(x))
        return self.out(self.drop(h[0]))


X = np.random.default_rng(1).standard_normal((20, 4, 3)).astype(np.float32)
Y = np.stack([X[:, 0, 0] - X[:, -1, 1], X[:, :, 2].mean(axis=1)], axis=1)


def shuffled_batches(rng):
    """One epoch of 5 shuffled batches of 4."""
    order = rng.permutation(len(X))
    for i in range(0, len(X), 4):
        yield X[order[i:i + 4]], Y[order[i:i + 4]]


def mse(model, batch):
    x, y = batch
    diff = model(x) - Tensor(y)
    return (diff * diff).mean()


def evaluate(model):
    microseq.default_rng().standard_normal(3)  # evaluation that samples must not shift training
    return {"mse": mse(model, (X, Y)).item(), "training": float(model.drop.training)}


def fresh(seed):
    microseq.manual_seed(seed)
    model = Net()
    return model, Adam(model.parameters(), lr=0.02)


def params_of(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def run(seed, steps, directory=None, resume=False, batches=shuffled_batches, **kwargs):
    """Train a fresh Net (initial weights from `seed`) for `steps` steps."""
    model, optimizer = fresh(seed)
    history = train(model, optimizer, batches, mse, steps, seed=3, evaluate=evaluate,
                    eval_every=4, checkpoint_dir=directory, resume=resume, progress=False,
                    **kwargs)
    return model, history
