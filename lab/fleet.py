"""A fleet of estates on the lab's services: the collection as AWX runs it against many estates.

``create_fleet(lab_services, count, directory)`` makes, on the lab's real PostgreSQL, Redis and S3, what
each of ``count`` estates needs (its own database owned by its own role, seeded with small tables that
carry dead tuples; its own Redis key prefix with cache keys the redis_routine role may evict and session
keys it may not; its own backup root and log directory; its own S3 prefix in the fleet's bucket) and writes
an inventory directory whose hosts state their connections the way inventory/lab does. Estates are
platform-free: database, cache, backups and logs (no Kubernetes, no compose). A rerun with the same
count reuses what exists; ``drop_fleet(directory)`` removes exactly what the manifest (``fleet.json``)
says was created.

The fleet's hosts are in the group ``fleet``; the cadence play targets ``stream_systems:vitalstream``
unless ``maintenance_hosts`` says otherwise, so a fleet run passes ``-e maintenance_hosts=fleet`` (the
estates are neither Stream Systems nor VitalStream: making them children of those groups would give
them those estates' group_vars and --limit meanings).

    python -m lab.fleet create --estates 10 [--services <lab_services.yml>] [--dir build/fleet]
    python -m lab.fleet slices --count 3 [--dir build/fleet]      # AWX's job slices as --limit host lists
    python -m lab.fleet merge --out reports/merged [--dir build/fleet] slice1.json slice2.json ...
    python -m lab.fleet drop [--dir build/fleet]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from .seed import make_log_dir

REPO = Path(__file__).resolve().parent.parent
LAB_SERVICES = REPO / "inventory" / "lab" / "group_vars" / "all" / "lab_services.yml"
LAB_MAIN_VARS = REPO / "inventory" / "lab" / "group_vars" / "all" / "main.yml"
DEFAULT_DIR = REPO / "build" / "fleet"
MANIFEST = "fleet.json"
GROUP = "fleet"
# Lowercase so that host, database, role, key and S3 names agree, and nothing needs quoting in a
# Redis glob or an S3 key; it starts with a letter (PostgreSQL identifiers, host patterns).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,19}$")
MAX_ESTATES = 999
# db 0 and 1 are the lab estates' (lab/seed.py); databases run out at 16, prefixes do not.
DEFAULT_REDIS_DB = 2
CACHE_KEYS = 200
SESSION_KEYS = 20

ESTATE_SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE readings (
    id bigserial PRIMARY KEY, sensor int NOT NULL, value numeric(10, 2) NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_enabled = false);
CREATE INDEX idx_readings_sensor_time ON readings (sensor, taken_at);
CREATE TABLE orders (
    id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id),
    amount numeric(12, 2) NOT NULL, status text NOT NULL
) WITH (autovacuum_enabled = false);
INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO readings (sensor, value, taken_at)
  SELECT g % 50, (g % 1000) / 10.0, now() - (g || ' seconds')::interval FROM generate_series(1, 20000) g;
INSERT INTO orders (customer_id, amount, status) SELECT (g % 200) + 1, g % 500, 'open' FROM generate_series(1, 5000) g;
UPDATE readings SET value = value + 1 WHERE id % 4 = 0;
DELETE FROM readings WHERE id % 10 = 1;
UPDATE orders SET status = 'closed' WHERE id % 2 = 0;
"""
ESTATE_TABLES = ["readings", "orders", "customers"]
CRITICAL_TABLES = ["orders", "customers"]


class FleetError(RuntimeError):
    """Bad input or a service that refused: the message names the bad value or the target."""


def say(message: str) -> None:
    print(f"fleet: {message}", flush=True)


# --------------------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class Estate:
    """One estate of the fleet: its inventory host and the names of everything it owns."""

    host: str
    database: str
    user: str
    redis_prefix: str
    s3_prefix: str


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise FleetError(f"fleet name {name!r} must be 1-20 lowercase letters and digits, starting with a letter")
    return name


