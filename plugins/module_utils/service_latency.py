# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Latency from the target host to PostgreSQL, Redis and HTTP endpoints, judged by nearest-rank p95. Records out.

Each target is probed ``probes`` times: a fresh connection (connect latency) and one request on an open
connection (request latency). The first connection is kept for the requests, so a target gets exactly
``probes`` connects and ``probes`` requests. HTTP opens a new connection for every request (the time to the
full answer a client without keep-alive sees), so its connects are separate TCP connects, closed at once.
"""

from __future__ import annotations

import math
import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import endpoints, pg, redis_conn
from .errors import MaintenanceError
from .records import make_record
from .timeouts import timeout_problem

try:
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - a Redis target is then an unknown record (redis_conn.redis is None)
    NoBackoff = Retry = None

MAX_PROBES = 100
MAX_INTERVAL_SECONDS = 60
READ_CHUNK = 65536
HTTP_DEFAULTS = {"status": 200, "validate_certs": True, "max_p95_ms": 500.0, "max_connect_p95_ms": 100.0}
HTTP_KEYS = {"name", "url", *HTTP_DEFAULTS}


class LatencyError(MaintenanceError):
    """An option of service_latency is malformed; ``msg`` names the value."""


class ProbeError(Exception):
    """A probe got no answer (or not the expected one); the text says why, never a password."""


# --------------------------------------------------------------------------- figures and judging


def nearest_rank(samples: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile: the smallest sample with at least ``percent`` % of the samples at or below it.

    Always a measured value, never an interpolation; with 5 samples p50 is the 3rd and p95 the 5th (the max).
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 < percent <= 100:
        raise ValueError(f"percent {percent} is not in 1-100")
    ordered = sorted(samples)
    rank = math.ceil(percent * len(ordered) / 100)
    return ordered[rank - 1]


@dataclass
class Samples:
    """Milliseconds per probe; ``error`` is why probing stopped early (None when all probes answered)."""

    connect_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Limits:
    max_p95_ms: float
    max_connect_p95_ms: float


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def figures(samples: Samples, limits: Limits) -> dict[str, Any]:
    """The ``after`` of a latency record: p50, p95 and max of both measures (None when nothing was measured)."""
    def pick(values: list[float], percent: int) -> float | None:
        return _rounded(nearest_rank(values, percent)) if values else None

    return {
        "connect_p50_ms": pick(samples.connect_ms, 50),
        "connect_p95_ms": pick(samples.connect_ms, 95),
        "connect_max_ms": _rounded(max(samples.connect_ms)) if samples.connect_ms else None,
        "request_p50_ms": pick(samples.request_ms, 50),
        "request_p95_ms": pick(samples.request_ms, 95),
        "max_ms": _rounded(max(samples.request_ms)) if samples.request_ms else None,
        "probes": len(samples.request_ms),
        "threshold_ms": limits.max_p95_ms,
        "connect_threshold_ms": limits.max_connect_p95_ms,
    }


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} ms"


@dataclass(frozen=True)
class Remedies:
    slow_request: str
    slow_connect: str
    unreachable: str


def judge(name: str, request_label: str, samples: Samples, limits: Limits, remedies: Remedies,
          *, probes: int, seconds: float | None = None) -> dict[str, Any]:
    """One ``latency`` record: ``ok``, or ``breach`` over a p95 threshold or when the target stopped answering."""
    after = figures(samples, limits)
    measured = (f"{request_label} p50 {_ms(after['request_p50_ms'])}, p95 {_ms(after['request_p95_ms'])} "
                f"(limit {limits.max_p95_ms:g} ms); connect p50 {_ms(after['connect_p50_ms'])}, "
                f"p95 {_ms(after['connect_p95_ms'])} (limit {limits.max_connect_p95_ms:g} ms); "
                f"{after['probes']} of {probes} probe(s)")
    if samples.error is not None:
        after["remedy"] = remedies.unreachable
        return make_record(name, "latency", "breach",
                           f"no answer ({after['probes']} of {probes} probe(s) answered): {samples.error}"
                           + (f"; so far {measured}" if after["probes"] else ""),
                           after=after, seconds=seconds)
    over, remedy = [], []
    if after["request_p95_ms"] > limits.max_p95_ms:
        over.append(f"{request_label} p95 {_ms(after['request_p95_ms'])} is over {limits.max_p95_ms:g} ms")
        remedy.append(remedies.slow_request)
    if after["connect_p95_ms"] > limits.max_connect_p95_ms:
        over.append(f"connect p95 {_ms(after['connect_p95_ms'])} is over {limits.max_connect_p95_ms:g} ms")
        remedy.append(remedies.slow_connect)
    if not over:
        return make_record(name, "latency", "ok", measured, after=after, seconds=seconds)
    after["remedy"] = " ".join(remedy)
    return make_record(name, "latency", "breach", "; ".join(over) + f" ({measured})", after=after, seconds=seconds)


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class Target:
    """What to probe: ``open`` returns a connection, ``ask`` sends one request on it, ``close`` ends it.

    With ``holds_connection`` false each request opens its own connection, and ``ask`` gets None.
    ``missing`` names a Python library the target needs that is not installed (nothing is probed then).
    """

    name: str
    request_label: str
    limits: Limits
    remedies: Remedies
    open: Callable[[], Any]
    ask: Callable[[Any], None]
    close: Callable[[Any], None]
    holds_connection: bool = True
    missing: str | None = None


def probe(target: Target, *, probes: int, interval: float, clock: Callable[[], float] = time.perf_counter,
          sleep: Callable[[float], None] = time.sleep) -> Samples:
    """``probes`` connects and requests, ``interval`` seconds apart; the first error stops the target's probing."""
    samples = Samples()
    held = None
    try:
        for number in range(probes):
            if number and interval:
                sleep(interval)
            started = clock()
            connection = target.open()
            samples.connect_ms.append((clock() - started) * 1000)
            if target.holds_connection and held is None:
                held = connection
            else:
                target.close(connection)
            started = clock()
            target.ask(held)
            samples.request_ms.append((clock() - started) * 1000)
    except ProbeError as exc:
        samples.error = str(exc)
    finally:
        if held is not None:
            target.close(held)
    return samples


