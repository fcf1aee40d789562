#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_secret_rotate
short_description: Rotate a Kubernetes Secret's values in one update and rollout-restart its consumers
version_added: 0.1.0
description:
  - "Replaces the data of a Secret with the values given, in ONE update (PUT) of the object as read, carrying its
    C(resourceVersion): the Secret never disappears (the guide's C(kubectl delete secret) then C(kubectl create
    secret) leaves a moment with no Secret, when a starting pod fails), and a change someone else made in between
    fails the task (HTTP 409) instead of being overwritten."
  - "Compares first: when every given value equals what the Secret holds (and O(remove_other_keys) removes nothing),
    nothing is written, the annotation is left alone and no Deployment restarts (V(unchanged))."
  - "Sets the annotation C(streamops.io/rotated-at) to the time of the rotation (UTC, C(2026-01-31T12:00:00Z)):
    the secret age of M(streamops.maintenance.k8s_access_review) reads it."
  - "Then rollout-restarts the Deployments of O(restart_deployments) (the annotation
    C(kubectl.kubernetes.io/restartedAt), as C(kubectl rollout restart) does) and waits until each rollout is
    complete: new pods available, no old pod left. Only when the data changed."
  - "Rotation changes what running consumers use: it runs only inside a maintenance window or with an emergency
    approval (the window options). Outside, the result is a V(skipped) record saying why, and nothing is changed.
    A Secret that already holds the values is V(unchanged) whatever the window."
  - "Values never appear in the result, the records, the message, the diff or an error: only key names do.
    O(data) is C(no_log)."
  - "A restart that fails after the rotation fails the task with a V(failed) record per Deployment that did not
    come up (what is ready, CrashLoopBackOff, ImagePullBackOff, ...); the message says the Secret WAS rotated and
    when. The old value is not put back: it is what is being retired (possibly leaked), the consumers that did come
    up already use the new one, and the old pods of a failed rollout keep running with what they read at start."
requirements:
  - kubernetes (the Python client, on the host that runs the module)
  - python-dateutil (only for rrule O(windows))
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.kubernetes
  - streamops.maintenance.window_guard
attributes:
  check_mode:
    support: full
    details: Reads and compares; returns V(planned) records with the keys that would change and the Deployments
      that would restart (or V(skipped) outside the window, V(unchanged) when nothing differs).
  diff_mode:
    support: full
    details: Key names with V(added), V(changed) or removed, and the rotated-at annotation; values masked.
  idempotent:
    support: full
    details: A second run with the same values is V(unchanged), writes nothing and restarts nothing.
options:
  namespace:
    description: Namespace of the Secret and of the Deployments to restart.
    type: str
    required: true
  name:
    description: Name of the Secret (a DNS-1123 subdomain).
    type: str
    required: true
  data:
    description:
      - The keys to set and their new values, as plain strings (the module base64-encodes them). Use vault variables.
      - Keys are letters, digits, C(-), C(_) and C(.). A value that is not a string fails naming its key (never the
        value); quote numbers.
      - Keys of the Secret not listed here are kept, unless O(remove_other_keys).
    type: dict
    required: true
  remove_other_keys:
    description: Remove the Secret's keys that O(data) does not list (in the same single update).
    type: bool
    default: false
  create:
    description:
      - Create the Secret (type C(Opaque)) when it does not exist. When V(false), an absent Secret fails the task
        naming it and the Secrets the namespace does hold.
    type: bool
    default: false
  restart_deployments:
    description:
      - Deployments (same namespace) that read the Secret, rollout-restarted after the update and waited for.
        Only when the data changed. A Deployment that does not exist fails the task before anything is changed.
    type: list
    elements: str
    default: []
  restart_timeout:
    description:
      - Seconds to wait, for all restarts together, until each rollout is complete. With restarts, the window must
        have this much time left.
    type: int
    default: 300
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Rotate the Stream Systems API keys inside the weekly window, then restart their consumers
  streamops.maintenance.k8s_secret_rotate:
    namespace: production
    name: api-keys
    data:
      primary: "{{ vault_stream_api_primary_key }}"
      secondary: "{{ vault_stream_api_secondary_key }}"
    restart_deployments: [stream-api-blue, stream-api-green]
    restart_timeout: 300
    windows: "{{ maintenance_windows }}"
    window: weekly
  register: rotation

