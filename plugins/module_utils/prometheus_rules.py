# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""prometheus_rules: deploy rule files to a Prometheus (validate, write atomically, reload, confirm, roll back)
and read its health (ready, last reload, rule health, expected groups, firing alerts).

Records (docs/records.md): one per rule file (action ``deploy``) and one ``reload`` for V(deploy);
``healthy``, ``ready``, ``reload_status``, one per rule group (``rules``), one per missing expected
group and ``alerts`` for V(status).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import signal
import subprocess
import tempfile
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from .files import write_atomically
from .prometheus_conn import PrometheusClient, PrometheusError, locate_promtool
from .records import is_changed, make_record

try:
    import yaml
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    yaml = None
    YAML_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    YAML_IMPORT_ERROR = None

OPERATIONS = ("deploy", "status")
RELOADS = ("lifecycle", "sighup", "none")
# A plain file name the server's `*.yml` / `*.yaml` glob reads; never hidden (our temp files are).
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*\.ya?ml$")


class RulesError(PrometheusError):
    """Bad input, a rules file promtool refuses, or a deployment that could not be confirmed."""


# --------------------------------------------------------------------------- input


def validate(params: dict[str, Any]) -> dict[str, Any]:
    """Bad input fails before anything is read from the server or written, naming the bad value."""
    operation = params["operation"]
    if operation == "status":
        groups = params.get("expected_groups") or []
        empty = [g for g in groups if not str(g).strip()]
        if empty:
            raise RulesError(msg="expected_groups has an empty group name")
        return {}
    files = params.get("rule_files") or []
    if not files:
        raise RulesError(msg="operation deploy needs rule_files (a list of {name, src or content})")
    seen: set[str] = set()
    for entry in files:
        check_name(entry.get("name"))
        if entry["name"] in seen:
            raise RulesError(msg=f"rule_files names {entry['name']!r} twice")
        seen.add(entry["name"])
        if (entry.get("src") is None) == (entry.get("content") is None):
            raise RulesError(msg=f"rule file {entry['name']!r} needs exactly one of src or content")
    rules_dir = params.get("rules_dir")
    if not rules_dir:
        raise RulesError(msg="operation deploy needs rules_dir, the directory the server's rule_files glob reads")
    if not os.path.isabs(rules_dir):
        raise RulesError(msg=f"rules_dir must be an absolute path, got {rules_dir!r}")
    if not os.path.isdir(rules_dir):
        raise RulesError(msg=f"rules_dir {rules_dir} does not exist (or is not a directory): it is the directory "
                             "the server's rule_files glob reads, which the module does not create")
    if params["reload"] == "sighup":
        if not params.get("pid_file"):
            raise RulesError(msg="reload sighup needs pid_file, the Prometheus server's pid file")
        read_pid(params["pid_file"])
    return {"promtool": find_promtool(params.get("promtool"))}