def check_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_ESTATES:
        raise FleetError(f"number of estates {count!r} must be a whole number from 1 to {MAX_ESTATES}")
    return count


def plan_fleet(name: str, count: int) -> list[Estate]:
    """The estates ``<name>-001`` ... in order; zero-padded, so name order (AWX slices by it) is number order."""
    check_name(name)
    check_count(count)
    return [Estate(host=f"{name}-{number:03d}", database=f"{name}_{number:03d}", user=f"{name}_{number:03d}_owner",
                   redis_prefix=f"{name}-{number:03d}:", s3_prefix=f"{name}-{number:03d}")
            for number in range(1, count + 1)]


def bucket_name(name: str) -> str:
    return f"{check_name(name)}-backups"


def awx_slices(hosts: Iterable[str], slice_count: int) -> list[list[str]]:
    """The hosts of each job of an AWX sliced job template (slice 1 first).

    AWX (awx/main/models/inventory.py, ``get_sliced_hosts`` via ``get_script_data``) takes the inventory's
    enabled hosts ordered by name and gives slice k of n the hosts ``[k-1::n]``: round-robin, not blocks.
    It makes ``min(job_slice_count, number of hosts)`` slices. The order here is Python's (code points);
    AWX sorts in its database's collation, which agrees for names like ``fleet-001``.
    """
    ordered = sorted(set(hosts))
    if isinstance(slice_count, bool) or not isinstance(slice_count, int) or slice_count < 1:
        raise FleetError(f"slice count {slice_count!r} must be a whole number of at least 1")
    if not ordered:
        raise FleetError("no hosts to slice")
    count = min(slice_count, len(ordered))
    return [ordered[offset::count] for offset in range(count)]


def limit_argument(hosts: Sequence[str]) -> str:
    """``--limit`` for exactly these hosts: a comma-separated list (a host name is a pattern of one host)."""
    bad = [host for host in hosts if not host or any(char in host for char in ",:!&*?[]~ ")]
    if bad:
        raise FleetError(f"host name(s) {bad} cannot be given to --limit as they are")
    return ",".join(hosts)


