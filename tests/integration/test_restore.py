"""pg_restore against the harness's PostgreSQL, with the writers on the real Docker engine (a compose project) or the
lab cluster (a Deployment).

Every assertion reads what the server, the engine or the cluster holds afterwards: the live database's rows and
checksums, which databases exist, the containers' start times, the Deployment's replicas, the files on disk.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import table_fingerprint
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup, pg_restore
from lab.harness.compose_app import ComposeApp

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

# A daily window of 23h59m with `now` inside it (the real clock names the sets and databases).
INSIDE = {"windows": [{"name": "daily", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}],
          "now": "2026-12-06T12:00:00Z"}
OUTSIDE = {"windows": [{"name": "sunday", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}],
           "now": "2026-12-09T12:00:00Z"}
TABLES = ["public.vital_signs", "public.alarms"]
SCHEMA = """
CREATE TABLE patients (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE vital_signs (id bigserial PRIMARY KEY, patient_id int REFERENCES patients, heart_rate int,
                          recorded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE alarms (id bigserial PRIMARY KEY, patient_id int REFERENCES patients, level text, raised_at timestamptz);
INSERT INTO patients SELECT g, 'patient ' || g FROM generate_series(1, 200) g;
INSERT INTO vital_signs (patient_id, heart_rate, recorded_at)
  SELECT 1 + g % 200, 50 + g % 80, timestamptz '2026-12-01' + g * interval '1 second' FROM generate_series(1, 60000) g;
INSERT INTO alarms (patient_id, level, raised_at)
  SELECT 1 + g % 200, CASE WHEN g % 7 = 0 THEN 'critical' ELSE 'warning' END, timestamptz '2026-12-01' + g * interval '1 minute'
  FROM generate_series(1, 3000) g;
CREATE INDEX vital_signs_recorded_at ON vital_signs (recorded_at);
"""


def run(module, capsys, **args):
    """The module's result, failed or not; every result keeps the record contract (docs/records.md)."""
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == [], result
    return result.get("failed", False), result


def pg_args(conninfo):
    return {"login_host": conninfo["host"], "login_port": conninfo["port"], "login_user": conninfo["user"],
            "login_password": conninfo["password"], "database": conninfo["dbname"]}


def admin(pg_server):
    return psycopg.connect(**pg_server.conninfo(), autocommit=True)


def databases(pg_server):
    with admin(pg_server) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def database_acl(pg_server, name):
    with admin(pg_server) as conn:
        return sorted(conn.execute("SELECT datacl::text[] FROM pg_database WHERE datname = %s", (name,)).fetchone()[0])


def fingerprints(conninfo):
    """(rows, checksum) of each critical table, as the server holds it now."""
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        return {table: table_fingerprint(conn, *table.split(".")) for table in TABLES}


def add_rows(conninfo, count=500):
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO vital_signs (patient_id, heart_rate) SELECT 1, 70 FROM generate_series(1, %s)",
                     (count,))
        conn.execute("INSERT INTO alarms (patient_id, level, raised_at) VALUES (1, 'critical', now())")


@pytest.fixture
def live(pg_server):
    """A live database of its own (settings, ACL and a comment of its own), dropped with whatever the test left."""
    name = f"vs_{uuid.uuid4().hex[:10]}"
    with admin(pg_server) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"COMMENT ON DATABASE {name} IS 'VitalStream production'")
        conn.execute(f"ALTER DATABASE {name} SET work_mem = '8MB'")
        conn.execute(f"ALTER DATABASE {name} SET search_path = \"$user\", public")
        conn.execute(f"ALTER DATABASE {name} CONNECTION LIMIT 50")
        conn.execute(f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC")
    with psycopg.connect(**pg_server.conninfo(name), autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield pg_server.conninfo(name)
    with admin(pg_server) as conn:
        for (other,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                     (f"{name}%",)).fetchall():
            conn.execute(f'DROP DATABASE "{other}" WITH (FORCE)')


@pytest.fixture
def verified_set(live, tmp_path, capsys):
    """A backup set of ``live``, verified by backup_verify with a restore test: (root, set id, manifest)."""
    root = tmp_path / "backups"
    failed, backup = run(pg_backup, capsys, **pg_args(live), backup_root=str(root), parts=["full", "critical_data"],
                         critical_tables=TABLES)
    assert not failed, backup["msg"]
    failed, verified = run(backup_verify, capsys, **pg_args(live), path=backup["path"], restore_test=True,
                           scratch_database=f"{live['dbname']}_scratch")
    assert not failed and verified["verified"], verified["msg"]
    return root, backup["backup_id"], json.loads((Path(backup["path"]) / "manifest.json").read_text())


@pytest.fixture(scope="module")
def writers_app(docker_engine, lab_image, tmp_path_factory):
    """The VitalStream compose project (api-gateway, alarm-engine), up for this file's tests."""
    app = ComposeApp(docker_engine, lab_image, project=f"vs-restore-{uuid.uuid4().hex[:6]}",
                     state_dir=tmp_path_factory.mktemp("restore-compose"))
    try:
        app.up()
        yield app
    finally:
        app.down()


def started_at(app=None, *, docker_host=None, project=None):
    """Each writer container's state and start time, from the engine (of a ComposeApp, or a host and project)."""
    import docker  # noqa: PLC0415

    docker_host, project = (app.engine.host, app.project) if app is not None else (docker_host, project)
    client = docker.DockerClient(base_url=docker_host)
    try:
        return {c.name: (c.attrs["State"]["Status"], c.attrs["State"]["StartedAt"])
                for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})}
    finally:
        client.close()


