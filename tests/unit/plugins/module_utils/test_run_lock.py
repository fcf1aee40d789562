"""The per-estate run lock (module_utils/run_lock.py): decisions, atomic acquire under races, take-over, release."""
from __future__ import annotations

import json
import multiprocessing
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import run_lock
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import WindowError
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.run_lock import (
    EXPIRED,
    FREE,
    HELD,
    OWN,
    STALE,
    Found,
    Holder,
    Lock,
    LockError,
    LockHeldError,
    Machine,
    ProcessState,
)

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)
TTL = timedelta(hours=6)
HERE = Machine(hostname="ctl-01", boot_id="boot-1", machine_id="machine-1", pid_namespace="pid:[4026531836]")
LOCAL_HOLDER = Holder(maintenance_id="MAINT-1", user="ops", controller="ctl-01", pid=4242, pid_start="1000",
                      boot_id="boot-1", pid_namespace="pid:[4026531836]", machine_id="machine-1")
FOREIGN_HOLDER = Holder(maintenance_id="MAINT-9", user="", controller="awx-ee-7", pid=17, pid_start="55",
                        boot_id="boot-other", pid_namespace="pid:[4026532000]", machine_id="machine-other",
                        awx_job_id="42", awx_user="alice")


def lock_of(holder: Holder, *, run_id: str = "run-1", acquired: datetime = NOW - timedelta(hours=1),
            ttl: timedelta = TTL) -> Lock:
    return Lock(name="stream_systems", run_id=run_id, holder=holder, acquired_at=acquired, expires_at=acquired + ttl)


def found(lock: Lock) -> Found:
    return Found(lock=lock, inode=(1, 1), modified=lock.acquired_at)


def alive(start: str = "1000"):
    return lambda pid: ProcessState(alive=True, start=start)


def gone(pid: int) -> ProcessState:
    return ProcessState(alive=False)


@pytest.mark.parametrize(
    ("current", "machine", "probe", "verdict", "reason"),
    [
        pytest.param(Found(), HERE, alive(), FREE, "", id="no-lock"),
        pytest.param(found(lock_of(LOCAL_HOLDER, run_id="me")), HERE, gone, OWN, "this run", id="own-run-id"),
        pytest.param(found(lock_of(LOCAL_HOLDER)), HERE, alive(), HELD, "MAINT-1", id="same-machine-alive"),
        pytest.param(found(lock_of(LOCAL_HOLDER)), HERE, gone, STALE, "pid 4242 on ctl-01) is gone", id="pid-gone"),
        pytest.param(found(lock_of(LOCAL_HOLDER)), HERE, alive("2000"), STALE, "another process now",
                     id="pid-reused"),
        pytest.param(found(lock_of(LOCAL_HOLDER)), Machine(hostname="ctl-01", boot_id="boot-2",
                                                           machine_id="machine-1", pid_namespace="pid:[1]"),
                     alive(), STALE, "rebooted since", id="rebooted"),
        pytest.param(found(lock_of(LOCAL_HOLDER)), Machine(hostname="ctl-01", boot_id="boot-1", machine_id="machine-1",
                                                           pid_namespace="pid:[99]"),
                     gone, HELD, "MAINT-1", id="other-pid-namespace-not-provable"),
        pytest.param(found(lock_of(FOREIGN_HOLDER)), HERE, gone, HELD, "AWX user alice (job 42)",
                     id="other-controller-fresh"),
        pytest.param(found(lock_of(FOREIGN_HOLDER, acquired=NOW - timedelta(hours=7))), HERE, alive(), EXPIRED,
                     "expired at 2026-12-07T01:00:00Z", id="other-controller-expired"),
        pytest.param(found(lock_of(Holder(controller="ctl-01"))), HERE, gone, HELD, "run-1",
                     id="no-identity-not-provable"),
        pytest.param(Found(unreadable="bad json", inode=(1, 2), modified=NOW - timedelta(minutes=5)), HERE, gone, HELD,
                     "no lock (bad json)", id="unreadable-fresh"),
        pytest.param(Found(unreadable="bad json", inode=(1, 2), modified=NOW - timedelta(hours=7)), HERE, gone,
                     EXPIRED, "older than the ttl", id="unreadable-old"),
    ],
)
def test_decide(current, machine, probe, verdict, reason):
    decision = run_lock.decide(current, run_id="me", now=NOW, ttl=TTL, machine=machine, probe=probe)
    assert decision.verdict == verdict
    assert reason in decision.reason


@pytest.mark.parametrize("name", ["stream_systems", "fleet-001", "a.b", "A_1"])
def test_valid_names(name):
    assert run_lock.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "..", ".", "../etc", "a/b", "a b", "estate;rm", "x" * 201, "é"])
