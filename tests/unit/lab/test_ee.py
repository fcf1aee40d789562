"""lab/ee: cache keys, the bindep runtime lists and the Containerfile checks, without building anything."""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
import yaml

from lab.ee import base, common, context, image, offline
from lab.harness.base import HarnessError

REPO = Path(__file__).resolve().parents[3]

ARCHIVES = [
    ("http://mirror.example/debian", ["bookworm", "bookworm-updates"], "/k.gpg"),
    ("http://mirror.example/debian-security", ["bookworm-security"], "/k.gpg"),
]

# The lines check_containerfile looks for, in the order ansible-builder 3.2 writes them.
GOOD_CONTAINERFILE = """\
ARG EE_BASE_IMAGE="streamops-lab/ee-base:bookworm"
ARG PKGMGR="/usr/bin/apt-get"

# Base build stage
FROM $EE_BASE_IMAGE AS base
COPY _build/scripts/ /output/scripts/
COPY _build/offline/wheels /opt/ee-offline/wheels
RUN if [ -n "$(ls -A /opt/ee-offline/wheels)" ]; then printf '...' > /etc/pip.conf; fi
COPY _build/offline/debs /opt/ee-offline/debs
RUN if [ "${PKGMGR##*/}" = apt-get ]; then echo 'deb [trusted=yes] file:/opt/ee-offline/debs ./'; fi
RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS
RUN apt-get install $(cat /opt/ee-offline/debs/runtime-packages.txt); pip install -r /opt/ee-offline/wheels/requirements.txt

# Galaxy build stage
FROM base AS galaxy
RUN ANSIBLE_GALAXY_DISABLE_GPG_VERIFY=1 ansible-galaxy collection install -r requirements.yml

# Builder build stage
FROM base AS builder
COPY --from=galaxy /usr/share/ansible /usr/share/ansible
RUN $PYCMD /output/scripts/introspect.py introspect --user-bindep=bindep.txt
RUN /output/scripts/assemble

# Final build stage
FROM base AS final
COPY --from=galaxy /usr/share/ansible /usr/share/ansible
RUN /output/scripts/install-from-bindep && rm -rf /output/wheels
RUN rm -rf /opt/ee-offline /etc/apt/apt.conf.d/00ee-offline
"""


# -- keys ------------------------------------------------------------------------

def test_base_key_follows_the_recipe(monkeypatch):
    key = base.base_key()
    assert key == base.base_key() and len(key) == 16
    monkeypatch.setattr(base, "BASE_PACKAGES", (*base.BASE_PACKAGES, "git"))
    assert base.base_key() != key
    monkeypatch.undo()
    monkeypatch.setattr(base, "IMAGE_CHANGES", (*base.IMAGE_CHANGES, "ENV X=1"))
    assert base.base_key() != key


def test_rootfs_ref_carries_the_key():
    rootfs = base.BaseRootfs("0123456789abcdef", Path("/cache/base-0123456789abcdef"))
    assert rootfs.ref == "streamops-lab/ee-base:bookworm-0123456789ab"
    assert rootfs.tar.name == "rootfs.tar" and rootfs.status.name == "dpkg-status"


def test_wheels_key_follows_requirements_constraints_and_python():
    key = offline.wheels_key(["a==1"], "a==1\n", "3.11.2")
    assert key == offline.wheels_key(["a==1"], "a==1\n", "3.11.2")
    assert len({key, offline.wheels_key(["a==2"], "a==1\n", "3.11.2"),
                offline.wheels_key(["a==1"], "a==2\n", "3.11.2"),
                offline.wheels_key(["a==1"], "a==1\n", "3.11.7")}) == 4


def test_debs_key_ignores_package_order_but_not_base_or_sources():
    key = offline.debs_key("base1", ["b", "a"], "deb x")
    assert key == offline.debs_key("base1", ["a", "b"], "deb x")
    assert key != offline.debs_key("base2", ["a", "b"], "deb x")
    assert key != offline.debs_key("base1", ["a", "b"], "deb y")