def compose_writers(app):
    return {"compose": {"project": app.project, "services": ["api-gateway", "alarm-engine"], "stop_timeout": 1},
            "start_timeout": 60}


def restore_args(live, root, app, **extra):
    return {**pg_args(live), "backup_root": str(root), "writers": compose_writers(app),
            "docker_host": app.engine.host, "critical_tables": TABLES, **INSIDE, **extra}


def held_sets(root):
    return sorted(p.parent.name for p in Path(root).glob("*/hold.json"))


@pytest.mark.docker
def test_restore_gives_the_sets_rows_keeps_the_replaced_database_and_restarts_the_writers(
        pg_server, live, verified_set, writers_app, capsys):
    root, set_id, manifest = verified_set
    add_rows(live)
    before_rows, before_acl = fingerprints(live), database_acl(pg_server, live["dbname"])
    assert before_rows["public.vital_signs"][0] == manifest["row_counts"]["public.vital_signs"] + 500
    containers = started_at(writers_app)
    assert {state for state, _started in containers.values()} == {"running"}

    failed, result = run(pg_restore, capsys, **restore_args(live, root, writers_app))
    assert not failed, result["msg"]

    # The live database holds exactly the set's rows and content, with its settings, ACL, limit and comment.
    assert fingerprints(live) == {t: (manifest["row_counts"][t], manifest["table_checksums"][t]) for t in TABLES}
    with admin(pg_server) as conn:
        row = conn.execute("SELECT shobj_description(d.oid, 'pg_database'), d.datconnlimit, d.datacl::text[], "
                           "(SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0) "
                           "FROM pg_database d WHERE datname = %s", (live["dbname"],)).fetchone()
    comment, limit, acl, settings = row
    assert comment == "VitalStream production" and limit == 50
    assert sorted(acl) == before_acl and not any(e.startswith("=") and "c" in e.split("/")[0] for e in acl)
    assert sorted(settings) == sorted(['work_mem=8MB', 'search_path="$user", public'])
    # Analyzed before it took traffic: the planner has statistics of the restored tables.
    with psycopg.connect(**live, autocommit=True) as conn:
        analyzed = dict(conn.execute("SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables").fetchall())
    assert analyzed["vital_signs"] and analyzed["alarms"], analyzed
    # The replaced database is kept, with the rows added after the backup.
    replaced = result["replaced_database"]
    assert replaced.startswith(f"{live['dbname']}__replaced_") and replaced in databases(pg_server)
    assert fingerprints({**live, "dbname": replaced}) == before_rows
    assert not [d for d in databases(pg_server) if "__restore_" in d]
    # The safety set is on disk, held, and holds the rows as they were before the restore.
    safety = result["safety_set"]
    assert held_sets(root) == [safety]
    safety_manifest = json.loads((root / safety / "manifest.json").read_text())
    assert safety_manifest["row_counts"] == {t: before_rows[t][0] for t in TABLES}
    # The writers were stopped and started again: running, each with a new start time.
    after = started_at(writers_app)
    assert {state for state, _started in after.values()} == {"running"}
    assert all(after[name][1] != containers[name][1] for name in containers)
    assert result["msg"].count(safety) >= 2 and replaced in result["msg"]

    # Accepting drops the replaced database and releases the hold; accepting again changes nothing.
    accept = {**pg_args(live), "backup_root": str(root), "operation": "accept", "safety_set": safety}
    failed, planned = run(pg_restore, capsys, **accept, drop_replaced=True, _ansible_check_mode=True)
    assert not failed and planned["changed"] and replaced in databases(pg_server) and held_sets(root) == [safety]
    failed, accepted = run(pg_restore, capsys, **accept, drop_replaced=True)
    assert not failed and accepted["changed"], accepted["msg"]
    assert replaced not in databases(pg_server) and held_sets(root) == []
    failed, again = run(pg_restore, capsys, **accept, drop_replaced=True)
    assert not failed and not again["changed"]


