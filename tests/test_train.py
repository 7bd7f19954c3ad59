"""The training loop, above all: a run that stops and resumes equals a run
that never stopped; a NaN loss stops it; learning-rate schedules."""
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tiny_training import X, Y, evaluate, fresh, mse, params_of, run, shuffled_batches

import microseq
from microseq.checkpoint import latest_checkpoint
from microseq.train import History, NonFiniteLossError, cosine_decay, train

pytestmark = [pytest.mark.nn, pytest.mark.usefixtures("keep_default_rng")]


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
    with pytest.raises(ValueError, match=r"keep_last must be 1 or more \(None keeps all\), got 0"):
        train(model, optimizer, shuffled_batches, mse, steps=2, checkpoint_dir="x", keep_last=0)
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


def test_a_fresh_run_will_not_write_over_another_runs_checkpoints(tmp_path):
    run(0, 2, tmp_path)
    with pytest.raises(ValueError, match=r"already holds checkpoints of a run \(the newest: "
                                         r".*step_000002.npz\); pass resume=True"):
        run(0, 4, tmp_path)
    assert os.listdir(tmp_path) == ["step_000002.npz"]


@pytest.mark.parametrize("keep_last, kept", [(3, [8, 9, 10]), (1, [10]), (None, range(1, 11))])
def test_keep_last_bounds_the_checkpoints_kept(tmp_path, keep_last, kept):
    run(0, 10, tmp_path, checkpoint_every=1, keep_last=keep_last)
    assert sorted(os.listdir(tmp_path)) == [f"step_{s:06d}.npz" for s in kept]


def poisoned(bad_step, value):
    """mse, except that the loss of step `bad_step` (1-based) is `value`."""
    steps = iter(range(1, 10**6))

    def loss_fn(model, batch):
        loss = mse(model, batch)
        return loss * value if next(steps) == bad_step else loss
    return loss_fn


@pytest.mark.parametrize("value, shown", [(math.nan, "nan"), (math.inf, "inf"),
                                          (-math.inf, "-inf")])
def test_a_non_finite_loss_stops_training_before_its_update(tmp_path, value, shown):
    good, _ = run(0, 4)
    model, optimizer = fresh(0)
    with pytest.raises(NonFiniteLossError, match=rf"the loss is {shown} at step 5; stopped before "
                                                 r"updating the weights with it; the last "
                                                 r"checkpoint, .*step_000004.npz, is from before"):
        train(model, optimizer, shuffled_batches, poisoned(5, value), 8, seed=3,
              evaluate=evaluate, eval_every=4, checkpoint_dir=tmp_path, checkpoint_every=2,
              progress=False)
    for name, array in params_of(model).items():  # the weights after step 4, all finite
        np.testing.assert_array_equal(array, params_of(good)[name])
    assert sorted(os.listdir(tmp_path)) == ["step_000002.npz", "step_000004.npz"]


def test_error_if_nonfinite_false_trains_on():
    model, optimizer = fresh(0)
    history = train(model, optimizer, shuffled_batches, poisoned(2, math.nan), 4,
                    error_if_nonfinite=False, progress=False)
    assert history.steps == [1, 2, 3, 4] and math.isnan(history.losses[1])
    assert all(np.isnan(p.data).all() for p in model.parameters())  # what the check prevents


# --- learning-rate schedules ------------------------------------------------------


@given(total=st.integers(1, 500))
def test_cosine_decay_falls_from_peak_to_zero(total):
    rates = np.array([cosine_decay(step, total, 0.1) for step in range(total + 1)])
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0, abs=1e-15)
    assert np.all(np.diff(rates) < 0)
