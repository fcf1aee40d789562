# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""certificate_renew: renew through ACME the certificates whose days left fall under a threshold, install without a gap.

validate -> read each certificate (file or Kubernetes TLS Secret) -> decide (due? window?) -> order (acme_order)
-> install (files: atomic rename, ``nginx -t``, graceful reload, the new serial proven over TLS; Secret: one
update, the new serial proven by reading it back) -> records. Any fault puts the old certificate back.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import missing_required_lib

from .acme_order import AcmeAccount, AcmeError, new_private_key_pem
from .certs import CertificateError, days_left, load_certificates, not_after_utc, utc_now
from .compose_nginx import nginx_master_pid, proc_workers, run_nginx, wait_workers_replaced
from .errors import MaintenanceError
from .files import write_atomically
from .k8s_conn import KUBERNETES_IMPORT_ERROR, api_client_from, check_request_timeout, k8s_client
from .records import is_changed, make_record
from .timeouts import timeout_problem
from .window import guard_from_params

DEFAULT_RENEW_BEFORE_DAYS = 30
DEFAULT_ACME_TIMEOUT = 90
DEFAULT_VERIFY_TIMEOUT = 10
DEFAULT_ROLLOUT_TIMEOUT = 300
DEFAULT_VERIFY_ADDRESS = "127.0.0.1:443"
CHALLENGES = ("http-01",)
SECRET_TYPE_TLS = "kubernetes.io/tls"


class RenewError(MaintenanceError):
    """Bad options: ``msg`` names the bad value; raised before anything is read or changed."""


class InstallError(MaintenanceError):
    """The new certificate could not be installed; ``msg`` says what was put back."""


# --------------------------------------------------------------------------- options


def certificate_renew_argument_spec() -> dict[str, Any]:
    """The module's own options (the kubernetes and window_guard options are added by the module)."""
    return dict(
        certificates=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            domains=dict(type="list", elements="str"),
            cert_path=dict(type="path"),
            key_path=dict(type="path", no_log=False),
            secret=dict(type="dict", no_log=False, options=dict(
                namespace=dict(type="str", required=True),
                name=dict(type="str", required=True),
            )),
            restart_deployments=dict(type="list", elements="str", default=[]),
        )),
        renew_before_days=dict(type="int", default=DEFAULT_RENEW_BEFORE_DAYS),
        acme=dict(type="dict", required=True, options=dict(
            directory_url=dict(type="str", required=True),
            ca_bundle=dict(type="path"),
            account_key_path=dict(type="path", required=True, no_log=False),
            email=dict(type="str"),
            challenge=dict(type="str", default="http-01", choices=list(CHALLENGES)),
            webroot=dict(type="path", required=True),
            timeout=dict(type="int", default=DEFAULT_ACME_TIMEOUT),
        )),
        nginx=dict(type="dict", options=dict(
            binary=dict(type="str", default="nginx"),
            command=dict(type="list", elements="str"),
            conf=dict(type="path", required=True),
            verify=dict(type="dict", default={}, options=dict(
                address=dict(type="str", default=DEFAULT_VERIFY_ADDRESS),
                server_name=dict(type="str"),
                timeout=dict(type="int", default=DEFAULT_VERIFY_TIMEOUT),
            )),
        )),
        rollout_timeout=dict(type="int", default=DEFAULT_ROLLOUT_TIMEOUT),
    )


