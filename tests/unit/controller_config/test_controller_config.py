"""The AWX controller configuration generated from the collection's own data (python -m controller_config).

Read from inventory/example and the repository as they are: a playbook or a role option added
later shows up here without anyone editing the generator.
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils import awx_schedule, awx_survey, window
from ansible_collections.streamops.maintenance.plugins.modules import maintenance_window
from controller_config.build import VARIABLES, generate, load_settings, load_yaml, render_yaml
from controller_config.sources import SourceError
from controller_config.validate import reference_problems, survey_schema_problems, validate

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "inventory" / "example"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
PLAYBOOKS = ("daily", "deploy", "emergency", "monthly", "quarterly", "restore", "rollback", "weekly")
ESTATES = ("stream_systems", "vitalstream")
UTC = timezone.utc


@pytest.fixture(scope="module")
def generated():
    return generate(REPO, EXAMPLE, load_settings(None), NOW)


@pytest.fixture(scope="module")
def config(generated):
    # As the dispatch playbook's awx.awx modules receive it: through the YAML the generator writes.
    return load_yaml(render_yaml(generated, inventory="inventory/example", now=NOW))


def by_name(config, variable):
    return {item["name"]: item for item in config[variable]}


def test_every_variable_of_infra_aap_configuration_is_there(config):
    assert list(config) == list(VARIABLES)
    assert all(config[name] for name in VARIABLES)


def test_a_job_template_per_playbook_and_estate_with_its_own_credentials(config):
    templates = by_name(config, "controller_templates")
    assert set(templates) == {f"streamops {e} {p}" for e in ESTATES for p in PLAYBOOKS}
    for estate in ESTATES:
        for playbook in PLAYBOOKS:
            template = templates[f"streamops {estate} {playbook}"]
            assert template["playbook"] == f"playbooks/{playbook}.yml"
            assert template["limit"] == estate
            assert template["execution_environment"] == "streamops maintenance EE"
            assert template["allow_simultaneous"] is False  # a second run of the checklist waits for the first
            assert sorted(template["credentials"]) == sorted(
                f"streamops {estate} {title}" for title in ("PostgreSQL", "PostgreSQL restore-test server", "Redis",
                                                            "S3 backups"))
    assert reference_problems(config) == []


def test_credentials_carry_the_inventory_connection_and_only_vault_references_for_secrets(config, generated):
    creds = by_name(config, "controller_credentials")
    pg = creds["streamops stream_systems PostgreSQL"]
    assert pg["credential_type"] == "streamops PostgreSQL"
    assert pg["inputs"] == {"estate": "stream_systems", "host": "postgres-service", "database": "streamsystems",
                            "username": "stream_user", "password": "{{ vault_streamops_stream_systems_postgres_password }}",
                            "sslmode": "verify-full"}
    s3 = creds["streamops vitalstream S3 backups"]["inputs"]
    assert s3["bucket"] == "vitalstream-backups" and s3["secret_key"].startswith("{{ vault_streamops_vitalstream_s3")
    assert "vault_streamops_vitalstream_redis_password" in generated.vault_variables
    text = render_yaml(generated, inventory="inventory/example", now=NOW)
    # AWX's injector templates are !unsafe (Ansible must not render them); the vault references are not.
    assert "STREAMOPS_POSTGRES_PASSWORD: !unsafe '{{ password }}'" in text
    assert "password: '{{ vault_streamops_stream_systems_postgres_password }}'" in text
    assert "change-me" not in text  # the example vault's values are never read


SURVEYS = {
    "deploy": [("deploy_version", "text", True), ("deploy_change_ticket", "text", False),
               ("deploy_reason", "text", False)],
    "rollback": [("rollback_to_version", "text", False), ("rollback_change_ticket", "text", False),
                 ("rollback_reason", "text", False)],
    "emergency": [("maintenance_window_emergency_approved_by", "text", True),
                  ("maintenance_window_emergency_reason", "text", True),
                  ("maintenance_window_emergency_ticket", "text", True)],
    # The approval is optional here: inside a window a restore needs none.
    "restore": [("restore_hosts", "text", True), ("restore_set", "text", False), ("restore_accept", "text", False),
                ("maintenance_window_emergency_approved_by", "text", False),
                ("maintenance_window_emergency_reason", "text", False),
                ("maintenance_window_emergency_ticket", "text", False)],
}


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_surveys_come_from_the_roles_argument_specs(config, playbook):
    template = by_name(config, "controller_templates")[f"streamops vitalstream {playbook}"]
    if playbook not in SURVEYS:
        assert template["survey_enabled"] is False and "survey_spec" not in template
        return
    spec = template["survey_spec"]
    assert template["survey_enabled"] is True
    assert [(q["variable"], q["type"], q["required"]) for q in spec["spec"]] == SURVEYS[playbook]
    assert survey_schema_problems(spec) == [] and awx_survey.survey_problems(spec) == []
    specs = yaml.safe_load((REPO / "roles" / "deploy" / "meta" / "argument_specs.yml").read_text())
    if playbook == "deploy":  # the help text is the option's description, without markup
        described = " ".join(specs["argument_specs"]["main"]["options"]["deploy_version"]["description"])
        assert spec["spec"][0]["question_description"] == re.sub(r"\s+", " ", described)


def test_a_playbook_added_later_is_covered_without_editing_the_generator(tmp_path):
    repo = tmp_path / "repo"
    for part in ("playbooks", "roles", "inventory"):
        shutil.copytree(REPO / part, repo / part, ignore=shutil.ignore_patterns("molecule", "lab_services.yml"))
    shutil.copy(REPO / "galaxy.yml", repo / "galaxy.yml")
    (repo / "playbooks" / "restore.yml").write_text(
        "---\n# Restore a verified backup set (a later issue's playbook).\n"
        "- name: Restore\n  hosts: stream_systems:vitalstream\n  gather_facts: false\n"
        "  vars:\n    maintenance_launch_inputs: [{name: maintenance_window_emergency_ticket, required: true}]\n"
        "  roles:\n    - streamops.maintenance.maintenance_window\n    - streamops.maintenance.backup\n")
    made = generate(repo, repo / "inventory" / "example", load_settings(None), NOW)
    templates = {t["name"]: t for t in made.config["controller_templates"]}
    restore = templates["streamops stream_systems restore"]
    assert restore["playbook"] == "playbooks/restore.yml"
    assert restore["description"] == "Restore a verified backup set (a later issue's playbook)."
    assert [q["variable"] for q in restore["survey_spec"]["spec"]] == ["maintenance_window_emergency_ticket"]
    # A launch input no role documents is refused, naming it.
    (repo / "playbooks" / "restore.yml").write_text(
        (repo / "playbooks" / "restore.yml").read_text().replace("maintenance_window_emergency_ticket", "restore_set"))
    with pytest.raises(SourceError, match="launch input 'restore_set' is not an option of role maintenance_window"):
        generate(repo, repo / "inventory" / "example", load_settings(None), NOW)


# --------------------------------------------------------------------------- schedules and windows

def inventory_windows():
    """The windows and blackouts straight from the example inventory, not through the generator."""
    data = yaml.safe_load((EXAMPLE / "group_vars" / "all" / "main.yml").read_text())
    zone = data["maintenance_window_timezone"]
    return (window.parse_windows(data["maintenance_windows"], zone), window.parse_blackouts(
        data["maintenance_window_blackouts"], zone), data["maintenance_schedule_windows"])


def test_only_gated_playbooks_without_required_questions_are_scheduled(config):
    names = {s["unified_job_template"] for s in config["controller_schedules"]}
    assert names == {f"streamops {e} {p}" for e in ESTATES for p in ("daily", "weekly", "monthly", "quarterly")}


# The check: the next 24 runs of each schedule, with dateutil as AWX computes them, are the window openings
# maintenance_window computes; from three starting points, so both 2027 daylight-saving changes are crossed.
@pytest.mark.parametrize("start", [NOW, datetime(2027, 2, 20, tzinfo=UTC), datetime(2027, 10, 1, tzinfo=UTC)],
                         ids=["now", "before-spring-forward", "before-fall-back"])
def test_each_schedule_runs_exactly_when_its_window_opens(config, start):
    windows, blackouts, schedule_windows = inventory_windows()
    for schedule in config["controller_schedules"]:
        playbook = schedule["unified_job_template"].rsplit(" ", 1)[1]
        name = schedule_windows[playbook]
        # The daily checks only record their window, so a blackout does not hold them back.
        holes = [] if playbook == "daily" else blackouts
        openings = window.window_openings(windows, holes, start, window_name=name, count=24)
        runs = awx_schedule.awx_occurrences(schedule["rrule"], after=start, count=24)
        assert runs == openings, schedule["name"]
        assert len(runs) == (1 if playbook == "quarterly" and start == NOW else 0 if playbook == "quarterly" else 24)


def test_the_weekly_schedule_crosses_both_2027_dst_changes_at_the_window_opening(config, capsys):
    weekly = next(s for s in config["controller_schedules"] if s["unified_job_template"] == "streamops vitalstream weekly")
    runs = awx_schedule.awx_occurrences(weekly["rrule"], after=datetime(2027, 3, 1, tzinfo=UTC), count=40)
    assert datetime(2027, 3, 14, 7, 0, tzinfo=UTC) in runs   # 03:00 EDT: 02:00 does not exist that day
    assert datetime(2027, 11, 7, 7, 0, tzinfo=UTC) in runs   # 02:00 EST, the fall-back Sunday
    windows, blackouts = inventory_windows()[:2]
    for run in runs[:12] + runs[-12:]:
        # The maintenance_window module itself, as the gate would run at that moment: inside, and just opened.
        with patch_module_args({"windows": [{"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0",
                                             "duration": "2h", "timezone": "America/New_York"}],
                                "window": "weekly", "now": run.isoformat()}), pytest.raises(SystemExit):
            maintenance_window.main()
        decision = json.loads(capsys.readouterr().out)["window"]
        assert decision["inside"] and datetime.fromisoformat(decision["start"]) == run, (run, decision)


# --------------------------------------------------------------------------- offline validation

def test_the_configuration_passes_the_awx_awx_modules_argument_validation(config):
    awx = REPO / "build" / "vendor" / "awx"
    assert (awx / "ansible_collections" / "awx" / "awx").is_dir(), "run `make deps`: it unpacks awx.awx there"
    assert validate(config, awx) == []


def test_the_validation_catches_what_awx_would_refuse(config):
    broken = json.loads(json.dumps(config))
    broken["controller_templates"][0]["playbok"] = "x"
    broken["controller_templates"][1]["survey_spec"]["spec"][0]["default"] = 3
    broken["controller_schedules"][0]["rrule"] = "DTSTART:20270101T000000 RRULE:FREQ=DAILY;BYDAY=1SU"
    broken["controller_credentials"][0]["credential_type"] = "streamops MongoDB"
    problems = "\n".join(validate(broken, REPO / "build" / "vendor" / "awx"))
    assert "awx.awx.job_template refuses 'streamops stream_systems daily': Unsupported parameters" in problems
    assert "default 3 does not fit type text" in problems
    assert "DTSTART cannot be a naive datetime" in problems and "INTERVAL is required" in problems
    assert "refers to 'streamops MongoDB', which controller_credential_types does not define" in problems
