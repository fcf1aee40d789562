# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""Dependency and image audits: pip-audit, npm audit, cargo audit and trivy, judged against limits. Records out.

Read-only. A tool that is missing, fails, cannot reach its advisory database or skipped packages gives an
``unknown`` record with the reason: an audit that did not look is never reported as "0 vulnerabilities".
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import MaintenanceError
from .records import make_record
from .timeouts import timeout_problem

TOOLS = ("pip-audit", "npm", "cargo", "trivy")
DEFAULT_EXECUTABLES = {"pip-audit": "pip-audit", "npm": "npm", "cargo": "cargo", "trivy": "trivy"}
# Most severe first. ``unrated``: the tool gave no severity (every pip-audit finding, trivy's UNKNOWN).
SEVERITIES = ("critical", "high", "medium", "low", "info", "unrated")
DEFAULT_MAX_FINDINGS = {"critical": 0, "high": 0}
# A finding without a rating is no evidence that the flaw is minor: limited to 0 unless max_findings says otherwise.
DEFAULT_UNRATED_LIMIT = 0
DEFAULT_TIMEOUT = 300
# Arguments that make a tool answer without asking its advisory database ("found 0 vulnerabilities").
REFUSED_ARGS = {
    "npm": ("--offline",),
    "cargo": ("--no-fetch", "-n"),
    "trivy": ("--skip-db-update", "--skip-update", "--offline-scan"),
}
# The same settings as environment variables: dropped from the host's, refused in the environment option.
# (npm's offline setting needs neither: npm always runs with --offline=false, which wins over it.)
REFUSED_ENVIRONMENT = ("TRIVY_SKIP_DB_UPDATE", "TRIVY_SKIP_UPDATE", "TRIVY_OFFLINE_SCAN")
# Only these variables reach a tool: the play's other secrets (PGPASSWORD, AWS keys, ...) stay out.
ENVIRONMENT_NAMES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP",
                     "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
                     "http_proxy", "https_proxy", "no_proxy", "all_proxy",
                     "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
                     "CARGO_HOME", "RUSTUP_HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH",
                     "DOCKER_TLS_VERIFY", "VIRTUAL_ENV", "PIPAPI_PYTHON_LOCATION")
ENVIRONMENT_PREFIXES = ("LC_", "XDG_", "PIP_", "PIP_AUDIT_", "NPM_CONFIG_", "npm_config_", "TRIVY_")
# Credentials the tools may echo in their messages (registry URLs, .npmrc lines, auth headers).
_SECRET_PATTERNS = (
    (re.compile(r"(//)[^/\s:@]+:[^/\s@]*@"), r"\1***@"),
    (re.compile(r"(_authToken\s*=\s*)[^\s\"']+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(_auth\s*=\s*)[^\s\"']+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(_password\s*=\s*)[^\s\"']+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(Authorization:\s*(?:Bearer|Basic|token)\s+)\S+", re.IGNORECASE), r"\1***"),
)
KEPT_TEXT = 400  # characters of a tool's message kept in a record


class DependencyAuditError(MaintenanceError):
    """An audit entry, allowance or limit is invalid; ``msg`` names the bad value."""


@dataclass(frozen=True)
class Audit:
    name: str
    tool: str
    path: str
    args: tuple[str, ...] = ()
    executable: str | None = None


@dataclass(frozen=True)
class Allowance:
    id: str
    reason: str
    until: datetime.date | None = None

    def active(self, today: datetime.date) -> bool:
        return self.until is None or today <= self.until


@dataclass
class ToolRun:
    """What running a tool gave: ``missing`` or ``timed_out`` when it gave nothing to read."""

    argv: list[str]
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    missing: bool = False
    timed_out: bool = False


