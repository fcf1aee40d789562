#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_rules
short_description: Deploy Prometheus rule files safely (promtool, atomic write, reload, confirm, roll back) and check rule health
version_added: 0.1.0
description:
  - "V(deploy): every file of O(rule_files) is checked with C(promtool check rules) on a temporary copy outside
    O(rules_dir) first; when one fails, nothing is written, Prometheus is not reloaded, and the task fails with
    promtool's message."
  - Files identical to what O(rules_dir) holds are V(unchanged) and do not cause a reload (unless the server has
    not loaded them, then it is reloaded to load them).
  - Changed files are written atomically (a hidden C(.tmp) file in O(rules_dir), renamed over the target, so the
    server's glob never reads a partial file), then the server is reloaded (C(POST /-/reload) or C(SIGHUP)) and the
    reload is confirmed through the API - C(reloadConfigSuccess) true with a C(lastConfigTime) after the reload, and
    C(/api/v1/rules) listing every group of every deployed file, from that file, with the file's rules.
  - When the reload fails or a group is not loaded, the old files are put back (new ones removed), the server is
    reloaded again, and the task fails saying the old rules are back.
  - The module owns only the files it is given; other files in O(rules_dir) are never touched.
  - "V(status): read-only health of the server for the daily check - C(/-/healthy), C(/-/ready), whether the last
    configuration reload succeeded, every rule group's health (a rule whose health is C(err) is a V(breach) with its
    C(lastError)), the groups of O(expected_groups) that are not loaded, and the number of firing alerts
    (information). An unreachable server fails the task with the URL and the reason."
  - V(status) right after a reload waits until the new rules have been evaluated once (up to one group interval,
    at most O(timeout)) before judging their health.
  - Reloading rules does not interrupt scraping or alerting, so no maintenance window is consulted.
requirements:
  - PyYAML (on the managed node; Ansible itself needs it)
  - promtool on the managed node for V(deploy) (Debian package C(prometheus))
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.prometheus
attributes:
  check_mode:
    support: full
    details: V(deploy) still runs promtool and reads the server; each changed file is V(planned) and the reload too.
  diff_mode:
    support: full
    details: V(deploy) returns each changed file's old and new text.
  idempotent:
    support: full
options:
  operation:
    description: V(deploy) rule files, or read the server's V(status).
    type: str
    choices: [deploy, status]
    default: deploy
  rule_files:
    description: For V(deploy), the rule files to put in O(rules_dir).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - File name in O(rules_dir); a plain name (no slashes, not hidden) ending C(.yml) or C(.yaml), which the
            server's C(rule_files) glob must match.
        type: str
        required: true
      src:
        description: Path of the rules file on the managed node. Exactly one of O(rule_files[].src) and O(rule_files[].content).
        type: path
      content:
        description: The rules file's text.
        type: str
  rules_dir:
    description:
      - For V(deploy), the directory the server's C(rule_files) glob reads (absolute). It must exist; the module does
        not create it.
    type: path
  server_rules_dir:
    description:
      - The same directory as the server sees it, when that differs (Prometheus in a container with O(rules_dir)
        mounted elsewhere). Used to match the C(file) of the groups the API lists. Default O(rules_dir).
    type: str
  promtool:
    description: Path of promtool. Default the one on E(PATH), then C(/usr/bin/promtool).
    type: path
  reload:
    description:
      - How V(deploy) makes the server load changed files. V(lifecycle) posts to C(/-/reload) (the server needs
        C(--web.enable-lifecycle)); V(sighup) sends C(SIGHUP) to the process in O(pid_file); V(none) only writes the
        files (the reload record is then V(skipped), since nothing confirms the server runs them).
    type: str
    choices: [lifecycle, sighup, none]
    default: lifecycle
  pid_file:
    description: The Prometheus server's pid file, for O(reload=sighup).
    type: path
  expected_groups:
    description: For V(status), the rule group names that must be loaded; each one missing is a V(breach).
    type: list
    elements: str
    default: []
notes:
  - O(timeout) also bounds how long V(deploy) waits for the server to confirm a reload.
  - A rule that passes promtool can still fail at evaluation time (for example a many-to-many match); V(status)
    reports it as a V(breach) with the server's error.
