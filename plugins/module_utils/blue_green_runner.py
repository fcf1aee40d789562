# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""blue_green_deploy from module options to result: validate, pick the platform driver, run the flow."""

from __future__ import annotations

from typing import Any

from .blue_green import (
    BlueGreen,
    DeployError,
    Options,
    check_image_repository,
    check_image_tag,
    describe_keep,
    parse_checks,
)
from .blue_green_spec import describe_spec, normalize_spec
from .errors import MaintenanceError
from .window import guard_from_params


def build_platform(params: dict[str, Any]) -> Any:
    image = params.get("image")
    if params["state"] != "status" and not image:
        raise DeployError(msg=f"state {params['state']} needs image (the repository; the version is its tag)")
    if image:
        check_image_repository(image)
    if params["platform"] == "kubernetes":
        from .platform_k8s import K8sPlatform, api_client_from  # noqa: PLC0415 - only this platform needs it

        options = params.get("kubernetes") or {}
        client = api_client_from(options.get("kubeconfig"), options.get("context"))
        return K8sPlatform(client, namespace=options.get("namespace") or "default", app=params["app"],
                           image=image or "", container=options.get("container"), service=options.get("service"),
                           preview_service=options.get("preview_service"),
                           colour_label=options.get("colour_label") or "color", port_name=options.get("port_name"))
    from .platform_compose import ComposePlatform  # noqa: PLC0415

    options = params.get("compose") or {}
    missing = [key for key in ("project_dir", "ports", "nginx_upstream_file", "nginx_conf", "front_url")
               if not options.get(key)]
    if missing:
        raise DeployError(msg=f"platform compose needs compose.{', compose.'.join(missing)}")
    return ComposePlatform(app=params["app"], project_dir=options["project_dir"],
                           compose_file=options.get("compose_file"), image=image or "",
                           ports=options["ports"], nginx_upstream_file=options["nginx_upstream_file"],
                           nginx_conf=options["nginx_conf"], nginx_binary=options.get("nginx_binary") or "nginx",
                           front_url=options["front_url"], docker_host=options.get("docker_host"),
                           state_file=options.get("state_file"), service=options.get("service"))


def validate(params: dict[str, Any]) -> Options:
    state = params["state"]
    version = params.get("version")
    if state == "deployed" and not version:
        raise DeployError(msg="state deployed needs version (the image tag to deploy)")
    if state != "deployed" and version:
        raise DeployError(msg=f"version is for state deployed; for state {state} use to_version")
    for name in ("version", "to_version"):
        if params.get(name) is not None:
            check_image_tag(params[name], name)
    if (params.get("ready_timeout") or 0) <= 0:
        raise DeployError(msg=f"ready_timeout {params.get('ready_timeout')} must be above 0 seconds")
    smoke = parse_checks(params.get("smoke_checks"), "smoke_checks")
    post = parse_checks(params.get("post_checks"), "post_checks") if params.get("post_checks") is not None else smoke
    version_check_path = params.get("version_check_path") or None
    if version_check_path is not None and not version_check_path.startswith("/"):
        raise DeployError(msg=f"version_check_path {version_check_path!r} must start with '/'")
    spec = normalize_spec(params.get("spec"), params.get("platform") or "kubernetes")
    if spec and state != "deployed":
        raise DeployError(msg=f"spec is for state deployed; state {state} restores the spec the history recorded")
    migration = params.get("migration") or {}
    if migration.get("rollback_command") and not migration.get("command"):
        raise DeployError(msg="migration.rollback_command needs migration.command")
    return Options(version=version, ready_timeout=float(params["ready_timeout"]), smoke=smoke, post=post,
                   migration=migration.get("command"), migration_rollback=migration.get("rollback_command"),
                   hook_timeout=float(migration.get("timeout") or 600),
                   keep_previous_for=describe_keep(params.get("keep_previous_for")),
                   deployed_by=params.get("deployed_by") or "", reason=params.get("reason") or "",
                   to_version=params.get("to_version"), app=params.get("app") or "",
                   version_check_path=version_check_path, spec=spec)


def run_blue_green_deploy(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False) -> dict[str, Any]:
    options = validate(params)
    guard = guard_from_params(params) if params["state"] != "status" else None
    platform = build_platform(params)
    flow = BlueGreen(platform, guard, options, check_mode=check_mode)
    if params["state"] == "status":
        return flow.status()
    details: dict[str, Any] = {}
    try:
        outcome = flow.deploy(options.version or "") if params["state"] == "deployed" else flow.rollback()
    except MaintenanceError as exc:
        # Refused (or the platform failed) before the flow could say where the traffic is: a failed
        # result with the records so far, the window decision and the error's own details.
        outcome = flow.refusal(exc)
        details = {key: value for key, value in exc.details.items() if key != "window"}
    result: dict[str, Any] = {
        **details, "changed": outcome.changed, "failed": outcome.failed, "msg": outcome.msg,
        "records": outcome.records, "active_before": outcome.active_before, "active_after": outcome.active_after,
        "version_before": outcome.version_before, "version_after": outcome.version_after,
        "spec_before": outcome.spec_before, "spec_after": outcome.spec_after, "plan": outcome.plan}
    if outcome.window is not None:
        result["window"] = outcome.window
    if diff_mode and outcome.plan:
        result["diff"] = plan_diff(outcome.plan)
    return result


def plan_diff(plan: dict[str, Any]) -> dict[str, str]:
    """The traffic move and, when a spec is in play, the idle colour's spec before and after (one line each)."""
    before = [f"traffic: {plan['from']['colour']} ({plan['from']['version']})"]
    after = [f"traffic: {plan['to']['colour']} ({plan['to']['version']})"]
    spec = plan.get("spec")
    if spec is not None:
        before += [f"{spec['colour']} {line}" for line in describe_spec(spec["before"])]
        after += [f"{spec['colour']} {line}" for line in describe_spec(spec["after"])]
    return {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"}