def test_bad_names_are_named(name):
    with pytest.raises(LockError) as raised:
        run_lock.validate_name(name)
    assert repr(name) in raised.value.msg


def acquire(directory: Path, run_id: str, holder: Holder = LOCAL_HOLDER, *, now: datetime = NOW,
            probe=gone, check_mode: bool = False):
    return run_lock.acquire(str(directory), "stream_systems", run_id=run_id, holder=holder, ttl=TTL, now=now,
                            machine=HERE, probe=probe, check_mode=check_mode)


def test_acquire_reenter_refuse_release(tmp_path):
    directory = tmp_path / "locks"
    first = acquire(directory, "run-1")
    assert first.action == "acquired"
    assert oct(directory.stat().st_mode & 0o777) == "0o750"
    written = json.loads((directory / "stream_systems.lock").read_text())
    assert written["run_id"] == "run-1" and written["holder"]["maintenance_id"] == "MAINT-1"
    assert written["expires_at"] == "2026-12-07T08:00:00Z"
    assert acquire(directory, "run-1").action == "reentered"
    with pytest.raises(LockHeldError) as refused:
        acquire(directory, "run-2", probe=alive())
    for named in ("stream_systems", "MAINT-1", "run-1", "ops", "ctl-01", "pid 4242", "2026-12-07T02:00:00Z",
                  "2026-12-07T08:00:00Z", str(directory / "stream_systems.lock")):
        assert named in refused.value.msg
    # A refused run's release never removes the holder's lock.
    other = run_lock.release(str(directory), "stream_systems", run_id="run-2")
    assert other.action == "not_owned" and (directory / "stream_systems.lock").exists()
    own = run_lock.release(str(directory), "stream_systems", run_id="run-1")
    assert own.action == "released"
    assert os.listdir(directory) == []
    assert run_lock.release(str(directory), "stream_systems", run_id="run-1").action == "absent"


def test_take_over_of_an_expired_lock_keeps_whose_it_was(tmp_path):
    directory = tmp_path / "locks"
    acquire(directory, "run-old", FOREIGN_HOLDER, now=NOW - timedelta(hours=7))
    inode_before = (directory / "stream_systems.lock").stat().st_ino
    outcome = acquire(directory, "run-new", probe=alive())
    assert outcome.action == "took_over" and outcome.decision.verdict == EXPIRED
    written = json.loads((directory / "stream_systems.lock").read_text())
    assert written["run_id"] == "run-new"
    assert written["took_over"]["lock"]["run_id"] == "run-old"
    assert "expired" in written["took_over"]["reason"]
    assert (directory / "stream_systems.lock").stat().st_ino != inode_before
    assert sorted(os.listdir(directory)) == ["stream_systems.lock"]


def test_take_over_of_a_stale_lock_on_this_machine(tmp_path):
    directory = tmp_path / "locks"
    acquire(directory, "run-killed")
    outcome = acquire(directory, "run-next", probe=gone)
    assert outcome.action == "took_over" and outcome.decision.verdict == STALE
    assert "is gone" in outcome.decision.reason


def test_check_mode_creates_nothing_and_reports(tmp_path):
    directory = tmp_path / "locks"
    assert acquire(directory, "run-1", check_mode=True).action == "would_free"
    assert not directory.exists()
    acquire(directory, "run-1")
    outcome = acquire(directory, "run-2", probe=alive(), check_mode=True)
    assert outcome.action == "would_held"
    assert json.loads((directory / "stream_systems.lock").read_text())["run_id"] == "run-1"


def test_leftover_temp_of_a_killed_writer_is_removed(tmp_path):
    directory = tmp_path / "locks"
    directory.mkdir()
    (directory / ".tmp-stream_systems-1-abc.lock-tmp").write_text("{half")
    outcome = acquire(directory, "run-1")
    assert outcome.removed_temps == [".tmp-stream_systems-1-abc.lock-tmp"]
    assert os.listdir(directory) == ["stream_systems.lock"]


def test_a_directory_where_the_lock_should_be_is_no_lock(tmp_path):
    directory = tmp_path / "locks"
    (directory / "stream_systems.lock").mkdir(parents=True)
    current = run_lock.read_lock(str(directory / "stream_systems.lock"))
    assert current.exists and current.lock is None and "not a regular file" in current.unreadable
    with pytest.raises(LockHeldError) as refused:
        acquire(directory, "run-1")
    assert "not a regular file" in refused.value.msg


def test_a_full_disk_while_writing_is_a_named_error(tmp_path, monkeypatch):
    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_lock, "_write_temp", no_space)
    with pytest.raises(LockError) as failed:
        acquire(tmp_path / "locks", "run-1")
    assert "No space left on device" in failed.value.msg and "nothing was taken" in failed.value.msg
    assert os.listdir(tmp_path / "locks") == []


