"""A lesson run as a web page: runs/lesson-N/index.html, and runs/index.html over all runs.

A Lesson (microseq.lesson) keeps a Transcript of its run as it happens:
sections, narrative, everything else it prints, its equations, figures and
drawn graphs, in order. finish() hands the transcript and the metrics to
write_lesson_page(), which writes index.html beside the figures:

    the narrative section by section, with the figures (PNG) and the graphs
    (SVG, inlined so that their hover tooltips work) where they were made;
    equations rendered to SVG with matplotlib's mathtext (no network, no TeX);
    the metrics with their thresholds and verdicts; the command and the seed.

The page links only to files in its own directory, so the directory can be
copied, zipped or served as it is, and it reads on a phone-width screen.

    python -m microseq.report [RUNS]     # RUNS/index.html linking every run in RUNS (runs/)
"""
import html
import json
import re
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

PAGE = "index.html"

_STYLE = """
body { font: 16px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 0 auto; max-width: 52rem; padding: 0.5rem 1rem 3rem; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
     border-bottom: 1px solid #ddd; }
pre { background: #f6f6f6; padding: 0.5rem; overflow-x: auto; font-size: 0.85rem; }
code { font-size: 0.9em; }
figure { margin: 1rem 0; } figcaption { font-size: 0.85rem; color: #555; }
figure img, .equation img { max-width: 100%; height: auto; }
.graph { overflow-x: auto; } .graph svg { max-width: 100%; height: auto; }
.equation { text-align: center; overflow-x: auto; margin: 0.8rem 0; }
.meta { color: #555; font-size: 0.9rem; } .scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { word-break: break-all; }
.met { color: #1a7f37; } .missed { color: #c62828; font-weight: bold; }
nav ul { list-style: none; padding-left: 0; } .missing { outline: 3px solid #c62828; }
"""

# Marks any picture the browser could not load; the page has no other script.
_SCRIPT = """
window.addEventListener("load", function () {
  var bad = 0;
  document.querySelectorAll("img").forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { img.classList.add("missing"); bad += 1; }
  });
  document.body.setAttribute("data-broken-images", String(bad));
});
"""


