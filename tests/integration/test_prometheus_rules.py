"""prometheus_rules against a real Prometheus (Debian's package) from the harness, asserted from its API and disk."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import prometheus_rules
from lab.harness.base import LOOPBACK, free_port, wait_for
from lab.harness.prometheus import _DIRECT, PrometheusServer

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {name: (REPO / "roles" / "monitoring" / "files" / "prometheus" / name).read_bytes()
           for name in ("stream_systems.rules.yml", "vitalstream.rules.yml")}
BROKEN = "groups:\n- name: stream-systems.rules\n  rules:\n  - alert: HighCPUUsage\n    expr: cpu_usage_percent >\n"
# Passes promtool, fails every evaluation: many handler series per job on both sides.
MANY_TO_MANY = ("groups:\n- name: broken-at-eval\n  interval: 1s\n  rules:\n  - record: job:bad:join\n"
                "    expr: prometheus_http_requests_total * on(job) group_left() prometheus_http_requests_total\n")


def api(server: PrometheusServer, path: str):
    with _DIRECT.open(server.url + path, timeout=5) as response:
        return json.load(response)["data"]


def loaded(server: PrometheusServer) -> dict[str, tuple[str, list[str]]]:
    """group name -> (file, rule names), as the server reports them."""
    return {g["name"]: (g["file"], [r["name"] for r in g["rules"]]) for g in api(server, "/api/v1/rules")["groups"]}


def last_config_time(server: PrometheusServer) -> str:
    return api(server, "/api/v1/status/runtimeinfo")["lastConfigTime"]


def on_disk(server: PrometheusServer) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(server.rules_dir.iterdir())}


def run_module(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        prometheus_rules.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    result.pop("invocation", None)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == [], result
    return result


def shipped_files():
    return [{"name": name, "src": str(REPO / "roles" / "monitoring" / "files" / "prometheus" / name)} for name in SHIPPED]


def deploy(server, capsys, rule_files, **args):
    return run_module(capsys, **{"url": server.url, "rules_dir": str(server.rules_dir), "rule_files": rule_files,
                                 "timeout": 10, **args})


def by(result, action):
    return [r for r in result["records"] if r["action"] == action]


def test_deploy_loads_both_estates_rules_and_a_second_run_changes_nothing(prometheus_server, capsys):
    result = deploy(prometheus_server, capsys, shipped_files())
    assert result["changed"] is True
    assert [r["status"] for r in by(result, "deploy")] == ["done", "done"]
    assert by(result, "reload")[0]["status"] == "done"
    assert on_disk(prometheus_server) == SHIPPED
    rules_dir = str(prometheus_server.rules_dir)
    assert loaded(prometheus_server) == {
        "stream-systems.rules": (f"{rules_dir}/stream_systems.rules.yml",
                                 ["HighCPUUsage", "DatabaseConnectionPoolExhausted", "TradingSystemDown"]),
        "vitalstream": (f"{rules_dir}/vitalstream.rules.yml",
                        ["HighCPUUsage", "HighMemoryUsage", "DatabaseConnectionPoolExhausted"]),
    }
    stamp = last_config_time(prometheus_server)
    time.sleep(1.1)  # lastConfigTime has whole seconds: a reload now would show
    again = deploy(prometheus_server, capsys, shipped_files())
    assert again["changed"] is False
    assert {r["status"] for r in again["records"]} == {"unchanged"}
    assert last_config_time(prometheus_server) == stamp
    assert not any(cmd.startswith("POST") for cmd in again["executed"])


def test_a_file_promtool_refuses_changes_nothing_on_the_server(prometheus_server, capsys):
    deploy(prometheus_server, capsys, shipped_files())
    disk, groups, stamp = on_disk(prometheus_server), loaded(prometheus_server), last_config_time(prometheus_server)
    time.sleep(1.1)
    result = deploy(prometheus_server, capsys, [
        {"name": "stream_systems.rules.yml", "content": BROKEN},
        {"name": "extra.yml", "content": "groups:\n- name: extra\n  rules:\n  - alert: X\n    expr: up == 0\n"},
    ])
    assert result["failed"] is True and result["changed"] is False
    assert "promtool check rules refused stream_systems.rules.yml" in result["msg"]
    assert "parse error" in result["msg"] and "Nothing was written" in result["msg"]
    assert on_disk(prometheus_server) == disk  # byte-equal, and extra.yml never written
    assert loaded(prometheus_server) == groups
    assert last_config_time(prometheus_server) == stamp


def test_check_mode_plans_with_a_diff_and_changes_nothing(prometheus_server, capsys):
    result = deploy(prometheus_server, capsys, shipped_files(), _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True
    assert [r["status"] for r in result["records"]] == ["planned", "planned", "planned"]
    assert by(result, "deploy")[0]["detail"].startswith("would write ")
    assert [d["after"].encode() for d in result["diff"]] == list(SHIPPED.values())
    assert on_disk(prometheus_server) == {}
    assert loaded(prometheus_server) == {}


def test_sighup_reload(prometheus_server, capsys):
    result = deploy(prometheus_server, capsys, shipped_files()[:1], reload="sighup",
                    pid_file=str(prometheus_server.pid_file))
    assert by(result, "reload")[0]["status"] == "done"
    assert any(cmd == f"kill -HUP {prometheus_server.pid}" for cmd in result["executed"])
    assert set(loaded(prometheus_server)) == {"stream-systems.rules"}


def test_a_group_the_server_does_not_load_rolls_back(prometheus_server, capsys):
    deploy(prometheus_server, capsys, shipped_files())
    disk, groups = on_disk(prometheus_server), loaded(prometheus_server)
    changed_cpu = SHIPPED["vitalstream.rules.yml"].replace(b"cpu_usage > 80", b"cpu_usage > 75")
    # The server's glob is *.yml: a .yaml file is written but never loaded, so the deploy cannot be confirmed.
    result = deploy(prometheus_server, capsys, [
        {"name": "vitalstream.rules.yml", "content": changed_cpu.decode()},
        {"name": "unread.yaml", "content": "groups:\n- name: unread\n  rules:\n  - alert: X\n    expr: up == 0\n"},
    ], timeout=3)
    assert result["failed"] is True
    assert "rolled back" in result["msg"] and "unread.yaml: unread" in result["msg"]
    assert "the old rules are back and loaded" in result["msg"]
    assert on_disk(prometheus_server) == disk
    assert loaded(prometheus_server) == groups
    assert [r["status"] for r in by(result, "deploy")] == ["failed", "failed"]


def test_status_ok_then_breach(prometheus_server, capsys):
    deploy(prometheus_server, capsys, shipped_files())
    # Right after the reload: the module waits for the first evaluation rather than say `unknown`.
    ok = run_module(capsys, operation="status", url=prometheus_server.url,
                    expected_groups=["stream-systems.rules", "vitalstream"])
    assert ok["changed"] is False
    assert {r["status"] for r in ok["records"]} == {"ok"}, ok["records"]
    assert [r["action"] for r in ok["records"]] == ["healthy", "ready", "reload_status", "rules", "rules", "alerts"]

    prometheus_server.wait_for_scrape()
    deploy(prometheus_server, capsys, [{"name": "broken_at_eval.yml", "content": MANY_TO_MANY}])
    wait_for(lambda: any(r["health"] == "err" for g in api(prometheus_server, "/api/v1/rules")["groups"]
                         for r in g["rules"]), timeout=15, what="the many-to-many rule failing")
    bad = run_module(capsys, operation="status", url=prometheus_server.url,
                     expected_groups=["stream-systems.rules", "trading-extra"])
    breaches = {(r["name"], r["action"]): r["detail"] for r in bad["records"] if r["status"] == "breach"}
    assert set(breaches) == {("broken-at-eval (broken_at_eval.yml)", "rules"), ("trading-extra", "expected_group")}
    assert "many-to-many matching not allowed" in breaches[("broken-at-eval (broken_at_eval.yml)", "rules")]
    assert "2 problem(s)" in bad["msg"]


def test_status_breach_when_the_last_reload_failed(prometheus_server, capsys):
    # A config the server refuses on reload: it keeps running the old one and says so in runtimeinfo.
    prometheus_server.config_path.write_text("global: [this is not a mapping\n")
    with pytest.raises(urllib.error.HTTPError):  # the lifecycle API answers 500
        _DIRECT.open(urllib.request.Request(prometheus_server.url + "/-/reload", method="POST", data=b""), timeout=5)
    result = run_module(capsys, operation="status", url=prometheus_server.url)
    record = next(r for r in result["records"] if r["action"] == "reload_status")
    assert record["status"] == "breach" and "FAILED" in record["detail"]


def test_server_down_fails_clearly_and_writes_nothing(tmp_path, capsys):
    url = f"http://{LOOPBACK}:{free_port()}"
    status = run_module(capsys, operation="status", url=url)
    assert status["failed"] is True
    assert status["msg"].startswith(f"Prometheus at {url} is unreachable")
    assert [r["status"] for r in status["records"]] == ["failed"]
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    result = run_module(capsys, url=url, rules_dir=str(rules_dir), rule_files=shipped_files())
    assert result["failed"] is True and "is unreachable" in result["msg"]
    assert list(rules_dir.iterdir()) == []
