"""connect_failure_message: libpq's TLS failures in plain words, naming the target, never the password.

The libpq texts are the ones observed against the lab's TLS-only server
(lab/harness/postgres.py, ssl=True): psycopg's (libpq 18, its wheel) and
pg_dump's stderr (Debian's libpq 15).
"""

from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    conninfo_from_params,
    connect_failure_message,
    tls_problem,
)

CA = "/tmp/streamops-pg-x/tls/ca.crt"
PSYCOPG = 'connection failed: connection to server at "127.0.0.1", port 5433 failed: '
PG_DUMP = 'pg_dump: error: connection to server at "127.0.0.1", port 5433 failed: '
VERIFY_FAILED = "SSL error: certificate verify failed"
ROOT_MISSING = 'root certificate file "{}" does not exist'
ROOT_MISSING_HINT_18 = ("\nEither provide the file, use the system's trusted roots with sslrootcert=system, "
                        "or change sslmode to disable server certificate verification.")
ROOT_MISSING_HINT_15 = "\nEither provide the file or change sslmode to disable server certificate verification.\n"
HOST_MISMATCH = 'server certificate for "127.0.0.1" (and 1 other name) does not match host name "db.example.com"'
NO_ENCRYPTION = ('FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "stream_user", database "streamsystems", '
                 "no encryption")
UNREADABLE = 'could not read root certificate file "/etc/hostname": no certificate or crl found'
NO_TLS = "server does not support SSL, but SSL was required"
BAD_PASSWORD = 'FATAL:  password authentication failed for user "stream_user"'
TARGET = "stream_user@127.0.0.1:5433/streamsystems"


def lab_kwargs(**changes):
    params = {"login_host": "127.0.0.1", "login_port": 5433, "login_user": "stream_user",
              "login_password": "s3cret-Pa55", "database": "streamsystems", "sslmode": "verify-full",
              "ca_cert": CA, "connect_timeout": 10}
    params.update(changes)
    return conninfo_from_params(params)


@pytest.mark.parametrize(
    "kwargs, libpq_text, expected",
    [
        (lab_kwargs(), PSYCOPG + VERIFY_FAILED,
         f"cannot connect to PostgreSQL {TARGET}: the server's TLS certificate did not verify against ca_cert {CA} "
         f"(sslmode verify-full): {PSYCOPG}{VERIFY_FAILED}"),
        (lab_kwargs(), PG_DUMP + VERIFY_FAILED + "\n",
         f"cannot connect to PostgreSQL {TARGET}: the server's TLS certificate did not verify against ca_cert {CA} "
         f"(sslmode verify-full): {PG_DUMP}{VERIFY_FAILED}"),
        (lab_kwargs(sslmode="require"), PSYCOPG + VERIFY_FAILED,
         f"cannot connect to PostgreSQL {TARGET}: the server's TLS certificate did not verify against ca_cert {CA} "
         f"(sslmode require): {PSYCOPG}{VERIFY_FAILED}"),
        (lab_kwargs(ca_cert=None), PSYCOPG + VERIFY_FAILED,
         f"cannot connect to PostgreSQL {TARGET}: the server's TLS certificate did not verify against libpq's "
         "default root certificate (ca_cert is not set: PGSSLROOTCERT, else ~/.postgresql/root.crt) "
         f"(sslmode verify-full): {PSYCOPG}{VERIFY_FAILED}"),
        (lab_kwargs(ca_cert="/nonexistent/ca.crt"), PSYCOPG + ROOT_MISSING.format("/nonexistent/ca.crt") + ROOT_MISSING_HINT_18,
         f"cannot connect to PostgreSQL {TARGET}: ca_cert /nonexistent/ca.crt does not exist: sslmode verify-full "
         "verifies the server's TLS certificate and needs the CA certificate that signed it: "
         f"{PSYCOPG}{ROOT_MISSING.format('/nonexistent/ca.crt')}"),
        (lab_kwargs(ca_cert="/nonexistent/ca.crt"), PG_DUMP + ROOT_MISSING.format("/nonexistent/ca.crt") + ROOT_MISSING_HINT_15,
         f"cannot connect to PostgreSQL {TARGET}: ca_cert /nonexistent/ca.crt does not exist: sslmode verify-full "
         "verifies the server's TLS certificate and needs the CA certificate that signed it: "
         f"{PG_DUMP}{ROOT_MISSING.format('/nonexistent/ca.crt')}"),
        (lab_kwargs(ca_cert=None), PSYCOPG + ROOT_MISSING.format("/root/.postgresql/root.crt") + ROOT_MISSING_HINT_18,
         f"cannot connect to PostgreSQL {TARGET}: ca_cert is not set and libpq's default /root/.postgresql/root.crt "
         "does not exist: sslmode verify-full verifies the server's TLS certificate and needs the CA certificate "
         f"that signed it: {PSYCOPG}{ROOT_MISSING.format('/root/.postgresql/root.crt')}"),
        (lab_kwargs(ca_cert="/etc/hostname"), PSYCOPG + UNREADABLE,
         f"cannot connect to PostgreSQL {TARGET}: ca_cert /etc/hostname holds no CA certificate libpq can read "
         f"(sslmode verify-full): {PSYCOPG}{UNREADABLE}"),
        (lab_kwargs(login_host="db.example.com"), PSYCOPG + HOST_MISMATCH,
         "cannot connect to PostgreSQL stream_user@db.example.com:5433/streamsystems: the server's TLS certificate "
         "is not for host db.example.com (sslmode verify-full checks the host name: connect by a name or address "
         f"the certificate carries): {PSYCOPG}{HOST_MISMATCH}"),
        (lab_kwargs(login_host="db.example.com"), PG_DUMP + HOST_MISMATCH + "\n",
         "cannot connect to PostgreSQL stream_user@db.example.com:5433/streamsystems: the server's TLS certificate "
         "is not for host db.example.com (sslmode verify-full checks the host name: connect by a name or address "
         f"the certificate carries): {PG_DUMP}{HOST_MISMATCH}"),
        (lab_kwargs(sslmode="disable", ca_cert=None), PSYCOPG + NO_ENCRYPTION,
         f"cannot connect to PostgreSQL {TARGET}: the server accepts only TLS connections: set sslmode (require, "
         f"verify-ca or verify-full): {PSYCOPG}{NO_ENCRYPTION}"),
        (lab_kwargs(sslmode=None, ca_cert=None), PG_DUMP + NO_ENCRYPTION + "\n",
         f"cannot connect to PostgreSQL {TARGET}: the server accepts only TLS connections: set sslmode (require, "
         f"verify-ca or verify-full): {PG_DUMP}{NO_ENCRYPTION}"),
        (lab_kwargs(sslmode="require", ca_cert=None), PSYCOPG + NO_TLS,
         f"cannot connect to PostgreSQL {TARGET}: the server does not offer TLS, but sslmode require requires it: "
         f"{PSYCOPG}{NO_TLS}"),
    ],
    ids=["wrong-ca", "wrong-ca-pg_dump", "wrong-ca-require", "wrong-default-root", "missing-ca", "missing-ca-pg_dump",
         "missing-default-root", "unreadable-ca", "host-mismatch", "host-mismatch-pg_dump", "tls-only-server",
         "tls-only-server-pg_dump", "server-without-tls"],
)
def test_tls_failures_get_a_plain_sentence_naming_the_target(kwargs, libpq_text, expected):
    message = connect_failure_message(kwargs, libpq_text)
    assert message == expected
    assert "s3cret-Pa55" not in message


