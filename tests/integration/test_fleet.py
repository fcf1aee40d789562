"""A fleet of estates on the lab's services (lab/fleet.py): weekly.yml with forks, a rolling run that a broken
estate stops, and AWX job slices whose reports merge into one. Asserted on the services and on the reports."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import yaml

from lab import fleet
from tests.helpers import BIN, REPO, ansible_env, output_of, run

# k8s: the lab_services fixture starts the whole lab, its Kubernetes cluster included.
pytestmark = [pytest.mark.integration, pytest.mark.ansible, pytest.mark.k8s]

ESTATES = 10
FORKS = "10"
HOSTS = [f"fleet-{number:03d}" for number in range(1, ESTATES + 1)]


def pg_connect(lab_services, dbname="postgres"):
    pg = lab_services["postgres"]
    return psycopg.connect(host=pg["host"], port=pg["port"], user=pg["admin_user"], password=pg["admin_password"],
                           dbname=dbname, autocommit=True, sslmode=pg["sslmode"], sslrootcert=pg["ca_cert"])


def databases(lab_services) -> dict[str, int]:
    with pg_connect(lab_services) as conn:
        return dict(conn.execute("SELECT datname, oid FROM pg_database").fetchall())


def roles(lab_services) -> set[str]:
    with pg_connect(lab_services) as conn:
        return {row[0] for row in conn.execute("SELECT rolname FROM pg_roles").fetchall()}


def redis_client(lab_services, db):
    facts = lab_services["redis"]
    import redis  # noqa: PLC0415

    return redis.Redis(host=facts["host"], port=facts["port"], password=facts.get("password"), db=db)


# Longer than this module's tests take, even on a loaded machine: a lab key that expires sooner (the lab's sessions
# live 30 minutes) may go on its own while they run, and only the keys that outlive them say the fleet kept off.
LASTING_S = 1200


def lab_redis_lasting(lab_services) -> dict[int, set[bytes]]:
    """The lab estates' own Redis keys (dbs 0 and 1) that do not expire within LASTING_S: no fleet run may touch
    them. (Comparing DBSIZE failed once the suite ran slow enough for the lab's sessions to expire meanwhile.)"""
    lasting = {}
    for db in (0, 1):
        client = redis_client(lab_services, db)
        keys = list(client.scan_iter(count=1000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        lasting[db] = {key for key, ttl in zip(keys, pipe.execute()) if ttl == -1 or ttl > LASTING_S}
        assert lasting[db], f"db {db} has no key that outlives the tests: nothing to check"
    return lasting


def lab_redis_missing(lab_services, lasting: dict[int, set[bytes]]) -> dict[int, int]:
    """How many of those keys are gone, per db."""
    missing = {}
    for db, keys in lasting.items():
        pipe = redis_client(lab_services, db).pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        missing[db] = sum(1 for exists in pipe.execute() if not exists)
    return missing


@pytest.fixture(scope="module")
def fleet_dir(lab_services, tmp_path_factory):
    directory = tmp_path_factory.mktemp("fleet") / "fleet"
    before = SimpleNamespace(databases=set(databases(lab_services)), roles=roles(lab_services),
                             redis=lab_redis_lasting(lab_services))
    fleet.create_fleet(lab_services, ESTATES, directory, progress=lambda message: None)
    try:
        yield SimpleNamespace(path=directory, inventory=directory / "inventory", before=before)
    finally:
        fleet.drop_fleet(lab_services, directory, progress=lambda message: None)  # a no-op once the last test dropped it


def run_playbook(inventory: Path, playbook: str, reports: Path, *extra: str, env_extra: dict | None = None):
    env = ansible_env(MAINTENANCE_REPORT_DIR=str(reports), MAINTENANCE_LEAD="test-lead", **(env_extra or {}))
    # The lab's PostgreSQL is TLS-only: a task that lost the inventory's sslmode/ca_cert falls back to these and fails.
    env.update(PGSSLMODE="disable", PGSSLROOTCERT="/nonexistent/ca.crt")
    return run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / playbook),
                "-e", "maintenance_hosts=fleet", "-f", FORKS, *extra], env=env)


