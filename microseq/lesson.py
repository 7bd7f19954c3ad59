"""What every lesson script shares: arguments, narrative, progress, figures, metrics.

A lesson reads like a short story (set-up, train, show, measure); this
module keeps the plumbing out of it:

    from microseq.lesson import Lesson

    lesson = Lesson(3, "A character-level language model",
                    arguments={"--text": dict(help="train on this text file instead")})
    rng = np.random.default_rng(lesson.seed)
    steps = 50 if lesson.quick else 2000

    lesson.section("Training")
    lesson.say("Each step predicts the next character from the hidden state...")
    for step in lesson.progress(range(steps), "training"):
        ...
    fig, ax = plt.subplots()
    ax.plot(losses)
    lesson.savefig(fig, "loss")                    # -> <out>/loss.png
    lesson.draw(loss, "bptt", title="5 steps")     # -> <out>/bptt.svg and bptt.gv
    lesson.metric("accuracy", acc, threshold=0.8 if lesson.quick else 0.95)
    lesson.say(lesson.claim("rnn < trigram", rnn=bpc, trigram=tri_bpc,  # an outcome sentence
                            yes="The RNN beats the 3-gram: {rnn:.2f} against {trigram:.2f}.",
                            no="The 3-gram still wins: {trigram:.2f} against {rnn:.2f}.",
                            short="This quick run is too short for the RNN to pass the 3-gram."))
    lesson.record("train_seconds", seconds)        # information only, never judged
    lesson.finish()                # metrics.json and index.html; exit 1 if a metric missed

Everything the run prints, says, saves and draws is also kept, in order, for
its web page <out>/index.html (see microseq.report).

A sentence that reports or compares an outcome is always a claim: its
phrasing is chosen by this run's numbers, never written in advance, and the
claim is recorded in metrics.json for the tests to check.

Every lesson takes --quick (seconds, what the tests run), --seed (default 0)
and --out DIR (default runs/lesson-N/), plus its own `arguments`, each given
as {flag: argparse keyword arguments}; they are read in `lesson.args`.
A mistake in them (a negative seed, an --out that is a file) ends the run at
once with one line naming the flag; so does bad input the library names with
its own exception (a DataError for a text file, a CheckpointError, a
NonFiniteLossError): the message, without a traceback.
"""
import argparse
import inspect
import json
import math
import shlex
import sys
import textwrap
import time
from pathlib import Path

import matplotlib
import matplotlib.pyplot as pyplot
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from microseq import fast, graph
from microseq.checkpoint import CheckpointError
from microseq.data import DataError
from microseq.report import Transcript, figure_caption, write_lesson_page
from microseq.train import NonFiniteLossError

# Figures are written to files, never shown: no display needed.
matplotlib.use("Agg")

WIDTH = 78


