# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn module results into the report records the maintenance_report callback reads.

A record is a dict: role, name, action, status (ok, planned, changed, skipped,
breach, failed), detail (one line with the real figures), and optional before
and after. Roles keep their records in a fact named ``<role>_report_entries``.
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

_PG_STATUS = {"done": "changed", "planned": "planned", "skipped": "skipped", "would skip": "skipped",
              "failed": "failed", "not started": "skipped", "unchanged": "ok"}


def _size(value):
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _loop_item(result, key):
    """The operation of a looped step: the loop item, or item[key] when items are dicts."""
    item = result.get("item")
    return item.get(key) if isinstance(item, dict) else item


def _pg_table_detail(record):
    if record.get("action") == "reset_sequences":
        if record.get("status") in ("done", "planned"):
            return "last_value {0} -> {1} (max of {2}.{3})".format(
                record.get("last_value"), record.get("new_value") or record.get("column_max"),
                record.get("table"), record.get("column"))
        return record.get("reason") or "not behind its column"
    parts = []
    if record.get("status") == "done":
        if record.get("action") != "reindex":
            parts.append("dead tuples {0} -> {1}".format(record.get("dead_tuples_before"),
                                                         record.get("dead_tuples_after")))
        parts.append("size {0} -> {1}".format(_size(record.get("size_before")), _size(record.get("size_after"))))
        if record.get("duration_s") is not None:
            parts.append("{0:g} s".format(record["duration_s"]))
    else:
        parts.append("dead tuples {0}, size {1}".format(record.get("dead_tuples_before"), _size(record.get("size_before"))))
        if record.get("estimated_duration_s") is not None:
            parts.append("about {0:g} s".format(record["estimated_duration_s"]))
        if record.get("lock"):
            parts.append("lock " + str(record["lock"]).split(" (", maxsplit=1)[0])
    if record.get("reason"):
        parts.append(str(record["reason"]))
    return ", ".join(parts)


def pg_step_entries(result, role="postgres_routine"):
    """Records of one pg_maintenance result (a looped step whose item is the operation)."""
    if not isinstance(result, dict):
        raise AnsibleFilterError(f"pg_step_entries expects a module result (dict), got {type(result).__name__}")
    operation = _loop_item(result, "operation") or result.get("invocation", {}).get("module_args", {}).get("operation")
    if result.get("skipped"):
        return [{"role": role, "name": operation, "action": operation, "status": "skipped",
                 "detail": "skipped: " + str(result.get("skip_reason", "condition false"))}]
    tables = result.get("tables") or []
    records = []
    for record in tables:
        if record.get("action") == "reset_sequences" and record.get("status") == "unchanged":
            continue  # sequences already in step are not worth a line each
        records.append({
            "role": role, "name": record.get("name"), "action": record.get("action") or operation,
            "status": _PG_STATUS.get(record.get("status"), "ok"), "detail": _pg_table_detail(record),
            "before": {"dead_tuples": record.get("dead_tuples_before"), "bytes": record.get("size_before")},
            "after": {"dead_tuples": record.get("dead_tuples_after"), "bytes": record.get("size_after")},
        })
    if result.get("failed"):
        records.append({"role": role, "name": operation, "action": operation, "status": "failed",
                        "detail": str(result.get("msg", "failed"))})
    elif not records:
        left_out = result.get("left_out") or []
        detail = str(result.get("msg") or "nothing to do")
        if left_out and "left out" not in detail:
            detail += f" ({len(left_out)} table(s) under the thresholds)"
        records.append({"role": role, "name": operation, "action": operation, "status": "ok", "detail": detail})
    return records


def _ratio(memory):
    ratio = (memory or {}).get("ratio")
    return "n/a" if ratio is None else f"{ratio:.1%}"


def redis_step_entries(result, role="redis_routine", name="redis", check_mode=False):
    """Records of one redis_memory_guard result."""
    if not isinstance(result, dict):
        raise AnsibleFilterError(f"redis_step_entries expects a module result (dict), got {type(result).__name__}")
    operation = _loop_item(result, "operation") or result.get("invocation", {}).get("module_args", {}).get("operation")
    if result.get("skipped"):
        return []
    if result.get("failed"):
        return [{"role": role, "name": name, "action": operation, "status": "failed",
                 "detail": str(result.get("msg", "failed"))}]
    before, after = result.get("memory_before") or result.get("memory"), result.get("memory_after")
    changed = bool(result.get("changed"))
    status = "ok" if not changed else ("planned" if check_mode else "changed")
    record = {"role": role, "name": name, "action": "check" if operation == "report" else operation,
              "status": status, "detail": str(result.get("msg") or "")}
    if before:
        record["before"] = {"used_memory": before.get("used_memory"), "ratio": before.get("ratio")}
        record["detail"] = f"memory {_ratio(before)}" + (f" -> {_ratio(after)}" if after else "") + \
            (f"; {record['detail']}" if record["detail"] else "")
    if after:
        record["after"] = {"used_memory": after.get("used_memory"), "ratio": after.get("ratio")}
    if result.get("deleted") is not None:
        record["deleted"] = result["deleted"]
    return [record]


class FilterModule:
    def filters(self):
        return {"pg_step_entries": pg_step_entries, "redis_step_entries": redis_step_entries}
