#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: blue_green_deploy
short_description: Deploy a version to the idle colour, prove it, switch traffic, and switch back
version_added: 0.1.0
author:
  - streamops maintainers (@streamops)
description:
  - One blue/green flow for Kubernetes (Deployments C(<app>-blue) and C(<app>-green) behind a Service whose
    selector picks the colour) and docker compose (projects C(<app>-blue) and C(<app>-green) on their own
    loopback ports behind nginx).
  - O(state=deployed) finds the colour with traffic, deploys O(version) to the other (idle) colour, waits until it
    is ready (the real rollout status, not a sleep), runs the migration hook and the smoke checks against the
    idle colour, switches traffic in one step, and runs the post-switch checks through the front. On any failure
    traffic ends on the previous colour, and the result says why.
  - The previous colour keeps running (for O(keep_previous_for), or until the next run), so O(state=rolled_back)
    switches back at once. O(to_version) names any version that was live before; one that is no longer running
    is deployed again through the same checks.
  - O(state=rolled_back) without O(to_version) undoes the last deploy. It switches only to a version the history
    records as having been live on the kept colour. A kept colour the history does not know (both colours
    started before this module managed them) first passes the readiness and smoke checks a deploy runs, and
    with no O(smoke_checks) the rollback refuses (nothing proves that colour good). It never switches to a kept
    colour whose version failed its checks there (a failed deploy overwrote the kept version). The same holds
    for O(to_version) naming the kept colour's version. A refused rollback moves nothing and says why and where
    the traffic is.
  - After a rollback, running it again changes nothing (it does not flip back to what it undid); name an older
    version with O(to_version).
  - After a real deploy or rollback the module reads back which colour has the traffic and which version it
    runs; the task fails when that is not the expected version, ready.
  - Deploy history (versions, colours, times, who and why) is kept on the platform itself (an annotation of the
    Service; a state file beside the compose project).
  - Traffic moves only inside a maintenance window (O(windows)) or with an emergency approval (O(emergency)).
    A security patch is a deploy of the patched image through the same gates.
  - O(spec) tunes the app container (environment, resources) through the same path; the version and the spec
    deploy together, the same version with another spec is a deploy, and a rollback restores both.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.window_guard
attributes:
  check_mode:
    support: full
    details:
      - Returns the plan (from, to, objects that would change, and whether a kept colour is checked before it
        gets traffic) and changes nothing. It validates every option and refuses what a real run would refuse.
  diff_mode:
    support: partial
    details: The traffic move, as before and after, and the idle colour's spec (env variables with their values,
      resources) before and after when a spec is deployed or recorded.
  idempotent:
    support: full
    details: Deploying the version (with the O(spec)) that already has the traffic reports C(changed=false); so does a
      rollback to the
      O(to_version) that has it, and a rollback without O(to_version) right after a rollback.
