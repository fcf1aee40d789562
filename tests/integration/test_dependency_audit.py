"""dependency_audit with the real tools: pip-audit (the venv's) and npm (node's), every request answered on 127.0.0.1.

pip-audit asks https://pypi.org/pypi/<name>/<version>/json: it runs with HTTPS_PROXY at a loopback proxy that
answers that API itself under a throwaway CA (REQUESTS_CA_BUNDLE), 404 for what it does not know, as pypi.org's
JSON API answers on this machine. npm runs with --registry at a loopback registry. cargo-audit and trivy are not
installed here: their missing tool is tested for real, their JSON in the unit tests.
"""
from __future__ import annotations

import datetime
import gzip
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from ansible_collections.streamops.maintenance.plugins.modules import dependency_audit

pytestmark = [pytest.mark.integration]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dependency_audit"
PIP_AUDIT = str(Path(sys.executable).parent / "pip-audit")
TODAY = datetime.date.today()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_ca_and_server_cert(directory: Path, host: str) -> tuple[Path, Path, Path]:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dependency_audit test CA")])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage, critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


class PypiStandIn:
    """A loopback HTTPS proxy that answers CONNECT pypi.org:443 itself; nothing is forwarded anywhere."""

    def __init__(self, directory: Path, answers: dict[str, dict]) -> None:
        self.answers, self.requests = answers, []
        self.ca, cert, key = write_ca_and_server_cert(directory, "pypi.org")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def serve(self) -> None:
        while True:
            try:
                connection, _address = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self.handle, args=(connection,), daemon=True).start()

    def handle(self, connection: socket.socket) -> None:
        with connection:
            head = connection.makefile("rb")
            request = head.readline()
            while head.readline() not in (b"\r\n", b"\n", b""):
                pass
            if not request.startswith(b"CONNECT pypi.org:443 "):
                connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with self.context.wrap_socket(connection, server_side=True) as tls:
                reader = tls.makefile("rb")
                while True:
                    line = reader.readline()
                    if not line:
                        return
                    while reader.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    path = line.split()[1].decode()
                    self.requests.append(path)
                    answer = self.answers.get(path)
                    body = json.dumps(answer if answer is not None else {"message": "Not Found"}).encode()
                    status = b"200 OK" if answer is not None else b"404 Not Found"
                    tls.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def pypi(tmp_path):
    def start(answers: dict[str, dict]) -> PypiStandIn:
        stand_in = PypiStandIn(tmp_path, answers)
        threading.Thread(target=stand_in.serve, daemon=True).start()
        started.append(stand_in)
        return stand_in
    started: list[PypiStandIn] = []
    yield start
    for stand_in in started:
        stand_in.close()


