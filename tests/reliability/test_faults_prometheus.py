"""Campaign class ``prometheus_gone``: Prometheus gone mid-reload (prometheus_rules deploy + reload).

A FaultProxy (lab/harness/fault_proxy.py) stands between the module and a real Prometheus. The fault comes
at the reload, after the new rule files are written: the server is stopped when the ``POST /-/reload``
reaches the proxy (the module's request meets a closed connection), or the reload reaches the server and
its answer is lost. Then the rule files on disk must be one whole set, the old one or the new validated
one, never a mix, no temp file left; the message must name the reload and what became of the files; and
the run again, Prometheus back, must reload and confirm the new groups, asserted from the server's API.
"""
from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.modules import prometheus_rules
from lab.harness.fault_proxy import FaultProxy
from lab.harness.prometheus import _DIRECT, PrometheusServer

OLD = {
    "stream.rules.yml": "groups:\n- name: stream\n  rules:\n  - alert: StreamDown\n    expr: up == 0\n",
    "vital.rules.yml": "groups:\n- name: vital\n  rules:\n  - alert: VitalDown\n    expr: up == 0\n",
}
NEW = {
    "stream.rules.yml": ("groups:\n- name: stream\n  rules:\n  - alert: StreamDown\n    expr: up == 0\n    for: 1m\n"
                         "  - alert: StreamSlow\n    expr: up < 1\n"),
    "vital.rules.yml": ("groups:\n- name: vital\n  rules:\n  - alert: VitalDown\n    expr: up == 0\n    for: 1m\n"
                        "  - record: job:up:sum\n    expr: sum by (job) (up)\n"),
}
RELOAD = r"^/-/reload$"


def deploy(url: str, server: PrometheusServer, capsys, files: dict[str, str], timeout: int = 5) -> dict:
    args = {"url": url, "rules_dir": str(server.rules_dir), "timeout": timeout,
            "rule_files": [{"name": name, "content": content} for name, content in files.items()]}
    with patch_module_args(args), pytest.raises(SystemExit):
        prometheus_rules.main()
    return json.loads(capsys.readouterr().out)


def on_disk(server: PrometheusServer) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(server.rules_dir.iterdir())}


def loaded_rules(server: PrometheusServer) -> dict[str, list[str]]:
    with _DIRECT.open(server.url + "/api/v1/rules", timeout=5) as response:
        groups = json.load(response)["data"]["groups"]
    return {g["name"]: [r["name"] for r in g["rules"]] for g in groups}


def rule_names(files: dict[str, str]) -> dict[str, list[str]]:
    import yaml

    return {g["name"]: [r.get("alert") or r.get("record") for r in g["rules"]]
            for content in files.values() for g in yaml.safe_load(content)["groups"]}


def mixed_or_partial(server: PrometheusServer) -> list[str]:
    """What on disk is neither the whole old set nor the whole new set (and any temp file left)."""
    files = on_disk(server)
    problems = [f"temp file {name}" for name in files if name.startswith(".")]
    whole = {name: text for name, text in files.items() if not name.startswith(".")}
    if whole not in (OLD, NEW):
        problems.append("rule files are a mix: " + ", ".join(
            f"{name}={'old' if text == OLD.get(name) else 'new' if text == NEW.get(name) else 'other'}"
            for name, text in sorted(whole.items())))
    return problems


@pytest.fixture
def old_rules_loaded(prometheus_server: PrometheusServer, capsys) -> PrometheusServer:
    result = deploy(prometheus_server.url, prometheus_server, capsys, OLD)
    assert not result.get("failed"), result["msg"]
    assert loaded_rules(prometheus_server) == rule_names(OLD)
    return prometheus_server


def test_server_stopped_when_the_reload_arrives(old_rules_loaded, campaign, capsys):
    server = old_rules_loaded
    with FaultProxy(server.url) as proxy, \
            campaign.case("prometheus_gone", "server stopped as the POST /-/reload arrives") as case:
        rule = proxy.add("forward", method="POST", target=RELOAD, before=server.stop)
        result = deploy(proxy.url, server, capsys, NEW)
        assert rule.fired == 1, f"the reload never reached the proxy: {proxy.requests}"
        case.check_error(result, names=["wrote stream.rules.yml, vital.rules.yml", "reload was not confirmed",
                                        proxy.url, "rolled back", "old files are back"])
        case.check_no_partial(mixed_or_partial(server), str(server.rules_dir))
        case.check_data(on_disk(server) == OLD,
                        "the rules on disk are the old set the stopped server will read when it starts")
        server.start()
        case.check_data(loaded_rules(server) == rule_names(OLD), "the restarted server runs the old rules")
        proxy.clear()
        again = deploy(proxy.url, server, capsys, NEW)
        case.check_converged(not again.get("failed") and on_disk(server) == NEW
                             and loaded_rules(server) == rule_names(NEW), f"re-run: {again['msg']}")


def test_reload_answer_lost(old_rules_loaded, campaign, capsys):
    server = old_rules_loaded
    with FaultProxy(server.url) as proxy, \
            campaign.case("prometheus_gone", "the reload reaches the server, its answer is lost") as case:
        rule = proxy.add("forward_drop", method="POST", target=RELOAD)
        result = deploy(proxy.url, server, capsys, NEW)
        assert rule.fired == 1, f"the reload never reached the proxy: {proxy.requests}"
        case.check_no_partial(mixed_or_partial(server), str(server.rules_dir))
        # Whatever the module decided, the server must run the rules that are on disk.
        on_server = loaded_rules(server)
        disk = on_disk(server)
        case.check_data(on_server == rule_names(disk), f"the server runs {on_server}, the disk holds "
                                                       f"{'the new' if disk == NEW else 'the old'} set")
        # The reload happened: runtimeinfo confirms it, so the deploy stands (rolling it back would take one more
        # reload, which could fail too and leave the server on rules the disk no longer holds).
        case.check_converged(not result.get("failed") and disk == NEW and "got no answer" in result["msg"],
                             f"the reload whose answer was lost was not confirmed: {result['msg']}")
        proxy.clear()
        again = deploy(proxy.url, server, capsys, NEW)
        case.check_converged(not again.get("failed") and on_disk(server) == NEW
                             and loaded_rules(server) == rule_names(NEW), f"re-run: {again['msg']}")


def test_server_gone_for_good_fails_in_bounded_time(old_rules_loaded, campaign, capsys, tmp_path):
    """The reload hangs (the server neither answers nor goes away): the module's timeout bounds the run."""
    server = old_rules_loaded
    with FaultProxy(server.url, hang_seconds=20) as proxy, \
            campaign.case("prometheus_gone", "the reload POST hangs (no answer)") as case:
        proxy.add("hang", method="POST", target=RELOAD, times=None)
        result = deploy(proxy.url, server, capsys, NEW, timeout=1)
        case.check_error(result, names=["reload was not confirmed", proxy.url, "timed out"])
        case.check_no_partial(mixed_or_partial(server), str(server.rules_dir))
        case.check_data(loaded_rules(server) == rule_names(on_disk(server)),
                        "the server runs the rules that are on disk")
        proxy.clear()
        again = deploy(proxy.url, server, capsys, NEW)
        case.check_converged(not again.get("failed") and on_disk(server) == NEW
                             and loaded_rules(server) == rule_names(NEW), f"re-run: {again['msg']}")
