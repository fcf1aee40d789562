"""Campaign class ``secrets``: every playbook users run, at -v0 and -vvv, through ansible-runner as AWX runs it, with
known PostgreSQL, Redis and S3 secrets; none of them may show anywhere the run writes.

The estate is one host (``secrets-lab``, a VitalStream-shaped estate: backup parts full, critical_data and
redis_rdb) on servers of this module: its own PostgreSQL (``log_connections`` on, so its log proves each login), its
own Redis with a password, a bucket on the lane's S3 endpoint with a secret key of its own, and a webhook receiver
for the notices. No platform (no Kubernetes, no compose): the steps that need one skip themselves; deploy and
rollback, which cannot run without one, must fail naming it before any login. The restore writes for real: its
writers are the listed service of a compose project on a stand-in Docker engine (a few lines of the Docker API on
a unix socket, below) that holds one stopped container, so nothing is stopped and the restore runs end to end.

After each run the secrets are looked for in: the runner's stdout, stderr and every job event; the private data dir
(extra vars, env, command, fact cache); the callback's report (Markdown and JSON) and the notices posted; every file
under the inventory's state dir (backup sets: manifest.json, verified.json and the other metadata, not the sets' data
files), the run's TMPDIR and Ansible's local temp, Ansible's ~/.ansible and the repo's build/ as changed by the run;
the PostgreSQL and Redis server logs. Each run also proves that the secrets reached it (the servers saw the logins,
the bucket got the set), so a secret that never arrived is no false pass.
"""
from __future__ import annotations

import json
import os
import secrets as secrets_module
import shutil
import socketserver
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import psycopg
import pytest
import redis
import yaml
from psycopg import sql

from lab.harness.postgres import PostgresServer
from lab.harness.redis import RedisServer
from lab.harness.webhook import WebhookReceiver
from tests.helpers import BIN, COLLECTIONS, REPO

ansible_runner = pytest.importorskip("ansible_runner")

HOST = "secrets-lab"
ESTATE_USER = "secrets_user"
DATABASE = "secretsdb"
COMPOSE_PROJECT = "secrets-app"
WRITER_SERVICE = "api"
APPROVAL = {"maintenance_window_emergency": {"approved_by": "cto@example.com", "reason": "drill", "ticket": "INC-1"}}
PLAYBOOKS = ("daily", "weekly", "monthly", "quarterly", "emergency", "deploy", "rollback", "restore")
EXTRA = {
    "emergency": APPROVAL,
    "deploy": {"deploy_version": "2026.12.0", "deploy_change_ticket": "CHG-1"},
    "rollback": {"rollback_to_version": "2026.11.0"},
    "restore": {"restore_hosts": HOST},
}
# What each playbook must have logged in with (the proof that the secrets reached the run). deploy and rollback
# have no platform here: they must refuse before any login.
BACKS_UP = {"weekly", "monthly", "quarterly", "emergency"}
USES = {
    "daily": {"pg_estate", "redis"},
    "weekly": {"pg_estate", "pg_admin", "redis", "s3"},
    "monthly": {"pg_estate", "pg_admin", "redis", "s3"},
    "quarterly": {"pg_estate", "pg_admin", "redis", "s3"},
    "emergency": {"pg_estate", "pg_admin", "redis", "s3"},
    "deploy": set(),
    "rollback": set(),
    "restore": {"pg_estate", "pg_admin", "redis"},
}
# A backup set's own data (the dumps, the RDB, tar archives): it may contain anything. Everything else in a set
# (manifest.json, verified.json, ...) is checked.
DATA_SUFFIXES = (".dump", ".rdb", ".tar", ".tar.gz", ".tgz", ".gz", ".sql", ".dat", ".toc")
RUN_TIMEOUT = 300

