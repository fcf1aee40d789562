#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: log_pattern_review
short_description: Count log lines matching named patterns in the last hours, rotated logs included
version_added: 0.1.0
description:
  - Counts, for each given log file and each named pattern, the lines the pattern matches whose timestamp is in
    the last O(hours) (from RV(ignore:records[].after.since) to O(now); later stamps are not counted), and judges
    the count against the pattern's C(max). This is the guides' access-log review (failed logins in C(auth.log),
    C(SQL injection|XSS|CSRF) in C(security.log)).
  - The rotated files of each log are read too, C(<file>.1), C(<file>.2.gz), ... and logrotate's C(dateext) names
    C(<file>-YYYYMMDD[.gz]) (C(.gz), C(.bz2) and C(.xz) are decompressed as they are read). Rotated files older than
    the window (the next newer one starts before it) are not opened.
  - Streams with bounded memory (a 1 GB log is never read into memory) and keeps only the newest O(newest_lines)
    matching lines of each pattern, truncated and with secrets redacted. Patterns are matched line by line,
    timestamps parsed only on lines a pattern matched.
  - Only reads. A missing log is an V(unknown) record (never clean), an unreadable one V(failed); the module
    fails only on bad input, naming the value, before reading anything.
extends_documentation_fragment:
  - streamops.maintenance.attributes
  - streamops.maintenance.attributes.read_only