# Two hosts, the first refusing: pg_dump's libpq lists the attempts in order, psycopg puts the last one first.
TWO_HOSTS_PG_DUMP = ('pg_dump: error: connection to server at "127.0.0.9", port 5433 failed: Connection refused\n'
                     "\tIs the server running on that host and accepting TCP/IP connections?\n"
                     'connection to server at "127.0.0.1", port 5433 failed: SSL error: certificate verify failed\n')
TWO_HOSTS_PSYCOPG = (PSYCOPG + VERIFY_FAILED + "\nMultiple connection attempts failed. All failures were:\n"
                     "- host: '127.0.0.9', port: '5433', hostaddr: '127.0.0.9': connection failed: connection to "
                     'server at "127.0.0.9", port 5433 failed: Connection refused\n'
                     "\tIs the server running on that host and accepting TCP/IP connections?\n"
                     "- host: '127.0.0.1', port: '5433', hostaddr: '127.0.0.1': " + PSYCOPG + VERIFY_FAILED)


@pytest.mark.parametrize("libpq_text, quoted", [
    (TWO_HOSTS_PG_DUMP, 'connection to server at "127.0.0.1", port 5433 failed: SSL error: certificate verify failed'),
    (TWO_HOSTS_PSYCOPG, PSYCOPG + VERIFY_FAILED),
], ids=["pg_dump", "psycopg"])
def test_the_line_quoted_is_the_one_that_says_what_failed(libpq_text, quoted):
    message = connect_failure_message(lab_kwargs(login_host="127.0.0.9,127.0.0.1"), libpq_text)
    assert message == ("cannot connect to PostgreSQL stream_user@127.0.0.9,127.0.0.1:5433/streamsystems: the server's "
                       f"TLS certificate did not verify against ca_cert {CA} (sslmode verify-full): {quoted}")


@pytest.mark.parametrize(
    "libpq_text, expected_tail",
    [(PSYCOPG + BAD_PASSWORD, PSYCOPG + BAD_PASSWORD),
     ('connection failed: connection to server at "127.0.0.1", port 5433 failed: Connection refused\n'
      "\tIs the server running on that host and accepting TCP/IP connections?",
      'connection failed: connection to server at "127.0.0.1", port 5433 failed: Connection refused'),
     ("", "(no message from libpq)")],
    ids=["bad-password", "refused", "empty"],
)
def test_other_failures_keep_libpq_first_line(libpq_text, expected_tail):
    assert tls_problem(libpq_text, sslmode="verify-full", ca_cert=CA) is None
    assert connect_failure_message(lab_kwargs(), libpq_text) == f"cannot connect to PostgreSQL {TARGET}: {expected_tail}"


def test_the_password_is_masked_even_if_libpq_echoed_it():
    message = connect_failure_message(lab_kwargs(), PSYCOPG + 'invalid value "s3cret-Pa55": certificate verify failed')
    assert "s3cret-Pa55" not in message
    assert "********" in message