TABLES_SQL = """
CREATE TABLE patients (id bigserial PRIMARY KEY, name text NOT NULL, ward text NOT NULL);
CREATE TABLE users (id bigserial PRIMARY KEY, username text UNIQUE NOT NULL, role text NOT NULL);
CREATE TABLE vital_signs (id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients (id),
                          heart_rate int NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE alarms (id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients (id),
                     severity text NOT NULL, active boolean NOT NULL);
INSERT INTO patients (name, ward) SELECT 'patient ' || g, 'ward-' || (g % 4) FROM generate_series(1, 200) g;
INSERT INTO users (username, role) SELECT 'user' || g, 'nurse' FROM generate_series(1, 20) g;
INSERT INTO vital_signs (patient_id, heart_rate) SELECT (g % 200) + 1, 60 + g % 40 FROM generate_series(1, 2000) g;
INSERT INTO alarms (patient_id, severity, active) SELECT (g % 200) + 1, 'low', g % 5 = 0 FROM generate_series(1, 500) g;
"""


def new_secret(kind: str, *, awkward: bool = False) -> str:
    """A secret no other text of the run can contain by chance. ``awkward``: with the characters that a connection
    string, a URL, a shell or JSON must escape, so a secret that leaks escaped (where Ansible's no_log masking, which
    looks for the value as given, misses it) is found too."""
    token = secrets_module.token_urlsafe(18)
    return f"{kind}-{token[:12]}@:/%?#&=+ '\"\\${token[12:]}" if awkward else f"{kind}-{token}"


# Redis reads its configuration file with quotes and spaces as syntax: its password is set with CONFIG SET.
REDIS_AWKWARD = "@:/%?#&=+\\$"


def secret_forms(secret: str) -> set[str]:
    """The secret as given, and as JSON (job events, reports), a URL (a DSN) and a form body would escape it."""
    from urllib.parse import quote, quote_plus  # noqa: PLC0415

    return {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1]}


# --------------------------------------------------------------------------- a stand-in Docker engine


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def fake_docker_engine(socket_path: Path) -> _UnixHTTPServer:
    """The few Docker API calls the restore's compose writers make: one stopped container of the listed service.

    The restore lists the project's containers to stop the running ones and start them again afterwards; a stopped
    one is left alone, so the restore runs for real on a lane that may not use Docker.
    """
    labels = {"com.docker.compose.project": COMPOSE_PROJECT, "com.docker.compose.service": WRITER_SERVICE,
              "com.docker.compose.oneoff": "False"}
    container_id = "c0ffee" * 10 + "c0ff"
    listed = {"Id": container_id, "Names": [f"/{COMPOSE_PROJECT}-{WRITER_SERVICE}-1"], "Labels": labels,
              "State": "exited", "Status": "Exited (0) 1 hour ago", "Image": "secrets-app:1"}
    inspected = {"Id": container_id, "Name": f"/{COMPOSE_PROJECT}-{WRITER_SERVICE}-1",
                 "Config": {"Labels": labels, "Image": "secrets-app:1"},
                 "State": {"Status": "exited", "Running": False}}

    class Engine(BaseHTTPRequestHandler):
        def _answer(self, body, status=200):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0].rstrip("/")
            if path.endswith("/version"):
                self._answer({"ApiVersion": "1.41", "Version": "20.10.24", "MinAPIVersion": "1.12"})
            elif path.endswith("/_ping"):
                self._answer("OK")
            elif path.endswith("/containers/json"):
                self._answer([listed])
            elif path.endswith(f"/containers/{container_id}/json"):
                self._answer(inspected)
            else:
                self._answer({"message": f"not in the stand-in engine: {path}"}, status=404)

        def log_message(self, *args):
            pass

        # ``address_string`` reads client_address[0], which a unix socket does not have.
        def address_string(self):
            return "unix"

    server = _UnixHTTPServer(str(socket_path), Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --------------------------------------------------------------------------- the estates

# The two verbosities of one playbook run side by side (the lane mostly waits on the runs), each on an estate of its
# own: its own database, roles, Redis db, S3 prefix, state dir and run lock, so neither run waits for or sees the
# other's work, and each run's logins are its own roles' (the proof that its secrets reached it).
VERBOSITIES = (0, 3)


@pytest.fixture(scope="module")
def servers(tmp_path_factory, s3_server):
    """The servers of this module: PostgreSQL (logging each login), Redis with a password, a webhook receiver,
    the stand-in Docker engine, and a bucket on the lane's S3 endpoint."""
    import boto3  # noqa: PLC0415

    root = tmp_path_factory.mktemp("secrets")
    redis_password = new_secret("redispw") + REDIS_AWKWARD
    pg = PostgresServer(settings={"log_connections": "on"})
    pg_info = pg.start()
    redis_server = RedisServer(maxmemory="64mb")
    redis_info = redis_server.start()
    redis.Redis(host=redis_info.host, port=redis_info.port).config_set("requirepass", redis_password)
    webhook = WebhookReceiver(root / "webhook").start()
    engine_socket = Path(f"/tmp/streamops-secrets-docker-{uuid.uuid4().hex[:8]}.sock")
    engine = fake_docker_engine(engine_socket)
    try:
        s3_secret = new_secret("s3secret", awkward=True)
        s3_client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id="secrets-lab",
                                 aws_secret_access_key=s3_secret, region_name=s3_server.region)
        bucket = f"secrets-{uuid.uuid4().hex[:10]}"
        s3_client.create_bucket(Bucket=bucket)
        yield {"root": root, "pg": pg_info, "redis": redis_info, "redis_password": redis_password,
               "s3_server": s3_server, "s3": s3_client, "s3_secret": s3_secret, "bucket": bucket, "webhook": webhook,
               "engine_socket": engine_socket}
    finally:
        engine.shutdown()
        engine.server_close()
        engine_socket.unlink(missing_ok=True)
        webhook.stop()
        redis_server.stop()
        pg.stop()