@pytest.fixture
def npm_registry():
    """npm's bulk advisory endpoint and the packuments npm reads to place the fixes, from npm_registry.json."""
    data = json.loads((FIXTURES / "npm_registry.json").read_text())

    class Registry(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            asked = json.loads(body)
            self.answer(200, {name: advisories for name, advisories in data["advisories"].items() if name in asked})

        def do_GET(self):  # noqa: N802 - the http.server API
            packument = data["packuments"].get(self.path.strip("/"))
            self.answer(200 if packument else 404, packument or {"error": "not found"})

        def answer(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run_module(capsys, check_mode=False, **args):
    with patch_module_args({**args, "_ansible_check_mode": check_mode}), pytest.raises(SystemExit) as exited:
        dependency_audit.main()
    result = json.loads(capsys.readouterr().out)
    assert result.get("failed", False) == (exited.value.code != 0)
    assert result_problems(result, check_mode=check_mode) == []
    assert result["changed"] is False
    return result


def argument_failure(capsys, **args):
    """A value the argument spec itself refuses: AnsibleModule fails before the module runs (no records)."""
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        dependency_audit.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code != 0 and result["failed"] is True
    return result


def proxy_environment(port: int, ca: Path | None = None) -> dict[str, str]:
    proxy = f"http://127.0.0.1:{port}"
    env = {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
           "NO_PROXY": "", "no_proxy": ""}
    if ca:
        env["REQUESTS_CA_BUNDLE"] = str(ca)
    return env


def pip_audit_entry(requirements: str, tmp_path: Path) -> dict:
    # --disable-pip --no-deps: pinned requirements are read as they are, no resolver run (it would fetch and build).
    return {"name": "tools", "tool": "pip-audit", "path": str(FIXTURES / requirements), "executable": PIP_AUDIT,
            "args": ["--no-deps", "--disable-pip", "--cache-dir", str(tmp_path / "pip-audit-cache"),
                     "--timeout", "5"]}


def only_record(result):
    assert len(result["records"]) == 1, result["records"]
    return result["records"][0]


def findings_of(record):
    return sorted((f["id"], f["package"], f["version"], f["severity"], f["allowed"]) for f in record["after"]["findings"])


# --------------------------------------------------------------------------- pip-audit


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check-mode"])
def test_pip_audit_that_skipped_every_package_is_unknown(check_mode, pypi, tmp_path, capsys):
    """The measured case: exit 0, "No known vulnerabilities found", every package skipped."""
    stand_in = pypi({})
    result = run_module(capsys, check_mode, audits=[pip_audit_entry("requirements-pinned.txt", tmp_path)],
                        environment=proxy_environment(stand_in.port, stand_in.ca))
    record = only_record(result)
    assert record["status"] == "unknown"
    assert record["detail"] == "not audited: pip-audit audited no package (skipped all 2)"
    assert [(s["package"], s["reason"]) for s in record["after"]["skipped"]] == [
        ("requests", "Dependency not found on PyPI and could not be audited: requests (2.19.0)"),
        ("urllib3", "Dependency not found on PyPI and could not be audited: urllib3 (1.24.1)")]
    assert record["after"]["findings"] == [] and record["after"]["remedy"]
    assert record["after"]["version"] == "2.10.1"
    assert sorted(stand_in.requests) == ["/pypi/requests/2.19.0/json", "/pypi/urllib3/1.24.1/json"]


def test_pip_audit_findings_with_an_allowance_and_a_skipped_package(pypi, tmp_path, capsys):
    stand_in = pypi(json.loads((FIXTURES / "pypi_answers.json").read_text()))
    result = run_module(capsys, audits=[pip_audit_entry("requirements-findings.txt", tmp_path)],
                        environment=proxy_environment(stand_in.port, stand_in.ca),
                        allowed=[{"id": "CVE-2018-18074", "reason": "no redirects to http in our use"}])
    record = only_record(result)
    assert record["status"] == "breach"
    assert findings_of(record) == [("PYSEC-2018-28", "requests", "2.19.0", "unrated", True),
                                   ("PYSEC-2023-74", "requests", "2.19.0", "unrated", False)]
    assert {k: v for k, v in record["after"]["counts"].items() if v} == {"unrated": 1}
    assert [s["package"] for s in record["after"]["skipped"]] == ["vitalstream-internal-tools"]
    assert record["after"]["remedy"] == ("Upgrade requests to 2.31.0, or allow the advisory with a reason and an "
                                         "until date. The skipped packages were not audited at all.")


def test_pip_audit_allowed_everything_but_skipped_one_is_still_unknown(pypi, tmp_path, capsys):
    stand_in = pypi(json.loads((FIXTURES / "pypi_answers.json").read_text()))
    result = run_module(capsys, audits=[pip_audit_entry("requirements-findings.txt", tmp_path)],
                        environment=proxy_environment(stand_in.port, stand_in.ca),
                        allowed=[{"id": "PYSEC-2018-28", "reason": "r"}, {"id": "GHSA-j8r2-6x86-q33q", "reason": "r"}])
    record = only_record(result)
    assert record["status"] == "unknown"
    assert record["detail"].startswith("partly audited: findings: none; allowed 2; 1 package(s) not audited")


def test_pip_audit_that_cannot_reach_its_feed_is_unknown(tmp_path, capsys):
    closed = free_port()
    result = run_module(capsys, audits=[pip_audit_entry("requirements-pinned.txt", tmp_path)],
                        environment=proxy_environment(closed))
    record = only_record(result)
    assert record["status"] == "unknown"
    assert record["detail"].startswith("not audited: pip-audit printed no JSON (exit 1)")
    assert "Unable to connect to proxy" in record["detail"]


# --------------------------------------------------------------------------- npm

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed on this machine")


def npm_entry(port: int, tmp_path: Path) -> tuple[dict, dict]:
    project = tmp_path / "ui"
    shutil.copytree(FIXTURES / "npm-project", project)
    entry = {"name": "ui", "tool": "npm", "path": str(project), "args": ["--registry", f"http://127.0.0.1:{port}/"]}
    # A cache of its own: npm keeps packuments and logs there.
    return entry, {"npm_config_cache": str(tmp_path / "npm-cache"), "npm_config_update_notifier": "false"}


@needs_npm
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check-mode"])
def test_npm_findings_with_an_allowance_and_a_lapsed_one(check_mode, npm_registry, tmp_path, capsys):
    entry, env = npm_entry(npm_registry.server_address[1], tmp_path)
    yesterday, later = TODAY - datetime.timedelta(days=1), TODAY + datetime.timedelta(days=30)
    result = run_module(capsys, check_mode, audits=[entry], environment=env, allowed=[
        {"id": "GHSA-35jh-r3h4-6jhm", "reason": "template() never gets user input", "until": later.isoformat()},
        {"id": "GHSA-xvch-5gv4-984h", "reason": "CLI parsing only", "until": yesterday.isoformat()}])
    record = only_record(result)
    assert record["name"] == "ui (npm)" and record["status"] == "breach"
    assert findings_of(record) == [("GHSA-35jh-r3h4-6jhm", "lodash", "4.17.20", "high", True),
                                   ("GHSA-xvch-5gv4-984h", "minimist", "1.2.5", "critical", False)]
    assert record["after"]["lapsed_allowances"] == ["GHSA-xvch-5gv4-984h"]
    assert record["detail"].startswith("over the limits: critical 1 (limit 0); findings: critical 1; allowed 1")
    assert record["after"]["remedy"].startswith("Upgrade minimist to 1.2.8")


@needs_npm
def test_npm_with_its_registry_down_is_unknown(tmp_path, capsys):
    entry, env = npm_entry(free_port(), tmp_path)
    record = only_record(run_module(capsys, audits=[entry], environment=env))
    assert record["status"] == "unknown"
    assert record["detail"].startswith("not audited: npm audit failed: request to http://127.0.0.1:")
    assert "ECONNREFUSED" in record["detail"]


@needs_npm
def test_npm_offline_setting_is_overridden(npm_registry, tmp_path, capsys):
    """npm_config_offline=true would print "found 0 vulnerabilities"; --offline=false asks the registry anyway."""
    entry, env = npm_entry(npm_registry.server_address[1], tmp_path)
    record = only_record(run_module(capsys, audits=[entry], environment={**env, "npm_config_offline": "true"}))
    assert record["status"] == "breach"
    assert {k: v for k, v in record["after"]["counts"].items() if v} == {"critical": 1, "high": 1}


def test_npm_offline_argument_is_refused_before_anything_runs(tmp_path, capsys):
    entry, _env = npm_entry(1, tmp_path)
    entry["args"] = ["--offline"]
    result = run_module(capsys, audits=[entry])
    assert result["failed"] is True and result["records"] == []
    assert result["msg"].startswith("audit 'ui': argument '--offline' is refused")


# --------------------------------------------------------------------------- cargo and trivy: missing for real


def cargo_audit_installed() -> bool:
    if shutil.which("cargo") is None:
        return False
    probe = subprocess.run(["cargo", "audit", "--version"], capture_output=True, text=True, check=False, timeout=60)
    return probe.returncode == 0


def test_missing_cargo_audit_and_trivy_are_unknown(capsys):
    if cargo_audit_installed() or shutil.which("trivy"):
        pytest.skip("cargo-audit or trivy is installed here: the missing-tool case cannot be shown")
    result = run_module(capsys, audits=[
        {"name": "api", "tool": "cargo", "path": str(FIXTURES / "cargo-project")},
        {"name": "web image", "tool": "trivy", "path": "vitalstream/web:2.4.1"}])
    cargo, trivy = result["records"]
    assert (cargo["name"], cargo["status"]) == ("api (cargo)", "unknown")
    assert cargo["detail"] in ("not audited: cargo-audit is not installed (cargo has no `audit` subcommand)",
                               "not audited: cargo is not installed (no 'cargo' on PATH)")
    assert (trivy["name"], trivy["status"]) == ("web image (trivy)", "unknown")
    assert trivy["detail"] == "not audited: trivy is not installed (no 'trivy' on PATH)"
    assert all(record["after"]["remedy"].startswith("Install ") for record in result["records"])
    assert result["msg"] == "2 audit(s): not clean: api (cargo), web image (trivy)"


# --------------------------------------------------------------------------- bad input


def test_unknown_tool_fails_naming_it(capsys):
    result = argument_failure(capsys, audits=[{"name": "x", "tool": "bundler", "path": "/"}])
    assert "value of tool must be one of: pip-audit, npm, cargo, trivy, got: bundler" in result["msg"]


@pytest.mark.parametrize("args, message", [
    ({"audits": [{"name": "x", "tool": "npm", "path": "/nonexistent/ui"}]},
     "audit 'x': path '/nonexistent/ui' does not exist"),
    ({"audits": [{"name": "x", "tool": "trivy", "path": "web:1"}],
      "allowed": [{"id": "CVE-2023-4911", "reason": "r", "until": "next week"}]},
     "allowed entry 'CVE-2023-4911': until 'next week' is not a date (YYYY-MM-DD)"),
])
def test_bad_input_fails_naming_the_value(args, message, capsys):
    result = run_module(capsys, **args)
    assert result["failed"] is True and result["records"] == []
    assert message in result["msg"]


def test_secrets_in_environment_are_not_returned(tmp_path, capsys):
    result = run_module(capsys, audits=[{"name": "web image", "tool": "trivy", "path": "web:1",
                                         "executable": str(tmp_path / "no-trivy")}],
                        environment={"TRIVY_PASSWORD": "registry-secret-value"})
    assert "registry-secret-value" not in json.dumps(result)
