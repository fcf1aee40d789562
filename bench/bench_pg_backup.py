"""pg_backup and backup_verify against the guide's backup, on a real PostgreSQL 15 of at least 1 GB.

One database (the four Stream Systems tables, >= 1 GB on disk) in a throwaway
cluster, one S3 endpoint (moto on 127.0.0.1), one run:

1. The guide: ``pg_dump | gzip > file.sql.gz``, then the upload (boto3 upload_file,
   the same transfer as ours, standing in for ``aws s3 sync``), then the guide's
   check ``gunzip -c file | head -n 100``.
   Ours: pg_backup (dump in directory format with 2 jobs, compress_level 1, sha256 while
   writing, manifest, multipart upload), the module's logic called in-process.
   Goal: ours <= 0.6x the guide's wall time.
2. A bare ``pg_restore -j2`` of our archive into a new database, against backup_verify's
   restore test of the same set (create the scratch database, pg_restore -j2, count the
   critical tables, drop it). Goal: <= 1.1x. The whole backup_verify (every byte hashed,
   the archive read to its end, then the restore test) is printed too.

``python bench/bench_pg_backup.py 0.5`` loads 0.5 GB instead of 1. Exits 0 either way.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

import boto3  # noqa: E402
import psycopg  # noqa: E402

from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import (  # noqa: E402
    run_backup_verify,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_backup import run_pg_backup  # noqa: E402
from lab.harness.postgres import PostgresServer, postgres_bindir  # noqa: E402
from lab.harness.s3 import S3Server  # noqa: E402

GB = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
ROWS = int(4_200_000 * GB)  # ~1.05 GB with the four tables below
LOAD = """
CREATE TABLE trades (id bigserial PRIMARY KEY, client_id int NOT NULL, instrument text NOT NULL,
    side char(1) NOT NULL, qty numeric(18, 2) NOT NULL, price numeric(18, 6) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), note text);
CREATE TABLE positions (id bigserial PRIMARY KEY, client_id int NOT NULL, instrument text NOT NULL,
    qty numeric(18, 2) NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), note text);
CREATE TABLE market_data (id bigserial PRIMARY KEY, instrument text NOT NULL, price numeric(18, 6) NOT NULL,
    "timestamp" timestamptz NOT NULL, source text);
CREATE TABLE audit_logs (id bigserial PRIMARY KEY, actor text NOT NULL, action text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), detail text);
INSERT INTO trades (client_id, instrument, side, qty, price, created_at, note)
  SELECT g % 500, 'INSTR' || (g % 200), CASE WHEN g % 2 = 0 THEN 'B' ELSE 'S' END, (g % 1000) + 1,
         100 + (g % 97) / 10.0, now() - (g || ' seconds')::interval, md5(g::text)
  FROM generate_series(1, {rows}) g;
INSERT INTO positions (client_id, instrument, qty, note)
  SELECT g % 500, 'INSTR' || (g % 200), g % 10000, md5(g::text) FROM generate_series(1, {rows} / 2) g;
INSERT INTO market_data (instrument, price, "timestamp", source)
  SELECT 'INSTR' || (g % 200), 100 + (g % 997) / 10.0, now() - (g || ' seconds')::interval, 'feed-' || (g % 7)
  FROM generate_series(1, {rows}) g;
INSERT INTO audit_logs (actor, action, created_at, detail)
  SELECT 'user' || (g % 50), 'login', now() - (g || ' minutes')::interval, md5(g::text) || md5((g + 1)::text)
  FROM generate_series(1, {rows} / 2) g;