options:
  state:
    description:
      - V(deployed) makes O(version) the live version. V(rolled_back) switches back to the kept previous version
        (or O(to_version)). V(status) reports colours, versions, readiness, traffic and history.
    type: str
    required: true
    choices: [deployed, rolled_back, status]
  platform:
    description: Where the colours run.
    type: str
    required: true
    choices: [kubernetes, compose]
  app:
    description: Name of the application; the colours are C(<app>-blue) and C(<app>-green).
    type: str
    required: true
  image:
    description: Image repository; O(version) is its tag. Required unless O(state=status).
    type: str
  version:
    description:
      - Image tag to deploy, for O(state=deployed); Docker's tag grammar (letters, digits, C(_), C(.) and C(-),
        starting with a letter, digit or C(_), at most 128 characters).
    type: str
  to_version:
    description:
      - For O(state=rolled_back), the version to go back to; the kept previous one when unset. An image tag, as
        O(version).
    type: str
  spec:
    description:
      - For O(state=deployed), the tuning of the app container deployed with O(version) to the idle colour, through
        the readiness, smoke, switch and post-switch checks of a deploy. It replaces the spec of the previous deploy
        to that colour (a variable only that one set is removed). Unset or V({}), no tuning.
      - The spec is recorded on what runs (the pod template annotation C(streamops.io/spec); the container label
        C(io.streamops.blue-green.spec)) and in the history, so O(state=rolled_back) restores the previous version
        and its spec, and O(state=status) shows each colour's spec.
      - On O(platform=compose) the spec is an override file C(.streamops-blue-green-<app>-<colour>.override.yml)
        in O(compose.project_dir), given to compose after O(compose.compose_file), for the app's service
        (O(compose.service)).
    type: dict
    suboptions:
      env:
        description:
          - Environment variables of the app container, name to value (names C([A-Za-z_][A-Za-z0-9_]*); values
            strings, quote numbers). They are added to (or replace) those the Deployment or compose file sets.
          - Values are shown in the diff, the plan and the history. Secrets belong in Kubernetes Secrets or
            env files, not here.
          - On O(platform=compose), E(APP_IMAGE), E(APP_VERSION), E(APP_PORT) and E(APP_COLOUR) are the module's.
        type: dict
      resources:
        description:
          - "O(platform=kubernetes): C({requests: {cpu, memory}, limits: {cpu, memory}}), Kubernetes quantities
            (C(500m), C(0.5), C(256Mi)); they replace the container's resources."
          - "O(platform=compose): C({limits: {cpus, memory}}), mapped to the service's C(cpus) and C(mem_limit)
            (C(0.5), C(256m))."
          - An unknown key or an unparsable quantity (C(12 GB)) fails before anything changes.
        type: dict
  ready_timeout:
    description: Seconds to wait for the idle colour to be ready before giving up (traffic does not move).
    type: int
    default: 300
  smoke_checks:
    description:
      - Checks run against the idle colour before it gets traffic; for O(state=rolled_back), against a kept colour
        the history does not record as live (without them such a rollback refuses). An HTTP check has C(path), C(status)
        (default 200) and optionally C(contains) (text the body must hold). A command check has C(command), an
        argv list (no shell) that must exit 0; it gets E(BG_TARGET), E(BG_COLOUR), E(BG_VERSION) in its environment.
        Each check may set C(name), C(timeout) (seconds, default 5), C(retries) (default 3) and C(delay) (default 0.5).
    type: list
    elements: dict
    default: []
  post_checks:
    description: Checks run through the front after the switch; a failure switches traffic back. Default O(smoke_checks).
    type: list
    elements: dict
  version_check_path:
    description:
      - A path (for example V(/version)) whose body must contain the version going live; the check is added
        to the smoke and the post-switch checks, also for a rollback (with the version it goes back to).
    type: str
  migration:
    description: A hook run after the idle colour is ready and before the smoke checks.
    type: dict
    suboptions:
      command:
        description: argv of the migration (no shell).
        type: list
        elements: str
      rollback_command:
        description: argv that undoes the migration; run when anything fails after the migration ran.
        type: list
        elements: str
      timeout:
        description: Seconds each hook may take.
        type: int
        default: 600
  keep_previous_for:
    description:
      - How long the previous colour keeps running after a switch (V(2h), V(1d)); a later run stops it once that
        time has passed. Unset, it runs until the next deploy replaces it.
    type: str
  deployed_by:
    description: Who deploys, for the history; the user running the module by default.
    type: str
  reason:
    description: Why, for the history (a ticket, "security patch").
    type: str
  kubernetes:
    description: For O(platform=kubernetes).
    type: dict
    suboptions:
      kubeconfig:
        description: Path of the kubeconfig; in-cluster configuration, then C(~/.kube/config), when unset.
        type: path
      context:
        description: Context of the kubeconfig.
        type: str
      namespace:
        description: Namespace of the Deployments and Services.
        type: str
        default: default
      container:
        description: Container whose image changes; O(app) by default.
        type: str
      service:
        description: The Service whose selector picks the colour; O(app) by default.
        type: str
      preview_service:
        description: A Service that always selects the idle colour (for smoke tests from inside the cluster).
        type: str
      colour_label:
        description: Label that carries the colour on the Deployments, pods and the Service selector.
        type: str
        default: color
      port_name:
        description: Name of the container port the checks use; the first declared port by default.
        type: str
  compose:
    description: For O(platform=compose).
    type: dict
    suboptions:
      project_dir:
        description: Directory of the compose project; the state file (history) is kept beside it.
        type: path
      compose_file:
        description: Compose file, C(docker-compose.yml) in O(compose.project_dir) by default. It gets
          E(APP_IMAGE), E(APP_VERSION), E(APP_PORT) and E(APP_COLOUR) from the module.
        type: path
      ports:
        description: "Loopback port of each colour, as C({blue: 8081, green: 8082})."
        type: dict
      nginx_upstream_file:
        description:
          - The file (included by nginx) whose upstream the switch rewrites. The module owns it and writes it
            whole; keep other directives (C(keepalive)) out of it.
        type: path
      nginx_conf:
        description: nginx's main configuration, for C(nginx -t) and the reload.
        type: path
      nginx_binary:
        description: nginx executable.
        type: str
        default: nginx
      front_url:
        description: URL of the front (nginx), for the post-switch checks.
        type: str
      docker_host:
        description: Docker engine to use (for example C(unix:///run/docker.sock)); E(DOCKER_HOST) when unset.
        type: str
      state_file:
        description: Where the history is kept; C(.streamops-blue-green-<app>.json) in the project dir by default.
        type: path
      service:
        description: The app's service in the compose file, which O(spec) tunes; the file's only service by default.
        type: str
seealso:
  - module: streamops.maintenance.maintenance_window
"""

EXAMPLES = r"""
- name: Deploy stream-api 2026.11.2 on Kubernetes, in the weekly window
  streamops.maintenance.blue_green_deploy:
    state: deployed
    platform: kubernetes
    app: stream-api
    image: registry.internal/stream-api
    version: "2026.11.2"
    kubernetes:
      namespace: stream-systems
      port_name: http
    smoke_checks:
      - {path: /health, status: 200}
      - {path: /version, contains: "2026.11.2"}
    keep_previous_for: 24h
    reason: CHG-1234
    windows: "{{ maintenance_windows }}"
    window: weekly

- name: Roll back at once to what ran before (a kept colour the history does not know is checked first)
  streamops.maintenance.blue_green_deploy:
    state: rolled_back
    platform: kubernetes
    app: stream-api
    image: registry.internal/stream-api
    kubernetes: {namespace: stream-systems}
    smoke_checks:
      - {path: /health}
    version_check_path: /version
    emergency: {approved_by: oncall, reason: "errors after deploy", ticket: INC-77}
  register: rollback

- name: The live version the module read back after the rollback
  ansible.builtin.debug:
    msg: "{{ (rollback.records | selectattr('action', 'equalto', 'live') | first).detail }}"

- name: VitalStream api-gateway behind nginx
  streamops.maintenance.blue_green_deploy:
    state: deployed
    platform: compose
    app: api-gateway
    image: vitalstream/api-gateway
    version: "{{ patched_version }}"
    compose:
      project_dir: /opt/vitalstream/deploy
      ports: {blue: 8081, green: 8082}
      nginx_upstream_file: /etc/nginx/conf.d/api-gateway-upstream.inc
      nginx_conf: /etc/nginx/nginx.conf
      front_url: http://127.0.0.1:8080
    smoke_checks:
      - {path: /health}
    windows: "{{ maintenance_windows }}"

- name: Tune the JVM and the resources of stream-api through the same blue/green path
  streamops.maintenance.blue_green_deploy:
    state: deployed
    platform: kubernetes
    app: stream-api
    image: registry.internal/stream-api
    version: "2026.11.2"
    spec:
      env: {JAVA_OPTS: "-Xms512m -Xmx1g -XX:+UseG1GC"}
      resources:
        requests: {cpu: 500m, memory: 1Gi}
        limits: {cpu: "2", memory: 1536Mi}
    kubernetes: {namespace: stream-systems, port_name: http}
    smoke_checks:
      - {path: /health}
    windows: "{{ maintenance_windows }}"

- name: Where is the traffic?
  streamops.maintenance.blue_green_deploy:
    state: status
    platform: kubernetes
    app: stream-api
    kubernetes: {namespace: stream-systems}
  register: bg
"""

RETURN = r"""
records:
  description:
    - The result records (see C(docs/records.md)). For O(state=deployed) and O(state=rolled_back), first the
      change itself, name C(<app> <version>), action V(deploy) or V(rollback), status V(done), V(planned)
      (check mode), V(unchanged) or V(failed), C(before) and C(after) with C(colour) and C(version) (C(after)
      is the plan's target in check mode, where the traffic is after a failure), and C(spec) when a spec is
      deployed or the live colour has one.
    - Then one record per step, name C(<app>-<colour>), action the step (V(deployed), V(ready), V(migration),
      V(switched), V(switched back), V(migration rollback), V(retired)), status V(done), V(ok) or V(failed),
      with its C(seconds).
    - One record per smoke and post-switch check, name C(<check> <target>), action V(smoke) or V(post_check),
      status V(ok) or V(failed), the detail saying what was asked and answered.
    - After a real deploy or rollback, the live version read back from the platform, name C(<app> live version),
      action V(live), C(after) with C(colour), C(version) and C(ready); V(ok) when the colour with the traffic
      runs the expected version and is ready, else V(failed) and the task fails.
    - For O(state=status), one record per colour, name C(<app>-<colour>), action V(status), status V(ok),
      C(after) with C(exists), C(version), C(ready), C(replicas), C(keep_until), C(live) and C(spec).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: stream-api 2026.11.2, action: deploy, status: done, detail: "2026.11.2 is live on green; 2026.11.1 kept on blue",
       before: {colour: blue, version: 2026.11.1}, after: {colour: green, version: 2026.11.2}, seconds: 21.4}
    - {name: stream-api-green, action: switched, status: done, detail: "traffic moved from blue to green (2026.11.2)",
       before: null, after: null, seconds: 0.41}
    - {name: "GET /health http://10.0.0.7:8080", action: smoke, status: ok, detail: "http://10.0.0.7:8080/health: HTTP 200",
       before: null, after: null, seconds: 0.01}
    - {name: stream-api live version, action: live, status: ok,
       detail: "green has the traffic and runs 2026.11.2 (ready; expected 2026.11.2 on green)",
       before: null, after: {colour: green, version: 2026.11.2, ready: true}, seconds: 0.05}
window:
  description:
    - The window decision, the same dict every module of the collection returns when it consults a window (see
      the maintenance_window module's RV(streamops.maintenance.maintenance_window#module:window)).
    - Also in the failed result when the window refused the switch.
  returned: when a deploy or rollback consulted the window (something would move)
  type: dict
active_before:
  description: Colour that had the traffic before.
  returned: state deployed or rolled_back
  type: str
active_after:
  description: Colour that has the traffic now, read back from the platform (also after a failure).
  returned: state deployed or rolled_back
  type: str
version_before:
  description: Version that had the traffic before.
  returned: state deployed or rolled_back
  type: str
version_after:
  description: Version live now (null after a failure; see RV(active_after)).
  returned: state deployed or rolled_back
  type: str
spec_before:
  description: Spec of the colour that had the traffic before (V({}) for none).
  returned: state deployed or rolled_back
  type: dict
spec_after:
  description: Spec live now (null after a failure).
  returned: state deployed or rolled_back
  type: dict
plan:
  description:
    - From (colour, version), to (colour, version), and the changes, in order (empty when nothing would move).
    - When a spec is in play, C(from) and C(to) have C(spec) too, and C(spec) holds the idle colour's spec
      C(before) and C(after), the C(live) one, and the C(changes) from the live spec in one line.
  returned: state deployed or rolled_back
  type: dict
active:
  description: Colour with the traffic.
  returned: state status
  type: str
colours:
  description: Per colour whether it exists, its version, readiness, replicas and keep time.
  returned: state status
  type: dict
history:
  description: The deploy history recorded on the platform, oldest first.
  returned: state status
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.blue_green_runner import run_blue_green_deploy
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.window import window_guard_argument_spec


def argument_spec() -> dict:
    spec = window_guard_argument_spec()
    spec.update(
        state=dict(type="str", required=True, choices=["deployed", "rolled_back", "status"]),
        platform=dict(type="str", required=True, choices=["kubernetes", "compose"]),
        app=dict(type="str", required=True),
        image=dict(type="str"),
        version=dict(type="str"),
        to_version=dict(type="str"),
        ready_timeout=dict(type="int", default=300),
        smoke_checks=dict(type="list", elements="dict", default=[]),
        post_checks=dict(type="list", elements="dict"),
        version_check_path=dict(type="str"),
        migration=dict(type="dict", options=dict(
            command=dict(type="list", elements="str"),
            rollback_command=dict(type="list", elements="str"),
            timeout=dict(type="int", default=600),
        )),
        keep_previous_for=dict(type="str"),
        deployed_by=dict(type="str"),
        reason=dict(type="str"),
        spec=dict(type="dict", options=dict(
            env=dict(type="dict"),
            resources=dict(type="dict"),
        )),
        kubernetes=dict(type="dict", options=dict(
            kubeconfig=dict(type="path"),
            context=dict(type="str"),
            namespace=dict(type="str", default="default"),
            container=dict(type="str"),
            service=dict(type="str"),
            preview_service=dict(type="str"),
            colour_label=dict(type="str", default="color"),
            port_name=dict(type="str"),
        )),
        compose=dict(type="dict", options=dict(
            project_dir=dict(type="path"),
            compose_file=dict(type="path"),
            ports=dict(type="dict"),
            nginx_upstream_file=dict(type="path"),
            nginx_conf=dict(type="path"),
            nginx_binary=dict(type="str", default="nginx"),
            front_url=dict(type="str"),
            docker_host=dict(type="str"),
            state_file=dict(type="path"),
            service=dict(type="str"),
        )),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("platform", "kubernetes", ("kubernetes",)),
                                        ("platform", "compose", ("compose",))])
    missing: dict = {}
    if module.params["platform"] == "kubernetes":
        from ansible_collections.streamops.maintenance.plugins.module_utils.platform_k8s import (  # noqa: PLC0415
            KUBERNETES_IMPORT_ERROR,
        )
        missing["kubernetes"] = KUBERNETES_IMPORT_ERROR
    run_and_exit(module, run_blue_green_deploy, missing)


if __name__ == "__main__":
    main()
