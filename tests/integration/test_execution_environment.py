"""The execution environment: what ansible-builder generates from our definition, and the image it builds.

The context checks run on every test run (no engine needed, about 5 s). The
image tests build the image on the test Docker engine (``ee_image``, a few
minutes cold, seconds warm) and run what the collection's modules and roles
run inside it.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.ee.base import ensure_base_image
from lab.ee.common import BUILD_LOCK, REPO, galaxy_version
from lab.ee.context import (
    DEFAULT_BASE_IMAGE, PACKAGE_MANAGER, build_collection_tarball, check_context, create_context, introspect,
    stages, tarball_manifest,
)
from lab.ee.offline import DPKG_PLATFORM, RPM_PLATFORM, ensure_offline_dirs, runtime_packages
from lab.harness.base import exclusive
from lab.harness.docker_engine import DockerEngine, docker_cli

pytestmark = pytest.mark.integration

DPKG_RUNTIME = ["postgresql-client-15", "redis-tools", "logrotate", "docker.io", "kubernetes-client"]
RPM_RUNTIME = ["postgresql", "redis", "logrotate"]


def constraint(name: str) -> str:
    match = re.search(rf"^{re.escape(name)}==(\S+)$", (REPO / "constraints-test.txt").read_text(), re.MULTILINE)
    assert match, f"{name} is not pinned in constraints-test.txt"
    return match.group(1)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ansible-builder create`` from execution-environment.yml into a private directory."""
    target = tmp_path_factory.mktemp("ee") / "context"
    # build/ee is shared with `make ee` and the ee_image fixture.
    with exclusive(BUILD_LOCK, print, "building the execution environment"):
        build_collection_tarball(print)
        ensure_offline_dirs()
        create_context(target, print)
    return target


# -- ansible-builder create, on every run ---------------------------------------------------

def test_context_fits_the_offline_debian_build(context: Path) -> None:
    assert check_context(context, version=galaxy_version()) == []
    header = stages((context / "Dockerfile").read_text())[""]
    assert f'ARG PKGMGR="{PACKAGE_MANAGER}"' in header
    assert f'ARG EE_BASE_IMAGE="{DEFAULT_BASE_IMAGE}"' in header
    pins = f"ansible-core=={constraint('ansible-core')} ansible-runner=={constraint('ansible-runner')}"
    assert f'ARG ANSIBLE_INSTALL_REFS="{pins}"' in header


