# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: run_holder
author:
  - streamops maintainers (@streamops)
version_added: 0.1.0
short_description: Who this run is, for the estate's run lock
description:
  - Describes the running C(ansible-playbook) on the controller, for M(streamops.maintenance.maintenance_lock) -
    the controller's host name, the pid of the C(ansible-playbook) process (not of the worker that runs the
    lookup) and that process's start time, the controller's boot id, machine id and pid namespace, the login user,
    and under AWX/Tower the job id and the user who launched it (C(awx_job_id)/C(tower_job_id),
    C(awx_user_name)/C(tower_user_name)).
  - Returns one dict with C(run_id) and C(holder). The run id is the same for every task and every serial batch of
    one C(ansible-playbook) process, and differs between two processes, even two started in the same second.
  - The start time and boot id let a later run prove that this one is gone (same machine, the pid gone or reused,
    or the machine rebooted); they are read from C(/proc) and are empty where there is none.
options:
  maintenance_id:
    description: The run's Maintenance ID, part of the run id and named in a refusal.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Identify this run for the lock
  ansible.builtin.set_fact:
    maintenance_lock_identity: "{{ query('streamops.maintenance.run_holder', maintenance_id=maintenance_id) | first }}"
"""

RETURN = r"""
_raw:
  description: One item.
  type: list
  elements: dict
  contains:
    run_id:
      description: C(<maintenance_id>@<controller>:<pid>:<start time>).
      type: str
      sample: MAINT-20261207-0210@ctl-01:48211:1234567
    holder:
      description: The holder identity the module's O(streamops.maintenance.maintenance_lock#module:holder) option takes.
      type: dict
"""

import getpass
import multiprocessing
import os
import socket
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.streamops.maintenance.plugins.module_utils.run_lock import (
    pid_namespace,
    process_start,
    this_machine,
)


def playbook_pid() -> int:
    """ansible-playbook's pid: tasks run in workers it forks, and a worker's pid dies with its task."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getpid()


def login_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a container's arbitrary uid)
        return f"uid {os.getuid()}"


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        if terms:
            raise AnsibleLookupError(f"run_holder takes no terms, got {terms!r}")
        self.set_options(var_options=variables, direct=kwargs)
        known = variables or {}
        maintenance_id = str(self.get_option("maintenance_id") or "")
        pid = playbook_pid()
        machine = this_machine()
        start = process_start(pid)

        def extra_var(*names: str) -> str:
            for name in names:
                value = known.get(name)
                if value not in (None, ""):
                    return str(self._templar.template(value))
            return ""

        holder = {
            "maintenance_id": maintenance_id,
            "user": login_user(),
            "controller": socket.gethostname(),
            "pid": pid,
            "pid_start": start,
            "boot_id": machine.boot_id,
            "pid_namespace": pid_namespace(pid) or machine.pid_namespace,
            "machine_id": machine.machine_id,
            "awx_job_id": extra_var("awx_job_id", "tower_job_id"),
            "awx_user": extra_var("awx_user_name", "tower_user_name"),
        }
        run_id = f"{maintenance_id}@{holder['controller']}:{pid}:{start or '?'}"
        return [{"run_id": run_id, "holder": holder}]