@pytest.mark.docker
def test_a_damaged_set_is_refused_before_anything_stops(pg_server, live, verified_set, writers_app, capsys):
    root, set_id, _manifest = verified_set
    add_rows(live)
    before_rows, containers, before_dbs = fingerprints(live), started_at(writers_app), databases(pg_server)
    dump = root / set_id / "full.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))

    failed, result = run(pg_restore, capsys, **restore_args(live, root, writers_app, backup_set=set_id))
    assert failed and "checksums" in result["msg"] and "nothing was stopped" in result["msg"]
    assert started_at(writers_app) == containers  # never stopped
    assert fingerprints(live) == before_rows and databases(pg_server) == before_dbs
    assert sorted(p.name for p in root.iterdir()) == [set_id]  # no safety set either


@pytest.mark.docker
@pytest.mark.parametrize("fault", ["pg_restore killed", "sql check fails"])
def test_a_failure_half_way_leaves_the_old_database_serving(pg_server, live, verified_set, writers_app, capsys,
                                                            fault):
    root, _set_id, _manifest = verified_set
    add_rows(live)
    before_rows, containers = fingerprints(live), started_at(writers_app)
    extra = {}
    killed: list[int] = []
    stop = threading.Event()
    if fault == "sql check fails":
        extra["sql_checks"] = [{"name": "a patient 9999", "sql": "SELECT count(*) FROM patients WHERE id = 9999"}]
    else:
        def kill_the_restore():
            # The pg_restore backend of the new database, as soon as it shows in pg_stat_activity.
            with admin(pg_server) as conn:
                while not stop.is_set() and not killed:
                    for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname LIKE %s "
                                               "AND application_name = 'streamops.maintenance' AND pid <> "
                                               "pg_backend_pid()", (f"{live['dbname']}__restore_%",)).fetchall():
                        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        killed.append(pid)
                    time.sleep(0.002)
        threading.Thread(target=kill_the_restore, daemon=True).start()
    try:
        failed, result = run(pg_restore, capsys, **restore_args(live, root, writers_app, **extra))
    finally:
        stop.set()
    assert failed, result["msg"]
    assert "untouched and still serving" in result["msg"] and "writers were started again" in result["msg"]
    if fault == "pg_restore killed":
        assert killed
    # The old database serves its rows, the new one is gone, the safety set's hold released, writers restarted.
    assert fingerprints(live) == before_rows
    assert not [d for d in databases(pg_server) if d.startswith(f"{live['dbname']}__")]
    assert held_sets(root) == []
    after = started_at(writers_app)
    assert {state for state, _started in after.values()} == {"running"}
    assert all(after[name][1] != containers[name][1] for name in containers)


