"""service_latency against a TLS-only PostgreSQL, a password-protected redis-server and an HTTP server on 127.0.0.1.

What each service really saw is read back from it: the sessions PostgreSQL counted, the connections Redis
accepted, the requests the HTTP server answered, and that no connection of the module is left open.
"""
from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
import redis
from ansible.module_utils.testing import patch_module_args
from psycopg import sql

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import APPLICATION_NAME
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import service_latency
from lab.harness.base import free_port, stop_pid, wait_for
from lab.harness.postgres import PostgresServer
from lab.harness.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]

DATABASE = "latency"
PG_PASSWORD_MARK = "pg-latency-s3cret"
REDIS_PASSWORD = "redis-latency-s3cret"
SLOW_SECONDS = 0.05


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator:
    """A TLS-only server (hostssl + scram, verify-full with its own CA), as the lab's, with a database to probe."""
    server = PostgresServer(ssl=True)
    info = server.start()
    try:
        with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        yield info
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_with_password():
    """A redis-server of its own with requirepass, so every probe's connect includes AUTH, as the estates'."""
    instance = RedisServer(password=REDIS_PASSWORD)
    info = instance.start()
    try:
        yield info
    finally:
        stop_pid(info.pid)
        shutil.rmtree(info.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def http_server():
    """/fast answers at once, /slow after SLOW_SECONDS; ``requests`` counts the GETs answered per path."""
    requests: dict[str, int] = {}
    lock = threading.Lock()

    class Pages(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            if self.path == "/slow":
                time.sleep(SLOW_SECONDS)  # the server's own slowness under test, not a wait in the test
            body = b"ok"
            self.send_response(200 if self.path in ("/fast", "/slow") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            with lock:
                requests[self.path] = requests.get(self.path, 0) + 1

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def postgres_login(info, **changes) -> dict:
    """The inventory's postgres_login dict for the TLS server (sslmode verify-full with the lab CA)."""
    login = {"login_host": info.host, "login_port": info.port, "login_user": info.user,
             "login_password": info.password, "database": DATABASE, "sslmode": "verify-full",
             "ca_cert": info.ca_cert, "connect_timeout": 5}
    login.update(changes)
    return login


def redis_login(info, **changes) -> dict:
    login = {"login_host": info.host, "login_port": info.port, "login_password": REDIS_PASSWORD,
             "connect_timeout": 5.0, "socket_timeout": 5.0}
    login.update(changes)
    return login


def run_module(capsys, **args) -> dict:
    with patch_module_args({"interval": 0, **args}), pytest.raises(SystemExit):
        service_latency.main()
    result = json.loads(capsys.readouterr().out)
    result.pop("invocation", None)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == [], result
    return result


def by_name(result) -> dict:
    return {record["name"]: record for record in result["records"]}


def pg_sessions(info) -> int:
    with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
        return conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (DATABASE,)).fetchone()[0]


def pg_open_sessions(info) -> int:
    with psycopg.connect(**info.conninfo(), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                            (APPLICATION_NAME,)).fetchone()[0]


def redis_stats(info) -> tuple[int, list[str]]:
    """Connections accepted so far, and the names of the clients connected now."""
    client = redis.Redis(host=info.host, port=info.port, password=REDIS_PASSWORD)
    try:
        accepted = client.info("stats")["total_connections_received"]
        names = [entry.get("name", "") for entry in client.client_list()]
        return accepted, names
    finally:
        client.close()


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check-mode"])
def test_each_service_is_measured_for_real_and_within_its_thresholds(
        check_mode, tls_postgres, redis_with_password, http_server, capsys):
    base_url, requests = http_server
    sessions_before = pg_sessions(tls_postgres)
    accepted_before = redis_stats(redis_with_password)[0]
    gets_before = requests.get("/fast", 0)
    result = run_module(capsys, _ansible_check_mode=check_mode, probes=5,
                        postgres=postgres_login(tls_postgres), redis=redis_login(redis_with_password),
                        # Generous: this is a shared 2-core CI box; the breach tests below judge the thresholds.
                        postgres_max_p95_ms=1000, postgres_max_connect_p95_ms=3000,
                        redis_max_p95_ms=1000, redis_max_connect_p95_ms=1000,
                        http=[{"name": "fast page", "url": f"{base_url}/fast", "max_p95_ms": 1000,
                               "max_connect_p95_ms": 1000}])
    records = by_name(result)
    pg_name = f"postgres 127.0.0.1:{tls_postgres.port}/{DATABASE}"
    redis_name = f"redis 127.0.0.1:{redis_with_password.port}"
    assert list(records) == [pg_name, redis_name, "http fast page"]
    assert result["changed"] is False
    assert result["msg"] == "3 target(s) measured over 5 probe(s), all within their thresholds"
    for record in records.values():
        after = record["after"]
        assert record["status"] == "ok" and record["action"] == "latency", record
        assert after["probes"] == 5 and "remedy" not in after
        assert 0 < after["request_p50_ms"] <= after["request_p95_ms"] == after["max_ms"]  # 5 probes: p95 is the max
        assert 0 < after["connect_p50_ms"] <= after["connect_p95_ms"] == after["connect_max_ms"]
    assert records[pg_name]["after"]["threshold_ms"] == 1000 and records[pg_name]["detail"].startswith("SELECT 1 p50 ")
    assert records[redis_name]["detail"].startswith("PING p50 ")
    # What the services saw: 5 connections each (one kept for the 5 requests), 5 GETs, nothing left open.
    accepted_after, client_names = redis_stats(redis_with_password)
    assert accepted_after - accepted_before == 5 + 1  # + the connection that read the stats
    assert "streamops.maintenance" not in client_names
    assert requests["/fast"] - gets_before == 5
    assert pg_open_sessions(tls_postgres) == 0
    # PostgreSQL counts a session when it ends; the count can trail the disconnect by a moment.
    wait_for(lambda: pg_sessions(tls_postgres) - sessions_before == 5, timeout=5, what="5 sessions counted")


def test_thresholds_so_low_that_they_breach_name_the_figure_and_the_threshold(tls_postgres, redis_with_password,
                                                                              capsys):
    result = run_module(capsys, probes=3, postgres=postgres_login(tls_postgres), redis=redis_login(redis_with_password),
                        postgres_max_p95_ms=0.0001, redis_max_connect_p95_ms=0.0001, redis_max_p95_ms=1000)
    pg_record, redis_record = result["records"]
    assert pg_record["status"] == "breach" and redis_record["status"] == "breach"
    assert pg_record["detail"].startswith("SELECT 1 p95 ")
    assert " ms is over 0.0001 ms (SELECT 1 p50 " in pg_record["detail"]
    assert redis_record["detail"].startswith("connect p95 ") and " ms is over 0.0001 ms (" in redis_record["detail"]
    assert "PING p95" not in redis_record["detail"].split(" (")[0]  # PING was within its threshold
    assert pg_record["after"]["remedy"].startswith("SELECT 1 does no work")
    assert redis_record["after"]["remedy"].startswith("Look at the Redis host's CPU")
    assert pg_record["after"]["probes"] == redis_record["after"]["probes"] == 3
    assert result["msg"].endswith(f"over a threshold or not answering: {pg_record['name']}, {redis_record['name']}")


def test_an_endpoint_that_answers_slowly_breaches_its_threshold(http_server, capsys):
    base_url, requests = http_server
    slow_before = requests.get("/slow", 0)
    result = run_module(capsys, probes=3, http=[
        {"name": "slow page", "url": f"{base_url}/slow", "max_p95_ms": 20},
        {"name": "fast page", "url": f"{base_url}/fast", "max_p95_ms": 1000, "max_connect_p95_ms": 1000}])
    slow, fast = result["records"]
    assert slow["status"] == "breach" and fast["status"] == "ok"
    assert slow["after"]["request_p50_ms"] >= SLOW_SECONDS * 1000
    assert slow["detail"].startswith(f"GET p95 {slow['after']['request_p95_ms']:.2f} ms is over 20 ms")
    assert slow["after"]["threshold_ms"] == 20 and slow["after"]["probes"] == 3
    assert requests["/slow"] - slow_before == 3


def test_what_does_not_answer_is_a_breach_with_the_error_not_a_failure(tls_postgres, redis_with_password,
                                                                       http_server, capsys):
    base_url = http_server[0]
    nothing = free_port()
    started = time.monotonic()
    result = run_module(capsys, probes=5, postgres=postgres_login(tls_postgres, login_port=nothing),
                        redis=redis_login(redis_with_password, login_port=nothing),
                        http=[{"name": "nothing", "url": f"http://127.0.0.1:{nothing}/"},
                              {"name": "missing page", "url": f"{base_url}/missing"}])
    assert time.monotonic() - started < 10  # no retries, and no waiting out the probes of a dead target
    assert "failed" not in result
    records = by_name(result)
    assert [record["status"] for record in records.values()] == ["breach"] * 4
    pg_record = records[f"postgres 127.0.0.1:{nothing}/{DATABASE}"]
    assert pg_record["detail"].startswith("no answer (0 of 5 probe(s) answered): cannot connect to PostgreSQL ")
    assert "refused" in pg_record["detail"].lower()
    assert records[f"redis 127.0.0.1:{nothing}"]["detail"].startswith(
        f"no answer (0 of 5 probe(s) answered): cannot connect to Redis 127.0.0.1:{nothing} db 0: ")
    assert "Connection refused" in records["http nothing"]["detail"]
    assert records["http missing page"]["detail"] == (
        f"no answer (0 of 5 probe(s) answered): GET {base_url}/missing answered HTTP 404, expected 200")
    assert all(record["after"]["remedy"] and record["after"]["probes"] == 0 for record in records.values())


def test_tls_settings_and_passwords_apply_and_never_show(tls_postgres, redis_with_password, capsys):
    result = run_module(capsys, probes=2,
                        postgres=postgres_login(tls_postgres, ca_cert=tls_postgres.wrong_ca_cert),
                        redis=redis_login(redis_with_password, login_password=PG_PASSWORD_MARK))
    pg_record, redis_record = result["records"]
    assert pg_record["status"] == "breach" and redis_record["status"] == "breach"
    assert f"did not verify against ca_cert {tls_postgres.wrong_ca_cert} (sslmode verify-full)" in pg_record["detail"]
    assert "invalid username-password pair" in redis_record["detail"]
    text = json.dumps(result)
    assert tls_postgres.password not in text and PG_PASSWORD_MARK not in text and REDIS_PASSWORD not in text
