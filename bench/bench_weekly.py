"""playbooks/weekly.yml on the lab: wall time, time inside the services, and Ansible's own share.

Ansible's own time is the time of a host's tasks minus the part of it spent waiting on the services
(PostgreSQL, Redis, S3, the Kubernetes API, the Docker engine, HTTP endpoints), as the maintenance
report computes it: ``(tasks_s - in_services_s) / tasks_s``, summed over both hosts (they run in
parallel). The bench also prints the share of the playbook's wall time, ``1 - in_services_s / wall``
per host: the difference is ansible-playbook's start (loading the inventory and the collection) and
the time between tasks, which no role can remove.

``python bench/bench_weekly.py`` runs weekly.yml three times on this checkout.
``python bench/bench_weekly.py --baseline 2861936`` also runs the checkout of that commit
(a git worktree under the system temp dir, with the same lab facts) three times, the runs
interleaved so both see the same lab. The lab is started when it is not up (and stopped again
at the end); it needs the Kubernetes build cache that `make k8s-binaries` fills. Goal: Ansible's
own share under 15 %. Prints the figures; exits 0 either way.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
LAB_VARS = REPO / "inventory" / "lab" / "group_vars" / "all" / "lab_services.yml"
GOAL = 0.15


def lab_up() -> bool:
    """Start the lab when it is not up; True when this run started it."""
    if LAB_VARS.exists() and subprocess.run([sys.executable, "-m", "lab", "status"], cwd=REPO,
                                            capture_output=True, check=False).returncode == 0:
        return False
    subprocess.run([sys.executable, "-m", "lab", "up"], cwd=REPO, check=True)
    return True


def checkout(revision: str) -> Path:
    """A worktree of ``revision`` with its own collection link and the lab's connection facts."""
    tree = Path(tempfile.mkdtemp(prefix="streamops-bench-")) / "repo"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=REPO, check=True,
                   capture_output=True)
    link = tree / "build" / "collections" / "ansible_collections" / "streamops" / "maintenance"
    link.parent.mkdir(parents=True)
    link.symlink_to(tree)
    shutil.copy(LAB_VARS, tree / "inventory" / "lab" / "group_vars" / "all" / "lab_services.yml")
    from lab import seed  # noqa: PLC0415 - the lab of this checkout makes the logs its inventory points at

    seed.make_lab_logs(tree / "inventory" / "lab-state")
    return tree


def run_weekly(tree: Path, reports: Path) -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(tree / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(tree / "build" / "collections"), MAINTENANCE_REPORT_DIR=str(reports),
               ANSIBLE_NOCOLOR="1", AWS_EC2_METADATA_DISABLED="true", PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    before = set(reports.glob("MAINT-*.json")) if reports.exists() else set()
    started = time.monotonic()
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(tree / "inventory" / "lab"),
                             str(tree / "playbooks" / "weekly.yml")], cwd=tree, env=env, capture_output=True,
                            text=True, check=False)
    wall = time.monotonic() - started
    written = sorted(set(reports.glob("MAINT-*.json")) - before)
    if result.returncode != 0 or not written:
        print(result.stdout[-3000:], result.stderr[-2000:], sep="\n")
        raise SystemExit(f"weekly.yml in {tree} failed (exit {result.returncode})")
    report = json.loads(written[-1].read_text())
    services = {host: data["timing"]["in_services_s"] for host, data in report["hosts"].items()}
    tasks = {host: data["timing"]["tasks_s"] for host, data in report["hosts"].items()}
    share = sum(tasks[host] - services[host] for host in tasks) / sum(tasks.values())
    wall_share = statistics.mean(1 - seconds / wall for seconds in services.values())
    return {"wall": wall, "services": services, "tasks": tasks, "share": share, "wall_share": wall_share,
            "status": report["status"]}


def show(label: str, runs: list[dict]) -> None:
    print(f"\n{label}")
    print(f"  {'run':>3}  {'wall s':>7}  {'tasks s / in services s (per host)':<48}  {'own/tasks':>9}  "
          f"{'own/wall':>8}  status")
    for number, run in enumerate(runs, start=1):
        hosts = ", ".join(f"{host} {run['tasks'][host]:.1f}/{seconds:.1f}"
                          for host, seconds in sorted(run["services"].items()))
        print(f"  {number:>3}  {run['wall']:7.1f}  {hosts:<48}  {run['share']:9.1%}  {run['wall_share']:8.1%}  "
              f"{run['status']}")
    print(f"  median: wall {statistics.median(r['wall'] for r in runs):.1f} s; Ansible's own share of the task time "
          f"{statistics.median(r['share'] for r in runs):.1%} (goal under {GOAL:.0%}), of the wall time "
          f"{statistics.median(r['wall_share'] for r in runs):.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="a commit to measure the same way, for the before/after comparison")
    args = parser.parse_args()
    started_lab = lab_up()
    trees = {"this checkout": REPO}
    try:
        if args.baseline:
            trees[f"baseline {args.baseline}"] = checkout(args.baseline)
        reports = Path(tempfile.mkdtemp(prefix="streamops-bench-reports-"))
        runs: dict[str, list[dict]] = {label: [] for label in trees}
        for _round in range(args.runs):
            for label, tree in trees.items():
                runs[label].append(run_weekly(tree, reports / label.replace(" ", "-")))
        for label, measured in runs.items():
            show(f"weekly.yml, {label} ({args.runs} runs)", measured)
        if args.baseline:
            for key, what in (("share", "of the task time"), ("wall_share", "of the wall time"),
                              ("wall", "wall seconds")):
                before, after = (statistics.median(r[key] for r in runs[label]) for label in
                                 (f"baseline {args.baseline}", "this checkout"))
                shown = (lambda v: f"{v:.1f} s") if key == "wall" else (lambda v: f"{v:.1%}")
                print(f"{what}: {shown(before)} before, {shown(after)} after ({after / before:.2f}x)")
    finally:
        for label, tree in trees.items():
            if tree != REPO:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False,
                               capture_output=True)
        if started_lab:
            subprocess.run([sys.executable, "-m", "lab", "down"], cwd=REPO, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
