"""pytest fixtures for notifications: an SMTP server (STARTTLS, AUTH) and a webhook receiver, one each per session.

Both start in well under a second; tests empty the mailbox and the received posts (``clear()``) instead of
starting new ones.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from .smtp import SmtpServer
from .webhook import WebhookReceiver


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1: STARTTLS with ``ca_cert``, AUTH as ``user``/``password``, mail kept in ``mailbox``."""
    server = SmtpServer(tmp_path_factory.mktemp("smtp"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def webhook_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookReceiver]:
    """A receiver on 127.0.0.1 keeping every POST; ``answer_with(500)`` makes it fail."""
    receiver = WebhookReceiver(tmp_path_factory.mktemp("webhook"))
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