def group_vars(name: str, redis_db: int) -> dict:
    """group_vars/fleet.yml: each connection stated once, from lab_services and the host's fleet_estate."""
    pg = "lab_services.postgres"
    state = "{{ fleet_state_dir }}/{{ inventory_hostname }}"
    return {
        "estate": "{{ inventory_hostname }}",
        "estate_platform": "none",
        "fleet_name": name,
        "fleet_redis_db": redis_db,
        "postgres_maintained_tables": list(ESTATE_TABLES),
        "postgres_critical_tables": list(CRITICAL_TABLES),
        "postgres_login": {
            "login_host": f"{{{{ {pg}.host }}}}", "login_port": f"{{{{ {pg}.port }}}}",
            "login_user": "{{ fleet_estate.user }}", "login_password": "{{ fleet_estate.password }}",
            "database": "{{ fleet_estate.database }}",
            # The lab's PostgreSQL accepts only TLS (hostssl): every task must verify the server.
            "sslmode": f"{{{{ {pg}.sslmode }}}}", "ca_cert": f"{{{{ {pg}.ca_cert }}}}",
        },
        "redis_login": {
            "login_host": "{{ lab_services.redis.host }}", "login_port": "{{ lab_services.redis.port }}",
            "login_password": "{{ lab_services.redis.password | default(omit) }}", "db": "{{ fleet_redis_db }}",
        },
        # The estates share one Redis db: only the estate's own cache keys may be evicted.
        "redis_routine_evict_patterns": ["{{ fleet_estate.redis_prefix }}cache:*"],
        "backup_root": f"{state}/backups",
        # The estates' run locks (docs/playbooks.md, "Run lock") with the fleet's state, not under /var/lib.
        "maintenance_lock_dir": "{{ fleet_state_dir }}/locks",
        # No redis_rdb part: the RDB is the whole shared server's, not the estate's.
        "backup_parts": ["full", "schema", "critical_data"],
        "s3_login": {
            "bucket": "{{ fleet_estate.s3_bucket }}", "prefix": "{{ fleet_estate.s3_prefix }}",
            "endpoint_url": "{{ lab_services.s3.endpoint_url }}", "region": "{{ lab_services.s3.region }}",
            "access_key": "{{ lab_services.s3.access_key }}", "secret_key": "{{ lab_services.s3.secret_key }}",
            "server_side_encryption": "AES256",
        },
        "backup_retention": {"keep_within": "7d", "keep_last": 3},
        # The restore test creates a scratch database (named after the source, so estates never collide):
        # the lab's admin role may.
        "backup_verify_login": {
            "login_host": f"{{{{ {pg}.host }}}}", "login_port": f"{{{{ {pg}.port }}}}",
            "login_user": f"{{{{ {pg}.admin_user }}}}", "login_password": f"{{{{ {pg}.admin_password }}}}",
            "sslmode": f"{{{{ {pg}.sslmode }}}}", "ca_cert": f"{{{{ {pg}.ca_cert }}}}",
        },
        "health_check_tcp": [
            {"name": "postgresql", "host": f"{{{{ {pg}.host }}}}", "port": f"{{{{ {pg}.port }}}}"},
            {"name": "redis", "host": "{{ lab_services.redis.host }}", "port": "{{ lab_services.redis.port }}"},
            {"name": "s3", "host": "127.0.0.1", "port": "{{ lab_services.s3.endpoint_url | urlsplit('port') }}"},
        ],
        "health_check_http": [],
        "health_check_postgres_max_connections_percent": 80,
        "health_check_redis_max_ratio": 0.8,
        "health_check_cert_min_days": 14,
        "log_maintenance_logrotate_configs": [f"{state}/logs/logrotate.conf"],
        # Its own state file, never the system's /var/lib/logrotate/status.
        "log_maintenance_logrotate_state": f"{state}/logs/logrotate.status",
        "log_maintenance_cleanup": [{"root": f"{state}/logs", "patterns": ["*.log"], "age_days": 30, "recurse": True}],
        "log_maintenance_cleanup_protected_roots": ["{{ backup_root }}"],
    }


def inventory_files(estates: Sequence[Estate], passwords: dict[str, str], *, name: str, redis_db: int,
                    lab_services: dict, lab_main_vars: dict) -> dict[str, tuple[str, int]]:
    """Every file of the inventory directory: relative path -> (text, mode). Secrets are 0600."""
    header = "# Written by `python -m lab.fleet create`; removed by `python -m lab.fleet drop`.\n"
    hosts = {"all": {
        "vars": {"ansible_connection": "local",
                 # The pyenv shim interpreter discovery may find can be broken; use ansible-playbook's own.
                 "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "children": {GROUP: {"hosts": {estate.host: None for estate in estates}}},
    }}
    windows = {key: lab_main_vars[key] for key in ("maintenance_windows", "maintenance_window_windows",
                                                   "maintenance_window_name") if key in lab_main_vars}
    # The lab's latency thresholds, made for two cores shared with everything the lab runs: with the role's
    # defaults (a 50 ms connect p95) three slices of ten forks at once failed an estate on a scheduling hiccup.
    latency = {key: value for key, value in lab_main_vars.items() if key.startswith("health_check_latency_")}
    main = {**windows, **latency,
            # Backup sets and logs: beside the inventory directory, never inside it (Ansible would parse them).
            "fleet_state_dir": "{{ inventory_dir | dirname }}/state"}
    files = {
        "hosts.yml": (header + _yaml(hosts), 0o644),
        "group_vars/all/main.yml": (header + _yaml(main), 0o644),
        "group_vars/all/lab_services.yml": (
            header + "# Throwaway lab secrets.\n" + _yaml({"lab_services": lab_services}), 0o600),
        f"group_vars/{GROUP}.yml": (header + _yaml(group_vars(name, redis_db)), 0o644),
    }
    bucket = bucket_name(name)
    for estate in estates:
        facts = {"database": estate.database, "user": estate.user, "password": passwords[estate.host],
                 "redis_prefix": estate.redis_prefix, "s3_bucket": bucket, "s3_prefix": estate.s3_prefix}
        files[f"host_vars/{estate.host}.yml"] = (header + _yaml({"fleet_estate": facts}), 0o600)
    return files


def _yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).replace(": null\n", ":\n")