@dataclass
class Outcome:
    """A tool's output read: findings, the packages it did not audit, and why it cannot be trusted (if so)."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None
    audited: int | None = None  # how many packages the tool says it looked at, when it says


# --------------------------------------------------------------------------- input


def redact(text: Any) -> str:
    """``text`` with credentials in URLs, npmrc settings and auth headers replaced by ``***``."""
    out = "" if text is None else str(text)
    for pattern, replacement in _SECRET_PATTERNS:
        out = pattern.sub(replacement, out)
    return out


def parse_audits(raw: Iterable[Mapping[str, Any]], *, path_exists: Callable[[str], bool] = os.path.exists) -> list[Audit]:
    """Validated audit entries; the first bad one raises, naming its value."""
    audits, names = [], set()
    for entry in raw or []:
        name, tool, path = str(entry.get("name") or "").strip(), entry.get("tool"), str(entry.get("path") or "")
        if not name:
            raise DependencyAuditError(msg=f"audit entry {dict(entry)!r} has no name")
        if name in names:
            raise DependencyAuditError(msg=f"audit name {name!r} is used twice")
        names.add(name)
        if tool not in TOOLS:
            raise DependencyAuditError(msg=f"audit {name!r}: tool {tool!r} is not one of {', '.join(TOOLS)}")
        if not path.strip():
            raise DependencyAuditError(msg=f"audit {name!r}: path is empty")
        if tool == "trivy":
            # An image reference: one that starts with '-' would be read as an option.
            if path.startswith("-") or any(char.isspace() for char in path):
                raise DependencyAuditError(msg=f"audit {name!r}: image reference {path!r} is not a valid reference")
        else:
            path = os.path.expanduser(path)
            if not path_exists(path):
                raise DependencyAuditError(msg=f"audit {name!r}: path {path!r} does not exist")
        args = tuple(str(arg) for arg in entry.get("args") or ())
        for arg in args:
            if arg.split("=", 1)[0] in REFUSED_ARGS.get(tool, ()) and not _is_false_flag(arg):
                raise DependencyAuditError(
                    msg=f"audit {name!r}: argument {arg!r} is refused: {tool} would answer without its advisory "
                        "database and report no vulnerabilities it never looked for")
        audits.append(Audit(name=name, tool=tool, path=path, args=args, executable=entry.get("executable") or None))
    if not audits:
        raise DependencyAuditError(msg="audits is empty: name at least one audit")
    return audits


def _is_false_flag(arg: str) -> bool:
    return "=" in arg and arg.split("=", 1)[1].strip().lower() in ("false", "0", "no")


def parse_allowed(raw: Iterable[Mapping[str, Any]]) -> list[Allowance]:
    allowed = []
    for entry in raw or []:
        advisory = str(entry.get("id") or "").strip()
        reason = str(entry.get("reason") or "").strip()
        if not advisory:
            raise DependencyAuditError(msg=f"allowed entry {dict(entry)!r} has no id")
        if not reason:
            raise DependencyAuditError(msg=f"allowed entry {advisory!r} has no reason: say why it is accepted")
        until = entry.get("until")
        if until not in (None, ""):
            if isinstance(until, datetime.date):
                until = until if not isinstance(until, datetime.datetime) else until.date()
            else:
                try:
                    until = datetime.date.fromisoformat(str(until).strip())
                except ValueError:
                    raise DependencyAuditError(
                        msg=f"allowed entry {advisory!r}: until {until!r} is not a date (YYYY-MM-DD)") from None
        else:
            until = None
        allowed.append(Allowance(id=advisory, reason=reason, until=until))
    return allowed


def parse_limits(raw: Mapping[str, Any] | None) -> dict[str, int]:
    """Per-severity limits; ``unrated`` is 0 unless given (see DEFAULT_UNRATED_LIMIT)."""
    limits = dict(DEFAULT_MAX_FINDINGS if raw is None else {})
    for key, value in (raw or {}).items():
        severity = str(key).lower()
        if severity not in SEVERITIES:
            raise DependencyAuditError(
                msg=f"max_findings: severity {key!r} is not one of {', '.join(SEVERITIES)}")
        if isinstance(value, bool) or not str(value).strip().isdigit():
            raise DependencyAuditError(msg=f"max_findings: {key} {value!r} is not a whole number >= 0")
        value = int(str(value).strip())
        limits[severity] = value
    limits.setdefault("unrated", DEFAULT_UNRATED_LIMIT)
    return limits


def tool_environment(environ: Mapping[str, str], extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The environment a tool runs with: its own configuration and the proxies, nothing else of the play's."""
    refused = sorted(str(key) for key in extra or {} if str(key) in REFUSED_ENVIRONMENT)
    if refused:
        raise DependencyAuditError(msg=f"environment {', '.join(refused)} is refused: the tool would answer without "
                                       "its advisory database and report no vulnerabilities it never looked for")
    env = {key: value for key, value in environ.items()
           if (key in ENVIRONMENT_NAMES or key.startswith(ENVIRONMENT_PREFIXES)) and key not in REFUSED_ENVIRONMENT}
    env.update({str(key): str(value) for key, value in (extra or {}).items()})
    return env