@pytest.fixture(scope="module")
def estates(servers):
    """Per verbosity, an estate with known secrets and the inventory that names them."""
    made = {}
    for verbosity in VERBOSITIES:
        lane = f"v{verbosity}"
        # -vvv's estate has the awkward passwords (-v0's the plain ones): both kinds through every playbook.
        awkward = verbosity == VERBOSITIES[-1]
        known = {"pg_estate": new_secret("pgpw", awkward=awkward), "pg_admin": new_secret("pgadminpw", awkward=awkward),
                 "redis": servers["redis_password"], "s3": servers["s3_secret"]}
        users = {"estate": f"secrets_{lane}", "admin": f"secrets_admin_{lane}"}
        database = f"secretsdb_{lane}"
        pg_info = servers["pg"]
        with psycopg.connect(**pg_info.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(users["estate"]), sql.Literal(known["pg_estate"])))
            # The restore test and the restore create, rename and drop databases and restore owners.
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(users["admin"]), sql.Literal(known["pg_admin"])))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(users["estate"])))
        with psycopg.connect(**pg_info.conninfo(database, user=users["estate"], password=known["pg_estate"]),
                             autocommit=True) as conn:
            conn.execute(TABLES_SQL)
        redis_db = 1 + verbosity
        client = redis.Redis(host=servers["redis"].host, port=servers["redis"].port, password=known["redis"],
                             db=redis_db)
        pipe = client.pipeline(transaction=False)
        for i in range(300):
            pipe.set(f"cache:quote:{i}", "x" * 100, ex=3600)
            pipe.set(f"session:{i}", f"user{i}", ex=1800)
        pipe.execute()
        client.close()
        root = servers["root"] / lane
        inventory = write_inventory(root, servers, lane=lane, users=users, database=database, redis_db=redis_db,
                                    known=known)
        made[verbosity] = {"lane": lane, "root": root, "inventory": inventory, "state": root / "lab-state",
                           "secrets": known, "users": users, "database": database, "prefix": f"{lane}/database"}
    return made


