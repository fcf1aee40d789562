"""python -m lab.k8s {build|up|down|status|kubectl ARGS...}

build    build the patched Kubernetes binaries into the cache (once; reused)
up       build if needed, start the cluster on 127.0.0.1, wait for the node to be Ready
down     stop everything `up` started, by PID, and remove its state
status   print the kubeconfig of the running cluster (exit 1 when none is up)
kubectl  run the cluster's own kubectl against it, e.g. `python -m lab.k8s kubectl get nodes`
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..harness.base import HarnessError
from . import control
from .build import ensure_binaries

RECORD_DIR = Path(__file__).resolve().parent.parent / "state"


def say(message: str) -> None:
    print(f"k8s: {message}", flush=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    try:
        if command == "build":
            say(f"binaries in {ensure_binaries(say)}")
            return 0
        if command == "up":
            info = control.up(RECORD_DIR, say)
            say(f"export KUBECONFIG={info.kubeconfig}")
            return 0
        if command == "down":
            control.down(RECORD_DIR, say)
            return 0
        if command in ("status", "kubectl"):
            info = control.current(RECORD_DIR)
            if info is None:
                say("down" if command == "status" else "no cluster is up: `python -m lab.k8s up` first")
                return 1
            if command == "status":
                say(f"up: {info.server}, node {info.node_name}; KUBECONFIG={info.kubeconfig}")
                return 0
            result = control.kubectl(info, argv[1:])
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            return result.returncode
    except HarnessError as exc:
        say(f"error: {exc}")
        return 1
    print(__doc__, file=sys.stderr)
    return 2


sys.exit(main(sys.argv[1:]))
