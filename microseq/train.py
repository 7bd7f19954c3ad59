"""A small training loop for the lessons: progress bar, evaluation,
checkpoints, and resume that continues exactly where a run stopped.

    history = train(model, optimizer, batches, loss_fn, steps=2000)
    plt.plot(history.steps, history.losses)

A checkpoint is one `.npz` of plain arrays (no pickles): the model's state
under `model/<name>`, the optimizer's under `optim/<name>`, the step, the
state of microseq's default random generator as JSON text, and anything
passed as `extra` under `extra/<name>`.
"""
import json
import os
import re
import tempfile

import numpy as np
from tqdm import tqdm

from microseq.optim import clip_grad_norm_
from microseq.tensor import default_rng, no_grad

FORMAT = "microseq-checkpoint-1"


class CheckpointError(ValueError):
    """A file is not a microseq checkpoint, or does not fit the model."""


# --- checkpoints --------------------------------------------------------------


def save_checkpoint(path, model, optimizer=None, step=0, extra=None):
    """Write model, optimizer, step, random state and `extra` (a dict of
    arrays, numbers or strings) to `path`, atomically: the data goes to a
    temporary file in the same directory, which is then renamed over `path`.
    A crash mid-write leaves the previous checkpoint, never a truncated one."""
    arrays = {"format": np.array(FORMAT), "step": np.array(step),
              "rng/default": np.array(json.dumps(default_rng().bit_generator.state))}
    arrays.update({f"model/{k}": v for k, v in model.state_dict().items()})
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    arrays.update({f"extra/{k}": v for k, v in (extra or {}).items()})

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        os.unlink(tmp)
        raise


def load_checkpoint(path, model, optimizer=None):
    """Restore model, optimizer and the default random generator from `path`.

    Returns `(step, extra)`; extra's 0-d values come back as Python numbers
    and strings. Everything is checked before anything is changed.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        f = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # numpy takes an unknown format for a pickle
        raise CheckpointError(f"{path} is not a microseq checkpoint ({e})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path} is not a microseq checkpoint (a single array, not an .npz)")
    with f:
        arrays = {}
        for name in f.files:
            try:
                arrays[name] = f[name]
            except ValueError:
                raise CheckpointError(f"{path}: '{name}' is an object array, which would need "
                                      "unpickling; refused (allow_pickle=False)") from None
    if "format" not in arrays or arrays["format"].item() != FORMAT:
        raise CheckpointError(f"{path} is not a microseq checkpoint (no '{FORMAT}' marker)")

    def section(prefix):
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    state = section("model/")
    expected = model.state_dict()
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit the model: missing {sorted(missing)}, "
                              f"unexpected {sorted(unexpected)}")
    for name, value in state.items():
        if value.shape != expected[name].shape:
            raise CheckpointError(f"{path}: parameter '{name}' has shape {value.shape} in the "
                                  f"checkpoint but {expected[name].shape} in the model")
    if optimizer is not None:
        optim_state = section("optim/")
        if not optim_state:
            raise CheckpointError(f"{path} holds no optimizer state")
        try:
            optimizer.load_state_dict(optim_state)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: the optimizer state does not fit: {e}") from None
    model.load_state_dict(state)
    default_rng().bit_generator.state = json.loads(arrays["rng/default"].item())
    extra = {k: v.item() if v.ndim == 0 else v for k, v in section("extra/").items()}
    return int(arrays["step"]), extra


def latest_checkpoint(directory):
    """The path of the highest-step `step_<n>.npz` in directory, or None."""
    if not os.path.isdir(directory):
        return None
    steps = [int(m.group(1)) for name in os.listdir(directory)
             if (m := re.fullmatch(r"step_(\d+)\.npz", name))]
    return _checkpoint_path(directory, max(steps)) if steps else None


def _checkpoint_path(directory, step):
    return os.path.join(directory, f"step_{step:06d}.npz")


# --- the loop -------------------------------------------------------------------


class History(list):
    """One `(step, loss, metrics)` record per training step; metrics is the
    evaluation's dict at evaluation steps and empty otherwise."""

    @property
    def steps(self):
        return [step for step, _, _ in self]

    @property
    def losses(self):
        return [loss for _, loss, _ in self]

    def metric(self, name):
        """(steps, values) of one evaluation metric, ready for plt.plot(*...)."""
        pairs = [(step, metrics[name]) for step, _, metrics in self if name in metrics]
        return [s for s, _ in pairs], [v for _, v in pairs]


_END = object()  # marks a finished epoch: None could be a batch


class _Batches:
    """An endless stream of batches, epoch after epoch, that can be replayed.

    `batches` is either a callable `batches(rng) -> iterable of batches`,
    called once per epoch with the trainer's Generator (shuffle and sample
    with it), or an iterable that is simply iterated again each epoch. The
    stream's position is the Generator's state when the current epoch began
    plus the number of batches taken since: rebuilding the epoch from that
    state and skipping that many batches lands on exactly the next batch.
    """

    def __init__(self, batches, seed):
        self.batches = batches
        self.rng = np.random.default_rng(seed)
        self.epoch_start, self.taken, self.epoch = None, 0, None

    def _begin_epoch(self):
        self.epoch_start = self.rng.bit_generator.state
        self.taken = 0
        self.epoch = iter(self.batches(self.rng) if callable(self.batches) else self.batches)

    def __next__(self):
        if self.epoch is None:
            self._begin_epoch()
        batch = next(self.epoch, _END)
        if batch is _END:
            self._begin_epoch()
            batch = next(self.epoch, _END)
            if batch is _END:
                raise ValueError("train: an epoch of `batches` yielded no batches (a generator "
                                 "is used up after one pass: pass a function rng -> batches)")
        self.taken += 1
        return batch

    def state(self):
        return json.dumps({"epoch_start": self.epoch_start, "taken": self.taken})

    def restore(self, state):
        state = json.loads(state)
        self.rng.bit_generator.state = state["epoch_start"]
        self._begin_epoch()
        for _ in range(state["taken"]):
            next(self.epoch)
        self.taken = state["taken"]


