"""The reliability campaign's bookkeeping: each fault or input case a test tries, and what it found.

A test opens a case, injects its fault (or feeds its input), and records what it checked with the
``case.check_*`` calls. Each check records a figure for the table (data lost, unclear errors, partial
artifacts, secrets seen, converged on re-run) and the case fails the test at its end when any figure is
not clean, naming every problem it found. Every case is appended, as one JSON line, to a file of this
process under ``build/reliability/`` (``STREAMOPS_RELIABILITY_DIR``), so several pytest processes (the
suite's lanes) can record side by side; ``python -m tests.reliability.table`` turns the files into
``docs/reliability.md``'s table.

Usage::

    def test_server_stopped_mid_vacuum_full(campaign, ...):
        with campaign.case("postgres_stopped", "mid-VACUUM FULL") as case:
            ...                                          # inject the fault, run the module
            case.check_error(result, names=["VACUUM FULL", "public.trades"])
            case.check_data(before == after, "rows and checksums of public.trades")
            case.check_no_partial(leftovers)              # [] when nothing is left behind
            ...                                           # run again, fault gone
            case.check_converged(not failed, result["msg"])
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent.parent

# The table's rows, in order: every fault and input class of the campaign (issue 20). A class that no case
# tried shows 0 cases and fails the table's check: the campaign must cover each of them.
FAULT_CLASSES: dict[str, str] = {
    "postgres_stopped": "PostgreSQL stopped (fast shutdown) mid-VACUUM FULL, mid-REINDEX CONCURRENTLY, mid-dump, "
                        "mid-restore-test",
    "postgres_backend": "PostgreSQL backend terminated mid-work",
    "postgres_timeout": "PostgreSQL statement_timeout reached",
    "redis_stopped": "Redis stopped mid-eviction and mid-BGSAVE",
    "redis_output_limit": "Redis client-output limit hit",
    "s3_errors": "S3 answering 500/503/SlowDown and timing out mid-multipart upload",
    "disk_full": "Disk full mid-dump and mid-RDB copy",
    "bluegreen_green": "Blue/green: green never ready, green failing smoke, the front failing after the switch",
    "bluegreen_killed": "Blue/green: ansible-playbook killed (-9) at each step of a deploy and of a rollback",
    "acme_gone": "ACME server gone mid-order",
    "prometheus_gone": "Prometheus gone mid-reload",
    "overlapping_runs": "Overlapping runs on one estate (second run, killed first run)",
    "bad_input": "Bad input: generated options of every module (hypothesis)",
    "secrets": "Secrets: every playbook at -v0 and -vvv (stdout, report, job events, files written)",
}

FIGURES = ("data_lost", "unclear_errors", "partial_artifacts", "secrets_seen")


def results_dir() -> Path:
    return Path(os.environ.get("STREAMOPS_RELIABILITY_DIR") or REPO / "build" / "reliability")


def _scrubbed(text: Any, limit: int = 300) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Case:
    """One fault or input tried: the figures its checks found, and why."""

    fault_class: str
    name: str
    test: str = ""
    data_lost: int = 0
    unclear_errors: int = 0
    partial_artifacts: int = 0
    secrets_seen: int = 0
    # None: no re-run applies to this case (bad input, secrets); True/False: the re-run converged or not.
    converged: bool | None = None
    errored: bool = False
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def _problem(self, figure: str, text: str) -> None:
        setattr(self, figure, getattr(self, figure) + 1)
        self.problems.append(f"{figure}: {_scrubbed(text, 600)}")

    # ------------------------------------------------------------------ the checks

    def check_error(self, result: Mapping[str, Any] | str, *, names: Iterable[str] = (),
                    failed: bool = True) -> None:
        """The module failed (``failed``) with a message that is no traceback and names each of ``names``.

        ``result`` is a module result (its ``msg``, ``failed``, and ``exception``/``module_stderr`` when
        Ansible had to report a crash) or the message itself.
        """
        if isinstance(result, Mapping):
            msg = str(result.get("msg") or "")
            crash = result.get("exception") or result.get("module_stderr") or ""
            if failed and not result.get("failed"):
                self._problem("unclear_errors", f"expected a failure, the result did not fail: {_scrubbed(msg)}")
            if crash and "Traceback" in str(crash):
                self._problem("unclear_errors", f"a traceback instead of a message: {_scrubbed(crash)}")
        else:
            msg = str(result)
        if not msg.strip():
            self._problem("unclear_errors", "empty message")
        if "Traceback (most recent call last)" in msg:
            self._problem("unclear_errors", f"a traceback in the message: {_scrubbed(msg)}")
        for name in names:
            if str(name).lower() not in msg.lower():
                self._problem("unclear_errors", f"the message does not name {name!r}: {_scrubbed(msg)}")

    def check_shape(self, problems: Iterable[str]) -> None:
        """The result is in the collection's shape: ``problems`` from records.result_problems ([] = clean); a
        result the report cannot read is an unclear result."""
        for problem in problems:
            self._problem("unclear_errors", f"result shape: {problem}")

    def check_data(self, intact: bool, what: str) -> None:
        """The source data (and the newest verified backup set) are what they were before the fault."""
        if not intact:
            self._problem("data_lost", what)

    def check_no_partial(self, leftovers: Iterable[Any], what: str = "") -> None:
        """Nothing half-done is left as if complete: ``leftovers`` lists what was found (empty: clean)."""
        for item in leftovers:
            self._problem("partial_artifacts", f"{what}{': ' if what else ''}{item}")

    def check_no_secret(self, text: str, secrets: Iterable[str], where: str) -> None:
        """None of ``secrets`` appears in ``text`` (read from ``where``)."""
        for secret in secrets:
            if secret and secret in text:
                self._problem("secrets_seen", f"a secret ({len(secret)} characters) in {where}")

    def check_converged(self, converged: bool, what: str = "") -> None:
        """The run again, fault gone, ended where a run without the fault would have."""
        if converged:
            if self.converged is None:
                self.converged = True
        else:
            self.converged = False
            self.problems.append(f"not converged: {_scrubbed(what, 600)}")

    @property
    def clean(self) -> bool:
        return (not self.errored and all(getattr(self, f) == 0 for f in FIGURES) and self.converged is not False)


class Campaign:
    """Per test: opens cases and writes each, when it ends, to this process's results file."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.cases: list[Case] = []

    @contextmanager
    def case(self, fault_class: str, name: str, *, raise_on_problems: bool = True) -> Iterator[Case]:
        if fault_class not in FAULT_CLASSES:
            raise ValueError(f"unknown fault class {fault_class!r}; one of {sorted(FAULT_CLASSES)}")
        case = Case(fault_class=fault_class, name=name, test=self.test)
        started = time.monotonic()
        try:
            yield case
        except BaseException as exc:
            # A case whose test broke half-way is not clean: it counts, and says why.
            case.errored = True
            case.problems.append(f"the test broke: {type(exc).__name__}: {_scrubbed(exc, 600)}")
            raise
        finally:
            case.seconds = round(time.monotonic() - started, 2)
            self.cases.append(case)
            write_case(case)
        if raise_on_problems and not case.clean:
            raise AssertionError(f"{fault_class} / {name}: " + "; ".join(case.problems))


def write_case(case: Case) -> None:
    directory = results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(case), sort_keys=True) + "\n"
    # One write of one line to a file of this process: lanes never interleave.
    with open(directory / f"cases-{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
        out.write(line)


def read_cases(directory: Path | None = None) -> list[dict[str, Any]]:
    found = []
    for path in sorted((directory or results_dir()).glob("cases-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.append(json.loads(line))
    return found


@pytest.fixture
def campaign(request: pytest.FixtureRequest) -> Campaign:
    """The reliability campaign's recorder for this test (tests/reliability/campaign.py)."""
    return Campaign(request.node.nodeid)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: a case of the reliability campaign (make reliability)")
