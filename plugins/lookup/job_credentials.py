# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: job_credentials
author:
  - streamops maintainers (@streamops)
version_added: 0.1.0
short_description: The connections of the AWX/Tower credentials attached to the job
description:
  - Under AWX/Tower, the collection's credential types (C(streamops PostgreSQL), C(streamops PostgreSQL restore-test
    server), C(streamops Redis), C(streamops S3 backups); see C(docs/awx.md)) inject a connection into the job's
    environment, and secrets never go into extra vars. This lookup reads that environment on the controller and returns,
    for each credential attached to the job, the connection variable it fills (C(postgres_login),
    C(backup_verify_login), C(redis_login), C(s3_login)) with the inventory's dict overlaid key by key by the
    credential's values.
  - Only the keys the credential does not set are read from the inventory, so an inventory for AWX leaves the
    passwords out entirely.
  - A credential given an C(estate) refuses a host whose C(estate) variable differs, naming both.
  - Returns nothing when no such credential is attached (a run outside AWX), so the inventory's connections stay.
  - The cadence playbooks (C(playbooks/checklist.yml)) apply it first, with C(ansible.builtin.set_fact) and
    C(no_log). Do the same before using the roles in your own playbooks under AWX.
options: {}
notes:
  - The values come from the controller's environment, which is the execution environment under AWX; the connection
    reaches modules on remote hosts as module arguments (the secret ones marked C(no_log)). A CA certificate given in
    the credential is a file on the controller, so it serves modules that run there (C(ansible_connection=local)).
"""

EXAMPLES = r"""
- name: Take the connections from the AWX credentials attached to the job
  ansible.builtin.set_fact:
    "{{ item.variable }}": "{{ item.connection }}"
  loop: "{{ query('streamops.maintenance.job_credentials') }}"
  loop_control:
    label: "{{ item.variable }}"
  no_log: true  # the connections hold passwords
"""

RETURN = r"""
_raw:
  description: One item per attached credential.
  type: list
  elements: dict
  contains:
    variable:
      description: The connection variable the credential fills.
      type: str
      sample: postgres_login
    connection:
      description: The connection dict, the credential's values over the inventory's.
      type: dict
"""

import os
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

try:  # ansible-core >= 2.19 raises it for a value that templated to omit
    from ansible.errors import AnsibleValueOmittedError
    OMITTED: tuple[type[Exception], ...] = (AnsibleValueOmittedError,)
except ImportError:
    OMITTED = ()

from ansible_collections.streamops.maintenance.plugins.module_utils.job_credentials import (
    CredentialError,
    overlay_connections,
)


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        if terms:
            raise AnsibleLookupError(f"job_credentials takes no terms, got {terms!r}")
        known = variables or {}

        def current(variable: str, overridden: tuple[str, ...]) -> dict[str, Any]:
            raw = known.get(variable)
            if raw is None:
                return {}
            if not isinstance(raw, Mapping):  # the whole dict is one template
                raw = self._templar.template(raw)
                if not isinstance(raw, Mapping):
                    raise AnsibleLookupError(f"{variable} must be a dict, got {type(raw).__name__}")
            # Key by key, so what the credential replaces (a password the inventory leaves out) is never templated.
            found = {}
            for key, value in raw.items():
                if key in overridden:
                    continue
                try:
                    value = self._templar.template(value)
                except OMITTED:
                    continue  # `| default(omit)`: the key is not set, as in module arguments
                if value != known.get("omit"):  # ansible-core < 2.19 gives omit's placeholder string
                    found[key] = value
            return found

        estate = self._templar.template(known["estate"]) if "estate" in known else None
        try:
            return overlay_connections(os.environ, current, estate)
        except CredentialError as exc:
            raise AnsibleLookupError(exc.msg) from None