# --------------------------------------------------------------------------- running


def tool_command(audit: Audit, executable: str) -> tuple[list[str], str | None]:
    """(argv, working directory) of one audit: JSON output, and nothing that skips the advisory database."""
    tool, path = audit.tool, audit.path
    if tool == "pip-audit":
        if os.path.isfile(path):
            # Read the pinned requirements as they are: without --disable-pip, pip-audit builds a virtualenv and
            # pip-installs the whole file on this host (downloads, build scripts) to resolve it.
            target = ["-r", path] + [flag for flag in ("--disable-pip",) if flag not in audit.args]
            if not {"--no-deps", "--require-hashes"} & set(audit.args):
                target.append("--no-deps")
        else:
            target = [path]
        return [executable, "--format", "json", "--progress-spinner", "off", *target, *audit.args], None
    if tool == "npm":
        project = path if os.path.isdir(path) else os.path.dirname(path) or "."
        # --offline=false overrides an offline setting from .npmrc or npm_config_offline.
        return [executable, "audit", "--json", "--offline=false", *audit.args], project
    if tool == "cargo":
        lock = os.path.join(path, "Cargo.lock") if os.path.isdir(path) else path
        # The same argv for `cargo` and a `cargo-audit` binary: cargo passes the subcommand name on.
        return [executable, "audit", "--json", "--file", lock, *audit.args], os.path.dirname(lock) or None
    # --no-progress, not --quiet: --quiet also silences the warning about an OS trivy has no advisories for.
    return [executable, "image", "--format", "json", "--no-progress", *audit.args, path], None


def version_command(tool: str, executable: str) -> list[str]:
    return [executable, "audit", "--version"] if tool == "cargo" else [executable, "--version"]


