"""The role layer's filters on registered task results as Ansible registers them (looped command results)."""

from __future__ import annotations

import base64
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.streamops.maintenance.plugins.filter import records as filters
from ansible_collections.streamops.maintenance.plugins.module_utils.records import make_record, result_problems

KUBECTL = ["/usr/local/bin/kubectl", "--kubeconfig", "/etc/streamops/kubeconfig"]


def command(argv: list[str], item=None, *, rc: int = 0, stdout: str = "", stderr: str = "",
            ignore_errors: bool = True) -> dict:
    """One result of ansible.builtin.command as register keeps it (inside a loop when ``item`` is given)."""
    result = {"changed": False, "cmd": argv, "rc": rc, "stdout": stdout, "stderr": stderr,
              "stdout_lines": stdout.splitlines(), "stderr_lines": stderr.splitlines(),
              "start": "2026-01-11 07:30:00.101", "end": "2026-01-11 07:30:00.342", "delta": "0:00:00.241",
              "msg": "non-zero return code" if rc else "", "failed": bool(rc),
              "invocation": {"module_args": {"argv": argv, "_raw_params": None}}}
    if item is not None:
        result |= {"item": item, "ansible_loop_var": "item"}
    if rc and ignore_errors:
        result["failed"] = True
    return result


def looped(*results: dict) -> dict:
    registered = {"changed": False, "msg": "All items completed", "results": list(results)}
    if any(r.get("failed") for r in results):
        registered |= {"failed": True, "msg": "One or more items failed"}
    return registered


def skipped_item(item) -> dict:
    return {"changed": False, "skipped": True, "skip_reason": "Conditional result was False", "false_condition":
            "health_check_k8s_enabled", "item": item, "ansible_loop_var": "item"}


# --------------------------------------------------------------------------- records, problems, compare_records

VACUUMED = make_record("public.trades", "vacuum_analyze", "done", "dead tuples 60000 -> 0",
                       before={"dead_tuples": 60000}, after={"dead_tuples": 0}, seconds=1.92)
SKIPPED = make_record("public.alarms", "reindex", "skipped", "lock not available within 5000 ms")
PG_STEPS = looped(
    {"changed": True, "msg": "1 table vacuumed", "records": [VACUUMED], "item": "vacuum_analyze",
     "ansible_loop_var": "item", "invocation": {"module_args": {}}},
    {"changed": False, "msg": "1 table skipped", "records": [SKIPPED], "item": "reindex", "ansible_loop_var": "item"},
    {"failed": True, "msg": "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
     "item": "reset_sequences", "ansible_loop_var": "item", "changed": False},
    skipped_item("settings"))
CONNECTION_REFUSED = make_record("postgres reset_sequences", "run", "failed",
                                 "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused")


def test_records_of_a_looped_module_result():
    found = filters.records(PG_STEPS, "postgres")
    assert found == [VACUUMED, SKIPPED, CONNECTION_REFUSED]
    assert filters.records(found) == found


def test_records_of_a_looped_command_result_that_failed():
    found = filters.records(looped(
        command(["pg_dump", "orders"], "orders", rc=1, stderr="pg_dump: error: connection to server failed\n"),
        command(["pg_dump", "trades"], "trades")), "pg_dump")
    assert found == [make_record("pg_dump orders", "run", "failed",
                                 "non-zero return code: pg_dump: error: connection to server failed")]


@pytest.mark.parametrize("statuses, names", [
    pytest.param(None, ["postgres reset_sequences"], id="default statuses"),
    pytest.param(["skipped", "failed"], ["public.alarms", "postgres reset_sequences"], id="skipped too"),
])
def test_problems(statuses, names):
    assert [r["name"] for r in filters.problems(filters.records(PG_STEPS, "postgres"), statuses)] == names


def test_problems_text_of_a_registered_result():
    assert filters.problems_text(PG_STEPS, "step(s) failed") == (
        "1 step(s) failed: reset_sequences. reset_sequences: connection to server at \"127.0.0.1\", "
        "port 5432 failed: Connection refused")
    assert filters.problems_text(PG_STEPS, statuses=["skipped"]) == (
        "1 problem(s): public.alarms. public.alarms: lock not available within 5000 ms")
    assert filters.problems_text({"changed": False, "msg": "ok", "records": [VACUUMED]}) == ""


