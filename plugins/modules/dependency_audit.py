#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dependency_audit
short_description: Audit dependencies and images with pip-audit, npm audit, cargo audit and trivy
version_added: 0.1.0
description:
  - Runs each audit's tool with JSON output (C(pip-audit --format json), C(npm audit --json),
    C(cargo audit --json), C(trivy image --format json)) and reports its findings by severity against
    O(max_findings), with an allow list of advisories.
  - Read-only. One record per audit; a tool that is not installed, fails, cannot reach its advisory database,
    audited no package or skipped packages gives an V(unknown) record with the reason, never
    "0 vulnerabilities". C(pip-audit) without its vulnerability feed exits 0 and prints
    "No known vulnerabilities found" while it skipped every package; this module reports that as V(unknown).
  - The tools run without a shell, with O(timeout), and with an environment holding only their own configuration
    (C(PIP_*), C(npm_config_*), C(TRIVY_*), C(CARGO_HOME)), the proxy and CA settings, C(PATH), C(HOME) and the
    locale, plus O(environment). Other variables of the play (database passwords, cloud keys) do not reach them.
  - C(pip-audit) on a requirements file runs with C(--disable-pip) and C(--no-deps) (or your C(--require-hashes)), so
    it reads the pinned file as it is and installs nothing on the host; a line that is not pinned makes it fail,
    which is V(unknown).
  - What would make a tool answer without its advisory database is refused, as an argument (npm C(--offline),
    cargo C(--no-fetch), trivy C(--skip-db-update), C(--skip-update), C(--offline-scan)) and, for trivy, as the
    same setting in O(environment); the host's C(TRIVY_SKIP_DB_UPDATE), C(TRIVY_SKIP_UPDATE) and
    C(TRIVY_OFFLINE_SCAN) never reach it. npm always runs with C(--offline=false). An image whose OS trivy reports
    no result for, or whose OS is past its end of support, is V(unknown) for that OS.
  - Credentials that a tool echoes (C(//user:password@) in URLs, C(_authToken=)) are replaced by C(***) in the
    result.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.attributes.read_only
options:
  audits:
    description: The audits to run, one record each.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the audit; the record is named C(<name> (<tool>)).
        type: str
        required: true
      tool:
        description: The auditing tool.
        type: str
        required: true
        choices: [pip-audit, npm, cargo, trivy]
      path:
        description:
          - V(pip-audit) a requirements file (C(-r)) or a project directory; V(npm) the project directory with
            C(package-lock.json); V(cargo) the directory with C(Cargo.lock), or the lock file; V(trivy) the image
            reference.
          - A file or directory that does not exist fails the task naming it.
        type: str
        required: true
      args:
        description:
          - Extra arguments for the tool (for example C(--registry) for npm, C(--no-deps --disable-pip) for
            pip-audit).
          - Arguments that make a tool answer without its advisory database are refused (npm C(--offline), cargo
            C(--no-fetch), trivy C(--skip-db-update), C(--offline-scan)); npm always runs with C(--offline=false).
        type: list
        elements: str
        default: []
      executable:
        description:
          - Path of the tool. Default is C(pip-audit), C(npm), C(cargo) or C(trivy) on E(PATH).
          - For V(cargo) either C(cargo) or a C(cargo-audit) binary.
        type: path
  allowed:
    description:
      - Accepted advisories. A finding whose id or one of its aliases (CVE, GHSA, PYSEC, RUSTSEC...) is listed is
        reported as allowed and not counted against O(max_findings).
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: The advisory id.
        type: str
        required: true
      reason:
        description: Why it is accepted (kept in the playbook as the record of the decision).
        type: str
        required: true
      until:
        description:
          - Last day (C(YYYY-MM-DD)) the allowance holds; after it the finding counts again. Without it the
            allowance does not lapse.
          - A value that is not a date fails the task naming it.
        type: str
  max_findings:
    description:
      - Highest number of findings, per severity, that is still V(ok) (severities V(critical), V(high),
        V(medium), V(low), V(info), V(unrated)). Severities not named are reported but never a breach.
      - V(unrated) are findings the tool gave no severity, which is every C(pip-audit) finding and trivy's
        C(UNKNOWN). They are limited to 0 unless this option names V(unrated), so a pip-audit finding that is
        not allowed is a V(breach), since a missing rating is no evidence that the flaw is minor.
      - npm's C(moderate) counts as V(medium); cargo audit's severity comes from the advisory's CVSS v3 vector
        (V(unrated) when it has none).
    type: dict
    default: {critical: 0, high: 0}
  environment:
    description:
      - Extra environment variables for the tools (for example C(NPM_TOKEN) for a private registry named in
        C(.npmrc)). Their values are never returned.
    type: dict
    default: {}
  timeout:
    description: Seconds each tool may run before the audit is V(unknown).
    type: int
    default: 300
notes:
  - The tools are not installed by this module. C(pip-audit) is a Python package, C(npm) comes with Node.js,
    C(cargo audit) is the C(cargo-audit) crate, C(trivy) a separate binary.
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: VitalStream's weekly security scan (the guide's cargo audit, npm audit and trivy image)
  streamops.maintenance.dependency_audit:
    audits:
      - {name: api, tool: cargo, path: /srv/vitalstream/api}
      - {name: ui, tool: npm, path: /srv/vitalstream/ui}
      - {name: web image, tool: trivy, path: "registry.example.com/vitalstream/web:2.4.1"}
      - {name: tools, tool: pip-audit, path: /srv/vitalstream/tools/requirements.txt}
    allowed:
      - id: GHSA-35jh-r3h4-6jhm
        reason: lodash template() is never called with user input; upgrade planned in VS-1234
        until: "2026-03-31"
    max_findings: {critical: 0, high: 0}
  register: audit

- name: A private npm registry, its token from the vault
  streamops.maintenance.dependency_audit:
    audits:
      - {name: ui, tool: npm, path: /srv/vitalstream/ui, args: [--registry, "https://npm.internal.example.com/"]}
    environment:
      NPM_TOKEN: "{{ vault_npm_token }}"
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many audits ran and which are not clean.
  returned: always
  type: str
  sample: "2 audit(s): not clean: ui (npm)"
executed:
  description: The command line of each audit, in order, with credentials in URLs and tokens masked.
  returned: always
  type: list
  elements: str
  sample: ["npm audit --json --offline=false"]
records:
  description:
    - One record per audit, name C(<name> (<tool>)), action V(dependency_audit); see C(docs/records.md).
    - C(status) V(ok) within O(max_findings), V(breach) over them, V(unknown) when the tool is missing, failed,
      could not reach its advisory database, audited nothing or skipped packages (listed in C(after.skipped)).
    - C(after) holds C(tool), C(version), C(path), C(findings) (each with C(id), C(aliases), C(package),
      C(version), C(severity), C(fix_versions), C(allowed)), C(counts) (findings not allowed, by severity),
      C(allowed) (how many were allowed), C(lapsed_allowances), C(limits), C(skipped) and, for V(breach) and
      V(unknown), C(remedy).
  returned: always
  type: list
  elements: dict
  sample:
    - name: ui (npm)
      action: dependency_audit
      status: breach
      detail: "over the limits: critical 1 (limit 0); findings: critical 1, high 1; allowed 0"
      before: null
      after:
        tool: npm
        version: 11.19.1
        path: /srv/vitalstream/ui
        findings:
          - {id: GHSA-xvch-5gv4-984h, aliases: ["1097678"], package: minimist, version: 1.2.5, severity: critical,
             fix_versions: [1.2.8], allowed: false}
        counts: {critical: 1, high: 0, medium: 0, low: 0, info: 0, unrated: 0}
        allowed: 0
        lapsed_allowances: []
        limits: {critical: 0, high: 0, unrated: 0}
        skipped: []
        remedy: "Upgrade minimist to 1.2.8, or allow the advisory with a reason and an until date."
      seconds: 1.2
    - name: tools (pip-audit)
      action: dependency_audit
      status: unknown
      detail: "not audited: pip-audit audited no package (skipped all 2)"
      before: null
      after:
        tool: pip-audit
        version: 2.10.1
        path: /srv/vitalstream/tools/requirements.txt
        findings: []
        counts: {critical: 0, high: 0, medium: 0, low: 0, info: 0, unrated: 0}
        allowed: 0
        lapsed_allowances: []
        limits: {critical: 0, high: 0, unrated: 0}
        skipped:
          - {package: requests, version: null,
             reason: "Dependency not found on PyPI and could not be audited: requests (2.19.0)"}
        remedy: "Make pip-audit reach its advisory database and audit every package, then rerun; until then these
          dependencies are unaudited."
      seconds: 0.7
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.dependency_audit import (
    DEFAULT_MAX_FINDINGS,
    DEFAULT_TIMEOUT,
    TOOLS,
    run_dependency_audit,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def argument_spec() -> dict:
    return dict(
        audits=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            tool=dict(type="str", required=True, choices=list(TOOLS)),
            path=dict(type="str", required=True),
            args=dict(type="list", elements="str", default=[]),
            executable=dict(type="path"),
        )),
        allowed=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="str", required=True),
            reason=dict(type="str", required=True),
            until=dict(type="str"),
        )),
        max_findings=dict(type="dict", default=dict(DEFAULT_MAX_FINDINGS)),
        environment=dict(type="dict", default={}, no_log=True),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_dependency_audit, {})


if __name__ == "__main__":
    main()
