"""Checkpoints: saving a model (and its training run) to disk, reading it back,
and resuming a run from the newest checkpoint that reads cleanly.

A checkpoint is one `.npz` of plain arrays (no pickles): the model's state
under `model/<name>`, the optimizer's under `optim/<name>`, the step, the
state of microseq's default random generator as JSON text, anything passed
as `extra` under `extra/<name>`, and the list of all these names (zip checks
each entry's data, not its name).

    save_checkpoint("runs/demo/model.npz", model, optimizer, step=100)
    step, extra = load_checkpoint("runs/demo/model.npz", model, optimizer)

Nothing is lost on the way: a file is written to a temporary name and
renamed into place, so a crash leaves the previous checkpoint whole; reading
checks every entry before anything in the model or optimizer changes, and
every problem is a CheckpointError naming the file and what is wrong.
"""
import json
import os
import re
import tempfile
import warnings
import zipfile
from numbers import Number

import numpy as np

from microseq.tensor import default_rng

FORMAT = "microseq-checkpoint-2"


class CheckpointError(ValueError):
    """A file is not a readable microseq checkpoint, or does not fit the model."""


# --- one file ---------------------------------------------------------------------


def save_checkpoint(path, model, optimizer=None, step=0, extra=None):
    """Write model, optimizer, step, random state and `extra` (a dict of
    arrays, numbers or strings) to `path`, atomically: the data goes to a
    temporary file in the same directory, which is then renamed over `path`.
    A crash mid-write leaves the previous checkpoint, never a truncated one
    (and a temporary file, which the next save to `path` deletes)."""
    arrays = {"format": np.array(FORMAT), "step": np.array(step),
              "rng/default": np.array(json.dumps(default_rng().bit_generator.state))}
    arrays.update({f"model/{k}": v for k, v in model.state_dict().items()})
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    for key, value in (extra or {}).items():
        arrays[f"extra/{key}"] = _plain_array(key, value)
    arrays["entries"] = np.array(json.dumps(sorted(arrays)))

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
    _remove_temporary_files(directory, re.escape(os.path.basename(path)))


def _remove_temporary_files(directory, name_pattern):
    """Delete what writes to files matching `name_pattern` left when killed."""
    for name in os.listdir(directory):
        if re.fullmatch(name_pattern + r"\..+\.tmp", name):
            os.unlink(os.path.join(directory, name))


def _plain_array(key, value):
    """`value` as an array of numbers, booleans or text, or a TypeError naming `key`."""
    if isinstance(value, (Number, str, np.ndarray)):
        array = np.asarray(value)
        if array.dtype.kind in "biufcU":
            return array
    raise TypeError(f"save_checkpoint: extra['{key}'] is a {type(value).__name__}"
                    f"{f' of dtype {value.dtype}' if isinstance(value, np.ndarray) else ''}; "
                    "a checkpoint holds only arrays of numbers or text, numbers and strings "
                    "(store other values as text, e.g. json.dumps(value))")


