# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the role layer: gather records, judge the command output roles read, say what failed.

The logic is in plugins/module_utils (records, health, log_review, pg_compliance) and unit-tested there; these
functions only take registered task results apart. Each filter has its documentation in the
YAML file of its name beside this one.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.streamops.maintenance.plugins.module_utils import health, log_review, pg_compliance
from ansible_collections.streamops.maintenance.plugins.module_utils import records as contract
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError
from ansible_collections.streamops.maintenance.plugins.module_utils.window import parse_now, utc_now


def _results(registered: Any, what: str) -> list[Mapping[str, Any]]:
    """The items of a looped registered result (a plain result is one item)."""
    if not isinstance(registered, Mapping):
        raise AnsibleFilterError(f"{what} expects a registered task result, got {type(registered).__name__}")
    if registered.get("skipped") and "results" not in registered:
        return []
    items = registered.get("results") if isinstance(registered.get("results"), list) else [registered]
    return [item for item in items if isinstance(item, Mapping) and not item.get("skipped")]


def _command_error(result: Mapping[str, Any]) -> str | None:
    if result.get("failed") or result.get("rc", 0) != 0:
        return str(result.get("stderr") or result.get("msg") or f"exit {result.get('rc')}")
    return None


def _gathered(results: Any, what: str, name: str | None = None) -> list[dict[str, Any]]:
    try:
        return contract.gather_records(results, name=name)
    except TypeError as exc:
        raise AnsibleFilterError(f"{what}: {exc}") from exc  # names the filter the play called


def records(results: Any, name: str | None = None) -> list[dict[str, Any]]:
    return _gathered(results, "records", name)


def problems(found: Any, statuses: Any = None) -> list[dict[str, Any]]:
    return contract.problems(_gathered(found, "problems"), statuses or contract.PROBLEM_STATUSES)


def problems_text(found: Any, what: str = "problem(s)", statuses: Any = None) -> str:
    return contract.problems_text(_gathered(found, "problems_text"), what, statuses or contract.PROBLEM_STATUSES)


def compare_records(before: Any, after: Any, action: str | None = None, check_mode: bool = False,
                    keys: Any = None) -> list[dict[str, Any]]:
    return contract.compare_records(_gathered(before, "compare_records"), _gathered(after, "compare_records"),
                                    check_mode=bool(check_mode), keys=keys, action=action)


def pod_records(registered: Any) -> list[dict[str, Any]]:
    """``kubectl get pods -o json`` looped over namespaces (the loop item is the namespace)."""
    found = []
    for result in _results(registered, "pod_records"):
        namespace = str(result.get("item"))
        error = _command_error(result)
        if error is not None:
            found += health.pod_records(namespace, None, error=error)
            continue
        try:
            pods = json.loads(result.get("stdout") or "{}").get("items") or []
        except ValueError as exc:
            found += health.pod_records(namespace, None, error=f"kubectl printed no JSON: {exc}")
            continue
        found += health.pod_records(namespace, pods)
    return found


def tls_secret_texts(registered: Any) -> list[dict[str, str]]:
    """``name<TAB>tls.crt`` lines of kubectl, looped over namespaces, as certificate texts (failed listings left out)."""
    texts = []
    for result in _results(registered, "tls_secret_texts"):
        if _command_error(result) is None:
            texts += health.tls_secret_texts(str(result.get("item")), result.get("stdout_lines") or [])
    return texts


def compose_service_records(registered: Any, project: str, expected: Any = None) -> list[dict[str, Any]]:
    """``docker ps --format`` one JSON object per container: {service, name, state, status}."""
    results = _results(registered, "compose_service_records")
    if not results:
        return []
    result = results[0]
    error = _command_error(result)
    if error is not None:
        return health.compose_service_records(project, None, error=error)
    try:
        containers = [json.loads(line) for line in result.get("stdout_lines") or [] if line.strip()]
    except ValueError as exc:
        return health.compose_service_records(project, None, error=f"docker ps printed no JSON: {exc}")
    return health.compose_service_records(project, containers, expected or [])


