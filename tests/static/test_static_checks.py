"""The static gates a collection must pass, run as tests so `make test` has one summary."""
from __future__ import annotations

import pytest

from tests.helpers import BIN, REPO, ansible_env, output_of, run

pytestmark = pytest.mark.static

MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
ROLES = sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))


def test_ansible_test_sanity():
    result = run(["bash", str(REPO / "scripts" / "ansible-test-sanity.sh")], timeout=1500)
    assert result.returncode == 0, output_of(result)


def test_ansible_lint_production_profile():
    result = run(["bash", str(REPO / "scripts" / "ansible-lint.sh")], timeout=900)
    assert result.returncode == 0, output_of(result)


def test_changelog_fragments_lint():
    result = run(["bash", str(REPO / "scripts" / "changelog-lint.sh")])
    assert result.returncode == 0, output_of(result)


@pytest.mark.parametrize("module", MODULES)
def test_module_doc_renders(module):
    result = run([str(BIN / "ansible-doc"), f"streamops.maintenance.{module}"], env=ansible_env())
    assert result.returncode == 0, output_of(result)
    assert "EXAMPLES:" in result.stdout and "RETURN VALUES:" in result.stdout, result.stdout[:2000]
    assert "ERROR" not in result.stderr, result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_role_argument_spec_renders(role):
    result = run([str(BIN / "ansible-doc"), "-t", "role", f"streamops.maintenance.{role}"], env=ansible_env())
    assert result.returncode == 0, output_of(result)
    assert "ENTRY POINT: *main*" in result.stdout, result.stdout[:2000]


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "plugins" / "filter").glob("*.yml")))
def test_filter_doc_renders(name):
    result = run([str(BIN / "ansible-doc"), "-t", "filter", f"streamops.maintenance.{name}"], env=ansible_env())
    assert result.returncode == 0, output_of(result)
    assert "EXAMPLES:" in result.stdout, result.stdout[:2000]


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "plugins" / "lookup").glob("*.py")))
def test_lookup_doc_renders(name):
    result = run([str(BIN / "ansible-doc"), "-t", "lookup", f"streamops.maintenance.{name}"], env=ansible_env())
    assert result.returncode == 0, output_of(result)
    assert "EXAMPLES:" in result.stdout and "RETURN VALUES:" in result.stdout, result.stdout[:2000]


def test_callback_doc_renders():
    result = run([str(BIN / "ansible-doc"), "-t", "callback", "streamops.maintenance.maintenance_report"])
    assert result.returncode == 0, output_of(result)


def test_every_playbook_passes_syntax_check():
    for playbook in sorted((REPO / "playbooks").glob("*.yml")):
        for inventory in ("inventory/lab", "inventory/example"):
            result = run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", inventory, str(playbook)])
            assert result.returncode == 0, f"{playbook.name} with {inventory}\n" + output_of(result)


def test_every_user_visible_change_has_a_fragment():
    fragments = list((REPO / "changelogs" / "fragments").glob("*.yml"))
    assert fragments, "changelogs/fragments is empty"
