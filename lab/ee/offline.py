"""What the image build would otherwise download: wheels, and a local .deb repository.

The image is built with ``docker build --network none``, so everything pip and
apt-get install inside it is fetched here first, on the host: the wheels with
``pip wheel`` under constraints-test.txt (the versions the tests ran), the
.debs with the host's apt against the base rootfs's dpkg status (exactly what
is missing there), indexed with ``dpkg-scanpackages``. Both are cached under
``cache_root()``, keyed by their inputs.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bindep.depends import Depends, DependsException

from ..harness.base import HarnessError, exclusive
from ..k8s.build import debian_archives, private_apt_options
from .base import BASE_SUITE, DEFAULT_MIRROR, DEFAULT_SECURITY, BaseRootfs, archive_uri
from .common import (
    CONSTRAINTS_FILE, EE_FILE, OFFLINE_DIR, Progress, cache_root,
    link_or_copy, load_ee_definition, run, system_tool,
)

# ansible-builder 3.2's builder stage runs `pip install bindep pyyaml packaging`.
BUILDER_STAGE_PACKAGES: tuple[str, ...] = ("bindep", "pyyaml", "packaging")
# ansible-builder's default options.container_init.package_pip.
CONTAINER_INIT_DEFAULT = "dumb-init==1.2.5"
# Where a Python with the image's version may live on the host.
HOST_PYTHONS: tuple[str, ...] = ("/usr/bin/python3.11", "/usr/bin/python3")
# The platform profiles bindep reports inside each kind of image.
DPKG_PLATFORM: tuple[str, ...] = ("platform:dpkg", "platform:debian", "platform:debian-bookworm",
                                  "platform:debian-12", "platform:base-py3")
# CentOS Stream 9, what awx-ee is built on.
RPM_PLATFORM: tuple[str, ...] = ("platform:rpm", "platform:redhat", "platform:centos", "platform:centos-9",
                                 "platform:base-py3")
FEDORA_PLATFORM: tuple[str, ...] = ("platform:rpm", "platform:redhat", "platform:fedora", "platform:base-py3")
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
COMPLETE = ".complete"
# Inside build/ee/offline, so inside the image's /opt/ee-offline.
PREINSTALL_PACKAGES = "debs/runtime-packages.txt"
PREINSTALL_REQUIREMENTS = "wheels/requirements.txt"


# -- what to fetch (pure) --------------------------------------------------------

def runtime_packages(bindep_text: str, platform: tuple[str, ...], profiles: tuple[str, ...] = ("default",)
                     ) -> list[str]:
    """The packages ``bindep -l newline`` lists for ``platform`` and ``profiles``, once each, in file order."""
    depends = _parse_bindep(bindep_text)
    names: list[str] = []
    for rule in depends.active_rules([*profiles, *platform]):
        if rule[0] not in names:
            names.append(rule[0])
    return names


@functools.lru_cache(maxsize=8)
def _parse_bindep(text: str) -> Depends:
    # bindep compiles its Parsley grammar on every parse (seconds on a busy
    # machine); a parsed file is only read afterwards.
    try:
        return Depends(text)
    except DependsException as exc:
        raise HarnessError(f"bindep.txt does not parse: {exc}") from exc


def requirement_lines(text: str, source: str) -> list[str]:
    """The requirement lines of a pip requirements file, without comments."""
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise HarnessError(f"{source}: option line {line!r} is not supported in the EE's requirements; "
                               "list the packages themselves")
        lines.append(line)
    return lines


def wheel_requirements(ee: dict, requirements_text: str) -> list[str]:
    """Every package a pip step of the generated build installs, as requirement lines."""
    dependencies = ee.get("dependencies", {})
    pins = [dependencies.get(name, {}).get("package_pip") for name in ("ansible_core", "ansible_runner")]
    if not all(pins):
        raise HarnessError("execution-environment.yml must pin dependencies.ansible_core and "
                           "dependencies.ansible_runner (package_pip)")
    init = ee.get("options", {}).get("container_init", {}).get("package_pip", CONTAINER_INIT_DEFAULT)
    return [*pins, *BUILDER_STAGE_PACKAGES, init, *requirement_lines(requirements_text, "requirements.txt")]


def wheels_key(requirements: list[str], constraints_text: str, python: str) -> str:
    recipe = {"requirements": requirements, "constraints": constraints_text, "python": python}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def debs_key(base_key: str, packages: list[str], sources: str) -> str:
    recipe = {"base": base_key, "packages": sorted(packages), "sources": sources}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def fetch_sources(archives: list[tuple[str, list[str], str]], keyring: Path | None) -> str:
    """sources.list for the host's apt: the base suite, its updates and security, signed by Debian's keyring."""
    signed = f"[signed-by={keyring}] " if keyring is not None else ""
    main = archive_uri(archives, BASE_SUITE, DEFAULT_MIRROR)
    security = archive_uri(archives, f"{BASE_SUITE}-security", DEFAULT_SECURITY)
    return (f"deb {signed}{main} {BASE_SUITE} {BASE_SUITE}-updates main\n"
            f"deb {signed}{security} {BASE_SUITE}-security main\n")


# -- wheels ------------------------------------------------------------------

def dpkg_upstream_version(status_text: str, package: str) -> str | None:
    """Upstream version of ``package`` in a dpkg status file ("3.11.2" of "3.11.2-1+b1")."""
    for stanza in status_text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[:1] != " ")
        if fields.get("Package") == package and "installed" in fields.get("Status", "").split():
            version = fields.get("Version", "")
            return version.split(":", 1)[-1].rsplit("-", 1)[0] or None
    return None


def host_python(version: str) -> str:
    """A Python on this machine whose full version is ``version``, the image's.

    pip resolves environment markers with the interpreter it targets (redis
    needs async-timeout below Python 3.11.3 only), so the wheels are resolved
    for the image's Python, not the venv's.
    """
    for candidate in (*HOST_PYTHONS, sys.executable):
        if not os.access(candidate, os.X_OK):
            continue
        found = subprocess.run([candidate, "-c", "import platform; print(platform.python_version())"],  # noqa: S603
                               capture_output=True, text=True, check=False).stdout.strip()
        if found == version:
            return candidate
    raise HarnessError(f"no Python {version} (the image's) on this machine to resolve the image's wheels with: "
                       "install the Debian package `python3.11` (apt-get install python3.11)")


def ensure_wheels(rootfs: BaseRootfs, progress: Progress) -> Path:
    """Directory of wheels for every pip install of the build (cached; ``pip wheel`` when absent)."""
    python = dpkg_upstream_version(rootfs.status.read_text(), "python3")
    if python is None:
        raise HarnessError(f"the base rootfs has no python3 installed ({rootfs.status})")
    path = ee_dependency_file("python")
    requirements = wheel_requirements(load_ee_definition(), path.read_text())
    constraints = CONSTRAINTS_FILE.read_text()
    target = cache_root() / f"wheels-{wheels_key(requirements, constraints, python)}"
    if (target / COMPLETE).is_file():
        return target
    with exclusive(cache_root() / ".wheels.lock", progress, "fetching wheels"):
        if (target / COMPLETE).is_file():
            return target
        progress(f"  pip wheel: {len(requirements)} requirements under constraints-test.txt")
        staging = Path(tempfile.mkdtemp(prefix="wheels-work-", dir=cache_root()))
        try:
            (staging / "requirements.txt").write_text("\n".join(requirements) + "\n")
            run([sys.executable, "-m", "pip", "--python", host_python(python), "wheel",
                 "--disable-pip-version-check", "--quiet",
                 "--wheel-dir", str(staging / "wheels"), "-c", str(CONSTRAINTS_FILE),
                 "-r", str(staging / "requirements.txt")],
                what="pip wheel of the EE's Python packages", timeout=1800, log=staging / "pip.log")
            wheels = staging / "wheels"
            (wheels / COMPLETE).write_text("\n".join(requirements) + "\n")
            if target.exists():
                shutil.rmtree(target)
            wheels.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    progress(f"  {len(list(target.glob('*.whl')))} wheels in {target}")
    return target


# -- .debs -------------------------------------------------------------------------

def ensure_debs(rootfs: BaseRootfs, packages: list[str], progress: Progress) -> Path:
    """A flat apt repository (.debs + Packages) with what installing ``packages`` on the rootfs needs."""
    if not packages:
        raise HarnessError("bindep.txt lists no runtime packages for dpkg: nothing for the EE to install")
    keyring = DEBIAN_KEYRING if DEBIAN_KEYRING.is_file() else None
    sources = fetch_sources(debian_archives(), keyring)
    target = cache_root() / f"debs-{debs_key(rootfs.key, packages, sources)}"
    if (target / COMPLETE).is_file():
        return target
    apt_get = system_tool("apt-get", "apt")
    scan = system_tool("dpkg-scanpackages", "dpkg-dev")
    with exclusive(cache_root() / ".apt.lock", progress, "fetching .debs"):
        if (target / COMPLETE).is_file():
            return target
        progress(f"  apt-get --download-only for the base rootfs: {' '.join(packages)}")
        apt_dir = cache_root() / "apt"
        for sub in ("lists/partial", "cache", "sources.list.d"):
            (apt_dir / sub).mkdir(parents=True, exist_ok=True)
        (apt_dir / "sources.list").write_text(sources)
        staging = Path(tempfile.mkdtemp(prefix="debs-work-", dir=cache_root()))
        try:
            (staging / "partial").mkdir()
            options = [*private_apt_options(apt_dir),
                       # What the rootfs has installed decides what is missing.
                       "-o", f"Dir::State::status={rootfs.status}",
                       "-o", f"Dir::Cache::Archives={staging}",
                       "-o", "APT::Install-Recommends=false"]
            run([apt_get, *options, "-qq", "update"], what="apt-get update (private state)", timeout=600)
            run([apt_get, *options, "-q", "-y", "--download-only", "install", *packages],
                what=f"apt-get --download-only install {' '.join(packages)}", timeout=1800)
            shutil.rmtree(staging / "partial")
            (staging / "lock").unlink(missing_ok=True)
            index = run([scan, "--multiversion", ".", "/dev/null"], what="dpkg-scanpackages", cwd=staging)
            (staging / "Packages").write_text(index)
            (staging / COMPLETE).write_text("\n".join(packages) + "\n")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    progress(f"  {len(list(target.glob('*.deb')))} .debs in {target}")
    return target


# -- staging for ansible-builder -----------------------------------------------------

def stage_offline(wheels: Path | None, debs: Path | None) -> None:
    """Fill build/ee/offline (execution-environment.yml's additional_build_files); None leaves a part empty.

    With both parts, also the two lists the base stage pre-installs (see
    execution-environment.yml, append_base): bindep's dpkg runtime packages
    and the EE's Python requirements.
    """
    for name, source in (("wheels", wheels), ("debs", debs)):
        target = OFFLINE_DIR / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        if source is None:
            continue
        for path in sorted(source.iterdir()):
            if path.is_file() and path.name != COMPLETE:
                link_or_copy(path, target / path.name)
    if wheels is not None and debs is not None:
        (OFFLINE_DIR / PREINSTALL_PACKAGES).write_text("\n".join(dpkg_runtime_packages()) + "\n")
        (OFFLINE_DIR / PREINSTALL_REQUIREMENTS).write_text("\n".join(ee_python_requirements()) + "\n")


def ensure_offline_dirs() -> None:
    """The additional_build_files directories exist (ansible-builder skips a missing one, the COPY then fails)."""
    for name in ("wheels", "debs"):
        (OFFLINE_DIR / name).mkdir(parents=True, exist_ok=True)


def ee_dependency_file(entry: str) -> Path:
    """The file execution-environment.yml names for ``dependencies.<entry>`` (python, system)."""
    name = load_ee_definition().get("dependencies", {}).get(entry)
    if not isinstance(name, str):
        raise HarnessError(f"execution-environment.yml: dependencies.{entry} must name a file")
    return (EE_FILE.parent / name).resolve()


def dpkg_runtime_packages() -> list[str]:
    return runtime_packages(ee_dependency_file("system").read_text(), DPKG_PLATFORM)


def ee_python_requirements() -> list[str]:
    path = ee_dependency_file("python")
    return requirement_lines(path.read_text(), path.name)
