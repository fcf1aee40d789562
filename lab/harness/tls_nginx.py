"""A private nginx on 127.0.0.1 that serves HTTPS with certificate files and the ACME webroot over HTTP.

Two server blocks: plain HTTP on ``http_port`` serves ``webroot`` at
``/.well-known/acme-challenge/`` (where pebble fetches http-01 tokens), and TLS on
``tls_port`` (``server_name``) serves ``cert_path``/``key_path``. ``extra_include``
(a glob, may match nothing) lets a test break the configuration. The first
certificate is self-signed by the harness, valid ``days`` days, so renewal is due.
Debian's nginx-light.
"""
from __future__ import annotations

import datetime
import os
import socket
import ssl
import subprocess
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .base import LOOPBACK, HarnessError, free_port, log_tail, port_open, spawn, stop_pid, wait_for
from .docker_engine import find_binary
from .nginx import TEMP_PATHS


def self_signed(names: list[str], *, days: float) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``names``, valid from an hour ago for ``days`` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def served_certificate(port: int, server_name: str, host: str = LOOPBACK) -> x509.Certificate:
    """The certificate nginx serves on ``host:port`` for SNI ``server_name`` (not verified: the test looks at it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


class TlsNginx:
    """``nginx -c <root>/nginx.conf`` in the foreground, stopped with ``nginx -s quit``."""

    def __init__(self, root: Path, *, server_name: str = "vitalstream.test", days: float = 5,
                 extra_include: str | None = None, worker_processes: int = 2) -> None:
        self.root = Path(root)
        self.server_name = server_name
        self.days = days
        self.http_port = free_port()
        self.tls_port = free_port()
        self.extra_include = extra_include if extra_include is not None else str(self.root / "conf.d" / "*.conf")
        self.worker_processes = worker_processes
        self.binary = find_binary("nginx", "nginx-light")
        self.conf = self.root / "nginx.conf"
        self.pid_file = self.root / "nginx.pid"
        self.error_log = self.root / "error.log"
        self.webroot = self.root / "acme-challenge"
        self.cert_path = self.root / "tls" / "fullchain.pem"
        self.key_path = self.root / "tls" / "privkey.pem"
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        temp = "\n".join(f"    {name}_temp_path {self.root / 'temp' / name};" for name in TEMP_PATHS)
        user = "user root;\n" if os.geteuid() == 0 else ""
        return (f"{user}daemon off;\nmaster_process on;\nworker_processes {self.worker_processes};\n"
                f"pid {self.pid_file};\nerror_log {self.error_log} notice;\n"
                "events { worker_connections 512; }\n"
                "http {\n"
                f"    access_log off;\n{temp}\n"
                f"    include {self.extra_include};\n"
                "    server {\n"
                f"        listen {LOOPBACK}:{self.http_port};\n"
                "        server_name _;\n"
                "        location /.well-known/acme-challenge/ {\n"
                f"            alias {self.webroot}/;\n"
                "            default_type text/plain;\n"
                "        }\n"
                "        location / { return 404; }\n"
                "    }\n"
                "    server {\n"
                f"        listen {LOOPBACK}:{self.tls_port} ssl;\n"
                f"        server_name {self.server_name};\n"
                f"        ssl_certificate {self.cert_path};\n"
                f"        ssl_certificate_key {self.key_path};\n"
                "        location / { return 200 \"ok\\n\"; }\n"
                "    }\n"
                "}\n")

    def start(self, timeout: float = 15.0) -> TlsNginx:
        for name in TEMP_PATHS:
            (self.root / "temp" / name).mkdir(parents=True, exist_ok=True)
        (self.root / "conf.d").mkdir(parents=True, exist_ok=True)
        self.webroot.mkdir(parents=True, exist_ok=True)
        self.cert_path.parent.mkdir(parents=True, exist_ok=True)
        if not self.cert_path.exists():
            cert, key = self_signed([self.server_name], days=self.days)
            self.key_path.write_bytes(key)
            self.key_path.chmod(0o600)
            self.cert_path.write_bytes(cert)
        self.conf.write_text(self.config())
        self.proc = spawn([self.binary, "-c", str(self.conf), "-e", str(self.error_log)],
                          log=self.root / "stdout.log")
        try:
            wait_for(lambda: self.proc.poll() is not None or (port_open(self.tls_port) and port_open(self.http_port)),
                     timeout=timeout, what=f"nginx on {LOOPBACK}:{self.tls_port}", log=self.error_log)
            if self.proc.poll() is not None:
                raise HarnessError(f"nginx exited with {self.proc.returncode}{log_tail(self.error_log)}"
                                   f"{log_tail(self.root / 'stdout.log')}")
        except HarnessError:
            self.stop()
            raise
        return self

    def served(self) -> x509.Certificate:
        return served_certificate(self.tls_port, self.server_name)

    def served_serial(self) -> str:
        return format(self.served().serial_number, "x")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            subprocess.run([self.binary, "-s", "quit", "-c", str(self.conf)], capture_output=True,  # noqa: S603
                           timeout=30, check=False)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_pid(self.proc.pid, timeout=5)
        self.proc = None

    def facts(self) -> dict:
        """What a lab inventory needs for certificate_renew's file target and nginx options."""
        return {"tls_nginx_binary": self.binary, "tls_nginx_conf": str(self.conf),
                "tls_nginx_cert_path": str(self.cert_path), "tls_nginx_key_path": str(self.key_path),
                "tls_nginx_webroot": str(self.webroot), "tls_nginx_server_name": self.server_name,
                "tls_nginx_address": f"{LOOPBACK}:{self.tls_port}", "tls_nginx_http_port": self.http_port,
                "tls_nginx_pid": self.proc.pid if self.proc else None}

    def __enter__(self) -> TlsNginx:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["TlsNginx", "self_signed", "served_certificate"]