def logrotate_records(registered: Any, check_mode: bool = False, forced: bool = False) -> list[dict[str, Any]]:
    """One logrotate run per configuration (the loop item); its messages are on stderr and stdout."""
    found = []
    for result in _results(registered, "logrotate_records"):
        lines = list(result.get("stderr_lines") or []) + list(result.get("stdout_lines") or [])
        found += log_review.logrotate_records(str(result.get("item")), int(result.get("rc", 1)), lines,
                                              check_mode=bool(check_mode), forced=bool(forced))
    return found


def log_error_records(registered: Any, kind: str, pattern: str, hours: Any, limit: Any = None,
                      where: str | None = None) -> list[dict[str, Any]]:
    """Error lines per log read: ``kind`` compose (loop items are docker inspect objects) or pod (pod objects).

    A read of no log at all (the loop was empty) is one ``unknown`` record for ``where``: nothing was counted.
    """
    if kind not in ("compose", "pod"):
        raise AnsibleFilterError(f"log_error_records: kind {kind!r} must be compose or pod")
    try:
        limit, hours = None if limit in (None, "") else int(limit), int(hours)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"log_error_records: limit {limit!r} and hours {hours!r} must be whole numbers"
                                 ) from exc
    found = []
    results = _results(registered, "log_error_records")
    if not results and where:
        return [log_review.nothing_read_record(where, "containers" if kind == "compose" else "pods")]
    for result in results:
        item = result.get("item") or {}
        if kind == "compose":
            container = str(item.get("Name", "?")).lstrip("/")
            service = ((item.get("Config") or {}).get("Labels") or {}).get("com.docker.compose.service", "?")
            source = f"service {service} ({container})"
            lines = list(result.get("stdout_lines") or []) + list(result.get("stderr_lines") or [])
        else:
            source = f"pod {(item.get('metadata') or {}).get('name', '?')}"
            # kubectl writes the log to stdout; stderr holds only its own messages.
            lines = list(result.get("stdout_lines") or [])
        try:
            found.append(log_review.error_count_record(source, lines, pattern=pattern, hours=hours, limit=limit,
                                                       error=_command_error(result)))
        except ValueError as exc:
            raise AnsibleFilterError(f"log_error_records: {exc}") from exc
    return found


def audit_event_records(source: Any, hours: Any = 24, now: Any = None, time_key: str = "timestamp",
                        verb_key: str | None = None, name: str = "audit-logger") -> list[dict[str, Any]]:
    """The audit-logger's JSON log lines (``kubectl logs --since=24h``): registered, a list of lines, or the text.

    A registered looped result gives a record per item (``name item``); a skipped task gives none.
    """
    try:
        hours = int(hours)
        instant = utc_now() if now in (None, "") else parse_now(now)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"audit_event_records: hours {hours!r} must be a whole number: {exc}") from exc
    except MaintenanceError as exc:
        raise AnsibleFilterError(f"audit_event_records: {exc.msg}") from exc
    if isinstance(source, str):
        sources = [(name, source.splitlines(), None)]
    elif isinstance(source, (list, tuple)):
        sources = [(name, [str(line) for line in source], None)]
    else:
        results = _results(source, "audit_event_records")
        looped = isinstance(source.get("results"), list)
        # kubectl writes the log to stdout; stderr holds only its own messages.
        sources = [(f"{name} {result.get('item')}" if looped else name, list(result.get("stdout_lines") or []),
                    _command_error(result)) for result in results]
    try:
        return [pg_compliance.audit_event_record(lines, hours=hours, now=instant, time_key=time_key,
                                                 verb_key=verb_key or None, source=where, error=error)
                for where, lines, error in sources]
    except ValueError as exc:
        raise AnsibleFilterError(f"audit_event_records: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "records": records, "problems": problems, "problems_text": problems_text,
            "compare_records": compare_records, "pod_records": pod_records, "tls_secret_texts": tls_secret_texts,
            "compose_service_records": compose_service_records, "logrotate_records": logrotate_records,
            "log_error_records": log_error_records, "audit_event_records": audit_event_records,
        }
