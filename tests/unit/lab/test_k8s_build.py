"""lab/k8s: the cache key, the apt source entries and the PKI, without building or starting anything."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.k8s import build
from lab.k8s.cluster import kubeconfig_yaml, write_pki

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://example.invalid/src-only
Suites: bookworm
Components: main

Types: deb
URIs: http://example.invalid/contrib-only
Suites: bookworm
Components: contrib
"""


def test_deb822_stanzas_give_each_binary_archive_with_its_suites_and_keyring():
    assert build._deb822_entries(DEB822) == [
        ("http://deb.debian.org/debian", ["bookworm", "bookworm-updates"],
         "/usr/share/keyrings/debian-archive-keyring.gpg"),
        ("http://deb.debian.org/debian-security", ["bookworm-security"],
         "/usr/share/keyrings/debian-archive-keyring.gpg"),
    ]


@pytest.mark.parametrize(("line", "expected"), [
    ("deb http://deb.debian.org/debian bookworm main contrib",
     [("http://deb.debian.org/debian", ["bookworm"], "")]),
    ("deb [arch=amd64 signed-by=/k.gpg] http://mirror/debian bookworm-updates main",
     [("http://mirror/debian", ["bookworm-updates"], "/k.gpg")]),
    ("# deb http://deb.debian.org/debian bookworm main", []),
    ("deb-src http://deb.debian.org/debian bookworm main", []),
    ("deb http://deb.debian.org/debian bookworm contrib", []),
])
def test_one_line_sources(line, expected):
    assert build._one_line_entries(line) == expected


def test_the_cache_key_follows_every_patch_byte(tmp_path, monkeypatch):
    patches = tmp_path / "patches"
    patches.mkdir()
    (patches / "0001-a.patch").write_text("one\n")
    monkeypatch.setattr(build, "PATCH_DIR", patches)
    first = build.build_key()
    assert build.build_key() == first
    (patches / "0001-a.patch").write_text("one!\n")
    changed = build.build_key()
    (patches / "0002-b.patch").write_text("two\n")
    added = build.build_key()
    assert len({first, changed, added}) == 3


def test_the_repo_patches_are_in_the_key_and_cover_the_sandbox_changes():
    names = [p.name for p in build.patch_files()]
    assert names == sorted(names) and len(names) == 6
    text = "".join(p.read_text() for p in build.patch_files())
    for marker in ("guaranteedOOMScoreAdj int = 0", "defaultSandboxOOMAdj int = 0",
                   '-		return fmt.Errorf("nodeIP can\'t be loopback address")',
                   "may not be in the loopback range", 'return []string{"127.0.0.1"}',
                   "b := KernelTunableWarn", 'os.Getenv("STREAMOPS_KUBELET_LOG_ROOT")'):
        assert marker in text, marker


def test_cache_root_honours_the_override(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMOPS_K8S_CACHE", str(tmp_path / "k8s"))
    assert build.cache_root() == (tmp_path / "k8s").resolve()
    assert build.binaries_dir().parent == (tmp_path / "k8s").resolve()
    assert build.binaries_dir().name.startswith(f"v{build.KUBERNETES_VERSION}-")


def test_a_half_built_cache_is_not_taken_for_a_build(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMOPS_K8S_CACHE", str(tmp_path))
    target = build.binaries_dir()
    target.mkdir(parents=True)
    for name in build.COMPONENTS[:-1]:
        (target / name).write_text("#!/bin/sh\n")
        (target / name).chmod(0o755)
    (target / build.BUILD_INFO).write_text("{}")
    assert build.cached_binaries() is None
    (target / build.COMPONENTS[-1]).write_text("#!/bin/sh\n")
    (target / build.COMPONENTS[-1]).chmod(0o755)
    assert build.cached_binaries() == target


def test_a_missing_build_tool_names_its_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(build.HarnessError, match=r"`jq`.*apt-get install jq"):
        build._require_tool("jq", "jq")


def test_pki_signs_serving_and_client_certs_with_one_ca(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    write_pki(tmp_path)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    serving = x509.load_pem_x509_certificate((tmp_path / "apiserver.crt").read_bytes())
    client = x509.load_pem_x509_certificate((tmp_path / "apiserver-kubelet-client.crt").read_bytes())
    for cert in (serving, client):
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
    san = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    for key in ("ca.key", "apiserver.key", "sa.key"):
        assert (tmp_path / key).stat().st_mode & 0o077 == 0


def test_kubeconfig_is_a_token_config_for_the_loopback_server(tmp_path):
    config = json.loads(kubeconfig_yaml("https://127.0.0.1:6443", "/ca.crt", "s3cret", user="admin"))
    assert config["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:6443", "certificate-authority": "/ca.crt"}
    assert config["users"][0]["user"] == {"token": "s3cret"}
    assert config["current-context"] == "streamops-lab"


def test_the_stream_systems_manifest_is_blue_green_on_host_ports():
    import yaml

    from lab.k8s.control import MANIFESTS, stream_systems_manifest

    docs = [d for d in yaml.safe_load_all(stream_systems_manifest({"blue": 40001, "green": 40002}, "2026.11.0")) if d]
    assert [d["kind"] for d in docs] == ["Namespace", "Deployment", "Deployment", "Service", "NetworkPolicy",
                                         "NetworkPolicy"]
    blue, green, service, deny, allow = docs[1:]
    assert [blue["metadata"]["name"], green["metadata"]["name"]] == ["stream-api-blue", "stream-api-green"]
    assert [blue["spec"]["replicas"], green["spec"]["replicas"]] == [1, 0]
    for deployment, port in ((blue, 40001), (green, 40002)):
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert pod["spec"]["hostNetwork"] is True and deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert container["name"] == "stream-api" and container["image"] == "stream-api:2026.11.0"
        assert container["imagePullPolicy"] == "Never"
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert pod["metadata"]["labels"]["app.kubernetes.io/version"] == "2026.11.0"
        assert "httpd" in container["command"][-1]
    assert service["spec"]["selector"] == blue["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    # What the access review asks of the namespace: ingress denied by default, the app's two ports allowed.
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert allow["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 40001}, {"protocol": "TCP", "port": 40002}]}]
    assert Path(MANIFESTS).is_dir()


def test_build_progress_names_the_targets_being_compiled(tmp_path):
    log = tmp_path / "make.log"
    log.write_text("+++ [1123 11:04:41] Building go targets for linux/amd64:\n"
                   "    ./vendor/k8s.io/code-generator/cmd/deepcopy-gen\n"
                   "+++ [1123 11:05:19] Building go targets for linux/amd64:\n"
                   "    cmd/kube-apiserver\n    cmd/kubelet\n")
    assert build._last_step(log) == "compiling kube-apiserver, kubelet"
    log.write_text("")
    assert build._last_step(log) == "starting"