class Checkpoint:
    """A checkpoint file read and checked, not yet applied to anything:
    `Checkpoint(path)` changes nothing, `.restore(model, optimizer)` loads it.

    Attributes: path, step, extra (0-d values as Python numbers and strings),
    model_state and optimizer_state (dicts of arrays), rng_state.
    """

    def __init__(self, path):
        self.path = path
        arrays = _read_arrays(path)
        if "format" not in arrays or arrays["format"].shape or arrays["format"].item() != FORMAT:
            raise CheckpointError(f"{path} is not a microseq checkpoint (no '{FORMAT}' marker)")
        for name in ("entries", "step", "rng/default"):
            if name not in arrays or arrays[name].shape:
                raise CheckpointError(f"{path} is damaged: the entry '{name}' is missing")
        listed = self.parse_json(arrays.pop("entries").item(), "entries")
        if not isinstance(listed, list) or set(map(str, listed)) != arrays.keys():
            raise CheckpointError(f"{path} is damaged: its entries are not the ones it lists")
        if arrays["step"].dtype.kind not in "iu":
            raise CheckpointError(f"{path} is damaged: 'step' is not an integer")
        self.step = int(arrays["step"])
        self.rng_state = self._rng_state(arrays["rng/default"].item())

        def section(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        self.model_state, self.optimizer_state = section("model/"), section("optim/")
        self.extra = {k: v.item() if v.ndim == 0 else v for k, v in section("extra/").items()}

    def _rng_state(self, text):
        state = self.parse_json(text, "rng/default")
        try:  # tried on a generator of its own, so that a bad state changes nothing
            np.random.default_rng().bit_generator.state = state
        except (TypeError, ValueError, KeyError):
            raise CheckpointError(f"{self.path} is damaged: 'rng/default' is not the state "
                                  "of a random generator") from None
        return state

    def parse_json(self, text, name):
        """Parse the JSON `text` of entry `name`; a CheckpointError if it is not JSON."""
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            raise CheckpointError(f"{self.path} is damaged: the entry '{name}' is not "
                                  "valid JSON text") from None

    def restore(self, model, optimizer=None):
        """Load the model's (and optimizer's) state and the random state.
        Everything is checked first: on an error, nothing has changed."""
        expected = model.state_dict()
        missing = expected.keys() - self.model_state.keys()
        unexpected = self.model_state.keys() - expected.keys()
        if missing or unexpected:
            raise CheckpointError(f"{self.path} does not fit the model: missing "
                                  f"{sorted(missing)}, unexpected {sorted(unexpected)}")
        for name, value in self.model_state.items():
            if value.shape != expected[name].shape:
                raise CheckpointError(f"{self.path}: parameter '{name}' has shape {value.shape} "
                                      f"in the checkpoint but {expected[name].shape} in the model")
            if value.dtype.kind not in "biuf":
                raise CheckpointError(f"{self.path} is damaged: parameter '{name}' holds "
                                      f"{value.dtype}, not numbers")
        if optimizer is not None:
            if not self.optimizer_state:
                raise CheckpointError(f"{self.path} holds no optimizer state")
            try:  # checks everything before it changes anything
                optimizer.load_state_dict(self.optimizer_state)
            except (KeyError, ValueError, TypeError, IndexError) as e:
                raise CheckpointError(f"{self.path}: the optimizer state does not fit: "
                                      f"{e}") from None
        model.load_state_dict(self.model_state)
        default_rng().bit_generator.state = self.rng_state


def load_checkpoint(path, model, optimizer=None):
    """Restore model, optimizer and the default random generator from `path`.

    Returns `(step, extra)`; extra's 0-d values come back as Python numbers
    and strings. Everything is checked before anything is changed.
    """
    checkpoint = Checkpoint(path)
    checkpoint.restore(model, optimizer)
    return checkpoint.step, checkpoint.extra


# What reading a damaged .npz can raise, from zipfile and numpy's .npy parser.
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, SyntaxError, RuntimeError,
                zipfile.BadZipFile)


def _read_arrays(path):
    """Every array in the .npz at `path`, read in full (so that zip's checksums
    are checked), or a CheckpointError saying what is wrong with the file."""
    if not os.path.isfile(path):
        kind = " (it is a directory)" if os.path.isdir(path) else ""
        raise CheckpointError(f"no checkpoint at {path}{kind}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is damaged: the file is empty")
    with open(path, "rb") as file:
        if file.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise CheckpointError(f"{path} is not a microseq checkpoint (not an .npz archive)")
    arrays, name = {}, None
    try:
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as f:
            for name in f.files:
                arrays[name] = f[name]
    except _READ_ERRORS as e:
        if name is not None and "allow_pickle" in str(e):  # numpy's words for an object array
            raise CheckpointError(f"{path}: the entry '{name}' holds Python objects, but a "
                                  "checkpoint holds only plain arrays") from None
        raise CheckpointError(f"{path} is damaged: truncated or corrupted "
                              f"({os.path.getsize(path):,} bytes; {type(e).__name__} while "
                              "reading it)") from None
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):  # a zip member that is not an .npy
            raise CheckpointError(f"{path} is damaged: the entry '{name}' is not an array")
    return arrays


