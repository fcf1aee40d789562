"""The campaign's bookkeeping: a case's checks count the right figure, and the table refuses an unclean run."""
from __future__ import annotations

import pytest

from tests.reliability import table
from tests.reliability.campaign import FAULT_CLASSES, Campaign, Case, read_cases


def test_each_check_counts_its_own_figure_and_says_why():
    case = Case("disk_full", "mid-dump")
    case.check_error({"failed": True, "msg": "pg_dump full: No space left on device; nothing was kept"},
                     names=["No space left", "pg_dump full"])
    case.check_data(True, "rows")
    case.check_no_partial([])
    case.check_converged(True)
    assert case.clean and case.problems == [] and case.converged is True

    bad = Case("disk_full", "mid-dump")
    bad.check_error({"failed": False, "msg": ""}, names=["full.dump"])
    bad.check_error({"failed": True, "msg": "x", "exception": "Traceback (most recent call last): ..."})
    bad.check_data(False, "public.trades: 10 rows, was 12")
    bad.check_no_partial(["/backup/x-1/full.dump"], "half-written set")
    bad.check_no_secret("password=hunter22 in the log", ["hunter22"], "stdout")
    bad.check_converged(False, "the re-run failed")
    assert (bad.unclear_errors, bad.data_lost, bad.partial_artifacts, bad.secrets_seen) == (4, 1, 1, 1)
    assert bad.converged is False and not bad.clean
    assert not any("hunter22" in problem for problem in bad.problems)  # the problem names where, not the secret


def test_a_case_with_a_problem_fails_its_test_and_is_written_either_way(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMOPS_RELIABILITY_DIR", str(tmp_path))
    campaign = Campaign("t::one")
    with campaign.case("s3_errors", "503 on part 2") as case:
        case.check_converged(True)
    with pytest.raises(AssertionError, match="not named"), campaign.case("s3_errors", "hang") as case:
        case.check_error("timed out", names=["not named"])
    with pytest.raises(RuntimeError), campaign.case("s3_errors", "broke"):
        raise RuntimeError("the proxy did not start")
    cases = read_cases(tmp_path)
    assert [(c["name"], c["errored"], c["unclear_errors"]) for c in cases] == [
        ("503 on part 2", False, 0), ("hang", False, 1), ("broke", True, 0)]
    with pytest.raises(ValueError, match="unknown fault class"), campaign.case("typo", "x"):
        pass


def test_the_table_has_every_class_and_fails_on_an_untried_class_or_a_problem(tmp_path):
    clean = [{"fault_class": key, "name": "n", "test": "t", "data_lost": 0, "unclear_errors": 0,
              "partial_artifacts": 0, "secrets_seen": 0, "converged": True, "errored": False, "problems": []}
             for key in FAULT_CLASSES]
    rows = table.summarise(clean)
    text = table.render(rows)
    assert all(title in text for title in FAULT_CLASSES.values())
    n = len(FAULT_CLASSES)
    assert f"| **all** | **{n}** | **0** | **0** | **0** | **0** | **{n} of {n}** |" in text
    assert table.problems_of(rows, clean) == []

    untried = table.summarise(clean[1:])
    assert table.problems_of(untried, clean[1:]) == [f"{list(FAULT_CLASSES.values())[0]}: no case tried"]
    lost = [dict(clean[0], data_lost=1, problems=["data_lost: rows"])] + clean[1:]
    assert len(table.problems_of(table.summarise(lost), lost)) == 1


def test_the_table_goes_between_the_markers_and_the_prose_stays(tmp_path):
    doc = tmp_path / "reliability.md"
    doc.write_text(f"# R\n\nbefore\n\n{table.BEGIN}\nold\n{table.END}\n\nafter\n")
    table.write_between_markers(doc, "| new |\n")
    assert doc.read_text() == f"# R\n\nbefore\n\n{table.BEGIN}\n| new |\n{table.END}\n\nafter\n"