def parse_address(value: Any) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) of verify.address."""
    text = value if isinstance(value, str) else ""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RenewError(msg=f"nginx.verify.address {value!r} must be host:port, for example 127.0.0.1:443")
    return host, int(port)


def check_domain(domain: Any, owner: str) -> str:
    if not isinstance(domain, str) or not domain.strip() or any(c.isspace() for c in domain.strip()):
        raise RenewError(msg=f"certificate {owner}: domain {domain!r} is not a host name")
    domain = domain.strip().lower()
    if domain.startswith("*."):
        raise RenewError(msg=f"certificate {owner}: domain {domain!r} is a wildcard, which needs dns-01; "
                             "only http-01 is supported")
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return domain
    raise RenewError(msg=f"certificate {owner}: domain {domain!r} is an IP address; ACME http-01 here issues "
                         "for host names only")


def validate(params: dict[str, Any]) -> None:
    """Every bad value named before anything is read, ordered or written."""
    certificates = params["certificates"]
    if not certificates:
        raise RenewError(msg="certificates is empty: give at least one certificate to renew")
    names = [c["name"] for c in certificates]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RenewError(msg=f"certificate names must be unique, repeated: {', '.join(repeated)}")
    for cert in certificates:
        label = cert["name"]
        has_files = bool(cert.get("cert_path") or cert.get("key_path"))
        if has_files == bool(cert.get("secret")):
            raise RenewError(msg=f"certificate {label}: give one target, either cert_path and key_path (files "
                                 "served by nginx) or secret (a Kubernetes TLS Secret)")
        if has_files:
            for key in ("cert_path", "key_path"):
                if not cert.get(key) or not os.path.isabs(cert[key]):
                    raise RenewError(msg=f"certificate {label}: {key} {cert.get(key)!r} must be an absolute path")
            if cert["cert_path"] == cert["key_path"]:
                raise RenewError(msg=f"certificate {label}: cert_path and key_path are the same file")
            if cert.get("restart_deployments"):
                raise RenewError(msg=f"certificate {label}: restart_deployments is for a secret target; nginx "
                                     "serving files is reloaded instead")
            if not params.get("nginx"):
                raise RenewError(msg=f"certificate {label}: a file target needs the nginx option (binary, conf, "
                                     "verify) to test, reload and prove the new certificate")
        for domain in cert.get("domains") or []:
            check_domain(domain, label)
    if params["renew_before_days"] < 1:
        raise RenewError(msg=f"renew_before_days must be at least 1, got {params['renew_before_days']}")
    acme = params["acme"]
    try:
        url = urllib.parse.urlsplit(acme["directory_url"])
    except ValueError as exc:  # an unclosed IPv6 bracket: 'https://[::1'
        raise RenewError(msg=f"acme.directory_url {acme['directory_url']!r} must be an https URL of an ACME "
                             f"directory ({exc})") from exc
    if url.scheme != "https" or not url.hostname:
        raise RenewError(msg=f"acme.directory_url {acme['directory_url']!r} must be an https URL of an ACME "
                             "directory, for example https://acme-v02.api.letsencrypt.org/directory")
    if acme["timeout"] < 1:
        raise RenewError(msg=f"acme.timeout must be at least 1 second, got {acme['timeout']}")
    # Both reach a socket timeout, which overflows past a few hundred years (2**63): a traceback.
    problem = timeout_problem(acme["timeout"], "acme.timeout")
    if problem:
        raise RenewError(msg=problem)
    if acme.get("ca_bundle") and not os.path.isfile(acme["ca_bundle"]):
        raise RenewError(msg=f"acme.ca_bundle {acme['ca_bundle']!r} is not a file (the PEM CA certificates that "
                             "sign the ACME server's TLS certificate)")
    for key in ("webroot", "account_key_path"):
        if not os.path.isabs(acme[key]):
            raise RenewError(msg=f"acme.{key} {acme[key]!r} must be an absolute path")
    if params.get("nginx"):
        parse_address(params["nginx"]["verify"]["address"])
        if params["nginx"]["verify"]["timeout"] < 1:
            raise RenewError(msg=f"nginx.verify.timeout must be at least 1 second, got "
                                 f"{params['nginx']['verify']['timeout']}")
        problem = timeout_problem(params["nginx"]["verify"]["timeout"], "nginx.verify.timeout")
        if problem:
            raise RenewError(msg=problem)
    if params["rollout_timeout"] < 1:
        raise RenewError(msg=f"rollout_timeout must be at least 1 second, got {params['rollout_timeout']}")


# --------------------------------------------------------------------------- pure decisions


def serial_of(cert: Any) -> str:
    return format(cert.serial_number, "x")


def subject_names(cert: Any) -> list[str]:
    """The DNS names of the subjectAltName, else the common name: what a renewal asks for by default."""
    from cryptography import x509  # noqa: PLC0415 - certs reports a missing cryptography

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if names:
        return [n.lower() for n in names]
    common = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return [str(common[0].value).lower()] if common else []


def summary_of(cert: Any, now: datetime.datetime) -> dict[str, Any]:
    expires = not_after_utc(cert)
    return {"serial": serial_of(cert), "not_after": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days_left": days_left(expires, now)}


def expiry_text(summary: dict[str, Any] | None) -> str:
    """``2026-12-26T10:00:00Z (20 days)``: a certificate's expiry as the report shows it, old and new."""
    if not summary:
        return "none"
    return f"{summary['not_after']} ({summary['days_left']} days)"


