"""A lesson run's web page and the index of all runs (microseq.report).

The page is parsed with html.parser (tests/lesson_runs.py): every figure,
graph and metric of the run is on it, in the order the run made them, and
every link resolves inside the run's directory. Where a headless Chromium is
installed, it opens the page and reports pictures it could not load.
"""
import json
import shutil
import subprocess
from html import unescape

import matplotlib.pyplot as plt
import pytest
from lesson_runs import Page, assert_page_shows_the_run

from microseq import report
from microseq.lesson import Lesson
from microseq.scalar import Value
from microseq.scope import scope

pytestmark = pytest.mark.lesson


def small_run(out, missed=False):
    """A run that does a bit of everything a lesson does; its metrics.json as a dict."""
    lesson = Lesson(3, "A <small> run", argv=["--quick", "--seed", "5", "--out", str(out)])
    lesson.section("First part")
    lesson.say("Some narrative & a < sign.", "        indented = code")
    print("    a printed table row 1.25")
    lesson.equation("h_t = tanh(a_t)", r"h_t = \tanh(a_t)")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    ax.set_title("a line going up")
    lesson.savefig(fig, "line")
    lesson.section("Second part")
    x = Value(2.0, label="x")
    for name in ("one", "two"):
        with scope("t=1"):
            y = (x * 3).tanh()
        y.backward()
        lesson.draw(y, f"graph_{name}", title=f"graph {name}")
    lesson.metric("accuracy", 0.9, threshold=0.95 if missed else 0.5)
    lesson.try_this(("--seed 1", "Does the line still go up?"))
    try:
        lesson.finish()
    except SystemExit:
        pass
    return json.loads((out / "metrics.json").read_text())


def test_the_page_shows_the_run_in_order(tmp_path):
    record = small_run(tmp_path)
    assert_page_shows_the_run(tmp_path, record)
    html = (tmp_path / "index.html").read_text()
    page = Page(html)
    shown = unescape(html)  # text and alt texts alike
    order = ["First part", "Some narrative & a < sign.", "indented = code",
             "a printed table row 1.25", "h_t = tanh(a_t)", "a line going up", "Second part",
             "graph one", "graph two", "Try this", "make lesson-3 ARGS='--seed 1'", "Results"]
    positions = [shown.rfind(s) for s in order]  # rfind: past the table of contents
    assert -1 not in positions and positions == sorted(positions), list(zip(order, positions))
    assert "Lesson 3: A &lt;small&gt; run" in html  # escaped, not markup
    assert "equations/equation-1.svg" in page.images
    assert (tmp_path / "equations" / "equation-1.svg").read_text().lstrip().startswith("<?xml")
    # The two graphs are inlined with their tooltips, and never share an id.
    assert html.count("<svg") == 2 and "<title>" in html
    svg_ids = [i for i in page.ids if i.startswith("graph_")]
    assert len(svg_ids) == len(set(svg_ids)) > 2
    assert "https://" not in html and "http://" not in html.replace('"http://www.w3.org', "")


def test_a_missed_metric_is_shown_as_missed(tmp_path):
    record = small_run(tmp_path, missed=True)
    assert_page_shows_the_run(tmp_path, record)
    page = Page((tmp_path / "index.html").read_text())
    assert "MISSED" in page.rows["metric-accuracy"] and "1 of 1" in " ".join(page.text)


def test_index_links_every_run(tmp_path):
    small_run(tmp_path / "lesson-3")
    shutil.copytree(tmp_path / "lesson-3", tmp_path / "lesson-3-seed-1")
    shutil.copytree(tmp_path / "lesson-3", tmp_path / "lesson-10")
    ten = json.loads((tmp_path / "lesson-10" / "metrics.json").read_text())
    (tmp_path / "lesson-10" / "metrics.json").write_text(json.dumps({**ten, "lesson": 10}))
    (tmp_path / "scratch").mkdir()  # not a run: no metrics.json
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{")  # a run cut short
    report.main([str(tmp_path)])
    page = Page((tmp_path / "index.html").read_text())
    assert page.links == ["lesson-3/index.html", "lesson-3-seed-1/index.html",
                          "lesson-10/index.html"]  # by lesson number, then directory
    assert all((tmp_path / link).is_file() for link in page.links)


def test_report_without_a_runs_directory_says_so(tmp_path):
    with pytest.raises(SystemExit, match="no directory"):
        report.main([str(tmp_path / "nowhere")])


def browser():
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(b)), None)


def rendered_dom(page):
    """The page's DOM after Chromium has loaded it (and its script has run)."""
    run = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.skipif(browser() is None, reason="no headless Chromium installed")
def test_a_browser_renders_the_page_and_counts_pictures_it_cannot_load(tmp_path):
    small_run(tmp_path)
    (tmp_path / "line.png").unlink()  # the figure is gone; the equation's picture is there
    dom = rendered_dom(tmp_path / "index.html")
    assert 'data-broken-images="1"' in dom and dom.count("<svg") == 2
    assert 'class="missing"' in dom and "Results" in dom


def test_a_table_built_line_by_line_stays_a_table(tmp_path, capsys):
    lesson = Lesson(9, "tables", argv=["--out", str(tmp_path)])
    rows = "\n".join(f"        {x:<6} -> {y}" for x, y in [("1/2/03", "2003-01-02"), ("b", "c")])
    lesson.say(rows, "    one line, right-aligned, is prose")
    lesson.finish()
    out = capsys.readouterr().out
    assert "        1/2/03 -> 2003-01-02\n        b      -> c\n" in out
    assert "\none line, right-aligned, is prose\n" in out
    page = unescape((tmp_path / "index.html").read_text())
    assert "<pre>1/2/03 -> 2003-01-02\nb      -> c</pre>" in page
