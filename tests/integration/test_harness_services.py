"""The harness gives real services on loopback, and nothing else."""
from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.integration


def _listeners_of(pid: int) -> list[str]:
    """Local addresses of the TCP listeners of ``pid`` and its children (from ss)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


@pytest.mark.postgres
def test_postgres_is_real_and_needs_its_password(pg_server, pg_database):
    import psycopg

    with psycopg.connect(**pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE trades (id bigserial PRIMARY KEY, qty int)")
        conn.execute("INSERT INTO trades (qty) SELECT g FROM generate_series(1, 1000) g")
        assert conn.execute("SELECT count(*), sum(qty) FROM trades").fetchone() == (1000, 500500)
        assert conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0] >= 150000
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        assert "pg_stat_statements" in preload
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**{**pg_database, "password": "wrong"}).close()


@pytest.mark.postgres
def test_postgres_listens_on_loopback_only(pg_server):
    pid = int(open(f"{pg_server.data_dir}/postmaster.pid").readline())  # noqa: SIM115
    listeners = _listeners_of(pid)
    assert listeners == [f"127.0.0.1:{pg_server.port}"]


@pytest.mark.redis
def test_redis_is_real_and_loopback_only(redis_server, redis_client):
    redis_client.set("cache:a", "1", ex=60)
    assert redis_client.get("cache:a") == b"1"
    assert 0 < redis_client.ttl("cache:a") <= 60
    assert redis_client.config_get("maxmemory")["maxmemory"] == str(256 * 1024 * 1024)
    assert _listeners_of(redis_server.pid) == [f"127.0.0.1:{redis_server.port}"]


@pytest.mark.s3
def test_s3_multipart_roundtrip(s3_server, s3_bucket, tmp_path):
    import boto3
    from boto3.s3.transfer import TransferConfig

    payload = tmp_path / "blob.bin"
    payload.write_bytes(b"streamops" * (2 * 1024 * 1024))  # 18 MiB: several parts
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    client.upload_file(str(payload), s3_bucket, "db/blob.bin", Config=config)
    head = client.head_object(Bucket=s3_bucket, Key="db/blob.bin")
    assert head["ContentLength"] == payload.stat().st_size
    assert "-" in head["ETag"]  # a multipart ETag: the upload really went in parts
    body = client.get_object(Bucket=s3_bucket, Key="db/blob.bin")["Body"].read()
    assert body == payload.read_bytes()
    assert _listeners_of(s3_server.pid) == [f"127.0.0.1:{s3_server.port}"]
