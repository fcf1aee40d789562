#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup
short_description: Back up PostgreSQL (and Redis, configuration) with a manifest, upload to S3, apply retention
version_added: 0.1.0
author:
  - streamops maintainers (@streamops)
description:
  - Writes one backup set under O(backup_root) named C(<name>-<YYYYmmddTHHMMSSZ>) with the asked O(parts)
    (a full dump in custom or directory format, schema only, data of the critical tables, a Redis RDB,
    a tar of configuration paths) and a C(manifest.json) written last.
  - Every pg_dump of a run shares one snapshot, in which the critical tables' rows are counted, so the
    manifest's row counts are those of the archive. Files are hashed (sha256) while they are written.
  - pg_dump's exit status alone is not trusted; its messages and the archive header are checked too.
  - A failure removes this run's partial files (and S3 objects) and says which step failed; earlier
    backups are never touched by a failed run.
  - With O(s3), uploads the set (multipart) under a dated prefix, the manifest last.
  - With O(retention), deletes old sets locally and in S3, grandfather-father-son. It never deletes the
    newest verified set (see M(streamops.maintenance.backup_verify)) nor the newest complete one, never
    anything but set directories directly under O(backup_root), and never the root itself.
  - No password is ever put on a command line; pg_dump gets it in its environment only.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.postgres
  - streamops.maintenance.s3
attributes:
  check_mode:
    support: full
    details: Connects, checks the critical tables and paths, and lists the set it would write and what retention would delete.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Each run with O(operation=backup) writes a new set. O(operation=retention) is idempotent.
options:
  operation:
    description:
      - V(backup) writes a set (and applies O(retention) when given). V(retention) only applies O(retention).
    type: str
    choices: [backup, retention]
    default: backup
  backup_root:
    description: Absolute directory of this estate's backup sets; created when missing. Never V(/).
    type: path
    required: true
  name:
    description: Name of the sets (letters, digits, C(_), C(.), C(-)); defaults to O(database).
    type: str
  parts:
    description:
      - V(full) is the whole database, V(schema) the schema only, V(critical_data) the data of
        O(critical_tables), V(redis_rdb) an RDB snapshot of O(redis), V(config) a tar.gz of O(config_paths).
    type: list
    elements: str
    choices: [full, schema, critical_data, redis_rdb, config]
    default: [full]
  format:
    description: Format of the V(full) dump. V(directory) allows O(jobs) > 1. The other dumps are always custom.
    type: str
    choices: [custom, directory]
    default: custom
  jobs:
    description: Parallel pg_dump workers for O(format=directory).
    type: int
    default: 1
  compress_level:
    description: pg_dump compression level, 0 to 9; pg_dump's default when unset.
    type: int
  critical_tables:
    description:
      - Tables (V(table) or V(schema.table)) dumped by V(critical_data) and counted in the manifest,
        in the same snapshot as every dump. Counted whenever given.
    type: list
    elements: str
    default: []
  redis:
    description: Connection to the Redis server for V(redis_rdb) (taken with C(redis-cli --rdb)).
    type: dict
    suboptions:
      login_host:
        description: Host of the Redis server.
        type: str
        default: localhost
      login_port:
        description: Port of the Redis server.
        type: int
        default: 6379
      login_unix_socket:
        description: Unix socket of the Redis server, instead of host and port.
        type: str
      login_user:
        description: ACL user name.
        type: str
      login_password:
        description: Password; given to redis-cli in its environment, never on its command line.
        type: str
      tls:
        description: Connect with TLS.
        type: bool
        default: false
      ca_certs:
        description: CA bundle for TLS.
        type: path
      client_cert_file:
        description: Client certificate for TLS.
        type: path
      client_key_file:
        description: Client key for TLS.
        type: path
  config_paths:
    description: Absolute files or directories put in C(config.tar.gz) by V(config).
    type: list
    elements: path
    default: []
  pg_bin_dir:
    description: Directory of pg_dump; the one on E(PATH) when unset. Use the server's major version or newer.
    type: path
  retention:
    description:
      - Which sets to keep, locally and in S3. A set is kept when any rule keeps it; the newest verified
        and the newest complete set are always kept; unfinished sets younger than O(retention.incomplete_after)
        are kept (a backup may be running).
    type: dict
    suboptions:
      keep_last:
        description: The newest this many complete sets.
        type: int
        default: 7
      keep_daily:
        description: The newest set of each of the last this many days that have one.
        type: int
        default: 7
      keep_weekly:
        description: The newest set of each of the last this many ISO weeks that have one.
        type: int
        default: 4
      keep_monthly:
        description: The newest set of each of the last this many months that have one.
        type: int
        default: 12
      keep_within:
        description: Every set younger than this duration (V(36h), V(7d)).
        type: str
      incomplete_after:
        description: Sets without a manifest older than this are deleted as failed leftovers.
        type: str
        default: 24h