def test_cache_root_honours_the_override(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMOPS_EE_CACHE", str(tmp_path / "ee"))
    assert common.cache_root() == tmp_path / "ee"
    monkeypatch.delenv("STREAMOPS_EE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert common.cache_root() == tmp_path / "streamops-maintenance" / "ee"


# -- apt sources -----------------------------------------------------------------------

def test_image_sources_use_this_machines_mirrors():
    assert base.image_sources(ARCHIVES) == (
        "deb http://mirror.example/debian bookworm main\n"
        "deb http://mirror.example/debian bookworm-updates main\n"
        "deb http://mirror.example/debian-security bookworm-security main\n")


def test_image_sources_fall_back_to_debian():
    assert base.image_sources([]).splitlines() == [
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]


def test_fetch_sources_are_signed_by_debians_keyring():
    text = offline.fetch_sources(ARCHIVES, Path("/usr/share/keyrings/debian-archive-keyring.gpg"))
    assert text.splitlines() == [
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian "
        "bookworm bookworm-updates main",
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian-security "
        "bookworm-security main",
    ]


# -- bindep and pip requirement lists -----------------------------------------------------

BINDEP = (REPO / "bindep.txt").read_text()


@pytest.mark.parametrize(("platform", "profiles", "expected"), [
    (offline.DPKG_PLATFORM, ("default",),
     ["postgresql-client-15", "redis-tools", "logrotate", "docker.io", "kubernetes-client"]),
    (offline.RPM_PLATFORM, ("default",), ["postgresql", "redis", "logrotate"]),
    (offline.FEDORA_PLATFORM, ("default",), ["postgresql", "redis", "logrotate", "kubernetes-client"]),
])
def test_runtime_packages_of_bindep_txt(platform, profiles, expected):
    assert offline.runtime_packages(BINDEP, platform, profiles) == expected


@pytest.mark.parametrize("profile", ["test", "demo"])
def test_host_profiles_get_the_runtime_packages_but_not_kubernetes_client(profile):
    packages = offline.runtime_packages(BINDEP, offline.DPKG_PLATFORM, (profile,))
    assert {"postgresql-client-15", "redis-tools", "logrotate", "docker.io", "debootstrap"} <= set(packages)
    assert "kubernetes-client" not in packages


def test_runtime_packages_lists_each_package_once():
    text = "pkg-a [platform:dpkg]\npkg-a [platform:dpkg test]\npkg-b\npkg-c [platform:rpm]\n"
    assert offline.runtime_packages(text, offline.DPKG_PLATFORM, ("test",)) == ["pkg-a", "pkg-b"]


def test_runtime_packages_rejects_unparsable_bindep():
    with pytest.raises(HarnessError, match="bindep.txt does not parse"):
        offline.runtime_packages("pkg [platform:dpkg\n", offline.DPKG_PLATFORM)


def test_requirement_lines_drop_comments():
    text = "# Python libraries\npsycopg[binary]>=3.1  # the binary build\n\nredis>=5.0\n"
    assert offline.requirement_lines(text, "r.txt") == ["psycopg[binary]>=3.1", "redis>=5.0"]


@pytest.mark.parametrize("line", ["-r other.txt", "--index-url https://example.invalid/simple"])
def test_requirement_lines_refuse_options(line):
    with pytest.raises(HarnessError, match="r.txt: option line"):
        offline.requirement_lines(f"redis>=5.0\n{line}\n", "r.txt")


def test_wheel_requirements_cover_every_pip_step():
    ee = {"dependencies": {"ansible_core": {"package_pip": "ansible-core==2.19.14"},
                           "ansible_runner": {"package_pip": "ansible-runner==2.4.3"}}}
    assert offline.wheel_requirements(ee, "redis>=5.0\n") == [
        "ansible-core==2.19.14", "ansible-runner==2.4.3", "bindep", "pyyaml", "packaging", "dumb-init==1.2.5",
        "redis>=5.0"]
    ee["options"] = {"container_init": {"package_pip": "tini-py==1"}}
    assert "tini-py==1" in offline.wheel_requirements(ee, "")


def test_wheel_requirements_need_pinned_ansible():
    with pytest.raises(HarnessError, match="must pin dependencies.ansible_core"):
        offline.wheel_requirements({"dependencies": {}}, "")


@pytest.mark.parametrize(("package", "expected"), [
    ("python3", "3.11.2"),
    ("perl-base", "5.36.0"),
    ("libgdbm6", "1.23"),
    ("removed", None),
    ("absent", None),
])
def test_dpkg_upstream_version(package, expected):
    status = ("Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1+b1\n\n"
              "Package: perl-base\nStatus: install ok installed\nVersion: 5.36.0-7+deb12u4\n\n"
              "Package: libgdbm6\nStatus: install ok installed\nVersion: 1:1.23-3\n\n"
              "Package: removed\nStatus: deinstall ok config-files\nVersion: 1.0-1\n")
    assert offline.dpkg_upstream_version(status, package) == expected


# -- the generated Containerfile ------------------------------------------------------------

def test_good_containerfile_passes():
    assert context.check_containerfile(GOOD_CONTAINERFILE) == []


def test_stages_split_the_containerfile():
    found = context.stages(GOOD_CONTAINERFILE)
    assert list(found) == ["", "base", "galaxy", "builder", "final"]
    assert found[""] == ['ARG EE_BASE_IMAGE="streamops-lab/ee-base:bookworm"', 'ARG PKGMGR="/usr/bin/apt-get"']


@pytest.mark.parametrize(("remove", "problem"), [
    ('ARG PKGMGR="/usr/bin/apt-get"\n', 'ARG PKGMGR="/usr/bin/apt-get"'),
    ('ARG EE_BASE_IMAGE="streamops-lab/ee-base:bookworm"\n', "ARG EE_BASE_IMAGE"),
    ("COPY _build/offline/wheels /opt/ee-offline/wheels\n", "base stage: `COPY _build/offline/wheels`"),
    ("COPY _build/offline/debs /opt/ee-offline/debs\n", "base stage: `COPY _build/offline/debs`"),
    ("RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS\n", "$ANSIBLE_INSTALL_REFS"),
    ("RUN ANSIBLE_GALAXY_DISABLE_GPG_VERIFY=1 ansible-galaxy collection install -r requirements.yml\n",
     "galaxy stage: `ansible-galaxy collection install`"),
    ("RUN /output/scripts/assemble\n", "builder stage: `/output/scripts/assemble`"),
    ("RUN /output/scripts/install-from-bindep && rm -rf /output/wheels\n", "final stage: `/output/scripts/install"),
    ("RUN rm -rf /opt/ee-offline /etc/apt/apt.conf.d/00ee-offline\n", "final stage: `rm -rf /opt/ee-offline`"),
    ("FROM base AS galaxy\n", "no `FROM ... AS galaxy` stage"),
])
def test_containerfile_problems_name_what_is_missing(remove, problem):
    assert remove in GOOD_CONTAINERFILE
    problems = context.check_containerfile(GOOD_CONTAINERFILE.replace(remove, "", 1))
    assert any(problem in p for p in problems), problems


def test_dnf_default_is_a_problem():
    text = GOOD_CONTAINERFILE.replace('ARG PKGMGR="/usr/bin/apt-get"', 'ARG PKGMGR="/usr/bin/dnf"')
    assert context.check_containerfile(text) == [
        'global `ARG PKGMGR="/usr/bin/apt-get"` missing (options.package_manager_path / images.base_image)']


def test_ensurepip_step_is_a_problem():
    text = GOOD_CONTAINERFILE.replace("COPY _build/scripts/ /output/scripts/\n",
                                      "COPY _build/scripts/ /output/scripts/\nRUN /output/scripts/pip_install $PYCMD\n")
    assert any("skip_pip_install" in p for p in context.check_containerfile(text))


def test_offline_steps_out_of_order_are_a_problem():
    # The offline wheels must be in place before ansible-core is installed from them.
    text = GOOD_CONTAINERFILE.replace(
        "COPY _build/offline/wheels /opt/ee-offline/wheels\n", "").replace(
        "RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS\n",
        "RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS\nCOPY _build/offline/wheels /opt/ee-offline/wheels\n")
    problems = context.check_containerfile(text)
    assert problems and all(p.startswith("base stage:") and "out of order" in p for p in problems), problems


# -- the definition itself ---------------------------------------------------------------

def test_definition_matches_what_lab_ee_fills_and_checks():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    constraints = (REPO / "constraints-test.txt").read_text()
    for name in ("ansible-core", "ansible-runner"):
        pin = ee["dependencies"][name.replace("-", "_")]["package_pip"]
        assert re.search(rf"^{re.escape(pin)}$", constraints, re.MULTILINE), f"{pin} differs from constraints-test.txt"
    assert ee["images"]["base_image"]["name"] == context.DEFAULT_BASE_IMAGE
    assert ee["options"]["package_manager_path"] == context.PACKAGE_MANAGER
    sources = {entry["src"] for entry in ee["additional_build_files"]}
    expected = {common.OFFLINE_DIR / "wheels", common.OFFLINE_DIR / "debs", common.TARBALL}
    assert {REPO / src for src in sources} == expected
    assert ee["dependencies"]["galaxy"]["collections"] == [
        {"name": f"collection/{common.TARBALL.name}", "type": "file"}]


# -- content key, build log, tarball identity --------------------------------------------------

def test_content_key_follows_bytes_and_build_args_not_mtimes(tmp_path):
    (tmp_path / "_build").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "_build" / "a.txt").write_text("a\n")
    key = image.content_key(tmp_path, {"EE_BASE_IMAGE": "b:1"})
    os.utime(tmp_path / "_build" / "a.txt", (0, 0))
    assert image.content_key(tmp_path, {"EE_BASE_IMAGE": "b:1"}) == key
    assert image.content_key(tmp_path, {"EE_BASE_IMAGE": "b:2"}) != key
    (tmp_path / "_build" / "a.txt").write_text("b\n")
    assert image.content_key(tmp_path, {"EE_BASE_IMAGE": "b:1"}) != key


def test_image_refs():
    assert image.image_refs("0.1.0", "0123456789abcdef") == (
        "streamops-maintenance-ee:0.1.0", "streamops-maintenance-ee:0.1.0-0123456789ab")


def test_build_log_counts():
    log = ("Step 1/3 : FROM x\n ---> abc\nStep 2/3 : RUN a\n ---> Using cache\n ---> def\n"
           "Step 3/3 : RUN b\n ---> Running in 123\n")
    assert image.build_log_counts(log) == (3, 1)


def _collection_tar(path: Path, *, mtime: int, files: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=mtime))


