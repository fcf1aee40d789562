#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: log_cleanup
short_description: Remove old log files under named roots only, after judging every root
version_added: 0.1.0
description:
  - Removes the regular files whose names match the patterns and that were last modified more than
    C(age_days) days ago, under each root of O(roots) (and below it with C(recurse)).
  - Every root is judged before anything is deleted anywhere. A root is refused, and nothing at all is
    deleted, when it is not an absolute path, is V(/) or a top-level directory, lies in a system tree
    (C(/bin), C(/boot), C(/dev), C(/etc), C(/lib*), C(/proc), C(/run), C(/sbin), C(/snap), C(/sys), C(/usr)),
    is one of the shared directories themselves (C(/var/log), C(/var/lib), C(/var/backups), C(/var/cache),
    C(/var/mail), C(/var/opt), C(/var/spool), C(/var/tmp), C(/var/www)), lies in a O(protected_roots)
    directory or, with C(recurse), holds one; the same checks apply to what the root resolves to, so a
    symlink pointing at V(/) is refused like V(/). Patterns match file names only (a pattern with C(/) is
    refused), C(age_days) is at least 1.
  - Only regular files are removed (never a directory, never a symbolic link), and no symbolic link is
    followed into another tree. The walk opens each directory relative to its parent without following
    links and removes each file relative to the directory it was found in, so a directory swapped for a
    symlink while the cleanup runs is not followed. Hidden files and directories are left alone, and so
    are other file systems mounted below a root (as C(find -xdev)).
extends_documentation_fragment:
  - streamops.maintenance.attributes
attributes:
  check_mode:
    support: full
    details:
      - Lists, per root, how many files and bytes would go; removes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Once the old files are gone, a second run finds nothing to remove.
options:
  roots:
    description:
      - The directories to clean, each a dict with C(root) (absolute path), C(age_days) (whole days, at least 1),
        and optionally C(patterns) (file name patterns; default O(default_patterns)) and C(recurse) (default V(false)).
    type: list
    elements: dict
    required: true
  default_patterns:
    description: File name patterns of a root that names none.
    type: list
    elements: str
    default: ["*.log", "*.log.[0-9]*", "*.gz"]
  protected_roots:
    description:
      - Directories nothing may be removed from (the backup root, for example), as absolute paths.
    type: list
    elements: path
    default: []
  missing_ok:
    description: A root that does not exist is skipped (V(unchanged)) instead of refused.
    type: bool
    default: false
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: The guide's find /var/log/vitalstream -name "*.log" -mtime +30 -delete, refusing anything unsafe
  streamops.maintenance.log_cleanup:
    roots:
      - root: /var/log/vitalstream
        patterns: ["*.log"]
        age_days: 30
        recurse: true
    protected_roots: [/backups/vitalstream]

- name: What would go (check mode lists files and bytes per root)
  streamops.maintenance.log_cleanup:
    roots: [{root: /srv/app/logs, age_days: 14}]
  check_mode: true
"""

RETURN = r"""
changed:
  description: Whether files were (or in check mode would be) removed.
  returned: always
  type: bool
  sample: true
msg:
  description: How many files were removed under how many roots, and what failed.
  returned: always
  type: str
  sample: removed 12 old log file(s) under 1 of 1 root(s)
records:
  description:
    - One record per root (see C(docs/records.md)), action V(cleanup), with C(before) and C(after) holding
      C(old_files) and C(old_bytes).
    - C(status) is V(done) (files removed), V(planned) (check mode), V(unchanged) (nothing old enough, or a missing
      root with O(missing_ok)) or V(failed) (the root was refused, or a file could not be removed or read; the task fails).
  returned: always
  type: list
  elements: dict
  sample:
    - name: /var/log/vitalstream
      action: cleanup
      status: done
      detail: "removed 12 file(s), 3.1 MB freed: *.log older than 30 days (recursive)"
      before: {old_files: 12, old_bytes: 3250585}
      after: {old_files: 0, old_bytes: 0}
      seconds: 0.004
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.log_cleanup import DEFAULT_PATTERNS, run_log_cleanup
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def argument_spec() -> dict:
    return dict(
        roots=dict(type="list", elements="dict", required=True),
        default_patterns=dict(type="list", elements="str", default=list(DEFAULT_PATTERNS)),
        protected_roots=dict(type="list", elements="path", default=[]),
        missing_ok=dict(type="bool", default=False),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_log_cleanup, {})


if __name__ == "__main__":
    main()