def write_inventory(root: Path, servers: dict, *, lane: str, users: dict, database: str, redis_db: int,
                    known: dict) -> Path:
    """An inventory shaped like inventory/lab, one estate, no platform: its secrets in plain group_vars."""
    pg_info, redis_info, s3_server = servers["pg"], servers["redis"], servers["s3_server"]
    inventory = root / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "children": {"vitalstream": {"hosts": {HOST: None}}}}}))
    (root / "lab-state").mkdir()
    admin_login = {"login_host": pg_info.host, "login_port": pg_info.port, "login_user": users["admin"],
                   "login_password": known["pg_admin"], "sslmode": "disable"}
    variables = {
        "estate": "vitalstream",
        # The lab's daily window of 23 h 59 min (inventory/lab): open at almost any hour.
        "maintenance_windows": [{"name": "lab", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m",
                                 "timezone": "UTC"}],
        "maintenance_window_windows": "{{ maintenance_windows }}",
        "maintenance_window_name": "lab",
        "lab_state_dir": "{{ inventory_dir | dirname }}/lab-state",
        # This estate's run lock, beside its state (checked like the rest), not the machine's lock dir.
        "maintenance_lock_dir": "{{ lab_state_dir }}/locks",
        "postgres_maintained_tables": ["vital_signs", "alarms", "patients", "users"],
        "postgres_critical_tables": ["vital_signs", "alarms"],
        "postgres_login": {"login_host": pg_info.host, "login_port": pg_info.port, "login_user": users["estate"],
                           "login_password": known["pg_estate"], "database": database, "sslmode": "disable"},
        "redis_login": {"login_host": redis_info.host, "login_port": redis_info.port,
                        "login_password": known["redis"], "db": redis_db},
        "backup_root": "{{ lab_state_dir }}/backups/vitalstream",
        "backup_parts": ["full", "critical_data", "redis_rdb"],
        "s3_login": {"bucket": servers["bucket"], "prefix": f"{lane}/database", "endpoint_url": s3_server.endpoint_url,
                     "region": s3_server.region, "access_key": "secrets-lab", "secret_key": known["s3"]},
        "backup_retention": {"keep_within": "30d", "keep_last": 3},
        "backup_verify_login": admin_login,
        "restore_login": {**admin_login, "database": database},
        "restore_writers": {"compose": {"project": COMPOSE_PROJECT, "services": [WRITER_SERVICE], "stop_timeout": 2},
                            "start_timeout": 30},
        "restore_docker": {"docker_host": f"unix://{servers['engine_socket']}"},
        "health_check_tcp": [{"name": "postgresql", "host": pg_info.host, "port": pg_info.port},
                             {"name": "redis", "host": redis_info.host, "port": redis_info.port}],
        # Two shared cores and a shared disk: thresholds that judge the services, not the machine's load.
        "health_check_disk_max_percent": 100,
        "health_check_memory_max_percent": 100,
        "health_check_latency_interval": 0,
        "health_check_latency_probes": 2,
        "health_check_latency_postgres_max_p95_ms": 5000,
        "health_check_latency_postgres_max_connect_p95_ms": 10000,
        "health_check_latency_redis_max_p95_ms": 5000,
        "health_check_latency_redis_max_connect_p95_ms": 10000,
        # A read-only review on the estate's database (monthly and quarterly): one more module with postgres_login.
        "compliance_review_database": {"retention": [{"name": "vital_signs 1 year", "table": "vital_signs",
                                                      "column": "recorded_at", "max_age": "1y", "expect": "kept"}]},
        # The app deploy and rollback would move, on no platform: they must refuse, naming what is missing.
        "deploy_app": "secrets-app",
        "deploy_image": "secrets-app",
        "notify_channels": [{"name": "chat", "type": "webhook", "url": servers["webhook"].url}],
    }
    (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(variables, sort_keys=False))
    return inventory