notes:
  - A password can also come from a passfile (C(~/.pgpass) or E(PGPASSFILE)); it is never passed on a command line.
  - The dumps of O(format=directory) are written by pg_dump's own workers, so they are hashed after pg_dump
    ends (read back once, usually from the page cache); every other file is hashed while it is written.
seealso:
  - module: streamops.maintenance.backup_verify
"""

EXAMPLES = r"""
- name: Nightly backup of the trading database, uploaded, 7 days / 4 weeks / 12 months kept
  streamops.maintenance.pg_backup:
    login_host: "{{ pg_host }}"
    login_user: stream_user
    login_password: "{{ vault_pg_password }}"
    database: streamsystems
    backup_root: /backup/streamsystems
    parts: [full, schema, critical_data]
    critical_tables: [trades, positions]
    s3:
      bucket: streamsystems-backups
      prefix: database
      server_side_encryption: AES256
    retention:
      keep_daily: 7
      keep_weekly: 4
      keep_monthly: 12
  register: backup

- name: VitalStream monthly set, with the Redis RDB and the configuration
  streamops.maintenance.pg_backup:
    database: vitalstream
    backup_root: /backup/vitalstream
    format: directory
    jobs: 2
    parts: [full, critical_data, redis_rdb, config]
    critical_tables: [vital_signs, alarms]
    redis:
      login_host: 127.0.0.1
      login_password: "{{ vault_redis_password }}"
    config_paths: [/opt/vitalstream/config]

- name: What would retention delete?
  streamops.maintenance.pg_backup:
    operation: retention
    name: streamsystems
    backup_root: /backup/streamsystems
    retention: {keep_last: 3, keep_daily: 7, keep_weekly: 0, keep_monthly: 0}
  check_mode: true
"""

RETURN = r"""
backup_id:
  description: Name of the set written.
  returned: operation=backup
  type: str
  sample: streamsystems-20261123T020000Z
path:
  description: Directory of the set.
  returned: operation=backup
  type: str
manifest:
  description: The manifest written (files with size and sha256, parts, row counts, server version, times).
  returned: operation=backup, not in check mode
  type: dict
row_counts:
  description: Rows of each critical table in the snapshot (check mode).
  returned: check mode
  type: dict
steps:
  description: Each part (and the upload) with its seconds and bytes.
  returned: operation=backup, not in check mode
  type: list
  elements: dict
s3:
  description: Bucket, prefix and number of objects uploaded.
  returned: when s3 is set
  type: dict
retention:
  description: C(kept) (with the rules that keep each set) and C(deleted) (would be, in check mode).
  returned: when retention is set
  type: dict
step:
  description: On failure, the step that failed (snapshot, pg_dump full, redis rdb, config tar, upload, retention...).
  returned: failure
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_backup import PARTS, run_pg_backup
from ansible_collections.streamops.maintenance.plugins.module_utils.storage import (
    BOTO3_IMPORT_ERROR,
    s3_argument_spec,
)

try:
    import dateutil  # noqa: F401  pylint: disable=unused-import
except ImportError:
    DATEUTIL_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    DATEUTIL_IMPORT_ERROR = None


def argument_spec() -> dict:
    spec = pg_connection_argument_spec()
    spec.update(s3_argument_spec())
    spec.update(
        operation=dict(type="str", choices=["backup", "retention"], default="backup"),
        backup_root=dict(type="path", required=True),
        name=dict(type="str"),
        parts=dict(type="list", elements="str", choices=list(PARTS), default=["full"]),
        format=dict(type="str", choices=["custom", "directory"], default="custom"),
        jobs=dict(type="int", default=1),
        compress_level=dict(type="int"),
        critical_tables=dict(type="list", elements="str", default=[]),
        redis=dict(type="dict", options=dict(
            login_host=dict(type="str", default="localhost"),
            login_port=dict(type="int", default=6379),
            login_unix_socket=dict(type="str"),
            login_user=dict(type="str"),
            login_password=dict(type="str", no_log=True),
            tls=dict(type="bool", default=False),
            ca_certs=dict(type="path"),
            client_cert_file=dict(type="path"),
            client_key_file=dict(type="path", no_log=False),
        )),
        config_paths=dict(type="list", elements="path", default=[]),
        pg_bin_dir=dict(type="path"),
        retention=dict(type="dict", options=dict(
            keep_last=dict(type="int", default=7),
            keep_daily=dict(type="int", default=7),
            keep_weekly=dict(type="int", default=4),
            keep_monthly=dict(type="int", default=12),
            keep_within=dict(type="str"),
            incomplete_after=dict(type="str", default="24h"),
        )),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    missing = {"python-dateutil": DATEUTIL_IMPORT_ERROR}
    if module.params["operation"] == "backup" and any(p in module.params["parts"] for p in ("full", "schema", "critical_data")):
        missing["psycopg"] = PSYCOPG_IMPORT_ERROR
    if module.params["s3"]:
        missing["boto3"] = BOTO3_IMPORT_ERROR
    run_and_exit(module, run_pg_backup, missing)


if __name__ == "__main__":
    main()
