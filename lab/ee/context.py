"""The collection tarball, ``ansible-builder create``, and the checks on what it generated.

ansible-builder decides most of the build (stages, the package manager,
which bindep lines install); a change of its version or of
execution-environment.yml can silently drop what makes our build work here
(apt-get, the local base image, the offline steps, our collection in the
galaxy stage). ``check_containerfile`` and ``check_context`` say what is
missing, and every build and test runs them.
"""
from __future__ import annotations

import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

from ..harness.base import HarnessError
from .base import BASE_DEFAULT_TAG, BASE_IMAGE_REPO
from .common import (
    EE_FILE, REPO, TARBALL, Progress, galaxy_version, load_ee_definition, run, venv_tool,
)
from .offline import (
    DPKG_PLATFORM, PREINSTALL_PACKAGES, PREINSTALL_REQUIREMENTS, RPM_PLATFORM, requirement_lines, runtime_packages,
)

CONTAINERFILE = "Dockerfile"
COLLECTION = ("streamops", "maintenance")
PACKAGE_MANAGER = "/usr/bin/apt-get"
DEFAULT_BASE_IMAGE = f"{BASE_IMAGE_REPO}:{BASE_DEFAULT_TAG}"
OFFLINE_ROOT = "/opt/ee-offline"


# -- the collection tarball ------------------------------------------------------------

def build_collection_tarball(progress: Progress) -> Path:
    """build/ee/collection/streamops-maintenance.tar.gz from the working tree (galaxy.yml's build_ignore).

    The file is replaced only when the collection's files changed: a new gzip
    header alone would defeat the image build's layer cache.
    """
    galaxy = venv_tool("ansible-galaxy", "ansible-core")
    TARBALL.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="collection-", dir=TARBALL.parent) as work:
        run([galaxy, "collection", "build", "--force", "--output-path", work, str(REPO)],
            what="ansible-galaxy collection build", cwd=REPO, timeout=300)
        built = list(Path(work).glob("*.tar.gz"))
        if len(built) != 1:
            raise HarnessError(f"ansible-galaxy collection build left {[p.name for p in built]} in {work}")
        if TARBALL.is_file() and tarball_identity(TARBALL) == tarball_identity(built[0]):
            progress(f"  collection unchanged: {TARBALL}")
            return TARBALL
        built[0].replace(TARBALL)
    progress(f"  collection {galaxy_version()} built: {TARBALL}")
    return TARBALL


def tarball_identity(path: Path) -> bytes:
    """MANIFEST.json and FILES.json of a collection tarball: every file's sha256, no timestamps."""
    with tarfile.open(path, "r:gz") as tar:
        return b"\0".join(_member(tar, name) for name in ("MANIFEST.json", "FILES.json"))


def tarball_manifest(path: Path) -> dict:
    with tarfile.open(path, "r:gz") as tar:
        return json.loads(_member(tar, "MANIFEST.json"))


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        handle = tar.extractfile(name)
    except KeyError as exc:
        raise HarnessError(f"{tar.name} has no {name}: not a collection tarball") from exc
    if handle is None:
        raise HarnessError(f"{tar.name}: {name} is not a regular file")
    return handle.read()


# -- ansible-builder create ----------------------------------------------------------

def create_context(context_dir: Path, progress: Progress) -> Path:
    """``ansible-builder create`` into a fresh ``context_dir``; the path of the generated Dockerfile.

    The directory is emptied first: ansible-builder leaves files of an earlier
    run in place (an old wheel would land in the image).
    """
    builder = venv_tool("ansible-builder", "ansible-builder")
    load_ee_definition()
    if context_dir.exists():
        shutil.rmtree(context_dir)
    run([builder, "create", "--file", str(EE_FILE), "--context", str(context_dir),
         "--output-filename", CONTAINERFILE, "-v", "1"], what="ansible-builder create", cwd=REPO, timeout=300)
    containerfile = context_dir / CONTAINERFILE
    if not containerfile.is_file():
        raise HarnessError(f"ansible-builder create wrote no {containerfile}")
    progress(f"  ansible-builder create: {containerfile}")
    return containerfile


def stages(containerfile: str) -> dict[str, list[str]]:
    """The Containerfile's lines by build stage (``FROM x AS name``); the global ARGs under ``""``."""
    found: dict[str, list[str]] = {"": []}
    current = ""
    for line in containerfile.splitlines():
        words = line.split()
        if len(words) == 4 and words[0] == "FROM" and words[2].upper() == "AS":
            current = words[3]
            found[current] = []
            continue
        if line.strip() and not line.startswith("#"):
            found[current].append(line.strip())
    return found


