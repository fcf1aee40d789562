# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""What logrotate did, and how many error lines the services logged: records (docs/records.md).

The log_maintenance role runs logrotate and reads container and pod logs; these plain
functions read that output and judge it, through the filters of the same names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .records import make_record

_ROTATING = re.compile(r"^rotating log (.*?)(?:, log->rotateCount is .*)?$")


def logrotate_records(config: str, rc: int, lines: Iterable[str], *, check_mode: bool,
                      forced: bool = False) -> list[dict[str, Any]]:
    """One record for one logrotate run: done (rotated), planned (check mode: would rotate), unchanged, failed."""
    output = list(lines)
    rotated = [match.group(1) for match in map(_ROTATING.match, output) if match]
    considered = sum(1 for line in output if line.startswith("considering log "))
    note = " (forced)" if forced else ""
    if rc != 0:
        shown = [line for line in output if "error" in line.lower()] or output[-3:]
        return [make_record(config, "logrotate", "failed", f"logrotate exited {rc}: {' / '.join(shown)[:300]}")]
    if not rotated:
        return [make_record(config, "logrotate", "unchanged",
                            f"{considered} log(s) considered, none needed rotating{note}",
                            after={"considered": considered, "rotated": []})]
    verb = "would rotate" if check_mode else "rotated"
    return [make_record(config, "logrotate", "planned" if check_mode else "done",
                        f"{verb} {len(rotated)} of {considered} log(s): {', '.join(rotated)}{note}",
                        after={"considered": considered, "rotated": rotated})]


def error_count_record(source: str, lines: Iterable[str] | None, *, pattern: str, hours: int,
                       limit: int | None, error: str | None = None) -> dict[str, Any]:
    """Error lines of one container's or pod's log of the last ``hours``: ok, breach over ``limit``, failed unread."""
    if error is not None:
        return make_record(source, "errors", "failed", f"could not read the log: {error.strip()[:200]}")
    try:
        matcher = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"error pattern {pattern!r} is not a regular expression: {exc}") from exc
    lines = list(lines or [])
    errors = sum(1 for line in lines if matcher.search(line))
    breached = limit is not None and errors > limit
    detail = (f"{errors} error line(s) of {len(lines)} in the last {hours}h "
              f"({'no limit' if limit is None else f'limit {limit}'})")
    return make_record(source, "errors", "breach" if breached else "ok", detail,
                       after={"errors": errors, "lines": len(lines)})


def nothing_read_record(where: str, what: str) -> dict[str, Any]:
    """No log was there to read: nothing was counted, which is not the same as no errors."""
    return make_record(where, "errors", "unknown", f"no {what} to read logs from: no error count")