- name: Emergency rotation of a leaked key (outside any window), dropping a key no longer used
  streamops.maintenance.k8s_secret_rotate:
    kubeconfig: /etc/streamops/stream-systems.kubeconfig
    namespace: production
    name: api-keys
    data:
      primary: "{{ vault_stream_api_primary_key }}"
    remove_other_keys: true
    restart_deployments: [stream-api-blue]
    emergency:
      approved_by: on-call lead
      reason: key leaked in a support ticket
      ticket: INC-4711
"""

RETURN = r"""
changed:
  description: Whether the Secret was written (or would be, in check mode).
  returned: always
  type: bool
  sample: true
msg:
  description: What was done, with key names (never values); after a failed restart, that the Secret WAS rotated
    and when, and which Deployments did and did not come up.
  returned: always
  type: str
  sample: "Secret production/api-keys rotated at 2026-01-31T02:10:00Z (changed primary) in one update, resourceVersion
    48213; Deployment(s) stream-api-blue restarted and up"
records:
  description:
    - "See C(docs/records.md). First the Secret, C(secret <namespace>/<name>), action V(rotate): V(done),
      V(unchanged), V(planned) (check mode), V(skipped) (window closed) or V(failed). C(before) and C(after) hold
      C(keys), C(rotated_at) and C(resource_version); C(after) also C(added), C(changed), C(removed) (key names)."
    - "Then one per Deployment, C(deployment <namespace>/<name>), action V(restart): V(done) (C(after.pods),
      the new pods), V(failed) (C(after.pod_problems)), V(planned) or V(skipped)."
  returned: always
  type: list
  elements: dict
  sample:
    - {name: secret production/api-keys, action: rotate, status: done,
       detail: "Secret production/api-keys rotated at 2026-01-31T02:10:00Z (changed primary) in one update,
         resourceVersion 48213",
       before: {keys: [primary, secondary], rotated_at: "2025-11-02T02:05:00Z", resource_version: "40117"},
       after: {keys: [primary, secondary], rotated_at: "2026-01-31T02:10:00Z", resource_version: "48213",
               added: [], changed: [primary], removed: []},
       seconds: 0.031}
    - {name: deployment production/stream-api-blue, action: restart, status: done,
       detail: "rollout restart complete: 1 of 1 pod(s) updated and available",
       before: {restarted_at: null, generation: 4},
       after: {restarted_at: "2026-01-31T02:10:00Z", generation: 5, replicas: 1, ready: 1,
               pods: [stream-api-blue-6d9f7c9b8-x2lqp]},
       seconds: 7.412}
window:
  description:
    - The maintenance-window decision (the same dict as M(streamops.maintenance.maintenance_window) returns).
      V(null) when nothing was to change (the window is not consulted).
  returned: always
  type: dict
diff:
  description: In diff mode, key names before and after (C(added), C(changed), removed), values masked, and the
    rotated-at annotation.
  returned: when diff mode is on and the Secret changes (or would)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_conn import (
    KUBERNETES_IMPORT_ERROR,
    kubernetes_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.k8s_secret_rotation import (
    DEFAULT_RESTART_TIMEOUT,
    run_k8s_secret_rotate,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.window import window_guard_argument_spec


def argument_spec() -> dict:
    spec = kubernetes_argument_spec()
    spec.update(window_guard_argument_spec())
    spec.update(
        namespace=dict(type="str", required=True),
        name=dict(type="str", required=True),
        data=dict(type="dict", required=True, no_log=True),
        remove_other_keys=dict(type="bool", default=False, no_log=False),
        create=dict(type="bool", default=False),
        restart_deployments=dict(type="list", elements="str", default=[]),
        restart_timeout=dict(type="int", default=DEFAULT_RESTART_TIMEOUT),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_k8s_secret_rotate, {"kubernetes": KUBERNETES_IMPORT_ERROR})


if __name__ == "__main__":
    main()
