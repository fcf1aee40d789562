"""log_cleanup's safety decisions (which roots are refused) and real cleanups of temporary directories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.log_cleanup import (
    DEFAULT_PATTERNS,
    LogCleanupError,
    Sweep,
    descend,
    judge_root,
    refusal,
    run_log_cleanup,
    sweep,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import make_record, result_problems
from ansible_collections.streamops.maintenance.plugins.modules import log_cleanup

DAY = 86400
NOW = time.time()
DESCRIBED = "*.log *.log.[0-9]* *.gz older than 30 days"


def clock() -> float:
    return NOW


def aged(path: Path, days: float, size: int = 10) -> Path:
    """A file of ``size`` bytes last modified ``days`` before NOW."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = NOW - days * DAY
    os.utime(path, (when, when))
    return path


def params(*roots, protected=(), missing_ok: bool = False, default_patterns=DEFAULT_PATTERNS) -> dict:
    return {"roots": list(roots), "protected_roots": [str(p) for p in protected], "missing_ok": missing_ok,
            "default_patterns": list(default_patterns)}


def refused(given: dict) -> LogCleanupError:
    with pytest.raises(LogCleanupError) as caught:
        run_log_cleanup(given, check_mode=False, clock=clock)
    return caught.value


# --------------------------------------------------------------------------- refusals of what is written


@pytest.mark.parametrize("path, recurse, why", [
    pytest.param("/", False, "a top-level directory", id="/"),
    pytest.param("/var", False, "a top-level directory", id="/var"),
    pytest.param("/etc", False, "a top-level directory", id="/etc"),
    pytest.param("/home", True, "a top-level directory", id="/home"),
    pytest.param("/etc/nginx", False, "inside the system tree /etc", id="/etc/nginx"),
    pytest.param("/usr/local/x", False, "inside the system tree /usr", id="/usr/local/x"),
    pytest.param("/lib64/x", False, "inside the system tree /lib64", id="/lib64/x"),
    pytest.param("/run/app", False, "inside the system tree /run", id="/run/app"),
    pytest.param("/var/log", True, "a directory shared by every service (name a directory of its own below it)",
                 id="/var/log"),
    pytest.param("/var/lib", False, "a directory shared by every service (name a directory of its own below it)",
                 id="/var/lib"),
    pytest.param("/var/tmp", False, "a directory shared by every service (name a directory of its own below it)",
                 id="/var/tmp"),
    pytest.param("/srv/backups/vitalstream", False, "inside the protected root /srv/backups/vitalstream",
                 id="the protected root"),
    pytest.param("/srv/backups/vitalstream/daily", True, "inside the protected root /srv/backups/vitalstream",
                 id="inside the protected root"),
    pytest.param("/srv/backups", True, "holds the protected root /srv/backups/vitalstream (and recurse is on)",
                 id="holds the protected root, recursive"),
    pytest.param("/srv/backups", False, None, id="holds the protected root, not recursive"),
    pytest.param("/srv/backup", True, None, id="a shorter name does not hold it"),
    pytest.param("/srv/backups/vitalstream-logs", True, None, id="a longer name is not inside"),
    pytest.param("/var/log/vitalstream", True, None, id="a service's own directory"),
    pytest.param("/srv/app/logs", True, None, id="an application directory"),
    pytest.param("/usrdata/logs", True, None, id="/usrdata is not /usr"),
])
def test_refusal(path, recurse, why):
    assert refusal(path, ["/srv/backups/vitalstream"], recurse) == why


