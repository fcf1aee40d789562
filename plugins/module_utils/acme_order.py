# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""certificate_renew's ACME client: an account (key file made 0600 once) and one http-01 order per certificate.

The PyPI ``acme`` library (certbot's own protocol layer) runs in-process: no command line, so no
secret on one, and a refusal is the server's problem document (type, detail), which is what
the messages quote. Every error becomes an AcmeError naming the directory URL.
"""

from __future__ import annotations

import datetime
import os
import traceback
from typing import Any

from .errors import MaintenanceError

try:
    import josepy as jose
    import requests
    from acme import challenges, client, crypto_util, messages
    from acme import errors as acme_errors
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    ACME_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    ACME_IMPORT_ERROR = None

USER_AGENT = "streamops.maintenance certificate_renew"
CHALLENGE_DIR = ".well-known/acme-challenge"


class AcmeError(MaintenanceError):
    """The ACME server could not be reached, refused, or an order failed; ``msg`` names the directory URL."""


def new_private_key_pem(bits: int = 2048) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_or_create_account_key(path: str) -> tuple[Any, bool]:
    """(the account JWK, created?). A missing file is created 0600 with O_EXCL, so it is never world-readable."""
    try:
        with open(path, "rb") as stream:
            pem = stream.read()
        created = False
    except FileNotFoundError:
        pem = new_private_key_pem()
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise AcmeError(msg=f"cannot create the ACME account key {path}: {exc.strerror or exc}") from exc
        with os.fdopen(handle, "wb") as stream:
            stream.write(pem)
        created = True
    except OSError as exc:
        raise AcmeError(msg=f"cannot read the ACME account key {path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise AcmeError(msg=f"the ACME account key {path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AcmeError(msg=f"the ACME account key {path} must be an RSA key (the account signs with RS256)")
    return jose.JWKRSA(key=key), created


def describe_error(exc: BaseException) -> str:
    """One line of what the ACME server (or the network) said."""
    if isinstance(exc, messages.Error):
        return f"{exc.typ}: {exc.detail or exc.title or exc.description}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS verification failed (set acme.ca_bundle for a private ACME server): {_reason(exc)}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        inner = _innermost(exc)
        if isinstance(inner, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            # Connected, then the server went away mid-request (it stopped, or crashed): not a refused connection.
            return f"the connection broke before an answer came ({inner or type(inner).__name__})"
        return f"cannot connect: {_reason(exc)}"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer in time: {_reason(exc)}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _innermost(exc: BaseException) -> BaseException:
    """The deepest exception nested in ``args`` (requests wraps urllib3's, which wraps http.client's)."""
    inner = exc
    for _depth in range(10):
        nested = next((arg for arg in inner.args if isinstance(arg, BaseException)), None)
        if nested is None:
            break
        inner = nested
    return inner


def _reason(exc: BaseException) -> str:
    # requests nests urllib3's reason several levels deep; the innermost says it best.
    inner: BaseException | None = exc
    while inner is not None and inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    text = str(reason if reason is not None else inner)
    return text.split(": ", 1)[-1] if "Failed to establish" in text else text


class AcmeAccount:
    """A connected account on the ACME server at ``directory_url``; ``order()`` issues one certificate."""

    def __init__(self, *, directory_url: str, account_key_path: str, email: str | None, ca_bundle: str | None,
                 webroot: str, timeout: int) -> None:
        self.directory_url = directory_url
        self.account_key_path = account_key_path
        self.email = email
        self.ca_bundle = ca_bundle
        self.webroot = webroot
        self.timeout = timeout
        self.key: Any = None
        self.client: Any = None
        self.account_created = False

    def fail(self, what: str, exc: BaseException) -> AcmeError:
        return AcmeError(msg=f"ACME server {self.directory_url}: {what}: {describe_error(exc)}")

    def connect(self) -> AcmeAccount:
        self.key, _created = load_or_create_account_key(self.account_key_path)
        network = client.ClientNetwork(self.key, user_agent=USER_AGENT, timeout=self.timeout,
                                       verify_ssl=self.ca_bundle or True)
        try:
            directory = client.ClientV2.get_directory(self.directory_url, network)
        except (acme_errors.Error, messages.Error, requests.exceptions.RequestException, ValueError, OSError) as exc:
            raise self.fail("cannot read the directory", exc) from exc
        self.client = client.ClientV2(directory, net=network)
        registration = messages.NewRegistration.from_data(email=self.email, terms_of_service_agreed=True)
        try:
            self.client.new_account(registration)
            self.account_created = True
        except acme_errors.ConflictError as exc:
            # The key already has an account: use it.
            network.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
        except (acme_errors.Error, messages.Error, requests.exceptions.RequestException) as exc:
            raise self.fail("cannot register the account", exc) from exc
        return self

    def order(self, key_pem: bytes, domains: list[str]) -> str:
        """The full chain PEM of a new certificate for ``domains`` and ``key_pem``; the token files are removed after.

        A failure names the step it came at (new order, challenge answer, validation, finalize, certificate
        download): a server gone mid-order leaves an order behind on its side, and nothing on ours.
        """
        csr = crypto_util.make_csr(key_pem, domains)
        written: list[str] = []
        step = "new order"
        try:
            order = self.client.new_order(csr)
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_VALID:
                    continue
                challenge = next((c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)),
                                 None)
                if challenge is None:
                    raise AcmeError(msg=f"ACME server {self.directory_url} offers no http-01 challenge for "
                                        f"{authorization.body.identifier.value} (only http-01 is supported)")
                response, validation = challenge.response_and_validation(self.key)
                written.append(self.write_token(challenge.chall.encode("token"), validation))
                step = f"challenge answer for {authorization.body.identifier.value}"
                self.client.answer_challenge(challenge, response)
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=self.timeout)
            step = "validation (polling the authorizations)"
            order = self.client.poll_authorizations(order, deadline)
            step = "finalize (sending the CSR)"
            try:
                self.client.begin_finalization(order)
            except messages.Error as exc:
                # Not ready yet: poll_finalization finalizes once the order is ready (what finalize_order does).
                if exc.code != "orderNotReady":
                    raise
            step = "certificate download (polling the order)"
            order = self.client.poll_finalization(order, deadline)
        except AcmeError:
            raise
        except acme_errors.ValidationError as exc:
            problems = "; ".join(f"{authz.body.identifier.value}: {describe_error(ch.error)}"
                                 for authz in exc.failed_authzrs for ch in authz.body.challenges if ch.error)
            raise AcmeError(msg=f"ACME server {self.directory_url}: validation of {', '.join(domains)} failed: "
                                f"{problems or exc}") from exc
        except acme_errors.TimeoutError as exc:
            raise AcmeError(msg=f"ACME server {self.directory_url}: the order for {', '.join(domains)} did not "
                                f"complete within acme.timeout {self.timeout}s, at the {step}") from exc
        except (acme_errors.Error, messages.Error, requests.exceptions.RequestException) as exc:
            raise self.fail(f"the order for {', '.join(domains)} failed at the {step}", exc) from exc
        finally:
            for path in written:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        return order.fullchain_pem

    def write_token(self, token: str, validation: str) -> str:
        if "/" in token or token.startswith("."):
            raise AcmeError(msg=f"ACME server {self.directory_url} sent a token that is not a file name: {token!r}")
        path = os.path.join(self.webroot, token)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(handle, "w", encoding="ascii") as stream:
                stream.write(validation)
            os.chmod(path, 0o644)  # the web server's workers run as another user
        except OSError as exc:
            raise AcmeError(msg=f"cannot write the http-01 token into webroot {self.webroot}: "
                                f"{exc.strerror or exc}") from exc
        return path


__all__ = ["ACME_IMPORT_ERROR", "AcmeAccount", "AcmeError", "describe_error", "load_or_create_account_key",
           "new_private_key_pem"]