# --- a directory of step_<n>.npz: a training run ------------------------------------


def checkpoint_path(directory, step):
    return os.path.join(directory, f"step_{step:06d}.npz")


def list_checkpoints(directory):
    """The paths of the `step_<n>.npz` in directory, newest (highest step) first."""
    if not os.path.isdir(directory):
        return []
    steps = [int(m.group(1)) for name in os.listdir(directory)
             if (m := re.fullmatch(r"step_(\d+)\.npz", name))]
    return [checkpoint_path(directory, step) for step in sorted(steps, reverse=True)]


def latest_checkpoint(directory):
    """The path of the highest-step `step_<n>.npz` in directory, or None."""
    paths = list_checkpoints(directory)
    return paths[0] if paths else None


def prune(directory, keep_last):
    """Delete the temporary files that killed writes left behind and, when
    `keep_last` is not None, all but the newest `keep_last` checkpoints."""
    if not os.path.isdir(directory):
        return
    _remove_temporary_files(directory, r"step_\d+\.npz")
    if keep_last is not None:
        for path in list_checkpoints(directory)[keep_last:]:
            os.unlink(path)


def save_run(directory, step, model, optimizer, stream, history, keep_last=None):
    """Checkpoint a training run at `step`: model, optimizer, random state, the
    position in the batch stream (`stream.state()`, a dict JSON can write) and
    the history (a list of (step, loss, metrics dict)); then prune."""
    save_checkpoint(checkpoint_path(directory, step), model, optimizer, step, extra={
        "batches": json.dumps(stream.state()),
        "history/step": np.array([s for s, _, _ in history], dtype=np.int64),
        "history/loss": np.array([loss for _, loss, _ in history], dtype=np.float64),
        "history/metrics": json.dumps({s: m for s, _, m in history if m}),
    })
    prune(directory, keep_last)


def resume_run(directory, model, optimizer, stream):
    """Continue a run saved by save_run from the newest checkpoint in `directory`
    that reads cleanly: restores model, optimizer, random state and the
    stream's position (`stream.restore(...)`); returns `(step, history
    records)`, or `(0, [])` when there is no checkpoint yet.

    A damaged checkpoint is renamed `<name>.damaged`, with a warning, and the
    one before it is tried. A checkpoint that reads but does not fit the model
    or the batches is an error: an older one would not fit either.
    """
    prune(directory, keep_last=None)
    for path in list_checkpoints(directory):
        try:
            checkpoint = Checkpoint(path)
            records, position = _run_state(checkpoint)
        except CheckpointError as e:
            os.replace(path, path + ".damaged")
            warnings.warn(f"{e}; renamed it to {os.path.basename(path)}.damaged and trying "
                          "the checkpoint before it", stacklevel=3)
            continue
        try:
            stream.restore(position)
        except (KeyError, TypeError, ValueError, StopIteration):
            raise CheckpointError(f"{path}: cannot find the run's place in these batches "
                                  "(have they changed since it was saved?)") from None
        checkpoint.restore(model, optimizer)
        return checkpoint.step, records
    return 0, []


def _run_state(checkpoint):
    """The history records and the position in the batches saved with a run;
    a CheckpointError if they are missing or garbled."""
    extra, path = checkpoint.extra, checkpoint.path
    missing = {"batches", "history/step", "history/loss", "history/metrics"} - extra.keys()
    if missing:
        raise CheckpointError(f"{path} is damaged: the entries {sorted(missing)} are missing")
    metrics = checkpoint.parse_json(extra["history/metrics"], "extra/history/metrics")
    position = checkpoint.parse_json(extra["batches"], "extra/batches")
    try:
        records = [(int(s), float(loss), metrics.get(str(s), {}))
                   for s, loss in zip(extra["history/step"], extra["history/loss"], strict=True)]
    except (TypeError, ValueError, AttributeError):
        raise CheckpointError(f"{path} is damaged: its history is garbled") from None
    return records, position
