#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: endpoint_check
short_description: Check that services accept connections and HTTP endpoints answer as expected
version_added: 0.1.0
description:
  - Connects to each TCP endpoint, and sends a GET to each HTTP endpoint, from the target host, and
    judges the answer; every endpoint is one record with what was seen and how long it took.
  - An endpoint that does not answer, or answers otherwise than expected, is a V(breach) record; the
    module itself fails only on bad input, so a play can collect every breach before it fails.
  - HTTP endpoints are asked directly, never through a proxy named in the environment.
extends_documentation_fragment:
  - streamops.maintenance.attributes
attributes:
  check_mode:
    support: full
    details:
      - Only reads; check mode asks the same questions.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Never changes anything.
options:
  tcp:
    description:
      - TCP endpoints, each a dict with C(name), C(host) and C(port) (1-65535).
      - V(ok) when a connection is accepted within O(timeout).
    type: list
    elements: dict
    default: []
  http:
    description:
      - HTTP(S) endpoints, each a dict with C(name) and C(url), and optionally C(status) (the expected status,
        default V(200)), C(contains) (text the body must contain), C(count) (V(true) when the body is a number
        to record, such as the count of active alarms) and C(max) (with C(count), the highest number that is
        still V(ok)).
    type: list
    elements: dict
    default: []
  timeout:
    description: Seconds to wait for each connection and answer.
    type: float
    default: 5
  validate_certs:
    description: Verify the TLS certificate of C(https) endpoints.
    type: bool
    default: true
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: The estate's services answer, and the active alarms are counted
  streamops.maintenance.endpoint_check:
    tcp:
      - {name: postgresql, host: postgres-service, port: 5432}
      - {name: redis, host: redis-service, port: 6379}
    http:
      - name: active alarms API
        url: http://localhost:8081/api/alarms/active/count
        count: true
        max: 50
    timeout: 5
  register: endpoints

- name: Fail when any endpoint breached
  ansible.builtin.fail:
    msg: "{{ endpoints | streamops.maintenance.problems_text('endpoint(s) not as expected') }}"
  when: endpoints | streamops.maintenance.problems | length > 0
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many endpoints were checked and which were not as expected.
  returned: always
  type: str
  sample: "3 endpoint(s) checked, all answer"
records:
  description:
    - One record per endpoint (see C(docs/records.md)), TCP endpoints first; action V(tcp) or V(http).
    - C(status) is V(ok) or V(breach); C(detail) says what answered (the status and the start of the body) or what did not.
    - C(after) holds C(connect_seconds) (TCP), or C(http_status), C(request_seconds) and, with C(count), C(count).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: postgresql, action: tcp, status: ok, detail: "postgres-service:5432 answers",
       before: null, after: {connect_seconds: 0.0012}, seconds: 0.001}
    - {name: active alarms API, action: http, status: ok, detail: "HTTP 200: 3",
       before: null, after: {http_status: 200, request_seconds: 0.004, count: 3}, seconds: 0.004}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.endpoints import run_endpoint_check
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def argument_spec() -> dict:
    return dict(
        tcp=dict(type="list", elements="dict", default=[]),
        http=dict(type="list", elements="dict", default=[]),
        timeout=dict(type="float", default=5),
        validate_certs=dict(type="bool", default=True),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_endpoint_check, {})


if __name__ == "__main__":
    main()
