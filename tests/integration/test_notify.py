"""maintenance_notify and the notify role against a real SMTP server (aiosmtpd: STARTTLS, AUTH) and a real webhook
receiver, both on 127.0.0.1; asserted from what the servers received."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import maintenance_notify
from lab.harness.base import free_port
from tests.helpers import BIN, ansible_env, output_of, run

pytestmark = pytest.mark.integration

SUMMARY = {"status": "COMPLETED", "hosts": {"db1": {"done": 2, "issues": 0}}}


@pytest.fixture
def smtp(smtp_server):
    smtp_server.clear()
    return smtp_server


@pytest.fixture
def webhook(webhook_receiver):
    webhook_receiver.clear()
    return webhook_receiver


def mail_channel(server, **extra) -> dict:
    facts = server.facts()
    return {"name": "operators", "type": "smtp", "host": facts["host"], "port": facts["port"],
            "from": "maintenance@lab.test", "to": ["ops@lab.test", "dba@lab.test"], "username": facts["user"],
            "password": facts["password"], "ca_cert": facts["ca_cert"], "timeout": 5, **extra}


def hook_channel(receiver, **extra) -> dict:
    return {"name": "chat", "type": "webhook", "url": receiver.url, "timeout": 5,
            "headers": {"Authorization": "Bearer hook-token-1234"}, **extra}


def run_module(capsys, **args) -> tuple[dict, str]:
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        maintenance_notify.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert result.get("failed", False) == (exited.value.code != 0)
    result.pop("invocation", None)
    assert result_problems(result, check_mode=args.get("_ansible_check_mode", False)) == []
    return result, out


def test_mail_over_starttls_with_login_and_the_webhook_body(smtp, webhook, capsys):
    result, out = run_module(capsys, channels=[mail_channel(smtp), hook_channel(webhook)],
                             subject="[stream_systems] Weekly maintenance: COMPLETED", text="All done.\n",
                             summary=SUMMARY)
    assert not result["changed"]
    assert [(r["name"], r["status"]) for r in result["records"]] == [("smtp operators", "ok"), ("webhook chat", "ok")]
    [mail] = smtp.messages()
    assert mail["tls"] and mail["login"] == smtp.user
    assert mail["mail_from"] == "maintenance@lab.test" and mail["rcpt_tos"] == ["ops@lab.test", "dba@lab.test"]
    message = mail["message"]
    assert message["Subject"] == "[stream_systems] Weekly maintenance: COMPLETED"
    assert message.get_body(("plain",)).get_content() == "All done.\n"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "summary.json" and json.loads(attachment.get_content()) == SUMMARY
    [post] = webhook.received()
    assert post["json"] == {"subject": "[stream_systems] Weekly maintenance: COMPLETED", "text": "All done.\n",
                            "summary": SUMMARY}
    assert post["headers"]["Authorization"] == "Bearer hook-token-1234"
    assert post["headers"]["Content-Type"] == "application/json"
    assert smtp.password not in json.dumps(result["records"]) + result["msg"]


def test_channels_that_fail_are_failed_records_and_do_not_fail_the_task(smtp, webhook, capsys):
    webhook.answer_with(500)
    channels = [mail_channel(smtp, name="wrong password", password="not-the-password"),
                hook_channel(webhook, name="broken hook"),
                mail_channel(smtp, name="down", port=free_port(), username=None, password=None),
                mail_channel(smtp, name="no trust", ca_cert=None)]
    result, out = run_module(capsys, channels=channels, subject="s", text="t")
    status = {r["name"]: (r["status"], r["detail"]) for r in result["records"]}
    assert not result.get("failed")
    assert {r["name"]: r["status"] for r in result["records"]} == {
        "smtp wrong password": "failed", "webhook broken hook": "failed", "smtp down": "failed",
        "smtp no trust": "failed"}
    assert "refused the login as " + smtp.user in status["smtp wrong password"][1]
    assert "535" in status["smtp wrong password"][1]
    assert "answered HTTP 500" in status["webhook broken hook"][1]
    assert "Connection refused" in status["smtp down"][1] or "Errno 111" in status["smtp down"][1]
    assert "CERTIFICATE_VERIFY_FAILED" in status["smtp no trust"][1]
    assert result["msg"].startswith("notice 's' sent to 0 of 4 channel(s); not sent to smtp wrong password")
    assert smtp.messages() == []
    assert [post["json"]["subject"] for post in webhook.received()] == ["s"]  # it was posted, and answered 500
    assert "not-the-password" not in out and "hook-token-1234" not in out

    result, out = run_module(capsys, channels=channels[1:2], subject="s", text="t", fail_on_error=True)
    assert result["failed"] and result["records"][0]["status"] == "failed"


def test_check_mode_sends_only_when_told(smtp, webhook, capsys):
    channels = [mail_channel(smtp), hook_channel(webhook)]
    result = run_module(capsys, channels=channels, subject="plan", text="t", _ansible_check_mode=True)[0]
    assert {r["status"] for r in result["records"]} == {"unchanged"} and not result["changed"]
    assert smtp.messages() == [] and webhook.received() == []
    result = run_module(capsys, channels=channels, subject="plan", text="t", _ansible_check_mode=True,
                        when_check_mode="send")[0]
    assert {r["status"] for r in result["records"]} == {"ok"}
    assert [m["message"]["Subject"] for m in smtp.messages()] == ["plan"]
    assert [p["json"]["subject"] for p in webhook.received()] == ["plan"]


def test_password_without_tls_is_refused_before_anything_is_sent(smtp, webhook, capsys):
    result, out = run_module(capsys, channels=[hook_channel(webhook), mail_channel(smtp, starttls=False)],
                             subject="s", text="t")
    assert result["failed"] and "channel 'operators': refusing to log in without TLS" in result["msg"]
    assert webhook.received() == [] and smtp.messages() == []
    assert smtp.password not in out


PLAYBOOK = textwrap.dedent("""\
    - name: A maintenance run that notifies
      hosts: db
      gather_facts: false
      tasks:
        - name: Maintenance ID and channel check
          ansible.builtin.include_role:
            name: streamops.maintenance.notify
            tasks_from: id
        - name: What the routines would have kept
          ansible.builtin.set_fact:
            maintenance_window_status: {allowed: true, mode: window, inside: true, now: "2026-01-18T07:30:00+00:00",
                                        name: weekly, start: "2026-01-18T02:00:00-05:00",
                                        end: "2026-01-18T04:00:00-05:00", next_start: null, next_window: null,
                                        msg: "inside window 'weekly'"}
            postgres_routine_report_records:
              - name: public.trades
                action: vacuum_full
                status: "{{ 'planned' if ansible_check_mode else 'done' }}"
                detail: "{{ inventory_hostname }} trades"
                before: {total_bytes: 104857600}
                after: null
                seconds: null
        - name: Notify
          ansible.builtin.include_role:
            name: streamops.maintenance.notify
    """)


def test_role_sends_the_plan_in_check_mode_and_the_completion_naming_the_report(smtp, webhook, tmp_path):
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"db": {"hosts": {
        name: {"ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python"),
               "estate": "stream_systems"} for name in ("db1", "db2")}}}))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "vars.yml").write_text(yaml.safe_dump({
        "notify_channels": [mail_channel(smtp), hook_channel(webhook)], "notify_schedule": "weekly",
        "notify_bytes_per_second": 1048576}))
    env = ansible_env(MAINTENANCE_REPORT_DIR=str(tmp_path / "reports"))
    argv = [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml"),
            "-e", f"@{tmp_path / 'vars.yml'}"]

    plan = run(argv + ["--check"], env=ansible_env(MAINTENANCE_REPORT_DIR=str(tmp_path / "plan-reports")), timeout=300)
    assert plan.returncode == 0, output_of(plan)
    [mail] = smtp.messages()
    subject = mail["message"]["Subject"]
    assert subject.startswith("[stream_systems] Planned weekly maintenance 2026-01-18T02:00:00-05:00: "
                              "2 change(s) on 2 host(s)"), subject
    text = mail["message"].get_body(("plain",)).get_content()
    assert "vacuum_full x1: 100.0 MB, ~1m 40s; lock: ACCESS EXCLUSIVE" in text, text
    assert "fits: longest host 1m 40s of a 2h window" in text, text
    [post] = webhook.received()
    assert post["json"]["summary"]["kind"] == "plan" and post["json"]["summary"]["fits_window"] is True
    assert sorted(post["json"]["summary"]["hosts"]) == ["db1", "db2"]

    smtp.clear()
    webhook.clear()
    done = run(argv, env=env, timeout=300)
    assert done.returncode == 0, output_of(done)
    [post] = webhook.received()
    summary = post["json"]["summary"]
    reports = sorted((tmp_path / "reports").glob("MAINT-*.md"))
    assert [p.name for p in reports] == [f"{summary['maintenance_id']}.md"]  # the role's ID named the report
    assert summary["kind"] == "completion" and summary["report"] == str(reports[0])
    assert summary["status"] == "COMPLETED" and summary["hosts"]["db1"]["done"] == 1
    [mail] = smtp.messages()
    assert mail["message"]["Subject"] == f"[stream_systems] Weekly maintenance {summary['maintenance_id']}: COMPLETED"
    report = json.loads(Path(str(reports[0]).replace(".md", ".json")).read_text())
    notified = [e for e in report["hosts"]["db1"]["entries"] if e["role"] == "notify"]
    assert {(e["name"], e["status"]) for e in notified} == {("smtp operators", "ok"), ("webhook chat", "ok")}
