"""Every playbook against the lab estate: --check changes nothing, a real weekly run changes what it reports.

Assertions read the services themselves (estate_state), never only the report. The lab's PostgreSQL accepts
only TLS, and every run here has PGSSLMODE=disable and PGSSLROOTCERT=<a wrong CA> in its environment: the
modules fall back to those when a task does not pass sslmode and ca_cert, so any task that lost the
inventory's TLS options (verify-full with the lab's CA) fails instead of quietly connecting another way.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.helpers import BIN, REPO, ansible_env, lab_inventory, output_of, run
from tests.integration import estate_state

pytestmark = [pytest.mark.integration, pytest.mark.ansible, pytest.mark.k8s]

APPROVAL = {"maintenance_window_emergency": {"approved_by": "cto@example.com", "reason": "drill", "ticket": "INC-1"}}
# Extra vars each playbook needs to run at all.
EXTRA = {
    "daily": {},
    "weekly": {},
    "monthly": {},
    # A time in Q2 by the window's clock (the lab's daily window is open then): the calendar's Q2 items run.
    "quarterly": {"maintenance_window_now": "2027-05-12T12:00:00Z"},
    "emergency": APPROVAL,
    "deploy": {"deploy_version": "2026.12.0", "deploy_change_ticket": "CHG-1"},
    "rollback": {"rollback_to_version": "2026.11.0"},
}


def tls_guard(lab_services):
    """The environment that makes a task without the inventory's TLS options fail."""
    return {"PGSSLMODE": "disable", "PGSSLROOTCERT": lab_services["postgres"]["wrong_ca_cert"]}


def playbook(name, inventory, reports, *extra, env_extra=None):
    env = ansible_env(MAINTENANCE_REPORT_DIR=str(reports), MAINTENANCE_LEAD="test-lead", **(env_extra or {}))
    return run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / f"{name}.yml"), *extra],
               env=env)


# The reviews each cadence runs on the lab (inventory/lab): VitalStream's security scan weekly and later,
# Stream Systems' access review and compliance checks monthly and quarterly.
_MONTHLY_REVIEWS = {"stream-lab": ["access_review", "compliance_review"], "vitalstream-lab": ["security_scan"]}
REVIEWS = {"weekly": {"stream-lab": [], "vitalstream-lab": ["security_scan"]},
           "monthly": _MONTHLY_REVIEWS, "quarterly": _MONTHLY_REVIEWS}