# --------------------------------------------------------------------------- one run and what it wrote


def start_run(estate: dict, name: str, verbosity: int, run_dir: Path, *, inventory: Path | None = None,
              credentials_env: dict[str, str] | None = None) -> tuple:
    """The playbook through ansible-runner, as AWX runs it, started in a thread: (thread, runner, dirs it writes)."""
    private = run_dir / "private"
    reports, tmp, local_tmp = run_dir / "reports", run_dir / "tmp", run_dir / "ansible-local-tmp"
    for directory in (private, reports, tmp, local_tmp):
        directory.mkdir(parents=True)
    envvars = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(local_tmp),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MAINTENANCE_REPORT_DIR": str(reports),
        "MAINTENANCE_LEAD": "secrets-lead",
        # Every temporary file of the run and its children (pg_dump, redis-cli, the modules) lands here, checked.
        "TMPDIR": str(tmp),
        **(credentials_env or {}),
    }
    thread, runner = ansible_runner.run_async(
        private_data_dir=str(private), playbook=str(REPO / "playbooks" / f"{name}.yml"),
        inventory=str(inventory or estate["inventory"]), extravars=EXTRA.get(name, {}), envvars=envvars, verbosity=verbosity,
        quiet=True, timeout=RUN_TIMEOUT, ident=f"{name}-v{verbosity}")
    return thread, runner, {"private": private, "reports": reports, "tmp": tmp, "local_tmp": local_tmp}


def read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""


def walk_files(root: Path, *, since: float | None = None):
    """Every regular file under ``root`` (links not followed), only those changed since ``since`` when given."""
    if not root.exists():
        return
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not Path(directory, d).is_symlink()]
        for filename in filenames:
            path = Path(directory, filename)
            try:
                if path.is_symlink() or not path.is_file():
                    continue
                if since is not None and path.stat().st_mtime < since:
                    continue
            except OSError:
                continue
            yield path


def is_set_data(path: Path, backup_root: Path) -> bool:
    """A backup set's own data file (dump, RDB, archive, a directory dump's table files): not looked into."""
    try:
        relative = path.relative_to(backup_root)
    except ValueError:
        return False
    if len(relative.parts) < 2:  # a file directly under the root (a lock, an index): checked
        return False
    return path.name.endswith(DATA_SUFFIXES) or not path.name.endswith((".json", ".md", ".txt", ".log", ".yml"))


def files_of_the_run(estate: dict, dirs: dict, started: float, *, job_env_is_input: bool = False
                     ) -> list[tuple[str, str]]:
    """(where, text) of everything one run wrote: the private data dir holds the runner's stdout, stderr and job
    events (artifacts/<ident>/), its extra vars, env, command and fact cache.

    ``job_env_is_input``: the job's environment holds credentials, as AWX injects them: the runner's copies of that
    input (env/envvars, the env of artifacts/<ident>/command) are the input itself, not something the run wrote.
    """
    found: list[tuple[str, str]] = []
    for directory in (dirs["private"], dirs["reports"], dirs["tmp"], dirs["local_tmp"]):
        for path in walk_files(directory):
            text = read_text(path)
            if job_env_is_input and directory == dirs["private"]:
                if path.relative_to(directory).parts == ("env", "envvars"):
                    continue
                if path.name == "command" and path.parent.parent.name == "artifacts":
                    text = json.dumps({key: value for key, value in json.loads(text).items() if key != "env"})
            found.append((str(path.relative_to(directory.parent)), text))
    backup_root = estate["state"] / "backups" / "vitalstream"
    for path in walk_files(estate["state"], since=started):
        if not is_set_data(path, backup_root):
            found.append((str(path.relative_to(estate["root"].parent)), read_text(path)))
    return found