def check_name(name: Any) -> str:
    """A rule file name the server's glob reads: plain, not hidden, ending .yml or .yaml."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RulesError(msg=f"rule file name {name!r} must be a plain file name (no slashes, not hidden) "
                             "ending .yml or .yaml")
    return name


def find_promtool(given: str | None) -> str:
    """The promtool every deploy checks its files with: without one nothing may be written."""
    try:
        found = locate_promtool(given)
    except PrometheusError as exc:
        raise RulesError(msg=exc.msg) from exc
    if found is None:
        raise RulesError(msg="promtool not found on PATH: install it (Debian package `prometheus`) or set promtool")
    return found


def read_pid(pid_file: str) -> int:
    try:
        text = open(pid_file, encoding="utf-8").read().strip()  # noqa: SIM115 - a few bytes
    except OSError as exc:
        raise RulesError(msg=f"cannot read pid_file {pid_file}: {exc.strerror or exc}") from exc
    if not text.isdigit() or int(text) <= 1:
        raise RulesError(msg=f"pid_file {pid_file} does not hold a process id (found {text[:40]!r})")
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError as exc:
        raise RulesError(msg=f"no process {pid} (from pid_file {pid_file}): is Prometheus running?") from exc
    except PermissionError:
        pass  # it exists; the SIGHUP itself will say whether we may signal it
    return pid


def wanted_contents(files: list[dict[str, Any]]) -> dict[str, bytes]:
    """name -> the bytes to deploy (``src`` read on the managed node, ``content`` as UTF-8 ending in a newline)."""
    wanted: dict[str, bytes] = {}
    for entry in files:
        if entry.get("content") is not None:
            text = str(entry["content"])
            # Ansible's file lookup strips the final newline: without it, the same rules read back from a file
            # would differ by one byte and be rewritten (and Prometheus reloaded) on every run.
            wanted[entry["name"]] = (text if text.endswith("\n") or not text else text + "\n").encode("utf-8")
            continue
        try:
            with open(entry["src"], "rb") as handle:
                wanted[entry["name"]] = handle.read()
        except OSError as exc:
            raise RulesError(msg=f"cannot read src {entry['src']} of rule file {entry['name']!r}: "
                                 f"{exc.strerror or exc}") from exc
    return wanted


def _groups(content: bytes) -> list[Any]:
    """The ``groups`` list of a rules file; [] for a file that is not one (an old file found in rules_dir)."""
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError:
        return []
    groups = data.get("groups") if isinstance(data, dict) else None
    return groups if isinstance(groups, list) else []


def group_names(content: bytes) -> list[str]:
    """The group names of a rules file."""
    return [str(group.get("name")) for group in _groups(content) if isinstance(group, dict)]


def rule_names(content: bytes) -> dict[str, list[str]]:
    """group name -> its rules' alert/record names, in order."""
    data = {"groups": _groups(content)}
    return {str(group.get("name")): [str(rule.get("alert") or rule.get("record")) for rule in group.get("rules") or []]
            for group in data.get("groups") or [] if isinstance(group, dict)}


def promtool_check(promtool: str, name: str, content: bytes) -> tuple[bool, str]:
    """``promtool check rules`` on a temp copy outside rules_dir: (valid, promtool's output with the temp path as name)."""
    with tempfile.TemporaryDirectory(prefix="streamops-rules-") as scratch:
        path = os.path.join(scratch, name)
        with open(path, "wb") as handle:
            handle.write(content)
        proc = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True,  # noqa: S603
                              stdin=subprocess.DEVNULL, timeout=120, check=False)
    output = (proc.stdout + proc.stderr).replace(path, name).strip()
    return proc.returncode == 0, output


def promtool_error(output: str) -> str:
    """The lines that say what is wrong (promtool prints a banner and a FAILED line around them)."""
    lines = [line.strip() for line in output.splitlines()
             if line.strip() and not line.startswith("Checking ") and "FAILED" not in line]
    return "; ".join(lines)[:800] or output[:800]


def sha256(content: bytes | None) -> str | None:
    return None if content is None else hashlib.sha256(content).hexdigest()


def file_facts(content: bytes | None) -> dict[str, Any] | None:
    if content is None:
        return None
    return {"sha256": sha256(content), "size": len(content), "groups": group_names(content)}


def text_diff(path: str, before: bytes | None, after: bytes) -> dict[str, str]:
    return {"before_header": path if before is not None else "(absent)", "after_header": path,
            "before": (before or b"").decode("utf-8", errors="replace"),
            "after": after.decode("utf-8", errors="replace")}