def check_containerfile(containerfile: str, *, base_image: str = DEFAULT_BASE_IMAGE,
                        package_manager: str = PACKAGE_MANAGER) -> list[str]:
    """What is missing from the generated Containerfile for our build (empty list: all there)."""
    by_stage = stages(containerfile)
    problems = [f"no `FROM ... AS {name}` stage" for name in ("base", "galaxy", "builder", "final")
                if name not in by_stage]
    if problems:
        return problems
    header = by_stage[""]
    for arg in (f'ARG PKGMGR="{package_manager}"', f'ARG EE_BASE_IMAGE="{base_image}"'):
        if arg not in header:
            problems.append(f"global `{arg}` missing (options.package_manager_path / images.base_image)")
    problems += _order(by_stage["base"], "base", [
        ("COPY _build/offline/wheels", "the offline wheels are copied into the base stage"),
        ("/etc/pip.conf", "pip is pointed at the offline wheels"),
        ("COPY _build/offline/debs", "the local .deb repository is copied into the base stage"),
        ("file:/opt/ee-offline/debs", "apt is pointed at the local repository"),
        ("pip install --no-cache-dir $ANSIBLE_INSTALL_REFS", "ansible-core and ansible-runner are installed"),
        (PREINSTALL_PACKAGES, "the offline build installs the runtime packages before the collection lands"),
        (PREINSTALL_REQUIREMENTS, "... and the Python requirements"),
    ])
    if any("/output/scripts/pip_install" in line for line in by_stage["base"]):
        problems.append("base stage runs pip_install (ensurepip, absent from Debian's python3): "
                        "set options.skip_pip_install")
    problems += _order(by_stage["galaxy"], "galaxy", [
        ("ansible-galaxy collection install", "the collection tarball is installed by the galaxy stage"),
    ])
    problems += _order(by_stage["builder"], "builder", [
        ("COPY --from=galaxy /usr/share/ansible /usr/share/ansible", "the installed collection is introspected"),
        ("introspect.py introspect", "introspection of bindep.txt and requirements.txt"),
        ("/output/scripts/assemble", "assemble runs bindep"),
    ])
    problems += _order(by_stage["final"], "final", [
        ("COPY --from=galaxy /usr/share/ansible /usr/share/ansible", "the collection lands in the image"),
        ("/output/scripts/install-from-bindep", "bindep's runtime packages are installed"),
        (f"rm -rf {OFFLINE_ROOT}", "the offline files are removed after the installs"),
    ])
    return problems


def _order(lines: list[str], stage: str, expected: list[tuple[str, str]]) -> list[str]:
    """Each snippet must appear in ``lines``, in this order (one RUN line may hold several)."""
    problems = []
    position = 0
    for snippet, why in expected:
        index = next((i for i, line in enumerate(lines) if snippet in line and i >= position), None)
        if index is None:
            problems.append(f"{stage} stage: `{snippet}` missing or out of order ({why})")
            continue
        position = index
    return problems


def check_context(context_dir: Path, *, version: str) -> list[str]:
    """check_containerfile plus the files the build reads: tarball, bindep lines, requirements, offline dirs."""
    build = context_dir / "_build"
    containerfile = context_dir / CONTAINERFILE
    if not containerfile.is_file():
        return [f"{containerfile} missing"]
    problems = check_containerfile(containerfile.read_text())
    galaxy_file = build / "requirements.yml"
    requirements = yaml.safe_load(galaxy_file.read_text()) if galaxy_file.is_file() else {}
    wanted = {"name": f"collection/{TARBALL.name}", "type": "file"}
    if wanted not in (requirements or {}).get("collections", []):
        problems.append(f"_build/requirements.yml does not install {wanted}")
    tarball = build / "collection" / TARBALL.name
    if not tarball.is_file():
        problems.append(f"{tarball} missing (additional_build_files)")
    else:
        info = tarball_manifest(tarball).get("collection_info", {})
        found = (info.get("namespace"), info.get("name"), info.get("version"))
        if found != (*COLLECTION, version):
            problems.append(f"{tarball} holds {found}, not {(*COLLECTION, version)}")
    bindep = (build / "bindep.txt").read_text() if (build / "bindep.txt").is_file() else ""
    for platform in (DPKG_PLATFORM, RPM_PLATFORM):
        if not runtime_packages(bindep, platform):
            problems.append(f"_build/bindep.txt has no runtime package for {platform[0]}")
    for name in ("wheels", "debs"):
        if not (build / "offline" / name).is_dir():
            problems.append(f"_build/offline/{name} missing (additional_build_files: does build/ee/offline/{name} "
                            "exist?)")
    return problems + _check_preinstall_lists(build, bindep)


def _check_preinstall_lists(build: Path, bindep: str) -> list[str]:
    """The offline build's pre-install lists must be exactly what bindep and introspection will ask for."""
    problems = []
    packages = build / "offline" / PREINSTALL_PACKAGES
    if packages.is_file() and packages.read_text().split() != runtime_packages(bindep, DPKG_PLATFORM):
        problems.append(f"{packages} differs from bindep.txt's dpkg runtime packages")
    requirements = build / "offline" / PREINSTALL_REQUIREMENTS
    pip_file = build / "requirements.txt"
    if requirements.is_file() and (not pip_file.is_file() or requirements.read_text().splitlines()
                                   != requirement_lines(pip_file.read_text(), "requirements.txt")):
        problems.append(f"{requirements} differs from the EE's requirements.txt")
    return problems


def require_valid_context(context_dir: Path, *, version: str) -> None:
    problems = check_context(context_dir, version=version)
    if problems:
        raise HarnessError(f"the build context ansible-builder generated in {context_dir} does not fit "
                           "this build:\n  " + "\n  ".join(problems))


def introspect(context_dir: Path) -> dict:
    """What the builder stage's introspection makes of the context's requirement files (YAML output)."""
    build = context_dir / "_build"
    with tempfile.TemporaryDirectory(prefix="introspect-") as empty:
        argv = [sys.executable, str(build / "scripts" / "introspect.py"), "introspect",
                f"--user-pip={build / 'requirements.txt'}", f"--user-bindep={build / 'bindep.txt'}",
                f"--exclude-collection-reqs={build / 'exclude-collections.txt'}", empty]
        output = run(argv, what="ansible-builder's introspect.py", timeout=60)
    data = yaml.safe_load(output)
    if not isinstance(data, dict):
        raise HarnessError(f"introspect.py printed no YAML mapping:\n{output}")
    return data
