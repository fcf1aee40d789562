#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_verify
short_description: Prove that a backup set written by pg_backup will restore
version_added: 0.1.0
author:
  - streamops maintainers (@streamops)
description:
  - Checks one backup set (a local directory, the newest set under a backup root, its S3 copy, or an S3 prefix
    alone) and returns one record per check in RV(records), then a verdict.
  - With O(backup_root) instead of O(path), the newest complete set directly under it (of O(name), when
    given) is verified. When there is none yet (the root is missing or empty, or holds only unfinished sets),
    nothing is verified and the task does not fail - RV(state) is V(no_set) and the one record, named after
    the root, says so with status C(unknown) (never clean in a report). A newer unfinished set (no manifest -
    a backup running now, or one that failed) is named in the verdict's detail.
  - C(manifest) is present, complete and lists files that exist. C(checksums) reads every byte of every
    file against the manifest's size and sha256. C(archive <part>) reads that part to its end with the tool
    that would restore it (C(pg_restore) writing the whole archive as a script, C(redis-check-rdb), a full
    decompression of the tar) - a table of contents that lists fine is not enough. C(age) compares the
    set's end time with O(max_age) (only when it is given). C(s3 copy) reads every S3 object back against
    the manifest when both O(path) and O(s3) are given.
  - With O(path) and O(s3), the copy is looked for where the set's own manifest says pg_backup uploaded it
    (its C(s3.bucket) and C(s3.prefix)); O(s3) gives the endpoint and credentials, so the same O(s3) options
    as the backup's (the estate's prefix, for example through C(module_defaults)) verify any of its sets.
    A set whose manifest has no S3 location fails the C(s3 copy) check. With O(s3) alone, O(s3.prefix)
    names the one set to verify (it ends with the backup id).
  - With O(restore_test), restores the set into O(scratch_database) on the server of the connection
    options (created by this module, marked with a comment, and always dropped afterwards, also on
    failure), then compares the critical tables' row counts (C(row counts)) and their checksums
    (C(table checksums), content of every row, order-independent; C(unknown) for a set taken before manifests
    recorded checksums) with the manifest, and runs O(sql_checks) (C(sql <name>)). It refuses the backup's source database and any existing database it did
    not create.
  - RV(verified) is true only when every check passed; then C(verified.json) is written beside the
    manifest (and in S3) unless O(mark=false), and M(streamops.maintenance.pg_backup) retention never deletes
    the newest verified set.
  - The task fails when a check failed, unless O(fail_on_unverified=false).
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.postgres
  - streamops.maintenance.s3
attributes:
  check_mode:
    support: full
    details:
      - Runs every read-only check; skips the restore test (it creates a database), so a set asked to be
        restore-tested gets the verdict C(unknown). Writes no mark; a set that would be marked gets a
        C(planned) C(mark) record.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Writes the mark again (with a new time) when run again; reports changed when it writes it.
      - With O(mark=false) it changes nothing and never reports changed.
