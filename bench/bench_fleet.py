"""playbooks/weekly.yml over a fleet of N estates (lab/fleet.py): wall time, time per estate, the controller's
peak memory, and what the report callback keeps per host.

For each N (default 1, 10, 50) the bench makes a fresh fleet of N estates on PostgreSQL (TLS), Redis and S3,
runs ``ansible-playbook -i <fleet inventory> playbooks/weekly.yml -e maintenance_hosts=fleet -f <forks>``
once, checks its report (every estate present, COMPLETED; the bench stops otherwise) and drops the fleet.

- wall: the ansible-playbook process from start to exit; per estate: wall / N.
- controller peak RSS: VmHWM of the ansible-playbook process (the controller; its forked workers are other
  processes), read from /proc/<pid>/status every 50 ms until it exits (VmHWM only grows, so the last read
  is the peak up to 50 ms before the end); and ru_maxrss of wait4(), the largest of the controller and its
  workers, as a cross-check.
- report callback: the size of what the callback keeps (its RunLog: every object reachable from it, counted
  once, sys.getsizeof) when the run ends, in all and per host. The bench enables, instead of the
  collection's callback, a subclass written to a temp dir that measures that, writes it beside the report
  and then writes the report as usual. Flat per host means the per-host figure does not grow with N.

The services are the lab's when `python -m lab up` is up (its lab_services.yml), otherwise the bench starts
its own PostgreSQL (TLS-only), Redis and S3 on 127.0.0.1 and stops them at the end (the fleet needs no
Kubernetes or compose). Prints the figures; exits 1 only when a report is wrong.

    python bench/bench_fleet.py [--estates 1 10 50] [--forks 10]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent

from lab import fleet  # noqa: E402

# The measuring callback: the collection's, plus a size count of its RunLog before the report is written.
MEASURED_CALLBACK = '''
import json, os, sys
from ansible_collections.streamops.maintenance.plugins.callback import maintenance_report

# Ansible reads a plugin's options from a literal DOCUMENTATION: the collection callback's, renamed.
DOCUMENTATION = __DOCUMENTATION__


def deep_size(root, seen):
    """Bytes of every object reachable from root not counted before (classes and modules excluded)."""
    total, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, type(sys))):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys()); stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, name) for name in obj.__slots__ if hasattr(obj, name))
        elif hasattr(obj, "__dict__"):
            stack.append(vars(obj))
    return total


class CallbackModule(maintenance_report.CallbackModule):
    CALLBACK_NAME = "measured_report"

    def v2_playbook_on_stats(self, stats):
        self._note_hosts_failed_by_ansible()
        seen = set()
        per_host = {name: deep_size(log, seen) for name, log in self._run.hosts.items()}
        whole = deep_size(self._run, seen) + sum(per_host.values())
        with open(os.environ["BENCH_CALLBACK_MEMORY"], "w") as handle:
            json.dump({"run_log_bytes": whole, "per_host_bytes": per_host,
                       "pending_task_timers": len(self._task_started)}, handle)
        super().v2_playbook_on_stats(stats)
'''


def measured_callback() -> str:
    source = (REPO / "plugins" / "callback" / "maintenance_report.py").read_text()
    documentation = next(node.value.value for node in ast.parse(source).body
                         if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION")
    renamed = documentation.replace("name: maintenance_report", "name: measured_report", 1)
    return MEASURED_CALLBACK.replace("__DOCUMENTATION__", 'r"""' + renamed + '"""')


def services(work: Path):
    """(lab_services, stop): the lab's when it is up, else PostgreSQL, Redis and S3 of the bench's own."""
    if fleet.LAB_SERVICES.exists() and subprocess.run([sys.executable, "-m", "lab", "status"], cwd=REPO,
                                                      capture_output=True, check=False).returncode == 0:
        import yaml  # noqa: PLC0415

        print(f"services: the lab's ({fleet.LAB_SERVICES.relative_to(REPO)})")
        return yaml.safe_load(fleet.LAB_SERVICES.read_text())["lab_services"], lambda: None
    from lab import estate  # noqa: PLC0415
    from lab.harness.postgres import PostgresServer  # noqa: PLC0415
    from lab.harness.redis import RedisServer  # noqa: PLC0415
    from lab.harness.s3 import S3Server  # noqa: PLC0415

    started = []
    try:
        pg = PostgresServer(ssl=True)
        pg_info = pg.start()
        started.append(pg)
        cache = RedisServer(maxmemory="64mb")  # the lab's limit; eviction judges the ratio against it
        redis_info = cache.start()
        started.append(cache)
        s3 = S3Server()
        s3_info = s3.start()
        started.append(s3)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    print(f"services: the bench's own PostgreSQL {pg_info.version} (TLS), Redis and S3 on 127.0.0.1")
    facts = {"postgres": estate.postgres_facts(pg_info, {}), "redis": estate.redis_facts(redis_info),
             "s3": estate.s3_facts(s3_info)}

    def stop() -> None:
        for server in reversed(started):
            server.stop()

    return facts, stop


def read_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_weekly(inventory: Path, forks: int, work: Path) -> dict:
    reports = work / "reports"
    memory_file = work / "callback-memory.json"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=str(work / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="measured_report",
               BENCH_CALLBACK_MEMORY=str(memory_file), MAINTENANCE_REPORT_DIR=str(reports),
               AWS_EC2_METADATA_DISABLED="true", PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    (work / "callback_plugins").mkdir(parents=True, exist_ok=True)
    (work / "callback_plugins" / "measured_report.py").write_text(measured_callback())
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "weekly.yml"),
            "-e", "maintenance_hosts=fleet", "-f", str(forks)]
    with open(work / "ansible.log", "w") as log:
        started = time.monotonic()
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        hwm = 0
        while True:
            waited, status, usage = os.wait4(process.pid, os.WNOHANG)
            if waited:
                break
            hwm = max(hwm, read_hwm_kib(process.pid) or 0)
            time.sleep(0.05)
        wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    written = sorted(reports.glob("MAINT-*.json"))
    return {"wall": wall, "returncode": process.returncode, "controller_hwm_kib": hwm,
            "tree_maxrss_kib": usage.ru_maxrss, "report": json.loads(written[-1].read_text()) if written else None,
            "callback": json.loads(memory_file.read_text()) if memory_file.exists() else None,
            "log": work / "ansible.log"}


def check_report(run: dict, hosts: list[str]) -> list[str]:
    report = run["report"]
    if report is None:
        return [f"no report written (exit {run['returncode']}; see {run['log']})"]
    problems = []
    if run["returncode"] != 0:
        problems.append(f"ansible-playbook exit {run['returncode']} (see {run['log']})")
    if report["status"] != "COMPLETED":
        problems.append(f"status {report['status']}: {report['resolution']}")
    if list(report["hosts"]) != hosts:
        problems.append(f"hosts {sorted(set(hosts) ^ set(report['hosts']))} missing or extra")
    not_completed = [host for host, data in report["hosts"].items() if data.get("outcome") != "completed"]
    if not_completed:
        problems.append(f"not completed: {not_completed}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estates", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--forks", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="streamops-bench-fleet-"))
    lab_services, stop = services(work)
    rows, wrong = [], []
    try:
        for count in args.estates:
            directory = work / f"fleet-{count}"
            made = time.monotonic()
            fleet.create_fleet(lab_services, count, directory, name="bench", progress=lambda message: None)
            made = time.monotonic() - made
            try:
                run = run_weekly(directory / "inventory", args.forks, work / f"run-{count}")
            finally:
                fleet.drop_fleet(lab_services, directory, progress=lambda message: None)
            hosts = [estate.host for estate in fleet.plan_fleet("bench", count)]
            problems = check_report(run, hosts)
            wrong += [f"N={count}: {problem}" for problem in problems]
            per_host = (run["callback"] or {}).get("per_host_bytes", {})
            rows.append({"n": count, "made": made, "wall": run["wall"], "hwm": run["controller_hwm_kib"],
                         "tree": run["tree_maxrss_kib"], "callback": (run["callback"] or {}).get("run_log_bytes"),
                         "per_host": sum(per_host.values()) / len(per_host) if per_host else None,
                         "per_host_max": max(per_host.values()) if per_host else None,
                         "timers": (run["callback"] or {}).get("pending_task_timers"),
                         "status": "ok" if not problems else "WRONG"})
            print(f"N={count}: {run['wall']:.1f} s, report {'correct' if not problems else problems}", flush=True)
    finally:
        stop()
    print(f"\nweekly.yml over a fleet, forks {args.forks}, {os.cpu_count()} cores "
          f"(self maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)")
    print(f"{'N':>4}  {'made s':>6}  {'wall s':>7}  {'s/estate':>8}  {'controller peak RSS MB':>22}  "
          f"{'wait4 maxrss MB':>15}  {'callback kept kB':>16}  {'per host kB (max)':>17}  {'timers left':>11}  report")
    for row in rows:
        per_host = f"{row['per_host'] / 1024:.1f} ({row['per_host_max'] / 1024:.1f})" if row["per_host"] else "-"
        kept = f"{row['callback'] / 1024:.1f}" if row["callback"] else "-"
        print(f"{row['n']:>4}  {row['made']:6.1f}  {row['wall']:7.1f}  {row['wall'] / row['n']:8.2f}  "
              f"{row['hwm'] / 1024:22.1f}  {row['tree'] / 1024:15.1f}  {kept:>16}  {per_host:>17}  "
              f"{row['timers'] if row['timers'] is not None else '-':>11}  {row['status']}")
    for problem in wrong:
        print(f"WRONG REPORT {problem}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
