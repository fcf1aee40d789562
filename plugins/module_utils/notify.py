# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Send one maintenance notice (subject, text, JSON summary) to mail and webhook channels. Records out.

A channel that cannot be reached is a ``failed`` record, never an exception: the maintenance must not stop
because mail is down. Only bad input raises (NotifyError), before anything is sent.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from .errors import MaintenanceError
from .records import make_record
from .timeouts import timeout_problem

CHANNEL_TYPES = ("smtp", "webhook")
WHEN_CHECK_MODE = ("send", "skip")
COMMON_KEYS = frozenset(("name", "type", "timeout", "validate_certs", "ca_cert"))
TYPE_KEYS = {
    "smtp": COMMON_KEYS | {"host", "port", "from", "to", "starttls", "username", "password"},
    "webhook": COMMON_KEYS | {"url", "headers"},
}
DEFAULT_TIMEOUT = 10.0
DEFAULT_SMTP_PORT = 587  # the submission port, where STARTTLS is the rule
ANSWER_LIMIT = 300
MASK = "********"


class NotifyError(MaintenanceError):
    """A channel or option given to the notify module is malformed; ``msg`` names it (never a secret)."""


def channel_suboptions() -> dict[str, Any]:
    """The suboptions of ``channels``; type-specific checks (and defaults) are in ``parse_channel``.

    No defaults here: a default would be set on every channel, whatever its type, and ``parse_channel``
    refuses a key the channel's type does not use.
    """
    return dict(
        name=dict(type="str", required=True),
        type=dict(type="str", required=True, choices=list(CHANNEL_TYPES)),
        timeout=dict(type="float"),
        validate_certs=dict(type="bool"),
        ca_cert=dict(type="path"),
        host=dict(type="str"),
        port=dict(type="int"),
        to=dict(type="list", elements="str"),
        starttls=dict(type="bool"),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        url=dict(type="str"),
        headers=dict(type="dict", no_log=True),
        **{"from": dict(type="str")},
    )


def notify_argument_spec() -> dict[str, Any]:
    return dict(
        channels=dict(type="list", elements="dict", required=True, options=channel_suboptions()),
        subject=dict(type="str", required=True),
        text=dict(type="str", required=True),
        summary=dict(type="dict", default={}),
        when_check_mode=dict(type="str", default="skip", choices=list(WHEN_CHECK_MODE)),
        fail_on_error=dict(type="bool", default=False),
    )


# --------------------------------------------------------------------------- input


