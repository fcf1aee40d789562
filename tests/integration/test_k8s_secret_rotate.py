"""k8s_secret_rotate on the lab's real Kubernetes 1.20: the Secret is updated in place (a watch sees only MODIFIED),
the consumers' new pods run with the new value (their own log says so), check mode and a second run change nothing,
a closed window skips, an absent Secret is named, and a consumer that cannot start fails the task after the rotation.

Each test has its own namespace (fixture k8s_namespace). Run under the shared lock:
``flock /tmp/streamops-integration.lock scripts/run-tests.sh tests/integration/test_k8s_secret_rotate.py``.
"""
from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_access_review import parse_timestamp
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import k8s_secret_rotate
from lab.harness.base import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

OLD, NEW = "old-primary-3f9a", "new-primary-8c2d"
ROTATED_AT = "streamops.io/rotated-at"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def open_window():
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    return {"windows": [{"name": "now", "start": start, "duration": "4h"}], "timezone": "UTC"}


def closed_window():
    start = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    return {"windows": [{"name": "later", "start": start, "duration": "2h"}], "timezone": "UTC"}


def apis(k8s_cluster):
    from kubernetes import client

    return client.CoreV1Api(k8s_cluster.api_client()), client.AppsV1Api(k8s_cluster.api_client())


def make_secret(k8s_cluster, namespace, name="api-keys", **data):
    k8s_cluster.kubectl("create", "secret", "generic", name,
                        *[f"--from-literal={k}={v}" for k, v in data.items()], namespace=namespace)


def consumer(k8s_cluster, namespace, name, script):
    """A Deployment of one busybox pod with the Secret's ``primary`` as API_KEY; ``script`` runs in sh."""
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": k8s_cluster.image, "imagePullPolicy": "Never",
                                     "command": ["/bin/sh", "-c", script],
                                     "env": [{"name": "API_KEY", "valueFrom": {
                                         "secretKeyRef": {"name": "api-keys", "key": "primary"}}}]}]}}}}
    k8s_cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest), namespace=namespace)
    k8s_cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=90s", namespace=namespace, timeout=120)


PRINTS_KEY = 'echo "started with API_KEY=$API_KEY"; exec sleep 3600'
# Runs with the old key, exits with any other: a consumer that cannot take the new value.
ONLY_OLD = f'echo "started with API_KEY=$API_KEY"; [ "$API_KEY" = "{OLD}" ] && exec sleep 3600; exit 3'


def run(k8s_cluster, capsys, **args):
    with patch_module_args({"kubeconfig": k8s_cluster.kubeconfig, **args}), pytest.raises(SystemExit) as exited:
        k8s_secret_rotate.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=bool(args.get("_ansible_check_mode"))) == [], result
    # Neither the old nor the new value is anywhere in what the module returns.
    assert OLD not in out and NEW not in out
    return result


def secret_now(core, namespace, name="api-keys"):
    secret = core.read_namespaced_secret(name, namespace)
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    return data, secret.metadata.annotations or {}, secret.metadata.resource_version


def running_pods(core, namespace, app):
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is None)


def restarted_at(apps, namespace, name):
    return (apps.read_namespaced_deployment(name, namespace).spec.template.metadata.annotations or {}).get(RESTARTED_AT)


def watch_secret(k8s_cluster, namespace, resource_version, events, stop):
    """Every watch event of the Secret after ``resource_version`` until ``stop`` is set, in its own client."""
    from kubernetes import client, config, watch

    api_client = config.new_client_from_config(config_file=k8s_cluster.kubeconfig)
    try:
        core = client.CoreV1Api(api_client)
        while not stop.is_set():
            stream = watch.Watch().stream(core.list_namespaced_secret, namespace,
                                          field_selector="metadata.name=api-keys",
                                          resource_version=resource_version, timeout_seconds=2)
            for event in stream:
                resource_version = event["object"].metadata.resource_version
                events.append(event["type"])
    finally:
        api_client.close()


def test_rotation_is_one_update_and_the_consumer_runs_with_the_new_value(k8s_cluster, k8s_namespace, capsys):
    core, apps = apis(k8s_cluster)
    make_secret(k8s_cluster, k8s_namespace, primary=OLD, secondary="kept-value")
    consumer(k8s_cluster, k8s_namespace, "consumer", PRINTS_KEY)
    old_pods = running_pods(core, k8s_namespace, "consumer")
    assert core.read_namespaced_pod_log(old_pods[0], k8s_namespace).strip() == f"started with API_KEY={OLD}"
    args = dict(namespace=k8s_namespace, name="api-keys", data={"primary": NEW},
                restart_deployments=["consumer"], restart_timeout=90, **open_window())

    # Check mode: the real plan, nothing written, nothing restarted.
    version = secret_now(core, k8s_namespace)[2]
    planned = run(k8s_cluster, capsys, _ansible_check_mode=True, _ansible_diff=True, **args)
    assert planned["changed"] is True
    assert [(r["name"], r["status"]) for r in planned["records"]] == [
        (f"secret {k8s_namespace}/api-keys", "planned"), (f"deployment {k8s_namespace}/consumer", "planned")]
    assert planned["records"][0]["after"]["changed"] == ["primary"]
    assert planned["diff"]["after"]["data"] == {"primary": "(masked) changed", "secondary": "(masked)"}
    assert secret_now(core, k8s_namespace) == ({"primary": OLD, "secondary": "kept-value"}, {}, version)
    assert running_pods(core, k8s_namespace, "consumer") == old_pods
    assert restarted_at(apps, k8s_namespace, "consumer") is None

    # The rotation, with a watch on the Secret running through it.
    events: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_secret, args=(k8s_cluster, k8s_namespace, version, events, stop))
    watcher.start()
    try:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        result = run(k8s_cluster, capsys, **args)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not result.get("failed") and result["changed"] is True, result["msg"]
    assert events == ["MODIFIED"], events  # never DELETED then ADDED: the Secret never disappeared
    data, annotations, new_version = secret_now(core, k8s_namespace)
    assert data == {"primary": NEW, "secondary": "kept-value"}
    rotated = parse_timestamp(annotations[ROTATED_AT])
    assert before <= rotated <= datetime.now(timezone.utc)
    secret_record, restart_record = result["records"]
    assert secret_record["status"] == "done" and secret_record["after"]["resource_version"] == new_version
    assert secret_record["after"]["rotated_at"] == annotations[ROTATED_AT]
    assert restart_record["status"] == "done", restart_record

    # The consumer's running pods are new ones, and each started with the new value (its own log).
    new_pods = running_pods(core, k8s_namespace, "consumer")
    assert new_pods and not set(new_pods) & set(old_pods)
    assert restart_record["after"]["pods"] == new_pods
    for name in new_pods:
        assert core.read_namespaced_pod_log(name, k8s_namespace).strip() == f"started with API_KEY={NEW}"
    stamp = restarted_at(apps, k8s_namespace, "consumer")
    assert stamp and parse_timestamp(stamp)

    # A second run: unchanged, nothing written, nothing restarted.
    again = run(k8s_cluster, capsys, **args)
    assert again["changed"] is False
    assert [r["status"] for r in again["records"]] == ["unchanged"]
    assert secret_now(core, k8s_namespace)[2] == new_version
    assert running_pods(core, k8s_namespace, "consumer") == new_pods
    assert restarted_at(apps, k8s_namespace, "consumer") == stamp