def run_tool(argv: list[str], *, env: Mapping[str, str], cwd: str | None, timeout: float) -> ToolRun:
    """Run argv (never through a shell) with a timeout; a missing executable is ``missing``, not an error."""
    executable = shutil.which(argv[0], path=env.get("PATH"))
    if executable is None:
        return ToolRun(argv=argv, missing=True)
    started = time.monotonic()
    try:
        done = subprocess.run([executable, *argv[1:]], env=dict(env), cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return ToolRun(argv=argv, timed_out=True, seconds=time.monotonic() - started,
                       stderr=_text(exc.stderr))
    except OSError as exc:
        return ToolRun(argv=argv, returncode=None, stderr=str(exc), seconds=time.monotonic() - started)
    return ToolRun(argv=argv, returncode=done.returncode, stdout=done.stdout, stderr=done.stderr,
                   seconds=time.monotonic() - started)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def tool_version(tool: str, run: ToolRun) -> str | None:
    if run.missing or run.timed_out or run.returncode != 0:
        return None
    words = (run.stdout or run.stderr).strip().split()
    if not words:
        return None
    if tool == "trivy":  # "Version: 0.58.1" and then the databases' versions
        return words[1] if len(words) > 1 and words[0] == "Version:" else words[0]
    return words[-1] if tool != "npm" else words[0]


def last_lines(text: str, count: int = 3) -> str:
    """The tail of a tool's message, credentials removed, for a record."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return redact(" | ".join(lines[-count:]))[-KEPT_TEXT:]


def _load_json(stdout: str) -> tuple[Any, str | None]:
    text = (stdout or "").strip()
    if not text:
        return None, "printed no JSON"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"printed output that is not JSON ({exc})"


def _finding(advisory: str, package: str, version: str | None, severity: str,
             fix_versions: Iterable[str], aliases: Iterable[str] = ()) -> dict[str, Any]:
    return {"id": str(advisory), "aliases": sorted({str(a) for a in aliases if a and str(a) != str(advisory)}),
            "package": str(package), "version": None if version in (None, "") else str(version),
            "severity": severity, "fix_versions": [str(v) for v in fix_versions if v not in (None, "")],
            "allowed": False}


# --------------------------------------------------------------------------- reading each tool


def read_pip_audit(run: ToolRun) -> Outcome:
    """pip-audit --format json: ``dependencies`` with ``vulns``, or ``skip_reason`` for those not audited.

    pip-audit exits 0 and says "No known vulnerabilities found" when it skipped every package (its
    vulnerability feed answered 404): the skips, not the exit code, decide.
    """
    data, error = _load_json(run.stdout)
    if error or not isinstance(data, Mapping) or not isinstance(data.get("dependencies"), list):
        why = error or "printed JSON without a dependencies list"
        return Outcome(problem=f"pip-audit {why} (exit {run.returncode}): {last_lines(run.stderr)}".rstrip(": "))
    outcome = Outcome(audited=0)
    for dependency in data["dependencies"]:
        name, version = dependency.get("name"), dependency.get("version")
        if dependency.get("skip_reason"):
            outcome.skipped.append({"package": name, "version": version,
                                    "reason": redact(dependency["skip_reason"])[:KEPT_TEXT]})
            continue
        outcome.audited += 1
        for vuln in dependency.get("vulns") or []:
            outcome.findings.append(_finding(vuln.get("id"), name, version, "unrated",
                                             vuln.get("fix_versions") or [], vuln.get("aliases") or []))
    return outcome


def _npm_advisory_id(via: Mapping[str, Any]) -> str:
    url = str(via.get("url") or "")
    match = re.search(r"(GHSA(?:-[0-9a-z]{4}){3})", url, re.IGNORECASE)
    return match.group(1) if match else str(via.get("source"))


_NPM_SEVERITIES = {"critical": "critical", "high": "high", "moderate": "medium", "low": "low", "info": "info"}


def read_npm(run: ToolRun, lock: Mapping[str, Any] | None = None) -> Outcome:
    """npm audit --json (report version 2): ``vulnerabilities`` by package, or an ``error`` object.

    ``lock`` (the project's package-lock.json) gives the installed versions, which the report leaves out.
    """
    data, error = _load_json(run.stdout)
    if error or not isinstance(data, Mapping):
        return Outcome(problem=f"npm audit {error or 'printed JSON that is not an object'} "
                               f"(exit {run.returncode}): {last_lines(run.stderr)}")
    if data.get("error"):
        problem = data["error"] if isinstance(data["error"], Mapping) else {"summary": data["error"]}
        words = [str(data.get("message") or ""), str(problem.get("code") or ""), str(problem.get("summary") or ""),
                 str(problem.get("detail") or "")]
        text = "; ".join(word.strip() for word in words if word.strip()) or last_lines(run.stderr)
        return Outcome(problem=f"npm audit failed: {redact(text)[:KEPT_TEXT]}")
    if not isinstance(data.get("vulnerabilities"), Mapping):
        return Outcome(problem=f"npm audit printed no vulnerabilities report (exit {run.returncode})")
    packages = (lock or {}).get("packages") or {}
    dependencies = ((data.get("metadata") or {}).get("dependencies") or {})
    outcome = Outcome(audited=dependencies.get("total") if isinstance(dependencies.get("total"), int) else None)
    seen = set()
    for package, report in data["vulnerabilities"].items():
        nodes = report.get("nodes") or []
        version = next((packages.get(node, {}).get("version") for node in nodes if packages.get(node)), None)
        fix = report.get("fixAvailable")
        if isinstance(fix, Mapping):
            fixes = [fix.get("version")] if fix.get("name") == package else [f"{fix.get('name')}@{fix.get('version')}"]
        else:
            fixes = []
        for via in report.get("via") or []:
            if not isinstance(via, Mapping):
                continue  # a name: this package is affected through that one's advisory, reported there
            advisory = _npm_advisory_id(via)
            if (advisory, package) in seen:
                continue
            seen.add((advisory, package))
            severity = _NPM_SEVERITIES.get(str(via.get("severity")).lower(), "unrated")
            outcome.findings.append(_finding(advisory, package, version, severity, fixes, [str(via.get("source"))]))
    return outcome


_CVSS3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def cvss3_score(vector: str | None) -> float | None:
    """The CVSS v3.x base score of a vector string (None when it is not a complete v3 vector)."""
    if not vector or not str(vector).startswith("CVSS:3."):
        return None
    metrics = dict(part.split(":", 1) for part in str(vector).split("/")[1:] if ":" in part)
    try:
        changed = metrics["S"] == "C"
        privileges = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}[metrics["PR"]]
        confidentiality, integrity, availability = (_CVSS3["C"][metrics[key]] for key in ("C", "I", "A"))
        exploitability = 8.22 * _CVSS3["AV"][metrics["AV"]] * _CVSS3["AC"][metrics["AC"]] * privileges \
            * _CVSS3["UI"][metrics["UI"]]
    except KeyError:
        return None
    base = 1 - (1 - confidentiality) * (1 - integrity) * (1 - availability)
    impact = 7.52 * (base - 0.029) - 3.25 * (base - 0.02) ** 15 if changed else 6.42 * base
    if impact <= 0:
        return 0.0
    total = min((1.08 if changed else 1.0) * (impact + exploitability), 10.0)
    return math.ceil(round(total * 100000) / 10000) / 10  # CVSS 3.1 Roundup


def severity_of_score(score: float | None) -> str:
    if score is None:
        return "unrated"
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low" if score > 0 else "info"


def read_cargo(run: ToolRun) -> Outcome:
    """cargo audit --json (the rustsec Report): ``vulnerabilities.list``; severity from the advisory's CVSS v3."""
    data, error = _load_json(run.stdout)
    if error or not isinstance(data, Mapping) or not isinstance(data.get("vulnerabilities"), Mapping):
        return Outcome(problem=f"cargo audit {error or 'printed JSON without a vulnerabilities report'} "
                               f"(exit {run.returncode}): {last_lines(run.stderr)}")
    database = data.get("database") or {}
    if not database.get("advisory-count"):
        return Outcome(problem="cargo audit ran with an empty advisory database (advisory-count 0)")
    outcome = Outcome(audited=(data.get("lockfile") or {}).get("dependency-count"))
    for entry in data["vulnerabilities"].get("list") or []:
        advisory, package = entry.get("advisory") or {}, entry.get("package") or {}
        severity = severity_of_score(cvss3_score(advisory.get("cvss")))
        outcome.findings.append(_finding(advisory.get("id"), package.get("name") or advisory.get("package"),
                                         package.get("version"), severity,
                                         (entry.get("versions") or {}).get("patched") or [],
                                         advisory.get("aliases") or []))
    return outcome


def read_trivy(run: ToolRun) -> Outcome:
    """trivy image --format json (schema 2): ``Results[].Vulnerabilities``; an unsupported OS is a skip."""
    data, error = _load_json(run.stdout)
    if error or not isinstance(data, Mapping) or "Results" not in data:
        return Outcome(problem=f"trivy {error or 'printed JSON without Results'} "
                               f"(exit {run.returncode}): {last_lines(run.stderr)}")
    results = data.get("Results") or []
    outcome = Outcome(audited=sum(len(result.get("Packages") or []) for result in results) or None)
    for line in (run.stderr or "").splitlines():
        # trivy scans what it can and only warns about an OS it has no advisories for.
        if "unsupported" in line.lower() or "no longer supported" in line.lower():
            outcome.skipped.append({"package": data.get("ArtifactName"), "version": None,
                                    "reason": redact(line.strip())[:KEPT_TEXT]})
    operating_system = (data.get("Metadata") or {}).get("OS") or {}
    if operating_system:
        label = f"{operating_system.get('Family') or 'OS'} {operating_system.get('Name') or ''}".strip()
        if operating_system.get("EOSL"):
            outcome.skipped.append({"package": label, "version": None,
                                    "reason": "the OS is past its end of support: its advisories are no longer kept"})
        elif not any(result.get("Class") == "os-pkgs" for result in results):
            outcome.skipped.append({"package": label, "version": None,
                                    "reason": "trivy reported no result for the OS packages (an OS it cannot audit)"})
    if not results:
        outcome.problem = "trivy found no packages to audit in the image (no OS or language packages detected)"
    for result in results:
        for vuln in result.get("Vulnerabilities") or []:
            severity = str(vuln.get("Severity") or "").lower()
            fixed = [part.strip() for part in str(vuln.get("FixedVersion") or "").split(",") if part.strip()]
            outcome.findings.append(_finding(vuln.get("VulnerabilityID"), vuln.get("PkgName"),
                                             vuln.get("InstalledVersion"),
                                             severity if severity in SEVERITIES else "unrated", fixed))
    return outcome


def read_tool(audit: Audit, run: ToolRun, lock: Mapping[str, Any] | None = None) -> Outcome:
    if run.missing:
        return Outcome(problem=f"{audit.tool} is not installed (no {run.argv[0]!r} on PATH)")
    if run.timed_out:
        return Outcome(problem=f"{audit.tool} did not finish within the timeout: {last_lines(run.stderr)}".rstrip(": "))
    if run.returncode is None:
        return Outcome(problem=f"{audit.tool} could not be started: {redact(run.stderr)[:KEPT_TEXT]}")
    if audit.tool == "cargo" and "no such command" in run.stderr and "audit" in run.stderr:
        return Outcome(problem="cargo-audit is not installed (cargo has no `audit` subcommand)")
    reader = {"pip-audit": read_pip_audit, "cargo": read_cargo, "trivy": read_trivy}.get(audit.tool)
    outcome = read_npm(run, lock) if audit.tool == "npm" else reader(run)
    if outcome.problem is None and outcome.audited == 0 and not outcome.findings:
        outcome.problem = f"{audit.tool} audited no package" + (
            f" (skipped all {len(outcome.skipped)})" if outcome.skipped else "")
    return outcome


# --------------------------------------------------------------------------- judging


def apply_allowances(findings: list[dict[str, Any]], allowed: Iterable[Allowance],
                     today: datetime.date) -> list[str]:
    """Mark allowed findings (by id or alias, case-insensitive); return the lapsed allowances that matched."""
    by_id = {allowance.id.upper(): allowance for allowance in allowed}
    lapsed = []
    for finding in findings:
        for advisory in [finding["id"], *finding.get("aliases", [])]:
            allowance = by_id.get(str(advisory).upper())
            if allowance is None:
                continue
            if allowance.active(today):
                finding["allowed"] = True
            elif allowance.id not in lapsed:
                lapsed.append(allowance.id)
    return lapsed


def count_by_severity(findings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        if not finding["allowed"]:
            counts[finding["severity"]] += 1
    return counts


def breaches(counts: Mapping[str, int], limits: Mapping[str, int]) -> list[str]:
    return [f"{severity} {counts[severity]} (limit {limits[severity]})"
            for severity in SEVERITIES if severity in limits and counts[severity] > limits[severity]]


def upgrade_remedy(findings: Iterable[Mapping[str, Any]], limits: Mapping[str, int]) -> str:
    over = [f for f in findings if not f["allowed"] and f["severity"] in limits]
    upgrades = []
    for finding in over:
        target = f"{finding['package']} to {finding['fix_versions'][0]}" if finding["fix_versions"] \
            else f"{finding['package']} (no fixed version yet)"
        if target not in upgrades:
            upgrades.append(target)
    listed = ", ".join(upgrades[:3]) + (f" and {len(upgrades) - 3} more" if len(upgrades) > 3 else "")
    return f"Upgrade {listed}, or allow the advisory with a reason and an until date."


def audit_record(audit: Audit, version: str | None, outcome: Outcome, allowed: list[Allowance],
                 limits: Mapping[str, int], today: datetime.date, seconds: float | None) -> dict[str, Any]:
    name = f"{audit.name} ({audit.tool})"
    lapsed = apply_allowances(outcome.findings, allowed, today)
    counts = count_by_severity(outcome.findings)
    allowed_count = sum(1 for finding in outcome.findings if finding["allowed"])
    after: dict[str, Any] = {"tool": audit.tool, "version": version, "path": audit.path,
                             "findings": outcome.findings, "counts": counts, "allowed": allowed_count,
                             "lapsed_allowances": lapsed, "limits": dict(limits), "skipped": outcome.skipped}
    if outcome.problem is not None:
        after["remedy"] = (f"Install {audit.tool} where the audit runs (or set executable) and rerun it."
                           if "not installed" in outcome.problem else
                           f"Make {audit.tool} reach its advisory database and audit every package, then rerun; "
                           "until then these dependencies are unaudited.")
        return make_record(name, "dependency_audit", "unknown", f"not audited: {outcome.problem}",
                           after=after, seconds=seconds)
    over = breaches(counts, limits)
    figures = ", ".join(f"{severity} {counts[severity]}" for severity in SEVERITIES if counts[severity]) or "none"
    detail = f"findings: {figures}; allowed {allowed_count}"
    if lapsed:
        detail += f"; lapsed allowances {', '.join(lapsed)}"
    if outcome.skipped:
        detail += f"; {len(outcome.skipped)} package(s) not audited: " + ", ".join(
            str(skip["package"]) for skip in outcome.skipped[:5])
    if over:
        after["remedy"] = upgrade_remedy(outcome.findings, limits)
        if outcome.skipped:
            after["remedy"] += " The skipped packages were not audited at all."
        return make_record(name, "dependency_audit", "breach", f"over the limits: {', '.join(over)}; {detail}",
                           after=after, seconds=seconds)
    if outcome.skipped:
        after["remedy"] = ("Audit the skipped packages (make them resolvable by the tool, or check them by hand); "
                           "they have not been checked.")
        return make_record(name, "dependency_audit", "unknown", f"partly audited: {detail}", after=after,
                           seconds=seconds)
    return make_record(name, "dependency_audit", "ok", f"within the limits: {detail}", after=after, seconds=seconds)


# --------------------------------------------------------------------------- the module's entry point


def _read_lock(audit: Audit) -> Mapping[str, Any] | None:
    lock = os.path.join(audit.path if os.path.isdir(audit.path) else os.path.dirname(audit.path), "package-lock.json")
    try:
        with open(lock, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None  # the versions are only a help; npm itself reports a missing or broken lock
    return data if isinstance(data, Mapping) else None


def run_audit(audit: Audit, *, allowed: list[Allowance], limits: Mapping[str, int], env: Mapping[str, str],
              timeout: float, today: datetime.date, runner: Callable[..., ToolRun] = run_tool,
              executed: list[str] | None = None) -> dict[str, Any]:
    executable = audit.executable or DEFAULT_EXECUTABLES[audit.tool]
    argv, cwd = tool_command(audit, executable)
    if executed is not None:
        executed.append(redact(shlex.join(argv)))
    run = runner(argv, env=env, cwd=cwd, timeout=timeout)
    version = None
    if not run.missing:
        version = tool_version(audit.tool, runner(version_command(audit.tool, executable), env=env, cwd=cwd,
                                                  timeout=min(timeout, 30)))
    outcome = read_tool(audit, run, _read_lock(audit) if audit.tool == "npm" else None)
    return audit_record(audit, version, outcome, allowed, limits, today, None if run.missing else run.seconds)


def run_dependency_audit(params: Mapping[str, Any], *, check_mode: bool = False, diff_mode: bool = False,
                         runner: Callable[..., ToolRun] = run_tool, today: datetime.date | None = None,
                         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Validate everything first (bad input reads nothing), then run each audit; check mode runs the same reads."""
    del check_mode, diff_mode  # read-only: the same reads either way, nothing to diff
    audits = parse_audits(params.get("audits") or [])
    allowed = parse_allowed(params.get("allowed") or [])
    limits = parse_limits(params.get("max_findings"))
    timeout = DEFAULT_TIMEOUT if params.get("timeout") is None else params["timeout"]
    if timeout <= 0:
        raise DependencyAuditError(msg=f"timeout {timeout!r} is not a positive number of seconds")
    problem = timeout_problem(timeout)
    if problem:
        raise DependencyAuditError(msg=problem)
    env = tool_environment(os.environ if environ is None else environ, params.get("environment"))
    today = today or datetime.date.today()
    executed: list[str] = []
    records = [run_audit(audit, allowed=allowed, limits=limits, env=env, timeout=timeout, today=today, runner=runner,
                         executed=executed)
               for audit in audits]
    problems = [record["name"] for record in records if record["status"] != "ok"]
    msg = (f"{len(records)} audit(s): " + (f"not clean: {', '.join(problems)}" if problems else "all within the limits"))
    return {"changed": False, "msg": msg, "records": records, "executed": executed}