def renewal_due(left: int | None, renew_before_days: int) -> tuple[bool, str]:
    """(due?, why): due when there is no certificate or its whole days left are under the threshold."""
    if left is None:
        return True, "no certificate installed yet"
    if left < 0:
        return True, f"expired {-left} day(s) ago (renews under {renew_before_days} days left)"
    if left < renew_before_days:
        return True, f"{left} days left < renew_before_days {renew_before_days}"
    return False, f"{left} days left, renews under {renew_before_days}"


def leaf_of(pem: bytes, name: str) -> Any:
    """The first certificate of a PEM chain (the leaf, as nginx and Kubernetes expect it first)."""
    return load_certificates(pem, name=name)[0]


# --------------------------------------------------------------------------- file target + nginx


def read_optional(path: str) -> tuple[bytes | None, os.stat_result | None]:
    try:
        with open(path, "rb") as stream:
            return stream.read(), os.fstat(stream.fileno())
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise InstallError(msg=f"cannot read {path}: {exc.strerror or exc}") from exc


def put_file(path: str, data: bytes, old_stat: os.stat_result | None, default_mode: int) -> None:
    """Atomic write keeping the old file's mode and owner (a key stays 0600 and root's)."""
    mode = (old_stat.st_mode & 0o7777) if old_stat else default_mode
    write_atomically(path, data, mode)
    if old_stat and os.geteuid() == 0:
        os.chown(path, old_stat.st_uid, old_stat.st_gid)


def restore_files(saved: list[tuple[str, bytes | None, os.stat_result | None]]) -> list[str]:
    """Put back what was there (or remove what was not); returns what could not be restored."""
    problems = []
    for path, data, stat in saved:
        try:
            if data is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                put_file(path, data, stat, 0o600)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return problems


def served_serial(address: str, server_name: str, timeout: float = 3.0) -> str:
    """The serial (hex) of the certificate served at ``address`` for SNI ``server_name``.

    Not verified: only which certificate is served matters here (it may be from a private CA).
    """
    from cryptography import x509  # noqa: PLC0415

    host, port = parse_address(address)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return serial_of(x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)))


