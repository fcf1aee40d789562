"""Seed the lab services with the two guides' data, made worth maintaining.

Stream Systems: trades, positions, market_data, audit_logs. VitalStream:
vital_signs, alarms, patients, users. Autovacuum is off on the busy tables and a
share of their rows is updated or deleted, so they carry real dead tuples and
bloat; ``positions`` gets explicit ids so its sequence lags behind MAX(id), the
state the guide's ``setval`` fixes.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import psycopg
from psycopg import sql

from .harness.postgres import PostgresInfo


@dataclass(frozen=True)
class Estate:
    name: str
    database: str
    user: str
    redis_db: int
    bucket: str


ESTATES = (
    Estate("stream_systems", "streamsystems", "stream_user", 0, "streamsystems-backups"),
    Estate("vitalstream", "vitalstream", "vitalstream_user", 1, "vitalstream-backups"),
)

STREAM_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE trades (
    id bigserial PRIMARY KEY, client_id int NOT NULL, instrument text NOT NULL,
    side char(1) NOT NULL, qty numeric(18, 2) NOT NULL, price numeric(18, 6) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_enabled = false);
CREATE INDEX idx_trades_created_at_client_id ON trades (created_at, client_id);
CREATE TABLE positions (
    id bigserial PRIMARY KEY, client_id int NOT NULL, instrument text NOT NULL,
    qty numeric(18, 2) NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_enabled = false);
CREATE INDEX idx_positions_client_instrument ON positions (client_id, instrument);
CREATE TABLE market_data (
    id bigserial PRIMARY KEY, instrument text NOT NULL, price numeric(18, 6) NOT NULL,
    "timestamp" timestamptz NOT NULL
) WITH (autovacuum_enabled = false);
CREATE INDEX idx_market_data_timestamp ON market_data ("timestamp" DESC);
CREATE TABLE audit_logs (
    id bigserial PRIMARY KEY, actor text NOT NULL, action text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO trades (client_id, instrument, side, qty, price, created_at)
  SELECT g % 500, 'INSTR' || (g % 200), CASE WHEN g % 2 = 0 THEN 'B' ELSE 'S' END,
         (g % 1000) + 1, 100 + (g % 97) / 10.0, now() - (g || ' seconds')::interval
  FROM generate_series(1, 200000) g;
INSERT INTO positions (id, client_id, instrument, qty)
  SELECT g, g % 500, 'INSTR' || (g % 200), g % 10000 FROM generate_series(1, 20000) g;
INSERT INTO market_data (instrument, price, "timestamp")
  SELECT 'INSTR' || (g % 200), 100 + (g % 997) / 10.0, now() - (g || ' seconds')::interval
  FROM generate_series(1, 300000) g;
INSERT INTO audit_logs (actor, action, created_at)
  SELECT 'user' || (g % 50), 'login', now() - (g || ' minutes')::interval FROM generate_series(1, 50000) g;
UPDATE trades SET price = price + 0.01 WHERE id % 10 < 3;
UPDATE positions SET qty = qty + 1;
UPDATE positions SET qty = qty - 1 WHERE id % 2 = 0;
DELETE FROM market_data WHERE id % 5 < 2;
"""

