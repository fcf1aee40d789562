"""pytest fixtures for the data services: PostgreSQL, Redis, S3 (moto).

Session-scoped servers, per-test databases/buckets; every server is stopped at
session end, also when tests fail.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from .postgres import PostgresInfo, PostgresServer
from .redis import RedisInfo, RedisServer
from .s3 import S3Info, S3Server, client_env

# boto3 must never fall back to the instance-metadata address (not loopback).
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresInfo]:
    server = PostgresServer()
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_dr_server() -> Iterator[PostgresInfo]:
    """A second server beside pg_server (TLS only, like the lab's postgres_dr): the DR test's target."""
    server = PostgresServer(ssl=True)
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture()
def pg_database(pg_server: PostgresInfo) -> Iterator[dict]:
    """A fresh database for one test; its connection parameters (psycopg kwargs)."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_server.conninfo(name)
    finally:
        with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisInfo]:
    server = RedisServer(maxmemory="256mb")
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture()
def redis_client(redis_server: RedisInfo):
    """A client on an emptied server: each test starts from no keys."""
    import redis  # noqa: PLC0415

    client = redis.Redis(host=redis_server.host, port=redis_server.port, password=redis_server.password)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Info]:
    server = S3Server()
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture()
def s3_env(s3_server: S3Info, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point boto3 (and child processes) at the lab endpoint for one test."""
    env = client_env(s3_server.endpoint_url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture()
def s3_bucket(s3_server: S3Info, s3_env: dict[str, str]) -> Iterator[str]:
    import boto3  # noqa: PLC0415

    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    name = f"streamops-test-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        paginator = client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=name):
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
        client.delete_bucket(Bucket=name)
