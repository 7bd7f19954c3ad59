"""Running a lesson from a test: every lesson is run by the tests, one way.

    run, report = run_quick("03_char_lm", tmp_path)           # --quick --out tmp_path
    assert_quick_run_passed(report, tmp_path, {"heldout_bpc_rnn", ...}, files=["samples.txt"])

A lesson runs in a fresh interpreter, as a learner runs it, and writes its
metrics.json (see microseq.lesson) into the --out folder. Every quick run's
outcome sentences (its claims) are checked against the numbers they name.
"""
import json
import operator
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

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
    report = json.loads((Path(out) / "metrics.json").read_text())
    assert_claims_hold(report, run.stdout)
    return run, report


def ask(lesson, *args):
    """`python -m microseq.ask lesson *args` (what `make ask-N` runs): the
    CompletedProcess, which must have exited 0."""
    run = subprocess.run([sys.executable, "-m", "microseq.ask", str(lesson), *map(str, args)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def assert_answers_as_in_run(out, lesson):
    """The model the run saved in `out`, asked the questions of its
    examples.tsv as typed, answers as it did in the run, in Python and
    through `python -m microseq.ask`. Returns the loaded model."""
    from microseq import models

    asked = [line.split("\t") for line in (Path(out) / "examples.tsv").read_text().splitlines()]
    assert asked[0] == ["question", "answer", "model"] and len(asked) > 1
    questions, said = [q for q, _, _ in asked[1:]], [m for _, _, m in asked[1:]]
    model = models.load(out)
    assert model.answer(questions) == said
    assert ask(lesson, questions[0], "--model", out).stdout == f"{questions[0]} -> {said[0]}\n"
    return model


COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def assert_claims_hold(report, stdout):
    """Every claim the run recorded says what its own numbers show: its
    condition, evaluated here afresh on the recorded numbers, picks the
    phrasing that was printed (`short` only in a quick run that missed it),
    and that sentence, filled in with those numbers, is in the output. A
    number named like one of the run's metrics has that metric's value."""
    printed = " ".join(stdout.split())
    metrics = {m["name"]: m["value"] for m in report["metrics"]}
    for claim in report["claims"]:
        numbers = {k: float(v) for k, v in claim["numbers"].items()}
        holds = all(COMPARE[op](*(numbers[t] if t in numbers else float(t) for t in (a, b)))
                    for a, op, b in (term.split() for term in claim["condition"].split(" and ")))
        assert holds == claim["holds"], claim
        if holds:
            phrasing = claim["yes"]
        elif report["quick"] and claim["short"]:
            phrasing = claim["short"]
        else:
            phrasing = claim["no"]
        said = " ".join(phrasing.format(**numbers).split())
        assert said == claim["said"] and said in printed, (claim, said)
        for name, value in numbers.items():
            if name in metrics:
                assert value == metrics[name], (claim, name, metrics[name])


def assert_quick_run_passed(report, out, metrics, files=(), exactly=True, claims=0):
    """The report names these metrics (exactly these, or at least these when
    not `exactly`) and every metric met its threshold; it made at least
    `claims` outcome claims; each of `files` is in `out` and not empty;
    every file the report lists exists."""
    assert len(report["claims"]) >= claims, report["claims"]
    names = {m["name"] for m in report["metrics"]}
    if exactly:
        assert names == set(metrics), names
    else:
        assert set(metrics) <= names, names
    assert all(m["passed"] for m in report["metrics"]), report["metrics"]
    for name in files:
        assert (Path(out) / name).stat().st_size > 0, name
    assert all(Path(f).exists() for f in report["files"]), report["files"]
    assert_page_shows_the_run(out, report)


class Page(HTMLParser):
    """What a test reads from a run's index.html: links, pictures, ids, inline
    graphs (figure id -> number of <svg> inside), table rows (id -> their text)
    and the text."""

    def __init__(self, text):
        super().__init__()
        self.links, self.images, self.ids, self.graphs, self.text = [], [], set(), {}, []
        self.rows, self._figure, self._row = {}, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in ("a", "link") and "href" in attrs:
            self.links.append(attrs["href"])
        if tag in ("img", "script", "iframe", "object") and "src" in attrs:
            self.images.append(attrs["src"])
        if tag == "figure":
            self._figure = attrs.get("id")
        if tag == "tr":
            self._row = attrs.get("id")
        if tag == "svg" and self._figure:
            self.graphs[self._figure] = self.graphs.get(self._figure, 0) + 1

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row:
            self.rows[self._row] = self.rows.get(self._row, "") + " " + data


def assert_page_shows_the_run(out, report):
    """<out>/index.html shows every figure (as a picture), every graph (inline,
    with its tooltips), every metric with its verdict, the command and the seed;
    every link and picture is a relative path to a file that exists."""
    out = Path(out)
    page = Page((out / "index.html").read_text(encoding="utf-8"))
    text = " ".join(page.text)
    for f in map(Path, report["files"]):
        if f.suffix == ".png":
            assert f.name in page.images, f
        if f.suffix == ".svg":
            assert page.graphs.get(f"graph-{f.stem}") == 1, f  # inlined, once
    for m in report["metrics"]:
        row = page.rows[f"metric-{m['name']}"].split()
        assert ("met" if m["passed"] else "MISSED") in row, row
        assert f"{m['threshold']:g}" in row, row
    assert report["command"] in text and f"seed {report['seed']}" in text
    for target in page.links + page.images:
        parts = urlsplit(target)
        if parts.fragment and not parts.path:
            assert parts.fragment in page.ids, target
            continue
        assert not parts.scheme and not parts.netloc and not target.startswith("/"), target
        assert (out / parts.path).is_file(), target