@pytest.mark.parametrize("spec, problem", [
    pytest.param({"root": "/", "age_days": 30}, "a top-level directory", id="/"),
    pytest.param({"root": "//", "age_days": 30}, "resolves to /, a top-level directory", id="//"),
    pytest.param({"root": "/var", "age_days": 30}, "a top-level directory", id="/var"),
    pytest.param({"root": "/etc", "age_days": 30}, "a top-level directory", id="/etc"),
    pytest.param({"root": "//etc", "age_days": 30}, "resolves to /etc, a top-level directory", id="//etc"),
    pytest.param({"root": "/usr/local/x", "age_days": 30}, "inside the system tree /usr", id="/usr/local/x"),
    pytest.param({"root": "/var/log", "age_days": 30},
                 "a directory shared by every service (name a directory of its own below it)", id="/var/log"),
    pytest.param({"root": "/var/log/", "age_days": 30},
                 "a directory shared by every service (name a directory of its own below it)", id="/var/log/"),
    pytest.param({"root": "/var/log/.", "age_days": 30},
                 "a directory shared by every service (name a directory of its own below it)", id="/var/log/."),
    pytest.param({"root": "/var/log/app/../..", "age_days": 30}, "a top-level directory", id="/var/log/app/../.."),
    pytest.param({"root": "/var/log/app/..", "age_days": 30},
                 "a directory shared by every service (name a directory of its own below it)", id="/var/log/app/.."),
    pytest.param({"root": "/srv/app/../../etc/ssl", "age_days": 30}, "inside the system tree /etc",
                 id="/srv/app/../../etc/ssl"),
    pytest.param({"root": "var/log/app", "age_days": 30}, "not an absolute path", id="relative"),
    pytest.param({"root": "./logs", "age_days": 30}, "not an absolute path", id="./logs"),
    pytest.param({"age_days": 30}, "roots[1] has no root (got None): not an absolute path", id="no root"),
    pytest.param({"root": "", "age_days": 30}, "roots[1] has no root (got ''): not an absolute path", id="empty root"),
    pytest.param({"root": "/srv/app/logs", "age_days": 30, "patterns": ["logs/*.log"]},
                 "patterns match file names, not paths (no '/')", id="pattern with /"),
    pytest.param({"root": "/srv/app/logs", "age_days": 30, "patterns": "../*.log"},
                 "patterns match file names, not paths (no '/')", id="one str pattern with /"),
    pytest.param({"root": "/srv/app/logs", "age_days": 30, "patterns": [""]}, "no file name patterns",
                 id="empty pattern"),
    pytest.param({"root": "/srv/app/logs", "age_days": 30, "patterns": ["*.log", "  "]}, "no file name patterns",
                 id="a blank pattern among good ones"),
    pytest.param({"root": "/srv/app/logs", "age_days": 0}, "age_days must be a whole number of at least 1 (is 0)",
                 id="age_days 0"),
    pytest.param({"root": "/srv/app/logs", "age_days": -7}, "age_days must be a whole number of at least 1 (is -7)",
                 id="age_days negative"),
    pytest.param({"root": "/srv/app/logs", "age_days": "x"},
                 "age_days must be a whole number of at least 1 (is 'x')", id="age_days x"),
    pytest.param({"root": "/srv/app/logs", "age_days": "2.5"},
                 "age_days must be a whole number of at least 1 (is '2.5')", id="age_days 2.5 str"),
    pytest.param({"root": "/srv/app/logs"}, "age_days must be a whole number of at least 1 (is None)",
                 id="no age_days"),
    pytest.param({"root": "/srv/app/logs", "age_days": 30, "recurse": "sometimes"},
                 "recurse must be true or false (is 'sometimes')", id="recurse not a boolean"),
    pytest.param({"root": "/srv/app/logs", "age_days": 30, "recurse": [False]},
                 "recurse must be true or false (is [False])", id="recurse a list"),
    pytest.param({"root": "/srv/app/logs", "age_days": 30, "pattern": "*.log", "delete": True},
                 "unknown key(s) delete, pattern; allowed: age_days, patterns, recurse, root", id="unknown keys"),
])
def test_a_root_is_refused_naming_why(spec, problem):
    error = refused(params(spec))
    root = str(spec.get("root") or "")
    detail = f"{root}: {problem}: refused"
    assert error.msg == f"log cleanup refused before any change: {detail}"
    assert error.details == {"records": [make_record(root, "cleanup", "failed", detail)]}
    assert result_problems({"changed": False, "msg": error.msg, "failed": True, **error.details}) == []


def test_a_root_that_is_not_a_dict_is_refused():
    error = refused(params("/var/log/vitalstream"))
    assert error.details["records"] == [make_record(
        "/var/log/vitalstream", "cleanup", "failed",
        "/var/log/vitalstream: roots[1] must be a dict with root and age_days: refused")]


@pytest.mark.parametrize("given, recurse", [
    (None, False), (False, False), ("false", False), ("no", False), ("False", False), (0, False),
    (True, True), ("true", True), ("yes", True), (1, True),
])
def test_recurse_is_read_as_ansible_reads_a_boolean(tmp_path, given, recurse):
    # bool("false") is True: a quoted "false" from an inventory must not turn recursion on.
    entry = judge_root({"root": str(tmp_path), "age_days": 30, "recurse": given}, 1,
                       default_patterns=list(DEFAULT_PATTERNS), protected=[], missing_ok=False)
    assert (entry.problem, entry.recurse) == (None, recurse)