def changes(previous: Sequence[str], wanted: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(to create, to keep, to drop) hosts, going from the manifest's fleet to the wanted one."""
    before, after = set(previous), set(wanted)
    return (sorted(after - before), sorted(after & before), sorted(before - after))


# --------------------------------------------------------------------------- services


def _pg_admin(lab_services: dict, dbname: str = "postgres"):
    import psycopg  # noqa: PLC0415

    pg = lab_services["postgres"]
    options = {"sslmode": pg["sslmode"], "sslrootcert": pg["ca_cert"]} if pg.get("sslmode") else {}
    try:
        return psycopg.connect(host=pg["host"], port=pg["port"], user=pg["admin_user"], password=pg["admin_password"],
                               dbname=dbname, autocommit=True, connect_timeout=10, **options)
    except psycopg.OperationalError as exc:
        raise FleetError(f"cannot connect to PostgreSQL {pg['admin_user']}@{pg['host']}:{pg['port']}/{dbname}: "
                         f"{exc}") from exc


def create_databases(lab_services: dict, estates: Sequence[Estate], passwords: dict[str, str]) -> None:
    """Each estate's role (its password set to the manifest's) and database; a database is seeded once."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    pg = lab_services["postgres"]
    options = {"sslmode": pg["sslmode"], "sslrootcert": pg["ca_cert"]} if pg.get("sslmode") else {}
    with _pg_admin(lab_services) as admin:
        for estate in estates:
            role = sql.Identifier(estate.user)
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (estate.user,)).fetchone()
            verb = sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}") if exists else sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
            admin.execute(verb.format(role, sql.Literal(passwords[estate.host])))
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (estate.database,)).fetchone():
                admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(estate.database), role))
    for estate in estates:
        with _pg_admin(lab_services, estate.database) as admin:
            admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        # Created as the owner, so the estate's role maintains its own tables (as the guides' psql does).
        with psycopg.connect(host=pg["host"], port=pg["port"], user=estate.user, password=passwords[estate.host],
                             dbname=estate.database, autocommit=True, **options) as owner:
            seeded = owner.execute("SELECT to_regclass('public.readings') IS NOT NULL").fetchone()[0]
            if not seeded:
                with owner.transaction():
                    owner.execute(ESTATE_SCHEMA)


def drop_databases(lab_services: dict, estates: Sequence[Estate]) -> None:
    from psycopg import sql  # noqa: PLC0415

    with _pg_admin(lab_services) as admin:
        for estate in estates:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(estate.database)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(estate.user)))


def _redis(lab_services: dict, db: int):
    import redis  # noqa: PLC0415

    facts = lab_services["redis"]
    return redis.Redis(host=facts["host"], port=facts["port"], password=facts.get("password"), db=db,
                       socket_timeout=10)


def seed_redis_prefixes(lab_services: dict, estates: Sequence[Estate], db: int) -> None:
    """Cache keys the estate's routine may evict, session keys it may not; SET again on a rerun."""
    client = _redis(lab_services, db)
    pipe = client.pipeline(transaction=False)
    for estate in estates:
        for number in range(CACHE_KEYS):
            pipe.set(f"{estate.redis_prefix}cache:item:{number}", "x" * 200, ex=86400)
        for number in range(SESSION_KEYS):
            pipe.set(f"{estate.redis_prefix}session:{number}", f"user{number}", ex=86400)
    pipe.execute()


def prefix_keys(client, prefix: str) -> list[bytes]:
    """The keys under ``prefix`` by SCAN (never KEYS: it would block the shared server)."""
    return list(client.scan_iter(match=_glob_literal(prefix) + "*", count=1000))


def _glob_literal(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def drop_redis_prefixes(lab_services: dict, estates: Sequence[Estate], db: int) -> None:
    client = _redis(lab_services, db)
    for estate in estates:
        keys = prefix_keys(client, estate.redis_prefix)
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start:start + 500])


