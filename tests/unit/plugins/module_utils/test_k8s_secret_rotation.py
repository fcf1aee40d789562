"""k8s_secret_rotate without a cluster: option validation (values never named), the key plan, the masked diff and
the module's documentation against its argument spec."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from ansible_collections.streamops.maintenance.plugins.module_utils import k8s_conn, window
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_secret_rotation import (
    RotationError,
    _rotate,
    changes,
    describe,
    encode,
    masked_diff,
    parse_options,
    plan_keys,
    restart_summary,
)
from ansible_collections.streamops.maintenance.plugins.modules import k8s_secret_rotate

SECRET_VALUE = "s3cr3t-Value"
GOOD = {"namespace": "prod", "name": "api-keys", "data": {"primary": SECRET_VALUE}, "restart_deployments": [],
        "restart_timeout": 300, "request_timeout": 30}


def test_good_options():
    options = parse_options({**GOOD, "restart_deployments": ["stream-api-blue"], "create": True})
    assert (options.label, options.restart, options.create, options.remove_other_keys) == \
        ("prod/api-keys", ("stream-api-blue",), True, False)


@pytest.mark.parametrize("change, text", [
    ({"namespace": "Prod"}, "namespace 'Prod' is not a namespace name (DNS-1123 label"),
    ({"namespace": "a" * 64}, "is not a namespace name"),
    ({"name": "api_keys"}, "name 'api_keys' is not a Secret name (DNS-1123 subdomain"),
    ({"name": "-api"}, "name '-api' is not a Secret name"),
    ({"name": "a" * 254}, "is not a Secret name"),
    ({"data": {}}, "data is empty: give the Secret's keys and their new values"),
    ({"data": None}, "data is empty"),
    ({"data": {"bad key": SECRET_VALUE}}, "data key 'bad key' is not a Secret key (letters, digits, '-', '_' and '.'"),
    ({"data": {"..": SECRET_VALUE}}, "data key '..' is not a Secret key"),
    ({"data": {"k/v": SECRET_VALUE}}, "data key 'k/v' is not a Secret key"),
    ({"data": {"port": 5432}}, "data['port'] must be a string, got a int (quote it; the value is not shown)"),
    ({"data": {"flag": True}}, "data['flag'] must be a string, got a bool"),
    ({"data": {"empty": None}}, "data['empty'] must be a string, got a NoneType"),
    ({"restart_deployments": ["Stream_API"]}, "restart_deployments entry 'Stream_API' is not a Deployment name"),
    ({"restart_deployments": ["a", "b", "a"]}, "restart_deployments names a more than once"),
    ({"restart_deployments": "api"}, "restart_deployments must be a list of Deployment names, got 'api'"),
    ({"restart_timeout": 0}, "restart_timeout must be a whole number of seconds, at least 1, got 0"),
    ({"request_timeout": 0}, "request_timeout must be a whole number of seconds, at least 1, got 0"),
])
def test_bad_options_are_named(change, text):
    with pytest.raises(RotationError) as caught:
        parse_options({**GOOD, **change})
    assert text in caught.value.msg
    assert "5432" not in caught.value.msg and SECRET_VALUE not in caught.value.msg


@pytest.mark.parametrize("current, new, remove, expected", [
    ({"a": encode("x")}, {"a": "x"}, False, {"added": [], "changed": [], "removed": [], "unchanged": ["a"]}),
    ({"a": encode("x"), "b": encode("y")}, {"a": "z"}, False,
     {"added": [], "changed": ["a"], "removed": [], "unchanged": []}),
    ({"a": encode("x"), "b": encode("y")}, {"a": "x"}, True,
     {"added": [], "changed": [], "removed": ["b"], "unchanged": ["a"]}),
    (None, {"b": "1", "a": "2"}, False, {"added": ["a", "b"], "changed": [], "removed": [], "unchanged": []}),
    ({"a": "not base64!"}, {"a": "x"}, False, {"added": [], "changed": ["a"], "removed": [], "unchanged": []}),
    ({"u": encode("é")}, {"u": "é"}, False, {"added": [], "changed": [], "removed": [], "unchanged": ["u"]}),
])
def test_plan_keys(current, new, remove, expected):
    plan = plan_keys(current, {k: encode(v) for k, v in new.items()}, remove_other_keys=remove)
    assert plan == expected
    assert changes(plan) == bool(expected["added"] or expected["changed"] or expected["removed"])


def test_describe_names_keys_only():
    plan = {"added": ["c"], "changed": ["a", "b"], "removed": ["d"], "unchanged": []}
    assert describe(plan) == "changed a, b; added c; removed d"


def test_masked_diff_has_key_names_and_no_values():
    plan = {"added": ["new"], "changed": ["primary"], "removed": ["old"], "unchanged": ["keep"]}
    diff = masked_diff("prod/api-keys", ["keep", "old", "other", "primary"], plan, None, "2026-01-31T12:00:00Z")
    assert diff["before"]["data"] == {"keep": "(masked)", "old": "(masked)", "other": "(masked)", "primary": "(masked)"}
    assert diff["after"]["data"] == {"keep": "(masked)", "new": "(masked) added", "other": "(masked)",
                                     "primary": "(masked) changed"}
    assert diff["after"]["annotations"] == {"streamops.io/rotated-at": "2026-01-31T12:00:00Z"}
    assert diff["before"]["exists"] and masked_diff("x/y", None, plan, None, None)["before"]["exists"] is False


def test_restart_summary():
    records = [{"name": "deployment prod/a", "status": "done", "detail": "ok"},
               {"name": "deployment prod/b", "status": "failed", "detail": "not complete after 5s"}]
    assert restart_summary(records) == (["a"], ["b (not complete after 5s)"])


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "required": bool(o.get("required")), "elements": o.get("elements")}
            for name, o in options.items()}


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(k8s_secret_rotate.DOCUMENTATION)["options"]
    shared = set(k8s_conn.kubernetes_argument_spec()) | set(window.window_guard_argument_spec())
    own = {k: v for k, v in k8s_secret_rotate.argument_spec().items() if k not in shared}
    assert _shape(documented) == _shape(own)
    assert k8s_secret_rotate.argument_spec()["data"]["no_log"] is True


# --------------------------------------------------------------------------- the run over a fake API


class FakeCore:
    """Holds one Secret; replace bumps its resourceVersion (a PUT with a stale one is a 409)."""

    def __init__(self, data=None):
        self.secret = None if data is None else k8s_client.V1Secret(
            data={k: encode(v) for k, v in data.items()},
            metadata=k8s_client.V1ObjectMeta(name="api-keys", namespace="prod", resource_version="7", annotations={}))
        self.writes = []

    def read_namespaced_secret(self, name, namespace, **kwargs):
        if self.secret is None:
            raise ApiException(status=404, reason="Not Found")
        return self.secret

    def replace_namespaced_secret(self, name, namespace, body, **kwargs):
        self.writes.append(("replace", body))
        body.metadata.resource_version = str(int(body.metadata.resource_version) + 1)
        self.secret = body
        return body


class NoApps:
    def read_namespaced_deployment(self, name, namespace, **kwargs):
        raise AssertionError("no deployment is read without restart_deployments")


NOW = "2026-03-01T12:00:00Z"
INSIDE = {"windows": [{"name": "now", "start": "2026-03-01T11:00", "duration": "2h"}], "timezone": "UTC", "now": NOW}
OUTSIDE = {"windows": [{"name": "later", "start": "2026-03-02T11:00", "duration": "2h"}], "timezone": "UTC", "now": NOW}


def rotate(core, when, *, check_mode=False, diff_mode=False):
    params = {**GOOD, **when}
    return _rotate(parse_options(params), window.guard_from_params(params), core, NoApps(), reader=None,
                   check_mode=check_mode, diff_mode=diff_mode,
                   now=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize("check_mode, status, writes", [(True, "planned", 0), (False, "done", 1)])
def test_rotation_inside_the_window(check_mode, status, writes):
    core = FakeCore({"primary": "old-value", "other": "x"})
    result = rotate(core, INSIDE, check_mode=check_mode, diff_mode=True)
    record, = result["records"]
    assert (record["status"], len(core.writes), result["changed"]) == (status, writes, True)
    assert record["after"]["changed"] == ["primary"] and result["window"]["allowed"] is True
    assert result["diff"]["after"]["data"] == {"other": "(masked)", "primary": "(masked) changed"}
    assert "old-value" not in repr(result) and SECRET_VALUE not in repr(result)
    if not check_mode:
        body = core.writes[0][1]
        assert body.metadata.annotations == {"streamops.io/rotated-at": NOW}
        assert record["after"] == {"keys": ["other", "primary"], "rotated_at": NOW, "resource_version": "8",
                                   "added": [], "changed": ["primary"], "removed": []}
        again = rotate(core, INSIDE)
        assert [r["status"] for r in again["records"]] == ["unchanged"] and again["changed"] is False
        assert len(core.writes) == 1


def test_rotation_outside_the_window_is_skipped():
    core = FakeCore({"primary": "old-value"})
    result = rotate(core, OUTSIDE)
    record, = result["records"]
    assert record["status"] == "skipped" and result["changed"] is False and core.writes == []
    assert record["detail"].startswith("Secret prod/api-keys not rotated (changed primary): maintenance work not allowed")


def test_equal_values_are_unchanged_even_outside_the_window():
    core = FakeCore({"primary": SECRET_VALUE})
    result = rotate(core, OUTSIDE)
    assert [r["status"] for r in result["records"]] == ["unchanged"] and result["window"] is None