def measure(target: Target, *, probes: int, interval: float) -> dict[str, Any]:
    if target.missing:
        after = figures(Samples(), target.limits)
        after["remedy"] = f"Install the Python library {target.missing} on the target host (requirements.txt)."
        return make_record(target.name, "latency", "unknown",
                           f"not measured: the Python library {target.missing} is not installed", after=after)
    started = time.monotonic()
    samples = probe(target, probes=probes, interval=interval)
    return judge(target.name, target.request_label, samples, target.limits, target.remedies, probes=probes,
                 seconds=time.monotonic() - started)


# --------------------------------------------------------------------------- PostgreSQL


PG_REMEDIES = Remedies(
    slow_request="SELECT 1 does no work, so its time is the network round trip and the server's scheduling: "
                 "look at the PostgreSQL host's CPU and load and at the network path from this host.",
    slow_connect="Opening a session forks a backend and runs the TLS and SCRAM handshakes: look at the server's "
                 "CPU, name resolution of the host, and pool the application's connections (PgBouncer).",
    unreachable="Make PostgreSQL reachable from this host: it must run and listen there, and accept this login "
                "and its TLS settings (the error says which failed).",
)


def postgres_target(login: Mapping[str, Any], limits: Limits) -> Target:
    kwargs = pg.conninfo_from_params(dict(login))  # bad input (connect_timeout) fails here, before any probe
    where = "{}:{}/{}".format(kwargs.get("host", "(default host)"), kwargs.get("port", 5432),
                              kwargs.get("dbname", "(default database)"))

    def open_connection() -> Any:
        try:
            return pg.connect(kwargs)
        except pg.PgError as exc:
            raise ProbeError(exc.msg) from exc  # connect_failure_message: the target and why, never the password

    def ask(connection: Any) -> None:
        try:
            connection.execute("SELECT 1").fetchone()
        except pg.psycopg.Error as exc:
            raise ProbeError(f"SELECT 1 failed: {pg.first_line(exc)}") from exc

    return Target(name=f"postgres {where}", request_label="SELECT 1", limits=limits, remedies=PG_REMEDIES,
                  open=open_connection, ask=ask, close=lambda connection: connection.close(),
                  missing="psycopg" if pg.psycopg is None else None)


