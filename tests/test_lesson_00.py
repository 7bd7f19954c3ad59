"""Lesson 0 runs end to end; the Lesson plumbing every lesson shares behaves as documented."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
from lesson_runs import assert_quick_run_passed, run_quick

from microseq.lesson import Lesson


@pytest.mark.lesson
def test_lesson_0_quick(tmp_path):
    run, report = run_quick("00_autograd", tmp_path, timeout=120)
    assert (report["lesson"], report["quick"], report["seed"]) == (0, True, 0)
    assert report["seconds"] > 0
    assert_quick_run_passed(report, tmp_path, {
        "gradcheck_max_abs_error", "wrong_vjp_caught", "mlp_accuracy", "mlp_loss_ratio"})
    for name in ["neuron_before", "neuron_after", "rnn_bptt"]:
        assert (tmp_path / f"{name}.gv").exists()
        svg = (tmp_path / f"{name}.svg").read_text()
        assert "<svg" in svg
    assert all(f"t={t}" in (tmp_path / "rnn_bptt.svg").read_text() for t in (1, 2, 3))
    for name in ["mlp_loss.png", "mlp_boundary.png"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert "passed" in run.stdout and str(tmp_path) in run.stdout
    # the find-shrink-fix story: the slipped op's shrunk counterexample, then the fixed op passing
    story = run.stdout[run.stdout.index("5. Your own op"):]
    assert "softplus_slipped: autograd and central differences disagree" in story
    assert "x (input 0) = array([[" in story and "autograd=" in story and "numeric=" in story
    assert re.search(r"Now all \d+ inputs hypothesis draws pass", story)


@pytest.mark.lesson
def test_lesson_arguments_and_a_missed_metric(tmp_path, capsys):
    lesson = Lesson(7, "a test", arguments={"--text": dict(default=None)},
                    argv=["--quick", "--seed", "3", "--out", str(tmp_path), "--text", "t.txt"])
    assert (lesson.quick, lesson.seed, lesson.out, lesson.args.text) == (True, 3, tmp_path, "t.txt")
    assert lesson.metric("acc", 0.95, threshold=0.9)
    assert not lesson.metric("loss", float("nan"), threshold=1.0, higher_is_better=False)
    lesson.register(tmp_path / "notes.txt")
    with pytest.raises(SystemExit) as exit_:
        lesson.finish()
    assert exit_.value.code == 1
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["metrics"] == [
        {"name": "acc", "value": 0.95, "threshold": 0.9, "higher_is_better": True, "passed": True},
        {"name": "loss", "value": "nan", "threshold": 1.0, "higher_is_better": False,
         "passed": False}]
    assert report["files"] == [str(tmp_path / "notes.txt")]  # and metrics.json itself
    out = capsys.readouterr().out
    assert "MISSED" in out and "FAILED: 1 of 2" in out


@pytest.mark.lesson
def test_lesson_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lesson = Lesson(4, "defaults", argv=[])
    assert (lesson.quick, lesson.seed) == (False, 0)
    assert lesson.out == Path("runs/lesson-4") and lesson.out.is_dir()
    lesson.finish()  # no metrics: nothing missed
    assert json.loads((lesson.out / "metrics.json").read_text())["metrics"] == []


@pytest.mark.lesson
def test_compare_gradients_prints_each_gap_and_returns_the_largest(tmp_path, capsys):
    lesson = Lesson(5, "gradients", argv=["--out", str(tmp_path)])
    by_hand = {"x": np.zeros((2, 3)), "W": np.ones(4), "only_by_hand": np.zeros(1)}
    witnesses = {"primitives": {"x": np.full((2, 3), 1e-3), "W": np.ones(4)},
                 "nn.LSTM": {"x": np.zeros((2, 3)), "W": np.ones(4) - 2e-2}}
    capsys.readouterr()  # the lesson's banner
    worst = lesson.compare_gradients(by_hand, witnesses)
    assert worst == pytest.approx(2e-2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert "|primitives - by hand|" in lines[0] and "|nn.LSTM - by hand|" in lines[0]
    assert lines[1].split() == ["x", "(2,", "3)", "1.00e-03", "0.00e+00"]
    assert lines[2].split() == ["W", "(4,)", "0.00e+00", "2.00e-02"]
    assert len(lines) == 3  # a gradient no witness has is left out
