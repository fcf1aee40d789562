"""dependency_audit: reading each tool's JSON (saved from real runs, or in the documented format), judging, input."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import dependency_audit as da
from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "dependency_audit"
TODAY = datetime.date(2026, 12, 6)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def ran(stdout: str = "", stderr: str = "", returncode: int | None = 0) -> da.ToolRun:
    return da.ToolRun(argv=["tool"], returncode=returncode, stdout=stdout, stderr=stderr)


def audit(tool: str, path: str = "/srv/app", **extra) -> da.Audit:
    return da.Audit(name="app", tool=tool, path=path, **extra)


def summary(outcome: da.Outcome) -> list[tuple]:
    return [(f["id"], f["package"], f["version"], f["severity"], tuple(f["fix_versions"])) for f in outcome.findings]


# --------------------------------------------------------------------------- reading the tools' output


@pytest.mark.parametrize("tool, stdout, findings, skipped", [
    ("pip-audit", "pip_audit_findings.json",
     [("PYSEC-2018-28", "requests", "2.19.0", "unrated", ("2.20.0",)),
      ("PYSEC-2023-74", "requests", "2.19.0", "unrated", ("2.31.0",))],
     ["vitalstream-internal-tools"]),
    ("npm", "npm_audit_findings.json",
     [("GHSA-35jh-r3h4-6jhm", "lodash", "4.17.20", "high", ("4.17.21",)),
      ("GHSA-xvch-5gv4-984h", "minimist", "1.2.5", "critical", ("1.2.8",))], []),
    ("cargo", "cargo_audit_findings.json",
     [("RUSTSEC-2022-0013", "regex", "1.5.4", "high", (">=1.5.5",)),
      ("RUSTSEC-2020-0071", "time", "0.1.45", "medium", (">=0.2.23",))], []),
    ("trivy", "trivy_image_findings.json",
     [("CVE-2023-4911", "libc6", "2.36-9+deb12u1", "high", ("2.36-9+deb12u3",)),
      ("CVE-2023-45853", "zlib1g", "1:1.2.13.dfsg-1", "critical", ()),
      ("CVE-2011-3374", "apt", "2.6.1", "low", ()),
      ("CVE-2023-30861", "Flask", "2.2.2", "unrated", ("2.3.2", "2.2.5"))], []),
], ids=["pip-audit", "npm", "cargo", "trivy"])
def test_findings_of_each_tool(tool, stdout, findings, skipped):
    lock = json.loads(fixture("npm-project/package-lock.json")) if tool == "npm" else None
    outcome = da.read_tool(audit(tool), ran(fixture(stdout), returncode=1), lock)
    assert outcome.problem is None
    assert summary(outcome) == findings
    assert [skip["package"] for skip in outcome.skipped] == skipped


@pytest.mark.parametrize("tool, run, problem", [
    # Measured: exit 0, "No known vulnerabilities found", every package skipped.
    ("pip-audit", ran(fixture("pip_audit_all_skipped.json"), "No known vulnerabilities found"),
     "pip-audit audited no package (skipped all 2)"),
    ("pip-audit", ran("", fixture("pip_audit_no_feed.stderr"), 1), "pip-audit printed no JSON (exit 1)"),
    ("pip-audit", ran('{"dependencies": [], "fixes": []}'), "pip-audit audited no package"),
    ("npm", ran(fixture("npm_audit_registry_down.json"), returncode=1), "npm audit failed: request to http://127.0.0.1"),
    ("npm", ran('{"error": {"code": "ENOLOCK", "summary": "This command requires an existing lockfile."}}', "", 1),
     "npm audit failed: ENOLOCK; This command requires an existing lockfile."),
    ("npm", ran("npm ERR! something", "", 1), "npm audit printed output that is not JSON"),
    ("cargo", ran("", fixture("cargo_no_db.stderr"), 1), "cargo audit printed no JSON (exit 1)"),
    ("cargo", ran('{"database": {"advisory-count": 0}, "lockfile": {"dependency-count": 3}, '
                  '"vulnerabilities": {"found": false, "count": 0, "list": []}}'),
     "cargo audit ran with an empty advisory database"),
    ("cargo", ran("", "error: no such command: `audit`\n", 101), "cargo-audit is not installed"),
    ("trivy", ran("", fixture("trivy_no_db.stderr"), 1), "trivy printed no JSON (exit 1)"),
    ("trivy", ran('{"SchemaVersion": 2, "ArtifactName": "scratch", "Results": []}'),
     "trivy found no packages to audit"),
    ("npm", da.ToolRun(argv=["npm"], missing=True), "npm is not installed (no 'npm' on PATH)"),
    ("trivy", da.ToolRun(argv=["trivy"], timed_out=True), "trivy did not finish within the timeout"),
], ids=["pip-all-skipped", "pip-no-feed", "pip-nothing", "npm-down", "npm-nolock", "npm-not-json", "cargo-no-db",
        "cargo-empty-db", "cargo-no-subcommand", "trivy-no-db", "trivy-no-packages", "missing", "timeout"])
def test_what_cannot_be_trusted_is_a_problem(tool, run, problem):
    outcome = da.read_tool(audit(tool), run)
    assert outcome.problem is not None and outcome.problem.startswith(problem), outcome.problem


def test_the_tools_message_keeps_no_credentials():
    stderr = ("npm error request to https://deploy:s3cr3t@npm.internal.example.com/-/npm/v1/security/advisories/bulk "
              "failed\n//npm.internal.example.com/:_authToken=npm_abcdef123\nAuthorization: Bearer abc.def\n")
    outcome = da.read_tool(audit("npm"), ran("", stderr, 1))
    assert "s3cr3t" not in outcome.problem and "npm_abcdef123" not in outcome.problem and "abc.def" not in outcome.problem
    assert "//***@npm.internal.example.com" in outcome.problem and "_authToken=***" in outcome.problem


@pytest.mark.parametrize("text, expected", [
    ("https://user:pa55@registry.example.com/x", "https://***@registry.example.com/x"),
    ("//registry.example.com/:_authToken=abc123", "//registry.example.com/:_authToken=***"),
    ("_password=c2VjcmV0", "_password=***"),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
    ("https://registry.example.com/x", "https://registry.example.com/x"),
])
def test_redact(text, expected):
    assert da.redact(text) == expected


@pytest.mark.parametrize("vector, score, severity", [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"),
    ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2, "high"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "high"),
    ("CVSS:3.1/AV:L/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", 5.1, "medium"),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, "medium"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "critical"),
    ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "low"),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "info"),
    ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", None, "unrated"),
    (None, None, "unrated"),
    ("CVSS:3.1/AV:N", None, "unrated"),
])
def test_cvss3(vector, score, severity):
    assert da.cvss3_score(vector) == score
    assert da.severity_of_score(da.cvss3_score(vector)) == severity


# --------------------------------------------------------------------------- judging


def outcome_of(*findings, skipped=()):
    return da.Outcome(findings=[da._finding(*f) for f in findings], skipped=list(skipped), audited=len(findings) or 1)


LIMITS = {"critical": 0, "high": 0, "unrated": 0}
ALLOWED = [da.Allowance("GHSA-35jh-r3h4-6jhm", "not reachable", datetime.date(2027, 1, 31)),
           da.Allowance("GHSA-xvch-5gv4-984h", "was fine until", datetime.date(2026, 12, 5)),
           da.Allowance("CVE-2018-18074", "by alias", None)]


@pytest.mark.parametrize("outcome, status, counts, allowed, lapsed", [
    (outcome_of(("GHSA-35jh-r3h4-6jhm", "lodash", "4.17.20", "high", ["4.17.21"])), "ok", {}, 1, []),
    (outcome_of(("GHSA-xvch-5gv4-984h", "minimist", "1.2.5", "critical", ["1.2.8"])), "breach",
     {"critical": 1}, 0, ["GHSA-xvch-5gv4-984h"]),
    (outcome_of(("PYSEC-2018-28", "requests", "2.19.0", "unrated", ["2.20.0"], ["CVE-2018-18074"])), "ok", {}, 1, []),
    (outcome_of(("PYSEC-2023-74", "requests", "2.19.0", "unrated", ["2.31.0"])), "breach", {"unrated": 1}, 0, []),
    (outcome_of(("CVE-1", "zlib", "1", "medium", []), ("CVE-2", "apt", "2", "low", [])), "ok",
     {"medium": 1, "low": 1}, 0, []),
    (outcome_of(("CVE-1", "zlib", "1", "medium", []),
                skipped=[{"package": "internal", "version": "1.0", "reason": "not on PyPI"}]), "unknown",
     {"medium": 1}, 0, []),
    (outcome_of(("CVE-1", "zlib", "1", "critical", []),
                skipped=[{"package": "internal", "version": "1.0", "reason": "not on PyPI"}]), "breach",
     {"critical": 1}, 0, []),
    (da.Outcome(problem="npm audit failed: ECONNREFUSED"), "unknown", {}, 0, []),
], ids=["allowed", "lapsed-allowance", "allowed-by-alias", "unrated-counts", "below-limits", "skipped",
        "breach-beats-skipped", "problem"])
def test_audit_record(outcome, status, counts, allowed, lapsed):
    record = da.audit_record(audit("npm"), "11.19.1", outcome, ALLOWED, LIMITS, TODAY, 1.0)
    assert record["status"] == status, record
    assert {k: v for k, v in record["after"]["counts"].items() if v} == counts
    assert record["after"]["allowed"] == allowed
    assert record["after"]["lapsed_allowances"] == lapsed
    assert ("remedy" in record["after"]) == (status != "ok")
    assert record["name"] == "app (npm)" and record["action"] == "dependency_audit"


def test_breach_remedy_names_the_upgrades():
    outcome = outcome_of(("GHSA-xvch-5gv4-984h", "minimist", "1.2.5", "critical", ["1.2.8"]),
                         ("CVE-2", "left-pad", "1.0", "high", []))
    record = da.audit_record(audit("npm"), None, outcome, [], LIMITS, TODAY, None)
    assert record["after"]["remedy"] == ("Upgrade minimist to 1.2.8, left-pad (no fixed version yet), "
                                         "or allow the advisory with a reason and an until date.")
    assert record["detail"] == "over the limits: critical 1 (limit 0), high 1 (limit 0); findings: critical 1, high 1; allowed 0"


def test_an_unknown_audit_is_never_clean_in_the_result(tmp_path):
    def runner(argv, *, env, cwd, timeout):
        return ran(fixture("pip_audit_all_skipped.json"), "No known vulnerabilities found", 0)
    (tmp_path / "requirements.txt").write_text("requests==2.19.0\n")
    result = da.run_dependency_audit({"audits": [{"name": "tools", "tool": "pip-audit",
                                                  "path": str(tmp_path / "requirements.txt")}]},
                                     runner=runner, today=TODAY, environ={"PATH": "/usr/bin"})
    assert result_problems(result) == []
    assert [r["status"] for r in result["records"]] == ["unknown"]
    assert result["msg"] == "1 audit(s): not clean: tools (pip-audit)"
    assert result["changed"] is False
    assert result["executed"] == [f"pip-audit --format json --progress-spinner off -r {tmp_path}/requirements.txt "
                                  "--disable-pip --no-deps"]


# --------------------------------------------------------------------------- commands and environment


@pytest.mark.parametrize("tool, path, args, argv, cwd", [
    ("pip-audit", "requirements-pinned.txt", ("--no-deps",),
     ["pip-audit", "--format", "json", "--progress-spinner", "off", "-r", "{F}/requirements-pinned.txt",
      "--disable-pip", "--no-deps"], None),
    # Never a virtualenv with the requirements pip-installed on the host.
    ("pip-audit", "requirements-pinned.txt", (),
     ["pip-audit", "--format", "json", "--progress-spinner", "off", "-r", "{F}/requirements-pinned.txt",
      "--disable-pip", "--no-deps"], None),
    ("pip-audit", "requirements-pinned.txt", ("--require-hashes",),
     ["pip-audit", "--format", "json", "--progress-spinner", "off", "-r", "{F}/requirements-pinned.txt",
      "--disable-pip", "--require-hashes"], None),
    ("pip-audit", "npm-project", (), ["pip-audit", "--format", "json", "--progress-spinner", "off", "{F}/npm-project"],
     None),
    ("npm", "npm-project", ("--registry", "http://127.0.0.1:1/"),
     ["npm", "audit", "--json", "--offline=false", "--registry", "http://127.0.0.1:1/"], "{F}/npm-project"),
    ("cargo", "cargo-project", (), ["cargo", "audit", "--json", "--file", "{F}/cargo-project/Cargo.lock"],
     "{F}/cargo-project"),
    ("trivy", "vitalstream/web:2.4.1", ("--severity", "HIGH,CRITICAL"),
     ["trivy", "image", "--format", "json", "--no-progress", "--severity", "HIGH,CRITICAL", "vitalstream/web:2.4.1"], None),
])
def test_tool_command(tool, path, args, argv, cwd):
    full = path if tool == "trivy" else str(FIXTURES / path)
    command, directory = da.tool_command(da.Audit("x", tool, full, args), tool if tool != "pip-audit" else "pip-audit")
    assert command == [part.replace("{F}", str(FIXTURES)) for part in argv]
    assert directory == (cwd.replace("{F}", str(FIXTURES)) if cwd else None)


def test_tool_environment_keeps_the_tools_settings_and_drops_the_plays_secrets():
    environ = {"PATH": "/usr/bin", "HOME": "/root", "HTTPS_PROXY": "http://127.0.0.1:3128", "LC_ALL": "C.UTF-8",
               "PIP_INDEX_URL": "https://pypi.internal/simple", "npm_config_registry": "https://npm.internal/",
               "TRIVY_DB_REPOSITORY": "mirror/trivy-db", "PGPASSWORD": "pg-secret", "REDISCLI_AUTH": "redis-secret",
               "AWS_SECRET_ACCESS_KEY": "aws-secret", "K8S_AUTH_API_KEY": "k8s-secret", "VAULT_TOKEN": "v"}
    env = da.tool_environment(environ, {"NPM_TOKEN": "npm-secret"})
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "HTTPS_PROXY": "http://127.0.0.1:3128", "LC_ALL": "C.UTF-8",
                   "PIP_INDEX_URL": "https://pypi.internal/simple", "npm_config_registry": "https://npm.internal/",
                   "TRIVY_DB_REPOSITORY": "mirror/trivy-db", "NPM_TOKEN": "npm-secret"}


@pytest.mark.parametrize("tool, stdout, version", [
    ("pip-audit", "pip-audit 2.10.1\n", "2.10.1"),
    ("npm", "11.19.1\n", "11.19.1"),
    ("cargo", "cargo-audit-audit 0.21.2\n", "0.21.2"),
    ("trivy", "Version: 0.58.1\nVulnerability DB:\n  Version: 2\n", "0.58.1"),
])
def test_tool_version(tool, stdout, version):
    assert da.tool_version(tool, ran(stdout)) == version


# --------------------------------------------------------------------------- bad input fails, naming the value


def _audits(**entry):
    return [{"name": "app", "tool": "npm", "path": str(FIXTURES / "npm-project"), **entry}]


@pytest.mark.parametrize("params, message", [
    ({"audits": _audits(tool="bundler")}, "audit 'app': tool 'bundler' is not one of pip-audit, npm, cargo, trivy"),
    ({"audits": _audits(path="/nonexistent/ui")}, "audit 'app': path '/nonexistent/ui' does not exist"),
    ({"audits": _audits(tool="trivy", path="--config=/etc/shadow")},
     "audit 'app': image reference '--config=/etc/shadow' is not a valid reference"),
    ({"audits": _audits(args=["--offline"])}, "audit 'app': argument '--offline' is refused"),
    ({"audits": _audits(tool="cargo", path=str(FIXTURES / "cargo-project"), args=["--no-fetch"])},
     "audit 'app': argument '--no-fetch' is refused"),
    ({"audits": _audits(tool="trivy", path="web:1", args=["--skip-db-update"])},
     "audit 'app': argument '--skip-db-update' is refused"),
    ({"audits": _audits() + _audits()}, "audit name 'app' is used twice"),
    ({"audits": []}, "audits is empty"),
    ({"audits": _audits(), "allowed": [{"id": "GHSA-1", "reason": "ok", "until": "31/12/2026"}]},
     "allowed entry 'GHSA-1': until '31/12/2026' is not a date (YYYY-MM-DD)"),
    ({"audits": _audits(), "allowed": [{"id": "GHSA-1", "reason": ""}]}, "allowed entry 'GHSA-1' has no reason"),
    ({"audits": _audits(), "max_findings": {"severe": 0}}, "max_findings: severity 'severe' is not one of"),
    ({"audits": _audits(), "max_findings": {"high": -1}}, "max_findings: high -1 is not a whole number >= 0"),
    ({"audits": _audits(), "timeout": 0}, "timeout 0 is not a positive number of seconds"),
])
def test_bad_input_fails_naming_the_value_and_runs_nothing(params, message):
    def runner(*args, **kwargs):
        raise AssertionError("a tool ran despite bad input")
    with pytest.raises(da.DependencyAuditError) as raised:
        da.run_dependency_audit(params, runner=runner, today=TODAY, environ={})
    assert raised.value.msg.startswith(message), raised.value.msg


@pytest.mark.parametrize("raw, limits", [
    (None, {"critical": 0, "high": 0, "unrated": 0}),
    ({"critical": 0, "high": 0}, {"critical": 0, "high": 0, "unrated": 0}),
    ({"HIGH": "2", "unrated": 5}, {"high": 2, "unrated": 5}),
])
def test_limits(raw, limits):
    assert da.parse_limits(raw) == limits


@pytest.mark.parametrize("until, active", [(None, True), ("2026-12-06", True), ("2026-12-05", False),
                                           (datetime.date(2027, 1, 1), True)])
def test_allowance_until(until, active):
    [allowance] = da.parse_allowed([{"id": "X", "reason": "why", "until": until}])
    assert allowance.active(TODAY) is active


def test_allowed_offline_false_is_not_refused():
    [parsed] = da.parse_audits(_audits(args=["--offline=false"]))
    assert parsed.args == ("--offline=false",)


@pytest.mark.parametrize("name", ["TRIVY_SKIP_DB_UPDATE", "TRIVY_SKIP_UPDATE", "TRIVY_OFFLINE_SCAN"])
def test_settings_that_skip_the_database_are_refused_in_environment_and_dropped_from_the_host(name):
    with pytest.raises(da.DependencyAuditError, match=f"environment {name} is refused"):
        da.tool_environment({}, {name: "true"})
    assert name not in da.tool_environment({name: "true", "PATH": "/bin"})


@pytest.mark.parametrize("metadata, reason", [
    ({"OS": {"Family": "debian", "Name": "8.11", "EOSL": True}}, "past its end of support"),
    ({"OS": {"Family": "unknownix", "Name": "1"}}, "no result for the OS packages"),
])
def test_trivy_without_an_os_result_or_past_end_of_support_is_a_skip(metadata, reason):
    report = {"SchemaVersion": 2, "ArtifactName": "img:1", "Metadata": metadata,
              "Results": [{"Target": "app/requirements.txt", "Class": "lang-pkgs", "Type": "pip",
                           "Vulnerabilities": []}] + ([{"Target": "img:1 (debian 8.11)", "Class": "os-pkgs",
                                                        "Type": "debian"}] if metadata["OS"].get("EOSL") else [])}
    outcome = da.read_trivy(da.ToolRun(argv=["trivy"], returncode=0, stdout=json.dumps(report), stderr=""))
    assert any(reason in skip["reason"] for skip in outcome.skipped)