def test_compare_records_of_two_registered_results():
    def usage(ratio: float, used: int) -> dict:
        return {"changed": False, "msg": "", "records": [
            make_record("redis db 0", "memory", "ok", after={"ratio": ratio, "used_memory": used}),
            make_record("disk /", "disk", "ok", after={"used_percent": 50})]}
    found = filters.compare_records(usage(0.9, 900 * 1024 ** 2), usage(0.65, 650 * 1024 ** 2), action="memory",
                                    check_mode=True)
    assert found == [make_record("redis db 0", "summary", "ok",
                                 "ratio 90.0% -> 65.0%; used memory 900.0 MB -> 650.0 MB "
                                 "(check mode: nothing was changed)",
                                 before={"ratio": 0.9, "used_memory": 900 * 1024 ** 2},
                                 after={"ratio": 0.65, "used_memory": 650 * 1024 ** 2})]


@pytest.mark.parametrize("call, msg", [
    pytest.param(lambda: filters.records("vacuum"), "records: expected a registered task result (dict) or a list of "
                                                    "them, got str", id="records"),
    pytest.param(lambda: filters.problems(5), "problems: expected a registered task result (dict) or a list of "
                                              "them, got int", id="problems"),
    pytest.param(lambda: filters.problems_text("x", "failed"), "problems_text: expected a registered task result "
                                                               "(dict) or a list of them, got str",
                 id="problems_text"),
    pytest.param(lambda: filters.compare_records({"records": []}, 1.5), "compare_records: expected a registered task "
                                                                        "result (dict) or a list of them, got float",
                 id="compare_records"),
    pytest.param(lambda: filters.pod_records("streaming"), "pod_records expects a registered task result, got str",
                 id="pod_records"),
    pytest.param(lambda: filters.tls_secret_texts(None), "tls_secret_texts expects a registered task result, got "
                                                         "NoneType", id="tls_secret_texts"),
    pytest.param(lambda: filters.compose_service_records([], "vitalstream"),
                 "compose_service_records expects a registered task result, got list", id="compose_service_records"),
    pytest.param(lambda: filters.logrotate_records("rotated"), "logrotate_records expects a registered task "
                                                               "result, got str", id="logrotate_records"),
    pytest.param(lambda: filters.log_error_records([], "pod", "ERROR", 24),
                 "log_error_records expects a registered task result, got list", id="log_error_records"),
    pytest.param(lambda: filters.log_error_records({}, "syslog", "ERROR", 24),
                 "log_error_records: kind 'syslog' must be compose or pod", id="log_error_records kind"),
    pytest.param(lambda: filters.log_error_records({}, "pod", "ERROR", 24, "many"),
                 "log_error_records: limit 'many' and hours 24 must be whole numbers: "
                 "invalid literal for int() with base 10: 'many'", id="log_error_records limit"),
    pytest.param(lambda: filters.log_error_records({}, "pod", "ERROR", "a day"),
                 "log_error_records: limit None and hours 'a day' must be whole numbers: "
                 "invalid literal for int() with base 10: 'a day'",
                 id="log_error_records hours"),
])
def test_bad_input_names_the_filter(call, msg):
    with pytest.raises(AnsibleFilterError) as caught:
        call()
    assert caught.value.message == msg


def test_every_filter_is_registered():
    assert set(filters.FilterModule().filters()) == {
        "records", "problems", "problems_text", "compare_records", "pod_records", "tls_secret_texts",
        "compose_service_records", "logrotate_records", "log_error_records", "audit_event_records"}


# --------------------------------------------------------------------------- kubectl: pods and TLS secrets


def pod_json(name: str, phase: str, waiting_reason: str | None = None, restarts: int = 0) -> dict:
    state = {"waiting": {"reason": waiting_reason}} if waiting_reason else {"running": {"startedAt": "2026-01-11"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "streaming"},
            "spec": {"containers": [{"name": "app", "image": "vitalstream/api:2.4.1"}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "app", "restartCount": restarts,
                                                              "ready": not waiting_reason, "state": state}]}}


def pod_list(*pods: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(pods)},
                      indent=4)


