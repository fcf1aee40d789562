"""The execution environment's base image: a Debian bookworm rootfs from debootstrap, ``docker import``ed.

No registry can be reached, so the base is made here: ``debootstrap`` on the
host (the host's network and Debian mirror), the security and point-release
updates applied in a chroot, documentation trimmed the way Debian's slim
images do, then ``docker import``. The rootfs tar is cached under
``cache_root()/base-<key>``, keyed by everything that went into it; the image
tag carries the same key, so a changed recipe never reuses a stale image.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from ..harness.base import HarnessError, exclusive
from ..harness.docker_engine import DockerEngine, _mounts_under, _umount, docker_cli
from ..k8s.build import debian_archives
from .common import Progress, cache_root, run, system_tool

BASE_IMAGE_REPO = "streamops-lab/ee-base"
BASE_SUITE = "bookworm"
# The tag execution-environment.yml names as its default base image; it is
# moved to the newest keyed image on every import.
BASE_DEFAULT_TAG = BASE_SUITE
# Python with pip and venv (ansible-builder's stages call `python3 -m pip`
# and `python3 -m venv`), CA certificates, and an SSH client: an EE reaches
# its managed nodes over SSH.
BASE_PACKAGES: tuple[str, ...] = ("python3", "python3-pip", "python3-venv", "ca-certificates", "openssh-client")
# Bump when the rootfs recipe below changes: it is part of the key.
BASE_LAYOUT = "1"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
# What Debian's slim images leave out; packages installed later (the EE's
# runtime packages) obey it too.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
"""
IMAGE_CHANGES: tuple[str, ...] = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    # Ansible refuses to run without a UTF-8 locale; C.UTF-8 is built into glibc.
    "ENV LANG=C.UTF-8",
    'CMD ["bash"]',
    "LABEL org.streamops.lab.image=ee-base",
)
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
ROOTFS_TAR = "rootfs.tar"
DPKG_STATUS = "dpkg-status"
BASE_INFO = "base-info.json"


@dataclass(frozen=True)
class BaseRootfs:
    """A cached rootfs: the tar ``docker import`` reads, and its dpkg status (what is installed)."""

    key: str
    directory: Path

    @property
    def tar(self) -> Path:
        return self.directory / ROOTFS_TAR

    @property
    def status(self) -> Path:
        return self.directory / DPKG_STATUS

    @property
    def ref(self) -> str:
        return f"{BASE_IMAGE_REPO}:{BASE_SUITE}-{self.key[:12]}"


def base_key() -> str:
    """What the rootfs and the image depend on: suite, packages, trimming, image settings."""
    recipe = {"suite": BASE_SUITE, "variant": "minbase", "packages": sorted(BASE_PACKAGES),
              "layout": BASE_LAYOUT, "excludes": DPKG_EXCLUDES, "changes": list(IMAGE_CHANGES)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def archive_uri(archives: list[tuple[str, list[str], str]], suite: str, default: str) -> str:
    """The first mirror this machine's apt uses for ``suite``, else ``default`` (Debian's own)."""
    return next((uri for uri, suites, _keyring in archives if suite in suites), default)


def image_sources(archives: list[tuple[str, list[str], str]]) -> str:
    """sources.list lines for the base suite, its updates and its security archive.

    No signed-by: the rootfs's own debian-archive-keyring is trusted.
    """
    main = archive_uri(archives, BASE_SUITE, DEFAULT_MIRROR)
    security = archive_uri(archives, f"{BASE_SUITE}-security", DEFAULT_SECURITY)
    return (f"deb {main} {BASE_SUITE} main\n"
            f"deb {main} {BASE_SUITE}-updates main\n"
            f"deb {security} {BASE_SUITE}-security main\n")


def cached_rootfs() -> BaseRootfs | None:
    rootfs = BaseRootfs(base_key(), cache_root() / f"base-{base_key()}")
    if rootfs.tar.is_file() and rootfs.status.is_file() and (rootfs.directory / BASE_INFO).is_file():
        return rootfs
    return None


def ensure_rootfs(progress: Progress) -> BaseRootfs:
    """The cached rootfs for the current recipe; made with debootstrap (about a minute) when absent."""
    found = cached_rootfs()
    if found is not None:
        return found
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / ".base.lock", progress, "making the base rootfs"):
        found = cached_rootfs()
        if found is not None:
            return found
        return _make_rootfs(BaseRootfs(base_key(), root / f"base-{base_key()}"), progress)