def _given(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The keys the user set (Ansible fills every suboption without a default with None)."""
    return {key: value for key, value in raw.items() if value is not None}


def parse_channel(raw: Any, position: int) -> dict[str, Any]:
    """One channel with its type's defaults applied; NotifyError naming the channel for anything wrong."""
    if not isinstance(raw, Mapping):
        raise NotifyError(msg=f"channels[{position}] must be a dict with name and type, got {type(raw).__name__}")
    given = _given(raw)
    name = str(given.get("name") or "").strip()
    kind = given.get("type")
    where = f"channel {name!r}" if name else f"channels[{position}]"
    if not name:
        raise NotifyError(msg=f"{where}: name is required")
    if kind not in CHANNEL_TYPES:
        raise NotifyError(msg=f"{where}: type {kind!r} is not one of {', '.join(CHANNEL_TYPES)}")
    unused = sorted(set(given) - TYPE_KEYS[kind])
    if unused:
        raise NotifyError(msg=f"{where}: key(s) {', '.join(unused)} are not used by a {kind} channel; "
                              f"a {kind} channel takes {', '.join(sorted(TYPE_KEYS[kind]))}")
    timeout = float(given.get("timeout", DEFAULT_TIMEOUT))
    problem = timeout_problem(timeout)
    if problem:
        raise NotifyError(msg=f"{where}: {problem}")
    ca_cert = given.get("ca_cert")
    if ca_cert is not None and not os.path.isfile(ca_cert):
        raise NotifyError(msg=f"{where}: ca_cert {ca_cert} is not a file")
    channel = {"name": name, "type": kind, "timeout": timeout, "ca_cert": ca_cert,
               "validate_certs": bool(given.get("validate_certs", True))}
    channel.update(_parse_smtp(given, where) if kind == "smtp" else _parse_webhook(given, where))
    return channel


def _parse_smtp(given: Mapping[str, Any], where: str) -> dict[str, Any]:
    host = str(given.get("host") or "").strip()
    if not host:
        raise NotifyError(msg=f"{where}: host is required for an smtp channel")
    port = given.get("port", DEFAULT_SMTP_PORT)
    if not 1 <= int(port) <= 65535:
        raise NotifyError(msg=f"{where}: port {port} is not a TCP port (1-65535)")
    sender = str(given.get("from") or "").strip()
    if "@" not in sender:
        raise NotifyError(msg=f"{where}: from {sender!r} must be a mail address")
    recipients = [str(address).strip() for address in given.get("to") or []]
    if not recipients:
        raise NotifyError(msg=f"{where}: to must list at least one mail address")
    bad = [address for address in recipients if "@" not in address]
    if bad:
        raise NotifyError(msg=f"{where}: to {', '.join(map(repr, bad))} is not a mail address")
    username, password = given.get("username"), given.get("password")
    if (username is None) != (password is None):
        raise NotifyError(msg=f"{where}: username and password go together; set both or neither")
    starttls = bool(given.get("starttls", True))
    if password is not None and not starttls:
        # The password would cross the network in the clear (AUTH PLAIN/LOGIN are only base64).
        raise NotifyError(msg=f"{where}: refusing to log in without TLS: starttls is false and a password is set; "
                              "set starttls: true, or leave username and password out for a relay that needs none")
    return {"host": host, "port": int(port), "from": sender, "to": recipients, "starttls": starttls,
            "username": username, "password": password}


def _parse_webhook(given: Mapping[str, Any], where: str) -> dict[str, Any]:
    url = str(given.get("url") or "").strip()
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unclosed IPv6 bracket; not the URL in the message, it may hold a token
        raise NotifyError(msg=f"{where}: url must be an http(s) URL with a host ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        # Not the URL itself in the message: its path or query may hold a token.
        raise NotifyError(msg=f"{where}: url must be an http(s) URL with a host (got scheme {parsed.scheme!r})")
    headers = given.get("headers") or {}
    if not all(isinstance(key, str) and isinstance(value, (str, int, float)) and not isinstance(value, bool)
               for key, value in headers.items()):
        raise NotifyError(msg=f"{where}: headers must map header names to text values "
                              f"(header(s) {', '.join(sorted(map(str, headers)))})")
    return {"url": url, "headers": {key: str(value) for key, value in headers.items()}}


def parse_channels(raw: Iterable[Any]) -> list[dict[str, Any]]:
    channels = [parse_channel(one, position) for position, one in enumerate(raw or [], start=1)]
    if not channels:
        raise NotifyError(msg="channels is empty: name at least one channel (the notify role skips an empty list)")
    seen: set[str] = set()
    for channel in channels:
        label = channel_label(channel)
        if label in seen:
            raise NotifyError(msg=f"channel {channel['name']!r}: two {channel['type']} channels have this name")
        seen.add(label)
    return channels


def channel_label(channel: Mapping[str, Any]) -> str:
    return f"{channel['type']} {channel['name']}"


def secrets_of(channel: Mapping[str, Any]) -> list[str]:
    """The values that must never show in a record, a message or an error."""
    found = [channel.get("password"), urllib.parse.urlsplit(channel.get("url") or "").password]
    found += list((channel.get("headers") or {}).values())
    # A value of one or two characters is no secret, and masking it would garble every message.
    return [str(value) for value in found if value and len(str(value)) > 2]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def url_origin(url: str) -> str:
    """``https://host:port``: the path and query of a webhook URL often are its token."""
    parsed = urllib.parse.urlsplit(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.hostname}{port}"


# --------------------------------------------------------------------------- sending


class DeliveryError(Exception):
    """The channel did not take the message; the text says why (secrets are masked by the caller)."""


def tls_context(channel: Mapping[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=channel.get("ca_cert"))
    if not channel["validate_certs"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build_mail(channel: Mapping[str, Any], subject: str, text: str, summary: Mapping[str, Any]) -> EmailMessage:
    """Plain text, with the summary attached as summary.json (a script reads it; a person reads the text)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = channel["from"]
    message["To"] = ", ".join(channel["to"])
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=channel["from"].rsplit("@", 1)[1])
    message.set_content(text)
    message.add_attachment(json.dumps(summary, indent=2, sort_keys=True, default=str).encode(),
                           maintype="application", subtype="json", filename="summary.json")
    return message


def send_smtp(channel: Mapping[str, Any], message: EmailMessage) -> dict[str, Any]:
    """Deliver through the channel's server; the figures for the record's ``after``."""
    server = f"{channel['host']}:{channel['port']}"
    try:
        with smtplib.SMTP(channel["host"], channel["port"], timeout=channel["timeout"]) as client:
            client.ehlo()
            if channel["starttls"]:
                if not client.has_extn("starttls"):
                    raise DeliveryError(f"{server} does not offer STARTTLS (starttls is true)")
                client.starttls(context=tls_context(channel))
                client.ehlo()
            if channel["username"] is not None:
                client.login(channel["username"], channel["password"])
            refused = client.send_message(message, from_addr=channel["from"], to_addrs=channel["to"])
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"{server} refused the login as {channel['username']}: {_smtp_answer(exc)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"{server} refused every recipient: " + "; ".join(
            f"{address}: {_smtp_answer(answer)}" for address, answer in exc.recipients.items())) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"{server} answered {_smtp_answer(exc)}") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS with {server} failed: {exc.reason or exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{server}: {type(exc).__name__}: {exc}") from None
    if refused:
        raise DeliveryError(f"{server} accepted {', '.join(a for a in channel['to'] if a not in refused)} but refused "
                            + "; ".join(f"{address}: {_smtp_answer(answer)}" for address, answer in refused.items()))
    return {"server": server, "recipients": list(channel["to"]), "starttls": channel["starttls"],
            "login": channel["username"], "bytes": len(message.as_bytes())}


def _smtp_answer(answer: Any) -> str:
    code, text = (answer.smtp_code, answer.smtp_error) if isinstance(answer, smtplib.SMTPResponseException) else answer
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {text}"[:ANSWER_LIMIT]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its body: a redirect is an answer to report."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: PLR0913 - urllib's signature
        return None


def send_webhook(channel: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    origin = url_origin(channel["url"])
    context = tls_context(channel) if channel["url"].startswith("https:") else None
    # No proxy from the environment: a maintenance notice goes where the operator pointed it, nowhere else.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                         urllib.request.HTTPSHandler(context=context))
    headers = {"Content-Type": "application/json", "User-Agent": "streamops.maintenance notify",
               **channel["headers"]}
    request = urllib.request.Request(channel["url"], data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=channel["timeout"]) as response:  # noqa: S310 - the operator's own URL
            status = response.status
            answer = response.read(ANSWER_LIMIT).decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        answer = exc.read(ANSWER_LIMIT).decode(errors="replace").strip()
        raise DeliveryError(f"{origin} answered HTTP {exc.code}" + (f": {answer}" if answer else "")) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"{origin}: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # a reset connection, a timeout, something not HTTP
        raise DeliveryError(f"{origin}: {type(exc).__name__}: {exc}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"{origin} answered HTTP {status}" + (f": {answer}" if answer else ""))
    return {"origin": origin, "http_status": status, "bytes": len(body)}


def deliver(channel: Mapping[str, Any], subject: str, text: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """One channel's record: ``ok`` when it took the message, ``failed`` with why when it did not."""
    label = channel_label(channel)
    started = time.monotonic()
    try:
        if channel["type"] == "smtp":
            after = send_smtp(channel, build_mail(channel, subject, text, summary))
            detail = (f"sent to {', '.join(after['recipients'])} via {after['server']}"
                      + (" (STARTTLS" + (f", as {after['login']})" if after["login"] else ")") if after["starttls"]
                         else " (no TLS, no login)"))
        else:
            body = json.dumps({"subject": subject, "text": text, "summary": summary}, default=str).encode()
            after = send_webhook(channel, body)
            detail = f"posted to {after['origin']}, HTTP {after['http_status']}"
    except DeliveryError as exc:
        return make_record(label, "notify", "failed", "not sent: " + redact(str(exc), secrets_of(channel)),
                           seconds=time.monotonic() - started)
    return make_record(label, "notify", "ok", detail, after=after, seconds=time.monotonic() - started)


def run_notify(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False) -> dict[str, Any]:
    """Every channel is checked before any is tried; each one tried is one record.

    ``changed`` is always false: a notice changes nothing in the estate, and a run that sent one is still
    idempotent. A delivered notice is ``ok`` (the channel took it), so the record contract holds in check
    mode too, where the 48-hour plan notice is sent from.
    """
    channels = parse_channels(params.get("channels"))
    subject, text = str(params["subject"]), str(params["text"])
    if not subject.strip():
        raise NotifyError(msg="subject is empty")
    if params.get("when_check_mode", "skip") not in WHEN_CHECK_MODE:
        raise NotifyError(msg=f"when_check_mode {params.get('when_check_mode')!r} is not one of send, skip")
    summary = dict(params.get("summary") or {})
    if check_mode and params.get("when_check_mode", "skip") == "skip":
        records = [make_record(channel_label(channel), "notify", "unchanged",
                               "not sent: check mode (when_check_mode: skip)") for channel in channels]
        return {"changed": False, "records": records,
                "msg": f"check mode: notice {subject!r} not sent to {len(channels)} channel(s) (when_check_mode: skip)"}
    records = [deliver(channel, subject, text, summary) for channel in channels]
    sent = [r["name"] for r in records if r["status"] == "ok"]
    failed = [r for r in records if r["status"] == "failed"]
    msg = f"notice {subject!r} sent to {len(sent)} of {len(records)} channel(s)"
    msg += f": {', '.join(sent)}" if sent else ""
    if failed:
        msg += "; not sent to " + "; ".join(f"{r['name']} ({r['detail'].removeprefix('not sent: ')})" for r in failed)
    result: dict[str, Any] = {"changed": False, "msg": msg, "records": records}
    if failed and params.get("fail_on_error"):
        result["failed"] = True
    return result
