# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""k8s_secret_rotate: a Secret's data replaced in one update from given values, then its consumers restarted.

The guide's ``kubectl delete secret`` + ``kubectl create secret`` leaves a gap with no Secret (a pod starting
then fails); here the data is compared first (equal values: nothing written, no restart), then replaced with
ONE update of the object as read (k8s_secrets.replace_secret_data), the annotation ``streamops.io/rotated-at``
set to the time of the rotation (what k8s_access_review's secret age reads), then the listed Deployments are
rollout-restarted and waited for. Values are never in a message, a record, the diff or an exception: only
key names are.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import MaintenanceError
from .k8s_access_review import ApiReader, ApiReadError
from .k8s_conn import ApiException, K8sConnectionError, api_client_from, check_request_timeout, reason_of
from .k8s_secrets import (
    ROTATED_AT_ANNOTATION,
    create_secret,
    read_secret,
    replace_secret_data,
    restart_deployments,
    utc_stamp,
)
from .records import is_changed, make_record
from .window import guard_from_params

try:
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:  # urllib3 comes with kubernetes; k8s_conn reports the missing library
    class Urllib3HTTPError(Exception):  # type: ignore[no-redef]
        pass

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
DEFAULT_RESTART_TIMEOUT = 300
MASK = "(masked)"


class RotationError(MaintenanceError):
    """Bad input to k8s_secret_rotate, or a Secret or Deployment that is not there: nothing was changed."""


@dataclass(frozen=True)
class RotationOptions:
    namespace: str
    name: str
    data: dict[str, str]
    remove_other_keys: bool = False
    create: bool = False
    restart: tuple[str, ...] = ()
    restart_timeout: int = DEFAULT_RESTART_TIMEOUT
    request_timeout: int = 30

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


# --------------------------------------------------------------------------- options (pure)


def parse_options(params: Mapping[str, Any]) -> RotationOptions:
    """The options checked before anything is read; bad input raises RotationError naming it (never a value)."""
    namespace, name = params.get("namespace"), params.get("name")
    if not isinstance(namespace, str) or not DNS_LABEL.match(namespace):
        raise RotationError(msg=f"namespace {namespace!r} is not a namespace name (DNS-1123 label: lower-case "
                                f"letters, digits and '-', starting and ending with a letter or digit, at most 63)")
    if not isinstance(name, str) or not DNS_SUBDOMAIN.match(name):
        raise RotationError(msg=f"name {name!r} is not a Secret name (DNS-1123 subdomain: lower-case letters, digits, "
                                f"'-' and '.', starting and ending with a letter or digit, at most 253)")
    data = params.get("data")
    if not isinstance(data, Mapping) or not data:
        raise RotationError(msg="data is empty: give the Secret's keys and their new values (key: value)")
    for key, value in data.items():
        if not isinstance(key, str) or not DATA_KEY.match(key) or len(key) > 253 or key in (".", ".."):
            raise RotationError(msg=f"data key {key!r} is not a Secret key (letters, digits, '-', '_' and '.', at "
                                    f"most 253, not '.' or '..')")
        if not isinstance(value, str):
            # The value itself is never named: only its key and its type.
            raise RotationError(msg=f"data[{key!r}] must be a string, got a {type(value).__name__} (quote it; "
                                    f"the value is not shown)")
    restart = params.get("restart_deployments") or []
    if isinstance(restart, str) or not isinstance(restart, (list, tuple)):
        raise RotationError(msg=f"restart_deployments must be a list of Deployment names, got {restart!r}")
    for deployment in restart:
        if not isinstance(deployment, str) or not DNS_SUBDOMAIN.match(deployment):
            raise RotationError(msg=f"restart_deployments entry {deployment!r} is not a Deployment name (DNS-1123 "
                                    f"subdomain)")
    duplicates = sorted({d for d in restart if restart.count(d) > 1})
    if duplicates:
        raise RotationError(msg=f"restart_deployments names {', '.join(duplicates)} more than once")
    timeout = params.get("restart_timeout", DEFAULT_RESTART_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise RotationError(msg=f"restart_timeout must be a whole number of seconds, at least 1, got {timeout!r}")
    try:
        request_timeout = check_request_timeout(params.get("request_timeout", 30))
    except K8sConnectionError as exc:
        raise RotationError(msg=exc.msg) from exc
    return RotationOptions(namespace=namespace, name=name, data=dict(data),
                           remove_other_keys=bool(params.get("remove_other_keys")), create=bool(params.get("create")),
                           restart=tuple(restart), restart_timeout=timeout, request_timeout=request_timeout)


def encode(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def _decoded(value: str | None) -> bytes | None:
    try:
        return base64.b64decode(value or "", validate=True)
    except (binascii.Error, ValueError):
        return None


def plan_keys(current: Mapping[str, str] | None, new: Mapping[str, str], *, remove_other_keys: bool) -> dict[str, list[str]]:
    """Key names only: ``added``, ``changed``, ``removed``, ``unchanged`` (both sides key -> base64)."""
    current = dict(current or {})
    plan: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "unchanged": []}
    for key in sorted(new):
        if key not in current:
            plan["added"].append(key)
        elif _decoded(current[key]) != _decoded(new[key]) or _decoded(new[key]) is None:
            plan["changed"].append(key)
        else:
            plan["unchanged"].append(key)
    if remove_other_keys:
        plan["removed"] = sorted(k for k in current if k not in new)
    return plan


def changes(plan: Mapping[str, list[str]]) -> bool:
    return bool(plan["added"] or plan["changed"] or plan["removed"])


def describe(plan: Mapping[str, list[str]]) -> str:
    """``changed token; added extra; removed old`` (key names only)."""
    parts = [f"{what} {', '.join(plan[what])}" for what in ("changed", "added", "removed") if plan[what]]
    return "; ".join(parts) or "no key changes"


def masked_diff(label: str, before_keys: list[str] | None, plan: Mapping[str, list[str]],
                rotated_before: str | None, rotated_after: str | None) -> dict[str, Any]:
    """The diff Ansible shows: key names and what happens to each, values masked."""
    before = {key: MASK for key in before_keys or []}
    after = {key: MASK for key in plan["unchanged"]}
    after.update({key: f"{MASK} changed" for key in plan["changed"]})
    after.update({key: f"{MASK} added" for key in plan["added"]})
    after.update({key: MASK for key in before_keys or [] if key not in plan["removed"] and key not in after})
    return {"before_header": f"secret {label}", "after_header": f"secret {label}",
            "before": {"exists": before_keys is not None, "data": before,
                       "annotations": {ROTATED_AT_ANNOTATION: rotated_before}},
            "after": {"exists": True, "data": dict(sorted(after.items())),
                      "annotations": {ROTATED_AT_ANNOTATION: rotated_after}}}


def secret_state(secret: Any) -> dict[str, Any] | None:
    """What a record says of a Secret: its key names, rotated-at and resourceVersion (never a value)."""
    if secret is None:
        return None
    meta = secret.metadata
    return {"keys": sorted((secret.data or {}).keys()),
            "rotated_at": (meta.annotations or {}).get(ROTATED_AT_ANNOTATION),
            "resource_version": meta.resource_version}


def restart_summary(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Names of the Deployments that came up, and ``name (why)`` of those that did not."""
    up = [r["name"].split("/", 1)[1] for r in records if r["status"] == "done"]
    down = [f"{r['name'].split('/', 1)[1]} ({r['detail']})" for r in records if r["status"] == "failed"]
    return up, down


# --------------------------------------------------------------------------- the run


def _absent_message(reader: ApiReader, options: RotationOptions) -> str:
    base = f"Secret {options.label} does not exist (create is false: set create: true to create it)"
    try:
        if reader.get(f"/api/v1/namespaces/{options.namespace}", what="namespace") is None:
            return f"{base}; namespace {options.namespace} does not exist either"
        names = sorted(str((item.get("metadata") or {}).get("name")) for item in reader.list(
            f"/api/v1/namespaces/{options.namespace}/secrets", what="secrets", metadata_only=True))
    except (ApiReadError, K8sConnectionError) as exc:
        return f"{base}; the Secrets of {options.namespace} cannot be listed: {exc}"
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return f"{base}; Secrets in {options.namespace}: {shown or 'none'}"


def _missing_deployments(apps_api: Any, options: RotationOptions) -> list[str]:
    missing = []
    for name in options.restart:
        try:
            apps_api.read_namespaced_deployment(name, options.namespace, _request_timeout=options.request_timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise RotationError(msg=f"cannot read Deployment {options.namespace}/{name}: {exc.status} "
                                        f"{reason_of(exc)}; nothing was changed") from None
            missing.append(name)
        except Urllib3HTTPError as exc:
            raise K8sConnectionError(msg=f"cannot reach the Kubernetes API server: {exc}") from None
    return missing


def run_k8s_secret_rotate(params: Mapping[str, Any], *, check_mode: bool = False, diff_mode: bool = False,
                          client_factory: Callable[[str | None, str | None], Any] = api_client_from,
                          now: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """Module entry: validate, read and compare, then (inside the window) one update and the restarts."""
    options = parse_options(params)
    guard = guard_from_params(params)  # every window input error surfaces before anything is read
    api_client = client_factory(params.get("kubeconfig"), params.get("context"))
    try:
        from kubernetes import client as k8s_client  # noqa: PLC0415 - k8s_conn reports the missing library

        core = k8s_client.CoreV1Api(api_client)
        apps = k8s_client.AppsV1Api(api_client)
        return _rotate(options, guard, core, apps, ApiReader(api_client, timeout=options.request_timeout),
                       check_mode=check_mode, diff_mode=diff_mode, now=now or (lambda: datetime.now(timezone.utc)))
    finally:
        api_client.close()


def _rotate(options: RotationOptions, guard: Any, core: Any, apps: Any, reader: ApiReader, *, check_mode: bool,
            diff_mode: bool, now: Callable[[], datetime]) -> dict[str, Any]:
    label = f"secret {options.label}"
    secret = read_secret(core, namespace=options.namespace, name=options.name, request_timeout=options.request_timeout)
    if secret is None and not options.create:
        raise RotationError(msg=_absent_message(reader, options))
    missing = _missing_deployments(apps, options)
    if missing:
        raise RotationError(msg=f"restart_deployments: Deployment(s) {', '.join(missing)} do not exist in namespace "
                                f"{options.namespace}; nothing was changed")
    encoded = {key: encode(value) for key, value in options.data.items()}
    before = secret_state(secret)
    plan = plan_keys(secret.data if secret is not None else None, encoded, remove_other_keys=options.remove_other_keys)
    keys_after = sorted(set(plan["added"] + plan["changed"] + plan["unchanged"])
                        | {k for k in (before or {}).get("keys", []) if k not in plan["removed"]})
    result: dict[str, Any] = {"window": None}

    def diff(rotated_after: str | None) -> None:
        if diff_mode:
            result["diff"] = masked_diff(options.label, before["keys"] if before else None, plan,
                                         (before or {}).get("rotated_at"), rotated_after)

    if not changes(plan):
        msg = f"Secret {options.label} already holds the given value(s) of {', '.join(plan['unchanged'])}"
        records = [make_record(label, "rotate", "unchanged", msg, before=before, after=before)]
        return {**result, "changed": False, "msg": msg, "records": records}

    verb = "rotate" if secret is not None else "create"
    restarts = options.restart
    status = guard.status(timedelta(seconds=options.restart_timeout) if restarts else timedelta(0))
    result["window"] = status.decision()
    planned_after = {"keys": keys_after, "rotated_at": None, "resource_version": None, **_key_lists(plan)}
    if not status.allowed:
        msg = f"Secret {options.label} not {verb}d ({describe(plan)}): {status.msg}"
        records = [make_record(label, "rotate", "skipped", msg, before=before, after=planned_after)]
        records += [make_record(f"deployment {options.namespace}/{name}", "restart", "skipped",
                                "not restarted: the Secret was not rotated (window closed)") for name in restarts]
        return {**result, "changed": False, "msg": msg, "records": records}

    if check_mode:
        stamp = utc_stamp(now())
        diff(stamp)
        msg = (f"would {verb} Secret {options.label} ({describe(plan)}; {status.msg})"
               + (f"; would restart Deployment(s) {', '.join(restarts)}" if restarts else ""))
        records = [make_record(label, "rotate", "planned", msg, before=before, after=planned_after)]
        records += [make_record(f"deployment {options.namespace}/{name}", "restart", "planned",
                                f"would rollout-restart after the Secret is {verb}d and wait up to "
                                f"{options.restart_timeout}s") for name in restarts]
        return {**result, "changed": True, "msg": msg, "records": records}

    stamp = utc_stamp(now())
    begin = time.monotonic()
    try:
        if secret is None:
            written = create_secret(core, namespace=options.namespace, name=options.name, data=encoded,
                                    annotations={ROTATED_AT_ANNOTATION: stamp}, request_timeout=options.request_timeout)
        else:
            written = replace_secret_data(core, secret, data={k: encoded[k] for k in plan["added"] + plan["changed"]},
                                          annotations={ROTATED_AT_ANNOTATION: stamp}, remove_keys=plan["removed"],
                                          request_timeout=options.request_timeout)
    except MaintenanceError as exc:
        msg = f"{exc.msg}; the Secret was not changed and no Deployment was restarted"
        record = make_record(label, "rotate", "failed", msg, before=before, seconds=time.monotonic() - begin)
        raise type(exc)(msg=msg, **{**exc.details, "records": [record], "changed": False,
                                    "window": result["window"]}) from None
    after = {**secret_state(written), **_key_lists(plan)}
    done = f"Secret {options.label} {verb}d at {stamp} ({describe(plan)}) in one update, resourceVersion " \
           f"{after['resource_version']}"
    records = [make_record(label, "rotate", "done", done, before=before, after=after,
                           seconds=time.monotonic() - begin)]
    diff(stamp)
    msg = done
    if restarts:
        restart_records = restart_deployments(apps, namespace=options.namespace, names=list(restarts),
                                              timeout=options.restart_timeout, core_api=core,
                                              request_timeout=options.request_timeout)
        records += restart_records
        up, down = restart_summary(restart_records)
        if down:
            msg = (f"Secret {options.label} WAS {verb}d at {stamp} ({describe(plan)}); the old value is not restored. "
                   f"Consumers restarted and up: {', '.join(up) or 'none'}; NOT up: {'; '.join(down)}")
            result["failed"] = True
        else:
            msg = f"{done}; Deployment(s) {', '.join(up)} restarted and up"
    return {**result, "changed": is_changed(records), "msg": msg, "records": records}


def _key_lists(plan: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {"added": list(plan["added"]), "changed": list(plan["changed"]), "removed": list(plan["removed"])}
