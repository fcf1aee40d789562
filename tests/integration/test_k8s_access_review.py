"""k8s_access_review on the lab's real Kubernetes 1.20 (RBAC on): planted findings are reported, and nothing else.

Two fresh namespaces: ``app`` holds a service account bound cluster-wide to an over-broad ClusterRole
(verbs *), a RoleBinding to a service account that does not exist, a default-deny ingress policy, an
unused Secret, a Secret whose rotated-at annotation is years old, and Secrets and a ConfigMap that a pod
(volume, env, envFrom, imagePullSecrets) or an Ingress (TLS) uses; ``open`` has no NetworkPolicy at all.
The cluster's own bindings (the API server's bootstrap policy) must give no finding.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from string import Template

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import k8s_access_review

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

MANIFEST = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ar-everything-$id}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: ["*"]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: over-broad, namespace: $app}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ar-over-broad-$id}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ar-everything-$id}
subjects:
  - {kind: ServiceAccount, name: over-broad, namespace: $app}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: $app}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: $app}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-pods, namespace: $app}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
  - {kind: ServiceAccount, name: reader}
---
# Granted to every service account of the namespace through its group: the review must see it.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: configmap-getter, namespace: $app}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: all-accounts-get-configmaps, namespace: $app}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-getter}
subjects:
  - {kind: Group, name: "system:serviceaccounts:$app", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ghost-view, namespace: $app}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
  - {kind: ServiceAccount, name: ghost, namespace: $app}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: $app}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: v1
kind: Secret
metadata: {name: unused-secret, namespace: $app}
stringData: {password: never-read-by-the-review}
---
apiVersion: v1
kind: Secret
metadata:
  name: old-secret
  namespace: $app
  annotations: {streamops.io/rotated-at: "2019-06-01T00:00:00Z"}
stringData: {api-key: old-key}
---
apiVersion: v1
kind: Secret
metadata:
  name: rotated-secret
  namespace: $app
  annotations: {streamops.io/rotated-at: "$recent"}
stringData: {api-key: new-key}
---
apiVersion: v1
kind: Secret
metadata: {name: mounted-secret, namespace: $app}
stringData: {config: mounted}
---
apiVersion: v1
kind: Secret
metadata: {name: envfrom-secret, namespace: $app}
stringData: {TOKEN: from-env}
---
apiVersion: v1
kind: Secret
metadata: {name: pull-secret, namespace: $app}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths": {}}'}
---
apiVersion: v1
kind: Secret
metadata: {name: tls-secret, namespace: $app}
type: kubernetes.io/tls
stringData: {tls.crt: not-a-real-certificate, tls.key: not-a-real-key}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: used-config, namespace: $app}
data: {LEVEL: info}
---
apiVersion: v1
kind: Pod
metadata: {name: consumer, namespace: $app}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  imagePullSecrets: [{name: pull-secret}]
  volumes:
    - {name: mounted, secret: {secretName: mounted-secret}}
  containers:
    - name: app
      image: $image
      imagePullPolicy: Never
      command: [sleep, "3600"]
      env:
        - name: API_KEY
          valueFrom: {secretKeyRef: {name: old-secret, key: api-key}}
        - name: ROTATED_KEY
          valueFrom: {secretKeyRef: {name: rotated-secret, key: api-key}}
        - name: LEVEL
          valueFrom: {configMapKeyRef: {name: used-config, key: LEVEL}}
      envFrom: [{secretRef: {name: envfrom-secret}}]
      volumeMounts: [{name: mounted, mountPath: /etc/mounted}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: $app}
spec:
  tls: [{hosts: [web.example.test], secretName: tls-secret}]
  defaultBackend: {service: {name: web, port: {number: 80}}}
"""


@pytest.fixture(scope="module")
def planted(k8s_cluster):
    ident = uuid.uuid4().hex[:6]
    app, open_ns = f"ar-app-{ident}", f"ar-open-{ident}"
    recent = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = Template(MANIFEST).substitute(id=ident, app=app, image=k8s_cluster.image, recent=recent)
    try:
        for namespace in (app, open_ns):
            k8s_cluster.kubectl("create", "namespace", namespace)
        k8s_cluster.kubectl("apply", "-f", "-", stdin=manifest)
        yield {"id": ident, "app": app, "open": open_ns}
    finally:
        # The cluster-wide objects outlive the namespaces: delete them by name.
        k8s_cluster.kubectl("delete", f"clusterrolebinding/ar-over-broad-{ident}", f"clusterrole/ar-everything-{ident}",
                            "--ignore-not-found", check=False)
        for namespace in (app, open_ns):
            k8s_cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def run(k8s_cluster, capsys, **args):
    with patch_module_args({"kubeconfig": k8s_cluster.kubeconfig, **args}), pytest.raises(SystemExit) as exited:
        k8s_access_review.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=bool(args.get("_ansible_check_mode"))) == [], result
    return result


