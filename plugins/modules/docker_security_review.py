#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_security_review
short_description: Security review of the containers of a compose project (or of a whole Docker engine)
version_added: 0.1.0
description:
  - Reads every container of a compose project from the Docker engine (what runs, not what a compose file says)
    and reports, per container, the checks it fails.
  - "V(root): it runs as root (C(Config.User) empty, C(0), C(root), C(0:<group>))."
  - "V(privileged): it runs privileged."
  - "V(capabilities): it has added capabilities (C(cap_add))."
  - "V(published_ports): it publishes a port on all interfaces (host address empty, C(0.0.0.0) or C(::)), read
    from its port bindings and, when it runs, from the ports it got. An empty address is the engine's default,
    all interfaces unless dockerd runs with C(--ip), which the API does not tell, so it counts as all."
  - "V(image_age): its image was built more than O(image_max_age_days) days ago."
  - One record per container; a container with a finding not on O(allowed) is a V(breach) whose C(after.remedy)
    says what to do about each finding. The module fails only on bad input or an engine it cannot read.
  - Listeners of a container on the host network are not port bindings and are not seen here.
  - Read-only; C(changed) is always V(false). Environment variables and other configuration that may hold secrets
    are never returned.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.attributes.read_only
  - streamops.maintenance.docker
options:
  project:
    description:
      - Compose project whose containers are reviewed (label C(com.docker.compose.project)).
      - Empty or unset reviews every container on the engine.
      - A named project with no container on the engine is an V(unknown) record (a typo or a project not
        deployed there), never a clean review.
    type: str
  include_stopped:
    description:
      - Review stopped and never-started containers too; a stopped privileged container is still one
        C(start) away from running.
    type: bool
    default: true
  image_max_age_days:
    description:
      - An image built more than this many days ago (its C(Created) time) is a finding. V(0) makes every image one.
      - A negative value fails the task naming it.
    type: int
    default: 90
  allowed:
    description:
      - Findings that are accepted. Each entry is a dict with C(container) (a container name or a compose
        service name), C(checks) (a list of V(root), V(privileged), V(capabilities), V(published_ports),
        V(image_age)) and C(reason) (why; required, printed in the record).
      - An allowed finding is not a breach; the record lists it under C(after.allowed) and its detail says
        it is allowed and why. A container whose findings are all allowed is V(ok).
      - An unknown key, an unknown check name or an empty reason fails the task naming the value.
    type: list
    elements: dict
    default: []
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Weekly security scan of the VitalStream compose project
  streamops.maintenance.docker_security_review:
    project: vitalstream
    image_max_age_days: 30
    allowed:
      - container: nginx
        checks: [root]
        reason: the master process binds port 443 and drops to the nginx user
  register: docker_review

- name: Every container on the engine, stopped ones included, through the play's engine
  module_defaults:
    group/streamops.maintenance.docker: "{{ docker_login }}"
  streamops.maintenance.docker_security_review:
    image_max_age_days: 90
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many containers were reviewed and which are not clean.
  returned: always
  type: str
  sample: "2 container(s) of compose project vitalstream reviewed; not clean: container vitalstream-api-1"
records:
  description:
    - One record per container, name C(container <name>), action V(container_security); see C(docs/records.md).
    - C(status) is V(breach) when a check failed that is not allowed (C(detail) lists every one), V(ok) when
      none did, V(unknown) when the image's age could not be read. A named project without containers is one
      V(unknown) record named C(project <name>).
    - C(after) has C(container), C(service), C(project), C(state), C(user), C(image), C(image_created),
      C(image_age_days), C(findings) (list of C(check), C(value)), C(allowed) (the same plus C(reason)), and for a
      V(breach) or V(unknown) C(remedy), one sentence per finding.
  returned: always
  type: list
  elements: dict
  sample:
    - name: container vitalstream-api-1
      action: container_security
      status: breach
      detail: "service api: runs as root (user (unset: root)); privileged; added capabilities NET_ADMIN"
      before: null
      after:
        container: vitalstream-api-1
        service: api
        project: vitalstream
        state: running
        user: ""
        image: "vitalstream/api:2.4.1"
        image_created: "2026-01-02T10:00:00+00:00"
        image_age_days: 12
        findings:
          - {check: root, value: "(unset: root)"}
          - {check: privileged, value: true}
          - {check: capabilities, value: [NET_ADMIN]}
        allowed: []
        remedy: "Run it as a non-root user (compose `user:` or a USER line in the image). Remove `privileged: true`
          and add only the capabilities it needs. Drop the added capabilities NET_ADMIN, or allow-list them with the
          reason they are needed."
      seconds: null
    - name: container vitalstream-web-1
      action: container_security
      status: ok
      detail: "service web: no finding (user 101, image 12 days old)"
      before: null
      after: {container: vitalstream-web-1, service: web, project: vitalstream, state: running, user: "101",
              image: "nginx:1.25", image_created: "2026-01-02T10:00:00+00:00", image_age_days: 12, findings: [],
              allowed: []}
      seconds: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.docker_conn import (
    DOCKER_IMPORT_ERROR,
    docker_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.docker_security_review import (
    run_docker_security_review,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def argument_spec() -> dict:
    return dict(
        docker_argument_spec(),
        project=dict(type="str"),
        include_stopped=dict(type="bool", default=True),
        image_max_age_days=dict(type="int", default=90),
        allowed=dict(type="list", elements="dict", default=[]),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_docker_security_review, {"docker": DOCKER_IMPORT_ERROR})


if __name__ == "__main__":
    main()