@pytest.mark.docker
def test_an_unmarked_set_is_restored_only_once_it_verifies_now(pg_server, live, verified_set, writers_app, capsys):
    root, set_id, manifest = verified_set
    (root / set_id / "verified.json").unlink()  # as if the nightly restore test never ran
    add_rows(live)
    before_rows, containers = fingerprints(live), started_at(writers_app)
    args = restore_args(live, root, writers_app, backup_set=set_id)
    failed, refused = run(pg_restore, capsys, **args)
    assert failed and "verify_unmarked" in refused["msg"] and started_at(writers_app) == containers

    # A failing SQL check fails the verification: nothing stops, no mark, no scratch database left.
    failed, result = run(pg_restore, capsys, **args, verify_unmarked=True,
                         sql_checks=[{"name": "a patient 9999", "sql": "SELECT count(*) FROM patients WHERE id = 9999"}])
    assert failed and "was not verified" in result["msg"] and "nothing was stopped" in result["msg"], result["msg"]
    assert started_at(writers_app) == containers and fingerprints(live) == before_rows
    assert not (root / set_id / "verified.json").exists()
    assert not [d for d in databases(pg_server) if d.startswith(f"{live['dbname']}__")]

    failed, result = run(pg_restore, capsys, **args, verify_unmarked=True)
    assert not failed, result["msg"]
    assert (root / set_id / "verified.json").is_file()
    assert fingerprints(live) == {t: (manifest["row_counts"][t], manifest["table_checksums"][t]) for t in TABLES}
    assert not [d for d in databases(pg_server) if "__verify_" in d]


@pytest.mark.docker
def test_a_second_restore_of_the_same_database_is_refused_naming_the_first(
        pg_server, live, verified_set, writers_app, capsys):
    root, _set_id, _manifest = verified_set
    add_rows(live)
    before_rows, containers, before_dbs = fingerprints(live), started_at(writers_app), databases(pg_server)
    key = f"streamops.maintenance pg_restore {live['dbname']}"
    # The first restore's session, as pg_restore holds it for its whole run.
    with admin(pg_server) as first:
        first.execute("SELECT set_config('application_name', %s, false)", (key,))
        first.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        pid = first.info.backend_pid
        failed, result = run(pg_restore, capsys, **restore_args(live, root, writers_app))
    assert failed and f"another restore of {live['dbname']}" in result["msg"] and f"pid {pid}" in result["msg"]
    assert "nothing was done" in result["msg"], result["msg"]
    assert started_at(writers_app) == containers and fingerprints(live) == before_rows
    assert databases(pg_server) == before_dbs and held_sets(root) == []


@pytest.mark.docker
def test_check_mode_returns_the_plan_and_changes_nothing(pg_server, live, verified_set, writers_app, capsys):
    root, set_id, manifest = verified_set
    add_rows(live)
    before_rows, containers, before_dbs = fingerprints(live), started_at(writers_app), databases(pg_server)
    failed, result = run(pg_restore, capsys, **restore_args(live, root, writers_app), _ansible_check_mode=True)
    assert not failed and result["changed"], result["msg"]
    plan = result["plan"]
    assert plan["set"]["id"] == set_id and plan["set"]["row_counts"] == manifest["row_counts"]
    assert plan["database"]["row_counts"] == {t: before_rows[t][0] for t in TABLES}
    assert sorted(w["name"] for w in plan["writers"]["running"]) == sorted(f"container {n}" for n in containers)
    assert plan["estimate"]["seconds"] > 0 and "restore test" in plan["estimate"]["basis"]
    assert {r["action"] for r in result["records"] if r["status"] == "planned"} == {
        "safety_backup", "stop_writer", "restore_database", "swap"}
    assert fingerprints(live) == before_rows and databases(pg_server) == before_dbs
    assert started_at(writers_app) == containers and sorted(p.name for p in root.iterdir()) == [set_id]