options:
  path:
    description:
      - Absolute directory of the set (the one with C(manifest.json)).
      - Mutually exclusive with O(backup_root).
    type: path
  backup_root:
    description:
      - Absolute directory the sets are written under (pg_backup's O(streamops.maintenance.pg_backup#module:backup_root));
        the newest complete set directly under it is verified.
      - Mutually exclusive with O(path).
    type: path
  name:
    description:
      - With O(backup_root), only sets of this name (C(<name>-<YYYYmmddTHHMMSSZ>)) are looked at; any set
        name when unset.
    type: str
  max_age:
    description: The set must have finished less than this long ago (V(26h), V(8d)).
    type: str
  restore_test:
    description: Restore into O(scratch_database) and check what was restored.
    type: bool
    default: false
  scratch_database:
    description:
      - Database for the restore test, on the server of the connection options (O(login_host) and so on;
        O(database) is not used). Must not exist, or exist from an earlier run of this module.
    type: str
    default: streamops_verify_scratch
  maintenance_database:
    description: Database to connect to for creating and dropping the scratch database.
    type: str
    default: postgres
  jobs:
    description: Parallel pg_restore workers for the restore test.
    type: int
    default: 2
  sql_checks:
    description:
      - Queries run (read-only) in the restored scratch database; the first column of the first row must
        be a number at least O(sql_checks[].min).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check; its record is named C(sql <name>).
        type: str
        required: true
      sql:
        description: The query.
        type: str
        required: true
      min:
        description: Smallest acceptable value.
        type: int
        default: 1
  pg_bin_dir:
    description: Directory of pg_restore; the one on E(PATH) when unset.
    type: path
  mark:
    description:
      - Write C(verified.json) beside the manifest (and in S3) when the set verified. V(false) leaves the set as
        it is - a read-only check (the daily one), which neither marks a set nor replaces the mark (with its
        restore figures) of an earlier restore test.
    type: bool
    default: true
  fail_on_unverified:
    description:
      - Fail the task when a check failed (the records say which and why).
      - A set whose checks all passed but whose restore test could not run (check mode, a data-only set) is
        not verified either; its verdict is C(unknown) and the task does not fail.
    type: bool
    default: true
seealso:
  - module: streamops.maintenance.pg_backup
"""

EXAMPLES = r"""
- name: Back up and verify with the same S3 options (the copy is found through the set's manifest)
  module_defaults:
    streamops.maintenance.pg_backup:
      s3: &estate_s3
        bucket: streamsystems-backups
        prefix: database
    streamops.maintenance.backup_verify:
      s3: *estate_s3
  block:
    - name: Back up
      streamops.maintenance.pg_backup:
        database: streamsystems
        backup_root: /backup/streamsystems
      register: backup

    - name: Verify last night's backup and its S3 copy, and restore-test it on the staging server
      streamops.maintenance.backup_verify:
        path: "{{ backup.path }}"
        max_age: 26h
        restore_test: true
        login_host: staging-db.internal
        login_user: restore_checker
        login_password: "{{ vault_restore_password }}"
        scratch_database: verify_streamsystems
        jobs: 2
        sql_checks:
          - name: trades in the last day of the backup
            sql: SELECT count(*) FROM trades WHERE created_at > now() - interval '1 day'
            min: 1

- name: Daily - the newest set under the root, read to the end, no restore (no set yet is state no_set)
  streamops.maintenance.backup_verify:
    backup_root: /backup/vitalstream
    name: vitalstream
    max_age: 26h
  register: latest

- name: Check one set's S3 copy only, without a restore (the prefix names the set)
  streamops.maintenance.backup_verify:
    s3:
      bucket: vitalstream-backups
      prefix: monthly/2026/11/01/vitalstream-20261101T020000Z
    max_age: 32d
"""

RETURN = r"""
records:
  description:
    - One record per check (docs/records.md), name the check (C(manifest), C(checksums), C(archive <part>),
      C(age), C(s3 copy), C(restore), C(row counts), C(table checksums), C(sql <name>)), action C(verify),
      status C(ok), C(failed), C(skipped) or C(unknown) (C(table checksums) of a set without them),
      C(detail) with the figures, C(seconds) where measured (the restore test's from creating the scratch
      database to dropping it). C(row counts) and C(table checksums) have C(after) with each table's value
      in the restored copy; C(restore) has C(after.bytes), the restored database's size.
    - Then the verdict, name the backup id, action C(verified), status C(ok) when verified, C(failed) when
      a check failed, C(unknown) when a check it needs could not run (check mode, a set that cannot be
      restore-tested), C(after) with C(verified), C(backup_id) and C(path) (the directory, or the S3 prefix).
    - When C(verified.json) was written (and its S3 copy), a record action C(mark), status C(done)
      (C(planned) in check mode), C(after.paths) where it was written. After a restore test the mark holds
      C(restore_seconds) and C(restored_bytes).
    - With O(backup_root) and no set under it, the only record is named after the root, action C(verified),
      status C(unknown), C(after.verified) false.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: checksums, action: verify, status: failed, before: null, after: null, seconds: 0.41,
       detail: "full.dump: sha256 1f0c..., manifest says 9a3e..."}
    - {name: streamsystems-20261123T020000Z, action: verified, status: failed, before: null, seconds: 0.97,
       detail: "not verified: checksums failed",
       after: {verified: false, backup_id: streamsystems-20261123T020000Z,
               path: /backup/streamsystems/streamsystems-20261123T020000Z}}
msg:
  description: The verdict in one sentence, with each failed check and why.
  returned: always
  type: str
verified:
  description:
    - True only when no check failed and, with O(restore_test), the restore test ran and passed (a data-only
      set, or check mode, cannot be restore-tested, so it is not verified).
  returned: always
  type: bool
backup_id:
  description: The set's id from its manifest (null when the manifest could not be read, or there is no set).
  returned: always
  type: str
state:
  description:
    - V(verified); V(failed) (a check failed); V(unknown) (every check that ran passed, but one it needs could
      not run); V(no_set) (O(backup_root) holds no complete set yet).
  returned: always
  type: str
  sample: no_set
set_path:
  description: The local set's directory that was verified (the newest one, with O(backup_root)); null for an S3-only check or no set.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import (
    run_backup_verify,
    sql_checks_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.s3 import (
    BOTO3_IMPORT_ERROR,
    s3_argument_spec,
)


def argument_spec() -> dict:
    spec = pg_connection_argument_spec()
    spec.update(sql_checks_argument_spec())
    spec.update(s3_argument_spec())
    spec.update(
        path=dict(type="path"),
        backup_root=dict(type="path"),
        name=dict(type="str"),
        max_age=dict(type="str"),
        restore_test=dict(type="bool", default=False),
        scratch_database=dict(type="str", default="streamops_verify_scratch"),
        maintenance_database=dict(type="str", default="postgres"),
        jobs=dict(type="int", default=2),
        pg_bin_dir=dict(type="path"),
        mark=dict(type="bool", default=True),
        fail_on_unverified=dict(type="bool", default=True),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("path", "backup_root", "s3")])
    missing = {}
    if module.params["restore_test"]:
        missing["psycopg"] = PSYCOPG_IMPORT_ERROR
    if module.params["s3"]:
        missing["boto3"] = BOTO3_IMPORT_ERROR
    run_and_exit(module, run_backup_verify, missing)


if __name__ == "__main__":
    main()
