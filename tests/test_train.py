"""Checkpoints (atomic, pickle-free, clear errors) and the training loop,
above all: a run that stops and resumes equals a run that never stopped."""
import json
import os

import numpy as np
import pytest

import microseq
from microseq import Tensor, nn
from microseq.optim import SGD, Adam
from microseq.train import (
    CheckpointError, History, latest_checkpoint, load_checkpoint, save_checkpoint, train,
)

pytestmark = pytest.mark.nn


@pytest.fixture(autouse=True)
def _keep_default_rng():
    """These tests reseed microseq's generator; leave it as other tests found it."""
    state = microseq.default_rng().bit_generator.state
    yield
    microseq.default_rng().bit_generator.state = state


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


# --- checkpoints ---------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "ck.npz"
    model, optimizer = fresh(0)
    train(model, optimizer, shuffled_batches, mse, steps=3, progress=False)
    saved, rng_state = params_of(model), microseq.default_rng().bit_generator.state
    save_checkpoint(path, model, optimizer, step=3, extra={"note": "hi", "ids": np.arange(4)})

    other, other_optimizer = fresh(7)
    microseq.default_rng().standard_normal(5)
    step, extra = load_checkpoint(path, other, other_optimizer)
    assert step == 3 and extra["note"] == "hi"
    np.testing.assert_array_equal(extra["ids"], np.arange(4))
    for name, value in params_of(other).items():
        np.testing.assert_array_equal(value, saved[name])
    assert microseq.default_rng().bit_generator.state == rng_state
    np.testing.assert_array_equal(other_optimizer.state[0]["exp_avg"],
                                  optimizer.state[0]["exp_avg"])


def test_checkpoint_is_plain_arrays_with_rng_state_as_json(tmp_path):
    path = tmp_path / "ck.npz"
    model, optimizer = fresh(0)
    save_checkpoint(path, model, optimizer, step=5)
    with np.load(path, allow_pickle=False) as f:
        assert {"model/gru.weight_ih_l0", "model/out.bias", "optim/lr", "step"} <= set(f.files)
        assert f["rng/default"].dtype.kind == "U" and f["rng/default"].ndim == 0
        assert json.loads(f["rng/default"].item())["bit_generator"] == "PCG64"


def test_a_crash_while_writing_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    model, optimizer = fresh(0)
    save_checkpoint(path, model, optimizer, step=1)
    before = params_of(model)

    def crash_midway(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    model.out.weight.data += 1
    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, optimizer, step=2)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left behind
    step, _ = load_checkpoint(path, model, optimizer)
    assert step == 1
    np.testing.assert_array_equal(model.out.weight.data, before["out.weight"])


def test_load_errors_are_clear(tmp_path):
    model, optimizer = fresh(0)
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_checkpoint(missing, model)

    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.txt is not a microseq checkpoint"):
        load_checkpoint(text, model)

    plain = tmp_path / "plain.npz"
    np.savez(plain, weight=np.zeros((2, 8)))
    with pytest.raises(CheckpointError, match="not a microseq checkpoint"):
        load_checkpoint(plain, model)

    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(CheckpointError, match="not a microseq checkpoint"):
        load_checkpoint(single, model)

    path = tmp_path / "small.npz"
    microseq.manual_seed(0)
    save_checkpoint(path, Net(n_in=5))
    with pytest.raises(CheckpointError, match=r"'gru.weight_ih_l0' has shape \(24, 5\) in the "
                                              r"checkpoint but \(24, 3\) in the model"):
        load_checkpoint(path, model)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(path, Net(n_in=5), SGD(model.parameters(), lr=0.1))

    save_checkpoint(path, model, optimizer)
    with pytest.raises(CheckpointError, match="small.npz: the optimizer state does not fit"):
        load_checkpoint(path, model, Adam(model.out.parameters()))


def test_a_checkpoint_with_missing_parameters_changes_nothing(tmp_path):
    model, optimizer = fresh(0)
    path = tmp_path / "ck.npz"
    save_checkpoint(path, model, optimizer)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files if k != "model/out.bias"}
    np.savez(path, **arrays)
    other, _ = fresh(1)
    before = params_of(other)
    with pytest.raises(CheckpointError, match=r"missing \['out.bias'\]"):
        load_checkpoint(path, other)
    np.testing.assert_array_equal(other.out.weight.data, before["out.weight"])


def test_object_arrays_are_refused(tmp_path):
    model, _ = fresh(0)
    path = tmp_path / "evil.npz"
    save_checkpoint(path, model)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["extra/payload"] = np.array([{"a": 1}], dtype=object)
    np.savez(path, **arrays)  # numpy pickles the object array
    with pytest.raises(CheckpointError, match="'extra/payload' is an object array"):
        load_checkpoint(path, model)
    with pytest.raises(ValueError):  # nor can one be written
        save_checkpoint(tmp_path / "x.npz", model, extra={"obj": np.array([None], dtype=object)})