def short_diff(before: bytes | None, after: bytes, limit: int = 6) -> str:
    if before is None:
        return "new file"
    lines = [line for line in difflib.unified_diff(before.decode("utf-8", "replace").splitlines(),
                                                   after.decode("utf-8", "replace").splitlines(), lineterm="", n=0)
             if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    if not lines:
        return "only the line endings or the final newline differ"
    shown = "; ".join(line.strip() for line in lines[:limit])
    return f"{len(lines)} line(s) differ: {shown}" + (" ..." if len(lines) > limit else "")


# --------------------------------------------------------------------------- server


def parse_time(value: Any) -> float | None:
    """A Prometheus RFC 3339 time (``2026-12-06T14:19:43Z``, maybe with nanoseconds) in epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if not match:
        return None
    fraction = (match.group(2) or "")[:7]
    try:
        moment = datetime.fromisoformat(match.group(1) + fraction + (match.group(3) or "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def runtime_info(client: PrometheusClient) -> dict[str, Any]:
    data = client.get_json("/api/v1/status/runtimeinfo") or {}
    return {"reload_config_success": data.get("reloadConfigSuccess"),
            "last_config_time": data.get("lastConfigTime"),
            "last_config_epoch": parse_time(data.get("lastConfigTime"))}


def loaded_groups(client: PrometheusClient) -> list[dict[str, Any]]:
    return list((client.get_json("/api/v1/rules") or {}).get("groups") or [])


def _same_path(server_file: str, path: str) -> bool:
    if server_file == path:
        return True
    try:
        return os.path.realpath(server_file) == os.path.realpath(path)
    except (OSError, ValueError):
        return False


def missing_groups(groups: list[dict[str, Any]], expected: dict[str, dict[str, list[str]]]) -> list[str]:
    """``file: group`` for every expected group (with its rule names) that the server has not loaded from that file.

    ``expected``: the server-side path of each file -> {group name: rule names}.
    """
    missing = []
    for path, wanted in expected.items():
        for group, rules in wanted.items():
            found = [g for g in groups if g.get("name") == group and _same_path(str(g.get("file", "")), path)]
            if not found:
                missing.append(f"{os.path.basename(path)}: {group}")
                continue
            names = [str(r.get("name")) for r in found[0].get("rules") or []]
            if names != rules:
                missing.append(f"{os.path.basename(path)}: {group} (loaded rules {names}, want {rules})")
    return missing


def send_reload(client: PrometheusClient, how: str, pid_file: str | None) -> str:
    """Ask the server to reload; returns the command, for ``executed``. PrometheusError/RulesError on refusal."""
    if how == "lifecycle":
        client.post("/-/reload")
        return f"POST {client.url}/-/reload"
    pid = read_pid(pid_file or "")
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise RulesError(msg=f"cannot send SIGHUP to Prometheus (pid {pid}): {exc.strerror or exc}") from exc
    return f"kill -HUP {pid}"


def reload_and_confirm(client: PrometheusClient, how: str, pid_file: str | None, expected: dict[str, Any], *,
                       timeout: float, executed: list[str]) -> dict[str, Any]:
    """Reload, then wait until the server says the reload succeeded after ours started and every group is loaded.

    RulesError/PrometheusError saying what the server reports otherwise.
    """
    before = runtime_info(client)
    # lastConfigTime has whole seconds: start in a later second than the last load, so "after ours" is decidable.
    if before["last_config_epoch"] is not None and int(time.time()) <= int(before["last_config_epoch"]):
        time.sleep(max(0.0, int(before["last_config_epoch"]) + 1.05 - time.time()))
    started = int(time.time())
    lost = ""
    try:
        executed.append(send_reload(client, how, pid_file))
    except PrometheusError as exc:
        if how != "lifecycle" or exc.details.get("status") is not None:
            raise
        # No answer (a broken connection, a timeout) is no refusal: the POST may have reached the server and only
        # its answer been lost. runtimeinfo says whether it reloaded; rolling back a reload that happened would
        # need one more reload, which may fail too and leave the server running other rules than the disk holds.
        executed.append(f"POST {client.url}/-/reload (no answer)")
        lost = f"the reload POST got no answer ({exc.msg}); "
    deadline = time.monotonic() + timeout
    info, missing = before, ["(not read yet)"]
    while True:
        try:
            info = runtime_info(client)
        except PrometheusError as exc:
            if lost:
                raise PrometheusError(msg=f"{lost}then {exc.msg}", url=client.url) from exc
            raise
        fresh = info["last_config_epoch"] is not None and info["last_config_epoch"] >= started
        if info["reload_config_success"] is False and (how == "lifecycle" or before["reload_config_success"]):
            raise RulesError(msg="Prometheus reports its configuration reload failed (reloadConfigSuccess false); "
                                 "see its log", runtime=info)
        if info["reload_config_success"] and fresh:
            try:
                missing = missing_groups(loaded_groups(client), expected)
            except PrometheusError as exc:
                if lost:
                    raise PrometheusError(msg=f"{lost}then {exc.msg}", url=client.url) from exc
                raise
            if not missing:
                return {**info, "reload_answer_lost": True} if lost else info
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if not (info["reload_config_success"] and info["last_config_epoch"] is not None
            and info["last_config_epoch"] >= started):
        raise RulesError(msg=f"{lost}Prometheus did not report a successful reload within {timeout:.0f}s "
                             f"(reloadConfigSuccess {info['reload_config_success']}, lastConfigTime "
                             f"{info['last_config_time']})", runtime=info)
    raise RulesError(msg=f"{lost}after the reload Prometheus has not loaded group(s) {', '.join(missing)} "
                         "(does the server's rule_files glob read these files?)", runtime=info)


# --------------------------------------------------------------------------- deploy


def run_prometheus_rules(params: dict[str, Any], *, check_mode: bool, diff_mode: bool = False) -> dict[str, Any]:
    parsed = validate(params)
    client = PrometheusClient.from_params(params)
    if params["operation"] == "status":
        return status(client, params)
    return deploy(client, params, parsed["promtool"], check_mode=check_mode, diff_mode=diff_mode)


def deploy(client: PrometheusClient, params: dict[str, Any], promtool: str, *, check_mode: bool,
           diff_mode: bool) -> dict[str, Any]:
    rules_dir, how = params["rules_dir"], params["reload"]
    server_dir = params.get("server_rules_dir") or rules_dir
    wanted = wanted_contents(params["rule_files"])
    executed: list[str] = []
    # 1. Every file passes promtool, or nothing is written.
    refused = []
    for name, content in wanted.items():
        ok, output = promtool_check(promtool, name, content)
        executed.append(f"promtool check rules {name}")
        if not ok:
            refused.append((name, promtool_error(output)))
    if refused:
        records = [make_record(name, "deploy", "failed", f"promtool check rules: {error}; nothing was written",
                               before=file_facts(_read(os.path.join(rules_dir, name))))
                   for name, error in refused]
        raise RulesError(msg="promtool check rules refused " + "; ".join(f"{n}: {e}" for n, e in refused)
                             + f". Nothing was written to {rules_dir} and Prometheus was not reloaded",
                         records=records, executed=executed, changed=False)
    # 2. Compare with what is there.
    current = {name: _read(os.path.join(rules_dir, name)) for name in wanted}
    changed_names = [name for name, content in wanted.items() if current[name] != content]
    expected = {os.path.join(server_dir, name): rule_names(content) for name, content in wanted.items()}
    # 3. The server must answer before anything is written (unless it is not to be reloaded).
    info = runtime_info(client) if how != "none" else None
    records = []
    diffs = []
    for name, content in wanted.items():
        path = os.path.join(rules_dir, name)
        if name not in changed_names:
            records.append(make_record(name, "deploy", "unchanged", f"{path} already holds these rules",
                                       before=file_facts(current[name]), after=file_facts(content)))
            continue
        if diff_mode:
            diffs.append(text_diff(path, current[name], content))
        why = short_diff(current[name], content)
        records.append(make_record(name, "deploy", "planned" if check_mode else "done",
                                   (f"would write {path}: " if check_mode else f"wrote {path}: ") + why,
                                   before=file_facts(current[name]), after=file_facts(content)))
    result: dict[str, Any] = {"executed": executed}
    if diff_mode and diffs:
        result["diff"] = diffs
    if not changed_names:
        reload_record = _reload_when_unchanged(client, how, params, expected, info, check_mode=check_mode,
                                               executed=executed)
        records.append(reload_record)
        return _finish(result, records, reload_record)
    if check_mode:
        reload_record = make_record(_server(client), "reload", "planned" if how != "none" else "skipped",
                                    f"would reload ({how}) and confirm {_count(expected)} group(s) are loaded"
                                    if how != "none" else "reload none: the server reads the files on its next reload",
                                    before=info)
        records.append(reload_record)
        return _finish(result, records, reload_record)
    # 4. Write atomically, keeping the old contents.
    written: list[str] = []
    try:
        for name in changed_names:
            write_atomically(os.path.join(rules_dir, name), wanted[name], mode=_mode(rules_dir, name))
            written.append(name)
    except OSError as exc:
        restore_error = _restore(rules_dir, written, current)
        for record in records:
            if record["status"] == "done":
                record.update(status="failed", detail=f"not deployed: writing {rules_dir} failed ({exc.strerror or exc})")
        raise RulesError(msg=f"writing the rule files to {rules_dir} failed: {exc.strerror or exc}; "
                             + (f"{', '.join(written)} put back as they were" if not restore_error
                                else f"putting back {', '.join(written)} failed too: {restore_error}")
                             + "; Prometheus was not reloaded", records=records, executed=executed) from exc
    if how == "none":
        reload_record = make_record(_server(client), "reload", "skipped",
                                    "reload none: the server loads the new files on its next reload")
        records.append(reload_record)
        return _finish(result, records, reload_record)
    # 5. Reload and confirm; on any failure put the old files back and reload again.
    started = time.monotonic()
    try:
        after = reload_and_confirm(client, how, params.get("pid_file"), expected, timeout=params["timeout"],
                                   executed=executed)
    except PrometheusError as exc:
        return _roll_back(client, params, result, records, current, changed_names, exc, started)
    lost = "; the reload POST got no answer, runtimeinfo confirmed the reload" if after.get("reload_answer_lost") else ""
    reload_record = make_record(_server(client), "reload", "done",
                                f"reloaded ({how}); {_count(expected)} group(s) of {len(expected)} file(s) loaded{lost}",
                                before=info, after=after, seconds=time.monotonic() - started)
    records.append(reload_record)
    return _finish(result, records, reload_record)


def _reload_when_unchanged(client: PrometheusClient, how: str, params: dict[str, Any], expected: dict[str, Any],
                           info: dict[str, Any] | None, *, check_mode: bool, executed: list[str]) -> dict[str, Any]:
    """Files already in place: no reload, unless the server has not loaded them (then load them)."""
    if how == "none":
        return make_record(_server(client), "reload", "unchanged", "no file changed; reload none")
    missing = missing_groups(loaded_groups(client), expected)
    if not missing:
        return make_record(_server(client), "reload", "unchanged",
                           f"no file changed and all {_count(expected)} group(s) are loaded: no reload", before=info)
    if check_mode:
        return make_record(_server(client), "reload", "planned",
                           f"files in place but not loaded ({', '.join(missing)}): would reload ({how})", before=info)
    started = time.monotonic()
    try:
        after = reload_and_confirm(client, how, params.get("pid_file"), expected, timeout=params["timeout"],
                                   executed=executed)
    except PrometheusError as exc:
        return make_record(_server(client), "reload", "failed", f"files in place but not loaded; reload: {exc.msg}",
                           before=info)
    return make_record(_server(client), "reload", "done", f"files were in place but not loaded ({', '.join(missing)}); "
                       f"reloaded ({how})", before=info, after=after, seconds=time.monotonic() - started)


def _roll_back(client: PrometheusClient, params: dict[str, Any], result: dict[str, Any], records: list[dict[str, Any]],
               current: dict[str, bytes | None], changed_names: list[str], exc: PrometheusError,
               started: float) -> dict[str, Any]:
    rules_dir, how = params["rules_dir"], params["reload"]
    restore_error = _restore(rules_dir, changed_names, current)
    executed = result["executed"]
    reloaded = ""
    if restore_error is None:
        try:
            old = {os.path.join(params.get("server_rules_dir") or rules_dir, n): rule_names(c)
                   for n, c in current.items() if c is not None}
            reload_and_confirm(client, how, params.get("pid_file"), old, timeout=params["timeout"], executed=executed)
            reloaded = "; the old rules are back and loaded"
        except PrometheusError as again:
            reloaded = f"; the old files are back but reloading them failed too: {again.msg}"
    else:
        reloaded = f"; putting the old files back FAILED: {restore_error}"
    for record in records:
        if record["name"] in changed_names:
            record.update(status="failed", detail=f"rolled back: {exc.msg}")
    reload_record = make_record(_server(client), "reload", "failed", f"{exc.msg}{reloaded}",
                                seconds=time.monotonic() - started)
    records.append(reload_record)
    # Said in the order it happened: the files were written, the reload was not confirmed, then the roll back.
    result.update(failed=True, changed=False, records=records,
                  msg=f"wrote {', '.join(changed_names)} but the reload was not confirmed, so the deploy was rolled "
                      f"back: {exc.msg}{reloaded}")
    return result


def _restore(rules_dir: str, names: list[str], current: dict[str, bytes | None]) -> str | None:
    """Put the old contents back (remove files that were new); None, or what went wrong."""
    problems = []
    for name in names:
        path = os.path.join(rules_dir, name)
        try:
            if current[name] is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                write_atomically(path, current[name])
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    return "; ".join(problems) or None


def _finish(result: dict[str, Any], records: list[dict[str, Any]], reload_record: dict[str, Any]) -> dict[str, Any]:
    files = [r for r in records if r["action"] == "deploy"]
    counts = {s: sum(1 for r in files if r["status"] == s) for s in ("done", "planned", "unchanged")}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    result.update(changed=is_changed(records), records=records,
                  msg=f"rule files: {', '.join(parts)}; reload {reload_record['status']}: {reload_record['detail']}")
    if reload_record["status"] == "failed":
        result["failed"] = True
    return result


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RulesError(msg=f"cannot read {path}: {exc.strerror or exc}") from exc


def _mode(rules_dir: str, name: str) -> int:
    try:
        return os.stat(os.path.join(rules_dir, name)).st_mode & 0o7777
    except FileNotFoundError:
        return 0o644  # the server (often another user) must read it; rules are not secret


def _server(client: PrometheusClient) -> str:
    return f"prometheus {client.url}"


def _count(expected: dict[str, Any]) -> int:
    return sum(len(groups) for groups in expected.values())


# --------------------------------------------------------------------------- status


def status(client: PrometheusClient, params: dict[str, Any]) -> dict[str, Any]:
    server = _server(client)
    records = []
    try:
        client.get_text("/-/healthy")
    except PrometheusError as exc:
        record = make_record(server, "healthy", "failed", exc.msg)
        return {"changed": False, "failed": True, "msg": exc.msg, "records": [record]}
    records.append(make_record(server, "healthy", "ok", "/-/healthy answers 200"))
    try:
        client.get_text("/-/ready")
        records.append(make_record(server, "ready", "ok", "/-/ready answers 200"))
    except PrometheusError as exc:
        records.append(make_record(server, "ready", "breach", f"not ready: {exc.msg}"))
    try:
        info = runtime_info(client)
        groups = wait_for_evaluation(client, loaded_groups(client), timeout=params["timeout"])
        alerts = list((client.get_json("/api/v1/alerts") or {}).get("alerts") or [])
    except PrometheusError as exc:
        records.append(make_record(server, "api", "failed", exc.msg))
        return {"changed": False, "failed": True, "msg": exc.msg, "records": records}
    records.append(reload_status_record(server, info))
    records.extend(group_record(group) for group in groups)
    present = {str(g.get("name")) for g in groups}
    for name in params.get("expected_groups") or []:
        if name not in present:
            records.append(make_record(name, "expected_group", "breach",
                                       f"rule group {name} is not loaded by {client.url}"))
    records.append(alerts_record(server, alerts))
    bad = [r for r in records if r["status"] in ("breach", "failed", "unknown")]
    msg = (f"{len(bad)} problem(s): " + "; ".join(f"{r['name']} {r['action']}: {r['detail']}" for r in bad)
           if bad else f"Prometheus {client.url} healthy, ready, {len(groups)} rule group(s) healthy")
    return {"changed": False, "msg": msg, "records": records}


def _unevaluated(groups: list[dict[str, Any]]) -> bool:
    return any(rule.get("health") not in ("ok", "err") for group in groups for rule in group.get("rules") or [])


def wait_for_evaluation(client: PrometheusClient, groups: list[dict[str, Any]], *, timeout: float) -> list[dict[str, Any]]:
    """Rules loaded by a reload just now are not evaluated until their group's next interval: wait that long
    (bounded by ``timeout``) rather than report them ``unknown`` right after a deploy."""
    if not _unevaluated(groups):
        return groups
    longest = max((float(g.get("interval") or 60) for g in groups), default=60.0)
    deadline = time.monotonic() + min(float(timeout), longest + 2)
    while _unevaluated(groups) and time.monotonic() < deadline:
        time.sleep(0.5)
        groups = loaded_groups(client)
    return groups


def reload_status_record(server: str, info: dict[str, Any]) -> dict[str, Any]:
    after = {k: info[k] for k in ("reload_config_success", "last_config_time")}
    if info["reload_config_success"] is True:
        return make_record(server, "reload_status", "ok", f"last reload succeeded ({info['last_config_time']})",
                           after=after)
    if info["reload_config_success"] is False:
        return make_record(server, "reload_status", "breach",
                           "the last configuration reload FAILED: the server still runs the configuration and "
                           f"rules it loaded at {info['last_config_time']}; see its log", after=after)
    return make_record(server, "reload_status", "unknown", "runtimeinfo has no reloadConfigSuccess", after=after)


def group_record(group: dict[str, Any]) -> dict[str, Any]:
    """One group: breach naming each rule whose health is err (with lastError); unknown when not evaluated yet."""
    rules = group.get("rules") or []
    name = f"{group.get('name')} ({os.path.basename(str(group.get('file', '')))})"
    failing = [f"{r.get('name')}: {r.get('lastError') or 'health err'}" for r in rules if r.get("health") == "err"]
    pending = [str(r.get("name")) for r in rules if r.get("health") not in ("ok", "err")]
    after = {"file": group.get("file"), "rules": len(rules), "failing": len(failing),
             "last_evaluation": group.get("lastEvaluation")}
    if failing:
        return make_record(name, "rules", "breach", f"{len(failing)} rule(s) fail to evaluate: " + "; ".join(failing),
                           after=after)
    if pending:
        return make_record(name, "rules", "unknown", f"not evaluated yet: {', '.join(pending)}", after=after)
    return make_record(name, "rules", "ok", f"{len(rules)} rule(s) evaluate without error", after=after)


def alerts_record(server: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    firing = sorted({str((a.get("labels") or {}).get("alertname")) for a in alerts if a.get("state") == "firing"})
    count = sum(1 for a in alerts if a.get("state") == "firing")
    pending = sum(1 for a in alerts if a.get("state") == "pending")
    return make_record(server, "alerts", "ok",
                       f"{count} alert(s) firing" + (f" ({', '.join(firing)})" if firing else "")
                       + f", {pending} pending (information)",
                       after={"firing": count, "pending": pending, "firing_alerts": firing})
