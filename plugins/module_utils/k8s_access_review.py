# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""k8s_access_review: the guide's access-control review of a Kubernetes cluster, read-only.

Five checks, each judged by a pure function over the API's own JSON:
``bindings`` (admin roles bound off the allow list, bindings to missing service accounts),
``service_accounts`` (what a service account may do, from a SelfSubjectRulesReview made while
impersonating it, against an expected set), ``network_policies`` (namespaces without a policy or
without a default-deny ingress one), ``unused`` (Secrets and ConfigMaps nothing references) and
``secret_age`` (Secrets not rotated within a maximum age). Secrets are listed as metadata only
(the API's Table form), so their values never reach this process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import MaintenanceError
from .k8s_conn import K8sConnectionError, api_client_from, check_request_timeout
from .records import PROBLEM_STATUSES, make_record

try:
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:  # urllib3 comes with kubernetes; k8s_conn reports the missing library
    class Urllib3HTTPError(Exception):  # type: ignore[no-redef]
        pass

CHECKS = ("bindings", "service_accounts", "network_policies", "unused", "secret_age")
DEFAULT_EXCLUDED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
DEFAULT_ALLOWED_ADMINS = ("Group:system:masters",)
# Granted to every authenticated identity by the API server's own bindings: not counted against a service account.
DEFAULT_BASELINE_CLUSTER_ROLES = ("system:basic-user", "system:discovery", "system:public-info-viewer",
                                  "system:service-account-issuer-discovery")
DEFAULT_EXCLUDED_SECRET_TYPES = ("helm.sh/release.v1",)
DEFAULT_SECRET_AGE_EXCLUDED_TYPES = ("kubernetes.io/service-account-token",)
DEFAULT_EXCLUDED_CONFIGMAPS = ("kube-root-ca.crt",)
DEFAULT_SECRET_MAX_AGE_DAYS = 90
ROTATED_AT = "streamops.io/rotated-at"
BOOTSTRAP_LABEL = "kubernetes.io/bootstrapping"
BOOTSTRAP_VALUE = "rbac-defaults"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
PAGE_SIZE = 500
JSON = "application/json"
# Table rows carry each object's metadata and the printed columns (a Secret's TYPE), never its data.
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
RULES_REVIEW = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
# Objects whose pod template references Secrets and ConfigMaps even while no pod runs
# (a CronJob between runs, a Deployment scaled to zero, a revision kept for rollback).
WORKLOAD_PATHS = (
    ("deployments", ("/apis/apps/v1",)),
    ("replicasets", ("/apis/apps/v1",)),
    ("statefulsets", ("/apis/apps/v1",)),
    ("daemonsets", ("/apis/apps/v1",)),
    ("jobs", ("/apis/batch/v1",)),
    ("cronjobs", ("/apis/batch/v1", "/apis/batch/v1beta1")),  # batch/v1 only from Kubernetes 1.21
    ("replicationcontrollers", ("/api/v1",)),
)
INGRESS_APIS = ("/apis/networking.k8s.io/v1", "/apis/networking.k8s.io/v1beta1", "/apis/extensions/v1beta1")


class AccessReviewError(MaintenanceError):
    """Bad input to k8s_access_review (a namespace that does not exist, a malformed subject or rule)."""


class ApiReadError(Exception):
    """One read the API server refused or failed; the check it belongs to becomes unknown (403) or failed."""

    def __init__(self, *, what: str, status: int, reason: str) -> None:
        super().__init__(f"{what}: {status} {reason}")
        self.what = what
        self.status = status
        self.reason = reason


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class ExpectedRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ("",)
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceAccountSpec:
    namespace: str
    name: str
    expected: tuple[ExpectedRule, ...]
    review_namespaces: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class ReviewOptions:
    namespaces: tuple[str, ...] | None = None
    exclude_namespaces: tuple[str, ...] = DEFAULT_EXCLUDED_NAMESPACES
    checks: tuple[str, ...] = CHECKS
    allowed_admins: frozenset[str] = frozenset(DEFAULT_ALLOWED_ADMINS)
    service_accounts: tuple[ServiceAccountSpec, ...] = ()
    baseline_cluster_roles: tuple[str, ...] = DEFAULT_BASELINE_CLUSTER_ROLES
    require_default_deny: bool = True
    secret_max_age_days: int = DEFAULT_SECRET_MAX_AGE_DAYS
    exclude_secret_types: tuple[str, ...] = DEFAULT_EXCLUDED_SECRET_TYPES
    secret_age_exclude_types: tuple[str, ...] = DEFAULT_SECRET_AGE_EXCLUDED_TYPES
    exclude_configmaps: tuple[str, ...] = DEFAULT_EXCLUDED_CONFIGMAPS
    request_timeout: int = 30


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise AccessReviewError(msg=f"{what} must be a list of strings, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise AccessReviewError(msg=f"{what} must be a list of strings, got {item!r} in it")
    return items


def check_namespace_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        raise AccessReviewError(msg=f"{what} {name!r} is not a namespace name (lower-case letters, digits and '-', "
                                    f"at most 63)")
    return name


def parse_subject(text: Any) -> str:
    """``Kind:name`` of the allow list, normalised (``ServiceAccount:ns/name``)."""
    kind, name = text.split(":", 1) if isinstance(text, str) and ":" in text else ("", "")
    kinds = {k.lower(): k for k in SUBJECT_KINDS}
    if kind.lower() not in kinds or not name:
        raise AccessReviewError(msg=f"allowed_admins entry {text!r} must be Kind:name with Kind one of "
                                    f"{', '.join(SUBJECT_KINDS)} (ServiceAccount:namespace/name)")
    kind = kinds[kind.lower()]
    if kind == "ServiceAccount":
        namespace, account = name.split("/", 1) if "/" in name else ("", name)
        if not DNS_LABEL.match(namespace) or not DNS_SUBDOMAIN.match(account):
            raise AccessReviewError(msg=f"allowed_admins entry {text!r}: a ServiceAccount is named namespace/name")
    return f"{kind}:{name}"


RULE_KEYS = {"verbs", "api_groups", "resources", "resource_names", "non_resource_urls"}


def parse_expected_rule(rule: Any, what: str) -> ExpectedRule:
    if not isinstance(rule, Mapping):
        raise AccessReviewError(msg=f"{what} must be a dict with verbs and resources (or non_resource_urls), "
                                    f"got {rule!r}")
    unknown = sorted(set(rule) - RULE_KEYS)
    if unknown:
        raise AccessReviewError(msg=f"{what} has unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(RULE_KEYS))})")
    verbs = _strings(rule.get("verbs"), f"{what}.verbs")
    resources = _strings(rule.get("resources"), f"{what}.resources")
    urls = _strings(rule.get("non_resource_urls"), f"{what}.non_resource_urls")
    if not verbs:
        raise AccessReviewError(msg=f"{what} needs verbs")
    if not resources and not urls:
        raise AccessReviewError(msg=f"{what} needs resources or non_resource_urls")
    groups = rule.get("api_groups")
    return ExpectedRule(verbs=verbs, api_groups=("",) if groups is None else _strings(groups, f"{what}.api_groups"),
                        resources=resources, resource_names=_strings(rule.get("resource_names"), f"{what}.resource_names"),
                        non_resource_urls=urls)


def parse_service_account(entry: Any, index: int) -> ServiceAccountSpec:
    what = f"service_accounts[{index}]"
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise AccessReviewError(msg=f"{what} must be a dict with name (namespace/name) and expected, got {entry!r}")
    unknown = sorted(set(entry) - {"name", "expected", "namespaces"})
    if unknown:
        raise AccessReviewError(msg=f"{what} has unknown key(s) {', '.join(unknown)} (known: expected, name, namespaces)")
    namespace, name = entry["name"].split("/", 1) if "/" in entry["name"] else ("", entry["name"])
    if not DNS_LABEL.match(namespace) or not DNS_SUBDOMAIN.match(name):
        raise AccessReviewError(msg=f"{what}.name {entry['name']!r} must be namespace/name of a service account")
    expected = entry.get("expected") or []
    if not isinstance(expected, list):
        raise AccessReviewError(msg=f"{what}.expected must be a list of rules, got {expected!r}")
    rules = tuple(parse_expected_rule(rule, f"{what}.expected[{n}]") for n, rule in enumerate(expected))
    review = tuple(check_namespace_name(ns, f"{what}.namespaces entry")
                   for ns in _strings(entry.get("namespaces"), f"{what}.namespaces")) or (namespace,)
    return ServiceAccountSpec(namespace=namespace, name=name, expected=rules, review_namespaces=review)


def parse_options(params: Mapping[str, Any]) -> ReviewOptions:
    """The module options checked before anything is read; bad input raises AccessReviewError naming the value."""
    namespaces = params.get("namespaces")
    if namespaces is not None:
        namespaces = tuple(check_namespace_name(ns, "namespace") for ns in _strings(namespaces, "namespaces"))
        if not namespaces:
            raise AccessReviewError(msg="namespaces is empty: leave it unset to review every namespace")
    checks = _strings(params.get("checks"), "checks") if params.get("checks") is not None else CHECKS
    bad = [c for c in checks if c not in CHECKS]
    if bad or not checks:
        raise AccessReviewError(msg=f"checks {', '.join(bad) or '[]'} not known: choose from {', '.join(CHECKS)}")
    max_age = params.get("secret_max_age_days", DEFAULT_SECRET_MAX_AGE_DAYS)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1:
        raise AccessReviewError(msg=f"secret_max_age_days must be a whole number of days, at least 1, got {max_age!r}")
    try:
        timeout = check_request_timeout(params.get("request_timeout", 30))
    except K8sConnectionError as exc:
        raise AccessReviewError(msg=exc.msg) from exc

    def listed(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return default if params.get(key) is None else _strings(params[key], key)

    allowed = listed("allowed_admins", DEFAULT_ALLOWED_ADMINS)
    return ReviewOptions(
        namespaces=namespaces,
        exclude_namespaces=listed("exclude_namespaces", DEFAULT_EXCLUDED_NAMESPACES),
        checks=tuple(c for c in CHECKS if c in checks),
        allowed_admins=frozenset(parse_subject(s) for s in allowed),
        service_accounts=tuple(parse_service_account(e, n) for n, e in enumerate(params.get("service_accounts") or [])),
        baseline_cluster_roles=listed("baseline_cluster_roles", DEFAULT_BASELINE_CLUSTER_ROLES),
        require_default_deny=bool(params.get("require_default_deny", True)),
        secret_max_age_days=max_age,
        exclude_secret_types=listed("exclude_secret_types", DEFAULT_EXCLUDED_SECRET_TYPES),
        secret_age_exclude_types=listed("secret_age_exclude_types", DEFAULT_SECRET_AGE_EXCLUDED_TYPES),
        exclude_configmaps=listed("exclude_configmaps", DEFAULT_EXCLUDED_CONFIGMAPS),
        request_timeout=timeout,
    )


# --------------------------------------------------------------------------- reading the API


def message_of(payload: Any) -> str:
    if isinstance(payload, Mapping) and payload.get("message"):
        return str(payload["message"])
    return str(payload)[:200]


def table_items(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A Table's rows as ``{metadata, type?}`` (the columns of a Secret list: Name, Type, Data, Age)."""
    columns = [str(c.get("name", "")).lower() for c in payload.get("columnDefinitions") or []]
    items = []
    for row in payload.get("rows") or []:
        item: dict[str, Any] = {"metadata": (row.get("object") or {}).get("metadata") or {}}
        if "type" in columns and len(row.get("cells") or []) > columns.index("type"):
            item["type"] = row["cells"][columns.index("type")]
        items.append(item)
    return items


class ApiReader:
    """JSON reads of the Kubernetes API through the client's own connection (TLS, token, exec plugins)."""

    def __init__(self, api_client: Any, *, timeout: int) -> None:
        self.api_client = api_client
        self.timeout = timeout

    def request(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None, body: Any = None,
                accept: str = JSON, impersonate: str | None = None) -> tuple[int, Any]:
        headers = {"Accept": accept, "Content-Type": JSON}
        if impersonate:
            # The API server adds a service account's groups itself when only the user is impersonated.
            headers["Impersonate-User"] = impersonate
        request = self.api_client.param_serialize(method, path, query_params=query or None, header_params=headers,
                                                  body=body, auth_settings=["BearerToken"])
        try:
            response = self.api_client.call_api(*request, _request_timeout=self.timeout)
            raw = response.read()
        except Urllib3HTTPError as exc:
            raise K8sConnectionError(msg=f"cannot reach the Kubernetes API server "
                                         f"{self.api_client.configuration.host}: {exc}") from exc
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return response.status, payload

    def list(self, path: str, *, what: str, metadata_only: bool = False) -> list[dict[str, Any]]:
        """Every item of a collection, page by page; ``metadata_only``: ``{metadata, type}`` from the Table form."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
            if metadata_only:
                query.append(("includeObject", "Metadata"))
            if token:
                query.append(("continue", token))
            status, payload = self.request("GET", path, query=query, accept=TABLE if metadata_only else JSON)
            if status >= 400 or not isinstance(payload, Mapping):
                raise ApiReadError(what=what, status=status, reason=message_of(payload))
            if payload.get("kind") == "Table":
                items.extend(table_items(payload))
            elif metadata_only:
                # A server without the Table form: keep only what the table would have had.
                items.extend({"metadata": i.get("metadata") or {}, "type": i.get("type")} for i in payload.get("items") or [])
            else:
                items.extend(payload.get("items") or [])
            token = (payload.get("metadata") or {}).get("continue")
            if not token:
                return items

    def get(self, path: str, *, what: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        status, payload = self.request("GET", path)
        if status == 404:
            return None
        if status >= 400 or not isinstance(payload, Mapping):
            raise ApiReadError(what=what, status=status, reason=message_of(payload))
        return dict(payload)

    def create(self, path: str, body: Mapping[str, Any], *, what: str, impersonate: str | None = None) -> dict[str, Any]:
        """POST of a review object (it is evaluated, never stored)."""
        status, payload = self.request("POST", path, body=dict(body), impersonate=impersonate)
        if status >= 400 or not isinstance(payload, Mapping):
            raise ApiReadError(what=what, status=status, reason=message_of(payload))
        return dict(payload)


def unreadable_record(name: str, action: str, error: ApiReadError) -> dict[str, Any]:
    """A refused read (403) is ``unknown``, any other failed read ``failed``: never a clean result."""
    status = "unknown" if error.status in (401, 403) else "failed"
    remedy = (f"Let the reviewing identity read {error.what} (RBAC get/list), or run the review as a cluster "
              f"admin; until then this check says nothing." if status == "unknown"
              else f"Find out why the API server failed to return {error.what} and run the review again.")
    return make_record(name, action, status, f"cannot read {error.what}: {error.status} {error.reason}",
                       after={"http_status": error.status, "reason": error.reason, "remedy": remedy})


# --------------------------------------------------------------------------- bindings


def subject_key(subject: Mapping[str, Any], binding_namespace: str | None) -> str:
    """``Kind:name`` of a binding's subject; a ServiceAccount without namespace is in the binding's own."""
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f"ServiceAccount:{subject.get('namespace') or binding_namespace or ''}/{name}"
    return f"{kind}:{name}"


# Everyone (or every account) under a system: name: never exempt, whoever labelled the binding as the API server's
# own (anybody who may create bindings can set that label).
BROAD_SUBJECTS = ("Group:system:authenticated", "Group:system:unauthenticated", "User:system:anonymous",
                  "Group:system:serviceaccounts")


def builtin_subject(key: str) -> bool:
    """A subject the API server and its controllers own: ``system:`` users and groups, kube-system's accounts.

    Not the groups of everyone (system:authenticated, system:unauthenticated, system:anonymous) nor of every
    service account (system:serviceaccounts, system:serviceaccounts:<namespace>).
    """
    if key.startswith(BROAD_SUBJECTS):
        return False
    return key.startswith(("User:system:", "Group:system:", "ServiceAccount:kube-system/"))


def is_bootstrap(obj: Mapping[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(BOOTSTRAP_LABEL) == BOOTSTRAP_VALUE


def admin_reason(role_name: str, rules: Iterable[Mapping[str, Any]] | None) -> str | None:
    """Why a role counts as admin (``cluster-admin``, ``verbs *``, ``resources *``), or None."""
    if role_name == "cluster-admin":
        return "cluster-admin"
    for rule in rules or []:
        if "*" in (rule.get("verbs") or []):
            return "verbs *"
        if "*" in (rule.get("resources") or []):
            return "resources *"
    return None


def binding_label(binding: Mapping[str, Any]) -> str:
    meta = binding.get("metadata") or {}
    if meta.get("namespace"):
        return f"rolebinding/{meta['namespace']}/{meta.get('name')}"
    return f"clusterrolebinding/{meta.get('name')}"


def role_label(binding: Mapping[str, Any]) -> str:
    ref = binding.get("roleRef") or {}
    return f"{ref.get('kind')}/{ref.get('name')}"


def binding_summary(binding: Mapping[str, Any]) -> dict[str, Any]:
    meta = binding.get("metadata") or {}
    return {"kind": "RoleBinding" if meta.get("namespace") else "ClusterRoleBinding",
            "namespace": meta.get("namespace"), "name": meta.get("name"), "role": role_label(binding),
            "subjects": [subject_key(s, meta.get("namespace")) for s in binding.get("subjects") or []],
            "builtin": is_bootstrap(binding)}


def judge_binding(binding: Mapping[str, Any], rules: list[Mapping[str, Any]] | None, allowed: frozenset[str],
                  service_account_exists: Callable[[str, str], bool | None]) -> dict[str, Any] | None:
    """The binding's record when it breaches (or cannot be judged), else None.

    Breaches: a subject bound to an admin role (cluster-admin, a rule with verb or resource ``*``) not on
    ``allowed``; a ServiceAccount subject that does not exist (whoever creates one by that name gets the role).
    The API server's own bindings (label kubernetes.io/bootstrapping=rbac-defaults) are exempt for their
    built-in subjects (``system:`` users and groups, kube-system's service accounts, which kube-controller-manager
    creates only with --use-service-account-credentials); any other subject in them is judged like any binding.
    """
    meta = binding.get("metadata") or {}
    role = (binding.get("roleRef") or {}).get("name", "")
    why_admin = admin_reason(role, rules)
    bootstrap = is_bootstrap(binding)
    not_allowed, missing, unknown = [], [], []
    for subject in binding.get("subjects") or []:
        key = subject_key(subject, meta.get("namespace"))
        if bootstrap and builtin_subject(key):
            continue
        if why_admin and key not in allowed:
            not_allowed.append(key)
        if subject.get("kind") == "ServiceAccount":
            namespace, name = key.split(":", 1)[1].split("/", 1)
            exists = service_account_exists(namespace, name)
            if exists is False:
                missing.append(key)
            elif exists is None:
                unknown.append(key)
    if not (not_allowed or missing or unknown):
        return None
    parts, remedies = [], []
    if not_allowed:
        parts.append(f"binds {role_label(binding)} ({why_admin}) to {', '.join(not_allowed)}, not on allowed_admins")
        remedies.append(f"Bind {', '.join(not_allowed)} to a narrower role (or remove the binding); add a subject to "
                        f"allowed_admins only if it must administer the cluster.")
    if missing:
        parts.append(f"binds {role_label(binding)} to service account(s) that do not exist: {', '.join(missing)}")
        remedies.append(f"Remove {', '.join(missing)} from the binding: a service account created later under that "
                        f"name would get the role.")
    if unknown:
        parts.append(f"cannot tell whether {', '.join(unknown)} exist (reading service accounts is forbidden)")
        remedies.append("Let the reviewing identity get serviceaccounts, then run the review again.")
    status = "breach" if not_allowed or missing else "unknown"
    return make_record(binding_label(binding), "binding", status, "; ".join(parts),
                       after={"role": role_label(binding), "admin": why_admin,
                              "subjects": binding_summary(binding)["subjects"], "not_allowed": not_allowed,
                              "missing_service_accounts": missing, "unknown_service_accounts": unknown,
                              "remedy": " ".join(remedies)})


# --------------------------------------------------------------------------- service account rules


def _matches(value: str, allowed: Iterable[str]) -> bool:
    """``*`` allows everything; ``pods/*`` every subresource of pods; ``/metrics*`` a URL prefix."""
    for item in allowed:
        if item in ("*", value):
            return True
        if item.endswith("*") and value.startswith(item[:-1]) and value != "*":
            return True
    return False


def _covered_resource(verb: str, group: str, resource: str, name: str | None, expected: Iterable[ExpectedRule]) -> bool:
    for rule in expected:
        if not rule.resources:
            continue
        if not (_matches(verb, rule.verbs) and _matches(group, rule.api_groups) and _matches(resource, rule.resources)):
            continue
        # A rule limited to named objects does not cover one that allows every object.
        if not rule.resource_names or (name is not None and _matches(name, rule.resource_names)):
            return True
    return False


def _covered_url(verb: str, url: str, expected: Iterable[ExpectedRule]) -> bool:
    return any(_matches(verb, r.verbs) and _matches(url, r.non_resource_urls) for r in expected if r.non_resource_urls)


def format_rule(rule: Mapping[str, Any]) -> str:
    """``get,list core/pods``, ``* */*``, ``get core/secrets[db-creds]``, ``get /healthz``."""
    verbs = ",".join(rule.get("verbs") or [])
    if rule.get("nonResourceURLs"):
        return f"{verbs} {','.join(rule['nonResourceURLs'])}"
    targets = [f"{group or 'core'}/{resource}" for group in rule.get("apiGroups") or [""]
               for resource in rule.get("resources") or []]
    names = f"[{','.join(rule['resourceNames'])}]" if rule.get("resourceNames") else ""
    return f"{verbs} {','.join(targets)}{names}"


def extra_rules(review_status: Mapping[str, Any], expected: Iterable[ExpectedRule]) -> list[dict[str, Any]]:
    """The rules of a SelfSubjectRulesReview's status that the expected rules do not cover."""
    expected = list(expected)
    found = []
    for rule in review_status.get("resourceRules") or []:
        names = rule.get("resourceNames") or [None]
        if not all(_covered_resource(verb, group, resource, name, expected)
                   for verb in rule.get("verbs") or [] for group in rule.get("apiGroups") or [""]
                   for resource in rule.get("resources") or [] for name in names):
            found.append({key: list(rule.get(key) or []) for key in ("verbs", "apiGroups", "resources", "resourceNames")})
    for rule in review_status.get("nonResourceRules") or []:
        if not all(_covered_url(verb, url, expected)
                   for verb in rule.get("verbs") or [] for url in rule.get("nonResourceURLs") or []):
            found.append({"verbs": list(rule.get("verbs") or []), "nonResourceURLs": list(rule.get("nonResourceURLs") or [])})
    return found


def expected_from_role_rules(rules: Iterable[Mapping[str, Any]]) -> list[ExpectedRule]:
    """A ClusterRole's rules (API JSON) as expected rules."""
    return [ExpectedRule(verbs=tuple(r.get("verbs") or ()), api_groups=tuple(r.get("apiGroups") or ("",)),
                         resources=tuple(r.get("resources") or ()), resource_names=tuple(r.get("resourceNames") or ()),
                         non_resource_urls=tuple(r.get("nonResourceURLs") or ()))
            for r in rules]


def service_account_record(spec: ServiceAccountSpec, namespace: str, review: Mapping[str, Any],
                           baseline: list[ExpectedRule], exists: bool | None) -> dict[str, Any]:
    """Judge one SelfSubjectRulesReview of a service account: extra rules breach, an incomplete review is unknown."""
    name = f"serviceaccount {spec.key}" + ("" if namespace == spec.namespace else f" in {namespace}")
    status_of = review.get("status") or {}
    extra = extra_rules(status_of, list(spec.expected) + baseline)
    after: dict[str, Any] = {"namespace": namespace, "extra_rules": [format_rule(r) for r in extra],
                             "rules": [format_rule(r) for r in status_of.get("resourceRules") or []]
                             + [format_rule(r) for r in status_of.get("nonResourceRules") or []],
                             "incomplete": bool(status_of.get("incomplete")),
                             "evaluation_error": status_of.get("evaluationError") or None}
    if extra:
        after["remedy"] = (f"Narrow the roles bound to {spec.key} to its expected rules, or add the extra rules "
                           f"to its expected set if they are intended.")
        return make_record(name, "rules", "breach", f"may do {len(extra)} rule(s) beyond the expected set in "
                                                    f"{namespace}: {'; '.join(after['extra_rules'])}", after=after)
    if exists is False:
        after["remedy"] = f"Create {spec.key} or remove it from service_accounts; the review named an account that is not there."
        return make_record(name, "rules", "unknown", f"service account {spec.key} does not exist", after=after)
    if status_of.get("incomplete"):
        after["remedy"] = ("Review the account's bindings by hand: the API server could not list every rule "
                           f"({status_of.get('evaluationError') or 'incomplete review'}).")
        return make_record(name, "rules", "unknown", f"the rules review in {namespace} is incomplete: "
                                                     f"{status_of.get('evaluationError') or 'no reason given'}",
                           after=after)
    return make_record(name, "rules", "ok", f"{len(after['rules'])} rule(s) in {namespace}, none beyond the expected set",
                       after=after)


# --------------------------------------------------------------------------- network policies


def is_default_deny_ingress(policy: Mapping[str, Any]) -> bool:
    """podSelector {} (every pod), Ingress among the policy types, and no ingress rule (so nothing is allowed)."""
    spec = policy.get("spec") or {}
    selector = spec.get("podSelector") or {}
    selects_all = not selector.get("matchLabels") and not selector.get("matchExpressions")
    return selects_all and "Ingress" in (spec.get("policyTypes") or ["Ingress"]) and not spec.get("ingress")


def network_policy_record(namespace: str, policies: list[Mapping[str, Any]], require_default_deny: bool) -> dict[str, Any]:
    names = sorted((p.get("metadata") or {}).get("name", "") for p in policies)
    deny = sorted((p.get("metadata") or {}).get("name", "") for p in policies if is_default_deny_ingress(p))
    after: dict[str, Any] = {"policies": names, "default_deny_ingress": deny}
    if not policies:
        after["remedy"] = ("Add a default-deny ingress NetworkPolicy (podSelector {}, policyTypes [Ingress]) and "
                           "policies that allow only the traffic the namespace needs.")
        return make_record(f"namespace/{namespace}", "network_policy", "breach",
                           "no NetworkPolicy: every pod accepts traffic from anywhere", after=after)
    if not deny and require_default_deny:
        after["remedy"] = ("Add a default-deny ingress NetworkPolicy (podSelector {}, policyTypes [Ingress]); the "
                           "existing policies isolate only the pods they select.")
        return make_record(f"namespace/{namespace}", "network_policy", "breach",
                           f"{len(names)} NetworkPolicy(ies) ({', '.join(names)}) but no default-deny ingress policy",
                           after=after)
    detail = (f"default-deny ingress {', '.join(deny)}" if deny else "no default-deny ingress policy (not required)")
    return make_record(f"namespace/{namespace}", "network_policy", "ok", f"{len(names)} NetworkPolicy(ies); {detail}",
                       after=after)


# --------------------------------------------------------------------------- unused Secrets and ConfigMaps

VOLUME_SECRET_REFS = (("secret", "secretName"), ("azureFile", "secretName"), ("cephfs", "secretRef"),
                      ("cinder", "secretRef"), ("flexVolume", "secretRef"), ("iscsi", "secretRef"),
                      ("rbd", "secretRef"), ("scaleIO", "secretRef"), ("storageos", "secretRef"),
                      ("csi", "nodePublishSecretRef"))


def _ref_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return value.get("name")
    return None


def pod_spec_references(spec: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(Secret names, ConfigMap names) a pod spec references: volumes, projected volumes, env, envFrom, pull secrets."""
    secrets: set[str] = set()
    configmaps: set[str] = set()
    for volume in spec.get("volumes") or []:
        for key, ref in VOLUME_SECRET_REFS:
            secrets.add(_ref_name((volume.get(key) or {}).get(ref)) or "")
        configmaps.add((volume.get("configMap") or {}).get("name") or "")
        for source in (volume.get("projected") or {}).get("sources") or []:
            secrets.add((source.get("secret") or {}).get("name") or "")
            configmaps.add((source.get("configMap") or {}).get("name") or "")
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or []),
                  *(spec.get("ephemeralContainers") or [])]
    for container in containers:
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            secrets.add((source.get("secretKeyRef") or {}).get("name") or "")
            configmaps.add((source.get("configMapKeyRef") or {}).get("name") or "")
        for env_from in container.get("envFrom") or []:
            secrets.add((env_from.get("secretRef") or {}).get("name") or "")
            configmaps.add((env_from.get("configMapRef") or {}).get("name") or "")
    for pull in spec.get("imagePullSecrets") or []:
        secrets.add(pull.get("name") or "")
    secrets.discard("")
    configmaps.discard("")
    return secrets, configmaps


def template_spec(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a pod, of a workload's template, or of a CronJob's job template."""
    spec = workload.get("spec") or {}
    if "jobTemplate" in spec:
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if "template" in spec:
        return (spec.get("template") or {}).get("spec") or {}
    return spec


@dataclass
class NamespaceObjects:
    """What the unused and secret_age checks read of one namespace (Secrets as metadata only)."""

    secrets: list[dict[str, Any]]
    configmaps: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    service_accounts: list[dict[str, Any]] = field(default_factory=list)
    ingresses: list[dict[str, Any]] = field(default_factory=list)
    apis_missing: list[str] = field(default_factory=list)


def references(objects: NamespaceObjects) -> tuple[set[str], set[str]]:
    secrets: set[str] = set()
    configmaps: set[str] = set()
    for pod in objects.pods:
        found_secrets, found_configmaps = pod_spec_references(template_spec(pod))
        secrets |= found_secrets
        configmaps |= found_configmaps
    for account in objects.service_accounts:
        secrets |= {ref.get("name") for ref in account.get("secrets") or [] if ref.get("name")}
        secrets |= {ref.get("name") for ref in account.get("imagePullSecrets") or [] if ref.get("name")}
    for ingress in objects.ingresses:
        secrets |= {tls.get("secretName") for tls in (ingress.get("spec") or {}).get("tls") or [] if tls.get("secretName")}
    return secrets, configmaps


def unused_records(namespace: str, objects: NamespaceObjects, *, exclude_secret_types: Iterable[str],
                   exclude_configmaps: Iterable[str]) -> list[dict[str, Any]]:
    used_secrets, used_configmaps = references(objects)
    accounts = {(a.get("metadata") or {}).get("name") for a in objects.service_accounts}
    excluded_types, excluded_configmaps = set(exclude_secret_types), set(exclude_configmaps)
    records = []
    reviewed = 0
    for secret in objects.secrets:
        meta = secret.get("metadata") or {}
        if secret.get("type") in excluded_types:
            continue
        reviewed += 1
        if meta.get("name") in used_secrets:
            continue
        if secret.get("type") == SA_TOKEN_TYPE and (meta.get("annotations") or {}).get(SA_NAME_ANNOTATION) in accounts:
            continue  # the token of an existing service account: the account is its user
        why = ("the token of service account " f"{(meta.get('annotations') or {}).get(SA_NAME_ANNOTATION)}, which does not exist"
               if secret.get("type") == SA_TOKEN_TYPE else "referenced by no pod, workload, service account or Ingress TLS")
        records.append(make_record(
            f"secret {namespace}/{meta.get('name')}", "unused", "breach", f"unused: {why}",
            after={"type": secret.get("type"), "created": meta.get("creationTimestamp"),
                   "remedy": "Check that nothing the review cannot see reads it (Gateway API listeners, ingress "
                             "annotations, CSI volumes, clients outside the cluster), then delete it; or reference "
                             "it from the workload that needs it."}))
    for configmap in objects.configmaps:
        meta = configmap.get("metadata") or {}
        if meta.get("name") in excluded_configmaps:
            continue
        reviewed += 1
        if meta.get("name") in used_configmaps:
            continue
        records.append(make_record(
            f"configmap {namespace}/{meta.get('name')}", "unused", "breach",
            "unused: referenced by no pod or workload", after={
                "created": meta.get("creationTimestamp"),
                "remedy": "Delete the ConfigMap if nothing outside the cluster reads it, or reference it from the "
                          "workload that needs it."}))
    if not records:
        note = f" ({', '.join(objects.apis_missing)} not served: not counted)" if objects.apis_missing else ""
        records.append(make_record(f"namespace/{namespace}", "unused", "ok",
                                   f"{reviewed} Secret(s) and ConfigMap(s) reviewed, all referenced{note}",
                                   after={"reviewed": reviewed, "apis_missing": list(objects.apis_missing)}))
    return records


# --------------------------------------------------------------------------- secret age


_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 (``Z`` or an offset; a time without one is UTC, as the API's own timestamps are)."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Python before 3.11 reads only 3 or 6 fraction digits.
    text = _FRACTION.sub(lambda match: "." + (match.group(1) + "000000")[:6], text, count=1)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def data_written_at(meta: Mapping[str, Any]) -> str | None:
    """The newest time a field manager wrote the Secret's data (managedFields), or None.

    What renews a Secret in place (cert-manager, a rotation job) leaves its creation time alone; the field
    manager that owns ``data`` records when it last wrote.
    """
    times = [str(entry.get("time")) for entry in meta.get("managedFields") or []
             if isinstance(entry, Mapping) and entry.get("time")
             and any(key in (entry.get("fieldsV1") or {}) for key in ("f:data", "f:stringData"))]
    return max(times, default=None)


def secret_age_records(namespace: str, secrets: list[Mapping[str, Any]], *, max_age_days: int,
                       exclude_types: Iterable[str], now: datetime) -> list[dict[str, Any]]:
    """One breach per Secret older than ``max_age_days`` since its rotated-at annotation (else its creation)."""
    excluded = set(exclude_types)
    records, oldest, reviewed = [], 0.0, 0
    for secret in secrets:
        meta = secret.get("metadata") or {}
        if secret.get("type") in excluded:
            continue
        reviewed += 1
        name = f"secret {namespace}/{meta.get('name')}"
        rotated = (meta.get("annotations") or {}).get(ROTATED_AT)
        written = data_written_at(meta)
        if rotated:
            source, value, what = "rotated-at", rotated, "rotation"
        elif written:
            source, value, what = "data written", written, "its data was last written"
        else:
            source, value, what = "created", meta.get("creationTimestamp"), "creation"
        try:
            since = parse_timestamp(str(value))
        except ValueError:
            label = ROTATED_AT if rotated else ("managedFields time" if written else "creationTimestamp")
            records.append(make_record(name, "secret_age", "unknown", f"{label} {value!r} is not an ISO 8601 time",
                                       after={"rotated_at": value, "remedy": f"Set {ROTATED_AT} to the time of the "
                                              f"last rotation, ISO 8601 (2026-01-31T12:00:00Z)."}))
            continue
        age = round((now - since).total_seconds() / 86400, 1)
        oldest = max(oldest, age)
        if age > max_age_days:
            records.append(make_record(
                name, "secret_age", "breach", f"{age:g} days since {what} ({since.isoformat()}), over {max_age_days}",
                after={"age_days": age, "since": since.isoformat(), "source": source, "max_age_days": max_age_days,
                       "type": secret.get("type"),
                       "remedy": f"Rotate the Secret (new credential, then {ROTATED_AT} set to the time of the "
                                 f"rotation), or delete it if it is unused."}))
    if not records:
        records.append(make_record(f"namespace/{namespace}", "secret_age", "ok",
                                   f"{reviewed} Secret(s), oldest {oldest:g} days (limit {max_age_days})",
                                   after={"reviewed": reviewed, "oldest_days": oldest, "max_age_days": max_age_days}))
    return records


# --------------------------------------------------------------------------- the review


class Review:
    """One run of the checks over a reader; caches what several checks read (roles, service accounts)."""

    def __init__(self, reader: Any, options: ReviewOptions, namespaces: list[str], now: datetime) -> None:
        self.reader = reader
        self.options = options
        self.namespaces = namespaces
        self.now = now
        self.bindings: list[dict[str, Any]] = []
        self._cluster_roles: dict[str, Any] | None = None
        self._accounts: dict[tuple[str, str], bool | None] = {}

    def cluster_roles(self) -> dict[str, Any]:
        if self._cluster_roles is None:
            roles = self.reader.list(f"{RBAC}/clusterroles", what="clusterroles")
            self._cluster_roles = {(r.get("metadata") or {}).get("name"): r.get("rules") or [] for r in roles}
        return self._cluster_roles

    def service_account_exists(self, namespace: str, name: str) -> bool | None:
        key = (namespace, name)
        if key not in self._accounts:
            try:
                found = self.reader.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
                                        what=f"serviceaccount {namespace}/{name}")
                self._accounts[key] = found is not None
            except ApiReadError:
                self._accounts[key] = None
        return self._accounts[key]

    # ------------------------------------------------------------- checks

    def check_bindings(self) -> list[dict[str, Any]]:
        records = []
        scopes: list[tuple[str | None, str]] = [(None, "clusterrolebindings")]
        scopes += [(ns, f"namespace/{ns}") for ns in self.namespaces]
        for namespace, label in scopes:
            try:
                cluster_roles = self.cluster_roles()
                if namespace is None:
                    bindings = self.reader.list(f"{RBAC}/clusterrolebindings", what="clusterrolebindings")
                    roles: dict[str, Any] = {}
                else:
                    bindings = self.reader.list(f"{RBAC}/namespaces/{namespace}/rolebindings",
                                                what=f"rolebindings in {namespace}")
                    roles = {(r.get("metadata") or {}).get("name"): r.get("rules") or [] for r in
                             self.reader.list(f"{RBAC}/namespaces/{namespace}/roles", what=f"roles in {namespace}")}
            except ApiReadError as exc:
                records.append(unreadable_record(label, "binding", exc))
                continue
            found = []
            for binding in sorted(bindings, key=lambda b: (b.get("metadata") or {}).get("name", "")):
                self.bindings.append(binding_summary(binding))
                ref = binding.get("roleRef") or {}
                rules = (cluster_roles if ref.get("kind") == "ClusterRole" else roles).get(ref.get("name"))
                record = judge_binding(binding, rules, self.options.allowed_admins, self.service_account_exists)
                if record:
                    found.append(record)
            records.extend(found or [make_record(
                label, "binding", "ok", f"{len(bindings)} {'cluster' if namespace is None else ''}rolebinding(s): no "
                                        f"admin role bound off the allow list, no missing service account",
                after={"bindings": len(bindings)})])
        return records

    def baseline_rules(self) -> list[ExpectedRule]:
        rules: list[ExpectedRule] = []
        for name in self.options.baseline_cluster_roles:
            role = self.reader.get(f"{RBAC}/clusterroles/{name}", what=f"clusterrole {name}")
            rules.extend(expected_from_role_rules((role or {}).get("rules") or []))
        return rules

    def check_service_accounts(self) -> list[dict[str, Any]]:
        records = []
        try:
            baseline = self.baseline_rules()
        except ApiReadError as exc:
            return [unreadable_record(f"serviceaccount {spec.key}", "rules", exc) for spec in self.options.service_accounts]
        for spec in self.options.service_accounts:
            exists = self.service_account_exists(spec.namespace, spec.name)
            for namespace in spec.review_namespaces:
                name = f"serviceaccount {spec.key}" + ("" if namespace == spec.namespace else f" in {namespace}")
                body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                        "spec": {"namespace": namespace}}
                try:
                    review = self.reader.create(RULES_REVIEW, body, what=f"the rules review of {spec.key} in {namespace}",
                                                impersonate=spec.username)
                except ApiReadError as exc:
                    records.append(unreadable_record(name, "rules", exc))
                    continue
                records.append(service_account_record(spec, namespace, review, baseline, exists))
        return records

    def check_network_policies(self) -> list[dict[str, Any]]:
        records = []
        for namespace in self.namespaces:
            try:
                policies = self.reader.list(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
                                            what=f"networkpolicies in {namespace}")
            except ApiReadError as exc:
                records.append(unreadable_record(f"namespace/{namespace}", "network_policy", exc))
                continue
            records.append(network_policy_record(namespace, policies, self.options.require_default_deny))
        return records

    def _list_first_served(self, roots: Iterable[str], resource: str, namespace: str,
                           missing: list[str]) -> list[dict[str, Any]]:
        """The items from the first API version that serves the resource; a resource no version serves is noted."""
        for root in roots:
            try:
                return self.reader.list(f"{root}/namespaces/{namespace}/{resource}", what=f"{resource} in {namespace}")
            except ApiReadError as exc:
                if exc.status != 404:
                    raise
        missing.append(resource)
        return []

    def unused_objects(self, namespace: str, secrets: list[dict[str, Any]]) -> NamespaceObjects:
        """Everything of a namespace that may reference its Secrets and ConfigMaps (ConfigMaps as metadata only)."""
        objects = NamespaceObjects(secrets=secrets)
        objects.configmaps = self.reader.list(f"/api/v1/namespaces/{namespace}/configmaps",
                                              what=f"configmaps in {namespace}", metadata_only=True)
        objects.pods = self.reader.list(f"/api/v1/namespaces/{namespace}/pods", what=f"pods in {namespace}")
        for resource, roots in WORKLOAD_PATHS:
            objects.pods += self._list_first_served(roots, resource, namespace, objects.apis_missing)
        objects.service_accounts = self.reader.list(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                                                    what=f"serviceaccounts in {namespace}")
        objects.ingresses = self._list_first_served(INGRESS_APIS, "ingresses", namespace, objects.apis_missing)
        return objects

    def check_secrets(self) -> list[dict[str, Any]]:
        """The unused and secret_age checks, which share the namespace's Secret list (metadata only)."""
        unused, aged = "unused" in self.options.checks, "secret_age" in self.options.checks
        records = []
        for namespace in self.namespaces:
            try:
                secrets = self.reader.list(f"/api/v1/namespaces/{namespace}/secrets", what=f"secrets in {namespace}",
                                           metadata_only=True)
            except ApiReadError as exc:
                records.extend(unreadable_record(f"namespace/{namespace}", action, exc)
                               for action, wanted in (("unused", unused), ("secret_age", aged)) if wanted)
                continue
            if unused:
                try:
                    objects = self.unused_objects(namespace, secrets)
                except ApiReadError as exc:
                    records.append(unreadable_record(f"namespace/{namespace}", "unused", exc))
                else:
                    records.extend(unused_records(namespace, objects,
                                                  exclude_secret_types=self.options.exclude_secret_types,
                                                  exclude_configmaps=self.options.exclude_configmaps))
            if aged:
                records.extend(secret_age_records(
                    namespace, secrets, max_age_days=self.options.secret_max_age_days,
                    exclude_types=set(self.options.exclude_secret_types) | set(self.options.secret_age_exclude_types),
                    now=self.now))
        return records

    def run(self) -> list[dict[str, Any]]:
        records = []
        if "bindings" in self.options.checks:
            records += self.check_bindings()
        if "service_accounts" in self.options.checks and self.options.service_accounts:
            records += self.check_service_accounts()
        if "network_policies" in self.options.checks:
            records += self.check_network_policies()
        if "unused" in self.options.checks or "secret_age" in self.options.checks:
            records += self.check_secrets()
        return records


def resolve_namespaces(reader: Any, options: ReviewOptions) -> list[str]:
    """The namespaces to review; a named one that does not exist is bad input (nothing else is read)."""
    try:
        existing: set[str] | None = {(n.get("metadata") or {}).get("name") for n in
                                     reader.list("/api/v1/namespaces", what="namespaces")}
    except ApiReadError as exc:
        if options.namespaces is None:
            raise AccessReviewError(msg=f"cannot list the namespaces ({exc.status} {exc.reason}): name the namespaces "
                                        f"to review with the namespaces option") from exc
        existing = None
    if options.namespaces is None:
        return sorted(ns for ns in existing if ns not in set(options.exclude_namespaces))
    if existing is None:
        missing = []
        for namespace in options.namespaces:
            try:
                if reader.get(f"/api/v1/namespaces/{namespace}", what=f"namespace {namespace}") is None:
                    missing.append(namespace)
            except ApiReadError:
                pass  # cannot tell: the checks' own reads will say unknown
    else:
        missing = [ns for ns in options.namespaces if ns not in existing]
    if missing:
        raise AccessReviewError(msg=f"namespace(s) {', '.join(missing)} do not exist", namespaces=missing)
    return list(dict.fromkeys(options.namespaces))


def summary(records: list[Mapping[str, Any]], namespaces: list[str]) -> str:
    counts = {status: sum(1 for r in records if r["status"] == status) for status in PROBLEM_STATUSES}
    scope = f"{len(namespaces)} namespace(s)"
    if not any(counts.values()):
        return f"Kubernetes access review of {scope}: every check passed ({len(records)} record(s))"
    found = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return f"Kubernetes access review of {scope}: {found}"


def review_cluster(reader: Any, options: ReviewOptions, *, now: datetime) -> dict[str, Any]:
    namespaces = resolve_namespaces(reader, options)
    review = Review(reader, options, namespaces, now)
    records = review.run()
    return {"changed": False, "msg": summary(records, namespaces), "records": records,
            "bindings": review.bindings, "namespaces": namespaces}


def run_k8s_access_review(params: Mapping[str, Any], *, check_mode: bool = False, diff_mode: bool = False,
                          client_factory: Callable[[str | None, str | None], Any] = api_client_from,
                          now: datetime | None = None) -> dict[str, Any]:
    """Module entry: validate, connect, review. Read-only, so check mode runs the same reads."""
    del check_mode, diff_mode  # nothing is ever changed: the same reads in both modes
    options = parse_options(params)
    api_client = client_factory(params.get("kubeconfig"), params.get("context"))
    try:
        return review_cluster(ApiReader(api_client, timeout=options.request_timeout), options,
                              now=now or datetime.now(timezone.utc))
    finally:
        api_client.close()
