"""python -m lab.ee {base|context|build}

base     make the Debian bookworm base image (debootstrap, cached) and import it
context  the collection tarball and `ansible-builder create` into build/ee/context,
         checked; no offline files, for a build on AWX's base image
build    everything, offline: base image, wheels, .debs, context, and
         `docker build --network none`; tags streamops-maintenance-ee:<version>

base and build use the Docker engine on /var/run/docker.sock, or start one
(no bridge, no iptables) for the duration of the command.
"""
from __future__ import annotations

import sys

from ..harness.base import HarnessError
from ..harness.docker_engine import DockerEngine
from .base import ensure_base_image
from .common import BUILD_DIR
from .image import build_image, prepare_online_context

AWX_HINT = """\
for AWX, build it on the awx-ee image (docs/execution-environment.md), e.g.:
  podman build -f {context}/Dockerfile -t <registry>/streamops-maintenance-ee:<version> \\
    --build-arg EE_BASE_IMAGE=quay.io/ansible/awx-ee:<version> \\
    --build-arg PKGMGR=/usr/bin/dnf --build-arg PYCMD=/usr/bin/python3.11 \
    --build-arg RPM_POSTGRESQL_STREAM=<your servers' major version> {context}"""


def say(message: str) -> None:
    print(f"ee: {message}", flush=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command not in ("base", "context", "build"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if command == "context":
            context = prepare_online_context(say)
            say(AWX_HINT.format(context=context))
            return 0
        # A dockerd started here is stopped again on the way out; one that
        # already answered is left alone.
        with DockerEngine(BUILD_DIR / "engine") as engine:
            if command == "base":
                say(f"base image {ensure_base_image(engine, say).ref}")
            else:
                build_image(engine, say)
        return 0
    except HarnessError as exc:
        say(f"error: {exc}")
        return 1


sys.exit(main(sys.argv[1:]))