class Transcript:
    """What a lesson run showed, in order: a list of (kind, ...) events.

    Installed as sys.stdout while the lesson runs, it passes everything on to
    the real stdout and keeps what was printed outside say()/section() as
    "output" events (tables, progress lines), so the page shows the run as
    printed. Kinds: ("section", title), ("say", [(is_code, text), ...]),
    ("output", text), ("equation", text, tex), ("figure", path, caption),
    ("graph", path, title).
    """

    def __init__(self):
        self.events, self._pending, self._quiet = [], [], False
        self.stream = sys.stdout
        sys.stdout = self

    def write(self, text):
        if not self._quiet:
            self._pending.append(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):  # isatty, encoding, fileno... as the real stream has them
        return getattr(self.stream, name)

    def add(self, *event):
        """Record an event after whatever was printed before it."""
        self._flush_output()
        self.events.append(event)

    @contextmanager
    def quiet(self):
        """Print, inside the with block, what an event already holds: not recorded again."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def close(self):
        """Stop recording; stdout is the real stream again."""
        self._flush_output()
        if sys.stdout is self:
            sys.stdout = self.stream

    def _flush_output(self):
        text = "".join(self._pending).strip("\n")
        self._pending = []
        if text.strip():
            self.events.append(("output", text))


def figure_caption(fig):
    """A matplotlib figure's title: its suptitle, else its axes' titles joined."""
    suptitle = fig._suptitle  # Figure.get_suptitle() only exists from matplotlib 3.8
    if suptitle is not None and suptitle.get_text():
        return suptitle.get_text()
    titles = [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center")]
    return "; ".join(t for t in titles if t)


# --- one lesson's page --------------------------------------------------------

def write_lesson_page(out, record, events):
    """Write <out>/index.html for a run (record: metrics.json's contents); return its Path."""
    out = Path(out)
    path = out / PAGE
    path.write_text(lesson_page(out, record, events), encoding="utf-8")
    return path


def lesson_page(out, record, events):
    """The HTML of a lesson run's page; equations are rendered into <out>/equations/."""
    title = f"Lesson {record['lesson']}: {record['title']}"
    metrics = record["metrics"]
    missed = [m for m in metrics if not m["passed"]]
    verdict = (f'<span class="missed">{len(missed)} of {len(metrics)} headline figures missed '
               "their threshold</span>" if missed else
               f'<span class="met">all {len(metrics)} headline figures met their thresholds</span>'
               if metrics else "no headline figures")
    body, toc, equations = [], [], 0
    for event in events:
        kind = event[0]
        if kind == "section":
            anchor = f"s{len(toc) + 1}"
            toc.append(f'<li><a href="#{anchor}">{_e(event[1])}</a></li>')
            body.append(f'<h2 id="{anchor}">{_e(event[1])}</h2>')
        elif kind == "say":
            body += [f"<pre>{_e(textwrap.dedent(text))}</pre>" if code else f"<p>{_e(text)}</p>"
                     for code, text in event[1]]
        elif kind == "output":
            body.append(f'<pre class="output">{_e(textwrap.dedent(event[1]))}</pre>')
        elif kind == "equation":
            equations += 1
            body.append(_equation(out, equations, *event[1:]))
        elif kind == "figure":
            body.append(_figure(out, *event[1:]))
        elif kind == "graph":
            body.append(_graph(out, *event[1:]))
    toc.append('<li><a href="#results">Results</a></li>')
    size = "quick run" if record["quick"] else "full run"
    command = record.get("command", "")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{_STYLE}</style>",
        f"<script>{_SCRIPT}</script>", "</head>", "<body>", "<main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">A {size}, seed {record["seed"]}, {record["seconds"]:.1f} s: '
        f"{verdict}.<br>Made by <code>{_e(command)}</code></p>",
        f"<nav><ul>{''.join(toc)}</ul></nav>",
        *body,
        '<h2 id="results">Results</h2>', _metrics_table(metrics), _files(out, record["files"]),
        "</main>", "</body>", "</html>", ""])


def _e(text):
    return html.escape(str(text), quote=True)


def _relative(out, path):
    path = Path(path)
    try:
        return path.relative_to(out).as_posix()
    except ValueError:
        return None  # written outside the run's directory: not linked


def _figure(out, path, caption):
    src = _relative(out, path)
    if src is None:
        return f"<p>Figure {_e(path)} (outside this run's directory)</p>"
    alt = caption or Path(path).stem
    return (f'<figure id="figure-{_e(Path(path).stem)}"><a href="{_e(src)}">'
            f'<img src="{_e(src)}" alt="{_e(alt)}"></a>'
            f"<figcaption>{_e(caption)} ({_e(src)})</figcaption></figure>")


def _graph(out, path, title):
    src, path = _relative(out, path), Path(path)
    caption = f"<figcaption>{_e(title or path.stem)} (<a href=\"{_e(src)}\">{_e(src)}</a>"
    if path.suffix != ".svg" or src is None:
        return (f'<figure class="graph" id="graph-{_e(path.stem)}">{caption}: '
                "not rendered, no dot program was found)</figcaption></figure>")
    svg = _inline_svg(path.read_text(encoding="utf-8"), prefix=path.stem)
    return (f'<figure class="graph" id="graph-{_e(path.stem)}">{svg}{caption}; '
            "hover over a node for its value and gradient)</figcaption></figure>")