def _s3(lab_services: dict):
    import boto3  # noqa: PLC0415

    facts = lab_services["s3"]
    return boto3.client("s3", endpoint_url=facts["endpoint_url"], region_name=facts["region"],
                        aws_access_key_id=facts["access_key"], aws_secret_access_key=facts["secret_key"])


def ensure_bucket(lab_services: dict, bucket: str) -> bool:
    """True when this call created the bucket (only then does drop remove it)."""
    client = _s3(lab_services)
    existing = {entry["Name"] for entry in client.list_buckets().get("Buckets", [])}
    if bucket in existing:
        return False
    client.create_bucket(Bucket=bucket)
    return True


def s3_keys(lab_services: dict, bucket: str, prefix: str) -> list[str]:
    client = _s3(lab_services)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/")
    return [entry["Key"] for page in pages for entry in page.get("Contents", [])]


def drop_s3(lab_services: dict, bucket: str, estates: Sequence[Estate], *, remove_bucket: bool) -> None:
    client = _s3(lab_services)
    existing = {entry["Name"] for entry in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        return
    for estate in estates:
        keys = s3_keys(lab_services, bucket, estate.s3_prefix)
        for start in range(0, len(keys), 1000):
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys[start:start + 1000]]})
    if remove_bucket and not client.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount"):
        client.delete_bucket(Bucket=bucket)


def make_logs(state_dir: Path, estate: Estate, *, old_days: int = 40) -> Path:
    """The estate's log directory (seed.make_log_dir): a logrotate config, a live log, logs past the cleanup age."""
    return make_log_dir(state_dir / estate.host / "logs", estate.host, old_days=old_days)


# --------------------------------------------------------------------------- create / drop


def load_manifest(directory: Path) -> dict | None:
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise FleetError(f"{path} is not the fleet's manifest (not JSON: {exc})") from exc


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created with its final mode: a secret is never readable by others, not even for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(mode)


