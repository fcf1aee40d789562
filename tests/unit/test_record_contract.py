"""Every module keeps the one result shape (docs/records.md): documented, and checked on its real results.

The real results are checked where each module runs: the pure ones here (their main(), as Ansible
runs them), the ones that need a service in their integration tests, against the real service.
Both go through ``records.result_problems``; this file makes sure no module is left out.
"""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import RECORD_KEYS, result_problems
from ansible_collections.streamops.maintenance.plugins.modules import (
    certificate_expiry,
    endpoint_check,
    host_usage,
    log_cleanup,
    maintenance_lock,
    maintenance_window,
)

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
# Where each module's real results meet result_problems.
CONTRACT_TESTS = {
    "backup_verify": "tests/integration/test_pg_backup.py",
    "blue_green_deploy": "tests/integration/test_blue_green_compose.py",
    "certificate_expiry": "tests/unit/test_record_contract.py",
    "certificate_renew": "tests/integration/test_certificate_renew.py",
    "dependency_audit": "tests/integration/test_dependency_audit.py",
    "docker_cleanup": "tests/integration/test_docker_cleanup.py",
    "docker_security_review": "tests/integration/test_docker_security_review.py",
    "endpoint_check": "tests/unit/test_record_contract.py",
    "host_usage": "tests/unit/test_record_contract.py",
    "k8s_access_review": "tests/integration/test_k8s_access_review.py",
    "k8s_secret_rotate": "tests/integration/test_k8s_secret_rotate.py",
    "log_cleanup": "tests/unit/test_record_contract.py",
    "log_pattern_review": "tests/integration/test_log_pattern_review.py",
    "maintenance_lock": "tests/unit/test_record_contract.py",
    "maintenance_notify": "tests/integration/test_notify.py",
    "maintenance_window": "tests/unit/test_record_contract.py",
    "pg_backup": "tests/integration/test_pg_backup.py",
    "pg_compliance": "tests/integration/test_pg_compliance.py",
    "pg_dr_test": "tests/integration/test_dr_test.py",
    "pg_maintenance": "tests/integration/test_pg_maintenance.py",
    "pg_restore": "tests/integration/test_restore.py",
    "prometheus_tsdb": "tests/integration/test_prometheus_tsdb.py",
    "prometheus_rules": "tests/integration/test_prometheus_rules.py",
    "redis_memory_guard": "tests/integration/test_redis_memory_guard.py",
    "service_latency": "tests/integration/test_service_latency.py",
}


def run_main(module, args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_documents_records(name):
    source = (REPO / "plugins" / "modules" / f"{name}.py").read_text()
    returned = yaml.safe_load(source.split('RETURN = r"""', 1)[1].split('"""', 1)[0])
    assert "records" in returned, f"{name} RETURN does not document records"
    assert returned["records"]["type"] == "list" and returned["records"]["returned"] == "always"
    sample = returned["records"].get("sample")
    assert sample, f"{name} RETURN has no sample of its records"
    assert all(set(record) == set(RECORD_KEYS) for record in sample), f"{name}: a sample record has other keys"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_its_real_results_checked(name):
    assert name in CONTRACT_TESTS, f"{name}: name the test that checks its real results with result_problems"
    test = (REPO / CONTRACT_TESTS[name]).read_text()
    assert "result_problems" in test and name in test


def certificate(path: Path, days: int) -> Path:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "contract.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check-mode"])
def test_real_results_of_the_modules_that_need_no_service(check_mode, tmp_path, capsys, http_endpoint):
    old = tmp_path / "logs" / "old.log"
    old.parent.mkdir()
    old.write_text("x")
    os.utime(old, (0, 0))
    cert = certificate(tmp_path / "cert.pem", 30)
    weekly = {"name": "weekly", "rrule": "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0", "duration": "2h"}
    calls = [
        (maintenance_window, {"windows": [weekly], "now": "2026-01-11T07:30:00Z"}),
        (maintenance_window, {"windows": [weekly], "now": "2026-01-07T12:00:00Z", "enforce": True}),
        (certificate_expiry, {"paths": [str(cert)], "min_days": 14}),
        (certificate_expiry, {"paths": [str(cert), str(tmp_path / "missing.pem")]}),
        (endpoint_check, {"tcp": [{"name": "http", "host": "127.0.0.1", "port": http_endpoint.rsplit(":", 1)[1]}],
                          "http": [{"name": "count", "url": http_endpoint, "count": True, "max": 1}]}),
        (host_usage, {}),
        (log_cleanup, {"roots": [{"root": str(old.parent), "age_days": 1}]}),
        (log_cleanup, {"roots": [{"root": "/", "age_days": 1}]}),
        (maintenance_lock, {"name": "contract", "run_id": "run-1", "path": str(tmp_path / "locks")}),
        (maintenance_lock, {"name": "contract", "run_id": "run-1", "path": str(tmp_path / "locks"), "state": "status"}),
        (maintenance_lock, {"name": "contract", "run_id": "run-1", "path": str(tmp_path / "locks"),
                            "state": "released"}),
    ]
    for module, args in calls:
        result = run_main(module, {**args, "_ansible_check_mode": check_mode}, capsys)
        result.pop("invocation", None)
        assert result_problems(result, check_mode=check_mode) == [], (module.__name__, result)
    assert old.exists() is check_mode  # the cleanup ran once for real, and never in check mode
