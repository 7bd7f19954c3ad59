"""Help a learner reads: help(microseq), the nn classes' docstrings, and every
lesson's "Try this" experiments, whose flags the lesson must really take."""
import ast
import inspect
import re
from pathlib import Path

import pytest
from lesson_runs import run_quick

import microseq
from microseq import nn

LESSONS = sorted((Path(__file__).resolve().parents[1] / "lessons").glob("[0-9][0-9]_*.py"))
STANDARD_FLAGS = {"--quick", "--seed", "--out"}


def test_help_microseq_is_an_overview():
    doc = inspect.getdoc(microseq)
    for part in ["Value", "Tensor", "microseq.nn", "microseq.optim", "microseq.train",
                 "microseq.data", "make lesson-N", "index.html", "Where to start"]:
        assert part in doc, part


@pytest.mark.parametrize("cls", [nn.Linear, nn.Embedding, nn.Dropout, nn.DotAttention,
                                 nn.AdditiveAttention, nn.Module, nn.Parameter])
def test_nn_classes_document_their_arguments_and_shapes(cls):
    doc = inspect.getdoc(cls)
    arguments = [name for name, p in inspect.signature(cls.__init__).parameters.items()
                 if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert ("Args:" in doc) == bool(arguments), cls
    for name in arguments:  # every constructor argument is described
        assert f"{name}:" in doc, (cls, name)
    if cls not in (nn.Module, nn.Parameter):
        assert "Shape:" in doc or "Returns:" in doc, cls


def lesson_flags(path):
    """The flags a lesson declares, and the flags its Try this section uses."""
    tree = ast.parse(path.read_text())
    declared, tried = set(STANDARD_FLAGS), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Lesson":
            for kw in node.keywords:
                if kw.arg == "arguments":
                    declared |= {k.value for k in kw.value.keys}
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "try_this":
            tried += [ast.literal_eval(arg)[0] for arg in node.args]
    return declared, tried


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_ends_with_experiments_it_can_run(path):
    declared, tried = lesson_flags(path)
    assert 2 <= len(tried) <= 3, tried
    for flags in tried:
        used = set(re.findall(r"--[\w-]+", flags))
        assert used and used <= declared, (flags, declared)


@pytest.mark.lesson
def test_lesson_0_flags_change_the_run(tmp_path):
    run, report = run_quick("00_autograd", tmp_path, "--hidden", "3", "--w-hh", "2",
                            timeout=120)
    assert "two hidden layers of 3 ReLU neurons" in " ".join(run.stdout.split())
    assert "data 2 | grad" in (tmp_path / "rnn_bptt.gv").read_text()  # w_hh = 2 in the graph
    assert "Try this" in (tmp_path / "index.html").read_text()
    assert report["command"].endswith("--hidden 3 --w-hh 2")


@pytest.mark.lesson
def test_lesson_4_flags_change_the_run(tmp_path):
    run, report = run_quick("04_bptt", tmp_path, "--truncate", "3", timeout=180)
    text = " ".join(run.stdout.split())
    assert "k = 3 over 24 steps" in text
    beyond = {m["name"]: m["value"] for m in report["metrics"]}
    assert beyond["truncated_grad_beyond_window_max"] == 0.0
