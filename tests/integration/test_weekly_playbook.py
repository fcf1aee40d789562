"""playbooks/weekly.yml against real lab services, asserted from the report it writes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, ansible_env, lab_inventory, output_of, run

pytestmark = [pytest.mark.integration, pytest.mark.ansible, pytest.mark.k8s]


def _run_weekly(inventory, reports, *extra):
    env = ansible_env(MAINTENANCE_REPORT_DIR=str(reports), MAINTENANCE_LEAD="test-lead")
    # The lab's PostgreSQL is TLS-only: a task that lost the inventory's sslmode/ca_cert falls back to these and fails.
    env.update(PGSSLMODE="disable", PGSSLROOTCERT="/nonexistent/ca.crt")
    return run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "weekly.yml"), *extra],
               env=env)


def _only_report(reports):
    files = sorted(reports.glob("MAINT-*.json"))
    assert len(files) == 1, files
    assert files[0].with_suffix(".md").exists()
    return json.loads(files[0].read_text()), files[0].with_suffix(".md").read_text()


def _received_mail(lab_services):
    from lab.harness.smtp import SmtpServer  # noqa: PLC0415

    smtp = lab_services["notify"]["smtp"]
    server = SmtpServer(Path(smtp["mailbox"]).parent)
    return server.messages()


def _received_posts(lab_services):
    webhook = lab_services["notify"]["webhook"]
    return [json.loads(path.read_text()) for path in sorted(Path(webhook["received_dir"]).glob("*.json"))]


def test_weekly_on_a_healthy_lab_writes_a_completed_report(tmp_path, lab_services):
    inventory = lab_inventory(tmp_path, lab_services)
    result = _run_weekly(inventory, tmp_path / "reports")
    assert result.returncode == 0, output_of(result)
    report, markdown = _only_report(tmp_path / "reports")
    assert report["status"] == "COMPLETED", {host: data["issues"] for host, data in report["hosts"].items()}
    assert report["lead"] == "test-lead"
    assert set(report["hosts"]) == {"stream-lab", "vitalstream-lab"}
    vital = report["hosts"]["vitalstream-lab"]
    assert vital["window"].startswith("lab ")
    assert any(v.startswith("active alarms API: HTTP 200: 3") for v in vital["validation"]), vital["validation"]
    assert any(v.startswith("postgresql: 127.0.0.1:") for v in vital["validation"])
    stream = report["hosts"]["stream-lab"]
    assert any(v.startswith("kubernetes-api: 127.0.0.1:") for v in stream["validation"]), stream["validation"]
    assert "Maintenance ID: MAINT-" in markdown and "### Validation" in markdown
    # The completion notice really reached the lab's SMTP server and webhook receiver, naming the report's file.
    maintenance_id = report["maintenance_id"]
    mails = [m for m in _received_mail(lab_services) if maintenance_id in m["message"]["subject"]]
    assert len(mails) == 1, [m["message"]["subject"] for m in _received_mail(lab_services)]
    assert mails[0]["tls"] and "COMPLETED" in mails[0]["message"]["subject"]
    assert f"{maintenance_id}.md" in mails[0]["message"].get_body(("plain",)).get_content()
    posts = [p for p in _received_posts(lab_services) if maintenance_id in (p["json"] or {}).get("subject", "")]
    assert len(posts) == 1, _received_posts(lab_services)


def test_a_service_that_is_down_fails_the_run_and_the_report_says_which(tmp_path, lab_services):
    from lab.harness.base import free_port

    broken = {**lab_services, "redis": {**lab_services["redis"], "host": "127.0.0.1", "port": free_port()}}
    inventory = lab_inventory(tmp_path, broken)
    result = _run_weekly(inventory, tmp_path / "reports", "-e", "health_check_timeout=1")
    assert result.returncode != 0, output_of(result)
    assert "health check(s) breached: redis" in result.stdout, output_of(result)
    report, markdown = _only_report(tmp_path / "reports")
    assert report["status"] == "FAILED"
    for host in ("stream-lab", "vitalstream-lab"):
        issues = report["hosts"][host]["issues"]
        assert any(i.startswith("redis:") for i in issues), issues
    assert "redis" in markdown


def test_outside_the_window_without_approval_nothing_runs(tmp_path, lab_services):
    inventory = lab_inventory(tmp_path, lab_services)
    # Tuesday afternoon in New York: only the weekly window counts.
    result = _run_weekly(inventory, tmp_path / "reports", "-e", "maintenance_window_name=weekly",
                         "-e", "maintenance_window_now=2026-11-24T15:00:00-05:00")
    assert result.returncode != 0, output_of(result)
    assert "2026-11-29T02:00:00-05:00" in result.stdout, output_of(result)
    assert "Check that each service accepts connections" not in result.stdout
    report, _markdown = _only_report(tmp_path / "reports")
    assert report["status"] == "FAILED"
    assert report["hosts"]["stream-lab"]["window"].startswith("outside any window")


def test_emergency_approval_lets_the_run_proceed_and_is_reported(tmp_path, lab_services):
    inventory = lab_inventory(tmp_path, lab_services)
    extra = json.dumps({
        "maintenance_window_name": "weekly",
        "maintenance_window_now": "2026-11-24T15:00:00-05:00",
        "maintenance_window_emergency": {"approved_by": "cto", "reason": "CVE hotfix", "ticket": "INC-7"},
    })
    result = _run_weekly(inventory, tmp_path / "reports", "-e", extra)
    assert result.returncode == 0, output_of(result)
    report, markdown = _only_report(tmp_path / "reports")
    assert report["hosts"]["stream-lab"]["emergency"]["ticket"] == "INC-7"
    assert "EMERGENCY approved by cto (INC-7)" in markdown


def test_a_wrong_ca_stops_the_run_at_the_first_postgresql_task_and_says_why(tmp_path, lab_services):
    pg = lab_services["postgres"]
    wrong = {**lab_services, "postgres": {**pg, "ca_cert": pg["wrong_ca_cert"]}}
    inventory = lab_inventory(tmp_path, wrong)
    result = _run_weekly(inventory, tmp_path / "reports")
    assert result.returncode != 0, output_of(result)
    expected = re.compile(rf"cannot connect to PostgreSQL \S+@{re.escape(pg['host'])}:{pg['port']}/\S+: the server's TLS "
                          rf"certificate did not verify against ca_cert {re.escape(pg['wrong_ca_cert'])}")
    assert expected.search(result.stdout), output_of(result)
    # Nothing after the health check ran: no backup set, no vacuum.
    assert not list((tmp_path / "lab-state").glob("backups/*/*/manifest.json"))
    assert "Take the backup set" not in result.stdout
    report, _markdown = _only_report(tmp_path / "reports")
    assert report["status"] == "FAILED"
    for host in ("stream-lab", "vitalstream-lab"):
        issues = report["hosts"][host]["issues"]
        assert any("did not verify" in issue for issue in issues), issues
