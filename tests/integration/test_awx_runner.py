"""weekly.yml as AWX runs it: ansible-runner, the collection's execution environment, injected credentials.

The job is the one the generated controller configuration describes (python -m controller_config,
from the lab inventory): its job template, its credentials injected as AWX injects them (the
configuration's credential types, rendered in AWX's sandbox), its inventory as AWX hands it over
(a script printing the synced inventory, here with every secret taken out, so the connections can
only come from the credentials), the job's own AWX variables and environment. ansible-runner runs
it inside the EE image with container isolation, on the host's network, against the lab.

Asserted on runner's artifacts (status, rc, the playbook_on_stats event's artifact_data, stdout and
every job_events/*.json, none of which may hold a password, the S3 secret key or a private key),
on the report the callback wrote, and on what the lab services hold afterwards.
"""
from __future__ import annotations

import json
import re
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from controller_config.build import generate, load_settings, load_yaml, render_yaml
from lab.harness.awx import job_from_config
from lab.seed import make_lab_logs
from tests.helpers import BIN, REPO, ansible_env, lab_inventory

# A cold EE build (when `make ee` did not run first) takes minutes: the first test pays it.
pytestmark = [pytest.mark.integration, pytest.mark.ansible, pytest.mark.docker, pytest.mark.k8s,
              pytest.mark.timeout(1800)]

HIDDEN = "(taken from the AWX credential)"
ROLES = {"maintenance_window", "health_check", "backup", "postgres_routine", "redis_routine", "log_maintenance"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # AWX runs with ANSIBLE_FORCE_COLOR


def _strip_secrets(lab_services: dict) -> dict:
    """lab_services as an AWX inventory sync would hold it if nobody had put a secret in the inventory."""
    services = json.loads(json.dumps(lab_services))
    for estate in services["postgres"]["estates"].values():
        estate["password"] = HIDDEN
    services["postgres"]["admin_password"] = HIDDEN
    if "password" in services["redis"]:
        services["redis"]["password"] = HIDDEN
    services["s3"]["secret_key"] = HIDDEN
    return services


def _vault(lab_services: dict) -> dict[str, str]:
    """What the operator's vault holds: the values of the vault variables the configuration names."""
    vault = {}
    for estate, facts in lab_services["postgres"]["estates"].items():
        vault[f"vault_streamops_{estate}_postgres_password"] = facts["password"]
        vault[f"vault_streamops_{estate}_restore_test_password"] = lab_services["postgres"]["admin_password"]
        vault[f"vault_streamops_{estate}_redis_password"] = lab_services["redis"].get("password", "")
        vault[f"vault_streamops_{estate}_s3_secret_key"] = lab_services["s3"]["secret_key"]
    return vault


def _filled(inputs: dict, vault: dict[str, str]) -> dict:
    """The inputs as the dispatch playbook sends them to AWX: vault references templated, empty ones left out."""
    out = {}
    for key, value in inputs.items():
        match = re.fullmatch(r"\{\{ (\w+) \}\}", value) if isinstance(value, str) else None
        value = vault[match.group(1)] if match else value
        if value != "":
            out[key] = value
    return out


def _secrets(lab_services: dict) -> dict[str, str]:
    """Every value that must never be printed, and what it is."""
    found = {f"PostgreSQL password of {estate}": facts["password"]
             for estate, facts in lab_services["postgres"]["estates"].items()}
    found["PostgreSQL admin password"] = lab_services["postgres"]["admin_password"]
    found["S3 secret key"] = lab_services["s3"]["secret_key"]
    if lab_services["redis"].get("password"):
        found["Redis password"] = lab_services["redis"]["password"]
    kubeconfig = yaml.safe_load(Path(lab_services["k8s"]["kubeconfig"]).read_text())
    for user in kubeconfig.get("users", []):
        if user["user"].get("token"):
            found["Kubernetes token"] = user["user"]["token"]
    key = Path(lab_services["postgres"]["ca_cert"]).with_name("server.key")
    if key.exists():
        found["PostgreSQL server private key"] = "".join(key.read_text().splitlines()[1:3])
    return {what: value for what, value in found.items() if value}


@pytest.fixture(scope="module")
def awx_lab(lab_services, ee_image, tmp_path_factory):
    """The generated configuration of the lab, the AWX-side inventory, and the credentials' inputs."""
    base = tmp_path_factory.mktemp("awx")
    settings = load_settings(REPO / "lab" / "controller-settings.yml")
    settings["execution_environment"]["image"] = ee_image
    inventory = lab_inventory(base / "generator", lab_services)
    now = datetime.now(timezone.utc)
    generated = generate(REPO, inventory, settings, now)
    config = load_yaml(render_yaml(generated, inventory="inventory/lab", now=now))
    # The inventory AWX syncs from the project (ansible-inventory --list --export), with no secret in it.
    awx_inventory = lab_inventory(base / "awx-source", _strip_secrets(lab_services))
    listed = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(awx_inventory), "--list", "--export"],
                            capture_output=True, text=True, env=ansible_env(), check=True)
    vault = _vault(lab_services)
    ca_pem = Path(lab_services["postgres"]["ca_cert"]).read_text()
    inputs = {}
    for credential in config["controller_credentials"]:
        filled = _filled(credential["inputs"], vault)
        if credential["credential_type"].startswith("streamops PostgreSQL"):
            filled["ca_cert"] = ca_pem  # pasted by the operator: the CA file is not on the EE
        inputs[credential["name"]] = filled
    return {"config": config, "inventory": json.loads(listed.stdout), "inputs": inputs, "base": base,
            "secrets": _secrets(lab_services), "image": ee_image, "lab": lab_services}


