"""A credential of another estate attached to a job is refused before any work, with both estates named.

No service is reached: the check is the checklist's first task. The credential is the generated
credential type, injected as AWX injects it (lab/harness/awx.py).
"""
from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import job_credentials as jc
from lab.harness.awx import inject_credential
from tests.helpers import BIN, REPO, ansible_env, output_of, run

pytestmark = [pytest.mark.integration, pytest.mark.ansible]


def test_a_vitalstream_credential_on_a_stream_systems_job_stops_it_and_says_why(tmp_path):
    vitalstream = {"estate": "vitalstream", "host": "db.invalid", "database": "vitalstream",
                   "username": "vitalstream_user", "password": "not-used-anywhere"}
    env, cmdline = inject_credential(jc.credential_type(jc.credential("postgres")), vitalstream, tmp_path,
                                     container_root=str(tmp_path))
    assert cmdline == []
    result = run([str(BIN / "ansible-playbook"), "-i", "inventory/example", "--limit", "stream_systems",
                  str(REPO / "playbooks" / "weekly.yml")],
                 env=ansible_env(MAINTENANCE_REPORT_DIR=str(tmp_path / "reports"), ANSIBLE_NOCOLOR="1", **env))
    assert result.returncode != 0, output_of(result)
    assert ("the PostgreSQL credential attached to this job is for estate 'vitalstream', but this host is in "
            "estate 'stream_systems'") in result.stdout, output_of(result)
    # Nothing after the check ran: the window gate is the first step and it did not start.
    assert "Decide on the maintenance window" not in result.stdout
    assert "not-used-anywhere" not in result.stdout + result.stderr