def shared_files(servers: dict, started: float) -> list[tuple[str, str]]:
    """What both runs of a pair may write: the notices posted, Ansible's ~/.ansible, the repo's build/ (as changed
    since the pair started; other lanes write there too) and the servers' logs. Checked once per pair."""
    found = []
    for directory in (servers["webhook"].received_dir, Path.home() / ".ansible", REPO / "build"):
        for path in walk_files(directory, since=started):
            if path.stat().st_size <= 20 * 1024 * 1024:
                found.append((str(path), read_text(path)))
    for server_log in (servers["pg"].log, servers["redis"].log):
        found.append((server_log, read_text(Path(server_log))))
    return found


# --------------------------------------------------------------------------- proof that the secrets reached the run


def usage(servers: dict, estate: dict) -> dict:
    """What the servers saw of this estate's secrets so far: its roles' logins (log_connections), the objects under
    its S3 prefix, and the Redis commands of authenticated clients (the server's, shared by the pair)."""
    text = read_text(Path(servers["pg"].log))
    listed = servers["s3"].list_objects_v2(Bucket=servers["bucket"], Prefix=estate["lane"] + "/")
    return {"pg_estate": text.count(f"connection authorized: user={estate['users']['estate']} "),
            "pg_admin": text.count(f"connection authorized: user={estate['users']['admin']} "),
            "s3": {item["Key"] for item in listed.get("Contents", [])},
            "redis": redis_commands(servers)}


def redis_commands(servers: dict) -> int:
    """Commands the Redis server ran for authenticated clients (an unauthenticated one gets NOAUTH, not counted)."""
    client = redis.Redis(host=servers["redis"].host, port=servers["redis"].port, password=servers["redis_password"])
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    # Not counted: the handshake of any client (this one's too) and this INFO itself.
    return sum(int(value["calls"]) - int(value.get("rejected_calls", 0)) - int(value.get("failed_calls", 0))
               for name, value in stats.items()
               if not any(word in name for word in ("auth", "hello", "info", "client")))


def used_secrets(before: dict, after: dict) -> set[str]:
    used = {key for key in ("pg_estate", "pg_admin", "redis") if after[key] > before[key]}
    if after["s3"] - before["s3"]:
        used.add("s3")
    return used


def verified_sets(estate: dict) -> list[Path]:
    return sorted((estate["state"] / "backups" / "vitalstream").glob("*/verified.json"))


def only_report(reports: Path) -> dict:
    files = sorted(reports.glob("*.json"))
    return json.loads(files[0].read_text()) if len(files) == 1 else {}


# --------------------------------------------------------------------------- the cases