VITAL_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE patients (
    id bigserial PRIMARY KEY, name text NOT NULL, ward text NOT NULL,
    admitted_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE users (
    id bigserial PRIMARY KEY, username text UNIQUE NOT NULL, role text NOT NULL,
    last_login timestamptz
);
CREATE TABLE vital_signs (
    id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients (id),
    heart_rate int NOT NULL, spo2 int NOT NULL, recorded_at timestamptz NOT NULL
) WITH (autovacuum_enabled = false);
CREATE INDEX idx_vital_signs_patient_time ON vital_signs (patient_id, recorded_at);
CREATE TABLE alarms (
    id bigserial PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients (id),
    severity text NOT NULL, active boolean NOT NULL, raised_at timestamptz NOT NULL
) WITH (autovacuum_enabled = false);
CREATE INDEX idx_alarms_active ON alarms (active, raised_at);
INSERT INTO patients (name, ward) SELECT 'patient ' || g, 'ward-' || (g % 12) FROM generate_series(1, 2000) g;
INSERT INTO users (username, role, last_login)
  SELECT 'user' || g, CASE WHEN g % 10 = 0 THEN 'admin' ELSE 'nurse' END, now() - (g || ' hours')::interval
  FROM generate_series(1, 200) g;
INSERT INTO vital_signs (patient_id, heart_rate, spo2, recorded_at)
  SELECT (g % 2000) + 1, 60 + g % 40, 90 + g % 10, now() - (g || ' seconds')::interval
  FROM generate_series(1, 300000) g;
INSERT INTO alarms (patient_id, severity, active, raised_at)
  SELECT (g % 2000) + 1, CASE WHEN g % 7 = 0 THEN 'high' ELSE 'low' END, g % 5 = 0,
         now() - (g || ' minutes')::interval
  FROM generate_series(1, 20000) g;
UPDATE vital_signs SET spo2 = spo2 WHERE id % 2 = 0;
UPDATE alarms SET active = false WHERE active AND id % 3 = 0;
DELETE FROM alarms WHERE id % 4 = 0;
"""

SCHEMAS = {"streamsystems": STREAM_SCHEMA, "vitalstream": VITAL_SCHEMA}


def seed_postgres(admin: PostgresInfo) -> dict[str, dict]:
    """Create each estate's role and database and load its tables.

    Returns per estate the connection facts the inventory needs.
    """
    out: dict[str, dict] = {}
    with psycopg.connect(**admin.conninfo(), autocommit=True) as conn:
        for estate in ESTATES:
            password = secrets.token_urlsafe(18)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(estate.user), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(estate.database), sql.Identifier(estate.user)))
            out[estate.name] = {"database": estate.database, "user": estate.user, "password": password}
    for estate in ESTATES:
        # The schema is created as the owner so the estate's user can maintain it,
        # the way the guides' psql commands run as stream_user / vitalstream_user.
        facts = out[estate.name]
        with psycopg.connect(**admin.conninfo(estate.database), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        with psycopg.connect(**admin.conninfo(estate.database, user=facts["user"], password=facts["password"]),
                             autocommit=True) as conn:
            conn.execute(SCHEMAS[estate.database].replace("CREATE EXTENSION IF NOT EXISTS pg_stat_statements;", ""))
    return out


def seed_redis(client_factory, *, maxmemory: str = "64mb") -> dict[str, int]:
    """Cache, session and stale-session keys per estate db; returns keys per db."""
    counts = {}
    for estate in ESTATES:
        client = client_factory(estate.redis_db)
        client.config_set("maxmemory", maxmemory)
        pipe = client.pipeline(transaction=False)
        for i in range(20000):
            pipe.set(f"cache:quote:{i}", "x" * 200, ex=3600 + i % 600)
        for i in range(2000):
            pipe.set(f"session:{i}", f"user{i % 300}", ex=1800)
        for i in range(3000):
            pipe.set(f"session:expired:{i}", "stale")
        pipe.hset("cache:big:instruments", mapping={f"INSTR{i}": "y" * 100 for i in range(5000)})
        pipe.execute()
        counts[estate.name] = client.dbsize()
    return counts


def seed_s3(client) -> list[str]:
    buckets = []
    for estate in ESTATES:
        client.create_bucket(Bucket=estate.bucket)
        buckets.append(estate.bucket)
    return buckets


LOGROTATE_CONF = """# Written by the lab (lab/seed.py make_lab_logs): rotate the lab's app logs.
"{directory}/app.log" {{
    size 1k
    rotate 4
    missingok
    notifempty
    create 0644
}}
"""


def make_log_dir(directory, owner: str, *, old_days: int = 40):
    """A log directory with a logrotate config, a live log and logs older than the cleanup age.

    What log_maintenance rotates and cleans in the lab. Safe to call again: the
    live log is topped up, old logs are put back, the config is rewritten.
    """
    import os  # noqa: PLC0415
    import time  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # logrotate refuses group- or world-writable log directories
    conf = directory / "logrotate.conf"
    conf.write_text(LOGROTATE_CONF.format(directory=directory))
    conf.chmod(0o644)
    with open(directory / "app.log", "a", encoding="utf-8") as live:
        for i in range(60):
            live.write(f"2026-11-22T02:{i:02d}:00Z INFO {owner} request {i} served\n")
    old = time.time() - old_days * 86400
    for i in range(3):
        path = directory / f"app-2026-10-0{i + 1}.log"
        path.write_text(f"old {owner} log {i}\n" * 100)
        os.utime(path, (old, old))
    return directory


def make_security_logs(directory, owner: str, *, now=None):
    """An auth.log and a security.log (with rotations) for the security scan's log review, stamped relative to now.

    Within the last 24 hours: two failed logins (the lab inventory allows five) and no injection marker; older
    than that, one failed login and one injection marker that the 24-hour review must not count. Rewritten on
    every call, so the stamps stay recent.
    """
    import gzip  # noqa: PLC0415
    from datetime import datetime, timedelta, timezone  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    now = now or datetime.now(timezone.utc)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    def stamp(hours: float) -> str:
        return (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")

    (directory / "auth.log").write_text(
        f"{stamp(3)} INFO {owner} login ok user=nurse7\n"
        f"{stamp(2)} WARN {owner} Failed login user=admin from=127.0.0.1\n"
        f"{stamp(1)} INFO {owner} login ok user=nurse3\n")
    (directory / "auth.log.1").write_text(
        f"{stamp(20)} WARN {owner} Failed login user=nurse9 from=127.0.0.1\n"
        f"{stamp(19)} INFO {owner} login ok user=nurse9\n")
    with gzip.open(directory / "auth.log.2.gz", "wt", encoding="utf-8") as old:
        old.write(f"{stamp(50)} WARN {owner} Failed login user=root from=127.0.0.1\n")
    (directory / "security.log").write_text(
        f"{stamp(30)} WARN {owner} blocked request: SQL injection in query parameter id\n"
        f"{stamp(5)} INFO {owner} security headers checked\n")
    return directory


def make_lab_logs(state_dir, *, old_days: int = 40) -> dict[str, str]:
    """Per estate of the lab, its log directory (make_log_dir) under ``state_dir``/logs/<estate>, with the
    security scan's logs (make_security_logs) in its ``security`` directory."""
    from pathlib import Path  # noqa: PLC0415

    made = {}
    for estate in ESTATES:
        directory = make_log_dir(Path(state_dir) / "logs" / estate.name, estate.name, old_days=old_days)
        make_security_logs(directory / "security", estate.name)
        made[estate.name] = str(directory)
    return made
