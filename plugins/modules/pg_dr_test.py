#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_dr_test
short_description: Disaster-recovery test - restore a verified backup set onto another PostgreSQL server, measure RTO and RPO
version_added: 0.1.0
author:
  - streamops maintainers (@streamops)
description:
  - The quarterly disaster-recovery exercise. Takes the newest set under O(backup_root) that
    M(streamops.maintenance.backup_verify) marked verified (or the set O(backup_set)), or, without O(backup_root),
    that set from O(s3) (a disaster may have taken the local disk), checks its manifest, checksums and archives
    (a damaged set is refused), restores it into O(target_database) on the O(target) server, and compares every
    table of the set's manifest (row count and checksum, taken when the set was) with the restored copy - the
    source as it was at the set's snapshot. Then runs O(sql_checks).
  - The connection options (O(login_host), O(login_port), ... through C(module_defaults) of the
    C(streamops.maintenance.postgres) group) are the SOURCE, the estate's production server. O(target) is the DR
    server, named explicitly.
  - Refuses, before anything is created, a target that is the source server - the same host and port as the
    source connection or as the set's C(postgres.server) (C(localhost), C(127.0.0.1), C(::1) and a unix socket are
    one host), or the same C(system_identifier) as the live source or the set's C(postgres.system_identifier)
    (another address of the same server). The C(target) record's detail says which rule matched. A target whose
    C(system_identifier) cannot be read (or with no source identifier to compare) is tested when its host and port
    differ, but its C(target) record and the verdict are C(unknown), never clean.
  - Also refuses an existing O(target_database) it did not create (it is left untouched).
  - RTO is measured from the start of the run (finding and fetching the set included) until the restored copy
    passed its checks; RPO is the start of the run minus the set's C(postgres.snapshot_at) (C(started_at) for an
    older set). Over O(rto_target) or O(rpo_target) the verdict is C(breach).
  - The target database is dropped afterwards unless O(keep_restored) (a failed copy is always dropped).
  - The task fails when a step failed (a refusal included); a breach or an unproven target does not fail it.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.postgres
  - streamops.maintenance.s3
attributes:
  check_mode:
    support: full
    details:
      - Finds and checks the set, judges the target (reads only) and returns the plan (the set, its age - the RPO it
        would give -, its size, the target, any refusal); creates nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run restores anew (a test); RV(ignore:changed) is true when a database was created.