def failure_message(runner) -> str:
    return " ".join(str((event.get("event_data", {}).get("res") or {}).get("msg", ""))
                    for event in runner.events if event.get("event") == "runner_on_failed")


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_no_secret_anywhere_a_playbook_run_writes(name, servers, estates, campaign, tmp_path):
    every_secret = sorted({form for estate in estates.values() for secret in estate["secrets"].values()
                           for form in secret_forms(secret)})
    for estate in estates.values():
        # The secrets are in the run's inputs (else nothing could leak and the case would prove nothing).
        inventory_text = json.dumps(yaml.safe_load(read_text(estate["inventory"] / "group_vars" / "all" / "main.yml")))
        assert all(json.dumps(secret)[1:-1] in inventory_text for secret in estate["secrets"].values())
        if name == "restore" and not verified_sets(estate):
            # Run alone (-k restore): the restore needs a verified set first.
            thread, _runner, _dirs = start_run(estate, "weekly", 0, tmp_path / f"setup-{estate['lane']}")
            thread.join()
    sets_before = {v: verified_sets(estate) for v, estate in estates.items()}
    before = {v: usage(servers, estate) for v, estate in estates.items()}
    started = time.time() - 1
    runs = {}
    for verbosity, estate in estates.items():
        # One run after the other: side by side, the two took both cores from the services lane that make test
        # runs beside this one (its critical path); this lane has the time.
        runs[verbosity] = start_run(estate, name, verbosity, tmp_path / estate["lane"])
        runs[verbosity][0].join(RUN_TIMEOUT + 30)
    for verbosity, (thread, runner, dirs) in runs.items():
        estate = estates[verbosity]
        with campaign.case("secrets", f"{name}.yml at -v{verbosity}") as case:
            assert not thread.is_alive(), f"{name} -v{verbosity} still running after {RUN_TIMEOUT} s"
            after = usage(servers, estate)
            places = files_of_the_run(estate, dirs, started)
            if verbosity == VERBOSITIES[-1]:
                places += shared_files(servers, started)
            for where, text in places:
                case.check_no_secret(text, every_secret, where)
            stdout = read_text(Path(runner.config.artifact_dir) / "stdout")
            assert stdout and any("job_events" in where for where, _text in places), "the runner wrote no output"
            assert only_report(dirs["reports"]), f"no report of {name} in {dirs['reports']}"
            used = used_secrets(before[verbosity], after)
            if name in ("deploy", "rollback"):
                # No platform here: the run fails, saying so, before any login.
                case.check_error({"failed": runner.rc != 0, "msg": failure_message(runner)}, names=["platform"])
                assert not used & {"pg_estate", "pg_admin", "s3"}, (before[verbosity], after)
                assert verified_sets(estate) == sets_before[verbosity]
            else:
                assert runner.status == "successful", f"{runner.status} rc={runner.rc}\n{stdout[-6000:]}"
            # The secrets this playbook needs reached it: the servers saw the logins, the bucket got the set.
            missing = USES[name] - used
            assert not missing, f"{name}: no sign that {sorted(missing)} reached the run ({before[verbosity]} -> {after})"
            if name in BACKS_UP:
                assert verified_sets(estate) != sets_before[verbosity], "no new verified set"
            if verbosity == 3:
                # -vvv shows the module arguments: the secrets were there to be masked.
                assert '"invocation"' in stdout or "invocation" in stdout, stdout[-3000:]


def credentials_from_awx(servers: dict, estate: dict, run_dir: Path) -> dict[str, str]:
    """The estate's connections as AWX injects the collection's credential types into a job's environment."""
    from ansible_collections.streamops.maintenance.plugins.module_utils import job_credentials  # noqa: PLC0415
    from lab.harness.awx import inject_credential  # noqa: PLC0415

    pg_info, redis_info, known = servers["pg"], servers["redis"], estate["secrets"]
    inputs = {
        "postgres": {"estate": "vitalstream", "host": pg_info.host, "port": str(pg_info.port),
                     "username": estate["users"]["estate"], "password": known["pg_estate"],
                     "database": estate["database"], "sslmode": "disable"},
        "restore_test": {"estate": "vitalstream", "host": pg_info.host, "port": str(pg_info.port),
                         "username": estate["users"]["admin"], "password": known["pg_admin"], "sslmode": "disable"},
        "redis": {"estate": "vitalstream", "host": redis_info.host, "port": str(redis_info.port),
                  "password": known["redis"]},
        "s3": {"estate": "vitalstream", "bucket": servers["bucket"], "prefix": estate["prefix"],
               "endpoint_url": servers["s3_server"].endpoint_url, "region": servers["s3_server"].region,
               "access_key": "secrets-lab", "secret_key": known["s3"]},
    }
    env: dict[str, str] = {}
    for key, values in inputs.items():
        injected, cmdline = inject_credential(job_credentials.credential_type(job_credentials.credential(key)),
                                              values, run_dir, container_root=str(run_dir))
        assert cmdline == [], cmdline  # secrets travel in the environment, never in extra vars
        env.update(injected)
    return env