def create_fleet(lab_services: dict, count: int, directory: Path | str = DEFAULT_DIR, *, name: str = GROUP,
                 redis_db: int = DEFAULT_REDIS_DB, lab_main_vars: dict | None = None,
                 progress: Callable[[str], None] = say) -> dict:
    """Make (or reuse) ``count`` estates on the services and write ``<directory>/inventory``; the manifest.

    A fleet made before in ``directory`` is brought to ``count``: its estates are reused (same passwords),
    missing ones are made, estates beyond ``count`` are dropped.
    """
    directory = Path(directory).resolve()
    estates = plan_fleet(name, count)
    if isinstance(redis_db, bool) or not isinstance(redis_db, int) or not 0 <= redis_db <= 15:
        raise FleetError(f"Redis db {redis_db!r} must be 0-15")
    _check_services(lab_services)
    manifest = load_manifest(directory)
    if manifest is not None and (manifest["name"], manifest["redis"]["db"]) != (name, redis_db):
        raise FleetError(f"{directory} holds fleet {manifest['name']!r} (Redis db {manifest['redis']['db']}); "
                         f"drop it first or use another directory for {name!r} (Redis db {redis_db})")
    previous = {entry["host"]: entry for entry in (manifest or {}).get("estates", [])}
    to_create, to_keep, to_drop = changes(list(previous), [estate.host for estate in estates])
    if to_drop:
        progress(f"dropping {len(to_drop)} estate(s) beyond {count}: {', '.join(to_drop)}")
        _drop_estates(lab_services, [_estate(previous[host]) for host in to_drop], manifest, directory)
    passwords = {estate.host: previous.get(estate.host, {}).get("password") or secrets.token_urlsafe(18)
                 for estate in estates}
    bucket = bucket_name(name)
    bucket_created = ensure_bucket(lab_services, bucket) or bool((manifest or {}).get("s3", {}).get("bucket_created"))
    new_manifest = {
        "name": name, "directory": str(directory),
        "postgres": {"host": lab_services["postgres"]["host"], "port": lab_services["postgres"]["port"]},
        "redis": {"host": lab_services["redis"]["host"], "port": lab_services["redis"]["port"], "db": redis_db},
        "s3": {"endpoint_url": lab_services["s3"]["endpoint_url"], "bucket": bucket, "bucket_created": bucket_created},
        "estates": [{**asdict(estate), "password": passwords[estate.host]} for estate in estates],
    }
    # The manifest first: whatever is made after it, drop can find.
    _write(directory / MANIFEST, json.dumps(new_manifest, indent=2), 0o600)
    started = time.monotonic()
    progress(f"{len(to_create)} estate(s) to make, {len(to_keep)} to reuse; databases, roles and tables")
    create_databases(lab_services, estates, passwords)
    seed_redis_prefixes(lab_services, estates, redis_db)
    state_dir = directory / "state"
    for estate in estates:
        (state_dir / estate.host / "backups").mkdir(parents=True, exist_ok=True)
        make_logs(state_dir, estate)
    main_vars = lab_main_vars if lab_main_vars is not None else yaml.safe_load(LAB_MAIN_VARS.read_text())
    inventory = directory / "inventory"
    if inventory.exists():
        shutil.rmtree(inventory)  # what it held is rewritten whole; a dropped estate's host_vars go
    for relative, (text, mode) in inventory_files(estates, passwords, name=name, redis_db=redis_db,
                                                  lab_services=lab_services, lab_main_vars=main_vars).items():
        _write(inventory / relative, text, mode)
    progress(f"{count} estate(s) ready in {time.monotonic() - started:.1f}s; inventory {inventory}")
    return new_manifest


def _check_services(lab_services: dict) -> None:
    missing = [f"{service}.{key}" for service, keys in (
        ("postgres", ("host", "port", "admin_user", "admin_password")), ("redis", ("host", "port")),
        ("s3", ("endpoint_url", "region", "access_key", "secret_key"))) for key in keys
        if key not in (lab_services.get(service) or {})]
    if missing:
        raise FleetError(f"the lab services facts lack {', '.join(missing)} (is this lab_services of "
                         "`python -m lab up` or the lab_services fixture?)")


def _estate(entry: dict) -> Estate:
    return Estate(**{key: entry[key] for key in ("host", "database", "user", "redis_prefix", "s3_prefix")})


def _drop_estates(lab_services: dict, estates: Sequence[Estate], manifest: dict, directory: Path,
                  *, remove_bucket: bool = False) -> None:
    drop_databases(lab_services, estates)
    drop_redis_prefixes(lab_services, estates, manifest["redis"]["db"])
    drop_s3(lab_services, manifest["s3"]["bucket"], estates, remove_bucket=remove_bucket)
    for estate in estates:
        shutil.rmtree(directory / "state" / estate.host, ignore_errors=True)


def drop_fleet(lab_services: dict, directory: Path | str = DEFAULT_DIR, *,
               progress: Callable[[str], None] = say) -> list[str]:
    """Remove what the manifest in ``directory`` says was made: databases, roles, Redis keys of each prefix,
    S3 objects under each prefix (and the bucket, when the fleet made it), the state and inventory
    directories, the manifest. Returns the hosts dropped."""
    directory = Path(directory).resolve()
    manifest = load_manifest(directory)
    if manifest is None:
        progress(f"no fleet in {directory} (no {MANIFEST}); nothing to drop")
        return []
    pg = lab_services["postgres"]
    if (manifest["postgres"]["host"], manifest["postgres"]["port"]) != (pg["host"], pg["port"]):
        raise FleetError(f"the fleet in {directory} was made on PostgreSQL {manifest['postgres']['host']}:"
                         f"{manifest['postgres']['port']}, these services are {pg['host']}:{pg['port']}")
    estates = [_estate(entry) for entry in manifest["estates"]]
    _drop_estates(lab_services, estates, manifest, directory, remove_bucket=manifest["s3"]["bucket_created"])
    for leftover in ("inventory", "state"):
        shutil.rmtree(directory / leftover, ignore_errors=True)
    (directory / MANIFEST).unlink()
    if directory.exists() and not any(directory.iterdir()):
        directory.rmdir()
    progress(f"dropped {len(estates)} estate(s) of fleet {manifest['name']!r}")
    return [estate.host for estate in estates]


