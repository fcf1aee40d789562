"""k8s_secrets without a cluster: the rollout decision over Deployment/Pod JSON, the rotated-at stamp as the access
review reads it, and the one-PUT replace against a fake CoreV1Api (conflict, kept keys, no value in errors)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_access_review import ROTATED_AT, parse_timestamp
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_secrets import (
    ROTATED_AT_ANNOTATION,
    SecretConflictError,
    SecretError,
    new_pod_hash,
    pod_problems,
    read_secret,
    replace_secret_data,
    restart_deployments,
    rollout_state,
    selector_of,
    utc_stamp,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems


def deployment(*, replicas=2, generation=3, observed=3, updated=2, total=2, available=2, revision="4",
               conditions=None, uid="d-uid"):
    return {"metadata": {"name": "api", "uid": uid, "generation": generation,
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "api", "tier": "web"}}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available, "conditions": conditions or []}}


def pod(name, hash_, *, waiting=None, terminated=None, phase="Running"):
    state = {"waiting": {"reason": waiting, "message": "back-off 10s"}} if waiting else (
        {"terminated": terminated} if terminated else {"running": {}})
    return {"metadata": {"name": name, "labels": {"pod-template-hash": hash_}},
            "status": {"phase": phase, "containerStatuses": [{"name": "app", "state": state}]}}


NEW = [pod("api-new-1", "new"), pod("api-new-2", "new")]


@pytest.mark.parametrize("dep, pods, new_hash, complete, why", [
    (deployment(), NEW, "new", True, "2 of 2 pod(s) updated and available"),
    (deployment(observed=2), NEW, "new", False, "waiting for the controller to see generation 3 (observed 2)"),
    (deployment(updated=1, total=3), NEW, "new", False, "1 of 2 new pod(s) created"),
    (deployment(total=3), NEW, "new", False, "1 old pod(s) pending termination"),
    (deployment(available=1), NEW, "new", False, "1 of 2 new pod(s) available"),
    (deployment(), NEW + [pod("api-old-1", "old")], "new", False, "old pod(s) still present: api-old-1"),
    (deployment(), NEW, None, False, "the new ReplicaSet is not known yet"),
    (deployment(conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded",
                             "message": 'ReplicaSet "api-x" has timed out progressing.'}]), NEW, "new", False,
     'progress deadline exceeded: ReplicaSet "api-x" has timed out progressing.'),
    (deployment(replicas=0, updated=0, total=0, available=0), [], "new", True, "0 of 0 pod(s) updated and available"),
])
def test_rollout_state(dep, pods, new_hash, complete, why):
    assert rollout_state(dep, pods, new_hash) == (complete, why)


def test_new_pod_hash_is_the_replica_set_of_the_deployments_revision():
    owned = [{"kind": "Deployment", "uid": "d-uid"}]
    sets = [{"metadata": {"labels": {"pod-template-hash": "old"}, "ownerReferences": owned,
                          "annotations": {"deployment.kubernetes.io/revision": "3"}}},
            {"metadata": {"labels": {"pod-template-hash": "other"}, "ownerReferences": [{"uid": "x"}],
                          "annotations": {"deployment.kubernetes.io/revision": "4"}}},
            {"metadata": {"labels": {"pod-template-hash": "new"}, "ownerReferences": owned,
                          "annotations": {"deployment.kubernetes.io/revision": "4"}}}]
    assert new_pod_hash(deployment(), sets) == "new"
    assert new_pod_hash(deployment(revision="5"), sets) is None


@pytest.mark.parametrize("pods, expected", [
    (NEW, []),
    ([pod("a", "n", waiting="CrashLoopBackOff")], ["pod a: container app CrashLoopBackOff (back-off 10s)"]),
    ([pod("a", "n", waiting="ImagePullBackOff")], ["pod a: container app ImagePullBackOff (back-off 10s)"]),
    ([pod("a", "n", waiting="ContainerCreating")], []),
    ([pod("a", "n", terminated={"exitCode": 3, "reason": "Error"})], ["pod a: container app exited 3 (Error)"]),
    ([pod("a", "n", phase="Failed")], ["pod a: Failed (no reason)"]),
])
def test_pod_problems(pods, expected):
    assert pod_problems(pods) == expected


def test_selector_of():
    assert selector_of(deployment()) == "app=api,tier=web"


@pytest.mark.parametrize("instant, stamp", [
    (datetime(2026, 1, 31, 12, 0, 5, 123456, tzinfo=timezone.utc), "2026-01-31T12:00:05Z"),
    (datetime.fromisoformat("2026-01-31T14:00:05+02:00"), "2026-01-31T12:00:05Z"),
])
def test_rotated_at_stamp_round_trips_through_the_access_review(instant, stamp):
    assert utc_stamp(instant) == stamp
    assert parse_timestamp(stamp) == instant.replace(microsecond=0)
    assert ROTATED_AT == ROTATED_AT_ANNOTATION


# --------------------------------------------------------------------------- against a fake CoreV1Api


def secret(data=None, *, resource_version="41", immutable=None):
    return k8s_client.V1Secret(
        api_version="v1", kind="Secret", type="Opaque", immutable=immutable,
        data=data if data is not None else {"keep": "a2VlcA==", "token": "b2xk"},
        metadata=k8s_client.V1ObjectMeta(name="api-keys", namespace="prod", resource_version=resource_version,
                                         annotations={"owner": "ops"}))


class FakeCore:
    def __init__(self, *, status=None, body=""):
        self.status, self.body = status, body
        self.calls = []

    def _maybe_fail(self):
        if self.status:
            exc = ApiException(status=self.status, reason="Conflict")
            exc.body = self.body
            raise exc

    def read_namespaced_secret(self, name, namespace, **kwargs):
        self.calls.append(("read", namespace, name))
        self._maybe_fail()
        return secret()

    def replace_namespaced_secret(self, name, namespace, body, **kwargs):
        self.calls.append(("replace", namespace, name, body))
        self._maybe_fail()
        return body


def test_replace_is_one_put_of_the_read_object_keeping_other_keys():
    core = FakeCore()
    read = secret()
    new = replace_secret_data(core, read, data={"token": "bmV3"}, annotations={ROTATED_AT_ANNOTATION: "2026-01-31T12:00:00Z"})
    assert [c[0] for c in core.calls] == ["replace"]
    body = core.calls[0][3]
    assert body.metadata.resource_version == "41"
    assert body.data == {"keep": "a2VlcA==", "token": "bmV3"}
    assert body.metadata.annotations == {"owner": "ops", ROTATED_AT_ANNOTATION: "2026-01-31T12:00:00Z"}
    assert new is body
    assert read.data["token"] == "b2xk"  # the caller's object is not changed


def test_replace_can_remove_keys():
    core = FakeCore()
    replace_secret_data(core, secret(), data={"token": "bmV3"}, annotations={}, remove_keys=["keep"])
    assert core.calls[0][3].data == {"token": "bmV3"}


def test_conflict_names_the_secret_and_writes_nothing():
    core = FakeCore(status=409, body=json.dumps({"message": 'Operation cannot be fulfilled on secrets "api-keys": '
                                                            'the object has been modified'}))
    with pytest.raises(SecretConflictError) as caught:
        replace_secret_data(core, secret(), data={"token": "c2VjcmV0LXZhbHVl"}, annotations={})
    assert isinstance(caught.value, MaintenanceError)
    assert "Secret prod/api-keys changed after it was read (resourceVersion 41" in caught.value.msg
    assert "c2VjcmV0LXZhbHVl" not in caught.value.msg and "b2xk" not in caught.value.msg


@pytest.mark.parametrize("kwargs, text", [
    ({"resource_version": None}, "Secret prod/api-keys carries no resourceVersion"),
    ({"immutable": True}, "Secret prod/api-keys is immutable (immutable: true)"),
])
def test_replace_refuses_what_cannot_be_replaced(kwargs, text):
    core = FakeCore()
    with pytest.raises(SecretError, match=text.replace("(", r"\(").replace(")", r"\)")):
        replace_secret_data(core, secret(**kwargs), data={"token": "bmV3"}, annotations={})
    assert core.calls == []


def test_read_secret_absent_is_none_and_refusal_is_named():
    assert read_secret(FakeCore(status=404), namespace="prod", name="api-keys") is None
    forbidden = FakeCore(status=403, body=json.dumps({"message": 'secrets "api-keys" is forbidden'}))
    with pytest.raises(SecretError, match='cannot read Secret prod/api-keys: 403 secrets "api-keys" is forbidden'):
        read_secret(forbidden, namespace="prod", name="api-keys")


class FakeApps:
    """A Deployment that completes its rollout on the second look (or never: ``stuck``)."""

    def __init__(self, *, stuck=False, missing=()):
        self.api_client = k8s_client.ApiClient()
        self.stuck, self.missing = stuck, set(missing)
        self.patches, self.reads = [], 0

    def read_namespaced_deployment(self, name, namespace, **kwargs):
        if name in self.missing:
            raise ApiException(status=404, reason="Not Found")
        self.reads += 1
        done = bool(self.patches) and self.reads > 2 and not self.stuck
        dep = deployment(replicas=1, updated=1 if done else 0, total=1, available=1 if done else 0)
        dep["metadata"]["name"] = name
        return dep

    def patch_namespaced_deployment(self, name, namespace, body, **kwargs):
        self.patches.append((name, body))

    def list_namespaced_replica_set(self, namespace, **kwargs):
        return {"items": [{"metadata": {"labels": {"pod-template-hash": "new"}, "ownerReferences": [{"uid": "d-uid"}],
                                        "annotations": {"deployment.kubernetes.io/revision": "4"}}}]}


class FakePods:
    def __init__(self, pods):
        self.pods = pods

    def list_namespaced_pod(self, namespace, **kwargs):
        return {"items": self.pods}


def test_restart_patches_restarted_at_and_waits_for_the_rollout():
    apps = FakeApps()
    records = restart_deployments(apps, namespace="prod", names=["api"], timeout=30,
                                  core_api=FakePods([pod("api-new-1", "new")]), sleep=lambda s: None)
    name, body = apps.patches[0]
    stamp = body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert name == "api" and parse_timestamp(stamp)
    assert [r["status"] for r in records] == ["done"]
    assert records[0]["after"]["pods"] == ["api-new-1"] and not record_problems(records[0])


def test_restart_timeout_says_what_is_ready_and_why_not_and_missing_is_named():
    ticks = iter(range(0, 1000, 5))
    apps = FakeApps(stuck=True, missing={"ghost"})
    records = restart_deployments(apps, namespace="prod", names=["api", "ghost"], timeout=10,
                                  core_api=FakePods([pod("api-new-1", "new", waiting="CrashLoopBackOff")]),
                                  clock=lambda: float(next(ticks)), sleep=lambda s: None)
    api, ghost = records
    assert api["status"] == "failed"
    assert api["detail"] == ("not complete after 10s: 0 of 1 new pod(s) created; "
                             "pod api-new-1: container app CrashLoopBackOff (back-off 10s)")
    assert api["after"]["pod_problems"] == ["pod api-new-1: container app CrashLoopBackOff (back-off 10s)"]
    assert ghost == {**ghost, "name": "deployment prod/ghost", "status": "failed", "detail": "does not exist: not restarted"}
    assert [p[0] for p in apps.patches] == ["api"]