"""


def timed(action):
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def main() -> int:
    pg = PostgresServer(settings={"max_wal_size": "4GB", "checkpoint_timeout": "30min"})
    info = pg.start()
    s3_server = S3Server()
    s3 = s3_server.start()
    work = Path(tempfile.mkdtemp(prefix="streamops-bench-backup-"))
    bindir = postgres_bindir()
    env = {"PGHOST": info.host, "PGPORT": str(info.port), "PGUSER": info.user, "PGPASSWORD": info.password,
           "PATH": f"{bindir}:/usr/bin:/bin"}
    client = boto3.client("s3", endpoint_url=s3.endpoint_url, aws_access_key_id=s3.access_key,
                          aws_secret_access_key=s3.secret_key, region_name=s3.region)
    client.create_bucket(Bucket="bench")
    s3_options = {"bucket": "bench", "prefix": "ours", "endpoint_url": s3.endpoint_url, "access_key": s3.access_key,
                  "secret_key": s3.secret_key, "region": s3.region, "multipart_chunk_mb": 64, "max_concurrency": 4,
                  "storage_class": "STANDARD", "validate_certs": True}
    try:
        with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE trading")
        seconds = timed(lambda: psycopg.connect(**info.conninfo("trading"), autocommit=True).execute(
            LOAD.format(rows=ROWS)))[0]
        with psycopg.connect(**info.conninfo("trading"), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            size = conn.execute("SELECT pg_database_size('trading')").fetchone()[0]
        print(f"database trading: {size / 1e9:.2f} GB on disk (loaded in {seconds:.0f}s)", flush=True)

        def guide() -> None:
            target = work / "guide" / "streamsystems_full.sql.gz"
            target.parent.mkdir()
            with target.open("wb") as out:
                dump = subprocess.Popen([str(bindir / "pg_dump"), "-d", "trading"], stdout=subprocess.PIPE, env=env)
                subprocess.run(["gzip"], stdin=dump.stdout, stdout=out, check=True)
                dump.stdout.close()
                assert dump.wait() == 0
            client.upload_file(str(target), "bench", "guide/streamsystems_full.sql.gz")
            head = subprocess.Popen(["gunzip", "-c", str(target)], stdout=subprocess.PIPE)
            subprocess.run(["head", "-n", "100"], stdin=head.stdout, stdout=subprocess.DEVNULL, check=True)
            head.stdout.close()
            head.wait()

        params = {"operation": "backup", "login_host": info.host, "login_port": info.port, "login_user": info.user,
                  "login_password": info.password, "database": "trading", "connect_timeout": 10,
                  "backup_root": str(work / "ours"), "name": "trading", "parts": ["full"], "format": "directory",
                  "jobs": 2, "compress_level": 1, "critical_tables": ["trades", "positions"], "config_paths": [],
                  "pg_bin_dir": str(bindir), "s3": s3_options, "retention": None, "redis": None}
        guide_s = timed(guide)[0]
        print(f"guide  pg_dump | gzip, upload, gunzip | head: {guide_s:6.1f}s  "
              f"({(work / 'guide' / 'streamsystems_full.sql.gz').stat().st_size / 1e6:.0f} MB)", flush=True)
        ours_s, result = timed(lambda: run_pg_backup(params, check_mode=False))
        steps = ", ".join(f"{r['action']} {r['seconds']:.1f}s" for r in result["records"] if r["seconds"] is not None)
        ours_bytes = sum(f["bytes"] for f in result["manifest"]["files"])
        print(f"ours   pg_backup (dump -j2 -Z1, sha256, upload): {ours_s:6.1f}s  ({ours_bytes / 1e6:.0f} MB; {steps})",
              flush=True)
        print(f"backup: ours / guide = {ours_s / guide_s:.2f}x (goal <= 0.6x)\n", flush=True)

        archive = Path(result["path"]) / "full.dir"
        with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bare_restore")
        bare_s = timed(lambda: subprocess.run(
            [str(bindir / "pg_restore"), "-j2", "--no-owner", "-d", "bare_restore", str(archive)],
            env=env, check=True))[0]
        with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
            conn.execute("DROP DATABASE bare_restore")
        print(f"bare   pg_restore -j2 into an empty database: {bare_s:6.1f}s", flush=True)
        verify = {"login_host": info.host, "login_port": info.port, "login_user": info.user,
                  "login_password": info.password, "connect_timeout": 10, "path": result["path"], "s3": None,
                  "restore_test": True, "scratch_database": "verify_scratch", "maintenance_database": "postgres",
                  "jobs": 2, "sql_checks": [], "pg_bin_dir": str(bindir), "max_age": "1h", "fail_on_unverified": True}
        verify_s, verified = timed(lambda: run_backup_verify(verify, check_mode=False))
        assert verified["verified"], verified["records"]
        restore_s = next(r["seconds"] for r in verified["records"] if r["name"] == "restore")
        print(f"ours   restore test (create, pg_restore -j2, row counts, drop): {restore_s:6.1f}s; the whole "
              f"backup_verify (hashes, archive read, restore test) {verify_s:.1f}s", flush=True)
        print(f"restore test: ours / bare = {restore_s / bare_s:.2f}x (goal <= 1.1x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        s3_server.stop()
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