def _mounts(lab: dict, job_root: Path) -> list[str]:
    """Host paths the lab's jobs need, at the same path (AWX: "Paths to expose to isolated jobs")."""
    kube_dir = str(Path(lab["k8s"]["kubeconfig"]).parent)
    socket = lab["compose"]["docker_host"].removeprefix("unix://")
    # The private data dir at its own path too: the lab's logrotate configs name their logs by absolute path.
    # Each estate's Prometheus data directory: the weekly snapshot is measured and its retention applied there
    # (in production the monitoring role delegates to the Prometheus host instead).
    data_dirs = [server["data_dir"] for server in lab.get("prometheus", {}).values()]
    # VitalStream's TLS front: the daily health check reads its certificate file (on the host, in production).
    tls_dir = str(Path(lab["tls"]["tls_nginx_cert_path"]).parent)
    # The CA of the lab's SMTP server, which the notification channel verifies STARTTLS with (in production the
    # EE trusts the mail relay's CA, or the channel's ca_cert is a path the job can read).
    smtp_ca_dir = str(Path(lab["notify"]["smtp"]["ca_cert"]).parent)
    # The web app's compose project: the weekly Docker cleanup reads its blue/green state there (on the Docker host,
    # where the module runs, in production).
    web_project = lab["bluegreen"]["vitalstream"]["compose"]["project_dir"]
    return ([f"{kube_dir}:{kube_dir}:ro", f"{socket}:{socket}", f"{job_root}:{job_root}", f"{tls_dir}:{tls_dir}:ro",
             f"{smtp_ca_dir}:{smtp_ca_dir}:ro", f"{web_project}:{web_project}:ro"]
            + [f"{path}:{path}" for path in data_dirs])


def _run(awx_lab: dict, estate: str, verbosity: int, job_id: int) -> dict:
    import ansible_runner  # noqa: PLC0415

    root = awx_lab["base"] / f"job-{job_id}"
    template = f"streamops {estate} weekly"
    job = job_from_config(awx_lab["config"], template, awx_lab["inputs"], root, repo=REPO,
                          inventory=awx_lab["inventory"], job_id=job_id)
    make_lab_logs(root / "lab-state")  # the lab inventory keeps its state beside the inventory: /runner/lab-state
    template_spec = next(t for t in awx_lab["config"]["controller_templates"] if t["name"] == template)
    ident = f"job{job_id}"
    result = ansible_runner.run(
        private_data_dir=str(job.root), playbook=template_spec["playbook"], limit=template_spec["limit"],
        verbosity=verbosity, ident=ident, quiet=True,
        process_isolation=True, process_isolation_executable="docker", container_image=awx_lab["image"],
        container_options=["--network=host"], container_volume_mounts=_mounts(awx_lab["lab"], job.root))
    artifacts = job.root / "artifacts" / ident
    return {"status": result.status, "rc": result.rc, "root": job.root, "artifacts": artifacts, "estate": estate,
            "stdout": ANSI.sub("", (artifacts / "stdout").read_text(errors="replace")), "verbosity": verbosity}


@pytest.fixture(scope="module")
def jobs(awx_lab):
    """Both estates' weekly jobs at once (as two scheduled AWX jobs would run), at verbosity 0 and then 3."""
    done = []
    for round_number, verbosities in enumerate(((0, 3), (3, 0))):
        threads, found = [], {}
        for index, (estate, verbosity) in enumerate(zip(("stream_systems", "vitalstream"), verbosities)):
            job_id = 100 + round_number * 10 + index

            def work(estate=estate, verbosity=verbosity, job_id=job_id):
                found[job_id] = _run(awx_lab, estate, verbosity, job_id)

            threads.append(threading.Thread(target=work))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=900)
        done += [found[key] for key in sorted(found)]
    return done


def _events(job: dict) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((job["artifacts"] / "job_events").glob("*.json"))]


