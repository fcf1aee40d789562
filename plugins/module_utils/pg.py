# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""PostgreSQL connection, identifiers and timeouts shared by the PostgreSQL modules.

The options are documented by the ``streamops.maintenance.postgres`` doc
fragment; ``pg_connection_argument_spec()`` returns the same options (a unit
test keeps the two in step). Passwords come from a ``no_log`` option or the
environment (PGPASSWORD, ~/.pgpass via libpq), never a command line.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

from ansible.module_utils.basic import env_fallback

from .errors import MaintenanceError

try:
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    psycopg = None
    sql = None
    PSYCOPG_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    PSYCOPG_IMPORT_ERROR = None

APPLICATION_NAME = "streamops.maintenance"
# A plain (unquoted) SQL identifier; anything else is refused rather than quoted blindly.
PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


MAX_TIMEOUT_MS = 2147483647  # lock_timeout and statement_timeout: a PostgreSQL int of milliseconds


class PgError(MaintenanceError):
    """A connection, identifier or statement problem; ``msg`` names the object."""


def pg_connection_argument_spec() -> dict[str, Any]:
    """Connection options of every PostgreSQL module; documented by the ``postgres`` doc fragment."""
    return dict(
        login_host=dict(type="str", aliases=["host"], fallback=(env_fallback, ["PGHOST"])),
        login_port=dict(type="int", aliases=["port"], fallback=(env_fallback, ["PGPORT"])),
        login_user=dict(type="str", aliases=["user"], fallback=(env_fallback, ["PGUSER"])),
        login_password=dict(type="str", aliases=["password"], no_log=True,
                            fallback=(env_fallback, ["PGPASSWORD"])),
        login_unix_socket=dict(type="str", aliases=["unix_socket"]),
        database=dict(type="str", aliases=["db", "login_db"], fallback=(env_fallback, ["PGDATABASE"])),
        sslmode=dict(type="str", choices=SSLMODES, fallback=(env_fallback, ["PGSSLMODE"])),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"], fallback=(env_fallback, ["PGSSLROOTCERT"])),
        ssl_cert=dict(type="path", fallback=(env_fallback, ["PGSSLCERT"])),
        ssl_key=dict(type="path", no_log=False, fallback=(env_fallback, ["PGSSLKEY"])),
        connect_timeout=dict(type="int", default=10),
    )


def conninfo_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """psycopg connection keywords from the module options (unset ones left to libpq's defaults)."""
    if params.get("connect_timeout") is not None and params["connect_timeout"] < 1:
        raise PgError(msg=f"connect_timeout must be at least 1 second, got {params['connect_timeout']}")
    mapping = {
        "host": params.get("login_unix_socket") or params.get("login_host"),
        "port": params.get("login_port"),
        "user": params.get("login_user"),
        "password": params.get("login_password"),
        "dbname": params.get("database"),
        "sslmode": params.get("sslmode"),
        "sslrootcert": params.get("ca_cert"),
        "sslcert": params.get("ssl_cert"),
        "sslkey": params.get("ssl_key"),
        "connect_timeout": params.get("connect_timeout"),
    }
    kwargs = {key: value for key, value in mapping.items() if value not in (None, "")}
    kwargs["application_name"] = APPLICATION_NAME
    return kwargs


def describe_target(kwargs: dict[str, Any]) -> str:
    """user@host:port/db for messages, never the password."""
    return "{}@{}:{}/{}".format(kwargs.get("user", "(default user)"), kwargs.get("host", "(default host)"),
                                kwargs.get("port", 5432), kwargs.get("dbname", "(default database)"))


def connect(kwargs: dict[str, Any]) -> Any:
    """An autocommit connection (VACUUM, REINDEX CONCURRENTLY and ALTER SYSTEM refuse transactions)."""
    if psycopg is None:
        raise PgError(msg="the Python library psycopg (3) is required")
    try:
        return psycopg.connect(autocommit=True, **kwargs)
    except psycopg.Error as exc:
        raise PgError(msg=connect_failure_message(kwargs, str(exc))) from exc


# libpq's words (libpq 15 to 18) for a TLS problem; each gets a plain sentence in connect_failure_message.
CERT_NOT_VERIFIED = re.compile(r"certificate verify failed")
ROOT_CERT_MISSING = re.compile(r'root certificate file "(?P<path>[^"]*)" does not exist')
ROOT_CERT_UNREADABLE = re.compile(r'could not read root certificate file "(?P<path>[^"]*)"')
HOST_NOT_IN_CERT = re.compile(r'server certificate for "[^"]*"(?: \(and \d+ other names?\))?'
                              r' does not match host name "(?P<host>[^"]*)"')
TLS_ONLY_SERVER = re.compile(r"no pg_hba\.conf entry for .*, no encryption")
SERVER_WITHOUT_TLS = re.compile(r"server does not support SSL, but SSL was required")


def connect_failure_message(kwargs: dict[str, Any], error_text: str) -> str:
    """Why a connection failed (psycopg's error or pg_dump's stderr: both libpq's text), naming the target.

    A certificate that does not verify, a missing or unreadable CA file, a host
    name the certificate does not carry, a TLS-only server and a server without
    TLS each get a plain sentence before libpq's own line. Never the password.
    """
    password = kwargs.get("password")
    text = error_text.replace(str(password), "********") if password else error_text
    lines = [line.strip() for line in text.splitlines() if line.strip()] or ["(no message from libpq)"]
    problem = tls_problem(text, sslmode=kwargs.get("sslmode"), ca_cert=kwargs.get("sslrootcert"))
    target = describe_target(kwargs)
    if problem is None:
        return f"cannot connect to PostgreSQL {target}: {lines[0]}"
    plain, pattern = problem
    quoted = next((line for line in lines if pattern.search(line)), lines[0])
    return f"cannot connect to PostgreSQL {target}: {plain}: {quoted}"


