"""A private ACME server on 127.0.0.1: Debian's ``pebble`` with ``pebble-challtestsrv`` as its DNS.

Pebble's example configuration points at test certificates Debian does not ship, so the
harness makes its own test CA and a server certificate for 127.0.0.1 with openssl; clients
trust ``ca_bundle``. ``pebble-challtestsrv`` answers 127.0.0.1 for every name (A) and
nothing for AAAA, and its challenge listeners are off: the http-01 validation goes to
``http_port`` (the test nginx's plain HTTP server, which serves the ACME webroot).
``PEBBLE_WFE_NONCEREJECT=0``: pebble otherwise rejects 5 % of good nonces (badNonce) at random.
Pebble keeps everything in memory: a restart forgets accounts and orders.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import TracebackType

from .base import LOOPBACK, HarnessError, free_port, log_tail, port_open, spawn, stop_pid, wait_for
from .docker_engine import find_binary

OPENSSL_TIMEOUT = 60


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,  # noqa: S603,S607
                            timeout=OPENSSL_TIMEOUT, check=False)
    if result.returncode != 0:
        raise HarnessError(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()[-500:]}")


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate (127.0.0.1, localhost) signed by it: (ca.pem, server.pem, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "30", "-subj", "/CN=streamops test ACME server CA", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "30", "-extfile", "server.ext", cwd=directory)
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


class PebbleServer:
    """``pebble`` + ``pebble-challtestsrv`` on free 127.0.0.1 ports; ``directory_url`` once started.

    ``http_port``: where pebble's validation fetches http-01 tokens (the test nginx's HTTP port).
    ``validity_seconds``: the certificates' lifetime (pebble's default is 5 years).
    """

    def __init__(self, root: Path, *, http_port: int, validity_seconds: int | None = None) -> None:
        self.root = Path(root)
        self.http_port = http_port
        self.validity_seconds = validity_seconds
        self.port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port()
        self.dns_management_port = free_port()
        self.pebble = find_binary("pebble", "pebble")
        self.challtestsrv = find_binary("pebble-challtestsrv", "pebble")
        self.ca_bundle = self.root / "ca" / "ca.pem"
        self.log = self.root / "pebble.log"
        self.dns_log = self.root / "challtestsrv.log"
        self.procs: list[subprocess.Popen] = []

    @property
    def directory_url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}/dir"

    def config(self, cert: Path, key: Path) -> dict:
        pebble = {
            "listenAddress": f"{LOOPBACK}:{self.port}",
            "managementListenAddress": f"{LOOPBACK}:{self.management_port}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": self.http_port,
            # tls-alpn-01 is not used; an unused port keeps pebble from probing a real service.
            "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }
        if self.validity_seconds:
            pebble["certificateValidityPeriod"] = int(self.validity_seconds)
        return {"pebble": pebble}

    def start(self, timeout: float = 20.0) -> PebbleServer:
        _ca, cert, key = make_test_ca(self.root / "ca")
        conf = self.root / "pebble-config.json"
        conf.write_text(json.dumps(self.config(cert, key), indent=2))
        try:
            self.procs.append(spawn([
                self.challtestsrv, "-dns01", f"{LOOPBACK}:{self.dns_port}", "-http01", "", "-https01", "",
                "-tlsalpn01", "", "-management", f"{LOOPBACK}:{self.dns_management_port}",
                "-defaultIPv4", LOOPBACK, "-defaultIPv6", "",
            ], log=self.dns_log))
            wait_for(lambda: port_open(self.dns_management_port), timeout=timeout,
                     what="pebble-challtestsrv", log=self.dns_log)
            env = {**os.environ, "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_VA_NOSLEEP": "1",
                   "PEBBLE_AUTHZREUSE": "0"}
            self.procs.append(spawn([self.pebble, "-config", str(conf), "-dnsserver",
                                     f"{LOOPBACK}:{self.dns_port}"], log=self.log, env=env, cwd=self.root))
            wait_for(lambda: self.procs[-1].poll() is not None or port_open(self.port), timeout=timeout,
                     what=f"pebble on {self.directory_url}", log=self.log)
            if self.procs[-1].poll() is not None:
                raise HarnessError(f"pebble exited with {self.procs[-1].returncode}{log_tail(self.log)}")
        except HarnessError:
            self.stop()
            raise
        return self

    def running(self) -> bool:
        return bool(self.procs) and all(proc.poll() is None for proc in self.procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if not stop_pid(proc.pid, timeout=10):
                raise HarnessError(f"{proc.args[0]} (pid {proc.pid}) did not stop")
        self.procs = []

    def facts(self) -> dict:
        """What a lab inventory needs to point certificate_renew at this server."""
        return {"acme_directory_url": self.directory_url, "acme_ca_bundle": str(self.ca_bundle),
                "acme_management_url": f"https://{LOOPBACK}:{self.management_port}",
                "acme_http_port": self.http_port, "acme_pid": self.procs[-1].pid if self.procs else None}

    def __enter__(self) -> PebbleServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["PebbleServer", "make_test_ca"]
