# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""certificate_expiry: subject, not_after and whole days left of X.509 certificates (files or PEM texts)."""

from __future__ import annotations

import datetime
import math
import re
import traceback
from typing import Any

from .errors import MaintenanceError
from .records import make_record

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    x509 = None
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----", re.DOTALL)
SECONDS_PER_DAY = 86400


class CertificateError(MaintenanceError):
    """A certificate file or text that cannot be read; ``msg`` names it."""


def certificate_expiry_argument_spec() -> dict[str, Any]:
    return dict(
        paths=dict(type="list", elements="path", default=[]),
        texts=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            # A PEM text may be a bundle with its private key; keep it out of logs.
            pem=dict(type="str", required=True, no_log=True),
        )),
        min_days=dict(type="int", default=0),
        fail_on_breach=dict(type="bool", default=False),
    )


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def load_certificates(data: bytes, *, name: str) -> list[Any]:
    """Every certificate of a PEM text or bundle (other blocks, such as a private key, are ignored),
    or the one certificate of a DER file."""
    blocks = PEM_CERTIFICATE.findall(data)
    try:
        if blocks:
            return [x509.load_pem_x509_certificate(block) for block in blocks]
        if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: maybe DER
            return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertificateError(msg=f"{name}: not a valid certificate: {exc}") from exc
    raise CertificateError(msg=f"{name}: not a certificate (no PEM 'BEGIN CERTIFICATE' block, not DER)")


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise CertificateError(msg=f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise CertificateError(msg=f"{path}: is a directory, not a certificate file") from exc
    except OSError as exc:
        raise CertificateError(msg=f"{path}: cannot read: {exc.strerror or exc}") from exc


def not_after_utc(cert: Any) -> datetime.datetime:
    # not_valid_after_utc is cryptography 42+; older releases return a naive UTC datetime.
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def not_before_utc(cert: Any) -> datetime.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def days_left(not_after: datetime.datetime, now: datetime.datetime) -> int:
    """Whole days until not_after, rounded down: 13.9 days is 13; negative once expired."""
    return math.floor((not_after - now).total_seconds() / SECONDS_PER_DAY)


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(certs: list[Any], *, name: str, source: str, now: datetime.datetime, min_days: int) -> dict[str, Any]:
    """The record of one file or text: the certificate in it that expires first (the leaf, unless
    a chain certificate bundled with it expires sooner, which breaks the chain just the same)."""
    position, first = min(enumerate(certs), key=lambda pair: not_after_utc(pair[1]))
    expires = not_after_utc(first)
    left = days_left(expires, now)
    breach = left < min_days
    if left < 0:
        detail = f"expired {-left} day(s) ago ({_iso(expires)})"
    else:
        detail = f"{left} days left, until {_iso(expires)}"
    detail += f" (limit {min_days})"
    return {
        "name": name, "source": source, "status": "breach" if breach else "ok",
        "subject": first.subject.rfc4514_string(), "issuer": first.issuer.rfc4514_string(),
        "serial": format(first.serial_number, "x"), "not_before": _iso(not_before_utc(first)),
        "not_after": _iso(expires), "days_left": left, "certificates": len(certs), "position": position,
        "detail": detail,
        "reason": f"{left} days left < min_days {min_days}" if breach else None,
    }


def failed_record(name: str, source: str, error: CertificateError) -> dict[str, Any]:
    return {"name": name, "source": source, "status": "failed", "subject": None,
            "issuer": None, "serial": None, "not_before": None, "not_after": None, "days_left": None,
            "certificates": 0, "position": None, "detail": error.msg, "reason": error.msg}


def check_certificates(*, paths: list[str], texts: list[dict[str, str]], now: datetime.datetime,
                       min_days: int) -> list[dict[str, Any]]:
    """One record per path and per text; a source that cannot be read is a ``failed`` record naming it."""
    sources: list[tuple[str, str, Any]] = [(path, "file", path) for path in paths]
    sources += [(text["name"], "text", text["pem"]) for text in texts]
    records = []
    for name, source, what in sources:
        try:
            data = read_file(what) if source == "file" else what.encode("utf-8")
            records.append(describe(load_certificates(data, name=name), name=name, source=source,
                                    now=now, min_days=min_days))
        except CertificateError as exc:
            records.append(failed_record(name, source, exc))
    return records


def validate(params: dict[str, Any]) -> None:
    if not params["paths"] and not params["texts"]:
        raise CertificateError(msg="give 'paths' (certificate files) and/or 'texts' (PEM texts with names)")
    names = list(params["paths"]) + [t["name"] for t in params["texts"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CertificateError(msg=f"certificate names must be unique, repeated: {', '.join(duplicates)}")
    if params["min_days"] < 0:
        raise CertificateError(msg=f"min_days must not be negative, got {params['min_days']}")


def summary(records: list[dict[str, Any]], min_days: int) -> str:
    failed = [r for r in records if r["status"] == "failed"]
    breached = [r for r in records if r["status"] == "breach"]
    msg = f"{len(records)} certificate(s)"
    if breached:
        listed = ", ".join(f"{r['name']} ({r['days_left']})" for r in breached)
        msg += f"; {len(breached)} under {min_days} days: {listed}"
    else:
        good = [r["days_left"] for r in records if r["days_left"] is not None]
        msg += f"; soonest expiry in {min(good)} days" if good else ""
    if failed:
        msg += "; cannot read: " + "; ".join(r["reason"] for r in failed)
    return msg


def as_record(described: dict[str, Any]) -> dict[str, Any]:
    """The contract record (docs/records.md) of one certificate read by ``describe`` or ``failed_record``."""
    figures = ("source", "subject", "issuer", "serial", "not_before", "not_after", "days_left", "certificates",
               "position")
    detail = described["detail"] if described["status"] != "failed" else described["reason"]
    return make_record(described["name"], "expiry", described["status"], detail,
                       after={key: described[key] for key in figures})


def run_certificate_expiry(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False,
                           now: datetime.datetime | None = None) -> dict[str, Any]:
    """Read only: check mode runs the same. Fails (records kept) when a source cannot be read,
    or when a certificate is under min_days with fail_on_breach."""
    validate(params)
    described = check_certificates(paths=params["paths"], texts=params["texts"], now=now or utc_now(),
                                   min_days=params["min_days"])
    breaches = [r["name"] for r in described if r["status"] == "breach"]
    result: dict[str, Any] = {"changed": False, "msg": summary(described, params["min_days"]),
                              "records": [as_record(r) for r in described], "breaches": breaches, "executed": []}
    if any(r["status"] == "failed" for r in described) or (breaches and params["fail_on_breach"]):
        result["failed"] = True
    return result