def tls_problem(text: str, *, sslmode: str | None, ca_cert: str | None) -> tuple[str, re.Pattern] | None:
    """The plain sentence for a TLS problem libpq reports in ``text``, with the pattern of its line; else None."""
    mode = sslmode or "not set"
    if CERT_NOT_VERIFIED.search(text):
        default = "libpq's default root certificate (ca_cert is not set: PGSSLROOTCERT, else ~/.postgresql/root.crt)"
        against = f"ca_cert {ca_cert}" if ca_cert else default
        return f"the server's TLS certificate did not verify against {against} (sslmode {mode})", CERT_NOT_VERIFIED
    missing = ROOT_CERT_MISSING.search(text)
    if missing:
        what = f"ca_cert {ca_cert}" if ca_cert else f"ca_cert is not set and libpq's default {missing['path']}"
        return (f"{what} does not exist: sslmode {mode} verifies the server's TLS certificate and needs "
                "the CA certificate that signed it", ROOT_CERT_MISSING)
    unreadable = ROOT_CERT_UNREADABLE.search(text)
    if unreadable:
        return f"ca_cert {unreadable['path']} holds no CA certificate libpq can read (sslmode {mode})", ROOT_CERT_UNREADABLE
    mismatch = HOST_NOT_IN_CERT.search(text)
    if mismatch:
        return (f"the server's TLS certificate is not for host {mismatch['host']} (sslmode {mode} checks the host "
                "name: connect by a name or address the certificate carries)", HOST_NOT_IN_CERT)
    if TLS_ONLY_SERVER.search(text):
        return "the server accepts only TLS connections: set sslmode (require, verify-ca or verify-full)", TLS_ONLY_SERVER
    if SERVER_WITHOUT_TLS.search(text):
        return f"the server does not offer TLS, but sslmode {mode} requires it", SERVER_WITHOUT_TLS
    return None


def set_timeouts(conn: Any, *, lock_timeout_ms: int, statement_timeout_ms: int) -> None:
    """Session timeouts: no statement of ours waits on a lock, or runs, longer than asked."""
    for name, value in (("lock_timeout", lock_timeout_ms), ("statement_timeout", statement_timeout_ms)):
        # PostgreSQL's own range (an int of milliseconds): past it the SET failed with a psycopg traceback.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIMEOUT_MS:
            raise PgError(msg=f"{name} must be 0 to {MAX_TIMEOUT_MS} milliseconds, got {value!r}")
    conn.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                 (f"{int(lock_timeout_ms)}ms", f"{int(statement_timeout_ms)}ms"))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def split_table_name(name: Any, default_schema: str = "public") -> tuple[str, str]:
    """``schema.table`` or ``table`` → (schema, table); anything but plain identifiers is refused.

    Folded to lower case, as PostgreSQL folds unquoted names: ``Trades`` in a
    playbook means the table ``psql`` knows as ``trades``.
    """
    if not isinstance(name, str) or not name.strip():
        raise PgError(msg=f"table name {name!r} is empty or not a string")
    parts = name.strip().split(".")
    if len(parts) == 1:
        parts = [default_schema, parts[0]]
    if len(parts) != 2 or not all(PLAIN_IDENTIFIER.match(part) for part in parts):
        raise PgError(msg=f"table name {name!r} is not a plain identifier or schema.identifier "
                          "(letters, digits, _ and $; not starting with a digit; at most 63 characters)")
    return parts[0].lower(), parts[1].lower()


def check_identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not PLAIN_IDENTIFIER.match(value):
        raise PgError(msg=f"{what} {value!r} is not a plain identifier")
    return value


def qualified(schema: str, name: str) -> Any:
    """schema.name, each part quoted by psycopg."""
    return sql.Identifier(schema, name)


def server_version_num(conn: Any) -> int:
    return int(conn.execute("SHOW server_version_num").fetchone()[0])


# Settings that change how a row prints as text (row::text is what table_fingerprint hashes). Fixed here, so
# the source at backup time and a restored copy on another server (other defaults, other major) print alike.
FINGERPRINT_SETTINGS = (
    ("extra_float_digits", "1"),  # 12+: shortest exact float; anything above 0 gives the same text
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("search_path", "pg_catalog"),  # regclass and other OID types print schema-qualified
)
FINGERPRINT_PREFIX = "md5sum64:"


def table_fingerprint(conn: Any, schema: str, name: str) -> tuple[int, str]:
    """(row count, checksum) of one table in one scan: order-independent, the same text on any server.

    The checksum is the sum of the first 64 bits of each row's md5 (as text under
    FINGERPRINT_SETTINGS), written ``md5sum64:<decimal>``. A sum, not a hash of
    the sorted rows: no sort, and the same rows in another physical order agree.
    The settings are SET LOCAL in a transaction (a savepoint inside an open one,
    such as pg_backup's snapshot) that is rolled back, so the caller's session
    keeps its own settings.
    """
    with conn.transaction(force_rollback=True):
        for setting, value in FINGERPRINT_SETTINGS:
            conn.execute("SELECT set_config(%s, %s, true)", (setting, value))
        # ROW(t.*), not t: a column named t would shadow the whole-row reference.
        rows, total = conn.execute(sql.SQL(
            "SELECT count(*), coalesce(sum(('x' || left(md5(ROW(t.*)::text), 16))::bit(64)::bigint::numeric), 0)"
            " FROM {} AS t").format(qualified(schema, name))).fetchone()
    return int(rows), f"{FINGERPRINT_PREFIX}{int(total)}"