def test_no_secret_anywhere_with_the_connections_from_awx_credentials(servers, estates, campaign, tmp_path):
    """emergency.yml at -vvv (health, backup to S3 with its restore test, Redis relief) with no password in the
    inventory: the connections come from the collection's AWX credential types, injected into the job's environment."""
    estate = estates[VERBOSITIES[-1]]
    inventory = tmp_path / "inventory"
    shutil.copytree(estate["inventory"], inventory)
    variables_file = inventory / "group_vars" / "all" / "main.yml"
    variables = yaml.safe_load(variables_file.read_text())
    for login in ("postgres_login", "backup_verify_login", "restore_login", "redis_login"):
        variables[login].pop("login_password")
    variables["s3_login"].pop("secret_key")
    variables["lab_state_dir"] = str(estate["state"])  # the estate's sets and lock, not beside this copy
    variables_file.write_text(yaml.safe_dump(variables, sort_keys=False))
    every_secret = sorted({form for secret in estate["secrets"].values() for form in secret_forms(secret)})
    assert not any(secret in variables_file.read_text() for secret in every_secret)
    credentials_env = credentials_from_awx(servers, estate, tmp_path / "awx")
    sets_before = verified_sets(estate)
    before = usage(servers, estate)
    started = time.time() - 1
    with campaign.case("secrets", "emergency.yml at -vvv, connections from AWX credentials") as case:
        thread, runner, dirs = start_run(estate, "emergency", 3, tmp_path / "run", inventory=inventory,
                                         credentials_env=credentials_env)
        thread.join(RUN_TIMEOUT + 30)
        assert not thread.is_alive(), f"still running after {RUN_TIMEOUT} s"
        after = usage(servers, estate)
        places = files_of_the_run(estate, dirs, started, job_env_is_input=True) + shared_files(servers, started)
        places += [(str(path), read_text(path)) for path in walk_files(tmp_path / "awx", since=started)]
        for where, text in places:
            case.check_no_secret(text, every_secret, where)
        stdout = read_text(Path(runner.config.artifact_dir) / "stdout")
        assert runner.status == "successful", f"{runner.status} rc={runner.rc}\n{stdout[-6000:]}"
        assert "Connections from AWX credentials" in stdout and "postgres_login" in stdout, stdout[-3000:]
        missing = USES["emergency"] - used_secrets(before, after)
        assert not missing, f"no sign that {sorted(missing)} reached the run ({before} -> {after})"
        assert verified_sets(estate) != sets_before, "no new verified set"


def test_the_search_finds_a_secret_however_escaped_and_skips_only_the_sets_data(tmp_path):
    """The search itself (no false pass): an awkward secret written as JSON, in a URL or as given is found, in a
    job event, a set's manifest or a temp file; only a set's own data files are not looked into."""
    secret = new_secret("pgpw", awkward=True)
    forms = secret_forms(secret)
    estate = {"root": tmp_path, "state": tmp_path / "lab-state"}
    dirs = {key: tmp_path / key for key in ("private", "reports", "tmp", "local_tmp")}
    set_dir = estate["state"] / "backups" / "vitalstream" / "db-20261207T000000Z"
    for directory in (*dirs.values(), set_dir, dirs["private"] / "artifacts" / "x" / "job_events"):
        directory.mkdir(parents=True, exist_ok=True)
    (dirs["private"] / "artifacts" / "x" / "job_events" / "1-a.json").write_text(json.dumps({"msg": secret}))
    (dirs["tmp"] / "pgpass").write_text(f"postgresql://u:{quote_for_test(secret)}@127.0.0.1/db")
    (set_dir / "manifest.json").write_text(json.dumps({"note": secret}))
    (set_dir / "full.dump").write_text(secret)
    (set_dir / "redis.rdb").write_text(secret)
    found = [where for where, text in files_of_the_run(estate, dirs, started=0) if any(f in text for f in forms)]
    assert sorted(Path(where).name for where in found) == ["1-a.json", "manifest.json", "pgpass"], found


def quote_for_test(secret: str) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    return quote(secret, safe="")
