"""k8s_access_review without a cluster: options, the judging functions, and a whole review over recorded API JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import yaml

from ansible_collections.streamops.maintenance.plugins.doc_fragments.kubernetes import ModuleDocFragment
from ansible_collections.streamops.maintenance.plugins.module_utils import k8s_conn, platform_k8s
from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green import DeployError
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_access_review import (
    AccessReviewError,
    ApiReader,
    ApiReadError,
    ExpectedRule,
    NamespaceObjects,
    admin_reason,
    extra_rules,
    format_rule,
    is_default_deny_ingress,
    judge_binding,
    network_policy_record,
    parse_options,
    pod_spec_references,
    review_cluster,
    run_k8s_access_review,
    secret_age_records,
    table_items,
    unused_records,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems, result_problems
from ansible_collections.streamops.maintenance.plugins.modules import k8s_access_review

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
FRAGMENT_OPTIONS = set(k8s_conn.kubernetes_argument_spec())


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "required": bool(o.get("required")), "elements": o.get("elements"),
                   "suboptions": _shape(o.get("suboptions") or o.get("options") or {})}
            for name, o in options.items()}


def test_kubernetes_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = k8s_conn.kubernetes_argument_spec()
    assert _shape(documented) == _shape(spec)
    assert spec["kubeconfig"]["fallback"][1] == ["K8S_AUTH_KUBECONFIG"]
    assert spec["context"]["fallback"][1] == ["K8S_AUTH_CONTEXT"]
    for name in ("K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT"):
        assert f"E({name})" in ModuleDocFragment.DOCUMENTATION


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(k8s_access_review.DOCUMENTATION)["options"]
    own = {k: v for k, v in k8s_access_review.argument_spec().items() if k not in FRAGMENT_OPTIONS}
    assert _shape(documented) == _shape(own)
    assert "streamops.maintenance.kubernetes" in yaml.safe_load(k8s_access_review.DOCUMENTATION)[
        "extends_documentation_fragment"]


def test_documented_record_samples_keep_the_contract():
    sample = yaml.safe_load(k8s_access_review.RETURN)["records"]["sample"]
    assert [problem for record in sample for problem in record_problems(record)] == []


def test_blue_green_keeps_its_own_error_type(monkeypatch):
    def refuse(kubeconfig, context):
        raise k8s_conn.K8sConnectionError(msg=f"cannot load the Kubernetes configuration ({kubeconfig}): nope")

    monkeypatch.setattr(platform_k8s, "_api_client_from", refuse)
    with pytest.raises(DeployError, match=r"cannot load the Kubernetes configuration \(/no/such\): nope"):
        platform_k8s.api_client_from("/no/such", None)


def test_a_missing_kubeconfig_fails_naming_it(tmp_path):
    with pytest.raises(k8s_conn.K8sConnectionError, match="cannot load the Kubernetes configuration .*missing.yml"):
        k8s_conn.api_client_from(str(tmp_path / "missing.yml"), None)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("params, message", [
    ({"namespaces": ["Prod"]}, "namespace 'Prod' is not a namespace name"),
    ({"namespaces": []}, "namespaces is empty"),
    ({"checks": ["bindings", "rbac"]}, "checks rbac not known"),
    ({"allowed_admins": ["alice"]}, "allowed_admins entry 'alice' must be Kind:name"),
    ({"allowed_admins": ["Robot:r2"]}, "allowed_admins entry 'Robot:r2' must be Kind:name"),
    ({"allowed_admins": ["ServiceAccount:deployer"]}, "a ServiceAccount is named namespace/name"),
    ({"secret_max_age_days": 0}, "secret_max_age_days must be a whole number of days, at least 1, got 0"),
    ({"request_timeout": 0}, "request_timeout must be a whole number of seconds, at least 1, got 0"),
    ({"service_accounts": [{"name": "stream-systems"}]}, "service_accounts[0].name 'stream-systems' must be namespace/name"),
    ({"service_accounts": [{"name": "prod/app", "expected": [{"verbs": ["get"]}]}]},
     "service_accounts[0].expected[0] needs resources or non_resource_urls"),
    ({"service_accounts": [{"name": "prod/app", "expected": [{"resources": ["pods"]}]}]},
     "service_accounts[0].expected[0] needs verbs"),
    ({"service_accounts": [{"name": "prod/app", "expected": [{"verbs": ["get"], "resource": ["pods"]}]}]},
     "service_accounts[0].expected[0] has unknown key(s) resource"),
    ({"service_accounts": [{"name": "prod/app", "namespaces": ["a_b"]}]},
     "service_accounts[0].namespaces entry 'a_b' is not a namespace name"),
])
def test_bad_options_fail_naming_the_value(params, message):
    with pytest.raises(AccessReviewError) as caught:
        parse_options(params)
    assert message in caught.value.msg


def test_options_normalise_subjects_and_default_the_core_group():
    options = parse_options({"allowed_admins": ["group:platform", "serviceaccount:ci/deployer"],
                             "service_accounts": [{"name": "prod/app", "expected": [
                                 {"verbs": ["get"], "resources": ["pods"], "api_groups": None}]}]})
    assert options.allowed_admins == {"Group:platform", "ServiceAccount:ci/deployer"}
    spec = options.service_accounts[0]
    assert (spec.username, spec.review_namespaces) == ("system:serviceaccount:prod:app", ("prod",))
    assert spec.expected == (ExpectedRule(verbs=("get",), api_groups=("",), resources=("pods",)),)


# --------------------------------------------------------------------------- bindings


@pytest.mark.parametrize("role, rules, expected", [
    ("cluster-admin", [], "cluster-admin"),
    ("anything", [{"verbs": ["get"], "resources": ["pods"]}, {"verbs": ["*"], "resources": ["configmaps"]}], "verbs *"),
    ("reader-of-all", [{"verbs": ["get", "list"], "apiGroups": ["*"], "resources": ["*"]}], "resources *"),
    ("view", [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "services"]}], None),
    ("missing-role", None, None),
])
def test_admin_roles(role, rules, expected):
    assert admin_reason(role, rules) == expected


def binding(name, role, *subjects, namespace=None, bootstrap=False, kind="ClusterRole"):
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    if bootstrap:
        meta["labels"] = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    return {"metadata": meta, "roleRef": {"kind": kind, "name": role},
            "subjects": [dict(zip(("kind", "name", "namespace"), s)) for s in subjects]}


ADMIN = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
VIEW = [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]
ALLOWED = frozenset({"Group:system:masters", "User:alice"})
EXISTING = {("prod", "app"), ("kube-system", "generic-garbage-collector")}


@pytest.mark.parametrize("item, rules, status, detail", [
    pytest.param(binding("cluster-admin", "cluster-admin", ("Group", "system:masters"), bootstrap=True), ADMIN,
                 None, None, id="the built-in cluster-admin binding"),
    pytest.param(binding("system:controller:namespace-controller", "system:controller:namespace-controller",
                         ("ServiceAccount", "namespace-controller", "kube-system"), bootstrap=True), ADMIN,
                 None, None, id="a built-in controller binding whose account kube-controller-manager never made"),
    pytest.param(binding("cluster-admin", "cluster-admin", ("Group", "system:masters"), ("User", "bob"),
                         bootstrap=True), ADMIN,
                 "breach", "binds ClusterRole/cluster-admin (cluster-admin) to User:bob, not on allowed_admins",
                 id="a user added to the built-in binding"),
    pytest.param(binding("looks-builtin", "cluster-admin", ("Group", "system:authenticated"), ("User", "system:anonymous"),
                         ("Group", "system:serviceaccounts:prod"), bootstrap=True), ADMIN, "breach",
                 "binds ClusterRole/cluster-admin (cluster-admin) to Group:system:authenticated, User:system:anonymous, "
                 "Group:system:serviceaccounts:prod, not on allowed_admins",
                 id="the built-in label does not exempt everyone or every service account"),
    pytest.param(binding("alice-admin", "cluster-admin", ("User", "alice")), ADMIN, None, None, id="allowed admin"),
    pytest.param(binding("ci", "everything", ("ServiceAccount", "app", "prod")), ADMIN, "breach",
                 "binds ClusterRole/everything (verbs *) to ServiceAccount:prod/app, not on allowed_admins",
                 id="service account bound to verbs *"),
    pytest.param(binding("masters-too", "everything", ("Group", "system:masters")), ADMIN, None, None,
                 id="allowed group on a custom admin role"),
    pytest.param(binding("viewer", "view", ("ServiceAccount", "gone", "prod")), VIEW, "breach",
                 "binds ClusterRole/view to service account(s) that do not exist: ServiceAccount:prod/gone",
                 id="missing service account"),
    pytest.param(binding("viewer", "view", ("ServiceAccount", "app"), namespace="prod", kind="Role"), VIEW, None, None,
                 id="service account without namespace is in the binding's namespace"),
    pytest.param(binding("viewer", "view", ("ServiceAccount", "hidden", "secretive")), VIEW, "unknown",
                 "cannot tell whether ServiceAccount:secretive/hidden exist", id="account that cannot be read"),
])
def test_judge_binding(item, rules, status, detail):
    def exists(namespace, name):
        return None if namespace == "secretive" else (namespace, name) in EXISTING

    record = judge_binding(item, rules, ALLOWED, exists)
    if status is None:
        assert record is None
        return
    assert (record["status"], record["action"]) == (status, "binding")
    assert detail in record["detail"]
    assert record["after"]["remedy"]
    assert record_problems(record) == []


# --------------------------------------------------------------------------- service account rules


EXPECTED = [ExpectedRule(verbs=("get", "list"), resources=("pods", "configmaps")),
            ExpectedRule(verbs=("get",), resources=("secrets",), resource_names=("app-db",)),
            ExpectedRule(verbs=("get",), api_groups=("apps",), resources=("deployments/*",)),
            ExpectedRule(verbs=("get",), non_resource_urls=("/healthz*",))]


@pytest.mark.parametrize("status, extra", [
    ({"resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}, []),
    ({"resourceRules": [{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]}]},
     ["get,delete core/pods"]),
    ({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}, ["* */*"]),
    ({"resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app-db"]}]},
     []),
    ({"resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]}, ["get core/secrets"]),
    ({"resourceRules": [{"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments/scale"]}]}, []),
    ({"resourceRules": [{"verbs": ["get"], "apiGroups": ["extensions"], "resources": ["deployments/scale"]}]},
     ["get extensions/deployments/scale"]),
    ({"nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/healthz/etcd"]}]}, []),
    ({"nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]}, ["get /metrics"]),
    ({"nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["*"]}]}, ["get *"]),
])
def test_rules_beyond_the_expected_set(status, extra):
    assert [format_rule(rule) for rule in extra_rules(status, EXPECTED)] == extra


# --------------------------------------------------------------------------- network policies


def policy(name, selector=None, types=None, ingress=None):
    spec = {"podSelector": selector or {}}
    if types is not None:
        spec["policyTypes"] = types
    if ingress is not None:
        spec["ingress"] = ingress
    return {"metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("item, expected", [
    (policy("deny", types=["Ingress"]), True),
    (policy("deny-all", types=["Ingress", "Egress"], ingress=[]), True),
    (policy("allow-all", types=["Ingress"], ingress=[{}]), False),
    (policy("some-pods", selector={"matchLabels": {"app": "db"}}, types=["Ingress"]), False),
    (policy("egress-only", types=["Egress"]), False),
])
def test_default_deny_ingress(item, expected):
    assert is_default_deny_ingress(item) is expected


@pytest.mark.parametrize("policies, require, status, detail", [
    ([], True, "breach", "no NetworkPolicy"),
    ([], False, "breach", "no NetworkPolicy"),
    ([policy("allow-web", selector={"matchLabels": {"app": "web"}}, types=["Ingress"], ingress=[{}])], True,
     "breach", "but no default-deny ingress policy"),
    ([policy("allow-web", selector={"matchLabels": {"app": "web"}}, types=["Ingress"], ingress=[{}])], False,
     "ok", "no default-deny ingress policy (not required)"),
    ([policy("deny", types=["Ingress"])], True, "ok", "default-deny ingress deny"),
])
def test_network_policy_record(policies, require, status, detail):
    record = network_policy_record("prod", policies, require)
    assert (record["name"], record["status"]) == ("namespace/prod", status)
    assert detail in record["detail"]
    assert ("remedy" in record["after"]) == (status == "breach")


# --------------------------------------------------------------------------- unused and age


POD_SPEC = {
    "volumes": [{"name": "a", "secret": {"secretName": "vol-secret"}},
                {"name": "b", "configMap": {"name": "vol-cm"}},
                {"name": "c", "projected": {"sources": [{"secret": {"name": "proj-secret"}},
                                                        {"configMap": {"name": "proj-cm"}},
                                                        {"serviceAccountToken": {"path": "token"}}]}},
                {"name": "d", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-secret"}}},
                {"name": "e", "emptyDir": {}}],
    "containers": [{"name": "app", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                                           {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}},
                                           {"name": "C", "value": "plain"}],
                    "envFrom": [{"secretRef": {"name": "envfrom-secret"}}, {"configMapRef": {"name": "envfrom-cm"}}]}],
    "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
    "imagePullSecrets": [{"name": "pull-secret"}],
}


def test_pod_spec_references_every_kind_of_reference():
    secrets, configmaps = pod_spec_references(POD_SPEC)
    assert secrets == {"vol-secret", "proj-secret", "csi-secret", "env-secret", "envfrom-secret", "init-secret",
                       "pull-secret"}
    assert configmaps == {"vol-cm", "proj-cm", "env-cm", "envfrom-cm"}


def secret(name, kind="Opaque", created="2026-02-20T00:00:00Z", **annotations):
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}, "type": kind}


def test_unused_secrets_and_configmaps():
    objects = NamespaceObjects(
        secrets=[secret("vol-secret"), secret("lonely"), secret("sa-pull"), secret("tls"),
                 secret("cron-secret"),
                 secret("app-token", "kubernetes.io/service-account-token", **{"kubernetes.io/service-account.name": "app"}),
                 secret("gone-token", "kubernetes.io/service-account-token", **{"kubernetes.io/service-account.name": "gone"}),
                 secret("sh.helm.release.v1.web.v1", "helm.sh/release.v1")],
        configmaps=[{"metadata": {"name": "kube-root-ca.crt"}}, {"metadata": {"name": "env-cm"}},
                    {"metadata": {"name": "stale-cm"}}],
        pods=[{"spec": POD_SPEC},
              {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                  {"name": "c", "envFrom": [{"secretRef": {"name": "cron-secret"}}]}]}}}}}}],
        service_accounts=[{"metadata": {"name": "app"}, "imagePullSecrets": [{"name": "sa-pull"}]}],
        ingresses=[{"spec": {"tls": [{"secretName": "tls", "hosts": ["a.example"]}]}}])
    records = unused_records("prod", objects, exclude_secret_types=["helm.sh/release.v1"],
                             exclude_configmaps=["kube-root-ca.crt"])
    assert [(r["name"], r["status"]) for r in records] == [
        ("secret prod/lonely", "breach"), ("secret prod/gone-token", "breach"), ("configmap prod/stale-cm", "breach")]
    assert "service account gone, which does not exist" in records[1]["detail"]
    assert all(r["after"]["remedy"] for r in records)


def test_a_namespace_with_everything_used_gives_one_ok_record():
    objects = NamespaceObjects(secrets=[secret("env-secret")], pods=[{"spec": POD_SPEC}], apis_missing=["ingresses"])
    [record] = unused_records("prod", objects, exclude_secret_types=[], exclude_configmaps=[])
    assert (record["name"], record["action"], record["status"]) == ("namespace/prod", "unused", "ok")
    assert "ingresses not served" in record["detail"]


def renewed(item, time):
    """``item`` whose data a field manager last wrote at ``time`` (a label change by another manager is not a write)."""
    item["metadata"]["managedFields"] = [
        {"manager": "cert-manager", "operation": "Update", "time": time, "fieldsV1": {"f:data": {"f:tls.crt": {}}}},
        {"manager": "kubectl-label", "operation": "Update", "time": "2026-03-01T00:00:00Z",
         "fieldsV1": {"f:metadata": {"f:labels": {}}}}]
    return item


@pytest.mark.parametrize("item, status, detail", [
    (secret("fresh"), "ok", "1 Secret(s), oldest 9.5 days (limit 90)"),
    (secret("old", created="2025-10-01T00:00:00Z"), "breach", "151.5 days since creation"),
    (secret("rotated", created="2020-01-01T00:00:00Z", **{"streamops.io/rotated-at": "2026-02-01T12:00:00+00:00"}),
     "ok", "oldest 28 days"),
    (secret("rotated-long-ago", **{"streamops.io/rotated-at": "2024-01-01T00:00:00Z"}), "breach",
     "days since rotation"),
    (secret("naive-time", **{"streamops.io/rotated-at": "2026-02-28T12:00:00"}), "ok", "oldest 1 days"),
    (secret("garbled", **{"streamops.io/rotated-at": "last tuesday"}), "unknown", "'last tuesday' is not an ISO 8601"),
    (secret("token", "kubernetes.io/service-account-token", created="2020-01-01T00:00:00Z"), "ok", "0 Secret(s)"),
    # Renewed in place (cert-manager): the data's field manager wrote it lately, the creation is years old.
    (renewed(secret("renewed", created="2020-01-01T00:00:00Z"), "2026-02-01T00:00:00.123456789Z"), "ok", "oldest 28.5 days"),
    (renewed(secret("renewed-long-ago", created="2020-01-01T00:00:00Z"), "2025-01-01T00:00:00Z"), "breach",
     "days since its data was last written"),
])
def test_secret_age(item, status, detail):
    records = secret_age_records("prod", [item], max_age_days=90, exclude_types=["kubernetes.io/service-account-token"],
                                 now=NOW)
    assert [r["status"] for r in records] == [status]
    assert detail in records[0]["detail"]
    assert ("remedy" in records[0]["after"]) == (status != "ok")


# --------------------------------------------------------------------------- a whole review over API JSON

RBAC = "/apis/rbac.authorization.k8s.io/v1"


class FakeReader:
    """Answers reads from a dict of path -> items (or object); a path in ``refused`` answers 403."""

    def __init__(self, data, refused=(), reviews=None):
        self.data = data
        self.refused = set(refused)
        self.reviews = reviews or {}
        self.reads = []

    def _check(self, path, what):
        self.reads.append(path)
        if path in self.refused:
            raise ApiReadError(what=what, status=403, reason=f"forbidden: cannot read {what}")

    def list(self, path, *, what, metadata_only=False):
        self._check(path, what)
        if path not in self.data:
            raise ApiReadError(what=what, status=404, reason="the server could not find the requested resource")
        return self.data[path]

    def get(self, path, *, what):
        self._check(path, what)
        return self.data.get(path)

    def create(self, path, body, *, what, impersonate=None):
        self._check(path, what)
        return {"status": self.reviews[(impersonate, body["spec"]["namespace"])]}


def cluster(**extra):
    ns = "/api/v1/namespaces/prod"
    data = {
        "/api/v1/namespaces": [{"metadata": {"name": n}} for n in ("prod", "kube-system", "default")],
        f"{RBAC}/clusterroles": [{"metadata": {"name": "cluster-admin"}, "rules": ADMIN},
                                 {"metadata": {"name": "view"}, "rules": VIEW}],
        f"{RBAC}/clusterrolebindings": [binding("cluster-admin", "cluster-admin", ("Group", "system:masters"),
                                                bootstrap=True)],
        f"{RBAC}/namespaces/prod/rolebindings": [binding("app-view", "view", ("ServiceAccount", "app"), namespace="prod")],
        f"{RBAC}/namespaces/prod/roles": [],
        f"{RBAC}/clusterroles/system:basic-user": {"rules": [
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectrulesreviews"]}]},
        f"{ns}/serviceaccounts/app": {"metadata": {"name": "app"}},
        "/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies": [policy("deny", types=["Ingress"])],
        f"{ns}/secrets": [secret("env-secret")],
        f"{ns}/configmaps": [],
        f"{ns}/pods": [{"spec": POD_SPEC}],
        f"{ns}/serviceaccounts": [{"metadata": {"name": "app"}}],
        "/apis/networking.k8s.io/v1/namespaces/prod/ingresses": [],
    }
    for resource, root in (("deployments", "/apis/apps/v1"), ("replicasets", "/apis/apps/v1"),
                           ("statefulsets", "/apis/apps/v1"), ("daemonsets", "/apis/apps/v1"),
                           ("jobs", "/apis/batch/v1"), ("cronjobs", "/apis/batch/v1beta1"),
                           ("replicationcontrollers", "/api/v1")):
        data[f"{root}/namespaces/prod/{resource}"] = []
    data.update(extra)
    return data


SA_REVIEW = {("system:serviceaccount:prod:app", "prod"): {"resourceRules": [
    {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectrulesreviews"]},
    {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}], "incomplete": False}}


def test_a_clean_namespace_gives_one_ok_record_per_check():
    options = parse_options({"namespaces": ["prod"], "service_accounts": [
        {"name": "prod/app", "expected": [{"verbs": ["get"], "resources": ["pods"]}]}]})
    result = review_cluster(FakeReader(cluster(), reviews=SA_REVIEW), options, now=NOW)
    assert result_problems(result) == []
    assert [(r["name"], r["action"], r["status"]) for r in result["records"]] == [
        ("clusterrolebindings", "binding", "ok"), ("namespace/prod", "binding", "ok"),
        ("serviceaccount prod/app", "rules", "ok"), ("namespace/prod", "network_policy", "ok"),
        ("namespace/prod", "unused", "ok"), ("namespace/prod", "secret_age", "ok")]
    assert result["changed"] is False and result["namespaces"] == ["prod"]
    assert result["bindings"] == [
        {"kind": "ClusterRoleBinding", "namespace": None, "name": "cluster-admin", "role": "ClusterRole/cluster-admin",
         "subjects": ["Group:system:masters"], "builtin": True},
        {"kind": "RoleBinding", "namespace": "prod", "name": "app-view", "role": "ClusterRole/view",
         "subjects": ["ServiceAccount:prod/app"], "builtin": False}]


def test_default_namespaces_leave_out_the_excluded_ones():
    reader = FakeReader(cluster())
    result = review_cluster(reader, parse_options({"checks": ["network_policies"]}), now=NOW)
    assert result["namespaces"] == ["default", "prod"]
    assert [(r["name"], r["status"]) for r in result["records"]] == [
        ("namespace/default", "failed"), ("namespace/prod", "ok")]  # the fake serves no policies list for default


@pytest.mark.parametrize("refused, name, action", [
    (f"{RBAC}/clusterrolebindings", "clusterrolebindings", "binding"),
    (f"{RBAC}/namespaces/prod/rolebindings", "namespace/prod", "binding"),
    ("/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies", "namespace/prod", "network_policy"),
    ("/api/v1/namespaces/prod/pods", "namespace/prod", "unused"),
    ("/apis/apps/v1/namespaces/prod/deployments", "namespace/prod", "unused"),
    ("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", "serviceaccount prod/app", "rules"),
])
def test_a_refused_read_is_unknown_never_clean(refused, name, action):
    options = parse_options({"namespaces": ["prod"], "service_accounts": [
        {"name": "prod/app", "expected": [{"verbs": ["get"], "resources": ["pods"]}]}]})
    result = review_cluster(FakeReader(cluster(), refused=[refused], reviews=SA_REVIEW), options, now=NOW)
    [record] = [r for r in result["records"] if r["status"] != "ok"]
    assert (record["name"], record["action"], record["status"]) == (name, action, "unknown")
    assert "403 forbidden" in record["detail"] and record["after"]["remedy"]
    assert "every check passed" not in result["msg"]


def test_an_incomplete_rules_review_is_unknown():
    reviews = {("system:serviceaccount:prod:app", "prod"): {
        "resourceRules": [], "incomplete": True, "evaluationError": "webhook authorizer: rules not listed"}}
    options = parse_options({"namespaces": ["prod"], "checks": ["service_accounts"],
                             "service_accounts": [{"name": "prod/app"}]})
    [record] = review_cluster(FakeReader(cluster(), reviews=reviews), options, now=NOW)["records"]
    assert record["status"] == "unknown" and "webhook authorizer" in record["detail"]


def test_a_namespace_that_does_not_exist_is_bad_input_and_nothing_else_is_read():
    reader = FakeReader(cluster())
    with pytest.raises(AccessReviewError, match="namespace\\(s\\) staging do not exist"):
        review_cluster(reader, parse_options({"namespaces": ["prod", "staging"]}), now=NOW)
    assert reader.reads == ["/api/v1/namespaces"]


def test_bad_options_fail_before_connecting():
    def connect(kubeconfig, context):
        raise AssertionError("connected despite bad input")

    with pytest.raises(AccessReviewError, match="checks nope not known"):
        run_k8s_access_review({"checks": ["nope"]}, client_factory=connect)


# --------------------------------------------------------------------------- the reader over the client


class FakeApiClient:
    """Records the requests ApiReader builds and answers them from a list of (status, payload)."""

    class Response:
        def __init__(self, status, payload):
            self.status = status
            self.payload = payload

        def read(self):
            return json.dumps(self.payload).encode()

    class Configuration:
        host = "https://127.0.0.1:6443"

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.configuration = self.Configuration()
        self.closed = False

    def param_serialize(self, method, path, *, query_params, header_params, body, auth_settings):
        self.requests.append({"method": method, "path": path, "query": query_params, "headers": header_params,
                              "body": body, "auth": auth_settings})
        return method, path, header_params, body, None

    def call_api(self, method, url, headers, body, post, _request_timeout):
        return self.Response(*self.answers.pop(0))

    def close(self):
        self.closed = True


def test_reader_pages_through_a_list_and_reads_secrets_as_table_metadata():
    table = {"kind": "Table", "columnDefinitions": [{"name": "Name"}, {"name": "Type"}, {"name": "Data"}],
             "rows": [{"cells": ["s1", "Opaque", 1], "object": {"metadata": {"name": "s1"}}}],
             "metadata": {"continue": "next"}}
    last = {**table, "rows": [{"cells": ["s2", "kubernetes.io/tls", 2], "object": {"metadata": {"name": "s2"}}}],
            "metadata": {}}
    client = FakeApiClient([(200, table), (200, last)])
    items = ApiReader(client, timeout=5).list("/api/v1/namespaces/prod/secrets", what="secrets", metadata_only=True)
    assert items == [{"metadata": {"name": "s1"}, "type": "Opaque"}, {"metadata": {"name": "s2"}, "type": "kubernetes.io/tls"}]
    assert client.requests[0]["headers"]["Accept"].startswith("application/json;as=Table")
    assert ("includeObject", "Metadata") in client.requests[0]["query"]
    assert ("continue", "next") in client.requests[1]["query"]
    assert table_items(last) == [{"metadata": {"name": "s2"}, "type": "kubernetes.io/tls"}]


def test_reader_impersonates_for_a_review_and_reports_refusals():
    client = FakeApiClient([(201, {"status": {}}), (403, {"kind": "Status", "message": "forbidden: nope"})])
    reader = ApiReader(client, timeout=5)
    reader.create("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": {"namespace": "prod"}}, what="r",
                  impersonate="system:serviceaccount:prod:app")
    assert client.requests[0]["headers"]["Impersonate-User"] == "system:serviceaccount:prod:app"
    with pytest.raises(ApiReadError) as caught:
        reader.list("/api/v1/namespaces/prod/pods", what="pods in prod")
    assert (caught.value.status, caught.value.reason) == (403, "forbidden: nope")
    assert "Impersonate-User" not in client.requests[1]["headers"]


def test_run_closes_the_client():
    client = FakeApiClient([(200, {"items": [{"metadata": {"name": "prod"}}]}),
                            (200, {"items": [{"metadata": {"name": "deny"}, "spec": {"podSelector": {},
                                                                                     "policyTypes": ["Ingress"]}}]})])
    result = run_k8s_access_review({"checks": ["network_policies"], "namespaces": ["prod"]},
                                   client_factory=lambda kubeconfig, context: client, now=NOW)
    assert [r["status"] for r in result["records"]] == ["ok"] and client.closed