# --- the training loop ----------------------------------------------------------


def run(seed, steps, directory=None, resume=False, batches=shuffled_batches, **kwargs):
    model, optimizer = fresh(seed)
    history = train(model, optimizer, batches, mse, steps, seed=3, evaluate=evaluate,
                    eval_every=4, checkpoint_dir=directory, resume=resume, progress=False,
                    **kwargs)
    return model, history


@pytest.mark.parametrize("k", [5, 7])  # at an epoch's end and in its middle
def test_resume_gives_the_same_run_as_no_interruption(tmp_path, k):
    whole_model, whole = run(0, 2 * k)

    run(0, k, tmp_path, checkpoint_every=k)
    microseq.manual_seed(99)  # a new process: other random state, other initial weights
    resumed_model, resumed = run(1, 2 * k, tmp_path, resume=True)

    assert resumed[k] == whole[k]  # the loss at step k+1
    assert resumed.steps == whole.steps and resumed.losses == whole.losses
    # evaluations agree too; the stopped run also evaluated after its last step, k
    assert [r for r in resumed if r[0] != k] == [r for r in whole if r[0] != k]
    for name, value in params_of(resumed_model).items():
        np.testing.assert_array_equal(value, params_of(whole_model)[name])
    assert microseq.default_rng().bit_generator.state == _rng_state_after(0, 2 * k)


def _rng_state_after(seed, steps):
    run(seed, steps)
    return microseq.default_rng().bit_generator.state


def test_resume_with_a_fixed_list_of_batches_across_epochs(tmp_path):
    batches = [(X[i:i + 6], Y[i:i + 6]) for i in range(0, 18, 6)]  # 3 per epoch
    _, whole = run(0, 8, batches=batches, clip=0.5)
    run(0, 4, tmp_path, batches=batches, clip=0.5)
    _, resumed = run(0, 8, tmp_path, resume=True, batches=batches, clip=0.5)
    assert resumed == whole


def test_history_checkpoints_and_evaluation(tmp_path):
    model, history = run(0, 10, tmp_path, checkpoint_every=4)
    assert isinstance(history, History) and history.steps == list(range(1, 11))
    assert sorted(os.listdir(tmp_path)) == ["step_000004.npz", "step_000008.npz",
                                           "step_000010.npz"]
    assert latest_checkpoint(tmp_path) == os.path.join(tmp_path, "step_000010.npz")
    steps, errors = history.metric("mse")
    assert steps == [4, 8, 10]  # every eval_every steps and after the last
    assert all(m["training"] == 0.0 for _, _, m in history if m)  # evaluated in eval mode
    assert model.drop.training  # and back in training mode afterwards
    assert errors[-1] < errors[0]

    # resuming a finished run trains no further and returns its history
    _, again = run(5, 10, tmp_path, resume=True)
    assert again == history


def test_progress_bar_shows_running_loss_and_metrics(capsys):
    model, optimizer = fresh(0)
    train(model, optimizer, shuffled_batches, mse, steps=4, evaluate=evaluate,
          desc="fit", progress=True)
    err = capsys.readouterr().err
    assert "fit" in err and "loss=" in err and "mse=" in err
    train(model, optimizer, shuffled_batches, mse, steps=4, desc="quiet")
    assert "quiet" not in capsys.readouterr().err  # captured output is not a terminal


def test_argument_mistakes_are_clear_errors():
    model, optimizer = fresh(0)
    with pytest.raises(ValueError, match="resume=True needs the checkpoint_dir"):
        train(model, optimizer, shuffled_batches, mse, steps=2, resume=True)
    batches = shuffled_batches(np.random.default_rng(0))  # one epoch, consumed once
    with pytest.raises(ValueError, match="yielded no batches"):
        train(model, optimizer, batches, mse, steps=6, progress=False)


def test_lr_schedule_sets_the_rate_of_every_step_and_resumes_with_it(tmp_path):
    def schedule(step):
        return 0.1 / (1 + step)

    model, optimizer = fresh(0)
    seen = []
    step_with = optimizer.step
    optimizer.step = lambda: (seen.append(optimizer.lr), step_with())
    train(model, optimizer, shuffled_batches, mse, steps=5, lr_schedule=schedule, progress=False)
    assert seen == [schedule(s) for s in range(5)]

    _, whole = run(0, 8, lr_schedule=schedule)
    run(0, 3, tmp_path, checkpoint_every=3, lr_schedule=schedule)
    _, resumed = run(0, 8, tmp_path, resume=True, lr_schedule=schedule)
    assert resumed.losses == whole.losses
    _, constant = run(0, 8)
    assert constant.losses != whole.losses  # the schedule did change the run