class Lesson:
    """One run of a lesson: its options, the files it wrote and its headline metrics.

    Attributes: number, title, args (the parsed arguments), quick, seed, out
    (a Path, created), files (Paths written so far), metrics (dicts).
    """

    def __init__(self, number, title, arguments=None, argv=None):
        parser = argparse.ArgumentParser(description=f"Lesson {number}: {title}")
        # A mistake in the arguments, or bad input the library names, is one line.
        parser.error = lambda message: parser.exit(
            2, f"lesson {number}: {message} (--help lists the options)\n")
        sys.excepthook = lambda *exception: _one_line(number, *exception)
        parser.add_argument("--quick", action="store_true",
                            help="a small run that takes seconds (what the tests run)")
        parser.add_argument("--seed", type=_seed, default=0,
                            help="random seed, a whole number >= 0 (default 0)")
        parser.add_argument("--out", type=_output_directory, default=f"runs/lesson-{number}",
                            help="where figures and metrics.json go (default runs/lesson-N/)")
        for flag, options in (arguments or {}).items():
            parser.add_argument(flag, **options)
        self.args = parser.parse_args(argv)
        self.command = shlex.join(["python", sys.argv[0],
                                   *(sys.argv[1:] if argv is None else argv)])
        # The lessons' matrices are small: extra BLAS threads only fight over the
        # cores (lesson 3's quick run: about 50 s with two threads beside other
        # work, 3 s with one).
        self._blas_threads = threadpool_limits(limits=1, user_api="blas")
        fast.keep_freed_memory()  # an allocator setting for the whole run (see microseq.fast)
        self.number, self.title = number, title
        self.quick, self.seed, self.out = self.args.quick, self.args.seed, self.args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.files, self.metrics, self.claims, self.info = [], [], [], {}
        self._start = time.perf_counter()
        size = "quick run" if self.quick else "full run"
        print(f"Lesson {number}: {title}  ({size}, seed {self.seed}, output in {self.out}/)")
        self.transcript = Transcript()  # what the run shows, for its index.html

    # --- narrative -------------------------------------------------------------

    def say(self, *paragraphs):
        """Print paragraphs of narrative, each wrapped to the terminal's usual width.

        Common indentation is removed, so triple-quoted strings work; a blank
        line separates paragraphs; a paragraph still indented after that (code,
        a formula) is printed as it is, and so is a text of several lines that
        starts indented (a table built line by line).
        """
        blocks = [(block.startswith(" "), block if block.startswith(" ") else
                   " ".join(block.split()))
                  for text in map(str, paragraphs)
                  for block in ([text.strip("\n")] if _is_table(text) else
                                textwrap.dedent(text).strip("\n").split("\n\n"))]
        self.transcript.add("say", blocks)
        with self.transcript.quiet():
            for code, block in blocks:
                print("\n" + (block if code else textwrap.fill(block, WIDTH)))
        sys.stdout.flush()

    def equation(self, text, tex=None):
        """Show an equation: `text` in the terminal, `tex` (mathtext, no $) on the page."""
        self.transcript.add("equation", text, tex)
        with self.transcript.quiet():
            print(f"\n        {text}")

    def show_source(self, fn):
        """Print the source of `fn`, indented: the code the lesson runs, as it is."""
        print("\n" + textwrap.indent(inspect.getsource(fn), "    ").rstrip())
        sys.stdout.flush()

    def section(self, title):
        """A heading between the parts of the story."""
        self.transcript.add("section", title)
        with self.transcript.quiet():
            print(f"\n== {title} " + "=" * max(3, WIDTH - len(title) - 4))

    def try_this(self, *experiments):
        """End the story with experiments: each (flags, the question to predict first)."""
        self.section("Try this")
        self.say("Predict the answer to each question, then run the command to check it. "
                 "Each changes one setting; the headline thresholds are set for the default "
                 "run and may be missed.")
        for flags, question in experiments:
            self.say(f"{question}\n\n        make lesson-{self.number} ARGS='{flags}'")

    def progress(self, iterable, desc=None, total=None):
        """A progress bar (tqdm, on stderr) over `iterable`; silent when not on a terminal."""
        return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True,
                    disable=None)

    # --- files -----------------------------------------------------------------

    def path(self, name):
        """The path of a file called `name` in the output directory."""
        return self.out / name

    def register(self, path):
        """Record a file the lesson wrote, so that finish() lists it; returns it as a Path."""
        path = Path(path)
        if path not in self.files:
            self.files.append(path)
        return path

    def savefig(self, fig, name, dpi=120):
        """Save a matplotlib figure as <out>/<name>.png (or name's own suffix), close it."""
        path = self.path(name if Path(name).suffix else f"{name}.png")
        self.transcript.add("figure", path, figure_caption(fig))
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        pyplot.close(fig)
        return self.register(path)

    def draw(self, root, name, title=None, format="svg"):
        """Draw the graph behind `root` with microseq.graph into <out>/<name>.<format>.

        The .gv source is always written too; both are registered. Returns the
        picture's path, or the .gv's when no dot program could render it.
        """
        picture = graph.draw(root, self.path(name), format=format, title=title)
        self.register(self.path(f"{name}.gv"))
        self.transcript.add("graph", picture, title)
        return self.register(picture)

    def compare_gradients(self, by_hand, witnesses):
        """Print the largest |witness - by hand| of every gradient (rows) for each
        witness (columns: name -> {gradient name: array}); return the largest of all."""
        header = "".join(f"|{name} - by hand|".ljust(26) for name in witnesses)
        print(f"\n        gradient   shape      {header}".rstrip())
        worst = 0.0
        for key, want in by_hand.items():
            if key not in next(iter(witnesses.values())):
                continue
            gaps = [float(np.abs(got[key] - want).max()) for got in witnesses.values()]
            row = "".join(f"{gap:<26.2e}" for gap in gaps)
            print(f"        {key:<9}  {str(want.shape):<10} {row}".rstrip())
            worst = max(worst, *gaps)
        return worst

    # --- results ---------------------------------------------------------------

    def metric(self, name, value, threshold, higher_is_better=True):
        """Record a headline figure and whether it meets its threshold; returns that bool.

        A NaN never passes. Thresholds may depend on the run's size:
        `lesson.metric("accuracy", acc, threshold=0.8 if lesson.quick else 0.95)`.
        """
        value = float(value)
        passed = value >= threshold if higher_is_better else value <= threshold
        self.metrics.append({"name": name, "value": value, "threshold": threshold,
                             "higher_is_better": higher_is_better, "passed": bool(passed)})
        return passed

    def claim(self, condition, yes, no, short=None, **numbers):
        """The sentence that reports an outcome, chosen by what this run measured.

        `condition` compares the named `numbers`: terms like "a > b" or
        "ratio <= 1.1", joined by "and". The sentence is `yes` when it holds
        and `no` when not; in a --quick run that misses it, `short` (if
        given) says the run was too short to show it. Each phrasing is
        formatted with the numbers. The claim goes into metrics.json, so a
        test can check every sentence against the numbers it names.
        """
        holds = _holds(condition, numbers)
        text = yes if holds else short if self.quick and short else no
        said = " ".join(text.format(**numbers).split())
        self.claims.append({"condition": condition, "numbers": numbers, "holds": holds,
                            "said": said, "yes": yes, "no": no, "short": short})
        return said

    def record(self, name, value):
        """Record a figure for information only (a wall time, say): never judged."""
        self.info[name] = float(value)

    def finish(self):
        """Write metrics.json, list the files, judge every metric; exit 1 if one missed."""
        seconds = time.perf_counter() - self._start
        report = {"lesson": self.number, "title": self.title, "quick": self.quick,
                  "seed": self.seed, "seconds": round(seconds, 3), "command": self.command,
                  "metrics": [{**m, "value": _json_number(m["value"])} for m in self.metrics],
                  "info": {k: _json_number(v) for k, v in self.info.items()},
                  "claims": [{**c, "numbers": {k: _json_number(float(v))
                                               for k, v in c["numbers"].items()}}
                             for c in self.claims],
                  "files": [str(p) for p in self.files]}
        metrics_file = self.path("metrics.json")
        metrics_file.write_text(json.dumps(report, indent=2) + "\n")
        self.register(metrics_file)
        self.transcript.close()
        report["files"].append(str(metrics_file))
        self.register(write_lesson_page(self.out, report, self.transcript.events))

        self.section("Results")
        print(f"Files written in {self.out}/:")
        for p in self.files:
            print(f"  {p.relative_to(self.out) if p.is_relative_to(self.out) else p}")
        missed = [m for m in self.metrics if not m["passed"]]
        for name, value in self.info.items():
            print(f"  {name} = {value:.4g}  (information, no threshold)")
        for m in self.metrics:
            sign = ">=" if m["higher_is_better"] else "<="
            verdict = "met" if m["passed"] else "MISSED"
            print(f"  {m['name']} = {m['value']:.4g}  (threshold {sign} {m['threshold']:g}): "
                  f"{verdict}")
        if missed:
            names = ", ".join(m["name"] for m in missed)
            print(f"Lesson {self.number} FAILED: {len(missed)} of {len(self.metrics)} headline "
                  f"figures missed their threshold ({names}). [{seconds:.1f} s]")
            sys.exit(1)
        print(f"Lesson {self.number} passed: all {len(self.metrics)} headline figures met their "
              f"thresholds. [{seconds:.1f} s]")