def pods_argv(namespace: str) -> list[str]:
    return KUBECTL + ["get", "pods", "--namespace", namespace, "--output", "json"]


def test_pod_records_of_a_looped_kubectl_result():
    registered = looped(
        command(pods_argv("streaming"), "streaming", stdout=pod_list(
            pod_json("api-7d9f", "Running"), pod_json("worker-5c4b", "Running", "CrashLoopBackOff", 12))),
        command(pods_argv("monitoring"), "monitoring", rc=1,
                stderr='Error from server (Forbidden): pods is forbidden: User "health" cannot list resource "pods" '
                       'in API group "" in the namespace "monitoring"\n'),
        command(pods_argv("batch"), "batch", stdout=pod_list()),
        command(pods_argv("legacy"), "legacy", stdout="error: the server doesn't have a resource type \"pods\""),
        skipped_item("disabled"))
    found = filters.pod_records(registered)
    assert [(r["name"], r["status"], r["detail"]) for r in found] == [
        ("pods streaming", "breach", "1 of 2 pods Running or Succeeded"),
        ("pod streaming/worker-5c4b", "breach", "Running: CrashLoopBackOff (12 restarts)"),
        ("pods monitoring", "breach", 'kubectl failed: Error from server (Forbidden): pods is forbidden: User "health" '
                                      'cannot list resource "pods" in API group "" in the namespace "monitoring"'),
        ("pods batch", "breach", "no pods"),
        ("pods legacy", "breach", "kubectl failed: kubectl printed no JSON: Expecting value: line 1 column 1 (char 0)"),
    ]
    assert result_problems({"changed": False, "msg": "", "records": found}) == []


def test_pod_records_when_kubectl_is_missing():
    # What command registers when the executable does not exist: rc 2, the error in msg, empty stderr.
    missing = {"failed": True, "msg": "[Errno 2] No such file or directory: b'/usr/local/bin/kubectl'", "rc": 2,
               "cmd": pods_argv("streaming"), "stdout": "", "stderr": "", "stdout_lines": [], "stderr_lines": [],
               "item": "streaming", "ansible_loop_var": "item", "changed": False}
    assert filters.pod_records(looped(missing)) == [make_record(
        "pods streaming", "pods", "breach",
        "kubectl failed: [Errno 2] No such file or directory: b'/usr/local/bin/kubectl'")]