def only_report(reports: Path) -> dict:
    files = sorted(reports.glob("MAINT-*.json"))
    assert len(files) == 1, files
    assert files[0].with_suffix(".md").exists()
    return json.loads(files[0].read_text())


def test_create_again_with_the_same_count_reuses_what_exists(lab_services, fleet_dir):
    manifest = json.loads((fleet_dir.path / "fleet.json").read_text())
    oids = {name: oid for name, oid in databases(lab_services).items() if name.startswith("fleet_")}
    assert sorted(oids) == [host.replace("-", "_") for host in HOSTS]
    fleet.create_fleet(lab_services, ESTATES, fleet_dir.path, progress=lambda message: None)
    assert json.loads((fleet_dir.path / "fleet.json").read_text()) == manifest  # same passwords, same bucket
    assert {name: oid for name, oid in databases(lab_services).items() if name.startswith("fleet_")} == oids
    with pg_connect(lab_services, "fleet_001") as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 18000  # seeded once, not twice


# The fleet shares one Redis server far under its 80 % limit: these thresholds make every estate's routine
# evict, and the allow-list (the estate's own cache keys) is all that keeps it off the others' keys.
FORCE_EVICTION = ["-e", "redis_routine_max_ratio=0.01", "-e", "redis_routine_target_ratio=0.005",
                  "-e", "redis_routine_fail_if_still_over=false"]


@pytest.fixture(scope="module")
def weekly_report(fleet_dir, tmp_path_factory):
    reports = tmp_path_factory.mktemp("fleet-weekly-reports")
    result = run_playbook(fleet_dir.inventory, "weekly.yml", reports, *FORCE_EVICTION)
    assert result.returncode == 0, output_of(result)
    return only_report(reports)


def test_weekly_over_the_fleet_with_forks(lab_services, fleet_dir, weekly_report):
    report = weekly_report
    assert report["status"] == "COMPLETED", report["resolution"]
    assert list(report["hosts"]) == HOSTS
    assert {data["outcome"] for data in report["hosts"].values()} == {"completed"}
    s3 = fleet._s3(lab_services)
    cache = redis_client(lab_services, fleet.DEFAULT_REDIS_DB)
    for host in HOSTS:
        database = host.replace("-", "_")
        # Vacuumed: the dead tuples the seed left are gone, by a VACUUM of the estate's own.
        with pg_connect(lab_services, database) as conn:
            stats = dict((name, (dead, vacuums)) for name, dead, vacuums in conn.execute(
                "SELECT relname, n_dead_tup, vacuum_count FROM pg_stat_user_tables").fetchall())
        assert stats["readings"] == (0, 1) and stats["orders"] == (0, 1), (host, stats)
        # A verified backup set under the estate's own root, and its copy under the estate's own S3 prefix.
        sets = [path.parent for path in (fleet_dir.path / "state" / host / "backups").glob("*/verified.json")]
        assert len(sets) == 1 and (sets[0] / "manifest.json").exists(), (host, sets)
        keys = fleet.s3_keys(lab_services, fleet.bucket_name("fleet"), host)
        assert any(key.endswith(f"/{sets[0].name}/manifest.json") for key in keys), keys
        assert any(key.endswith(f"/{sets[0].name}/verified.json") for key in keys), keys
        # Each estate evicted its own cache keys and nothing else: its sessions stay.
        assert len(fleet.prefix_keys(cache, f"{host}:cache:")) == 0, host
        assert len(fleet.prefix_keys(cache, f"{host}:session:")) == fleet.SESSION_KEYS, host
        section = report["hosts"][host]
        evicted = next(e for e in section["entries"] if e["role"] == "redis_routine" and e["action"] == "evict")
        assert evicted["status"] == "done" and list(evicted["after"]["by_pattern"]) == [f"{host}:cache:*"]
        assert evicted["after"]["deleted"] == fleet.CACHE_KEYS
        verified = next(e for e in section["entries"] if e["role"] == "backup" and e["action"] == "verified")
        assert verified["status"] == "ok", verified
    # The lab's own estates (Redis dbs 0 and 1) were not touched.
    assert lab_redis_missing(lab_services, fleet_dir.before.redis) == {0: 0, 1: 0}