def fleet_hosts(directory: Path | str = DEFAULT_DIR) -> list[str]:
    manifest = load_manifest(Path(directory))
    if manifest is None:
        raise FleetError(f"no fleet in {directory} (no {MANIFEST}): `python -m lab.fleet create` first")
    return [entry["host"] for entry in manifest["estates"]]


# --------------------------------------------------------------------------- merging reports


def _report_utils():
    """plugins/module_utils/maintenance_report.py by its collection name (build/collections links this checkout)."""
    collections = str(REPO / "build" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.streamops.maintenance.plugins.module_utils import maintenance_report  # noqa: PLC0415

    return maintenance_report


def merge_report_files(paths: Sequence[Path | str], out_dir: Path | str, *,
                       expected_hosts: Iterable[str] | None = None) -> tuple[str, dict]:
    """Merge the slices' JSON reports into one; writes ``<out_dir>/<id>.json`` and ``.md``."""
    utils = _report_utils()
    reports = []
    for path in paths:
        try:
            reports.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise FleetError(f"cannot read the report {path}: {exc}") from exc
    try:
        merged = utils.merge_reports(reports, expected_hosts=expected_hosts, names=[str(path) for path in paths])
    except utils.ReportError as exc:
        raise FleetError(exc.msg) from exc
    return utils.write_report(merged, str(out_dir)), merged


# --------------------------------------------------------------------------- CLI


def _services(path: str) -> dict:
    source = Path(path)
    if not source.exists():
        raise FleetError(f"{source} does not exist: start the lab (`python -m lab up`) or give --services")
    data = yaml.safe_load(source.read_text()) or {}
    return data.get("lab_services", data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.fleet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make (or reuse) N estates and write their inventory")
    create.add_argument("--estates", type=int, required=True)
    create.add_argument("--name", default=GROUP)
    create.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB)
    drop = commands.add_parser("drop", help="remove what `create` made, by its manifest")
    slices = commands.add_parser("slices", help="print AWX's job slices as --limit host lists, one per line")
    slices.add_argument("--count", type=int, required=True)
    merge = commands.add_parser("merge", help="merge the slices' JSON reports into one report")
    merge.add_argument("--out", required=True, help="directory the merged report is written to")
    merge.add_argument("--expect", help="comma-separated hosts every one of which must be reported "
                                        "(default: the fleet's hosts in --dir)")
    merge.add_argument("reports", nargs="+")
    for command in (create, drop, slices, merge):
        command.add_argument("--dir", default=str(DEFAULT_DIR), help="the fleet's directory (default build/fleet)")
    for command in (create, drop):
        command.add_argument("--services", default=str(LAB_SERVICES),
                             help="lab_services YAML (default: the one `python -m lab up` writes)")
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            create_fleet(_services(args.services), args.estates, args.dir, name=args.name, redis_db=args.redis_db)
        elif args.command == "drop":
            drop_fleet(_services(args.services), args.dir)
        elif args.command == "slices":
            for hosts in awx_slices(fleet_hosts(args.dir), args.count):
                print(limit_argument(hosts))
        else:
            expected = args.expect.split(",") if args.expect else fleet_hosts(args.dir)
            base, merged = merge_report_files(args.reports, args.out, expected_hosts=expected)
            print(f"Maintenance report: {base}.md ({merged['status']}, {len(merged['hosts'])} host(s) from "
                  f"{len(args.reports)} report(s))")
    except FleetError as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