def test_directory_errors_name_the_path(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(LockError) as not_a_dir:
        acquire(a_file, "run-1")
    assert str(a_file) in not_a_dir.value.msg
    with pytest.raises(LockError) as cannot_create:
        acquire(a_file / "locks", "run-1")
    assert str(a_file / "locks") in cannot_create.value.msg


def _race(directory: str, run_id: str, start: multiprocessing.synchronize.Event, results) -> None:
    start.wait(10)
    try:
        outcome = run_lock.acquire(directory, "stream_systems", run_id=run_id, holder=FOREIGN_HOLDER, ttl=TTL,
                                   now=datetime.now(timezone.utc), machine=HERE, probe=gone)
        results.put((run_id, outcome.action))
    except LockHeldError:
        results.put((run_id, "refused"))


@pytest.mark.parametrize("stale_first", [False, True], ids=["free", "expired-lock"])
def test_processes_racing_exactly_one_wins(tmp_path, stale_first):
    directory = tmp_path / "locks"
    if stale_first:  # all of them judge the same expired lock: only one may take it over
        acquire(directory, "run-old", FOREIGN_HOLDER, now=datetime.now(timezone.utc) - timedelta(hours=7))
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_race, args=(str(directory), f"run-{n}", start, results)) for n in range(8)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(20)
    outcomes = sorted(results.get(timeout=5)[1] for _worker in workers)
    assert outcomes.count("refused") == 7
    assert outcomes.count("took_over" if stale_first else "acquired") == 1
    assert sorted(os.listdir(directory)) == ["stream_systems.lock"]


def test_threads_racing_exactly_one_wins(tmp_path):
    directory = tmp_path / "locks"
    barrier = threading.Barrier(6)
    won, refused = [], []

    def contend(run_id: str) -> None:
        barrier.wait(5)
        try:
            acquire(directory, run_id, FOREIGN_HOLDER)
            won.append(run_id)
        except LockHeldError:
            refused.append(run_id)

    threads = [threading.Thread(target=contend, args=(f"run-{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1 and len(refused) == 5


def test_process_probe_of_this_process_and_a_dead_one():
    me = run_lock.probe_process(os.getpid())
    assert me.alive and me.start == run_lock.process_start(os.getpid()) != ""
    child = multiprocessing.get_context("fork").Process(target=int)
    child.start()
    child.join(5)
    assert not run_lock.probe_process(child.pid).alive


def test_runner_records_keep_the_contract(tmp_path):
    params = {"name": "stream_systems", "run_id": "run-1", "path": str(tmp_path / "locks"), "ttl": "6h",
              "holder": {"maintenance_id": "MAINT-1", "user": "ops", "controller": "ctl-01", "pid": os.getpid()}}
    planned = run_lock.run_maintenance_lock(params, check_mode=True)
    assert result_problems(planned, check_mode=True) == [] and planned["records"][0]["status"] == "planned"
    taken = run_lock.run_maintenance_lock(params)
    assert result_problems(taken) == [] and taken["changed"] and taken["held"]
    again = run_lock.run_maintenance_lock(params)
    assert result_problems(again) == [] and not again["changed"]
    with pytest.raises(LockHeldError) as refused:
        run_lock.run_maintenance_lock({**params, "run_id": "run-2"})
    assert [r["status"] for r in refused.value.details["records"]] == ["failed"]
    shown = run_lock.run_maintenance_lock({**params, "run_id": "run-2"}, check_mode=True)
    assert shown["records"][0]["status"] == "unknown" and "MAINT-1" in shown["msg"]
    foreign = run_lock.run_maintenance_lock({**params, "run_id": "run-2", "state": "released"})
    assert foreign["records"][0]["status"] == "breach" and foreign["lock"]["run_id"] == "run-1"
    status = run_lock.run_maintenance_lock({**params, "state": "status"})
    assert status["verdict"] == OWN and not status["changed"]
    released = run_lock.run_maintenance_lock({**params, "state": "released"})
    assert result_problems(released) == [] and released["changed"] and released["lock"] is None


@pytest.mark.parametrize(("ttl", "named"), [("6", "'6'"), ("0", "'0'"), ("soon", "'soon'"), ("-1h", "'-1h'")])
def test_bad_ttl_is_named(tmp_path, ttl, named):
    with pytest.raises(WindowError) as raised:
        run_lock.run_maintenance_lock({"name": "e", "run_id": "r", "path": str(tmp_path), "ttl": ttl})
    assert named in raised.value.msg and "ttl" in raised.value.msg
