"""Each role's molecule scenario (syntax, converge, idempotence, verify, cleanup)."""
from __future__ import annotations

import pytest

from tests.helpers import BIN, REPO, ansible_env, output_of, run

pytestmark = pytest.mark.molecule

SCENARIOS = sorted(
    (p.parent.parent.parent.name, p.parent.name)
    for p in (REPO / "roles").glob("*/molecule/*/molecule.yml")
)


@pytest.mark.parametrize(("role", "scenario"), SCENARIOS, ids=[f"{r}-{s}" for r, s in SCENARIOS])
def test_molecule_scenario(role, scenario, tmp_path, lab_services_file):
    # Scenarios reach the lab estate through vars_files: "{{ lookup('env', 'STREAMOPS_LAB_SERVICES') }}".
    env = ansible_env(MOLECULE_NO_LOG="false", XDG_CACHE_HOME=str(tmp_path / "cache"),
                      STREAMOPS_LAB_SERVICES=str(lab_services_file))
    # Molecule keeps a scenario's state (prepared or not, files it wrote) in ~/.ansible/tmp between runs,
    # keyed by role and scenario: a run must start from none of an earlier run's state.
    reset = run([str(BIN / "molecule"), "reset", "-s", scenario], env=env, cwd=REPO / "roles" / role)
    assert reset.returncode == 0, output_of(reset)
    result = run([str(BIN / "molecule"), "test", "-s", scenario], env=env, cwd=REPO / "roles" / role)
    assert result.returncode == 0, output_of(result)