# --------------------------------------------------------------------------- Redis


REDIS_REMEDIES = Remedies(
    slow_request="PING does no work: look for slow commands (SLOWLOG GET 10), persistence forks "
                 "(INFO persistence) and CPU on the Redis host, and at the network path from this host.",
    slow_connect="Look at the Redis host's CPU and connected_clients (INFO clients), name resolution of the host, "
                 "and the TLS handshake when tls is on.",
    unreachable="Make Redis reachable from this host: it must run and listen there, and accept this login "
                "(the error says which failed).",
)


def _without_password(text: str, password: Any) -> str:
    return text.replace(str(password), "********") if password else text


def redis_target(login: Mapping[str, Any], limits: Limits) -> Target:
    kwargs = redis_conn.client_kwargs(dict(login))  # bad input (db, timeouts) fails here, before any probe
    where = kwargs.get("unix_socket_path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    library = redis_conn.redis

    def open_connection() -> Any:
        try:
            # One connection made at once: TCP, TLS when set, AUTH, SELECT and CLIENT SETNAME. No retry: redis-py's
            # default retries a refused connect for seconds, which would read as latency, not as no answer.
            return library.Redis(**kwargs, single_connection_client=True, retry=Retry(NoBackoff(), 0))
        except (library.exceptions.RedisError, OSError) as exc:
            raise ProbeError(f"cannot connect to Redis {redis_conn.describe(kwargs)}: "
                             f"{_without_password(str(exc), kwargs.get('password'))}") from exc

    def ask(client: Any) -> None:
        try:
            client.ping()
        except (library.exceptions.RedisError, OSError) as exc:
            raise ProbeError(f"PING failed: {_without_password(str(exc), kwargs.get('password'))}") from exc

    return Target(name=f"redis {where}", request_label="PING", limits=limits, remedies=REDIS_REMEDIES,
                  open=open_connection, ask=ask, close=lambda client: client.close(),
                  missing="redis" if library is None else None)


# --------------------------------------------------------------------------- HTTP


def shown_url(url: str) -> str:
    """The URL with the password of its user part masked."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not a URL at all ('http://[::1'): nothing to mask, and it is refused where it is parsed
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def parse_http(raw: Any, position: int) -> dict[str, Any]:
    """One ``http`` item with its defaults; a missing or non-http(s) url, or a threshold <= 0, is refused."""
    where = f"http[{position}]"
    if not isinstance(raw, Mapping):
        raise LatencyError(msg=f"{where} must be a dict with name and url, got {raw!r}")
    unknown = sorted(set(raw) - HTTP_KEYS)
    if unknown:
        raise LatencyError(msg=f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(HTTP_KEYS))}")
    item = {**HTTP_DEFAULTS, **{key: value for key, value in raw.items() if value is not None}}
    url = item.get("url")
    if not url:
        raise LatencyError(msg=f"{where} ({item.get('name') or 'no name'}): url is missing")
    try:
        parsed = urllib.parse.urlsplit(url if isinstance(url, str) else "")
    except ValueError as exc:  # an unclosed IPv6 bracket: 'http://[::1'
        raise LatencyError(msg=f"{where}: url {shown_url(str(url))!r} is not an http:// or https:// URL ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise LatencyError(msg=f"{where}: url {shown_url(str(url))!r} is not an http:// or https:// URL")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError as exc:
        raise LatencyError(msg=f"{where}: url {shown_url(url)!r} has no valid port") from exc
    status = item["status"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise LatencyError(msg=f"{where}: status {status!r} is not an HTTP status code")
    for key in ("max_p95_ms", "max_connect_p95_ms"):
        item[key] = positive_ms(item[key], f"{where}: {key}")
    return {"name": str(item.get("name") or shown_url(url)), "url": url, "host": parsed.hostname, "port": port,
            "status": status, "validate_certs": bool(item["validate_certs"]),
            "limits": Limits(max_p95_ms=item["max_p95_ms"], max_connect_p95_ms=item["max_connect_p95_ms"])}


def http_remedies(check: Mapping[str, Any]) -> Remedies:
    return Remedies(
        slow_request="Look at the service's own response time (its log and the calls it makes), the proxy in front "
                     "of it, and the network path from this host.",
        slow_connect="A slow TCP connect is the network or a full accept queue: look at the path from this host and "
                     "the listener's backlog (ss -ltn).",
        unreachable=f"Make {shown_url(check['url'])} answer HTTP {check['status']} from this host "
                    "(the error says what it did).",
    )


def drain(answer: Any) -> None:
    """Read the whole body: a request's latency is the time to its full answer."""
    while answer.read(READ_CHUNK):
        pass


def fetch_status(url: str, timeout: float, validate_certs: bool) -> int:
    """The status of a GET whose whole body was read; OSError when nothing (or not HTTP) answered."""
    return endpoints.get(url, timeout, validate_certs, drain)[0]


def http_target(check: Mapping[str, Any], timeout: float) -> Target:
    url, shown = check["url"], shown_url(check["url"])

    def open_connection() -> Any:
        try:
            return socket.create_connection((check["host"], check["port"]), timeout=timeout)
        except OSError as exc:
            raise ProbeError(f"{check['host']}:{check['port']} does not accept a connection: {exc}") from exc

    def ask(_connection: Any) -> None:
        try:
            status = fetch_status(url, timeout, check["validate_certs"])
        except OSError as exc:
            raise ProbeError(f"GET {shown}: {_without_password(str(exc), urllib.parse.urlsplit(url).password)}") from exc
        if status != check["status"]:
            raise ProbeError(f"GET {shown} answered HTTP {status}, expected {check['status']}")

    return Target(name=f"http {check['name']}", request_label="GET", limits=check["limits"],
                  remedies=http_remedies(check), open=open_connection, ask=ask,
                  close=lambda connection: connection.close(), holds_connection=False)


# --------------------------------------------------------------------------- the module


def positive_ms(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise LatencyError(msg=f"{what} must be a number of milliseconds above 0, got {value!r}")
    return float(value)


def validate(params: Mapping[str, Any]) -> tuple[int, float]:
    probes, interval = params["probes"], params["interval"]
    if isinstance(probes, bool) or not isinstance(probes, int) or not 1 <= probes <= MAX_PROBES:
        raise LatencyError(msg=f"probes must be 1 to {MAX_PROBES}, got {probes!r}")
    if not 0 <= interval <= MAX_INTERVAL_SECONDS:
        raise LatencyError(msg=f"interval must be 0 to {MAX_INTERVAL_SECONDS} seconds, got {interval!r}")
    problem = timeout_problem(params["timeout"])
    if problem:
        raise LatencyError(msg=problem)
    return probes, interval


def build_targets(params: Mapping[str, Any]) -> list[Target]:
    """Every target, with its options checked: all bad input fails here, before anything is probed."""
    targets = []
    limits = {service: Limits(max_p95_ms=positive_ms(params[f"{service}_max_p95_ms"], f"{service}_max_p95_ms"),
                              max_connect_p95_ms=positive_ms(params[f"{service}_max_connect_p95_ms"],
                                                             f"{service}_max_connect_p95_ms"))
              for service in ("postgres", "redis")}
    if params.get("postgres"):
        targets.append(postgres_target(params["postgres"], limits["postgres"]))
    if params.get("redis"):
        targets.append(redis_target(params["redis"], limits["redis"]))
    checks = [parse_http(raw, position) for position, raw in enumerate(params.get("http") or [], start=1)]
    names = [check["name"] for check in checks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LatencyError(msg=f"http: the name(s) {', '.join(map(repr, repeated))} are used more than once; "
                               "each names a record, so names must differ")
    targets += [http_target(check, params["timeout"]) for check in checks]
    return targets


def run_service_latency(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False) -> dict[str, Any]:
    """Read-only, so check mode measures for real."""
    probes, interval = validate(params)
    targets = build_targets(params)
    if not targets:
        return {"changed": False, "msg": "nothing to measure: no postgres, redis or http target given", "records": []}
    records = [measure(target, probes=probes, interval=interval) for target in targets]
    bad = [record["name"] for record in records if record["status"] != "ok"]
    msg = (f"{len(records)} target(s) measured over {probes} probe(s)"
           + (f"; over a threshold or not answering: {', '.join(bad)}" if bad else ", all within their thresholds"))
    return {"changed": False, "msg": msg, "records": records}