def test_no_patterns_anywhere_is_refused(tmp_path):
    error = refused(params({"root": str(tmp_path), "age_days": 30}, default_patterns=[]))
    assert error.details["records"][0]["detail"] == f"{tmp_path}: no file name patterns: refused"


def test_an_empty_pattern_list_takes_the_default_patterns(tmp_path):
    # As the role did (default(..., true)): an empty list is "not given", not "match nothing".
    entry = judge_root({"root": str(tmp_path), "age_days": 30, "patterns": []}, 1,
                       default_patterns=list(DEFAULT_PATTERNS), protected=[], missing_ok=False)
    assert entry.problem is None and entry.patterns == list(DEFAULT_PATTERNS)


def test_protected_roots_must_be_absolute():
    with pytest.raises(LogCleanupError) as caught:
        run_log_cleanup(params({"root": "/srv/app/logs", "age_days": 30}, protected=["backups", "/backups"]),
                        check_mode=False, clock=clock)
    assert caught.value.msg == "protected_roots must be absolute paths: backups"


# --------------------------------------------------------------------------- refusals of what a root really is


@pytest.mark.parametrize("target, problem", [
    pytest.param("/", "resolves to /, a top-level directory", id="symlink to /"),
    pytest.param("/etc", "resolves to /etc, a top-level directory", id="symlink to /etc"),
    pytest.param("/etc/ssl", "resolves to /etc/ssl, inside the system tree /etc", id="symlink to /etc/ssl"),
    pytest.param("/usr/lib", "resolves to /usr/lib, inside the system tree /usr", id="symlink to /usr/lib"),
    pytest.param("/var/log", "resolves to /var/log, a directory shared by every service (name a directory of its "
                             "own below it)", id="symlink to /var/log"),
])
def test_a_symlink_is_judged_by_what_it_resolves_to(tmp_path, target, problem):
    link = tmp_path / "logs"
    link.symlink_to(target)
    chained = tmp_path / "current"
    chained.symlink_to(link)
    for root in (link, chained):
        error = refused(params({"root": str(root), "age_days": 30, "recurse": True}))
        assert error.details["records"][0]["detail"] == f"{root}: {problem}: refused"