def test_closed_window_skips_and_changes_nothing(k8s_cluster, k8s_namespace, capsys):
    core = apis(k8s_cluster)[0]
    make_secret(k8s_cluster, k8s_namespace, primary=OLD)
    before = secret_now(core, k8s_namespace)
    result = run(k8s_cluster, capsys, namespace=k8s_namespace, name="api-keys", data={"primary": NEW},
                 **closed_window())
    assert result["changed"] is False and not result.get("failed")
    record, = result["records"]
    assert record["status"] == "skipped"
    assert "not rotated (changed primary)" in record["detail"] and "maintenance work not allowed" in record["detail"]
    assert result["window"]["allowed"] is False and result["window"]["next_window"] == "later"
    assert secret_now(core, k8s_namespace) == before


def test_absent_secret_without_create_fails_named_and_create_creates(k8s_cluster, k8s_namespace, capsys):
    core = apis(k8s_cluster)[0]
    make_secret(k8s_cluster, k8s_namespace, name="other-keys", primary=OLD)
    failed = run(k8s_cluster, capsys, namespace=k8s_namespace, name="api-keys", data={"primary": NEW},
                 **open_window())
    assert failed["failed"] is True and failed["changed"] is False
    assert failed["msg"].startswith(f"Secret {k8s_namespace}/api-keys does not exist (create is false")
    assert "other-keys" in failed["msg"]
    created = run(k8s_cluster, capsys, namespace=k8s_namespace, name="api-keys", data={"primary": NEW},
                  create=True, **open_window())
    assert [r["status"] for r in created["records"]] == ["done"]
    data, annotations = secret_now(core, k8s_namespace)[:2]
    assert data == {"primary": NEW} and parse_timestamp(annotations[ROTATED_AT])


def test_missing_deployment_fails_before_anything_changes(k8s_cluster, k8s_namespace, capsys):
    core = apis(k8s_cluster)[0]
    make_secret(k8s_cluster, k8s_namespace, primary=OLD)
    before = secret_now(core, k8s_namespace)
    result = run(k8s_cluster, capsys, namespace=k8s_namespace, name="api-keys", data={"primary": NEW},
                 restart_deployments=["ghost"], **open_window())
    assert result["failed"] is True
    assert "Deployment(s) ghost do not exist" in result["msg"] and "nothing was changed" in result["msg"]
    assert secret_now(core, k8s_namespace) == before


def test_consumer_that_cannot_start_fails_and_says_the_secret_was_rotated(k8s_cluster, k8s_namespace, capsys):
    core = apis(k8s_cluster)[0]
    make_secret(k8s_cluster, k8s_namespace, primary=OLD)
    consumer(k8s_cluster, k8s_namespace, "good", PRINTS_KEY)
    consumer(k8s_cluster, k8s_namespace, "picky", ONLY_OLD)
    old_picky = running_pods(core, k8s_namespace, "picky")
    result = run(k8s_cluster, capsys, namespace=k8s_namespace, name="api-keys", data={"primary": NEW},
                 restart_deployments=["good", "picky"], restart_timeout=25, **open_window())
    assert result["failed"] is True and result["changed"] is True
    statuses = {r["name"]: r["status"] for r in result["records"]}
    assert statuses == {f"secret {k8s_namespace}/api-keys": "done", f"deployment {k8s_namespace}/good": "done",
                        f"deployment {k8s_namespace}/picky": "failed"}
    data, annotations = secret_now(core, k8s_namespace)[:2]
    assert data == {"primary": NEW}
    assert f"WAS rotated at {annotations[ROTATED_AT]}" in result["msg"]
    assert "restarted and up: good" in result["msg"] and "NOT up: picky (not complete after 25s" in result["msg"]
    picky = result["records"][2]
    assert any("exited 3" in p or "CrashLoopBackOff" in p for p in picky["after"]["pod_problems"]), picky
    # The old pod of the failed rollout keeps running (with the value it read at start).
    wait_for(lambda: set(old_picky) <= set(running_pods(core, k8s_namespace, "picky")), timeout=5,
             what="the old picky pod still running")