def _make_rootfs(target: BaseRootfs, progress: Progress) -> BaseRootfs:
    if os.geteuid() != 0:
        raise HarnessError("debootstrap needs root to make the base rootfs (run `python -m lab.ee base` as root)")
    debootstrap = system_tool("debootstrap", "debootstrap")
    tar = system_tool("tar", "tar")
    chroot = system_tool("chroot", "coreutils")
    archives = debian_archives()
    sources = image_sources(archives)
    mirror = archive_uri(archives, BASE_SUITE, DEFAULT_MIRROR)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="base-work-", dir=cache_root()))
    try:
        rootfs = work / "rootfs"
        progress(f"  debootstrap {BASE_SUITE} (minbase + {', '.join(BASE_PACKAGES)}) from {mirror}")
        run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", BASE_SUITE,
             str(rootfs), mirror], what=f"debootstrap {BASE_SUITE}", log=work / "debootstrap.log", timeout=1800)
        _configure(rootfs, sources, chroot, work, progress)
        staging = work / "out"
        staging.mkdir()
        # /dev, /proc and /sys are the engine's at run time; an imported
        # device node would only shadow them.
        run([tar, "--numeric-owner", "-C", str(rootfs), "--exclude=./dev/*", "--exclude=./proc/*",
             "--exclude=./sys/*", "-cf", str(staging / ROOTFS_TAR), "."], what="tar of the base rootfs")
        shutil.copy2(rootfs / "var/lib/dpkg/status", staging / DPKG_STATUS)
        info = {"key": target.key, "suite": BASE_SUITE, "packages": list(BASE_PACKAGES), "sources": sources,
                "seconds": round(time.monotonic() - started, 1)}
        (staging / BASE_INFO).write_text(json.dumps(info, indent=2) + "\n")
        # Rename last: a run cut off half-way never looks like a cached rootfs.
        if target.directory.exists():
            shutil.rmtree(target.directory)
        staging.rename(target.directory)
    finally:
        _remove_work_dir(work)
    progress(f"  base rootfs ready in {time.monotonic() - started:.0f}s: {target.tar}")
    return target


def _configure(rootfs: Path, sources: str, chroot: str, work: Path, progress: Progress) -> None:
    """Debian's updates, slim trimming, a clean apt state; run in a chroot on the host's network."""
    (rootfs / "etc/apt/sources.list").write_text(sources)
    (rootfs / "etc/dpkg/dpkg.cfg.d/streamops-ee-slim").write_text(DPKG_EXCLUDES)
    policy = rootfs / "usr/sbin/policy-rc.d"
    # No package script may start a service while we upgrade.
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    progress("  applying bookworm-updates and bookworm-security in a chroot")
    apt = [chroot, str(rootfs), "/usr/bin/apt-get", "-q", "-y", "-o", "APT::Install-Recommends=false"]
    run([*apt, "update"], what="apt-get update in the base rootfs", env=CHROOT_ENV, log=work / "apt-update.log",
        timeout=600)
    run([*apt, "dist-upgrade"], what="apt-get dist-upgrade in the base rootfs", env=CHROOT_ENV,
        log=work / "apt-upgrade.log", timeout=1800)
    run([*apt, "clean"], what="apt-get clean in the base rootfs", env=CHROOT_ENV)
    policy.unlink()
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/log/*.log", "var/log/apt/*",
                    "usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "usr/share/lintian/*"):
        for path in rootfs.glob(pattern):
            _remove(path)
    for doc in (rootfs / "usr/share/doc").glob("*"):
        for path in doc.iterdir() if doc.is_dir() else []:
            if path.name != "copyright":
                _remove(path)
    # The engine bind-mounts both at run time; the host's values do not belong in an image.
    (rootfs / "etc/resolv.conf").write_text("")
    (rootfs / "etc/hostname").write_text("localhost\n")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _remove_work_dir(work: Path) -> None:
    # debootstrap mounts /proc and /sys inside the rootfs and leaves them
    # mounted when it fails: never delete through a mount.
    for mountpoint in _mounts_under(work):
        _umount(mountpoint)
    shutil.rmtree(work, ignore_errors=True)


# -- the image ----------------------------------------------------------------

def ensure_base_image(engine: DockerEngine, progress: Progress) -> BaseRootfs:
    """The rootfs whose image ``rootfs.ref`` (``streamops-lab/ee-base:bookworm-<key>``) is on ``engine``.

    Imported once; also tagged ``:bookworm``, the default of execution-environment.yml.
    """
    rootfs = ensure_rootfs(progress)
    if not _image_exists(engine, rootfs.ref):
        with exclusive(cache_root() / ".import.lock", progress, f"importing {rootfs.ref}"):
            if not _image_exists(engine, rootfs.ref):
                _import(engine, rootfs, progress)
    engine.client().images.get(rootfs.ref).tag(BASE_IMAGE_REPO, BASE_DEFAULT_TAG)
    return rootfs


def _import(engine: DockerEngine, rootfs: BaseRootfs, progress: Progress) -> None:
    started = time.monotonic()
    argv = [docker_cli(), "import"]
    for change in IMAGE_CHANGES:
        argv += ["--change", change]
    argv += ["--change", f"LABEL org.streamops.lab.ee-base={rootfs.key}", str(rootfs.tar), rootfs.ref]
    # A path argument, not stdin: the CLI streams the file to the engine.
    run(argv, what=f"docker import of {rootfs.ref}", env=engine.docker_env(), timeout=600)
    progress(f"  imported {rootfs.ref} in {time.monotonic() - started:.1f}s")


def _image_exists(engine: DockerEngine, ref: str) -> bool:
    try:
        engine.client().images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True