def train(model, optimizer, batches, loss_fn, steps, *, seed=0, clip=None, lr_schedule=None,
          evaluate=None, eval_every=None, checkpoint_dir=None, checkpoint_every=None,
          resume=False, progress=None, desc="train"):
    """Run `steps` optimizer steps and return their History.

    Each step takes the next batch, computes `loss = loss_fn(model, batch)`
    (a scalar Tensor), backpropagates, clips the gradients' joint norm to
    `clip` if given, and updates the parameters. The progress bar shows a
    running (exponentially smoothed) loss and the latest evaluation; it is
    shown on a terminal by default (progress=None), always with True, never
    with False.

    batches: a function `rng -> iterable of batches for one epoch`, called
        with a numpy Generator seeded by `seed`, or an iterable that gives
        the same batches every epoch (a list, a BPTTBatcher). Epochs follow
        one another until `steps` is reached. Shuffle and sample batches
        with that `rng` (not microseq's default generator): its state is
        what lets a resumed run find the same next batch.
    lr_schedule: `lr_schedule(step) -> learning rate` for step = 0, 1, ...,
        set as optimizer.lr before each update (a resumed run continues it).
    evaluate: `evaluate(model) -> dict of floats`, run every `eval_every`
        steps and after the last, in eval mode and under no_grad().
        microseq's default generator is restored after it, so evaluating
        more or less often does not change training.
    checkpoint_dir: save `step_<n>.npz` there every `checkpoint_every` steps
        and after the last. With resume=True, training continues from the
        latest checkpoint found there (model, optimizer, history, random
        state and the position in the batch stream) and the result is the
        same as a run that never stopped. State a loss function carries from
        batch to batch on its own (a truncated-BPTT hidden state) is not
        saved: after a resume it starts afresh.

    Example:

        def batches(rng):                   # one shuffled epoch
            for idx in minibatches(len(x), 32, rng):
                yield x[idx], y[idx]

        def loss_fn(model, batch):
            inputs, targets = batch
            return cross_entropy(model(inputs), targets)

        history = train(model, Adam(model.parameters(), lr=1e-2), batches,
                        loss_fn, steps=1000, clip=1.0,
                        evaluate=lambda m: {"acc": accuracy(m, x_val, y_val)},
                        eval_every=100, checkpoint_dir="runs/demo",
                        checkpoint_every=500, resume=True)
        plt.plot(history.steps, history.losses)
        plt.plot(*history.metric("acc"))
    """
    if resume and not checkpoint_dir:
        raise ValueError("train: resume=True needs the checkpoint_dir to resume from")
    stream = _Batches(batches, seed)
    history = History()
    start = 0
    path = latest_checkpoint(checkpoint_dir) if resume else None
    if path:
        start, extra = load_checkpoint(path, model, optimizer)
        stream.restore(extra["batches"])
        metrics = json.loads(extra["history/metrics"])
        records = zip(extra["history/step"], extra["history/loss"], strict=True)
        history.extend((int(s), float(loss), metrics.get(str(s), {})) for s, loss in records)

    def checkpoint(step):
        save_checkpoint(_checkpoint_path(checkpoint_dir, step), model, optimizer, step, extra={
            "batches": stream.state(),
            "history/step": np.array(history.steps, dtype=np.int64),
            "history/loss": np.array(history.losses, dtype=np.float64),
            "history/metrics": json.dumps({s: m for s, _, m in history if m}),
        })

    model.train()
    running, shown = None, {}
    # tqdm's disable=None: a bar on a terminal, nothing in captured logs
    disable = None if progress is None else not progress
    with tqdm(total=steps, initial=start, desc=desc, disable=disable) as bar:
        for step in range(start + 1, steps + 1):
            optimizer.zero_grad()
            loss = loss_fn(model, next(stream))
            loss.backward()
            if clip is not None:
                clip_grad_norm_(optimizer.params, clip)
            if lr_schedule is not None:
                optimizer.lr = lr_schedule(step - 1)
            optimizer.step()

            loss = loss.item()
            running = loss if running is None else 0.95 * running + 0.05 * loss
            metrics = {}
            if evaluate is not None and (step == steps or eval_every and step % eval_every == 0):
                metrics = _evaluate(model, evaluate)
                shown = {k: f"{v:.4g}" for k, v in metrics.items()}
            history.append((step, loss, metrics))
            if checkpoint_dir and (step == steps or checkpoint_every
                                   and step % checkpoint_every == 0):
                checkpoint(step)
            bar.set_postfix({"loss": f"{running:.4f}", **shown}, refresh=False)
            bar.update()
    return history


def _evaluate(model, evaluate):
    rng_state = default_rng().bit_generator.state
    model.eval()
    try:
        with no_grad():
            return {name: float(value) for name, value in evaluate(model).items()}
    finally:
        model.train()
        default_rng().bit_generator.state = rng_state
