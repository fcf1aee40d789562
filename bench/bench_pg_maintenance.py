"""pg_maintenance's bloat-driven vacuum against the guides' way, on a real PostgreSQL 15.

A database of 200 tables where 20 are bloated (autovacuum off, rows updated and
deleted). Every trial starts from the same state: a fresh copy of a clean
template database, then the same UPDATE/DELETE on the same 20 tables, counted by
the statistics collector before anything is timed.

1. The guide's weekly ``VACUUM ANALYZE;`` of the whole database, against our
   vacuum_analyze selected by measured dead tuples (the module's logic called
   in-process: the Ansible process start is the same for both ways and left out),
   with ``jobs: 2`` as the weekly playbook runs it; also printed with ``jobs: 1``.
   Goal: ours <= 0.3x.
2. Our vacuum_analyze of the same 20 named tables with ``jobs: 2``, against
   ``vacuumdb --jobs=2 --analyze -t ...`` (the real binary, its start included).
   Goal: ours <= 1.05x.

Prints medians, ratios and whether the goals hold; exits 0 either way.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

import psycopg  # noqa: E402

from ansible_collections.streamops.maintenance.plugins.module_utils.pg_runner import (  # noqa: E402
    run_pg_maintenance,
)
from lab.harness.postgres import PostgresServer, postgres_bindir  # noqa: E402

TABLES = 200
BLOATED = 20
CLEAN_ROWS = 20000
BLOATED_ROWS = 40000
TRIALS = 5
TEMPLATE = "bench_template"


def build_template(conninfo: dict) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        admin.execute(f"CREATE DATABASE {TEMPLATE}")
    with psycopg.connect(**{**conninfo, "dbname": TEMPLATE}, autocommit=True) as conn:
        for number in range(TABLES):
            rows = BLOATED_ROWS if number < BLOATED else CLEAN_ROWS
            conn.execute(f"CREATE TABLE t{number:03d} (id bigserial PRIMARY KEY, account int, amount numeric, "
                         "note text) WITH (autovacuum_enabled = false)")
            conn.execute(f"INSERT INTO t{number:03d} (account, amount, note) "
                         f"SELECT g % 97, g, repeat('x', 60) FROM generate_series(1, {rows}) g")
        conn.execute("VACUUM ANALYZE")


def fresh_trial_database(conninfo: dict, name: str) -> dict:
    """A copy of the clean template with the same 20 tables bloated, counted by pg_stat."""
    with psycopg.connect(**conninfo, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    trial = {**conninfo, "dbname": name}
    with psycopg.connect(**trial, autocommit=True) as conn:
        # Statistics are per database: give every table its analyze, as on a live system.
        conn.execute("ANALYZE")
        for number in range(BLOATED):
            conn.execute(f"UPDATE t{number:03d} SET amount = amount + 1")
            conn.execute(f"DELETE FROM t{number:03d} WHERE id % 4 = 0")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counted = conn.execute("SELECT count(*) FROM pg_stat_user_tables WHERE n_dead_tup > 10000").fetchone()[0]
            if counted == BLOATED:
                break
            time.sleep(0.2)
        conn.execute("CHECKPOINT")
    return trial


def drop(conninfo: dict, name: str) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")


def module_params(trial: dict, **extra) -> dict:
    params = {
        "login_host": trial["host"], "login_port": trial["port"], "login_user": trial["user"],
        "login_password": trial["password"], "database": trial["dbname"], "login_unix_socket": None,
        "sslmode": None, "ca_cert": None, "ssl_cert": None, "ssl_key": None, "connect_timeout": 10,
        "windows": None, "window": None, "blackouts": None, "timezone": "UTC", "emergency": None, "now": None,
        "tables": None, "schemas": None, "exclude_schemas": None, "min_dead_tuples": None,
        "min_dead_ratio": None, "min_bloat_ratio": None, "refresh_statistics": True,
        "stale_statistics_ratio": 0.2, "jobs": 1, "concurrently": True, "lock_timeout": 5000,
        "statement_timeout": 3600000, "initial_throughput_mb_s": 25.0, "long_query_seconds": 300.0,
        "top_statements": 10, "max_connections_percent": None, "settings": None,
    }
    params.update(extra)
    return params


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def guide_vacuum_everything(trial: dict) -> None:
    with psycopg.connect(**trial, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def ours_by_threshold(trial: dict, jobs: int = 1) -> None:
    result = run_pg_maintenance(module_params(trial, operation="vacuum_analyze", jobs=jobs), check_mode=False)
    done = [r["name"] for r in result["records"] if r["status"] == "done"]
    assert len(done) == BLOATED, (len(done), result["msg"])


def ours_by_threshold_jobs2(trial: dict) -> None:
    ours_by_threshold(trial, jobs=2)


def ours_named_jobs2(trial: dict) -> None:
    names = [f"t{n:03d}" for n in range(BLOATED)]
    result = run_pg_maintenance(module_params(trial, operation="vacuum_analyze", tables=names, jobs=2),
                                check_mode=False)
    assert sum(r["status"] == "done" for r in result["records"]) == BLOATED, result["msg"]


def vacuumdb_named_jobs2(trial: dict) -> None:
    vacuumdb = shutil.which("vacuumdb", path=str(postgres_bindir())) or "vacuumdb"
    argv = [vacuumdb, "--jobs=2", "--analyze", "-h", trial["host"], "-p", str(trial["port"]),
            "-U", trial["user"], "-d", trial["dbname"]]
    for number in range(BLOATED):
        argv += ["-t", f"t{number:03d}"]
    env = dict(os.environ, PGPASSWORD=trial["password"])  # never on the command line
    subprocess.run(argv, env=env, check=True, capture_output=True)


def compare(conninfo: dict, label: str, baseline, ours, goal: float) -> None:
    base_times, our_times = [], []
    for trial_number in range(TRIALS):
        # Alternate which goes first so neither always meets a warmer cache.
        order = [("base", baseline), ("ours", ours)] if trial_number % 2 == 0 else [("ours", ours), ("base", baseline)]
        for kind, action in order:
            trial = fresh_trial_database(conninfo, f"bench_{kind}")
            seconds = timed(lambda trial=trial, action=action: action(trial))
            (base_times if kind == "base" else our_times).append(seconds)
            drop(conninfo, f"bench_{kind}")
    base, mine = statistics.median(base_times), statistics.median(our_times)
    ratio = mine / base
    verdict = "meets" if ratio <= goal else "MISSES"
    print(f"{label}\n  baseline median {base:.3f}s {['%.3f' % t for t in base_times]}\n"
          f"  ours     median {mine:.3f}s {['%.3f' % t for t in our_times]}\n"
          f"  ratio {ratio:.2f}x (goal <= {goal}x: {verdict})", flush=True)


def main() -> int:
    server = PostgresServer(settings={"autovacuum": "off"})
    info = server.start()
    try:
        conninfo = info.conninfo()
        started = time.monotonic()
        build_template(conninfo)
        print(f"PostgreSQL {info.version}: {TABLES} tables ({BLOATED} bloated: {BLOATED_ROWS} rows, half updated, "
              f"a quarter deleted; the rest {CLEAN_ROWS} rows), template built in "
              f"{time.monotonic() - started:.1f}s; {TRIALS} trials each, fresh copy per run", flush=True)
        compare(conninfo, "weekly vacuum: guide 'VACUUM ANALYZE;' of all 200 tables vs ours by measured dead "
                "tuples, jobs: 2 (as the weekly playbook runs it on 2 cores)",
                guide_vacuum_everything, ours_by_threshold_jobs2, 0.3)
        compare(conninfo, "  the same with ours on one connection (jobs: 1), for reference",
                guide_vacuum_everything, ours_by_threshold, 0.3)
        compare(conninfo, "the 20 bloated tables: vacuumdb --jobs=2 --analyze -t ... vs ours jobs: 2",
                vacuumdb_named_jobs2, ours_named_jobs2, 1.05)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
