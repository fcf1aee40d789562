"""A private SMTP server (aiosmtpd) on 127.0.0.1 for notification tests and the lab: STARTTLS, AUTH, a mailbox.

STARTTLS uses a throwaway CA's certificate for 127.0.0.1 (``ca_cert`` verifies it); MAIL is refused before
STARTTLS and AUTH (PLAIN, LOGIN) is offered only after it, and checks ``user``/``password``. Each message
received is kept as ``<root>/messages/<n>.json``: envelope, the authenticated login, whether it came over TLS,
and the raw message. The server is its own process (``python -m lab.harness.smtp <root>``), so ``python -m lab
up`` can leave it running; its settings, the password among them, are in ``<root>/smtp.json`` (mode 0600),
never on a command line.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from .acme import make_test_ca
from .base import LOOPBACK, HarnessError, free_port, port_open, spawn, stop_started, wait_started

REPO = Path(__file__).resolve().parents[2]


class SmtpServer:
    """``start()``/``stop()``/``facts()`` like the other lab services; ``messages()`` reads the mailbox."""

    def __init__(self, root: Path, *, port: int | None = None, user: str = "maintenance@lab.test",
                 password: str | None = None) -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.user = user
        self.password = password or secrets.token_urlsafe(18)
        self.config_path = self.root / "smtp.json"
        self.mailbox = self.root / "messages"
        self.tls_dir = self.root / "tls"
        self.ca_cert = self.tls_dir / "ca.pem"
        self.log = self.root / "smtp.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 15.0) -> SmtpServer:
        self.mailbox.mkdir(parents=True, exist_ok=True)
        if not self.ca_cert.exists():
            make_test_ca(self.tls_dir)
        self.config_path.touch(mode=0o600)
        self.config_path.write_text(json.dumps({
            "host": LOOPBACK, "port": self.port, "user": self.user, "password": self.password,
            "cert": str(self.tls_dir / "server.pem"), "key": str(self.tls_dir / "server.key"),
            "mailbox": str(self.mailbox)}))
        self.proc = spawn([sys.executable, "-m", "lab.harness.smtp", str(self.config_path)], log=self.log, cwd=REPO)
        try:
            wait_started(self.proc, lambda: port_open(self.port), name="smtp", what=f"smtp on {LOOPBACK}:{self.port}",
                         timeout=timeout, log=self.log)
        except HarnessError:
            self.stop()
            raise
        return self

    def messages(self) -> list[dict]:
        """Every message received, oldest first: mail_from, rcpt_tos, login, tls, and ``message`` parsed."""
        found = []
        for path in sorted(self.mailbox.glob("*.json"), key=lambda p: int(p.stem)):
            kept = json.loads(path.read_text())
            # SMTP carries CRLF line ends; the parsed message reads as the sender wrote it.
            kept["message"] = email.message_from_string(kept["data"].replace("\r\n", "\n"), policy=email.policy.default)
            found.append(kept)
        return found

    def clear(self) -> None:
        for path in self.mailbox.glob("*.json"):
            path.unlink()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_started(proc, name="smtp", timeout=timeout, log=self.log)

    def facts(self) -> dict:
        """lab_services.notify.smtp: what the notify role's channels need, and where the mailbox is."""
        return {"host": LOOPBACK, "port": self.port, "user": self.user, "password": self.password,
                "ca_cert": str(self.ca_cert), "mailbox": str(self.mailbox)}

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --------------------------------------------------------------------------- the server process


def serve(config_path: Path) -> None:
    import ssl  # noqa: PLC0415

    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword  # noqa: PLC0415

    config = json.loads(Path(config_path).read_text())
    mailbox = Path(config["mailbox"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config["cert"], config["key"])

    def authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ARG001 - aiosmtpd's signature
        good = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == config["user"]
                and secrets.compare_digest(auth_data.password.decode(), config["password"]))
        return AuthResult(success=good, handled=False, auth_data=auth_data.login.decode() if good else None)

    class Mailbox:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            number = len(list(mailbox.glob("*.json"))) + 1
            kept = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                    "login": session.auth_data if session.authenticated else None,
                    "tls": session.ssl is not None,
                    "data": envelope.content.decode("utf-8", errors="replace")}
            partial = mailbox / f".{number}.tmp"
            partial.write_text(json.dumps(kept))
            partial.rename(mailbox / f"{number}.json")  # a reader never sees half a message
            return "250 Message accepted for delivery"

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(Mailbox(), hostname="smtp.lab.test", tls_context=context, require_starttls=True,
                     auth_require_tls=True, authenticator=authenticate),
        host=config["host"], port=config["port"]))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    print(f"smtp listening on {config['host']}:{config['port']}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    os.umask(0o077)
    serve(Path(sys.argv[1]))
