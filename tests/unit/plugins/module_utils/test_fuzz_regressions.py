"""Inputs the bad-input fuzzing (tests/reliability/test_fuzz_modules.py) found ending in a traceback, each now
refused by the collection's own checks with a message naming the option and the value."""
from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import (
    dependency_audit,
    endpoints,
    k8s_conn,
    notify,
    service_latency,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError
from ansible_collections.streamops.maintenance.plugins.module_utils.timeouts import timeout_problem

MAIL = {**{key: None for key in notify.channel_suboptions()},
        "name": "mail", "type": "smtp", "host": "127.0.0.1", "port": 1, "to": ["ops@example.test"],
        "from": "bot@example.test", "starttls": False}
LATENCY = {"probes": 2, "interval": 0.0, "timeout": 5.0, "postgres": None, "redis": None, "http": [],
           "postgres_max_p95_ms": 50.0, "postgres_max_connect_p95_ms": 250.0,
           "redis_max_p95_ms": 10.0, "redis_max_connect_p95_ms": 50.0}


def refuse_to_run(*args, **kwargs):
    raise AssertionError("a tool ran despite bad input")


@pytest.mark.parametrize("call, message", [
    # smtplib: socket.settimeout -> OverflowError: timestamp out of range for platform time_t
    pytest.param(lambda: notify.parse_channel({**MAIL, "timeout": 2.9835382508099384e+16}, 1),
                 "channel 'mail': timeout must be at most 604800 seconds (a week), got 2.9835382508099384e+16",
                 id="maintenance_notify channel timeout 3e16"),
    # socket.create_connection -> OverflowError
    pytest.param(lambda: endpoints.run_endpoint_check({"timeout": float("inf"), "validate_certs": True,
                                                       "tcp": [], "http": []}),
                 "timeout must be at most 604800 seconds (a week), got inf", id="endpoint_check timeout inf"),
    pytest.param(lambda: endpoints.run_endpoint_check({"timeout": float("nan"), "validate_certs": True,
                                                       "tcp": [], "http": []}),
                 "timeout must be a number of seconds, got nan", id="endpoint_check timeout nan"),
    # subprocess (selectors.poll) -> OverflowError: timeout is too large
    pytest.param(lambda: dependency_audit.run_dependency_audit(
        {"audits": [{"name": "tools", "tool": "pip-audit", "path": "/", "executable": "/bin/true"}],
         "timeout": 2147483648}, runner=refuse_to_run, environ={}),
        "timeout must be at most 604800 seconds (a week), got 2147483648", id="dependency_audit timeout 2**31"),
    # urllib3: sock.settimeout -> OverflowError: timestamp too large to convert to C _PyTime_t
    pytest.param(lambda: k8s_conn.check_request_timeout(9223372036854775808),
                 "request_timeout must be at most 604800 seconds (a week), got 9223372036854775808",
                 id="k8s request_timeout 2**63"),
    pytest.param(lambda: service_latency.run_service_latency({**LATENCY, "timeout": 1e16}),
                 "timeout must be at most 604800 seconds (a week), got 1e+16", id="service_latency timeout 1e16"),
])
def test_a_timeout_the_os_cannot_take_is_refused_by_name(call, message):
    with pytest.raises(MaintenanceError) as raised:
        call()
    assert raised.value.msg == message


@pytest.mark.parametrize("value, message", [
    (0, "timeout must be above 0 seconds, got 0"),
    (-1.5, "timeout must be above 0 seconds, got -1.5"),
    (float("nan"), "timeout must be a number of seconds, got nan"),
    (float("inf"), "timeout must be at most 604800 seconds (a week), got inf"),
    (True, "timeout must be a number of seconds, got True"),
    ("10", "timeout must be a number of seconds, got '10'"),
    (604801, "timeout must be at most 604800 seconds (a week), got 604801"),
])
def test_timeout_problem_names_the_value(value, message):
    assert timeout_problem(value) == message


@pytest.mark.parametrize("value", [0.001, 1, 30.5, 604800])
def test_usable_timeouts_pass(value):
    assert timeout_problem(value) is None


@pytest.mark.parametrize("url", ["http://[::1", "https://[127.0.0.1/x"])
def test_an_unclosed_ipv6_bracket_in_an_endpoint_url_is_named(url):
    # urllib.parse.urlsplit -> ValueError: Invalid IPv6 URL, which escaped endpoint_check as a traceback.
    with pytest.raises(MaintenanceError) as raised:
        endpoints.run_endpoint_check({"timeout": 2, "validate_certs": True, "tcp": [],
                                      "http": [{"name": "count", "url": url}]})
    assert raised.value.msg == f"http[1]: url {url!r} must be an http(s) URL (Invalid IPv6 URL)"


class CancelledCatalog:
    """A connection whose catalog read is cancelled as statement_timeout: 1 (ms) cancelled it on the real server."""

    def __init__(self):
        self.closed = False

    def execute(self, query, params=None):
        import psycopg  # noqa: PLC0415

        if "set_config" in str(query) or "SET TRANSACTION" in str(query):
            return None
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    def transaction(self):
        import contextlib  # noqa: PLC0415

        return contextlib.nullcontext()

    def close(self):
        self.closed = True


@pytest.mark.parametrize("statement_timeout", [1, 10])
def test_pg_compliance_statement_timeout_on_the_catalog_read_is_a_message(statement_timeout, monkeypatch):
    # psycopg.errors.QueryCanceled escaped pg_compliance as a traceback when the catalog read (before the
    # per-check reads, which are timed apart) hit the statement_timeout the fuzzing gave it.
    from ansible_collections.streamops.maintenance.plugins.module_utils import pg_compliance  # noqa: PLC0415

    conn = CancelledCatalog()
    monkeypatch.setattr(pg_compliance, "connect", lambda kwargs: conn)
    params = {"login_host": "127.0.0.1", "login_port": 5432, "database": "fuzz_seed", "lock_timeout": 2000,
              "statement_timeout": statement_timeout,
              "retention": [{"name": "trades-7y", "table": "trades", "column": "created_at", "max_age": "2555d",
                             "expect": "kept"}]}
    with pytest.raises(MaintenanceError) as raised:
        pg_compliance.run_pg_compliance(params)
    assert raised.value.msg.startswith(f"the catalog read before the checks was cancelled by statement_timeout "
                                       f"({statement_timeout} ms): canceling statement due to statement timeout")
    assert "nothing was checked" in raised.value.msg and conn.closed


REDIS = {"login_host": "127.0.0.1", "login_port": 6379, "login_unix_socket": None, "login_user": None,
         "login_password": None, "db": 0, "tls": False, "validate_certs": True, "ca_certs": None,
         "client_cert_file": None, "client_key_file": None, "socket_timeout": 10.0, "connect_timeout": 5.0}


@pytest.mark.parametrize("changes, message", [
    # redis-py: sock.settimeout -> ValueError: Invalid value NaN (not a number) / OverflowError
    ({"socket_timeout": float("nan")}, "socket_timeout must be a number of seconds, got nan"),
    ({"socket_timeout": 613716439820130.0}, "socket_timeout must be at most 604800 seconds (a week), got 613716439820130.0"),
    ({"connect_timeout": float("inf")}, "connect_timeout must be at most 604800 seconds (a week), got inf"),
    # 'cannot connect to Redis :6379' did not say the host was empty
    ({"login_host": ""}, "login_host '' is empty: give the Redis server's host name or address, or login_unix_socket"),
    ({"login_host": " "}, "login_host ' ' is empty"),
    ({"login_unix_socket": " "}, "login_unix_socket ' ' is empty"),
])
def test_redis_connection_options_are_refused_by_name(changes, message):
    from ansible_collections.streamops.maintenance.plugins.module_utils import redis_conn  # noqa: PLC0415

    with pytest.raises(MaintenanceError) as raised:
        redis_conn.client_kwargs({**REDIS, **changes})
    assert raised.value.msg.startswith(message)


def test_the_first_redis_ping_is_tried_once(monkeypatch):
    # tls: true against a plain server took 61 s for socket_timeout 5: redis-py retried the handshake 3 times.
    from ansible_collections.streamops.maintenance.plugins.module_utils import redis_conn  # noqa: PLC0415

    class Client:
        def __init__(self, **kwargs):
            self.retry = "redis-py's default"
            self.retries_at_ping = None

        def get_retry(self):
            return self.retry

        def set_retry(self, retry):
            self.retry = retry

        def ping(self):
            self.retries_at_ping = self.retry._retries
            return True

    monkeypatch.setattr(redis_conn.redis, "Redis", Client)
    client = redis_conn.connect({"host": "127.0.0.1", "port": 6379})
    assert client.retries_at_ping == 0
    assert client.retry == "redis-py's default"  # later commands keep redis-py's retries


def test_prometheus_url_with_an_unclosed_ipv6_bracket_is_named():
    # prometheus_rules/prometheus_tsdb: urllib.parse.urlsplit -> ValueError: Invalid IPv6 URL (a traceback)
    from ansible_collections.streamops.maintenance.plugins.module_utils import prometheus_conn  # noqa: PLC0415

    with pytest.raises(MaintenanceError) as raised:
        prometheus_conn.base_url_of("http://[::1")
    assert raised.value.msg == "url must be http(s)://host[:port][/prefix], got 'http://[::1' (Invalid IPv6 URL)"


def test_prometheus_data_dir_with_a_name_too_long_is_named(tmp_path):
    # Path.exists() raises OSError [Errno 36] File name too long instead of answering False: a traceback.
    from ansible_collections.streamops.maintenance.plugins.module_utils import prometheus_tsdb  # noqa: PLC0415

    data_dir = str(tmp_path / ("x" * 300))
    with pytest.raises(MaintenanceError) as raised:
        prometheus_tsdb.check_data_dir(data_dir)
    assert raised.value.msg.startswith(f"data_dir {data_dir!r} cannot be read: [Errno 36] File name too long")


@pytest.mark.parametrize("read", ["service", "deployment", "endpoints"])
def test_blue_green_on_kubernetes_names_an_api_server_that_does_not_answer(read):
    # blue_green_deploy (platform kubernetes) ended in urllib3's MaxRetryError traceback: only ApiException was caught.
    kubernetes = pytest.importorskip("kubernetes")
    from ansible_collections.streamops.maintenance.plugins.module_utils.platform_k8s import K8sPlatform  # noqa: PLC0415

    configuration = kubernetes.client.Configuration(host="https://127.0.0.1:1")  # nothing listens on port 1
    configuration.verify_ssl = False
    platform = K8sPlatform(kubernetes.client.ApiClient(configuration), namespace="stream", app="api", image="api")
    calls = {"service": lambda: platform.read_service("api"), "deployment": lambda: platform.deployment("blue"),
             "endpoints": platform.endpoints}
    with pytest.raises(MaintenanceError) as raised:
        calls[read]()
    assert "in namespace stream failed: cannot reach the Kubernetes API server" in raised.value.msg


@pytest.mark.parametrize("options, message", [
    # pg_backup: found only by the upload, after pg_dump had written a whole local set
    ({"bucket": "semi;colon"}, "s3.bucket 'semi;colon' is not an S3 bucket name"),
    ({"bucket": "quote'\""}, "s3.bucket 'quote\\'\"' is not an S3 bucket name"),
    ({"bucket": ""}, "s3.bucket '' is not an S3 bucket name"),
    # boto3.client: botocore.exceptions.InvalidRegionError (a traceback)
    ({"bucket": "fuzz-backups", "region": "0"}, "s3 options refused (region '0', endpoint_url None): Provided region_name "
                                                "'0' doesn't match a supported format."),
])
def test_s3_options_are_refused_by_name_before_any_work(options, message):
    pytest.importorskip("boto3")
    from ansible_collections.streamops.maintenance.plugins.module_utils.s3 import S3Store  # noqa: PLC0415

    with pytest.raises(MaintenanceError) as raised:
        S3Store(options)
    assert raised.value.msg.startswith(message), raised.value.msg


def test_pg_compliance_says_in_which_database_a_table_is_missing():
    # database: '' means libpq's default database: 'table public.trades does not exist' did not say which one.
    from types import SimpleNamespace  # noqa: PLC0415

    from ansible_collections.streamops.maintenance.plugins.module_utils import pg_compliance  # noqa: PLC0415

    class Catalog:
        info = SimpleNamespace(dbname="postgres")

        def execute(self, query, params=None):
            return SimpleNamespace(fetchone=lambda: None)

    rules = pg_compliance.parse_rules([{"name": "trades-7y", "table": "trades", "column": "created_at",
                                        "max_age": "2555d", "expect": "kept"}])
    with pytest.raises(MaintenanceError) as raised:
        pg_compliance.resolve_columns(Catalog(), pg_compliance.wanted_columns(rules, None))
    assert raised.value.msg == ("retention rule 'trades-7y': table public.trades does not exist; nothing was read "
                                "(in database 'postgres')")


def _cert_renew_params(tmp_path, directory_url):
    return {"certificates": [{"name": "web", "domains": None, "cert_path": str(tmp_path / "web.crt"),
                              "key_path": str(tmp_path / "web.key"), "secret": None, "restart_deployments": []}],
            "renew_before_days": 30,
            "acme": {"directory_url": directory_url, "ca_bundle": None, "account_key_path": str(tmp_path / "a.key"),
                     "email": None, "challenge": "http-01", "webroot": str(tmp_path), "timeout": 90},
            "nginx": {"binary": "nginx", "conf": str(tmp_path / "nginx.conf"),
                      "verify": {"address": "127.0.0.1:443", "server_name": None, "timeout": 10}},
            "rollout_timeout": 300, "kubeconfig": None, "context": None, "request_timeout": 30,
            "windows": None, "window": None, "blackouts": None, "timezone": "UTC", "emergency": None, "now": None}


@pytest.mark.parametrize("call, message", [
    # each: urllib.parse.urlsplit -> ValueError: Invalid IPv6 URL, a traceback before
    pytest.param(lambda tmp: service_latency.parse_http({"name": "front", "url": "http://[::1"}, 1),
                 "http[1]: url 'http://[::1' is not an http:// or https:// URL (Invalid IPv6 URL)", id="service_latency"),
    pytest.param(lambda tmp: notify.parse_channel({**{k: None for k in notify.channel_suboptions()},
                                                   "name": "hook", "type": "webhook", "url": "http://[::1"}, 1),
                 "channel 'hook': url must be an http(s) URL with a host (Invalid IPv6 URL)", id="maintenance_notify"),
    pytest.param(lambda tmp: __import__("ansible_collections.streamops.maintenance.plugins.module_utils.cert_renew",
                                        fromlist=["validate"]).validate(_cert_renew_params(tmp, "https://[::1")),
                 "acme.directory_url 'https://[::1' must be an https URL of an ACME directory (Invalid IPv6 URL)",
                 id="certificate_renew"),
    pytest.param(lambda tmp: __import__("ansible_collections.streamops.maintenance.plugins.module_utils.compose_nginx",
                                        fromlist=["front_url_of"]).front_url_of("http://[::1"),
                 "compose front_url 'http://[::1' must be an http(s) URL such as http://127.0.0.1:8080 "
                 "(Invalid IPv6 URL)", id="blue_green_deploy compose"),
])
def test_an_unclosed_ipv6_bracket_is_named_by_every_url_option(call, message, tmp_path):
    with pytest.raises(MaintenanceError) as raised:
        call(tmp_path)
    assert raised.value.msg == message


@pytest.mark.parametrize("operation", ["analyze", "vacuum"])
def test_pg_maintenance_says_in_which_database_a_named_table_is_missing(operation, monkeypatch):
    # database: '' (libpq's default database) with tables: [trades]: "table 'trades' does not exist (looked for
    # public.trades)" did not say it looked in database 'postgres'.
    from types import SimpleNamespace  # noqa: PLC0415

    from ansible_collections.streamops.maintenance.plugins.module_utils import pg_runner  # noqa: PLC0415

    conn = SimpleNamespace(info=SimpleNamespace(dbname="postgres"), close=lambda: None)
    monkeypatch.setattr(pg_runner, "connect", lambda kwargs: conn)
    monkeypatch.setattr(pg_runner, "set_timeouts", lambda *args, **kwargs: None)
    monkeypatch.setattr(pg_runner, "server_version_num", lambda c: 150000)
    monkeypatch.setattr(pg_runner, "_measure_tables", lambda *args, **kwargs: {})
    params = {"operation": operation, "tables": ["trades"], "schemas": None, "exclude_schemas": None,
              "settings": None, "database": "", "login_host": "127.0.0.1", "login_port": 5432,
              "min_dead_tuples": None, "min_dead_ratio": None, "min_bloat_ratio": None, "stale_statistics_ratio": 0.2,
              "refresh_statistics": False, "jobs": 1, "concurrently": True, "lock_timeout": 5000,
              "statement_timeout": 60000, "initial_throughput_mb_s": 25, "long_query_seconds": 300,
              "top_statements": 10, "top_relations": 10, "indexes": None, "max_connections_percent": None,
              "windows": None, "window": None, "blackouts": None, "timezone": "UTC", "emergency": None, "now": None}
    with pytest.raises(MaintenanceError) as raised:
        pg_runner.run_pg_maintenance(params, check_mode=True)
    assert raised.value.msg == "table 'trades' does not exist (looked for public.trades) in database 'postgres'"


@pytest.mark.parametrize("now, message", [
    # window.occurrences: OverflowError: date value out of range (a traceback)
    ("0001-01-01T00:00:00Z", "now '0001-01-01T00:00:00Z' is outside the years 1970 to 9000"),
    ("9999-12-31T23:59:59Z", "now '9999-12-31T23:59:59Z' is outside the years 1970 to 9000"),
])
def test_a_now_datetime_cannot_compute_windows_in_is_named(now, message):
    from ansible_collections.streamops.maintenance.plugins.module_utils import window  # noqa: PLC0415

    with pytest.raises(MaintenanceError) as raised:
        window.parse_now(now)
    assert raised.value.msg == message


@pytest.mark.parametrize("changes, message", [
    # deque(maxlen=2**63): OverflowError: Python int too large to convert to C ssize_t
    ({"newest_lines": 9223372036854775808}, "newest_lines must be at most 1000, got 9223372036854775808"),
    ({"line_max_chars": 10 ** 12}, "line_max_chars must be at most 100000, got 1000000000000"),
])
def test_log_pattern_review_report_sizes_are_bounded(changes, message, tmp_path):
    from ansible_collections.streamops.maintenance.plugins.module_utils import log_pattern_review  # noqa: PLC0415

    log = tmp_path / "app.log"
    log.write_text("2026-11-22T02:00:00Z ERROR boom\n")
    params = {"files": [str(log)], "patterns": [{"name": "errors", "regex": "ERROR", "max": 0}], "hours": 24,
              "timestamp": {}, "newest_lines": 5, "line_max_chars": 200, "redact": [], "now": "2026-11-22T03:00:00Z",
              **changes}
    with pytest.raises(MaintenanceError) as raised:
        log_pattern_review.parse_review(params)
    assert raised.value.msg == message


@pytest.mark.parametrize("lock_ms, statement_ms, message", [
    # PostgreSQL: invalid value for parameter "statement_timeout": "2147483648ms" (a psycopg traceback)
    (5000, 2147483648, "statement_timeout must be 0 to 2147483647 milliseconds, got 2147483648"),
    (-1, 60000, "lock_timeout must be 0 to 2147483647 milliseconds, got -1"),
])
def test_postgres_session_timeouts_outside_postgres_range_are_named(lock_ms, statement_ms, message):
    from ansible_collections.streamops.maintenance.plugins.module_utils import pg  # noqa: PLC0415

    class NoStatement:
        def execute(self, *args):
            raise AssertionError("a SET was sent despite a timeout PostgreSQL refuses")

    with pytest.raises(MaintenanceError) as raised:
        pg.set_timeouts(NoStatement(), lock_timeout_ms=lock_ms, statement_timeout_ms=statement_ms)
    assert raised.value.msg == message


def test_a_redis_connection_over_tls_says_so():
    # tls: true against a plain server failed with "Timeout connecting to server" and no word of TLS.
    from ansible_collections.streamops.maintenance.plugins.module_utils import redis_conn  # noqa: PLC0415

    assert redis_conn.describe(redis_conn.client_kwargs({**REDIS, "tls": True})) == "127.0.0.1:6379 db 0 over TLS"
    assert redis_conn.describe(redis_conn.client_kwargs(REDIS)) == "127.0.0.1:6379 db 0"


def test_a_prometheus_timeout_the_socket_cannot_take_is_named():
    # prometheus_rules timeout 2**63: OverflowError: timestamp too large to convert to C _PyTime_t (a traceback)
    from ansible_collections.streamops.maintenance.plugins.module_utils import prometheus_conn  # noqa: PLC0415

    with pytest.raises(MaintenanceError) as raised:
        prometheus_conn.PrometheusClient.from_params({"url": "http://127.0.0.1:9090", "timeout": 9223372036854775808})
    assert raised.value.msg == "timeout must be at most 604800 seconds (a week), got 9223372036854775808"


def test_a_docker_timeout_the_socket_cannot_take_is_named():
    # was "cannot reach the Docker engine at ...: timestamp too large to convert to C _PyTime_t"
    from ansible_collections.streamops.maintenance.plugins.module_utils import docker_conn  # noqa: PLC0415

    with pytest.raises(MaintenanceError) as raised:
        docker_conn.docker_client_from("unix:///nonexistent/docker.sock", 2 ** 63)
    assert raised.value.msg == "timeout must be at most 604800 seconds (a week), got 9223372036854775808"


@pytest.mark.parametrize("path, name", [(("acme", "timeout"), "acme.timeout"),
                                        (("nginx", "verify", "timeout"), "nginx.verify.timeout")])
def test_certificate_renew_timeouts_the_socket_cannot_take_are_named(path, name, tmp_path):
    from ansible_collections.streamops.maintenance.plugins.module_utils import cert_renew  # noqa: PLC0415

    params = _cert_renew_params(tmp_path, "https://127.0.0.1:14000/dir")
    target = params
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = 2 ** 63
    with pytest.raises(MaintenanceError) as raised:
        cert_renew.validate(params)
    assert raised.value.msg == f"{name} must be at most 604800 seconds (a week), got 9223372036854775808"
