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
  - With O(s3), uploads the set (multipart) under a dated prefix, the manifest last; the manifest records the
    bucket and prefix, so M(streamops.maintenance.backup_verify) finds the copy with the same O(s3) options.
  - With O(retention), deletes old sets locally and in S3, grandfather-father-son. It never deletes the
    newest verified set (see M(streamops.maintenance.backup_verify)) nor the newest complete one, never
    anything but set directories directly under O(backup_root), and never the root itself.
  - No password is ever put on a command line; pg_dump and redis-cli get it in their environment only.
  - Returns one record per set worked on or looked at (RV(records)), as every module of the collection does.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.postgres
  - streamops.maintenance.s3
attributes:
  check_mode:
    support: full
    details:
      - Connects, counts the critical tables, checks the paths, and returns the set it would write (and its upload)
        and each set retention would delete as C(planned) records.
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
    description:
      - Connection to the Redis server of V(redis_rdb), taken with C(redis-cli --rdb). The same options as the
        Redis modules' connection (the C(streamops.maintenance.redis) doc fragment), so an inventory's Redis
        login dict can be given as it is.
      - The RDB is a snapshot of the whole server, so O(redis.db) is not used, nor are O(redis.socket_timeout)
        and O(redis.connect_timeout) (redis-cli has no such option).
      - The password is given to redis-cli in E(REDISCLI_AUTH), never on its command line.
    type: dict
    suboptions:
      login_host:
        description: Host name or IP address of the Redis server.
        type: str
        default: localhost
        aliases: [host]
      login_port:
        description: Port of the Redis server.
        type: int
        default: 6379
        aliases: [port]
      login_unix_socket:
        description: Path of the server's unix socket; takes precedence over O(redis.login_host).
        type: str
        aliases: [unix_socket]
      login_user:
        description: ACL user name (Redis 6+). Without it the C(default) user is used.
        type: str
        aliases: [user, username]
      login_password:
        description:
          - Password of O(redis.login_user) (or C(requirepass)). When unset, E(REDISCLI_AUTH) is used.
          - Never passed on a command line, never logged.
        type: str
        aliases: [password]
      db:
        description: Not used; the RDB holds every database of the server. Accepted so a Redis login dict fits.
        type: int
        default: 0
      tls:
        description: Connect with TLS.
        type: bool
        default: false
      validate_certs:
        description: With O(redis.tls), verify the server's certificate (V(false) runs redis-cli with C(--insecure)).
        type: bool
        default: true
      ca_certs:
        description: CA certificate file for O(redis.tls).
        type: path
      client_cert_file:
        description: Client certificate file for O(redis.tls).
        type: path
      client_key_file:
        description: Client private key file for O(redis.tls).
        type: path
      socket_timeout:
        description: Not used by the RDB transfer.
        type: float
        default: 10
      connect_timeout:
        description: Not used by the RDB transfer.
        type: float
        default: 5
  config_paths:
    description: Absolute files or directories put in C(config.tar.gz) by V(config).
    type: list
    elements: path
    default: []
  pg_bin_dir:
    description: Directory of pg_dump; the one on E(PATH) when unset. Use the server's major version or newer.
    type: path
  reuse_verified_within:
    description:
      - With O(operation=backup), reuse the newest local set that M(streamops.maintenance.backup_verify) verified less
        than this long ago (V(6h), V(1d)) instead of taking a new one, so a re-run of a failed playbook does not back up
        twice. The result then has RV(reused=true), the set's RV(backup_id), RV(path) and RV(manifest), one record
        with status V(unchanged), and no retention runs (nothing new to age out).
      - Unset always takes a new set.
    type: str
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
    # The inventory's Redis login dict, as the Redis modules take it (its db is not used: the RDB is the server).
    redis: "{{ redis_login }}"
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
records:
  description:
    - One record per thing worked on or looked at (docs/records.md), each with C(name), C(action), C(status),
      C(detail), C(before), C(after) and C(seconds).
    - O(operation=backup) gives the set's record, name the backup id, action C(backup), status C(done)
      (C(planned) in check mode, C(failed) when the run failed), C(after) with C(path), C(bytes) (the sum of
      its files), C(parts) (bytes per part), C(row_counts), C(database_bytes) and C(s3_prefix) (or null), and
      C(seconds) the time the dumps took; with O(s3), a second record, name C(s3://bucket/prefix/), action
      C(upload), C(after) with C(objects) and C(bytes).
    - O(retention) gives one record per set looked at, locally and in S3, name the backup id, action
      C(retention), C(after) with C(location) (C(local) or C(s3)) and C(where). Its status is C(done) for a
      deleted set (C(planned) in check mode) with why it went, C(unchanged) for a kept one with the rules
      that keep it (C(within 7 days), C(last 3), C(daily 2026-11-30), C(newest verified)...).
  returned: always
  type: list
  elements: dict
  sample:
    - name: streamsystems-20261123T020000Z
      action: backup
      status: done
      detail: "full, schema, critical_data: 12.3 MB in /backup/streamsystems/streamsystems-20261123T020000Z"
      before: null
      after: {path: /backup/streamsystems/streamsystems-20261123T020000Z, bytes: 12897484,
              parts: {full: 10485760, schema: 24576, critical_data: 2387148},
              row_counts: {public.trades: 20000, public.positions: 20000}, database_bytes: 52420608,
              s3_prefix: database/2026/11/23/streamsystems-20261123T020000Z/}
      seconds: 8.42
    - name: streamsystems-20261116T020000Z
      action: retention
      status: unchanged
      detail: "kept: daily 2026-11-16, weekly 2026-W47"
      before: null
      after: {location: local, where: /backup/streamsystems/streamsystems-20261116T020000Z}
      seconds: null
msg:
  description:
    - "What was written (or would be), and C(retention of <name>: kept N, deleted M (local), ...) when
      O(retention) is set, also when nothing is deleted."
  returned: always
  type: str
  sample: "wrote streamsystems-20261123T020000Z: full, 12.3 MB; retention of streamsystems: kept 9, deleted 1 (local)"
backup_id:
  description: Name of the set written (or that would be, in check mode).
  returned: operation=backup
  type: str
  sample: streamsystems-20261123T020000Z
path:
  description: Directory of the set.
  returned: operation=backup
  type: str
manifest:
  description:
    - The manifest written (files with size and sha256, parts, row counts, server version, times, and with
      O(s3) the C(s3.bucket) and C(s3.prefix) of its copy, which M(streamops.maintenance.backup_verify) reads).
  returned: operation=backup, not in check mode
  type: dict
step:
  description: On failure, the step that failed (snapshot, pg_dump full, redis rdb, config tar, upload, retention...).
  returned: failure
  type: str
reused:
  description: V(true) when O(reuse_verified_within) found a recently verified set and no new one was taken.
  returned: when a set was reused
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_backup import PARTS, run_pg_backup
from ansible_collections.streamops.maintenance.plugins.module_utils.redis_conn import (
    redis_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.s3 import (
    BOTO3_IMPORT_ERROR,
    s3_argument_spec,
)


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
        redis=dict(type="dict", options=redis_connection_argument_spec()),
        config_paths=dict(type="list", elements="path", default=[]),
        pg_bin_dir=dict(type="path"),
        reuse_verified_within=dict(type="str"),
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
    missing: dict[str, str | None] = {}
    if module.params["operation"] == "backup" and any(p in module.params["parts"] for p in ("full", "schema", "critical_data")):
        missing["psycopg"] = PSYCOPG_IMPORT_ERROR
    if module.params["s3"]:
        missing["boto3"] = BOTO3_IMPORT_ERROR
    run_and_exit(module, run_pg_backup, missing)


if __name__ == "__main__":
    main()