seealso:
  - module: streamops.maintenance.maintenance_window
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
# The monitoring role deploys the rules the collection ships (monitoring_rule_sets: [stream_systems]);
# a playbook of its own passes its files' content.
- name: Deploy the Stream Systems alert rules
  streamops.maintenance.prometheus_rules:
    operation: deploy
    rule_files:
      - name: stream_systems.rules.yml
        content: "{{ lookup('ansible.builtin.file', 'prometheus/stream_systems.rules.yml') }}"
    rules_dir: /etc/prometheus/rules
    url: http://127.0.0.1:9090
    reload: lifecycle

- name: Deploy VitalStream rules to a containerized Prometheus, reloaded with SIGHUP
  streamops.maintenance.prometheus_rules:
    rule_files:
      - name: vitalstream.rules.yml
        src: /opt/vitalstream/monitoring/vitalstream.rules.yml
    rules_dir: /opt/vitalstream/monitoring/rules
    server_rules_dir: /etc/prometheus/rules
    reload: sighup
    pid_file: /run/prometheus.pid

- name: Daily health - rules loaded and Prometheus healthy
  streamops.maintenance.prometheus_rules:
    operation: status
    url: "{{ prometheus_url }}"
    username: "{{ prometheus_user | default(omit) }}"
    password: "{{ vault_prometheus_password | default(omit) }}"
    expected_groups: [stream-systems.rules]
  register: prometheus_health
"""

RETURN = r"""
records:
  description:
    - One record per thing looked at or worked on, each with exactly C(name), C(action), C(status),
      C(detail), C(before), C(after) and C(seconds) (the collection's result shape).
    - "V(deploy): one per rule file (C(name) the file name, action C(deploy)): V(done), V(planned), V(unchanged) or
      V(failed) (promtool refused it, or rolled back); C(before) and C(after) with C(sha256), C(size) and C(groups).
      Then one C(prometheus <url>) record, action C(reload): V(done) (reloaded and confirmed), V(unchanged),
      V(planned), V(skipped) (O(reload=none)) or V(failed) (the old rules are back; the detail says whether they are
      loaded again)."
    - "V(status): C(prometheus <url>) with actions C(healthy), C(ready), C(reload_status) (V(breach) when the last reload
      failed) and C(alerts) (V(ok), the firing count as information); one per loaded group, action C(rules) (V(ok),
      V(breach) naming each rule whose health is C(err) with its C(lastError), V(unknown) when still not evaluated
      after waiting one group interval, at most O(timeout)); one per missing O(expected_groups) entry, action
      C(expected_group), V(breach)."
  returned: always
  type: list
  elements: dict
  sample:
    - name: stream_systems.rules.yml
      action: deploy
      status: done
      detail: "wrote /etc/prometheus/rules/stream_systems.rules.yml: new file"
      before: null
      after: {sha256: "9f2c...", size: 2514, groups: [stream-systems.rules]}
      seconds: null
    - name: prometheus http://127.0.0.1:9090
      action: reload
      status: done
      detail: reloaded (lifecycle); 1 group(s) of 1 file(s) loaded
      before: {reload_config_success: true, last_config_time: "2026-01-11T07:30:00Z", last_config_epoch: 1768116600.0}
      after: {reload_config_success: true, last_config_time: "2026-01-11T07:31:02Z", last_config_epoch: 1768116662.0}
      seconds: 0.41
executed:
  description: What V(deploy) ran, in order (promtool checks, the reload request or signal, a rollback's reload).
  returned: when operation is deploy
  type: list
  elements: str
  sample: ["promtool check rules stream_systems.rules.yml", "POST http://127.0.0.1:9090/-/reload"]
diff:
  description: In diff mode, per changed file C(before_header), C(after_header), C(before) and C(after) text.
  returned: when operation is deploy, in diff mode, and a file changes
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_conn import prometheus_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.prometheus_rules import (
    OPERATIONS,
    RELOADS,
    YAML_IMPORT_ERROR,
    run_prometheus_rules,
)


def argument_spec() -> dict:
    spec = prometheus_argument_spec()
    spec.update(
        operation=dict(type="str", choices=list(OPERATIONS), default="deploy"),
        rule_files=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            src=dict(type="path"),
            content=dict(type="str"),
        )),
        rules_dir=dict(type="path"),
        server_rules_dir=dict(type="str"),
        promtool=dict(type="path"),
        reload=dict(type="str", choices=list(RELOADS), default="lifecycle"),
        pid_file=dict(type="path"),
        expected_groups=dict(type="list", elements="str", default=[]),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_prometheus_rules, {"PyYAML": YAML_IMPORT_ERROR})


if __name__ == "__main__":
    main()