def test_outside_the_window_without_approval_nothing_is_done(pg_server, live, verified_set, capsys):
    root, set_id, _manifest = verified_set
    before_rows, before_dbs = fingerprints(live), databases(pg_server)
    args = {**pg_args(live), "backup_root": str(root), "critical_tables": TABLES,
            "writers": {"compose": {"project": "vs-not-contacted", "services": ["api-gateway"]}}}
    failed, result = run(pg_restore, capsys, **args, **OUTSIDE)
    assert failed and result["msg"].startswith(f"refusing to restore {live['dbname']}")
    assert result["window"]["allowed"] is False
    failed, neither = run(pg_restore, capsys, **args)
    assert failed and "emergency" in neither["msg"] and "windows" in neither["msg"]
    assert fingerprints(live) == before_rows and databases(pg_server) == before_dbs
    assert sorted(p.name for p in root.iterdir()) == [set_id]


def test_bad_input_is_named_before_anything_is_done(pg_server, live, verified_set, capsys):
    root, set_id, _manifest = verified_set
    approval = {"emergency": {"approved_by": "cto", "reason": "test", "ticket": "INC-1"}}
    args = {**pg_args(live), "backup_root": str(root), **approval,
            "writers": {"compose": {"project": "vs-not-contacted", "services": ["api-gateway"]}}}
    (root / set_id / "verified.json").unlink()
    cases = [
        ({"backup_set": set_id}, "is not verified"),
        ({"backup_set": "latest"}, "no verified backup set"),
        ({"backup_set": "../etc"}, "backup_set"),
        ({"backup_set": "vitalstream-20990101T000000Z"}, "does not exist"),
        ({"backup_root": "backups"}, "must be an absolute path"),
        ({"database": "postgres"}, "is the maintenance database"),
        ({"writers": {"compose": {"project": "x", "services": ["a"]},
                      "kubernetes": {"namespace": "n", "deployments": ["d"]}}}, "exactly one of compose or kubernetes"),
        ({"writers": {"compose": {"project": "x", "services": ["a"], "service": "b"}}}, "unknown key(s) service"),
    ]
    for change, words in cases:
        failed, result = run(pg_restore, capsys, **{**args, **change})
        assert failed and words in result["msg"], (change, result["msg"])
    assert sorted(p.name for p in root.iterdir()) == [set_id]
    assert not [d for d in databases(pg_server) if d.startswith(f"{live['dbname']}__")]


@pytest.mark.k8s
def test_kubernetes_writers_are_scaled_to_zero_and_back(pg_server, live, verified_set, k8s_cluster, k8s_namespace,
                                                        capsys):
    root, _set_id, manifest = verified_set
    k8s_cluster.kubectl("create", "deployment", "vitals-writer", f"--image={k8s_cluster.image}", "--replicas=2",
                        "--", "sleep", "3600", namespace=k8s_namespace)
    k8s_cluster.kubectl("patch", "deployment", "vitals-writer", "--type=json", "-p", json.dumps([
        {"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicy", "value": "Never"},
        {"op": "add", "path": "/spec/template/spec/terminationGracePeriodSeconds", "value": 1}]),
        namespace=k8s_namespace)
    k8s_cluster.kubectl("rollout", "status", "deployment/vitals-writer", "--timeout=120s", namespace=k8s_namespace,
                        timeout=130)
    add_rows(live)
    args = {**pg_args(live), "backup_root": str(root), "critical_tables": TABLES, **INSIDE,
            "kubeconfig": k8s_cluster.kubeconfig,
            "writers": {"kubernetes": {"namespace": k8s_namespace, "selector": "app=vitals-writer"},
                        "start_timeout": 120}}
    failed, result = run(pg_restore, capsys, **args)
    assert not failed, result["msg"]
    stopped = [r for r in result["records"] if r["action"] == "stop_writer"]
    assert [(r["status"], r["before"]["replicas"]) for r in stopped] == [("done", 2)]
    deployment = json.loads(k8s_cluster.kubectl("get", "deployment", "vitals-writer", "-o", "json",
                                                namespace=k8s_namespace))
    assert deployment["spec"]["replicas"] == 2 and deployment["status"].get("readyReplicas") == 2
    assert "streamops.io/restore-replicas" not in (deployment["metadata"].get("annotations") or {})
    assert fingerprints(live) == {t: (manifest["row_counts"][t], manifest["table_checksums"][t]) for t in TABLES}