def test_tarball_identity_ignores_build_times(tmp_path):
    manifest = json.dumps({"collection_info": {"namespace": "streamops", "name": "maintenance"}}).encode()
    files = {"MANIFEST.json": manifest, "FILES.json": b'{"files": []}', "README.md": b"x"}
    _collection_tar(tmp_path / "one.tar.gz", mtime=1, files=files)
    _collection_tar(tmp_path / "two.tar.gz", mtime=2, files=files)
    assert (tmp_path / "one.tar.gz").read_bytes() != (tmp_path / "two.tar.gz").read_bytes()
    assert context.tarball_identity(tmp_path / "one.tar.gz") == context.tarball_identity(tmp_path / "two.tar.gz")
    _collection_tar(tmp_path / "three.tar.gz", mtime=1, files={**files, "FILES.json": b'{"files": [1]}'})
    assert context.tarball_identity(tmp_path / "three.tar.gz") != context.tarball_identity(tmp_path / "one.tar.gz")


def test_tarball_without_manifest_is_refused(tmp_path):
    _collection_tar(tmp_path / "x.tar.gz", mtime=0, files={"README.md": b"x"})
    with pytest.raises(HarnessError, match="has no MANIFEST.json: not a collection tarball"):
        context.tarball_identity(tmp_path / "x.tar.gz")
