"""A throwaway PostgreSQL cluster (initdb + pg_ctl) on 127.0.0.1.

PostgreSQL refuses to run as root, so when we are root the server runs as the
``postgres`` system user (``runuser``) and its directory lives where that user
can reach it (a fresh directory under the system temp dir, not pytest's 0700
tree).

``PostgresServer(ssl=True)`` makes the cluster TLS-only: a throwaway CA and a
server certificate for 127.0.0.1/localhost made with ``openssl``, ``ssl = on``,
and a pg_hba.conf that trusts the private socket and takes TCP only as
``hostssl`` with a password. A second, unrelated CA (``wrong_ca_cert``) is there
for the tests of a client that trusts the wrong CA.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .base import LOOPBACK, HarnessError, ServiceRecord, free_port, pid_alive, stop_pid, wait_for

SERVER_USER = "postgres"
# Long enough for a lab left up for weeks; the files go with the cluster at stop().
TLS_DAYS = 90
# Our own openssl config, so the certificates do not depend on the system's openssl.cnf.
OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
# Only the socket is trusted; TCP must be TLS (a plain connection finds no entry) and give a password.
TLS_ONLY_HBA = """\
# Written by lab/harness/postgres.py (ssl=True): trust on the private socket, TCP only as hostssl.
local    all          all                  trust
local    replication  all                  trust
hostssl  all          all   127.0.0.1/32   scram-sha-256
hostssl  all          all   ::1/128        scram-sha-256
hostssl  replication  all   127.0.0.1/32   scram-sha-256
hostssl  replication  all   ::1/128        scram-sha-256
"""


def postgres_bindir() -> Path:
    """The newest installed server's bin dir (Debian keeps one per major version)."""
    root = Path("/usr/lib/postgresql")
    candidates = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise HarnessError("no PostgreSQL server binaries under /usr/lib/postgresql: install the Debian package postgresql-15")
    return candidates[-1]


@dataclass
class PostgresInfo:
    host: str
    port: int
    user: str
    password: str
    socket_dir: str
    data_dir: str
    root_dir: str
    log: str
    version: str
    ssl: bool = False
    ca_cert: str | None = None  # the CA that signed the server's certificate (ssl=True)
    wrong_ca_cert: str | None = None  # an unrelated CA: a client trusting it must fail to verify

    def conninfo(self, dbname: str = "postgres", **overrides) -> dict:
        params = {"host": self.host, "port": self.port, "user": self.user,
                  "password": self.password, "dbname": dbname}
        if self.ssl:
            params.update(sslmode="verify-full", sslrootcert=self.ca_cert)
        params.update(overrides)
        return params


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    wrong_ca_cert: Path
    server_cert: Path
    server_key: Path


def _openssl(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(["openssl", *argv], capture_output=True, text=True, check=False)  # noqa: S603, S607
    except FileNotFoundError as exc:
        raise HarnessError("openssl not found: install the Debian package openssl (ssl=True makes certificates)") from exc
    if result.returncode != 0:
        raise HarnessError(f"openssl: {what} failed (exit {result.returncode}): {result.stderr.strip()}")


def _new_key_args(key: Path) -> list[str]:
    # An unencrypted P-256 key (-nodes): nothing to unlock, so no passphrase anywhere.
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key)]


