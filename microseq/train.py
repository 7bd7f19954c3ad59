"""A small training loop for the lessons: progress bar, evaluation,
checkpoints, and resume that continues exactly where a run stopped.

    history = train(model, optimizer, batches, loss_fn, steps=2000)
    plt.plot(history.steps, history.losses)

Checkpoints are written and read by microseq.checkpoint; learning-rate
schedules for `lr_schedule` sit at the end of this file.
"""
import math

import numpy as np
from tqdm import tqdm

from microseq.checkpoint import latest_checkpoint, list_checkpoints, resume_run, save_run
from microseq.optim import clip_grad_norm_
from microseq.tensor import default_rng, no_grad


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: training stopped before that step's update."""


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
        return {"epoch_start": self.epoch_start, "taken": self.taken}

    def restore(self, state):
        self.rng.bit_generator.state = state["epoch_start"]
        self._begin_epoch()
        for _ in range(state["taken"]):
            next(self.epoch)
        self.taken = state["taken"]


def train(model, optimizer, batches, loss_fn, steps, *, seed=0, clip=None, lr_schedule=None,
          evaluate=None, eval_every=None, checkpoint_dir=None, checkpoint_every=None,
          resume=False, keep_last=5, error_if_nonfinite=True, progress=None, desc="train"):
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
        saved: after a resume it starts afresh. A damaged newest checkpoint
        is set aside (renamed `.damaged`, with a warning) and the one before
        it used. Without resume, checkpoint_dir must hold no checkpoints yet.
    keep_last: how many of the newest checkpoints to keep (None: all).
    error_if_nonfinite: a NaN or infinite loss raises NonFiniteLossError
        before that step's update, so the weights (and the checkpoints) stay
        those of the last good step; with False, training goes on regardless.

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
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"train: keep_last must be 1 or more (None keeps all), got {keep_last}")
    if checkpoint_dir and not resume and list_checkpoints(checkpoint_dir):
        raise ValueError(f"train: {checkpoint_dir} already holds checkpoints of a run (the "
                         f"newest: {latest_checkpoint(checkpoint_dir)}); pass resume=True to "
                         "continue it, or choose another checkpoint_dir")
    stream = _Batches(batches, seed)
    history = History()
    start = 0
    if resume:
        start, records = resume_run(checkpoint_dir, model, optimizer, stream)
        history.extend(records)

    model.train()
    running, shown = None, {}
    # tqdm's disable=None: a bar on a terminal, nothing in captured logs
    disable = None if progress is None else not progress
    with tqdm(total=steps, initial=start, desc=desc, disable=disable) as bar:
        for step in range(start + 1, steps + 1):
            optimizer.zero_grad()
            loss = loss_fn(model, next(stream))
            value = loss.item()
            if error_if_nonfinite and not math.isfinite(value):
                raise NonFiniteLossError(_nonfinite_message(value, step, checkpoint_dir))
            loss.backward()
            if clip is not None:
                clip_grad_norm_(optimizer.params, clip)
            if lr_schedule is not None:
                optimizer.lr = lr_schedule(step - 1)
            optimizer.step()

            running = value if running is None else 0.95 * running + 0.05 * value
            metrics = {}
            if evaluate is not None and (step == steps or eval_every and step % eval_every == 0):
                metrics = _evaluate(model, evaluate)
                shown = {k: f"{v:.4g}" for k, v in metrics.items()}
            history.append((step, value, metrics))
            if checkpoint_dir and (step == steps or checkpoint_every
                                   and step % checkpoint_every == 0):
                save_run(checkpoint_dir, step, model, optimizer, stream, history, keep_last)
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


def _nonfinite_message(loss, step, checkpoint_dir):
    saved = latest_checkpoint(checkpoint_dir) if checkpoint_dir else None
    kept = f"; the last checkpoint, {saved}, is from before it" if saved else ""
    return (f"train: the loss is {loss} at step {step}; stopped before updating the weights "
            f"with it{kept}. A lower learning rate or gradient clipping (clip=) may help; "
            "error_if_nonfinite=False trains on regardless")


# --- learning-rate schedules, for lr_schedule ---------------------------------------


def cosine_decay(step, total, peak):
    """The learning rate at `step` (0-based) of `total`: half a cosine from
    `peak` down to zero, so the last steps are small and the weights settle."""
    return peak * 0.5 * (1 + math.cos(math.pi * step / total))