def broken_inventory(fleet_dir, host: str) -> Path:
    """A copy of the fleet's inventory where ``host``'s database password is wrong. Beside the original, so
    that its state directory (inventory_dir's parent) is the fleet's."""
    copy = fleet_dir.path / "inventory-broken"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(fleet_dir.inventory, copy)
    host_vars = copy / "host_vars" / f"{host}.yml"
    facts = yaml.safe_load(host_vars.read_text())
    facts["fleet_estate"]["password"] = "not-the-password"
    host_vars.write_text(yaml.safe_dump(facts))
    return copy


def client_sessions(lab_services) -> dict[str, int]:
    """Client sessions each estate's database has had (autovacuum's workers are not counted; read from the
    postgres database, which adds none there)."""
    with pg_connect(lab_services) as conn:
        rows = conn.execute("SELECT datname, sessions FROM pg_stat_database WHERE datname LIKE 'fleet%'").fetchall()
    return {name.replace("_", "-"): count for name, count in rows}


def test_a_broken_estate_stops_the_rolling_maintenance_and_the_report_says_so(lab_services, fleet_dir, tmp_path):
    inventory = broken_inventory(fleet_dir, "fleet-005")
    before = client_sessions(lab_services)
    # daily.yml: the same play and report as weekly's, at a third of the time.
    result = run_playbook(inventory, "daily.yml", tmp_path / "reports", "-e", "maintenance_serial=3",
                          "-e", "maintenance_max_fail_percentage=0",
                          env_extra={"ANSIBLE_SHOW_CUSTOM_STATS": "true", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    try:
        assert result.returncode == 2, output_of(result)
        report = only_report(tmp_path / "reports")
        assert list(report["hosts"]) == HOSTS  # every host of the play, also those never started
        outcomes = {host: data["outcome"] for host, data in report["hosts"].items()}
        assert outcomes == {**dict.fromkeys(HOSTS[:4], "completed"), "fleet-005": "failed", "fleet-006": "completed",
                            **dict.fromkeys(HOSTS[6:], "not run")}
        assert any("password authentication failed" in issue for issue in report["hosts"]["fleet-005"]["issues"])
        reason = ("play 'Maintenance checklist' stopped after batch 2 of 4 (serial 3, max_fail_percentage 0%): "
                  "fleet-005 failed in it")
        for host in HOSTS[6:]:
            assert report["hosts"][host]["outcome_reason"] == reason
        # Batch 2's other estates finished their checklist (Ansible counts them failed only at the stop).
        for host in ("fleet-004", "fleet-006"):
            assert "ran every task" in report["hosts"][host]["outcome_reason"]
            assert not report["hosts"][host]["issues"]
        assert report["plays"][0]["batches"] == [HOSTS[0:3], HOSTS[3:6]]
        assert report["status"] == "FAILED"
        assert report["resolution"] == (f"unresolved on fleet-005; fleet-007, fleet-008, fleet-009, fleet-010: "
                                        f"not run ({reason})")
        # What the maintenance_report role published (AWX keeps only this): the hosts that reached its always:
        # section, the failed one included; the hosts never started are only in the callback's report.
        stats_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("RUN: "))
        published = json.loads(stats_line.strip()[len("RUN: "):])["maintenance_report"]
        assert sorted(published) == HOSTS[:6]
        # On the services: no session ever reached the databases of the estates whose batch never started.
        # (A session's statistics reach pg_stat_database as its backend exits, a moment after the run ends.)
        ran = [host for host in HOSTS[:6] if host != "fleet-005"]
        deadline = time.monotonic() + 10
        while True:
            after = client_sessions(lab_services)
            touched = [host for host in HOSTS if after[host] > before[host]]
            if touched == ran or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert touched == ran, (before, after)
    finally:
        shutil.rmtree(inventory)


def test_slices_as_awx_makes_them_merge_into_one_complete_report(fleet_dir, weekly_report, tmp_path):
    slices = fleet.awx_slices(HOSTS, 3)
    assert slices == [HOSTS[0::3], HOSTS[1::3], HOSTS[2::3]]
    listed = run([str(BIN / "python"), "-m", "lab.fleet", "slices", "--count", "3", "--dir", str(fleet_dir.path)])
    assert listed.stdout.split() == [",".join(hosts) for hosts in slices], output_of(listed)
    # The slices run at the same time, as AWX runs a sliced job's jobs, each writing its own report.
    jobs = []
    for number, hosts in enumerate(slices, start=1):
        env = ansible_env(MAINTENANCE_REPORT_DIR=str(tmp_path / f"slice{number}"), MAINTENANCE_LEAD="test-lead",
                          PGSSLMODE="disable", PGSSLROOTCERT="/nonexistent/ca.crt")
        argv = [str(BIN / "ansible-playbook"), "-i", str(fleet_dir.inventory), str(REPO / "playbooks" / "weekly.yml"),
                "-e", "maintenance_hosts=fleet", "-f", FORKS, "--limit", fleet.limit_argument(hosts)]
        jobs.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True))
    outputs = [job.communicate(timeout=900)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0, 0], "\n".join(output[-3000:] for output in outputs)
    files = [next((tmp_path / f"slice{number}").glob("MAINT-*.json")) for number in (1, 2, 3)]
    for path, hosts in zip(files, slices):
        assert sorted(json.loads(path.read_text())["hosts"]) == hosts

    merged_dir = tmp_path / "merged"
    result = run([str(BIN / "python"), "-m", "lab.fleet", "merge", "--dir", str(fleet_dir.path), "--out",
                  str(merged_dir), *map(str, files)])
    assert result.returncode == 0, output_of(result)
    merged = only_report(merged_dir)
    # One complete report: every host exactly once, as the unsliced run reports them.
    assert list(merged["hosts"]) == list(weekly_report["hosts"]) == HOSTS
    assert merged["status"] == weekly_report["status"] == "COMPLETED"
    assert sorted(one["hosts"] for one in merged["slices"]) == sorted(slices)
    for host in HOSTS:
        whole, sliced = weekly_report["hosts"][host], merged["hosts"][host]
        assert sliced["outcome"] == whole["outcome"] == "completed"
        assert {(e["role"], e["action"]) for e in sliced["entries"]} == \
            {(e["role"], e["action"]) for e in whole["entries"]}, host
    assert "- Slices: " in (merged_dir / f"{merged['maintenance_id']}.md").read_text()

    # A slice given twice, or one left out, is refused with the hosts named.
    twice = run([str(BIN / "python"), "-m", "lab.fleet", "merge", "--dir", str(fleet_dir.path), "--out",
                 str(tmp_path / "bad"), str(files[0]), *map(str, files)])
    assert twice.returncode == 1 and "host(s) reported by more than one run: fleet-001 in " in twice.stderr, \
        output_of(twice)
    missing = run([str(BIN / "python"), "-m", "lab.fleet", "merge", "--dir", str(fleet_dir.path), "--out",
                   str(tmp_path / "bad"), str(files[0]), str(files[1])])
    assert missing.returncode == 1, output_of(missing)
    assert "expected host(s) missing from every report: fleet-003, fleet-006, fleet-009" in missing.stderr
    assert not (tmp_path / "bad").exists()


def test_drop_removes_exactly_what_create_made(lab_services, fleet_dir):
    dropped = fleet.drop_fleet(lab_services, fleet_dir.path, progress=lambda message: None)
    assert dropped == HOSTS
    assert set(databases(lab_services)) == fleet_dir.before.databases
    assert roles(lab_services) == fleet_dir.before.roles
    assert fleet.prefix_keys(redis_client(lab_services, fleet.DEFAULT_REDIS_DB), "fleet-") == []
    buckets = {entry["Name"] for entry in fleet._s3(lab_services).list_buckets().get("Buckets", [])}
    assert fleet.bucket_name("fleet") not in buckets
    assert not fleet_dir.path.exists()
    assert lab_redis_missing(lab_services, fleet_dir.before.redis) == {0: 0, 1: 0}