def make_ca(directory: Path, name: str, config: Path) -> tuple[Path, Path]:
    """A self-signed CA certificate and its key in ``directory``."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(["req", "-x509", "-new", *_new_key_args(key), "-config", str(config), "-extensions", "ca",
              "-subj", f"/O=streamops lab/CN={name}", "-days", str(TLS_DAYS), "-out", str(cert)], f"making CA {name}")
    return cert, key


def make_tls_files(directory: Path) -> TlsFiles:
    """CA, server certificate (SAN IP:127.0.0.1, DNS:localhost) signed by it, and an unrelated CA."""
    directory.mkdir(mode=0o700)
    config = directory / "openssl.cnf"
    config.write_text(OPENSSL_CONFIG)
    ca_cert, ca_key = make_ca(directory, "ca", config)
    wrong_ca_cert, wrong_ca_key = make_ca(directory, "wrong-ca", config)
    server_cert, server_key, request = directory / "server.crt", directory / "server.key", directory / "server.csr"
    _openssl(["req", "-new", *_new_key_args(server_key), "-config", str(config), "-subj", "/O=streamops lab/CN=localhost",
              "-out", str(request)], "making the server key and request")
    _openssl(["x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
              "-set_serial", str(secrets.randbits(63)), "-days", str(TLS_DAYS), "-extfile", str(config),
              "-extensions", "server", "-out", str(server_cert)], "signing the server certificate")
    # Nothing signs again: the CA keys and the request go, the certificates stay until stop().
    for leftover in (ca_key, wrong_ca_key, request, config):
        leftover.unlink()
    for cert in (ca_cert, wrong_ca_cert, server_cert):
        cert.chmod(0o644)
    server_key.chmod(0o600)  # PostgreSQL refuses a key others can read
    return TlsFiles(ca_cert=ca_cert, wrong_ca_cert=wrong_ca_cert, server_cert=server_cert, server_key=server_key)


class PostgresServer:
    """Start/stop one cluster. ``start()`` returns the connection facts."""

    def __init__(self, *, port: int | None = None, settings: dict[str, str] | None = None, ssl: bool = False) -> None:
        self.port = port
        self.settings = settings or {}
        self.ssl = ssl
        self.info: PostgresInfo | None = None

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, argv: list[str], what: str) -> None:
        result = subprocess.run(self._as_server_user(argv), capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise HarnessError(f"{what} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> PostgresInfo:
        bindir = postgres_bindir()
        root = Path(tempfile.mkdtemp(prefix="streamops-pg-"))
        data, sockets, log = root / "data", root / "sockets", root / "server.log"
        sockets.mkdir()
        password = secrets.token_urlsafe(18)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        ids = None
        if os.geteuid() == 0:
            try:
                ids = pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise HarnessError("no 'postgres' system user to run the server as: install the Debian package postgresql-15") from exc
            for path in (root, sockets, pwfile):
                os.chown(path, ids.pw_uid, ids.pw_gid)
        os.chmod(root, 0o700)
        port = self.port or free_port()
        try:
            self._run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                       "--no-instructions"], "initdb")
            pwfile.unlink()
            tls = self._make_tls(root / "tls", data, ids) if self.ssl else None
            options = {
                "listen_addresses": LOOPBACK,
                "port": str(port),
                "unix_socket_directories": str(sockets),
                # A throwaway cluster: durability buys nothing and costs seconds.
                "fsync": "off",
                "full_page_writes": "off",
                "synchronous_commit": "off",
                "shared_preload_libraries": "pg_stat_statements",
                "log_min_messages": "warning",
                **({"ssl": "on", "ssl_cert_file": str(tls.server_cert), "ssl_key_file": str(tls.server_key)}
                   if tls else {}),
                **self.settings,
            }
            with open(data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
                for key, value in options.items():
                    conf.write(f"{key} = '{value}'\n")
            self._run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"], "pg_ctl start")
        except HarnessError:
            shutil.rmtree(root, ignore_errors=True)
            raise
        version = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
        self.info = PostgresInfo(host=LOOPBACK, port=port, user="postgres", password=password,
                                 socket_dir=str(sockets), data_dir=str(data), root_dir=str(root),
                                 log=str(log), version=version, ssl=tls is not None,
                                 ca_cert=str(tls.ca_cert) if tls else None,
                                 wrong_ca_cert=str(tls.wrong_ca_cert) if tls else None)
        return self.info

    @staticmethod
    def _make_tls(directory: Path, data: Path, ids: pwd.struct_passwd | None) -> TlsFiles:
        """The certificates, owned by the server user, and the TLS-only pg_hba.conf."""
        tls = make_tls_files(directory)
        if ids is not None:
            for path in (directory, tls.ca_cert, tls.wrong_ca_cert, tls.server_cert, tls.server_key):
                os.chown(path, ids.pw_uid, ids.pw_gid)
        # initdb's file, rewritten in place: it keeps the server user as owner.
        (data / "pg_hba.conf").write_text(TLS_ONLY_HBA, encoding="utf-8")
        return tls

    def pid(self) -> int | None:
        if self.info is None:
            return None
        pidfile = Path(self.info.data_dir) / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def record(self) -> ServiceRecord:
        assert self.info is not None
        return ServiceRecord(name="postgres", pid=self.pid(), info=asdict(self.info))

    @classmethod
    def from_record(cls, record: ServiceRecord) -> PostgresServer:
        server = cls(port=record.info.get("port"))
        server.info = PostgresInfo(**record.info)
        return server

    def stop(self) -> None:
        if self.info is None:
            return
        data = Path(self.info.data_dir)
        pid = self.pid()
        if data.exists() and pid and pid_alive(pid):
            try:
                self._run([str(postgres_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"], "pg_ctl stop")
            except HarnessError:
                stop_pid(pid, sig=15)
        if pid:
            wait_for(lambda: not pid_alive(pid), timeout=30, what=f"postgres pid {pid} exit")
        shutil.rmtree(self.info.root_dir, ignore_errors=True)
        self.info = None