def wait_for_serial(read_serial: Callable[[], str], wanted: str, timeout: float, *,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> tuple[bool, str]:
    """(proven?, last serial seen or the last error): old workers drain for a while after a graceful reload."""
    deadline = clock() + timeout
    last = "nothing read"
    while True:
        try:
            last = read_serial()
        except (OSError, ssl.SSLError) as exc:
            last = f"no TLS answer ({exc})"
        else:
            if last == wanted:
                return True, last
            last = f"serial {last}"
        if clock() >= deadline:
            return False, last
        sleep(0.2)


class FileTarget:
    """A full chain + key pair of files served by the nginx of ``nginx`` (binary, conf, verify)."""

    def __init__(self, spec: dict[str, Any], nginx: dict[str, Any]) -> None:
        self.name = spec["name"]
        self.cert_path = spec["cert_path"]
        self.key_path = spec["key_path"]
        self.nginx = nginx
        # nginx in a container (the compose estate): the argv that runs it there, e.g. docker exec <container> nginx.
        self.nginx_argv = list(nginx.get("command") or [nginx["binary"]])
        verify = nginx["verify"]
        self.address = verify["address"]
        self.server_name = verify.get("server_name")
        self.verify_timeout = verify["timeout"]
        self.sni = self.server_name

    def where(self) -> str:
        return f"{self.cert_path} (key {self.key_path})"

    def current_pem(self) -> bytes | None:
        data, _stat = read_optional(self.cert_path)
        return data

    def preflight(self) -> None:
        """What would make the install fail, found before ordering (do not order what cannot be installed)."""
        for path in (self.cert_path, self.key_path):
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                raise InstallError(msg=f"directory {directory} of {path} does not exist")
            if not os.access(directory, os.W_OK):
                raise InstallError(msg=f"directory {directory} of {path} is not writable")
        if not self.nginx.get("command") and not os.path.isfile(self.nginx["conf"]):
            raise InstallError(msg=f"nginx configuration {self.nginx['conf']} does not exist")

    def install(self, chain_pem: bytes, key_pem: bytes, serial: str, domains: list[str],
                executed: list[str]) -> str:
        """Rename into place, nginx -t, graceful reload, prove the serial over TLS; InstallError puts the old back."""
        binary, conf = " ".join(self.nginx_argv), self.nginx["conf"]
        server_name = self.sni = self.server_name or domains[0]
        saved = []
        for path in (self.key_path, self.cert_path):
            data, stat = read_optional(path)
            saved.append((path, data, stat))
        try:
            put_file(self.key_path, key_pem, saved[0][2], 0o600)
            put_file(self.cert_path, chain_pem, saved[1][2], 0o644)
        except OSError as exc:
            raise InstallError(msg=self.restored(saved, f"cannot write the new files: {exc.strerror or exc}")) from exc
        # -T: the test of -t, and the configuration it read, which names the master's pid file.
        executed.append(f"{binary} -T -c {conf}")
        problem, dump = run_nginx(self.nginx_argv, conf, "-T")
        if problem:
            raise InstallError(msg=self.restored(saved, f"nginx -t rejects the configuration with the new "
                                                        f"certificate: {problem}", reloaded=False))
        master = self.master_on_this_host(dump)
        before = proc_workers(master) if master else None
        executed.append(f"{binary} -s reload -c {conf}")
        problem, _out = run_nginx(self.nginx_argv, conf, "-s", "reload")
        if problem:
            raise InstallError(msg=self.restored(saved, f"nginx reload failed: {problem}", reloaded=False))
        if master and before:
            # A connection can still reach an old worker until it has taken the reload: the new serial counts once
            # every worker that accepts is a new one.
            wait_workers_replaced(master, set(before), self.verify_timeout)
        proven, seen = wait_for_serial(lambda: served_serial(self.address, server_name), serial, self.verify_timeout)
        if not proven:
            executed.append(f"{binary} -s reload -c {conf}")
            why = (f"nginx at {self.address} (SNI {server_name}) does not serve the new serial {serial} after "
                   f"{self.verify_timeout}s ({seen})")
            raise InstallError(msg=self.restored(saved, why, reloaded=True))
        return f"nginx at {self.address} (SNI {server_name}) serves serial {serial}"

    def master_on_this_host(self, dump: str) -> int | None:
        """The nginx master's PID when nginx runs on this host; None for an nginx in a container (its pid file
        and PIDs are the container's), where only the serial over TLS proves the reload."""
        if self.nginx.get("command"):
            return None
        return nginx_master_pid(self.nginx_argv[0], dump)

    def restored(self, saved: list[tuple[str, bytes | None, os.stat_result | None]], why: str, *,
                 reloaded: bool | None = None) -> str:
        problems = restore_files(saved)
        if problems:
            return f"{why}; the old files could NOT all be restored ({'; '.join(problems)}): fix them by hand"
        text = f"{why}; the old certificate and key are restored"
        if reloaded is None:
            return text + ", nginx was not touched"
        if not reloaded:
            return text + ", nginx was not reloaded and serves the old certificate"
        problem, _out = run_nginx(self.nginx_argv, self.nginx["conf"], "-s", "reload")
        if problem:
            return text + f" but the reload back failed: {problem}"
        old_pem = saved[1][1]
        if not old_pem:
            return text + " and nginx reloaded with them"
        try:
            old_serial = serial_of(leaf_of(old_pem, self.cert_path))
        except CertificateError:
            return text + " and nginx reloaded with them"
        proven, seen = wait_for_serial(lambda: served_serial(self.address, self.sni), old_serial, self.verify_timeout)
        if proven:
            return text + f" and nginx reloaded with them, serving serial {old_serial} again"
        return text + f" and nginx reloaded with them; serving the old serial {old_serial} again is not proven ({seen})"


# --------------------------------------------------------------------------- Kubernetes TLS Secret target


class SecretTarget:
    """The ``tls.crt``/``tls.key`` of a ``kubernetes.io/tls`` Secret, replaced in one update (k8s_secrets)."""

    def __init__(self, spec: dict[str, Any], kube: KubeApis, rollout_timeout: int) -> None:
        self.name = spec["name"]
        self.namespace = spec["secret"]["namespace"]
        self.secret_name = spec["secret"]["name"]
        self.restarts = list(spec.get("restart_deployments") or [])
        self.kube = kube
        self.rollout_timeout = rollout_timeout
        self.secret: Any = None
        self.restart_records: list[dict[str, Any]] = []

    def where(self) -> str:
        return f"Secret {self.namespace}/{self.secret_name}"

    def read(self) -> Any:
        from . import k8s_secrets  # noqa: PLC0415 - only a secret target needs kubernetes

        return k8s_secrets.read_secret(self.kube.core(), namespace=self.namespace, name=self.secret_name,
                                       request_timeout=self.kube.timeout)

    def current_pem(self) -> bytes | None:
        self.secret = self.read()
        if self.secret is None:
            raise InstallError(msg=f"Secret {self.namespace}/{self.secret_name} does not exist (create it once, "
                                   f"for example with kubectl create secret tls)")
        if self.secret.type != SECRET_TYPE_TLS:
            raise InstallError(msg=f"Secret {self.namespace}/{self.secret_name} is of type {self.secret.type}, "
                                   f"not {SECRET_TYPE_TLS}")
        encoded = (self.secret.data or {}).get("tls.crt")
        return base64.b64decode(encoded) if encoded else None

    def preflight(self) -> None:
        if getattr(self.secret, "immutable", None):
            raise InstallError(msg=f"Secret {self.namespace}/{self.secret_name} is immutable: its data cannot "
                                   "be replaced")
        missing = [name for name in self.restarts if not self.deployment_exists(name)]
        if missing:
            raise InstallError(msg=f"Deployment(s) {', '.join(missing)} of restart_deployments do not exist in "
                                   f"namespace {self.namespace}; nothing was ordered or changed")

    def deployment_exists(self, name: str) -> bool:
        from .k8s_conn import ApiException, reason_of  # noqa: PLC0415

        try:
            self.kube.apps().read_namespaced_deployment(name, self.namespace, _request_timeout=self.kube.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise InstallError(msg=f"cannot read Deployment {self.namespace}/{name}: {reason_of(exc)}") from None
        return True

    def install(self, chain_pem: bytes, key_pem: bytes, serial: str, domains: list[str],
                executed: list[str]) -> str:
        from . import k8s_secrets  # noqa: PLC0415

        data = {"tls.crt": base64.b64encode(chain_pem).decode("ascii"),
                "tls.key": base64.b64encode(key_pem).decode("ascii")}
        executed.append(f"replace Secret {self.namespace}/{self.secret_name} (tls.crt, tls.key, "
                        f"{k8s_secrets.ROTATED_AT_ANNOTATION})")
        k8s_secrets.replace_secret_data(self.kube.core(), self.secret, data=data,
                                        annotations={k8s_secrets.ROTATED_AT_ANNOTATION: k8s_secrets.utc_stamp()},
                                        request_timeout=self.kube.timeout)
        held = self.read()
        encoded = ((held.data or {}) if held is not None else {}).get("tls.crt")
        held_serial = serial_of(leaf_of(base64.b64decode(encoded), self.where())) if encoded else None
        if held_serial != serial:
            raise InstallError(msg=f"Secret {self.namespace}/{self.secret_name} holds serial {held_serial} after "
                                   f"the update, not the new {serial}")
        text = f"Secret {self.namespace}/{self.secret_name} holds serial {serial}"
        if self.restarts:
            executed.append(f"rollout restart deployment {' '.join(self.restarts)} -n {self.namespace}")
            self.restart_records = k8s_secrets.restart_deployments(
                self.kube.apps(), namespace=self.namespace, names=self.restarts, timeout=self.rollout_timeout,
                request_timeout=self.kube.timeout, core_api=self.kube.core())
        return text


class KubeApis:
    """The Kubernetes clients, made on first use (only secret targets need them)."""

    def __init__(self, params: dict[str, Any], client_factory: Callable[[str | None, str | None], Any]) -> None:
        self.params = params
        self.client_factory = client_factory
        self.timeout = check_request_timeout(params.get("request_timeout", 30))
        self._api: Any = None

    def api(self) -> Any:
        if KUBERNETES_IMPORT_ERROR:
            raise MaintenanceError(msg=missing_required_lib("kubernetes") + " (for the Secret targets)",
                                   exception=KUBERNETES_IMPORT_ERROR)
        if self._api is None:
            self._api = self.client_factory(self.params.get("kubeconfig"), self.params.get("context"))
        return self._api

    def core(self) -> Any:
        return k8s_client.CoreV1Api(self.api())

    def apps(self) -> Any:
        return k8s_client.AppsV1Api(self.api())


# --------------------------------------------------------------------------- the run


class Renewal:
    """One run: the window decision and the ACME account are made once, on the first certificate that needs them."""

    def __init__(self, params: dict[str, Any], *, check_mode: bool, now: datetime.datetime,
                 client_factory: Callable[[str | None, str | None], Any]) -> None:
        self.params = params
        self.check_mode = check_mode
        self.now = now
        self.kube = KubeApis(params, client_factory)
        self.executed: list[str] = []
        self.window_status: Any = None
        self.account: AcmeAccount | None = None
        self.account_error: AcmeError | None = None
        self.extra_records: list[dict[str, Any]] = []
        self.diff: dict[str, dict[str, Any]] = {"before": {}, "after": {}}

    def target(self, spec: dict[str, Any]) -> FileTarget | SecretTarget:
        if spec.get("secret"):
            return SecretTarget(spec, self.kube, self.params["rollout_timeout"])
        return FileTarget(spec, self.params["nginx"])

    def window(self) -> Any:
        if self.window_status is None:
            self.window_status = guard_from_params(self.params).status()
        return self.window_status

    def acme(self) -> AcmeAccount:
        if self.account_error is not None:
            raise self.account_error
        if self.account is None:
            options = self.params["acme"]
            try:
                self.account = AcmeAccount(directory_url=options["directory_url"],
                                           account_key_path=options["account_key_path"], email=options.get("email"),
                                           ca_bundle=options.get("ca_bundle"), webroot=options["webroot"],
                                           timeout=options["timeout"]).connect()
            except AcmeError as exc:
                self.account_error = exc
                raise
        return self.account

    def renew_one(self, spec: dict[str, Any]) -> dict[str, Any]:
        name, threshold = spec["name"], self.params["renew_before_days"]
        started = time.monotonic()
        target = self.target(spec)
        try:
            pem = target.current_pem()
            current = leaf_of(pem, target.where()) if pem else None
        except MaintenanceError as exc:  # unreadable file, absent Secret, API server refusing or unreachable
            return make_record(name, "renew", "failed", f"cannot read the current certificate: {exc.msg}")
        before = summary_of(current, self.now) if current is not None else None
        domains = [check_domain(d, name) for d in spec.get("domains") or []] or (
            subject_names(current) if current is not None else [])
        if not domains:
            return make_record(name, "renew", "failed", f"{target.where()} holds no certificate to take the names "
                                                        "from: set domains", before=before)
        facts = {**(before or {}), "domains": domains, "target": target.where()}
        due, why = renewal_due(before["days_left"] if before else None, threshold)
        if not due:
            return make_record(name, "renew", "unchanged", why, before=facts, after=facts)
        window = self.window()
        if not window.allowed:
            return make_record(name, "renew", "skipped", f"due ({why}) but not renewed: {window.msg}", before=facts)
        if self.check_mode:
            return make_record(name, "renew", "planned",
                               f"would renew {', '.join(domains)} ({why}) and install into {target.where()}; "
                               f"{window.msg}", before=facts)
        try:
            target.preflight()
            key_pem = new_private_key_pem()
            self.executed.append(f"ACME order for {', '.join(domains)} at {self.params['acme']['directory_url']}")
            chain = self.acme().order(key_pem, domains).encode("ascii")
            new = leaf_of(chain, f"the certificate issued for {name}")
            after = summary_of(new, self.now)
            detail = target.install(chain, key_pem, after["serial"], domains, self.executed)
        except (AcmeError, InstallError, CertificateError) as exc:
            return make_record(name, "renew", "failed", f"not renewed, {target.where()} unchanged: {exc.msg}"
                               if isinstance(exc, AcmeError) else f"not renewed: {exc.msg}", before=facts,
                               seconds=time.monotonic() - started)
        except MaintenanceError as exc:  # a Kubernetes refusal (k8s_secrets), already named
            return make_record(name, "renew", "failed", f"not renewed: {exc.msg}", before=facts,
                               seconds=time.monotonic() - started)
        self.extra_records += getattr(target, "restart_records", [])
        self.diff["before"][name] = before
        self.diff["after"][name] = after
        return make_record(name, "renew", "done",
                           f"renewed ({why}): expiry {expiry_text(before)} -> {expiry_text(after)}; {detail}",
                           before=facts, after={**after, "domains": domains, "target": target.where()},
                           seconds=time.monotonic() - started)


def summary(records: list[dict[str, Any]], check_mode: bool) -> str:
    counts: dict[str, list[str]] = {}
    for record in records:
        if record["action"] == "renew":
            counts.setdefault(record["status"], []).append(record["name"])
    words = {"done": "renewed", "planned": "would renew", "unchanged": "not due", "skipped": "due but skipped",
             "failed": "failed"}
    parts = [f"{len(names)} {words[status]} ({', '.join(names)})" for status, names in counts.items()]
    msg = f"{sum(len(n) for n in counts.values())} certificate(s): " + "; ".join(parts)
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        msg += ". " + "; ".join(f"{r['name']}: {r['detail']}" for r in failed)
    return msg + (" (check mode: nothing was changed)" if check_mode else "")


def run_certificate_renew(params: dict[str, Any], *, check_mode: bool = False, diff_mode: bool = False,
                          now: datetime.datetime | None = None,
                          client_factory: Callable[[str | None, str | None], Any] = api_client_from) -> dict[str, Any]:
    validate(params)
    guard_from_params(params)  # bad window options are named before anything is read
    run = Renewal(params, check_mode=check_mode, now=now or utc_now(), client_factory=client_factory)
    records = [run.renew_one(spec) for spec in params["certificates"]]
    records += run.extra_records
    result: dict[str, Any] = {
        "changed": is_changed(records), "msg": summary(records, check_mode), "records": records,
        "executed": run.executed,
        "window": run.window_status.decision() if run.window_status is not None else None,
    }
    if diff_mode and not check_mode:
        result["diff"] = run.diff
    if any(r["status"] == "failed" for r in records):
        result["failed"] = True
    return result