options:
  files:
    description:
      - The logs to review. Each is a path, or a dict with C(path) and C(rotated).
      - Without C(rotated), its rotated files are found next to it by name. C(rotated) lists them instead, as
        paths or globs (relative ones next to C(path)); V([]) reads no rotated file.
      - Each log gives one record per pattern, named C(<path> <pattern name>).
    type: list
    elements: raw
    required: true
  patterns:
    description: The named patterns to count. Names must be unique.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the pattern, used in the record's name (C(failed_logins)).
        type: str
        required: true
      regex:
        description:
          - Python regular expression searched in each line (C(^) and C($) are the line's start and end).
          - A regex that matches an empty line (C(a|), C(.*)) fails the task, as it would count every line.
          - Case-sensitive patterns with a literal part are the fastest; case-insensitive ones are searched by the regex alone.
        type: str
        required: true
      max:
        description: Most matching lines in the window that are still V(ok); more is a V(breach).
        type: int
        default: 0
  hours:
    description: Length of the window, ending at O(now), in hours; above 0.
    type: float
    default: 24
  timestamp:
    description: How each line's timestamp is found and read.
    type: dict
    default: {}
    suboptions:
      format:
        description:
          - A preset or a C(strptime) format (a format must have a date, C(%d) with C(%m), C(%b) or C(%B), or C(%j)).
          - V(iso8601) (the default) reads C(2026-12-06T10:46:36.123+00:00) or C(2026-12-06 10:46:36Z), the first one in the line.
          - V(syslog) reads C(Dec  6 10:46:36) at the start of the line; it has no year, so the year is the one that
            puts the stamp not after O(now).
          - V(nginx) or V(common-log) reads C([06/Dec/2026:10:46:36 +0000]).
          - A format without a year is read like V(syslog).
        type: str
        default: iso8601
      regex:
        description:
          - Regular expression whose first group is the stamp. Default from the preset, or made from the format
            (the first text in the line that looks like it).
        type: str
      timezone:
        description: IANA timezone of stamps without an offset.
        type: str
        default: UTC
  newest_lines:
    description: How many of the newest matching lines of each pattern the record keeps (0 for none).
    type: int
    default: 5
  line_max_chars:
    description: Kept lines are cut to this many characters (after redaction), with C(...) appended.
    type: int
    default: 200
  redact:
    description:
      - Extra regular expressions whose text is replaced by C(<redacted>) in the kept lines (the first group's
        text when the regex has groups, else the whole match), for example V(patient_id=(\\d+)).
      - "Always redacted, whatever this says: the values of C(password=), C(token=), C(secret=), C(api_key=) and
        the like (also as C(key: value) and in URL queries), C(Authorization) headers and C(Bearer) tokens, cookies,
        passwords in URLs (C(scheme://user:password@)), JSON web tokens and AWS access key ids."
    type: list
    elements: str
    default: []
  now:
    description:
      - End of the window instead of the real clock, ISO 8601 with an offset or V(Z) (V(2026-12-06T10:46:36Z)).
      - For tests and reproducible runs; default is the current time.
    type: str
notes:
  - Lines are split at newlines and read as UTF-8 (bad bytes replaced); a line longer than 1 MiB is matched on
    its first 1 MiB.
  - A matching line without a timestamp the format reads is counted in RV(ignore:records[].after.unparsed), not in
    the count; when no matching line has one, the record is V(unknown).
author:
  - streamops maintainers (@streamops)
"""

EXAMPLES = r"""
- name: Failed logins in the last 24 hours (the guide's grep "Failed login" auth.log)
  streamops.maintenance.log_pattern_review:
    files: [/var/log/vitalstream/auth.log]
    patterns:
      - {name: failed_logins, regex: "Failed password|Failed login|authentication failure", max: 20}
    timestamp: {format: syslog, timezone: America/New_York}
  register: auth_review

- name: Injection markers in security.log and its rotated files, none allowed
  streamops.maintenance.log_pattern_review:
    files: [/var/log/vitalstream/security.log]
    patterns:
      - {name: injection_markers, regex: "SQL injection|XSS|CSRF"}
    hours: 168
    redact: ['patient_id=(\d+)']

- name: nginx access log, rotated files kept elsewhere
  streamops.maintenance.log_pattern_review:
    files:
      - path: /var/log/nginx/access.log
        rotated: [/var/log/archive/nginx/access.log-*.gz]
    patterns:
      - {name: admin_probes, regex: '"(?:GET|POST) /(?:wp-admin|phpmyadmin)', max: 100}
    timestamp: {format: nginx}
"""

RETURN = r"""
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
msg:
  description: How many logs and patterns were reviewed, and which records are not V(ok).
  returned: always
  type: str
  sample: "1 log(s), 1 pattern(s), last 24h: breach: /var/log/vitalstream/auth.log failed_logins"
records:
  description:
    - One record per log and pattern, name C(<path> <pattern name>), action V(log_pattern); see C(docs/records.md).
    - C(status) is V(ok), V(breach) (more than C(max)), V(unknown) (the log does not exist, or no matching line
      has a timestamp the format reads) or V(failed) (a file could not be read).
    - C(after) has C(count) (null when nothing was read), C(max), C(hours), C(since), C(until), C(files_read)
      (rotated files included, oldest first), C(files_skipped) (rotated files older than the window, not opened),
      C(lines_read), C(unparsed), C(first_seen), C(last_seen) (UTC), C(newest) (the newest matching lines, oldest
      of them first, redacted and truncated) and, unless V(ok), C(remedy) (what to do about it).
  returned: always
  type: list
  elements: dict
  sample:
    - name: /var/log/vitalstream/auth.log failed_logins
      action: log_pattern
      status: breach
      detail: "3 matching line(s) in the last 24h (since 2026-12-05T10:46:36+00:00), over the limit of 0;
        2 file(s), 48210 line(s) read"
      before: null
      after:
        count: 3
        max: 0
        hours: 24.0
        since: "2026-12-05T10:46:36+00:00"
        until: "2026-12-06T10:46:36+00:00"
        files_read: [/var/log/vitalstream/auth.log.1, /var/log/vitalstream/auth.log]
        files_skipped: [/var/log/vitalstream/auth.log.2.gz]
        lines_read: 48210
        unparsed: 0
        first_seen: "2026-12-05T23:10:02+00:00"
        last_seen: "2026-12-06T09:41:17+00:00"
        newest:
          - "2026-12-06T09:41:17Z sshd[812]: Failed password for root from 203.0.113.9 port 52144 ssh2"
        remedy: "Investigate the 'failed_logins' lines in /var/log/vitalstream/auth.log (newest listed) and stop
          their source; raise max only if this many is normal."
      seconds: 0.41
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.streamops.maintenance.plugins.module_utils.log_pattern_review import run_log_pattern_review
from ansible_collections.streamops.maintenance.plugins.module_utils.module_runner import run_and_exit


def argument_spec() -> dict:
    return dict(
        files=dict(type="list", elements="raw", required=True),
        patterns=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            regex=dict(type="str", required=True),
            max=dict(type="int", default=0),
        )),
        hours=dict(type="float", default=24),
        timestamp=dict(type="dict", default={}, apply_defaults=True, options=dict(
            format=dict(type="str", default="iso8601"),
            regex=dict(type="str"),
            timezone=dict(type="str", default="UTC"),
        )),
        newest_lines=dict(type="int", default=5),
        line_max_chars=dict(type="int", default=200),
        redact=dict(type="list", elements="str", default=[]),
        now=dict(type="str"),
    )


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_and_exit(module, run_log_pattern_review, {})


if __name__ == "__main__":
    main()