def test_galaxy_stage_installs_this_checkouts_collection(context: Path) -> None:
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == {"collections": [{"name": "collection/streamops-maintenance.tar.gz", "type": "file"}]}
    info = tarball_manifest(context / "_build" / "collection" / "streamops-maintenance.tar.gz")["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("streamops", "maintenance", galaxy_version())
    assert info["dependencies"] == {}, "a dependency would send ansible-galaxy to Galaxy during the build"


def test_context_bindep_carries_dpkg_and_rpm_runtime_lines(context: Path) -> None:
    bindep = (context / "_build" / "bindep.txt").read_text()
    assert runtime_packages(bindep, DPKG_PLATFORM) == DPKG_RUNTIME
    assert runtime_packages(bindep, RPM_PLATFORM) == RPM_RUNTIME


def test_introspection_lists_the_runtime_packages(context: Path) -> None:
    found = introspect(context)
    system = "\n".join(found["system"]) + "\n"
    # What the builder stage writes to /tmp/src/bindep.txt and runs `bindep -l newline` on.
    assert runtime_packages(system, DPKG_PLATFORM) == DPKG_RUNTIME
    assert runtime_packages(system, RPM_PLATFORM) == RPM_RUNTIME
    names = {line.split("#")[0].strip() for line in found["python"]}
    assert {"psycopg[binary]>=3.1", "redis>=5.0", "boto3>=1.28", "docker>=7.0", "kubernetes>=28.1",
            "python-dateutil>=2.8"} <= names
    assert not any("from collection streamops.maintenance" in line for line in found["system"] + found["python"]), \
        "the collection's own copies must be excluded (listed once, from the EE definition)"


def test_rpm_platform_installs_the_postgresql_client() -> None:
    """In the RPM-based awx-ee, bindep must install the PostgreSQL client pg_backup runs."""
    rpm = runtime_packages((REPO / "bindep.txt").read_text(), RPM_PLATFORM)
    assert "postgresql" in rpm
    assert "postgresql-client-15" not in rpm and "docker.io" not in rpm


def test_host_profiles_leave_kubernetes_client_out() -> None:
    """`make test` on a machine whose kubectl comes from elsewhere must not install a second one."""
    bindep = (REPO / "bindep.txt").read_text()
    for profile in ("test", "demo"):
        packages = runtime_packages(bindep, DPKG_PLATFORM, (profile,))
        assert "kubernetes-client" not in packages
        assert {"postgresql-client-15", "redis-tools", "logrotate", "docker.io", "debootstrap"} <= set(packages)


# -- the same steps on an RPM-based image ---------------------------------------------------

def offline_steps_script() -> str:
    """The definition's additional_build_steps as one shell script: COPY of an empty directory, ARG, RUN."""
    steps = yaml.safe_load((REPO / "execution-environment.yml").read_text())["additional_build_steps"]
    lines = ["set -e"]
    for section in ("prepend_base", "append_base", "append_final"):
        for step in steps.get(section, []):
            word, _sep, rest = step.partition(" ")
            if word == "COPY":
                lines.append(f"mkdir -p {rest.split()[-1]}")
            elif word == "ARG":
                lines.append(rest)
            else:
                assert word == "RUN", step
                lines.append(rest)
    return "\n".join(lines) + "\n"


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_offline_steps_do_nothing_for_an_rpm_build(docker_engine: DockerEngine) -> None:
    """With dnf as PKGMGR and empty offline directories (an awx-ee build), no step changes the image."""
    base_ref = ensure_base_image(docker_engine, print).ref
    script = offline_steps_script() + (
        "for path in /etc/pip.conf /usr/sbin/policy-rc.d /etc/apt/apt.conf.d/00ee-offline "
        "/etc/apt/apt.conf.d/90ee-no-recommends /opt/ee-offline; do test ! -e $path || echo left $path; done\n")
    result = subprocess.run(  # noqa: S603
        [docker_cli(), "run", "--rm", "--network", "none", "--user", "0", "--env", "PKGMGR=/usr/bin/dnf",
         "--env", "PYCMD=/usr/bin/python3", base_ref, "sh", "-c", script],
        env=docker_engine.docker_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "left" not in result.stdout, result.stdout


# -- the image -------------------------------------------------------------------------

def run_in_image(engine: DockerEngine, image: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([docker_cli(), "run", "--rm", "--network", "host", image, *argv],  # noqa: S603
                          env=engine.docker_env(), capture_output=True, text=True, timeout=300, check=False)


# An empty RDB with its checksum turned off (8 zero bytes): redis-check-rdb reads it to the end.
EMPTY_RDB = "import sys; open(sys.argv[1], 'wb').write(b'REDIS0009' + b'\\xff' + bytes(8))"

IMAGE_COMMANDS = [
    pytest.param(["ansible", "--version"], f"core {constraint('ansible-core')}", id="ansible-core"),
    pytest.param(["ansible-runner", "--version"], constraint("ansible-runner"), id="ansible-runner"),
    pytest.param(["ansible-galaxy", "collection", "list", "streamops.maintenance"],
                 re.compile(rf"streamops\.maintenance\s+{re.escape(galaxy_version())}"), id="collection"),
    pytest.param(["ansible-doc", "streamops.maintenance.pg_backup"], "streamops.maintenance.pg_backup",
                 id="ansible-doc"),
    pytest.param(["pg_dump", "--version"], "pg_dump (PostgreSQL) 15.", id="pg_dump"),
    pytest.param(["pg_restore", "--version"], "pg_restore (PostgreSQL) 15.", id="pg_restore"),
    pytest.param(["redis-cli", "--version"], "redis-cli 7.", id="redis-cli"),
    pytest.param(["sh", "-c", f'python3 -c "{EMPTY_RDB}" /tmp/empty.rdb && redis-check-rdb /tmp/empty.rdb'],
                 "RDB looks OK", id="redis-check-rdb"),
    pytest.param(["logrotate", "--version"], "logrotate 3.", id="logrotate"),
    pytest.param(["docker", "--version"], "Docker version 20.10", id="docker"),
    pytest.param(["kubectl", "version", "--client"], 'GitVersion:"v1.20', id="kubectl"),
    pytest.param(["python3", "-c", "import psycopg, redis, boto3, docker, kubernetes, dateutil; print('imported')"],
                 "imported", id="python-libraries"),
    # The offline build leaves nothing behind: pip and apt use the image's own sources.
    pytest.param(["sh", "-c", "test ! -e /opt/ee-offline && test ! -e /etc/pip.conf && "
                  "test ! -e /etc/apt/apt.conf.d/00ee-offline && id -u && cat /etc/apt/sources.list"],
                 re.compile(r"^1000\n(.|\n)*deb \S+ bookworm-security main", re.MULTILINE), id="clean"),
]


@pytest.mark.docker
@pytest.mark.timeout(1800)
@pytest.mark.parametrize(("argv", "expected"), IMAGE_COMMANDS)
def test_image_runs(docker_engine: DockerEngine, ee_image: str, argv: list[str],
                    expected: str | re.Pattern[str]) -> None:
    result = run_in_image(docker_engine, ee_image, *argv)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if isinstance(expected, str):
        assert expected in output, output
    else:
        assert expected.search(output), output
