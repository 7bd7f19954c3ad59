"""Lesson.claim: an outcome sentence chosen by the run's own numbers, and
recorded so that a test can check it; Lesson.record: figures never judged."""
import json

import pytest
from lesson_runs import assert_claims_hold

from microseq.lesson import Lesson


def lesson(tmp_path, *flags):
    return Lesson(99, "claims", argv=["--out", str(tmp_path), *flags])


PHRASINGS = dict(yes="{a:.1f} beats {b:.1f}.", no="{a:.1f} does not beat {b:.1f}.",
                 short="Too short to tell ({a:.1f}, {b:.1f}); the full run shows it.")


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("a, b", [(2.0, 1.0), (1.0, 2.0), (1.0, 1.0)])
def test_claim_picks_the_phrasing_its_numbers_support(tmp_path, quick, a, b):
    run = lesson(tmp_path, *(["--quick"] if quick else []))
    said = run.claim("a > b", a=a, b=b, **PHRASINGS)
    if a > b:
        assert said == f"{a:.1f} beats {b:.1f}."
    elif quick:
        assert said == f"Too short to tell ({a:.1f}, {b:.1f}); the full run shows it."
    else:
        assert said == f"{a:.1f} does not beat {b:.1f}."
    assert run.claims[-1]["holds"] == (a > b)


def test_claim_terms_join_with_and_and_compare_with_plain_numbers(tmp_path):
    run = lesson(tmp_path)
    assert run.claim("x >= 0.5 and x < y", x=0.5, y=0.6, yes="yes", no="no") == "yes"
    assert run.claim("x >= 0.5 and x < y", x=0.7, y=0.6, yes="yes", no="no") == "no"
    assert run.claim("x <= 1e-3", x=float("nan"), yes="yes", no="no") == "no"  # NaN holds nothing


def test_claim_names_a_bad_condition(tmp_path):
    run = lesson(tmp_path)
    with pytest.raises(ValueError, match="'z' is neither a number nor one of"):
        run.claim("x > z", x=1.0, yes="", no="")
    with pytest.raises(ValueError, match="'=>' is not one of"):
        run.claim("x => 1", x=1.0, yes="", no="")
    with pytest.raises(ValueError, match="'left op right', spaced"):
        run.claim("x>1", x=1.0, yes="", no="")


def test_claims_and_records_go_into_metrics_json_and_check_out(tmp_path, capsys):
    run = lesson(tmp_path, "--quick")
    run.say(run.claim("a > b", a=1.0, b=2.0, **PHRASINGS))
    run.metric("a", 1.0, threshold=0.5)
    run.record("train_seconds", 12.5)
    run.finish()
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["info"] == {"train_seconds": 12.5}
    assert "train_seconds = 12.5  (information, no threshold)" in out
    assert [m["name"] for m in report["metrics"]] == ["a"]  # a record is never judged
    assert_claims_hold(report, out)
    # a printed sentence that its numbers contradict is caught
    report["claims"][0]["numbers"]["a"] = 3.0
    with pytest.raises(AssertionError):
        assert_claims_hold(report, out)


def test_a_claim_must_agree_with_the_metric_of_the_same_name(tmp_path, capsys):
    run = lesson(tmp_path)
    run.say(run.claim("accuracy > 0.9", accuracy=0.95, yes="good", no="bad"))
    run.metric("accuracy", 0.85, threshold=0.5)
    run.finish()
    report = json.loads((tmp_path / "metrics.json").read_text())
    with pytest.raises(AssertionError):
        assert_claims_hold(report, capsys.readouterr().out)


def test_an_unprinted_claim_is_caught(tmp_path, capsys):
    run = lesson(tmp_path)
    run.claim("a > b", a=2.0, b=1.0, **PHRASINGS)  # chosen, never said
    run.finish()
    report = json.loads((tmp_path / "metrics.json").read_text())
    with pytest.raises(AssertionError):
        assert_claims_hold(report, capsys.readouterr().out)