options:
  target:
    description:
      - The DR server (never the source). The keys of the connection options, without their environment
        fallbacks (E(PGHOST) describes the source, or nothing).
      - Its role must be allowed to C(CREATE DATABASE).
    type: dict
    required: true
    suboptions:
      login_host:
        description: Host name or IP address of the DR server (or give O(target.login_unix_socket)).
        type: str
        aliases: [host]
      login_port:
        description: Port of the DR server; 5432 when unset.
        type: int
        aliases: [port]
      login_user:
        description: Role to connect as (allowed to create databases).
        type: str
        aliases: [user]
      login_password:
        description: Password of O(target.login_user). Never passed on a command line, never logged.
        type: str
        aliases: [password]
      login_unix_socket:
        description: Directory of the DR server's unix socket; takes precedence over O(target.login_host).
        type: str
        aliases: [unix_socket]
      database:
        description: Database to connect to for creating and dropping O(target_database); V(postgres) when unset.
        type: str
        aliases: [db, login_db]
      sslmode:
        description: libpq SSL mode.
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file to verify the DR server with.
        type: path
        aliases: [ssl_rootcert]
      ssl_cert:
        description: Client certificate file.
        type: path
      ssl_key:
        description: Client private key file.
        type: path
      connect_timeout:
        description: Seconds to wait for the connection before failing.
        type: int
        default: 10
  target_database:
    description:
      - Database on O(target) the set is restored into; created and marked by this module. An existing database
        it did not create is refused. Default C(<the set's database>_dr).
    type: str
  backup_root:
    description:
      - Local directory the sets are under (the C(backup_root) of M(streamops.maintenance.pg_backup)).
      - Without it, the set comes from O(s3).
    type: path
  name:
    description:
      - Name of the sets (their ids are C(<name>-<YYYYmmddTHHMMSSZ>)); default the source O(database).
      - Under O(backup_root) without either, the newest verified set of any name.
    type: str
  backup_set:
    description:
      - The id of the set to restore instead of the newest verified one (a set directly under O(backup_root), or in
        O(s3) under its dated prefix). A set not marked verified is accepted when named, and said so.
    type: str
  rto_target:
    description: Recovery time objective (V(2h), V(30m)); a longer restore is a C(breach).
    type: str
  rpo_target:
    description: Recovery point objective (V(26h)); older data restored is a C(breach).
    type: str
  keep_restored:
    description: Keep the restored database on O(target) after a passed test (the next test replaces it).
    type: bool
    default: false
  sql_checks:
    description:
      - Queries run (read-only) in the restored copy; the first column of the first row must be a number at least
        O(sql_checks[].min).
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
  jobs:
    description: Parallel pg_restore workers.
    type: int
    default: 2
  pg_bin_dir:
    description: Directory of pg_restore; the one on E(PATH) when unset.
    type: path
seealso:
  - module: streamops.maintenance.backup_verify
  - module: streamops.maintenance.pg_backup
"""

EXAMPLES = r"""
- name: Quarterly DR test of VitalStream onto the DR server
  module_defaults:
    group/streamops.maintenance.postgres: "{{ postgres_login }}"
    group/streamops.maintenance.s3:
      s3: "{{ s3_login }}"
  streamops.maintenance.pg_dr_test:
    backup_root: /backup/vitalstream
    target:
      login_host: dr-db.internal
      login_user: dr_restore
      login_password: "{{ vault_dr_password }}"
      sslmode: verify-full
      ca_cert: /etc/ssl/dr-ca.crt
    rto_target: 2h
    rpo_target: 26h
    sql_checks:
      - name: patients
        sql: SELECT count(*) FROM patients
        min: 1

- name: The local disk is gone - take the set from S3 (named, or the newest verified one of the name)
  streamops.maintenance.pg_dr_test:
    s3: "{{ s3_login }}"
    name: vitalstream
    backup_set: vitalstream-20270102T020000Z
    target: "{{ dr_test_target }}"
    keep_restored: true
"""

RETURN = r"""
records:
  description:
    - One record per step (docs/records.md), action C(verify) unless said - C(set) (the set found and its files
      checked; C(failed) for a damaged or missing set), C(target) (C(ok) another server, C(failed) refused with the
      rule that matched, C(unknown) not proven), C(<db> on <host:port>) action C(restore) (C(done), C(planned) in
      check mode, C(failed)), C(row counts) and C(checksums) (the manifest's tables against the restored copy),
      C(sql <name>), C(<db> on <host:port>) action C(drop_database) (C(done), C(unchanged) when kept, C(failed)),
      C(rpo) and C(rto) (C(ok), C(breach) over the target).
    - Last, the summary, name C(dr test), action C(dr_test), status C(ok), C(breach), C(failed), C(unknown) (or
      C(planned) in check mode), C(after) with C(backup_id), C(source_server), C(target_server),
      C(target_database), C(rto_seconds), C(rto_target_seconds), C(rpo_seconds), C(rpo_target_seconds) and
      C(tables) (one C({table, rows, expected_rows, checksum, expected_checksum, ok}) per table).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: target, action: verify, status: failed, before: null, seconds: 0.02,
       after: {rule: system identifier},
       detail: "refused: target localhost:5432/vitalstream_dr is the source server (rule: same system_identifier
                7716297589807448700 as the live source; another address of the same server); nothing was created on it"}
    - name: dr test
      action: dr_test
      status: ok
      detail: "DR test of vitalstream-20270102T020000Z onto dr-db.internal:5432/vitalstream_dr passed: RTO 41.2s, RPO 6h 12m"
      before: null
      seconds: 41.3
      after:
        backup_id: vitalstream-20270102T020000Z
        source_server: "10.0.0.5:5432"
        target_server: "dr-db.internal:5432"
        target_database: vitalstream_dr
        rto_seconds: 41.2
        rto_target_seconds: 7200
        rpo_seconds: 22320
        rpo_target_seconds: 93600
        tables:
          - {table: public.alarms, rows: 3000, expected_rows: 3000, checksum: "md5sum64:123", expected_checksum: "md5sum64:123", ok: true}
msg:
  description: The verdict in one sentence (RTO, RPO, tables compared), with each failed step and why.
  returned: always
  type: str
status:
  description: The summary record's status.
  returned: always
  type: str
backup_id:
  description: The set restored (null when none was found).
  returned: always
  type: str
rto_seconds:
  description: Seconds from the start of the run until the restored copy passed its checks (null when it did not).
  returned: always
  type: float
rpo_seconds:
  description: Age of the data restored, at the start of the run (null when the set has no time).
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.backup_verify import sql_checks_argument_spec
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit
from ansible_collections.streamops.maintenance.plugins.module_utils.pg import (
    PSYCOPG_IMPORT_ERROR,
    pg_connection_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.pg_dr_test import (
    run_pg_dr_test,
    target_argument_spec,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.s3 import (
    BOTO3_IMPORT_ERROR,
    s3_argument_spec,
)


def argument_spec() -> dict:
    spec = pg_connection_argument_spec()
    spec.update(sql_checks_argument_spec())
    spec.update(s3_argument_spec())
    spec.update(target_argument_spec())
    spec.update(
        target_database=dict(type="str"),
        backup_root=dict(type="path"),
        name=dict(type="str"),
        backup_set=dict(type="str"),
        rto_target=dict(type="str"),
        rpo_target=dict(type="str"),
        keep_restored=dict(type="bool", default=False),
        jobs=dict(type="int", default=2),
        pg_bin_dir=dict(type="path"),
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("backup_root", "s3")])
    missing = {"psycopg": PSYCOPG_IMPORT_ERROR}
    if module.params["s3"] and not module.params["backup_root"]:
        missing["boto3"] = BOTO3_IMPORT_ERROR
    run_and_exit(module, run_pg_dr_test, missing)


if __name__ == "__main__":
    main()