_COMPARE = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


def _holds(condition, numbers):
    """Whether every "left op right" term of `condition` (joined by "and")
    holds; each side is the name of one of `numbers` or a plain number."""
    def value(token):
        if token in numbers:
            return float(numbers[token])
        try:
            return float(token)
        except ValueError:
            raise ValueError(f"claim {condition!r}: {token!r} is neither a number nor one of "
                             f"{sorted(numbers)}") from None

    for term in condition.split(" and "):
        parts = term.split()
        if len(parts) != 3:
            raise ValueError(f"claim {condition!r}: write each term as 'left op right', "
                             f"spaced, not {term!r}")
        left, op, right = parts
        if op not in _COMPARE:
            raise ValueError(f"claim {condition!r}: {op!r} is not one of {' '.join(_COMPARE)}")
        if not _COMPARE[op](value(left), value(right)):
            return False
    return True


def _is_table(text):
    # Triple-quoted narrative starts with a line break; lines joined into a table do not.
    return text.startswith(" ") and "\n" in text.strip()


def _json_number(x):
    # JSON has no NaN or infinity: write them as strings rather than invalid JSON
    return x if math.isfinite(x) else str(x)


def _seed(text):
    """argparse type of --seed: numpy's generators take whole numbers >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return int(text)


def _output_directory(text):
    """argparse type of --out: the directory, created, once a file could be written there."""
    out = Path(text)
    for parent in (out, *out.parents):
        if parent.is_file():
            raise argparse.ArgumentTypeError(
                f"{parent} is a file, not a directory"
                + ("" if parent == out else f", so {out} cannot be made"))
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").touch()
        (out / ".write-test").unlink()
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot create or write to {out}: "
                                         f"{e.strerror}") from None
    return out


# Bad input the library names (a file, a checkpoint, a diverged run) ends the
# lesson with its message on one line; any other exception is a bug and keeps
# its traceback.
USER_ERRORS = (DataError, CheckpointError, NonFiniteLossError)


def _one_line(number, kind, error, traceback):
    if issubclass(kind, USER_ERRORS):
        print(f"lesson {number}: {error}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, traceback)
