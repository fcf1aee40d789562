# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""blue_green_deploy from module options to result: validate, pick the platform driver, run the flow."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .blue_green import BlueGreen, DeployError, Options, describe_keep, parse_checks
from .window import guard_from_params


def build_platform(params: dict[str, Any]) -> Any:
    image = params.get("image")
    if params["state"] != "status" and not image:
        raise DeployError(msg=f"state {params['state']} needs image (the repository; the version is its tag)")
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
                           state_file=options.get("state_file"))


def validate(params: dict[str, Any]) -> Options:
    state = params["state"]
    version = params.get("version")
    if state == "deployed" and not version:
        raise DeployError(msg="state deployed needs version (the image tag to deploy)")
    if state != "deployed" and version:
        raise DeployError(msg=f"version is for state deployed; for state {state} use to_version")
    for name in ("version", "to_version"):
        value = params.get(name)
        if value is not None and (not str(value).strip() or any(ch in str(value) for ch in " :/@\t\n")):
            raise DeployError(msg=f"{name} {value!r} is not an image tag (no spaces, ':', '/' or '@')")
    if (params.get("ready_timeout") or 0) <= 0:
        raise DeployError(msg=f"ready_timeout {params.get('ready_timeout')} must be above 0 seconds")
    smoke = parse_checks(params.get("smoke_checks"), "smoke_checks")
    post = parse_checks(params.get("post_checks"), "post_checks") if params.get("post_checks") is not None else smoke
    migration = params.get("migration") or {}
    if migration.get("rollback_command") and not migration.get("command"):
        raise DeployError(msg="migration.rollback_command needs migration.command")
    return Options(version=version, ready_timeout=float(params["ready_timeout"]), smoke=smoke, post=post,
                   migration=migration.get("command"), migration_rollback=migration.get("rollback_command"),
                   hook_timeout=float(migration.get("timeout") or 600),
                   keep_previous_for=describe_keep(params.get("keep_previous_for")),
                   deployed_by=params.get("deployed_by") or "", reason=params.get("reason") or "",
                   to_version=params.get("to_version"))


def run_blue_green_deploy(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False) -> dict[str, Any]:
    options = validate(params)
    guard = guard_from_params(params) if params["state"] != "status" else None
    platform = build_platform(params)
    flow = BlueGreen(platform, guard, options, check_mode=check_mode)
    if params["state"] == "status":
        return {"changed": False, **flow.status()}
    outcome = flow.deploy(options.version or "") if params["state"] == "deployed" else flow.rollback()
    result = asdict(outcome)
    if diff_mode and outcome.plan:
        result["diff"] = {"before": f"traffic: {outcome.plan['from']['colour']} ({outcome.plan['from']['version']})\n",
                          "after": f"traffic: {outcome.plan['to']['colour']} ({outcome.plan['to']['version']})\n"}
    return result
