"""A webhook receiver (http.server) on 127.0.0.1 for notification tests and the lab: it keeps every POST.

Each POST is kept as ``<root>/received/<n>.json`` with its path, headers and body (parsed when JSON). It answers
with the status written in ``<root>/status`` (200 when the file is missing), so a test can make it answer 500.
It is its own process (``python -m lab.harness.webhook <root>``), so ``python -m lab up`` can leave it running.
"""
from __future__ import annotations

import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Lock
from types import TracebackType

from .base import LOOPBACK, HarnessError, free_port, port_open, spawn, stop_started, wait_started

REPO = Path(__file__).resolve().parents[2]


class WebhookReceiver:
    """``start()``/``stop()``/``facts()`` like the other lab services; ``received()`` reads what was posted."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = Path(root)
        self.port = port or free_port()
        self.received_dir = self.root / "received"
        self.status_file = self.root / "status"
        self.log = self.root / "webhook.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/hooks/maintenance"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 15.0) -> WebhookReceiver:
        self.received_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn([sys.executable, "-m", "lab.harness.webhook", str(self.root), str(self.port)],
                          log=self.log, cwd=REPO)
        try:
            wait_started(self.proc, lambda: port_open(self.port), name="webhook receiver",
                         what=f"webhook receiver on {LOOPBACK}:{self.port}", timeout=timeout, log=self.log)
        except HarnessError:
            self.stop()
            raise
        return self

    def answer_with(self, status: int) -> None:
        """Answer every later POST with ``status`` (200 is the default)."""
        self.status_file.write_text(f"{status}\n")

    def received(self) -> list[dict]:
        return [json.loads(path.read_text())
                for path in sorted(self.received_dir.glob("*.json"), key=lambda p: int(p.stem))]

    def clear(self) -> None:
        for path in self.received_dir.glob("*.json"):
            path.unlink()
        self.status_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_started(proc, name="webhook receiver", timeout=timeout, log=self.log)

    def facts(self) -> dict:
        """lab_services.notify.webhook: the URL to post to, and where the posts are kept."""
        return {"url": self.url, "received_dir": str(self.received_dir), "status_file": str(self.status_file)}

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --------------------------------------------------------------------------- the server process


def serve(root: Path, port: int) -> None:
    received, status_file = root / "received", root / "status"
    numbering = Lock()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", errors="replace")
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            kept = {"path": self.path, "headers": dict(self.headers.items()), "body": body, "json": parsed}
            with numbering:
                number = len(list(received.glob("*.json"))) + 1
                partial = received / f".{number}.tmp"
                partial.write_text(json.dumps(kept))
                partial.rename(received / f"{number}.json")
            status = int(status_file.read_text().strip()) if status_file.exists() else 200
            answer = b"ok\n" if status < 300 else b"receiver told to fail\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((LOOPBACK, port), Receiver)
    print(f"webhook receiver listening on {LOOPBACK}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    import signal  # noqa: PLC0415

    # SIGTERM ends serve_forever through the KeyboardInterrupt path, closing the socket.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    serve(Path(sys.argv[1]), int(sys.argv[2]))
