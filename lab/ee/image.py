"""The execution environment image: every step from the base image to ``docker build --network none``.

``build_image`` is what ``make ee`` and the ``ee_image`` test fixture run.
Cold, it makes the base image, fetches wheels and .debs and builds every
layer; warm, each cache answers: the rootfs, wheels and .debs under
``cache_root()``, the engine's layer cache, and a tag carrying a hash of the
whole build context (an image with that tag is used without any build).
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

import docker.errors

from ..harness.base import HarnessError, exclusive, wait_reporting
from ..harness.docker_engine import DockerEngine, docker_cli
from .base import BaseRootfs, ensure_base_image
from .common import (
    BUILD_DIR, BUILD_LOCK, CONTEXT_DIR, Progress, Timings, galaxy_version, tail,
)
from .context import CONTAINERFILE, build_collection_tarball, create_context, require_valid_context
from .offline import dpkg_runtime_packages, ensure_debs, ensure_wheels, stage_offline

IMAGE_REPO = "streamops-maintenance-ee"
LABEL = "org.streamops.ee"
BUILD_LOG = BUILD_DIR / "docker-build.log"
# Content-tagged images kept per collection version; older ones are removed
# (each holds a few hundred MB of its own layers).
KEEP_IMAGES = 3
# Report progress of a long build this often.
PROGRESS_SECONDS = 30


def content_key(context_dir: Path, build_args: dict[str, str]) -> str:
    """Hash of every file of the build context (path, mode bit x, bytes) and the build arguments.

    Modification times are left out, as Docker's own COPY cache leaves them out.
    """
    digest = hashlib.sha256()
    for name, value in sorted(build_args.items()):
        digest.update(f"arg {name}={value}\0".encode())
    for path in sorted(p for p in context_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(context_dir).as_posix()
        executable = os.access(path, os.X_OK)
        digest.update(f"file {relative} {int(executable)}\0".encode())
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def image_refs(version: str, key: str) -> tuple[str, str]:
    """(the version tag, the content tag) of the EE image."""
    return f"{IMAGE_REPO}:{version}", f"{IMAGE_REPO}:{version}-{key[:12]}"


def build_image(engine: DockerEngine, progress: Progress = print) -> str:
    """The EE image for this checkout on ``engine``: its content-tagged reference, built when absent."""
    timings = Timings(progress)
    with exclusive(BUILD_LOCK, progress, "building the execution environment"):
        with timings.step("base image"):
            rootfs = ensure_base_image(engine, progress)
        context_dir = prepare_offline_context(rootfs, timings, progress)
        version = galaxy_version()
        build_args = {"EE_BASE_IMAGE": rootfs.ref}
        with timings.step("content hash"):
            key = content_key(context_dir, build_args)
        version_ref, content_ref = image_refs(version, key)
        with timings.step("docker build"):
            if _image_id(engine, content_ref) is not None:
                progress(f"  {content_ref} exists: nothing to build")
            else:
                docker_build(engine, context_dir, tags=[content_ref], build_args=build_args,
                             labels={f"{LABEL}.content": key, f"{LABEL}.collection-version": version},
                             progress=progress)
            engine.client().images.get(content_ref).tag(IMAGE_REPO, version)
        prune_old_images(engine, version, keep=content_ref, progress=progress)
    progress(f"image {content_ref} (also {version_ref}); {timings.summary()}")
    return content_ref


def prepare_offline_context(rootfs: BaseRootfs, timings: Timings, progress: Progress) -> Path:
    """Wheels, .debs, the collection tarball, then ``ansible-builder create`` into build/ee/context, checked."""
    with timings.step("wheels"):
        wheels = ensure_wheels(rootfs, progress)
    with timings.step("debs"):
        debs = ensure_debs(rootfs, dpkg_runtime_packages(), progress)
    return _checked_context(wheels, debs, timings, progress)


def prepare_online_context(progress: Progress) -> Path:
    """The context for a build elsewhere (AWX): the tarball, no offline files; checked."""
    timings = Timings(progress)
    with exclusive(BUILD_LOCK, progress, "building the execution environment"):
        _checked_context(None, None, timings, progress)
    progress(f"context {CONTEXT_DIR}; {timings.summary()}")
    return CONTEXT_DIR


def _checked_context(wheels: Path | None, debs: Path | None, timings: Timings, progress: Progress) -> Path:
    """The collection tarball, the offline files (or none), ``ansible-builder create``, and its output checked."""
    with timings.step("collection tarball"):
        build_collection_tarball(progress)
    with timings.step("ansible-builder create"):
        stage_offline(wheels, debs)
        create_context(CONTEXT_DIR, progress)
        require_valid_context(CONTEXT_DIR, version=galaxy_version())
    return CONTEXT_DIR


def docker_build(engine: DockerEngine, context_dir: Path, *, tags: list[str], build_args: dict[str, str],
                 labels: dict[str, str], progress: Progress) -> None:
    """``docker build --network none`` (the proof that nothing inside needs the network), log in build/ee."""
    argv = [docker_cli(), "build", "--network", "none", "--force-rm",
            "--file", str(context_dir / CONTAINERFILE)]
    for name, value in build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    for name, value in labels.items():
        argv += ["--label", f"{name}={value}"]
    for tag in tags:
        argv += ["--tag", tag]
    argv.append(str(context_dir))
    env = engine.docker_env()
    # The classic builder: Debian's 20.10 client has no buildx, and the
    # classic builder's layer cache lives in the engine's image store.
    env["DOCKER_BUILDKIT"] = "0"
    BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
    progress(f"  docker build --network none (log: {BUILD_LOG})")
    started = time.monotonic()
    with open(BUILD_LOG, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603 - argv list, no shell
                                stdin=subprocess.DEVNULL, env=env)
        wait_reporting(proc, progress, lambda seconds: f"  ... {seconds:.0f}s: {current_step(BUILD_LOG)}",
                       every=PROGRESS_SECONDS)
    steps, cached = build_log_counts(BUILD_LOG.read_text(errors="replace"))
    if proc.returncode != 0:
        raise HarnessError(f"docker build failed (exit {proc.returncode}) after {time.monotonic() - started:.0f}s "
                           f"at {current_step(BUILD_LOG)}:\n{tail(BUILD_LOG, 30)}")
    progress(f"  {steps} steps, {cached} from the layer cache")


def current_step(log: Path) -> str:
    steps = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("Step ")]
    return steps[-1][:120] if steps else "starting"


def build_log_counts(log_text: str) -> tuple[int, int]:
    """(steps run, steps answered by the layer cache) from the classic builder's output."""
    steps = len(re.findall(r"^Step \d+/\d+ :", log_text, flags=re.MULTILINE))
    cached = log_text.count("---> Using cache")
    return steps, cached


def prune_old_images(engine: DockerEngine, version: str, *, keep: str, progress: Progress) -> None:
    """Remove all but the newest KEEP_IMAGES content tags; an image a container still uses stays."""
    client = engine.client()
    tagged: list[tuple[str, str]] = []
    for image in client.images.list(name=IMAGE_REPO):
        for tag in image.tags:
            if tag.startswith(f"{IMAGE_REPO}:") and re.fullmatch(r".+-[0-9a-f]{12}", tag.split(":", 1)[1]):
                tagged.append((image.attrs.get("Created", ""), tag))
    tagged.sort(reverse=True)
    for _created, tag in tagged[KEEP_IMAGES:]:
        if tag == keep:
            continue
        try:
            client.images.remove(tag)
        except docker.errors.APIError as exc:
            progress(f"  kept {tag}: {exc.explanation or exc}")
            continue
        progress(f"  removed the older image {tag}")


def _image_id(engine: DockerEngine, ref: str) -> str | None:
    try:
        return engine.client().images.get(ref).id
    except docker.errors.ImageNotFound:
        return None
