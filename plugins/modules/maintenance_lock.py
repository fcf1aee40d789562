#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance_lock
short_description: One maintenance run per estate at a time - take, release or show the estate's run lock
version_added: 0.1.0
description:
  - A lock file per estate, C(<path>/<name>.lock), on the host the module runs on. It names the run that holds it -
    its run id and Maintenance ID, who started it (the AWX user and job under AWX, else the controller's login user),
    from which controller and C(ansible-playbook) pid, since when (UTC) and when the lock expires.
  - O(state=acquired) takes the lock, atomically - the file is written whole under a temporary name and then linked to
    the lock's name, which fails when a lock exists, so two runs never both hold it. When another run holds it, the
    task fails before any work with a message naming that run.
  - A lock of the same O(run_id) is re-entered unchanged (a later serial batch, another host of the estate).
  - Another run's lock is taken over, and the record says whose and why, when it has expired (O(ttl) after it was
    taken) or its holder is provably gone - on the same machine and pid namespace its C(ansible-playbook) pid is gone
    or is another process now (another start time), or the controller rebooted since (another boot id, same machine
    id and host name). A holder on another machine is waited out by its expiry only.
  - O(state=released) removes the lock only when it carries this O(run_id); another run's lock is left alone, with a
    V(breach) record (this run's lock was taken over after it expired, so two runs overlapped).
  - O(state=status) reports the lock and what the next run would decide, changing nothing.
  - Decisions are made under C(flock) on the lock directory, which the kernel drops when a process dies.
extends_documentation_fragment:
  - streamops.maintenance.attributes
options:
  name:
    description:
      - The estate whose lock this is; the lock file is C(<path>/<name>.lock).
      - Letters, digits, V(_), V(.) and V(-) only, not only dots, at most 200 characters; another value fails naming it.
    type: str
    required: true
  state:
    description:
      - V(acquired) takes the lock (or re-enters this run's), V(released) removes this run's lock, V(status) only
        reports.
    type: str
    choices: [acquired, released, status]
    default: acquired
  run_id:
    description:
      - The id of the run, the same for all its tasks and batches; required with O(state=acquired) and
        O(state=released). The C(streamops.maintenance.run_holder) lookup gives one per C(ansible-playbook) process.
    type: str
  holder:
    description:
      - Who holds the lock, as the C(streamops.maintenance.run_holder) lookup describes the controller. Written into
        the lock and named in a refusal; C(pid), C(pid_start), C(boot_id), C(pid_namespace) and C(machine_id) let a
        later run prove the holder gone.
    type: dict
    default: {}
    suboptions:
      maintenance_id:
        description: The run's Maintenance ID.
        type: str
        default: ""
      user:
        description: The controller's login user.
        type: str
        default: ""
      controller:
        description: The controller's host name.
        type: str
        default: ""
      pid:
        description: The pid of C(ansible-playbook).
        type: int
      pid_start:
        description: That process's start time (C(/proc/<pid>/stat), clock ticks after boot).
        type: str
        default: ""
      boot_id:
        description: The controller's boot id (C(/proc/sys/kernel/random/boot_id)).
        type: str
        default: ""
      pid_namespace:
        description: The pid namespace of C(ansible-playbook) (C(/proc/<pid>/ns/pid)).
        type: str
        default: ""
      machine_id:
        description: The controller's C(/etc/machine-id).
        type: str
        default: ""
      awx_job_id:
        description: The AWX/Tower job id, under AWX.
        type: str
        default: ""
      awx_user:
        description: The AWX/Tower user who launched the job, under AWX.
        type: str
        default: ""
  path:
    description:
      - The lock directory on the host where the module runs. Created with mode 0750 when missing; a directory that
        cannot be made or opened fails the task naming it.
    type: path
    default: /var/lib/streamops-maintenance/locks
  ttl:
    description:
      - How long a lock holds after it was taken; past it the next run takes it over. Make it longer than the longest
        run (a serial run holds each estate's lock until its last batch ends).
      - The duration format of the maintenance windows (V(6h), V(90m), V(1d), V(PT6H)); must be greater than zero.
    type: str
    default: 6h
attributes:
  check_mode:
    support: full
    details:
      - Takes no lock, creates no directory. A free, expired or stale lock is a V(planned) record; a lock another run
        holds is an V(unknown) record naming that run (a real run now would be refused), and the task does not fail.
  diff_mode:
    support: full
  idempotent:
    support: full
    details:
      - Acquiring again with the same O(run_id) re-enters the lock unchanged; releasing a lock that is gone is unchanged.
notes:
  - To see who holds a lock, read C(<path>/<name>.lock) (JSON) or run the module with O(state=status). To clear a lock
    of a run that is surely gone and cannot be proven gone (another controller), remove that file.
seealso:
  - name: Run lock
    description: The checklist's run lock (C(docs/playbooks.md), "Run lock").
    link: https://github.com/streamops/maintenance/blob/main/docs/playbooks.md
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Take the estate's lock for this run
  streamops.maintenance.maintenance_lock:
    name: "{{ estate }}"
    run_id: "{{ identity.run_id }}"
    holder: "{{ identity.holder }}"
    ttl: 6h
  vars:
    identity: "{{ query('streamops.maintenance.run_holder', maintenance_id=maintenance_id) | first }}"

- name: Who holds the lock of stream_systems?
  streamops.maintenance.maintenance_lock:
    name: stream_systems
    state: status
  register: lock_status

- name: Release it at the end (only this run's lock is removed)
  streamops.maintenance.maintenance_lock:
    name: "{{ estate }}"
    run_id: "{{ identity.run_id }}"
    state: released
"""

RETURN = r"""
changed:
  description: Whether a lock was taken, taken over or released (or, in check mode, would be).
  returned: always
  type: bool
msg:
  description: What was decided, naming the run that holds the lock when it is not this one.
  returned: always
  type: str
  sample: >-
    estate 'stream_systems' is locked, another run holds it: Maintenance ID MAINT-20261207-0200 (run
    MAINT-20261207-0200@ctl-01:48211:1234567), started by AWX user alice (job 42) from ctl-01 (ansible-playbook
    pid 48211), holding it since 2026-12-07T02:00:03Z, the lock expires 2026-12-07T08:00:03Z. This run did
    nothing and stops here. ...
records:
  description:
    - One record (see C(docs/records.md)), name C(run lock <name>), action V(acquire), V(release) or V(status).
    - V(acquire) - V(done) (taken, or taken over - the detail names whose lock and why, C(before) summarises it),
      V(unchanged) (re-entered), V(failed) (held by another run - the task fails); in check mode V(planned),
      V(unchanged), or V(unknown) for another run's lock.
    - V(release) - V(done), V(unchanged) (no lock), V(breach) (another run's lock, left alone); in check mode
      V(planned).
    - V(status) - V(ok), the detail says who holds it and what the next run would decide.
  returned: always
  type: list
  elements: dict
  sample:
    - name: run lock stream_systems
      action: acquire
      status: done
      detail: >-
        took over the lock of estate 'stream_systems' from Maintenance ID MAINT-20261207-0200 (run ..., ops from
        ctl-01 (ansible-playbook pid 48211), since 2026-12-07T02:00:03Z): its ansible-playbook (pid 48211 on ctl-01)
        is gone; held until 2026-12-07T09:10:00Z
      before: {run_id: "MAINT-20261207-0200@ctl-01:48211:1234567", maintenance_id: MAINT-20261207-0200, user: ops,
               controller: ctl-01, pid: 48211, since: "2026-12-07T02:00:03Z", expires: "2026-12-07T08:00:03Z"}
      after: {run_id: "MAINT-20261207-0310@ctl-01:50112:1299999", maintenance_id: MAINT-20261207-0310, user: ops,
              controller: ctl-01, pid: 50112, since: "2026-12-07T03:10:00Z", expires: "2026-12-07T09:10:00Z"}
      seconds: 0.004
held:
  description: Whether this run holds the lock after the task.
  returned: always
  type: bool
verdict:
  description: V(free), V(own), V(held) (by another run), V(expired) or V(stale), as found before the task acted.
  returned: always
  type: str
path:
  description: The lock file.
  returned: always
  type: str
  sample: /var/lib/streamops-maintenance/locks/stream_systems.lock
lock:
  description: The lock file's content after the task (null when there is none), or the other run's lock on a refusal.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.run_lock import (
    argument_spec,
    run_maintenance_lock,
)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_maintenance_lock, {})


if __name__ == "__main__":
    main()
