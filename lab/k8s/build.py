"""Kubernetes 1.20 binaries built once from Debian's ``kubernetes`` source package.

No Kubernetes binary can be downloaded here, but Debian ships the full source
(with its ``vendor/`` tree), and Debian's Go builds it offline. The result is
cached outside the repository, keyed by the upstream version, the patches in
``lab/k8s/patches`` and the build settings, so a second run reuses it and a
changed patch is never mixed up with an old build.

The source is fetched through apt with a private sources list, list directory
and cache under the cache directory: the machine's own apt configuration is
read, never changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..harness.base import HarnessError, cache_dir, exclusive, wait_reporting

KUBERNETES_VERSION = "1.20.2"
SOURCE_PACKAGE = "kubernetes"
PATCH_DIR = Path(__file__).resolve().parent / "patches"
COMPONENTS: tuple[str, ...] = (
    "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl",
)
# Offline, static, and stamped with the upstream version (there is no .git).
BUILD_ENV: dict[str, str] = {
    "GOPROXY": "off",
    "GOFLAGS": "-mod=vendor",
    "GO111MODULE": "on",
    "CGO_ENABLED": "0",
    "KUBE_GIT_VERSION": f"v{KUBERNETES_VERSION}",
    "KUBE_GIT_TREE_STATE": "clean",
}
# Tool, Debian package that ships it.
BUILD_TOOLS: dict[str, str] = {
    "go": "golang-go", "make": "make", "jq": "jq", "rsync": "rsync",
    "patch": "patch", "dpkg-source": "dpkg-dev", "apt-get": "apt",
}
BUILD_INFO = "build-info.json"
Progress = Callable[[str], None]


def cache_root() -> Path:
    """``$STREAMOPS_K8S_CACHE``, else ``$XDG_CACHE_HOME``/``~/.cache`` + streamops-maintenance/k8s."""
    return cache_dir("k8s", "STREAMOPS_K8S_CACHE")


def patch_files() -> list[Path]:
    return sorted(PATCH_DIR.glob("*.patch"))


def build_key() -> str:
    """What the binaries depend on: version, every patch's bytes, build settings, components."""
    digest = hashlib.sha256()
    digest.update(KUBERNETES_VERSION.encode())
    for patch in patch_files():
        digest.update(patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
    digest.update(json.dumps(BUILD_ENV, sort_keys=True).encode())
    digest.update(" ".join(COMPONENTS).encode())
    return digest.hexdigest()[:16]


def binaries_dir() -> Path:
    return cache_root() / f"v{KUBERNETES_VERSION}-{build_key()}"


def cached_binaries() -> Path | None:
    """The cached build for the current key, or None when any part of it is missing."""
    directory = binaries_dir()
    if not (directory / BUILD_INFO).is_file():
        return None
    if all(os.access(directory / name, os.X_OK) for name in COMPONENTS):
        return directory
    return None


def ensure_binaries(progress: Progress = print) -> Path:
    """Directory holding the patched binaries; builds them (about 5 minutes on 2 cores) when absent."""
    found = cached_binaries()
    if found is not None:
        return found
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    # Two runs at once (the lab and a test session) must not both build.
    with exclusive(root / ".build.lock", progress, "building Kubernetes"):
        found = cached_binaries()
        if found is not None:
            return found
        return _build(progress)


def _build(progress: Progress) -> Path:
    tools = {name: _require_tool(name, package) for name, package in BUILD_TOOLS.items()}
    target = binaries_dir()
    root = cache_root()
    started = time.monotonic()
    progress(f"building Kubernetes {KUBERNETES_VERSION} from Debian's source package "
             f"into {target} (once; about 5 minutes on 2 cores, 1.4 GB of memory, 2.6 GB of temporary disk)")
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        source = fetch_source(work, tools, progress)
        debian_version = _debian_version(source)
        apply_patches(source, tools["patch"], progress)
        _run_make(source, tools["make"], work / "make.log", progress)
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=root))
        output = source / "_output" / "local" / "bin" / "linux" / "amd64"
        for name in COMPONENTS:
            if not (output / name).is_file():
                raise HarnessError(f"the build finished without {name} in {output}")
            shutil.copy2(output / name, staging / name)
        info = {
            "kubernetes_version": KUBERNETES_VERSION,
            "debian_source_version": debian_version,
            "patches": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in patch_files()},
            "build_env": BUILD_ENV,
            "go": _output([tools["go"], "version"]).strip(),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (staging / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n")
        # Rename last: a build cut off half-way never looks like a cached one.
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for leftover in root.glob("staging-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    progress(f"built {', '.join(COMPONENTS)} in {time.monotonic() - started:.0f}s")
    return target


# -- source -----------------------------------------------------------------

def debian_archives() -> list[tuple[str, list[str], str]]:
    """(URI, suites, keyring) of every Debian archive the machine's apt already uses.

    The source entries must match the binary ones (same mirror, same suites),
    so the source fetched is the one Debian built this machine's packages from.
    """
    entries: list[tuple[str, list[str], str]] = []
    sources_d = Path("/etc/apt/sources.list.d")
    for path in sorted(sources_d.glob("*.sources")) if sources_d.is_dir() else []:
        entries.extend(_deb822_entries(path.read_text()))
    one_line = Path("/etc/apt/sources.list")
    if one_line.is_file():
        entries.extend(_one_line_entries(one_line.read_text()))
    debian = [e for e in entries if "debian" in e[0]]
    if not debian:
        raise HarnessError("no Debian archive in /etc/apt/sources.list{,.d}: cannot fetch the "
                           f"{SOURCE_PACKAGE} source package")
    return debian


def _deb822_entries(text: str) -> list[tuple[str, list[str], str]]:
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _sep, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        if "main" not in fields.get("components", "").split():
            continue
        keyring = fields.get("signed-by", "")
        for uri in fields.get("uris", "").split():
            entries.append((uri, fields.get("suites", "").split(), keyring))
    return entries


def _one_line_entries(text: str) -> list[tuple[str, list[str], str]]:
    entries = []
    for line in text.splitlines():
        match = re.match(r"\s*deb\s+(?:\[([^]]*)\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
        if match is None or "main" not in match.group(4).split():
            continue
        options = dict(opt.split("=", 1) for opt in (match.group(1) or "").split() if "=" in opt)
        entries.append((match.group(2), [match.group(3)], options.get("signed-by", "")))
    return entries


def private_apt_options(apt_dir: Path) -> list[str]:
    """apt options that read and write only under ``apt_dir`` (lists, cache, sources)."""
    return [
        "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={apt_dir / 'sources.list.d'}",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", f"Dir::Cache={apt_dir / 'cache'}",
        "-o", "Dir::Cache::pkgcache=",
        "-o", "Dir::Cache::srcpkgcache=",
        # The download lands in our own directory; the _apt sandbox user may not reach it.
        "-o", "APT::Sandbox::User=root" if os.geteuid() == 0 else "APT::Sandbox::User=",
        "-o", "Acquire::Retries=3",
    ]


def fetch_source(work: Path, tools: dict[str, str], progress: Progress) -> Path:
    """``apt-get source kubernetes`` through a private apt state; returns the unpacked tree."""
    apt_dir = cache_root() / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for uri, suites, keyring in debian_archives():
        options = f"[signed-by={keyring}] " if keyring else ""
        lines.extend(f"deb-src {options}{uri} {suite} main" for suite in suites)
    (apt_dir / "sources.list").write_text("\n".join(lines) + "\n")
    options = private_apt_options(apt_dir)
    progress("  fetching the source package list (private apt state under the cache)")
    _check([tools["apt-get"], *options, "-qq", "update"], "apt-get update (deb-src, private state)")
    source_dir = work / "source"
    source_dir.mkdir()
    progress(f"  apt-get source {SOURCE_PACKAGE} (34 MB, Debian's patches applied by dpkg-source)")
    _check([tools["apt-get"], *options, "-qq", "source", "--only-source", SOURCE_PACKAGE],
           f"apt-get source {SOURCE_PACKAGE}", cwd=source_dir)
    trees = [p for p in source_dir.iterdir() if p.is_dir() and p.name.startswith(f"{SOURCE_PACKAGE}-")]
    if len(trees) != 1:
        raise HarnessError(f"apt-get source left {[p.name for p in source_dir.iterdir()]} in {source_dir}")
    tree = trees[0]
    upstream = tree.name[len(SOURCE_PACKAGE) + 1:]
    if not upstream.endswith(KUBERNETES_VERSION) or re.search(r"\d$", upstream[:-len(KUBERNETES_VERSION)]):
        raise HarnessError(f"Debian's {SOURCE_PACKAGE} source is {upstream}; lab/k8s/patches are "
                           f"written for upstream {KUBERNETES_VERSION}")
    return tree


def _debian_version(tree: Path) -> str:
    changelog = tree / "debian" / "changelog"
    first = changelog.read_text(errors="replace").split("\n", 1)[0] if changelog.exists() else ""
    match = re.search(r"\(([^)]+)\)", first)
    return match.group(1) if match else "unknown"


def apply_patches(tree: Path, patch_tool: str, progress: Progress) -> None:
    for patch in patch_files():
        progress(f"  patch {patch.name}")
        result = subprocess.run(  # noqa: S603
            [patch_tool, "-p1", "--forward", "--batch", "-i", str(patch)], cwd=tree,
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HarnessError(f"{patch.name} does not apply to {tree.name}:\n{result.stdout}{result.stderr}")


def _run_make(tree: Path, make: str, log: Path, progress: Progress) -> None:
    env = dict(os.environ)
    env.update(BUILD_ENV)
    env["PATH"] = "/usr/lib/go/bin:" + env.get("PATH", "/usr/bin:/bin")
    what = " ".join(f"cmd/{name}" for name in COMPONENTS)
    progress(f"  make WHAT=\"{what}\" (log: {log})")
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603
            [make, f"WHAT={what}"], cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        wait_reporting(proc, progress,
                       lambda seconds: f"  ... still building ({seconds:.0f}s): {_last_step(log)}", poll=1)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise HarnessError(f"make failed (exit {proc.returncode}) after {time.monotonic() - started:.0f}s:\n{tail}")


def _last_step(log: Path) -> str:
    """What make is doing, from its log: the Go targets of the last "Building go targets" step."""
    lines = log.read_text(errors="replace").splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if "Building go targets" in lines[index]:
            targets = [Path(t.strip()).name for t in lines[index + 1:] if t.startswith("    ")]
            return "compiling " + ", ".join(targets)
    return lines[-1].strip()[:100] if lines else "starting"


# -- helpers ----------------------------------------------------------------

def _require_tool(name: str, package: str) -> str:
    path = shutil.which(name, path="/usr/lib/go/bin:" + os.environ.get("PATH", "/usr/bin:/bin"))
    if path is None:
        raise HarnessError(f"building Kubernetes needs `{name}`: install the Debian package "
                           f"`{package}` (apt-get install {package})")
    return path


def _check(argv: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise HarnessError(f"{what} failed (exit {result.returncode}):\n{result.stderr.strip() or result.stdout.strip()}")


def _output(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout  # noqa: S603
