"""Checkpoints: atomic, pickle-free, and every problem with a file a clear
CheckpointError that changes nothing; resume skips a damaged checkpoint, and
a run killed at any moment resumes as if it had never stopped."""
import io
import json
import multiprocessing
import os
import signal
import sys
import time
import warnings

import numpy as np
import pytest
from tiny_training import X, Y, Net, fresh, mse, params_of, run, shuffled_batches

import microseq
from microseq.checkpoint import (
    Checkpoint, CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint,
)
from microseq.optim import SGD, Adam
from microseq.train import train

pytestmark = [pytest.mark.nn, pytest.mark.usefixtures("keep_default_rng")]


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "ck.npz"
    model, optimizer = fresh(0)
    run_model, _ = run(0, 3)
    model.load_state_dict(run_model.state_dict())
    saved, rng_state = params_of(model), microseq.default_rng().bit_generator.state
    save_checkpoint(path, model, optimizer, step=3, extra={"note": "hi", "ids": np.arange(4)})

    other, other_optimizer = fresh(7)
    microseq.default_rng().standard_normal(5)
    step, extra = load_checkpoint(path, other, other_optimizer)
    assert step == 3 and extra == {"note": "hi", "ids": extra["ids"]}
    np.testing.assert_array_equal(extra["ids"], np.arange(4))
    for name, value in params_of(other).items():
        np.testing.assert_array_equal(value, saved[name])
    assert microseq.default_rng().bit_generator.state == rng_state


def test_optimizer_state_round_trips(tmp_path):
    path = tmp_path / "ck.npz"
    model, history = run(0, 3, tmp_path / "run")
    restored, optimizer = fresh(1)
    load_checkpoint(latest_checkpoint(tmp_path / "run"), restored, optimizer)
    assert optimizer.state[0]["step"] == 3 and optimizer.state[0]["exp_avg"].any()
    save_checkpoint(path, restored, optimizer, step=3)
    again, again_optimizer = fresh(2)
    load_checkpoint(path, again, again_optimizer)
    np.testing.assert_array_equal(again_optimizer.state[0]["exp_avg"],
                                  optimizer.state[0]["exp_avg"])


def test_checkpoint_is_plain_arrays_with_rng_state_as_json(tmp_path):
    path = tmp_path / "ck.npz"
    model, optimizer = fresh(0)
    save_checkpoint(path, model, optimizer, step=5)
    with np.load(path, allow_pickle=False) as f:
        assert {"model/gru.weight_ih_l0", "model/out.bias", "optim/lr", "step"} <= set(f.files)
        assert f["rng/default"].dtype.kind == "U" and f["rng/default"].ndim == 0
        assert json.loads(f["rng/default"].item())["bit_generator"] == "PCG64"
        assert sorted(json.loads(f["entries"].item()) + ["entries"]) == sorted(f.files)


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


# --- bad files: (what is done to a good checkpoint, the message) -------------------