def test_pod_records_of_a_skipped_task():
    assert filters.pod_records({"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}) == []
    assert filters.pod_records({"changed": False, "skipped": True, "results": [skipped_item("streaming")]}) == []


def test_tls_secret_texts_of_a_looped_kubectl_result():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    good = base64.b64encode(pem.encode()).decode()
    registered = looped(
        command(KUBECTL + ["get", "secrets"], "streaming", stdout=f"api-tls\t{good}\nbroken-tls\t!!notbase64\n"),
        command(KUBECTL + ["get", "secrets"], "monitoring", rc=1, stderr="Error from server (Forbidden)\n"),
        command(KUBECTL + ["get", "secrets"], "empty"),
        skipped_item("off"))
    assert filters.tls_secret_texts(registered) == [
        {"name": "secret streaming/api-tls", "pem": pem}, {"name": "secret streaming/broken-tls", "pem": ""}]


# --------------------------------------------------------------------------- docker ps of a compose project

PS = ["/usr/bin/docker", "ps", "--all", "--filter", "label=com.docker.compose.project=vitalstream", "--format", "{}"]


def test_compose_service_records_of_docker_ps():
    lines = [{"service": "api", "name": "vitalstream-api-1", "state": "running", "status": "Up 2 hours (healthy)"},
             {"service": "worker", "name": "vitalstream-worker-1", "state": "exited",
              "status": "Exited (137) 5 minutes ago"}]
    registered = command(PS, stdout="\n".join(json.dumps(line) for line in lines) + "\n\n")
    found = filters.compose_service_records(registered, "vitalstream", ["api", "worker", "web"])
    assert [(r["name"], r["status"], r["detail"]) for r in found] == [
        ("compose vitalstream/api", "ok", "running: Up 2 hours (healthy) (vitalstream-api-1)"),
        ("compose vitalstream/worker", "breach", "exited: Exited (137) 5 minutes ago (vitalstream-worker-1)"),
        ("compose vitalstream/web", "breach", "no container of service web")]
    assert result_problems({"changed": False, "msg": "", "records": found}) == []


@pytest.mark.parametrize("registered, expected", [
    pytest.param(command(PS, rc=1, stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                                          "Is the docker daemon running?\n"),
                 [make_record("compose vitalstream", "compose", "breach", "docker ps failed: Cannot connect to the "
                              "Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")],
                 id="engine unreachable"),
    pytest.param(command(PS), [make_record("compose vitalstream", "compose", "breach",
                                           "no containers with label com.docker.compose.project=vitalstream")],
                 id="no containers"),
    pytest.param(command(PS, stdout="CONTAINER ID   IMAGE\n"),
                 [make_record("compose vitalstream", "compose", "breach",
                              "docker ps failed: docker ps printed no JSON: Expecting value: line 1 column 1 (char 0)")],
                 id="not JSON"),
    pytest.param({"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}, [],
                 id="skipped"),
])
def test_compose_service_records_when_nothing_is_listed(registered, expected):
    assert filters.compose_service_records(registered, "vitalstream", None) == expected


# --------------------------------------------------------------------------- logrotate

# What Debian's logrotate 3.21 prints (on stderr) for one configuration, --verbose, one log due.
LOGROTATE_VERBOSE = """reading config file /etc/logrotate.d/vitalstream
acquired lock on state file /var/lib/streamops/logrotate.statusReading state from file: /var/lib/streamops/logrotate.status
Allocating hash table for state file, size 64 entries
Creating new state

Handling 1 logs

rotating pattern: /var/log/vitalstream/*.log  after 1 days (14 rotations)
empty log files are not rotated, old logs are removed
considering log /var/log/vitalstream/api.log
  Now: 2026-01-11 07:30
  Last rotated at 2026-01-10 07:30
  log needs rotating
considering log /var/log/vitalstream/worker.log
  Now: 2026-01-11 07:30
  Last rotated at 2026-01-11 00:00
  log does not need rotating (log has been rotated at 2026-01-11 00:00, which is less than a day ago)
rotating log /var/log/vitalstream/api.log, log->rotateCount is 14
dateext suffix '-20260111'
glob pattern '-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'
renaming /var/log/vitalstream/api.log.1 to /var/log/vitalstream/api.log.2 (rotatecount 14, logstart 1, i 1),
renaming /var/log/vitalstream/api.log to /var/log/vitalstream/api.log.1
creating new /var/log/vitalstream/api.log mode = 0640 uid = 0 gid = 4
"""
LOGROTATE_ARGV = ["/usr/sbin/logrotate", "--verbose", "--state", "/var/lib/streamops/logrotate.status"]


@pytest.mark.parametrize("check_mode, forced, status, detail", [
    pytest.param(False, False, "done", "rotated 1 of 2 log(s): /var/log/vitalstream/api.log", id="real run"),
    pytest.param(True, False, "planned", "would rotate 1 of 2 log(s): /var/log/vitalstream/api.log", id="check mode"),
    pytest.param(False, True, "done", "rotated 1 of 2 log(s): /var/log/vitalstream/api.log (forced)", id="forced"),
])
def test_logrotate_records_of_a_looped_command(check_mode, forced, status, detail):
    config = "/etc/logrotate.d/vitalstream"
    registered = looped(command(LOGROTATE_ARGV + [config], config, stderr=LOGROTATE_VERBOSE),
                        command(LOGROTATE_ARGV + ["/etc/logrotate.d/quiet"], "/etc/logrotate.d/quiet",
                                stderr="reading config file /etc/logrotate.d/quiet\nHandling 0 logs\n"),
                        command(LOGROTATE_ARGV + ["/etc/logrotate.d/bad"], "/etc/logrotate.d/bad", rc=1,
                                stderr="error: /etc/logrotate.d/bad:3 unknown option 'rotat' -- ignoring line\n"))
    found = filters.logrotate_records(registered, check_mode, forced)
    note = " (forced)" if forced else ""
    assert found == [
        make_record(config, "logrotate", status, detail,
                    after={"considered": 2, "rotated": ["/var/log/vitalstream/api.log"]}),
        make_record("/etc/logrotate.d/quiet", "logrotate", "unchanged",
                    f"0 log(s) considered, none needed rotating{note}", after={"considered": 0, "rotated": []}),
        make_record("/etc/logrotate.d/bad", "logrotate", "failed",
                    "logrotate exited 1: error: /etc/logrotate.d/bad:3 unknown option 'rotat' -- ignoring line")]
    assert result_problems({"changed": True, "msg": "", "records": found}, check_mode=check_mode) == []


# --------------------------------------------------------------------------- error lines of container and pod logs

LOG_OUT = "2026-01-11T02:00:01 INFO started\n2026-01-11T02:00:02 ERROR db timeout\n"
LOG_ERR = "2026-01-11T02:00:03 ERROR db timeout\n2026-01-11T02:00:04 Traceback (most recent call last):\n"


def inspected(name: str, service: str) -> dict:
    return {"Id": "3f2a9c", "Name": f"/{name}", "State": {"Status": "running"},
            "Config": {"Image": "vitalstream/api:2.4.1", "Labels": {"com.docker.compose.project": "vitalstream",
                                                                    "com.docker.compose.service": service}}}


def test_log_error_records_of_compose_containers():
    registered = looped(
        command(["docker", "logs", "--since", "24h", "3f2a9c"], inspected("vitalstream-api-1", "api"),
                stdout=LOG_OUT, stderr=LOG_ERR),
        command(["docker", "logs", "--since", "24h", "9e1b"], inspected("vitalstream-worker-1", "worker"), rc=1,
                stderr="Error response from daemon: No such container: 9e1b\n"),
        command(["docker", "logs", "--since", "24h", "77aa"], {"Name": "/oneoff", "Config": {}}))
    found = filters.log_error_records(registered, "compose", "ERROR|Traceback", "24", "2")
    assert found == [
        make_record("service api (vitalstream-api-1)", "errors", "breach",
                    "3 error line(s) of 4 in the last 24h (limit 2)", after={"errors": 3, "lines": 4}),
        make_record("service worker (vitalstream-worker-1)", "errors", "failed",
                    "could not read the log: Error response from daemon: No such container: 9e1b"),
        make_record("service ? (oneoff)", "errors", "ok", "0 error line(s) of 0 in the last 24h (limit 2)",
                    after={"errors": 0, "lines": 0})]


def test_log_error_records_of_pods_count_stdout_only():
    registered = looped(command(KUBECTL + ["logs", "api-7d9f", "--since=24h"],
                                {"metadata": {"name": "api-7d9f", "namespace": "streaming"}},
                                stdout=LOG_OUT, stderr="Warning: ERROR of kubectl itself\n"))
    assert filters.log_error_records(registered, "pod", "ERROR", 24, "") == [
        make_record("pod api-7d9f", "errors", "ok", "1 error line(s) of 2 in the last 24h (no limit)",
                    after={"errors": 1, "lines": 2})]


def test_log_error_records_of_no_logs_at_all():
    empty = {"changed": False, "skipped": True, "skipped_reason": "No items in the list", "results": []}
    assert filters.log_error_records(empty, "compose", "ERROR", 24, where="compose vitalstream") == [
        make_record("compose vitalstream", "errors", "unknown", "no containers to read logs from: no error count")]
    assert filters.log_error_records(empty, "pod", "ERROR", 24) == []


def test_log_error_records_with_a_bad_pattern_names_the_filter_and_the_pattern():
    registered = looped(command(["docker", "logs", "x"], inspected("vitalstream-api-1", "api"), stdout=LOG_OUT))
    with pytest.raises(AnsibleFilterError) as caught:
        filters.log_error_records(registered, "compose", "ERROR(", 24)
    assert caught.value.message == ("log_error_records: error pattern 'ERROR(' is not a regular expression: "
                                    "missing ), unterminated subpattern at position 5")


# --------------------------------------------------------------------------- kubectl logs of the audit-logger

AUDIT_NOW = "2026-01-11T07:30:00Z"
AUDIT_ARGV = KUBECTL + ["logs", "--namespace", "production", "deployment/audit-logger", "--since=24h"]
AUDIT_LINES = "\n".join([
    json.dumps({"timestamp": "2026-01-11T07:00:00.123456789Z", "verb": "create", "user": "trader1"}),
    json.dumps({"timestamp": "2026-01-11T07:01:00Z", "verb": "get", "user": "trader1"}),
    json.dumps({"timestamp": "2026-01-11T07:02:00Z", "action": "get", "user": "ops"}),
    json.dumps({"timestamp": "2026-01-10T07:00:00Z", "verb": "delete", "user": "ops"}),  # before the 24 h
    "audit-logger: flushed 3 events",
])


def test_audit_event_records_of_kubectl_logs():
    found = filters.audit_event_records(command(AUDIT_ARGV, stdout=AUDIT_LINES), 24, AUDIT_NOW)
    assert result_problems({"changed": False, "msg": "", "records": found}) == []
    assert found == [make_record(
        "audit audit-logger", "audit_summary", "ok", "3 audit event(s) in the last 24h: get 2, create 1 "
                                                     "(1 unparsed line(s))",
        after={"by_verb": {"create": 1, "get": 2}, "total": 3, "hours": 24, "lines": 5, "unparsed": 1,
               "undated": 0, "outside_window": 1, "since": "2026-01-10T07:30:00+00:00"})]
    # The same lines as a list or as text, and a verb key of its own.
    assert filters.audit_event_records(AUDIT_LINES.splitlines(), 24, AUDIT_NOW) == found
    assert filters.audit_event_records(AUDIT_LINES, now=AUDIT_NOW) == found
    only_action = filters.audit_event_records(AUDIT_LINES, now=AUDIT_NOW, verb_key="action", name="audit")
    assert only_action[0]["name"] == "audit audit"
    assert only_action[0]["after"]["by_verb"] == {"(none)": 2, "get": 1}


def test_audit_event_records_when_kubectl_fails_or_is_skipped():
    not_found = 'Error from server (NotFound): deployments.apps "audit-logger" not found'
    failed = command(AUDIT_ARGV, rc=1, stderr=not_found)
    found = filters.audit_event_records(failed, now=AUDIT_NOW)
    assert [(r["name"], r["status"]) for r in found] == [("audit audit-logger", "unknown")]
    assert found[0]["detail"] == ('could not read the log: Error from server (NotFound): deployments.apps '
                                  '"audit-logger" not found')
    assert found[0]["after"]["remedy"].startswith("Fix the read of the audit-logger log")
    assert filters.audit_event_records({"changed": False, "skipped": True}) == []
    empty = filters.audit_event_records(command(AUDIT_ARGV), now=AUDIT_NOW)
    assert [(r["status"], r["detail"]) for r in empty] == [("unknown", "no audit event in the last 24h")]


def test_audit_event_records_of_a_looped_read_one_per_pod():
    registered = looped(command(AUDIT_ARGV, "audit-logger-0", stdout=AUDIT_LINES),
                        command(AUDIT_ARGV, "audit-logger-1", rc=1, stderr="container not running"))
    found = filters.audit_event_records(registered, now=AUDIT_NOW)
    assert [(r["name"], r["status"]) for r in found] == [("audit audit-logger audit-logger-0", "ok"),
                                                         ("audit audit-logger audit-logger-1", "unknown")]


@pytest.mark.parametrize("call, msg", [
    (lambda: filters.audit_event_records(5), "audit_event_records expects a registered task result, got int"),
    (lambda: filters.audit_event_records([], "a day"),
     "audit_event_records: hours 'a day' must be a whole number: invalid literal for int() with base 10: 'a day'"),
    (lambda: filters.audit_event_records([], 0), "audit_event_records: hours must be a whole number of at least 1, "
                                                 "got 0"),
    (lambda: filters.audit_event_records([], 24, "2026-01-11 07:30"),
     "audit_event_records: now '2026-01-11 07:30' has no UTC offset; write it with Z or +HH:MM, "
     "e.g. 2026-01-04T07:30:00Z"),
])
def test_audit_event_records_bad_input_names_the_filter(call, msg):
    with pytest.raises(AnsibleFilterError) as caught:
        call()
    assert caught.value.message == msg