def test_weekly_succeeds_in_the_execution_environment(jobs):
    for job in jobs:
        assert (job["status"], job["rc"]) == ("successful", 0), job["stdout"][-6000:]
        assert "no hosts matched" not in job["stdout"]
        assert (job["artifacts"] / "status").read_text().strip() == "successful"
        assert (job["artifacts"] / "rc").read_text().strip() == "0"
    assert sorted((job["estate"], job["verbosity"]) for job in jobs) == [
        ("stream_systems", 0), ("stream_systems", 3), ("vitalstream", 0), ("vitalstream", 3)]


def test_the_stats_event_carries_every_hosts_maintenance_records(jobs, awx_lab):
    hosts = {"stream_systems": "stream-lab", "vitalstream": "vitalstream-lab"}
    for job in jobs:
        stats = [e for e in _events(job) if e.get("event") == "playbook_on_stats"]
        assert len(stats) == 1
        published = stats[0]["event_data"]["artifact_data"]["maintenance_report"]
        assert set(published) == {hosts[job["estate"]]}
        host = published[hosts[job["estate"]]]
        assert host["estate"] == job["estate"] and host["playbook"] == "weekly"
        assert ROLES <= set(host["records"]), sorted(host["records"])
        assert host["window"]["allowed"] is True
        assert not host["issues"], host["issues"]


def test_the_report_is_written_and_says_completed(jobs):
    for job in jobs:
        reports = sorted((job["root"] / "project" / "reports").glob("MAINT-*.json"))
        assert len(reports) == 1, reports
        report = json.loads(reports[0].read_text())
        assert report["status"] == "COMPLETED", report["hosts"]
        assert reports[0].with_suffix(".md").exists()


def test_the_connections_came_from_the_credentials_and_the_services_hold_the_work(jobs, awx_lab):
    import boto3  # noqa: PLC0415

    s3 = awx_lab["lab"]["s3"]
    client = boto3.client("s3", endpoint_url=s3["endpoint_url"], region_name=s3["region"],
                          aws_access_key_id=s3["access_key"], aws_secret_access_key=s3["secret_key"])
    for job in jobs:
        # The inventory held no password: every backup set under this job's root exists, verified.
        verified = list((job["root"] / "lab-state" / "backups" / job["estate"]).glob("*/verified.json"))
        assert verified, f"no verified set for {job['estate']}"
        manifest = json.loads((verified[0].parent / "manifest.json").read_text())
        bucket = s3["estates"][job["estate"]]["bucket"]
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert any(key.endswith(f"{manifest['backup_id']}/manifest.json") for key in keys), keys[:20]
        # The connections' check ran and named what the credentials filled, no secret in the words.
        assert "Connections from AWX credentials" in job["stdout"]
        for variable in ("postgres_login", "backup_verify_login", "redis_login", "s3_login"):
            assert variable in job["stdout"]


def test_no_secret_reaches_stdout_or_any_job_event(jobs, awx_lab):
    assert len(awx_lab["secrets"]) >= 4, sorted(awx_lab["secrets"])
    for job in jobs:
        texts = {"stdout": job["stdout"]}
        texts.update({f"job_events/{path.name}": path.read_text(errors="replace")
                      for path in (job["artifacts"] / "job_events").glob("*.json")})
        for where, text in texts.items():
            for what, secret in awx_lab["secrets"].items():
                assert secret not in text, f"{what} in {where} of {job['estate']} at -v{job['verbosity']}"
            assert "PRIVATE KEY" not in text, f"a private key in {where} of {job['estate']}"
    # At -vvv there is more to leak: the runs did print module invocations.
    verbose = next(job for job in jobs if job["verbosity"] == 3)
    assert "ESTABLISH LOCAL CONNECTION" in verbose["stdout"]


# The job's environment is where AWX puts the secrets: runner keeps it in these files (AWX deletes the
# private data dir after the job); no other file of the job (report, fact cache, backups, logs) holds one.
ENVIRONMENT_FILES = ("env/envvars", "artifacts/{ident}/env.list", "artifacts/{ident}/command")


def test_secrets_are_only_in_the_jobs_environment_files_which_only_root_reads(jobs, awx_lab):
    for job in jobs:
        ident = job["artifacts"].name
        allowed = {job["root"] / name.format(ident=ident) for name in ENVIRONMENT_FILES}
        for path in (p for p in job["root"].rglob("*") if p.is_file() and not p.is_symlink()):
            if path in allowed:
                # Readable by root alone: the file itself, or the directory it is in.
                assert path.stat().st_mode & 0o077 == 0 or path.parent.stat().st_mode & 0o077 == 0, path
                continue
            data = path.read_bytes()
            for what, secret in awx_lab["secrets"].items():
                assert secret.encode() not in data, f"{what} in {path.relative_to(job['root'])}"
