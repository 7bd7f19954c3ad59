"""Running a lesson from a test: every lesson is run by the tests, one way.

    run, report = run_quick("03_char_lm", tmp_path)           # --quick --out tmp_path
    assert_quick_run_passed(report, tmp_path, {"heldout_bpc_rnn", ...}, files=["samples.txt"])

A lesson runs in a fresh interpreter, as a learner runs it, and writes its
metrics.json (see microseq.lesson) into the --out folder.
"""
import json
import subprocess
import sys
from pathlib import Path

LESSONS = Path(__file__).resolve().parents[1] / "lessons"


def run_lesson(stem, *args, timeout=300):
    """`python lessons/<stem>.py *args`: the CompletedProcess, exit code unchecked."""
    return subprocess.run([sys.executable, str(LESSONS / f"{stem}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def run_quick(stem, out, *extra_args, timeout=300):
    """The lesson's --quick run into `out`: (CompletedProcess, metrics.json as a dict).

    Fails the test, with the tail of the lesson's output, unless it exits 0.
    """
    run = run_lesson(stem, "--quick", "--out", out, *extra_args, timeout=timeout)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return run, json.loads((Path(out) / "metrics.json").read_text())


def assert_quick_run_passed(report, out, metrics, files=(), exactly=True):
    """The report names these metrics (exactly these, or at least these when
    not `exactly`) and every metric met its threshold; each of `files` is in
    `out` and not empty; every file the report lists exists."""
    names = {m["name"] for m in report["metrics"]}
    if exactly:
        assert names == set(metrics), names
    else:
        assert set(metrics) <= names, names
    assert all(m["passed"] for m in report["metrics"]), report["metrics"]
    for name in files:
        assert (Path(out) / name).stat().st_size > 0, name
    assert all(Path(f).exists() for f in report["files"]), report["files"]