@pytest.mark.ansible
@pytest.mark.parametrize("hosts", [None, "all", "vitalstream-*", "nosuch"])
def test_the_playbook_refuses_to_run_without_one_named_host_or_estate(hosts):
    from tests.helpers import BIN, REPO, ansible_env, output_of  # noqa: PLC0415
    from tests.helpers import run as run_command  # noqa: PLC0415

    extra = ["-e", f"restore_hosts={hosts}"] if hosts else []
    result = run_command([str(BIN / "ansible-playbook"), "-i", str(REPO / "inventory" / "lab"),
                          str(REPO / "playbooks" / "restore.yml"), *extra], env=ansible_env())
    assert result.returncode != 0, output_of(result)
    assert "name the one host or estate it restores" in result.stdout, output_of(result)
    # The first play failed: no play of the checklist ran on any estate host.
    recap = result.stdout.split("PLAY RECAP")[-1]
    assert "localhost" in recap and "stream-lab" not in recap and "Maintenance checklist" not in result.stdout


@pytest.mark.ansible
@pytest.mark.docker
def test_the_playbook_in_check_mode_shows_the_plan_of_one_estate_and_changes_nothing(tmp_path, lab_services,
                                                                                     capsys):
    from tests.helpers import BIN, REPO, ansible_env, lab_inventory, output_of  # noqa: PLC0415
    from tests.helpers import run as run_command  # noqa: PLC0415
    from tests.integration import estate_state  # noqa: PLC0415

    inventory = lab_inventory(tmp_path, lab_services)
    pg = lab_services["postgres"]
    login = {"login_host": pg["host"], "login_port": pg["port"], "login_user": pg["admin_user"],
             "login_password": pg["admin_password"], "database": pg["estates"]["vitalstream"]["database"],
             "sslmode": pg["sslmode"], "ca_cert": pg["ca_cert"]}
    # A verified set where the lab inventory's backup_root is (the backup role would have written it).
    root = tmp_path / "lab-state" / "backups" / "vitalstream"
    failed, backup = run(pg_backup, capsys, **login, backup_root=str(root), parts=["full", "critical_data"],
                         critical_tables=["vital_signs", "alarms"])
    assert not failed, backup["msg"]
    failed, verified = run(backup_verify, capsys, **login, path=backup["path"], restore_test=True,
                           scratch_database="streamops_verify_restore_playbook")
    assert not failed and verified["verified"], verified["msg"]
    writers = {"docker_host": lab_services["compose"]["docker_host"], "project": lab_services["compose"]["project"]}
    before, containers = estate_state.snapshot(lab_services, tmp_path / "lab-state"), started_at(**writers)

    result = run_command([str(BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "restore.yml"),
                          "--check", "-e", "restore_hosts=vitalstream-lab"],
                         env=ansible_env(MAINTENANCE_REPORT_DIR=str(tmp_path / "reports"), MAINTENANCE_LEAD="test"))
    assert result.returncode == 0, output_of(result)
    assert estate_state.snapshot(lab_services, tmp_path / "lab-state") == before
    assert started_at(**writers) == containers
    report = json.loads(next((tmp_path / "reports").glob("MAINT-*.json")).read_text())
    # The estate named; not the guard play's localhost, which only checked restore_hosts.
    assert set(report["hosts"]) == {"vitalstream-lab"}
    entries = [e for e in report["hosts"]["vitalstream-lab"]["entries"] if e["role"] == "restore"]
    planned = {e["action"] for e in entries if e["status"] == "planned"}
    assert planned == {"safety_backup", "stop_writer", "restore_database", "swap"}, entries
    assert any(e["action"] == "restore_source" and backup["backup_id"] in e["name"] for e in entries), entries