def rewrite(path, change):
    """Rewrite the checkpoint at `path` as a plain .npz after `change(arrays)`."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


def without(*names):
    """Drop entries, and from the list of entries too: as a checkpoint that never had them."""
    def change(arrays):
        for name in names:
            del arrays[name]
        arrays["entries"] = np.array(json.dumps(sorted(set(arrays) - {"entries"})))
    return change


def replaced(name, value):
    return lambda arrays: arrays.__setitem__(name, np.array(value))


def truncated(keep):
    return lambda path: path.write_bytes(path.read_bytes()[:keep])


def flipped(bit):
    def damage(path):
        raw = bytearray(path.read_bytes())
        raw[bit // 8] ^= 1 << bit % 8
        path.write_bytes(bytes(raw))
    return damage


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def object_array(arrays):
    arrays["extra/payload"] = np.array([{"a": 1}], dtype=object)  # numpy pickles it


BAD_FILES = {
    "truncated to half": (truncated(3000), r"ck.npz is damaged: truncated or corrupted "
                                           r"\(3,000 bytes; BadZipFile while reading it\)"),
    "truncated to 10 bytes": (truncated(10), r"ck.npz is damaged: truncated or corrupted"),
    "empty": (truncated(0), r"ck.npz is damaged: the file is empty"),
    "one flipped bit in the data": (flipped(8 * 700 + 3), r"ck.npz is damaged: truncated or "
                                                          r"corrupted"),
    "text": (lambda path: path.write_text("not a checkpoint"),
             r"ck.npz is not a microseq checkpoint \(not an .npz archive\)"),
    "a directory": (lambda path: (path.unlink(), path.mkdir()),
                    r"no checkpoint at .*ck.npz \(it is a directory\)"),
    "an .npy": (lambda path: path.write_bytes(npy_bytes(np.zeros(3))),
                r"ck.npz is not a microseq checkpoint \(not an .npz archive\)"),
    "a plain .npz": (lambda path: np.savez(path, weight=np.zeros((2, 8))),
                     r"ck.npz is not a microseq checkpoint \(no 'microseq-checkpoint-2' marker\)"),
    "an object array": ((lambda path: rewrite(path, object_array)),
                        r"ck.npz: the entry 'extra/payload' holds Python objects, but a "
                        r"checkpoint holds only plain arrays"),
    "no step": (lambda path: rewrite(path, without("step")),
                r"ck.npz is damaged: the entry 'step' is missing"),
    "no random state": (lambda path: rewrite(path, without("rng/default")),
                        r"ck.npz is damaged: the entry 'rng/default' is missing"),
    "garbled random state": (lambda path: rewrite(path, replaced("rng/default", "{oops")),
                             r"ck.npz is damaged: the entry 'rng/default' is not valid JSON"),
    "wrong random state": (lambda path: rewrite(path, replaced("rng/default", '{"a": 1}')),
                           r"'rng/default' is not the state of a random generator"),
    "a float step": (lambda path: rewrite(path, replaced("step", 2.5)),
                     r"ck.npz is damaged: 'step' is not an integer"),
    "an entry lost from the list": (lambda path: rewrite(path, replaced("entries", "[]")),
                                    r"ck.npz is damaged: its entries are not the ones it lists"),
    "a parameter gone": (lambda path: rewrite(path, without("model/out.bias")),
                         r"ck.npz does not fit the model: missing \['out.bias'\], unexpected \[\]"),
    "a parameter of text": (lambda path: rewrite(path, replaced("model/out.bias", ["a", "b"])),
                            r"ck.npz is damaged: parameter 'out.bias' holds <U1, not numbers"),
    "an optimizer entry gone": (lambda path: rewrite(path, without("optim/num_params")),
                                r"ck.npz: the optimizer state does not fit: 'num_params'"),
    "an optimizer setting gone": (lambda path: rewrite(path, without("optim/eps")),
                                  r"the optimizer state does not fit: .*has no 'eps'"),
}


@pytest.fixture
def good_run_checkpoint(tmp_path):
    """The path of the last checkpoint of a 3-step run, moved to <tmp>/ck.npz."""
    run(0, 3, tmp_path / "run")
    path = tmp_path / "ck.npz"
    os.replace(latest_checkpoint(tmp_path / "run"), path)
    return path


@pytest.mark.parametrize("damage, message", BAD_FILES.values(), ids=BAD_FILES)
def test_a_bad_file_is_a_clear_error_that_changes_nothing(good_run_checkpoint, damage, message):
    damage(good_run_checkpoint)
    model, optimizer = fresh(1)
    optimizer.lr = 0.5  # not the saved rate: a half-done load would show
    before, rng_state = params_of(model), microseq.default_rng().bit_generator.state
    with pytest.raises(CheckpointError, match=message) as error:
        Checkpoint(good_run_checkpoint).restore(model, optimizer)
    assert "pickle" not in str(error.value)
    for name, value in params_of(model).items():
        np.testing.assert_array_equal(value, before[name])
    assert optimizer.state == [{} for _ in optimizer.params] and optimizer.lr == 0.5
    assert microseq.default_rng().bit_generator.state == rng_state


def test_any_flipped_bit_or_cut_is_an_error_or_harmless(tmp_path):
    """A sample of single-bit flips and truncations all over a checkpoint:
    each one either loads exactly what was saved (the bit was in a field zip
    does not use) or is a CheckpointError, and a failed load changes nothing."""
    path, bad = tmp_path / "ck.npz", tmp_path / "bad.npz"
    saved, optimizer = fresh(0)
    save_checkpoint(path, saved, optimizer, step=7)
    raw = path.read_bytes()
    model, _ = fresh(0)
    rng = np.random.default_rng(0)
    errors = 0
    for bit in rng.choice(8 * len(raw), 60, replace=False):
        flipped(int(bit))(bad.write_bytes(raw) and bad)
        try:
            step, _ = load_checkpoint(bad, model)
            assert step == 7
        except CheckpointError as e:
            errors += 1
            assert str(e).startswith(str(bad)) and "pickle" not in str(e)
        for name, value in params_of(model).items():
            np.testing.assert_array_equal(value, params_of(saved)[name])
    for keep in rng.choice(len(raw), 10, replace=False):
        bad.write_bytes(raw[:keep])
        with pytest.raises(CheckpointError, match="bad.npz"):
            load_checkpoint(bad, model)
    assert errors > 30  # most bits are data or headers that zip checks


def test_load_errors_name_the_file_and_the_mismatch(tmp_path):
    model, optimizer = fresh(0)
    with pytest.raises(CheckpointError, match="no checkpoint at .*nowhere.npz"):
        load_checkpoint(tmp_path / "nowhere.npz", model)

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


@pytest.mark.parametrize("value, kind", [
    ({"a": 1}, "dict"), ([1, 2], "list"), (None, "NoneType"),
    (np.array([None], dtype=object), "ndarray of dtype object"),
])
def test_extra_values_that_are_not_plain_arrays_are_refused_by_key(tmp_path, value, kind):
    model, _ = fresh(0)
    with pytest.raises(TypeError, match=rf"extra\['config'\] is a {kind}; a checkpoint holds "
                                        r"only arrays of numbers or text.*json.dumps"):
        save_checkpoint(tmp_path / "x.npz", model, extra={"note": "fine", "config": value})
    assert os.listdir(tmp_path) == []


# --- resume -----------------------------------------------------------------------


RUN_DAMAGE = {
    "truncated": (truncated(1000), r"is damaged: truncated or corrupted \(1,000 bytes"),
    "its place in the batches gone": (lambda path: rewrite(path, without("extra/batches")),
                                      r"is damaged: the entries \['batches'\] are missing"),
    "its history garbled": (lambda path: rewrite(path, replaced("extra/history/metrics", "{")),
                            r"is damaged: the entry 'extra/history/metrics' is not valid JSON"),
}


@pytest.mark.parametrize("damage, message", RUN_DAMAGE.values(), ids=RUN_DAMAGE)
def test_resume_sets_a_damaged_newest_checkpoint_aside_and_uses_the_one_before(tmp_path, damage,
                                                                               message):
    _, whole = run(0, 8)
    run(0, 6, tmp_path, checkpoint_every=2)
    damage(tmp_path / "step_000006.npz")
    with pytest.warns(UserWarning, match=r"step_000006.npz " + message + r".*; renamed it to "
                                         r"step_000006.npz.damaged and trying the checkpoint "
                                         r"before it"):
        _, resumed = run(0, 8, tmp_path, resume=True, checkpoint_every=2)
    assert resumed == whole  # history, losses and evaluations: from step 4 on, as if unbroken
    assert sorted(os.listdir(tmp_path)) == [
        "step_000002.npz", "step_000004.npz", "step_000006.npz", "step_000006.npz.damaged",
        "step_000008.npz"]


def test_resume_into_a_model_that_does_not_fit_is_an_error(tmp_path):
    run(0, 2, tmp_path)
    model = Net(n_in=5)
    with pytest.raises(CheckpointError, match="step_000002.npz: parameter 'gru.weight_ih_l0'"):
        train(model, Adam(model.parameters()), shuffled_batches, mse, 4,
              checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="step_000002.npz: cannot find the run's place in "
                                              "these batches"):
        train(*fresh(0), [(X[:4], Y[:4])], mse, 4, checkpoint_dir=tmp_path, resume=True)
    assert os.listdir(tmp_path) == ["step_000002.npz"]  # not set aside: it is not damaged


def test_stale_temporary_files_are_cleaned(tmp_path):
    run(0, 2, tmp_path)
    stale = tmp_path / "step_000003.npz.k2j4x9.tmp"
    stale.write_bytes(b"PK\x03\x04 half a zip")
    other = tmp_path / "notes.tmp"
    other.write_text("not ours")
    run(0, 3, tmp_path, resume=True)
    assert sorted(os.listdir(tmp_path)) == ["notes.tmp", "step_000002.npz", "step_000003.npz"]

    killed = tmp_path / "model.npz.q8v1zz.tmp"  # a write to model.npz that was killed
    killed.write_bytes(b"PK\x03\x04 half a zip")
    save_checkpoint(tmp_path / "model.npz", Net())
    assert not killed.exists() and other.exists()


def _train_until_killed(directory, steps):
    run(0, steps, directory, resume=True, checkpoint_every=1, keep_last=2)


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork and SIGKILL")
def test_a_run_killed_at_random_moments_resumes_as_if_never_stopped(tmp_path):
    """SIGKILL a training process (checkpointing every step, so most moments
    fall inside a write) at random moments, over and over; every time, the
    newest checkpoint reads, and the run finally resumed equals one that
    never stopped."""
    steps = 24
    _, whole = run(0, steps)
    start = time.perf_counter()  # a step with its checkpoint, timed on this machine as it is now
    run(0, 3, tmp_path / "timing", checkpoint_every=1)
    step_seconds = (time.perf_counter() - start) / 3
    fork = multiprocessing.get_context("fork")
    newest = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork in a process with threads
        for delay in np.random.default_rng(0).uniform(1, 6, size=6) * step_seconds:
            child = fork.Process(target=_train_until_killed, args=(tmp_path, steps))
            child.start()
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            child.join()
            path = latest_checkpoint(tmp_path)
            if path is not None:
                step = Checkpoint(path).step
                assert step >= newest  # never lost ground
                newest = step
    assert newest > 0
    _, resumed = run(0, steps, tmp_path, resume=True, checkpoint_every=1, keep_last=2)
    assert resumed == whole
    assert sorted(os.listdir(tmp_path)) == ["step_000023.npz", "step_000024.npz", "timing"]