def test_a_symlink_into_a_protected_root_is_refused(tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    (tmp_path / "logs").symlink_to(backups)
    error = refused(params({"root": str(tmp_path / "logs"), "age_days": 30}, protected=[backups]))
    assert error.details["records"][0]["detail"] == (
        f"{tmp_path / 'logs'}: resolves to {backups}, inside the protected root {backups}: refused")


def test_a_protected_root_named_through_a_symlink_still_protects(tmp_path):
    backups = tmp_path / "srv" / "backups"
    backups.mkdir(parents=True)
    (tmp_path / "backup-link").symlink_to(backups)
    error = refused(params({"root": str(backups / "daily"), "age_days": 30}, protected=[tmp_path / "backup-link"]))
    assert error.details["records"][0]["detail"] == f"{backups / 'daily'}: inside the protected root {backups}: refused"


@pytest.mark.parametrize("recurse, problem", [
    pytest.param(True, "holds the protected root {backups} (and recurse is on)", id="recurse: refused"),
    pytest.param(False, None, id="not recursive: allowed"),
])
def test_a_directory_holding_a_protected_root(tmp_path, recurse, problem):
    backups = tmp_path / "data" / "backups"
    backups.mkdir(parents=True)
    spec = {"root": str(tmp_path / "data"), "age_days": 30, "recurse": recurse}
    entry = judge_root(spec, 1, default_patterns=list(DEFAULT_PATTERNS), protected=[str(backups)], missing_ok=False)
    assert entry.problem == (problem.format(backups=backups) if problem else None)


def test_a_missing_root_is_refused_unless_missing_ok(tmp_path):
    gone = tmp_path / "gone"
    error = refused(params({"root": str(gone), "age_days": 30}))
    assert error.details["records"][0]["detail"] == f"{gone}: does not exist: refused"
    result = run_log_cleanup(params({"root": str(gone), "age_days": 30}, missing_ok=True), check_mode=False,
                             clock=clock)
    assert result == {"changed": False, "msg": "removed 0 old log file(s) under 0 of 1 root(s)",
                      "records": [make_record(str(gone), "cleanup", "unchanged",
                                              "does not exist, skipped (missing_ok)")]}
    assert result_problems(result) == []


def test_a_dangling_symlink_is_missing_and_a_missing_root_is_still_judged_first(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    error = refused(params({"root": str(tmp_path / "dangling"), "age_days": 30}, missing_ok=True))
    # lexists: the link is there, so it is not "missing"; what it points at is not a directory.
    assert error.details["records"][0]["detail"] == f"{tmp_path / 'dangling'}: not a directory: refused"
    # missing_ok never lets a refused path through.
    error = refused(params({"root": "/var/log/app/../..", "age_days": 30}, missing_ok=True))
    assert error.details["records"][0]["detail"] == "/var/log/app/../..: a top-level directory: refused"


@pytest.mark.parametrize("make", [
    pytest.param(lambda root: aged(root, 40), id="a file"),
    pytest.param(lambda root: root.symlink_to(aged(root.parent / "target.log", 40)), id="a symlink to a file"),
])
def test_a_file_as_root_is_refused(tmp_path, make):
    root = tmp_path / "app.log"
    make(root)
    error = refused(params({"root": str(root), "age_days": 30}))
    assert error.details["records"][0]["detail"] == f"{root}: not a directory: refused"
    assert root.exists()


def test_one_refused_root_among_good_ones_deletes_nothing_anywhere(tmp_path):
    good = [aged(tmp_path / "api" / "old.log", 40), aged(tmp_path / "worker" / "old.log.1", 40),
            aged(tmp_path / "worker" / "nested" / "old.gz", 40)]
    (tmp_path / "to-etc").symlink_to("/etc")
    error = refused(params({"root": str(tmp_path / "api"), "age_days": 30},
                           {"root": "/var/log", "age_days": 30},
                           {"root": str(tmp_path / "worker"), "age_days": 30, "recurse": True},
                           {"root": str(tmp_path / "to-etc"), "age_days": 30}))
    assert [(r["name"], r["status"]) for r in error.details["records"]] == [
        ("/var/log", "failed"), (str(tmp_path / "to-etc"), "failed")]
    assert error.msg == ("log cleanup refused before any change: /var/log: a directory shared by every service "
                         "(name a directory of its own below it): refused; "
                         f"{tmp_path / 'to-etc'}: resolves to /etc, a top-level directory: refused")
    assert all(path.exists() for path in good)


# --------------------------------------------------------------------------- real cleanups


@pytest.fixture
def estate(tmp_path) -> dict[str, Path]:
    """A log root with what must go and what must stay, and a directory outside it that must stay whole."""
    root, outside = tmp_path / "vitalstream", tmp_path / "outside"
    paths = {
        "old": aged(root / "api.log", 40, 100),
        "old_rotated": aged(root / "api.log.1", 31, 200),
        "old_gz": aged(root / "api.log.2.gz", 90, 300),
        "just_old": aged(root / "edge.log", 30 + 1 / 24, 1),
        "new": aged(root / "today.log", 1),
        "just_new": aged(root / "edge-new.log", 30 - 1 / 24),
        "other_name": aged(root / "notes.txt", 40),
        "hidden": aged(root / ".api.log", 40),
        "hidden_dir": aged(root / ".cache" / "old.log", 40),
        "nested_old": aged(root / "archive" / "2025" / "old.log", 40, 400),
        "target": aged(outside / "target.log", 40),
        "outside_old": aged(outside / "old.log", 40),
    }
    (root / "linked.log").symlink_to(paths["target"])
    os.utime(root / "linked.log", (NOW - 40 * DAY,) * 2, follow_symlinks=False)
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)
    (root / "dir.log").mkdir()
    os.utime(root / "dir.log", (NOW - 40 * DAY,) * 2)
    os.mkfifo(root / "pipe.log")
    os.utime(root / "pipe.log", (NOW - 40 * DAY,) * 2)
    paths["root"] = root
    return paths


GONE_FLAT = ("old", "old_rotated", "old_gz", "just_old")
KEPT_ALWAYS = ("new", "just_new", "other_name", "hidden", "hidden_dir", "target", "outside_old")


@pytest.mark.parametrize("recurse, gone, removed_bytes, described", [
    pytest.param(False, GONE_FLAT, 601, DESCRIBED, id="not recursive"),
    pytest.param(True, GONE_FLAT + ("nested_old",), 1001, DESCRIBED + " (recursive)", id="recursive"),
])
def test_cleanup_check_mode_then_real_then_again(estate, recurse, gone, removed_bytes, described):
    root = estate["root"]
    given = params({"root": str(root), "age_days": 30, "recurse": recurse})
    count = len(gone)
    before = {"old_files": count, "old_bytes": removed_bytes}

    plan = run_log_cleanup(given, check_mode=True, clock=clock)
    assert result_problems(plan, check_mode=True) == []
    assert plan["changed"] is True
    assert plan["msg"] == f"would remove {count} old log file(s) under 1 of 1 root(s)"
    [planned] = plan["records"]
    assert (planned["status"], planned["before"], planned["after"]) == (
        "planned", before, {"old_files": 0, "old_bytes": 0})
    assert planned["detail"] == f"would remove {count} file(s), {removed_bytes} B: {described}"
    assert all(path.exists() for key, path in estate.items())

    done = run_log_cleanup(given, check_mode=False, clock=clock)
    assert result_problems(done) == []
    assert done["changed"] is True
    assert done["msg"] == f"removed {count} old log file(s) under 1 of 1 root(s)"
    [record] = done["records"]
    assert (record["status"], record["before"], record["after"]) == ("done", before, {"old_files": 0, "old_bytes": 0})
    assert record["detail"] == f"removed {count} file(s), {removed_bytes} B freed: {described}"
    assert sorted(key for key in estate if key != "root" and not estate[key].exists()) == sorted(gone)
    kept = set(KEPT_ALWAYS) | ({"nested_old"} if not recurse else set())
    assert all(estate[key].exists() for key in kept)
    # Never a symlink, a directory or a fifo, even with a matching name and an old mtime.
    assert (root / "linked.log").is_symlink() and (root / "linked-dir").is_symlink()
    assert (root / "dir.log").is_dir() and (root / "pipe.log").exists()

    again = run_log_cleanup(given, check_mode=False, clock=clock)
    assert result_problems(again) == []
    assert again["changed"] is False
    assert again["records"] == [make_record(str(root), "cleanup", "unchanged", f"nothing to remove: {described}",
                                            before={"old_files": 0, "old_bytes": 0},
                                            after={"old_files": 0, "old_bytes": 0},
                                            seconds=again["records"][0]["seconds"])]


def test_patterns_and_age_of_each_root(tmp_path):
    api = [aged(tmp_path / "api" / "a.out", 10), aged(tmp_path / "api" / "a.log", 10)]
    worker = [aged(tmp_path / "worker" / "w.log", 10), aged(tmp_path / "worker" / "w2.log", 3)]
    result = run_log_cleanup(params({"root": str(tmp_path / "api"), "age_days": 7, "patterns": "*.out"},
                                    {"root": str(tmp_path / "worker"), "age_days": 5, "patterns": ["*.log"]}),
                             check_mode=False, clock=clock)
    assert result_problems(result) == []
    assert [(r["status"], r["before"]["old_files"]) for r in result["records"]] == [("done", 1), ("done", 1)]
    assert result["records"][0]["detail"] == "removed 1 file(s), 10 B freed: *.out older than 7 days"
    assert [p.exists() for p in api + worker] == [False, True, False, True]


def test_a_root_named_through_a_symlink_is_cleaned_where_it_resolves(tmp_path):
    real = tmp_path / "releases" / "42" / "logs"
    old = aged(real / "app.log", 40)
    (tmp_path / "current").symlink_to(tmp_path / "releases" / "42")
    root = tmp_path / "current" / "logs"
    result = run_log_cleanup(params({"root": str(root), "age_days": 30}), check_mode=False, clock=clock)
    [record] = result["records"]
    assert record["name"] == str(root) and record["status"] == "done"
    assert record["detail"] == f"removed 1 file(s), 10 B freed: {DESCRIBED}, root resolves to {real}"
    assert not old.exists()


def test_roots_that_have_nothing_to_remove_and_one_that_has(tmp_path):
    aged(tmp_path / "quiet" / "new.log", 1)
    old = aged(tmp_path / "busy" / "old.log", 40, 2048)
    result = run_log_cleanup(params({"root": str(tmp_path / "quiet"), "age_days": 30},
                                    {"root": str(tmp_path / "busy"), "age_days": 30},
                                    {"root": str(tmp_path / "gone"), "age_days": 30}, missing_ok=True),
                             check_mode=False, clock=clock)
    assert result_problems(result) == []
    assert [r["status"] for r in result["records"]] == ["unchanged", "done", "unchanged"]
    assert result["records"][1]["detail"] == f"removed 1 file(s), 2.0 kB freed: {DESCRIBED}"
    assert result["msg"] == "removed 1 old log file(s) under 1 of 3 root(s)"
    assert not old.exists()


@pytest.fixture
def immutable(tmp_path):
    """chattr +i on files (even root cannot remove them); always undone."""
    made: list[Path] = []

    def make(path: Path) -> Path:
        chattr = shutil.which("chattr")
        if chattr is None:
            pytest.skip("chattr is not installed")
        run = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            pytest.skip(f"chattr +i does not work on {tmp_path}: {run.stderr.strip()}")
        made.append(path)
        return path

    yield make
    for path in made:
        subprocess.run([shutil.which("chattr") or "chattr", "-i", str(path)], check=False)


def test_a_file_that_cannot_be_removed_fails_the_root_naming_it(tmp_path, immutable):
    root = tmp_path / "logs"
    stuck = immutable(aged(root / "a-stuck.log", 40, 100))
    removable = aged(root / "b-old.log", 40, 50)
    result = run_log_cleanup(params({"root": str(root), "age_days": 30}), check_mode=False, clock=clock)
    assert result_problems(result) == []
    [record] = result["records"]
    assert record["status"] == "failed"
    assert record["detail"] == (f"removed 1 file(s), 50 B freed: {DESCRIBED}; "
                                f"could not remove 1: {stuck}: Operation not permitted")
    assert (record["before"], record["after"]) == ({"old_files": 2, "old_bytes": 150},
                                                   {"old_files": 1, "old_bytes": 100})
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"] == f"removed 1 old log file(s) under 1 of 1 root(s); {root}: {record['detail']}"
    assert stuck.exists() and not removable.exists()


# --------------------------------------------------------------------------- main() as Ansible runs it


def run_main(args: dict, capsys) -> tuple[int, dict]:
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        log_cleanup.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


def test_main_as_ansible_runs_it(tmp_path, capsys):
    old = aged(tmp_path / "logs" / "old.log", 40)  # NOW is a little before main()'s own clock
    roots = [{"root": str(tmp_path / "logs"), "age_days": 30}]

    code, result = run_main({"roots": roots, "_ansible_check_mode": True}, capsys)
    assert code == 0 and result["changed"] is True and old.exists()
    assert result_problems(result, check_mode=True) == []

    code, result = run_main({"roots": roots}, capsys)
    assert code == 0 and result["changed"] is True and not old.exists()
    assert result_problems(result) == []

    code, result = run_main({"roots": roots}, capsys)
    assert code == 0 and result["changed"] is False

    aged(tmp_path / "logs" / "old.log", 40)
    code, result = run_main({"roots": roots + [{"root": "/", "age_days": 30, "recurse": True}]}, capsys)
    assert code == 1
    assert result["msg"] == "log cleanup refused before any change: /: a top-level directory: refused"
    assert result["records"] == [make_record("/", "cleanup", "failed", "/: a top-level directory: refused")]
    assert (tmp_path / "logs" / "old.log").exists()


def test_a_directory_swapped_for_a_symlink_during_the_walk_is_not_followed(tmp_path):
    """The race the guide's find -delete loses: app/ looked at as a directory, then replaced by a link to elsewhere."""
    root, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    aged(root / "app" / "old.log", 40)
    victim = aged(elsewhere / "old.log", 40)
    entry = judge_root({"root": str(root), "age_days": 30, "recurse": True}, 1,
                       default_patterns=list(DEFAULT_PATTERNS), protected=[], missing_ok=False)
    seen = os.stat(root / "app", follow_symlinks=False)
    shutil.rmtree(root / "app")
    (root / "app").symlink_to(elsewhere, target_is_directory=True)
    done = Sweep()
    parent = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        descend(parent, "app", str(root / "app"), seen, seen.st_dev, entry, NOW, True, done)
    finally:
        os.close(parent)
    assert victim.exists()
    assert done.removed == [] and done.found == []
    assert done.unreadable and str(root / "app") in done.unreadable[0]


def test_a_root_that_no_longer_resolves_where_it_was_judged_is_not_cleaned(tmp_path):
    root, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    aged(root / "old.log", 40)
    victim = aged(elsewhere / "old.log", 40)
    link = tmp_path / "current"
    link.symlink_to(root, target_is_directory=True)
    entry = judge_root({"root": str(link), "age_days": 30}, 1, default_patterns=list(DEFAULT_PATTERNS),
                       protected=[], missing_ok=False)
    link.unlink()
    link.symlink_to(elsewhere, target_is_directory=True)
    done = sweep(entry, NOW, remove=True)
    assert victim.exists() and (root / "old.log").exists()
    assert "no longer resolves" in done.unreadable[0]
