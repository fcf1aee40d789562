#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_usage
short_description: Disk use per file system and memory use of the host, against limits
version_added: 0.1.0
description:
  - Reads the use of every mounted block-device file system as C(df -P) reports it (used over used plus
    what is available to users, rounded up, so reserved blocks count as they do in the guides' C(df -h)),
    and memory use (C(MemTotal) minus C(MemAvailable) of C(/proc/meminfo)), and judges each against a limit.
  - A file system or memory over its limit is a V(breach) record; the module fails only on bad input.
  - Linux only (it reads C(/proc)).
extends_documentation_fragment:
  - streamops.maintenance.attributes
attributes:
  check_mode:
    support: full
    details:
      - Only reads; check mode reports the same figures.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Never changes anything.
options:
  disk_max_percent:
    description: Highest use, in percent, of a file system that is still V(ok).
    type: float
    default: 80
  memory_max_percent:
    description: Highest memory use, in percent, that is still V(ok).
    type: float
    default: 90
  exclude_types:
    description: File system types never reported (pseudo and image file systems).
    type: list
    elements: str
    default: [tmpfs, devtmpfs, squashfs, overlay, nsfs]
  mounts:
    description:
      - Report only these mount points. Default is every block-device file system not excluded by O(exclude_types).
      - A mount point that is not mounted fails the task naming it.
    type: list
    elements: path
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Disk over 80 % and memory over 90 % are breaches (the guides' daily check)
  streamops.maintenance.host_usage:
    disk_max_percent: 80
    memory_max_percent: 90
  register: usage

- name: Only the data volume
  streamops.maintenance.host_usage:
    mounts: [/var/lib/postgresql]
    disk_max_percent: 85
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many file systems were read and which are over their limit.
  returned: always
  type: str
  sample: "2 file system(s) and memory: all within the limits"
records:
  description:
    - One record per file system (name C(disk <mount point>), action V(disk), C(after) with C(used_percent),
      C(used_kb), C(available_kb)) and one for memory (name and action V(memory), C(after) with C(used_mb),
      C(total_mb), C(used_percent)); see C(docs/records.md).
    - C(status) is V(ok), V(breach) over the limit, or V(unknown) when a figure could not be read.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: disk /, action: disk, status: ok, detail: "41% used (limit 80%)", before: null,
       after: {used_percent: 41, used_kb: 41943040, available_kb: 60817408}, seconds: null}
    - {name: memory, action: memory, status: ok, detail: "5120/24576 MB (20.8%, limit 90%)", before: null,
       after: {used_mb: 5120, total_mb: 24576, used_percent: 20.8}, seconds: null}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.host_usage import (
    DEFAULT_EXCLUDED_TYPES,
    run_host_usage,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def argument_spec() -> dict:
    return dict(
        disk_max_percent=dict(type="float", default=80),
        memory_max_percent=dict(type="float", default=90),
        exclude_types=dict(type="list", elements="str", default=list(DEFAULT_EXCLUDED_TYPES)),
        mounts=dict(type="list", elements="path"),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_host_usage, {})


if __name__ == "__main__":
    main()
