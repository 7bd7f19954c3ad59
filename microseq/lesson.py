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
    lesson.finish()                                # metrics.json; exit 1 if a metric missed

Every lesson takes --quick (seconds, what the tests run), --seed (default 0)
and --out DIR (default runs/lesson-N/), plus its own `arguments`, each given
as {flag: argparse keyword arguments}; they are read in `lesson.args`.
"""
import argparse
import inspect
import json
import math
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
        parser.add_argument("--quick", action="store_true",
                            help="a small run that takes seconds (what the tests run)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--out", type=Path, default=Path(f"runs/lesson-{number}"),
                            help="where figures and metrics.json go (default runs/lesson-N/)")
        for flag, options in (arguments or {}).items():
            parser.add_argument(flag, **options)
        self.args = parser.parse_args(argv)
        # The lessons' matrices are small: extra BLAS threads only fight over the
        # cores (lesson 3's quick run: about 50 s with two threads beside other
        # work, 3 s with one).
        self._blas_threads = threadpool_limits(limits=1, user_api="blas")
        fast.keep_freed_memory()  # an allocator setting for the whole run (see microseq.fast)
        self.number, self.title = number, title
        self.quick, self.seed, self.out = self.args.quick, self.args.seed, self.args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.files, self.metrics = [], []
        self._start = time.perf_counter()
        size = "quick run" if self.quick else "full run"
        print(f"Lesson {number}: {title}  ({size}, seed {self.seed}, output in {self.out}/)")

    # --- narrative -------------------------------------------------------------

    def say(self, *paragraphs):
        """Print paragraphs of narrative, each wrapped to the terminal's usual width.

        Common indentation is removed, so triple-quoted strings work; a blank
        line separates paragraphs; a paragraph still indented after that (code,
        a formula) is printed as it is.
        """
        for text in paragraphs:
            for block in textwrap.dedent(str(text)).strip("\n").split("\n\n"):
                print()
                if block.startswith(" "):
                    print(block)
                else:
                    print(textwrap.fill(" ".join(block.split()), WIDTH))
        sys.stdout.flush()

    def show_source(self, fn):
        """Print the source of `fn`, indented: the code the lesson runs, as it is."""
        print("\n" + textwrap.indent(inspect.getsource(fn), "    ").rstrip())
        sys.stdout.flush()

    def section(self, title):
        """A heading between the parts of the story."""
        print(f"\n== {title} " + "=" * max(3, WIDTH - len(title) - 4))

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

    def finish(self):
        """Write metrics.json, list the files, judge every metric; exit 1 if one missed."""
        seconds = time.perf_counter() - self._start
        report = {"lesson": self.number, "title": self.title, "quick": self.quick,
                  "seed": self.seed, "seconds": round(seconds, 3),
                  "metrics": [{**m, "value": _json_number(m["value"])} for m in self.metrics],
                  "files": [str(p) for p in self.files]}
        metrics_file = self.path("metrics.json")
        metrics_file.write_text(json.dumps(report, indent=2) + "\n")
        self.register(metrics_file)

        self.section("Results")
        print(f"Files written in {self.out}/:")
        for p in self.files:
            print(f"  {p.relative_to(self.out) if p.is_relative_to(self.out) else p}")
        missed = [m for m in self.metrics if not m["passed"]]
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


def _json_number(x):
    # JSON has no NaN or infinity: write them as strings rather than invalid JSON
    return x if math.isfinite(x) else str(x)