def only_report(reports):
    files = sorted(reports.glob("MAINT-*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text()), files[0].with_suffix(".md").read_text()


def make_dead_tuples(lab_services):
    for estate, table in (("stream_systems", "positions"), ("vitalstream", "alarms")):
        with estate_state.estate_conn(lab_services, estate) as conn:
            conn.execute(f"UPDATE {table} SET id = id WHERE id % 2 = 0")  # noqa: S608 - fixed names


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_check_mode_of_each_playbook_changes_nothing(name, tmp_path, lab_services):
    inventory = lab_inventory(tmp_path, lab_services)
    make_dead_tuples(lab_services)  # so the plan has something to plan
    before = estate_state.snapshot(lab_services, tmp_path / "lab-state")
    result = playbook(name, inventory, tmp_path / "reports", "--check", "-e", json.dumps(EXTRA[name]),
                      env_extra={"ANSIBLE_SHOW_CUSTOM_STATS": "true", **tls_guard(lab_services)})
    after = estate_state.snapshot(lab_services, tmp_path / "lab-state")
    assert result.returncode == 0, output_of(result)
    assert after == before
    report, markdown = only_report(tmp_path / "reports")
    assert report["check_mode"] and "check mode: nothing was changed" in report["status"], report["status"]
    assert set(report["hosts"]) == {"stream-lab", "vitalstream-lab"}
    for host in report["hosts"].values():
        assert not host["actual_changes"], host["actual_changes"]
    # The read-only reviews run for real under --check, where the cadence has them; the lab holds no finding.
    reviews = {host: sorted(data.get("reviews") or {}) for host, data in report["hosts"].items()}
    assert reviews == REVIEWS.get(name, {"stream-lab": [], "vitalstream-lab": []}), reviews
    for host, data in report["hosts"].items():
        for review in (data.get("reviews") or {}).values():
            assert review["findings"] == [] and review["passed"] > 0, (host, review)
    # The same records reach AWX as set_stats artifacts.
    stats = result.stdout[result.stdout.index("CUSTOM STATS"):]
    assert "stream-lab" in stats and "vitalstream-lab" in stats and "maintenance_report" in stats, stats[:2000]
    assert "Maintenance ID: MAINT-" in markdown
    if name == "quarterly":
        assert_q2_calendar(report, markdown)
    if name == "daily":
        # backup:verify_latest ran after the window: the fresh lab state holds no set yet, which is its own
        # status (unknown), neither a verified set nor a crash.
        for host, data in report["hosts"].items():
            verdicts = [e for e in data["entries"] if e["role"] == "backup" and e["action"] == "verified"]
            assert [e["status"] for e in verdicts] == ["unknown"], (host, verdicts)


def assert_q2_calendar(report, markdown):
    """The quarterly run in Q2: the report lists Q2's manual items of the lab's calendar once, as the team's
    checklist, and the restore validation (backup:validate) ran on each estate before the final health check."""
    import yaml  # noqa: PLC0415

    calendar = yaml.safe_load((REPO / "inventory" / "lab" / "group_vars" / "all" / "calendar.yml").read_text())
    q2 = calendar["maintenance_calendar"]["q2"]
    assert "## Manual items this quarter (Q2 2027)" in markdown
    for item in q2["manual"]:
        assert markdown.count(f"- [ ] {item}\n") == 1, item
    for host, data in report["hosts"].items():
        assert data["calendar"]["quarter"] == "Q2", (host, data["calendar"])
        assert [i["step"] for i in data["calendar"]["automated"]] == [i["step"] for i in q2["automated"]]
        # backup:validate restore-tests the newest set under the estate's root; in check mode the backup step
        # wrote none, so its verdict says so (unknown) — a record only the validation makes under --check.
        verdicts = [e for e in data["entries"] if e["role"] == "backup" and e["action"] == "verified"]
        assert verdicts and all(e["status"] != "ok" for e in verdicts), (host, verdicts)
        validate = next(i for i in data["calendar"]["automated"] if i["step"] == "backup:validate")
        assert validate["outcome"] not in ("not run", "failed"), (host, validate)
    assert "### Maintenance calendar Q2 2027: automated items" in markdown


def test_weekly_changes_what_it_reports_and_the_report_has_real_figures(tmp_path, lab_services):
    inventory = lab_inventory(tmp_path, lab_services)
    make_dead_tuples(lab_services)
    dead_before = estate_state.dead_tuples(lab_services, "stream_systems", "positions")
    assert dead_before >= 10000
    result = playbook("weekly", inventory, tmp_path / "reports", env_extra=tls_guard(lab_services))
    assert result.returncode == 0, output_of(result)
    report, markdown = only_report(tmp_path / "reports")
    assert report["status"] == "COMPLETED", report

    # PostgreSQL: the server has no dead tuples left in positions, and the report's figure is the server's.
    assert estate_state.dead_tuples(lab_services, "stream_systems", "positions") < 1000
    stream = report["hosts"]["stream-lab"]
    summary = next(e for e in stream["entries"] if e["role"] == "postgres_routine" and e["action"] == "summary")
    # Not >= dead_before: every read between the two (health check, backup) prunes pages and lowers the count.
    assert int(summary["before"]["dead_tuples"]) >= 5000
    assert int(summary["after"]["dead_tuples"]) < 1000
    assert re.search(r"dead tuples \d+ -> \d+", markdown)

    # Redis: the ratio the report gives after the run is what the server says now.
    redis_entry = next(e for e in stream["entries"] if e["role"] == "redis_routine" and e["action"] == "summary")
    info = estate_state.redis_client(lab_services).info("memory")
    assert abs(float(redis_entry["after"]["ratio"]) - info["used_memory"] / info["maxmemory"]) < 0.05

    # Backups: one verified set per estate on disk, its manifest and verification in S3, no scratch database left.
    keys = estate_state.s3_state(lab_services)
    for estate, host in (("stream_systems", "stream-lab"), ("vitalstream", "vitalstream-lab")):
        sets = list((tmp_path / "lab-state" / "backups" / estate).glob("*/verified.json"))
        assert len(sets) == 1, sets
        verified = json.loads(sets[0].read_text())
        assert {c["status"] for c in verified["checks"]} == {"ok"}
        assert "restore" in {c["check"] for c in verified["checks"]}
        set_id = sets[0].parent.name
        assert any(k.endswith(f"{set_id}/manifest.json") for k in keys[estate]), keys[estate]
        entry = next(e for e in report["hosts"][host]["entries"] if e["role"] == "backup" and e["action"] == "verified")
        assert entry["status"] == "ok" and entry["after"]["verified"] is True
    assert not [d for d in estate_state.postgres_state(lab_services)["databases"] if d.startswith("streamops_verify")]
    assert stream["timing"]["in_services_s"] > 0

    # Prometheus: the week's TSDB snapshot is on each estate's server's disk, holding data, its size in the report.
    from pathlib import Path  # noqa: PLC0415

    for estate, host in (("stream_systems", "stream-lab"), ("vitalstream", "vitalstream-lab")):
        on_disk = Path(lab_services["prometheus"][estate]["data_dir"]) / "snapshots"
        entry = next(e for e in report["hosts"][host]["entries"]
                     if e["role"] == "monitoring_tsdb" and e["action"] == "snapshot")
        # done, or ok when a snapshot of the last 6 days (reuse_within) was there already (the molecule scenario's).
        assert entry["status"] in ("done", "ok"), entry
        assert (on_disk / entry["after"]["name"]).is_dir() and entry["after"]["bytes"] > 0, entry
        assert f"snapshot {entry['after']['name']}: " in markdown


def live_versions(lab_services):
    """What really answers, per estate: Kubernetes through the colour the Service selects, compose through nginx."""
    import urllib.request  # noqa: PLC0415

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    stream = lab_services["bluegreen"]["stream_systems"]
    service = estate_state.kubectl_json(lab_services, "-n", stream["kubernetes"]["namespace"], "get", "service",
                                        stream["kubernetes"]["service"])
    colour = service["spec"]["selector"]["color"]
    with direct.open(f"http://127.0.0.1:{stream['ports'][colour]}/version", timeout=10) as answer:
        k8s = answer.read().decode().strip()
    with direct.open(lab_services["bluegreen"]["vitalstream"]["front_url"] + "/version", timeout=10) as answer:
        compose = answer.read().decode().strip()
    return {"stream_systems": (colour, k8s), "vitalstream": compose}


def test_deploy_then_rollback_playbooks_move_the_traffic_and_back(tmp_path, lab_services):
    """The deploy and rollback playbooks for real, against the TLS-only PostgreSQL (the deploy takes a backup)."""
    inventory = lab_inventory(tmp_path, lab_services)
    before = live_versions(lab_services)
    target = EXTRA["deploy"]["deploy_version"]
    deployed = playbook("deploy", inventory, tmp_path / "deploy-reports", "-e", json.dumps(EXTRA["deploy"]),
                        env_extra=tls_guard(lab_services))
    assert deployed.returncode == 0, output_of(deployed)
    moved = live_versions(lab_services)
    assert moved["stream_systems"][1] == target and moved["stream_systems"][0] != before["stream_systems"][0]
    assert moved["vitalstream"] == target
    report, _markdown = only_report(tmp_path / "deploy-reports")
    assert report["status"] == "COMPLETED", report
    for host in report["hosts"].values():
        live = [e for e in host["entries"] if e["role"] == "deploy" and e["action"] == "live"]
        assert [e["status"] for e in live] == ["ok"] and live[0]["after"]["version"] == target

    rolled_back = playbook("rollback", inventory, tmp_path / "rollback-reports", env_extra=tls_guard(lab_services))
    assert rolled_back.returncode == 0, output_of(rolled_back)
    assert live_versions(lab_services) == before
    report, _markdown = only_report(tmp_path / "rollback-reports")
    assert report["status"] == "COMPLETED", report
    assert all(any(e["role"] == "rollback" and e["action"] == "rollback" and e["status"] == "done"
                   for e in host["entries"]) for host in report["hosts"].values()), report