def _inline_svg(svg, prefix):
    """An SVG file's <svg> element, ready to sit in a page beside other graphs: no XML
    prolog or comments, and its ids prefixed so that two graphs never share one."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]*)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r'(url\(|href=")#', lambda m: f"{m.group(1)}#{prefix}-", svg)
    # Shrink a wide graph to the page, but never below half its size: past that
    # its labels are unreadable, and the reader scrolls sideways instead.
    width = re.match(r'<svg width="([\d.]+)pt"', svg)
    if width:
        svg = svg.replace("<svg ", f'<svg style="min-width: {float(width[1]) / 2:.0f}pt" ', 1)
    return svg


def _equation(out, k, text, tex):
    """An equation as an SVG image rendered by mathtext, its plain text as the alt."""
    if tex is None:
        return f'<pre class="equation-text">{_e(text)}</pre>'
    from matplotlib import mathtext

    name = f"equations/equation-{k}.svg"
    (out / "equations").mkdir(exist_ok=True)
    mathtext.math_to_image(f"${tex}$", out / name, format="svg", dpi=100)
    return f'<div class="equation"><img src="{name}" alt="{_e(text)}"></div>'


def _metrics_table(metrics):
    if not metrics:
        return "<p>This run records no headline figures.</p>"
    rows = []
    for m in metrics:
        sign = "≥" if m["higher_is_better"] else "≤"
        value = m["value"]
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        verdict = '<td class="met">met</td>' if m["passed"] else '<td class="missed">MISSED</td>'
        rows.append(f'<tr id="metric-{_e(m["name"])}"><td><code>{_e(m["name"])}</code></td>'
                    f'<td class="num">{_e(shown)}</td><td class="num">{sign} '
                    f'{m["threshold"]:g}</td>{verdict}</tr>')
    return ('<div class="scroll"><table><thead><tr><th>metric</th><th>value</th>'
            "<th>threshold</th><th>verdict</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def _files(out, files):
    items = []
    for f in files:
        rel = _relative(out, f)
        items.append(f'<li><a href="{_e(rel)}">{_e(rel)}</a></li>' if rel else
                     f"<li>{_e(f)}</li>")
    return f"<p>Files written by this run:</p><ul>{''.join(items)}</ul>" if items else ""


# --- every run: runs/index.html -------------------------------------------------

def runs_found(runs):
    """(directory, metrics.json contents) of every run directory under `runs`, by lesson."""
    found = []
    for metrics in sorted(Path(runs).glob("*/metrics.json")):
        try:
            record = json.loads(metrics.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a run cut short while writing; nothing to link
        if isinstance(record, dict) and "lesson" in record:
            found.append((metrics.parent, record))
    return sorted(found, key=lambda run: (str(run[1]["lesson"]).zfill(4), run[0].name))


def write_index(runs):
    """Write <runs>/index.html, one row per run found; return its Path."""
    runs = Path(runs)
    rows = []
    for directory, record in runs_found(runs):
        page = directory / PAGE
        target = page if page.exists() else directory / "metrics.json"
        metrics = record.get("metrics", [])
        met = sum(m["passed"] for m in metrics)
        verdict = "met" if met == len(metrics) else "missed"
        rows.append(
            f'<tr><td><a href="{_e(target.relative_to(runs).as_posix())}">'
            f"Lesson {_e(record['lesson'])}: {_e(record.get('title', ''))}</a></td>"
            f"<td>{_e(directory.name)}</td>"
            f"<td>{'quick' if record.get('quick') else 'full'}, seed {_e(record.get('seed'))}</td>"
            f'<td class="{verdict}">{met} of {len(metrics)} met</td></tr>')
    table = ("<p>No lesson runs found: run <code>make lesson-N</code> first.</p>" if not rows else
             '<div class="scroll"><table><thead><tr><th>lesson</th><th>directory</th>'
             "<th>run</th><th>headline figures</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table></div>")
    path = runs / PAGE
    path.write_text("\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>microseq lesson runs</title>", f"<style>{_STYLE}</style>", "</head>",
        "<body>", "<main>", "<h1>microseq lesson runs</h1>", table, "</main>", "</body>",
        "</html>", ""]), encoding="utf-8")
    return path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    runs = Path(argv[0] if argv else "runs")
    if not runs.is_dir():
        sys.exit(f"report: no directory {runs}; run a lesson first (make lesson-N)")
    path = write_index(runs)
    print(f"wrote {path} ({len(runs_found(runs))} lesson runs)")


if __name__ == "__main__":
    main()