def findings(result):
    return {(r["name"], r["action"], r["status"]) for r in result["records"] if r["status"] != "ok"}


READER_EXPECTED = [{"verbs": ["get", "list"], "resources": ["pods"]}, {"verbs": ["get"], "resources": ["configmaps"]}]


def test_exactly_the_planted_findings(k8s_cluster, planted, capsys):
    app, open_ns, ident = planted["app"], planted["open"], planted["id"]
    result = run(k8s_cluster, capsys, namespaces=[app, open_ns],
                 service_accounts=[{"name": f"{app}/reader", "expected": READER_EXPECTED}])
    assert not result.get("failed") and result["changed"] is False
    assert findings(result) == {
        (f"clusterrolebinding/ar-over-broad-{ident}", "binding", "breach"),
        (f"rolebinding/{app}/ghost-view", "binding", "breach"),
        (f"namespace/{open_ns}", "network_policy", "breach"),
        (f"secret {app}/unused-secret", "unused", "breach"),
        (f"secret {app}/old-secret", "secret_age", "breach"),
    }, json.dumps(result["records"], indent=1)
    records = {(r["name"], r["action"]): r for r in result["records"]}
    over_broad = records[(f"clusterrolebinding/ar-over-broad-{ident}", "binding")]
    assert over_broad["after"]["not_allowed"] == [f"ServiceAccount:{app}/over-broad"]
    assert over_broad["after"]["admin"] == "verbs *"
    assert records[(f"rolebinding/{app}/ghost-view", "binding")]["after"]["missing_service_accounts"] == [
        f"ServiceAccount:{app}/ghost"]
    assert records[(f"secret {app}/old-secret", "secret_age")]["after"]["source"] == "rotated-at"
    for record in result["records"]:
        assert record["status"] == "ok" or record["after"]["remedy"], record
    # One ok record per clean check and scope.
    assert {(f"namespace/{app}", "network_policy"), (f"namespace/{open_ns}", "unused"),
            (f"namespace/{open_ns}", "secret_age"), (f"namespace/{open_ns}", "binding"),
            (f"serviceaccount {app}/reader", "rules")} <= {k for k, r in records.items() if r["status"] == "ok"}
    # The lab cluster's own bindings are listed and give no finding; secret values never appear.
    names = {(b["kind"], b["name"]) for b in result["bindings"]}
    assert {("ClusterRoleBinding", "cluster-admin"), ("ClusterRoleBinding", f"ar-over-broad-{ident}"),
            ("RoleBinding", "ghost-view")} <= names
    text = json.dumps(result)
    for value in ("never-read-by-the-review", "old-key", "new-key", "from-env", "not-a-real-key"):
        assert value not in text


def test_check_mode_gives_the_same_records(k8s_cluster, planted, capsys):
    args = {"namespaces": [planted["app"], planted["open"]]}
    real = run(k8s_cluster, capsys, **args)
    checked = run(k8s_cluster, capsys, _ansible_check_mode=True, **args)
    assert checked["changed"] is False and real["changed"] is False
    assert [(r["name"], r["action"], r["status"]) for r in checked["records"]] == [
        (r["name"], r["action"], r["status"]) for r in real["records"]]


def test_service_account_rules_against_the_expected_set(k8s_cluster, planted, capsys):
    app, open_ns = planted["app"], planted["open"]
    result = run(k8s_cluster, capsys, namespaces=[app], checks=["service_accounts"], service_accounts=[
        {"name": f"{app}/reader", "expected": [{"verbs": ["get", "list"], "resources": ["pods"]}]},
        {"name": f"{app}/over-broad", "expected": [{"verbs": ["get"], "resources": ["configmaps"]}]},
        {"name": f"{open_ns}/nobody", "expected": []},
    ])
    records = {r["name"]: r for r in result["records"]}
    assert set(records) == {f"serviceaccount {app}/reader", f"serviceaccount {app}/over-broad",
                            f"serviceaccount {open_ns}/nobody"}
    # The group binding (system:serviceaccounts:<ns>) shows: the API server gave the impersonated account its groups.
    reader = records[f"serviceaccount {app}/reader"]
    assert (reader["status"], reader["after"]["extra_rules"]) == ("breach", ["get core/configmaps"]), reader
    over_broad = records[f"serviceaccount {app}/over-broad"]
    assert (over_broad["status"], over_broad["after"]["extra_rules"]) == ("breach", ["* core/configmaps"]), over_broad
    nobody = records[f"serviceaccount {open_ns}/nobody"]
    assert nobody["status"] == "unknown" and "does not exist" in nobody["detail"], nobody


def test_a_namespace_that_does_not_exist_fails_naming_it(k8s_cluster, planted, capsys):
    missing = f"ar-missing-{planted['id']}"
    result = run(k8s_cluster, capsys, namespaces=[planted["app"], missing])
    assert result["failed"] and result["records"] == []
    assert result["msg"] == f"namespace(s) {missing} do not exist"
