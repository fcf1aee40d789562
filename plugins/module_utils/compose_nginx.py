# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The nginx front of the compose blue/green driver: which colour its upstream file names, and the switch.

The switch rewrites the upstream file atomically, has nginx test the whole
configuration (the old file comes back when the test fails) and reloads nginx
gracefully: the master starts workers with the new upstream and tells the old
ones to stop accepting and finish what they are serving, so no request fails.
It returns once every worker that still accepts requests is one of the new
workers, i.e. once every new request goes to the new colour.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .blue_green import DeployError, tail
from .compose_files import absolute, mode_of, read_text, write_text

LOOPBACK = "127.0.0.1"
NGINX_TIMEOUT = 60.0
SWITCH_TIMEOUT = 5.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def front_url_of(value: Any) -> str:
    try:
        parsed = urllib.parse.urlsplit(value if isinstance(value, str) else "")
    except ValueError as exc:  # an unclosed IPv6 bracket: 'http://[::1'
        raise DeployError(msg=f"compose front_url {value!r} must be an http(s) URL such as http://127.0.0.1:8080 "
                              f"({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DeployError(msg=f"compose front_url {value!r} must be an http(s) URL such as http://127.0.0.1:8080")
    return value.rstrip("/")


def nginx_problem(output: str) -> str:
    """The lines of nginx's output that say what is wrong, without the boilerplate."""
    lines = [re.sub(r"^.*?\[(emerg|alert|crit|error)\] (\d+#\d+: )?", r"[\1] ", line)
             for line in output.splitlines() if re.search(r"\[(emerg|alert|crit|error)\]", line)]
    return tail("; ".join(lines) if lines else output)


def run_nginx(binary: str | list[str], conf: str, *args: str) -> tuple[str | None, str]:
    """``nginx <args> -c <conf>`` (``-t``, ``-T``, ``-s reload``): (what went wrong or None, stdout).

    ``binary`` is the executable, or the argv that runs nginx (``docker exec <container> nginx`` for an nginx in a
    compose project). Shared by the blue/green switch and certificate_renew's install.
    """
    argv = [*([binary] if isinstance(binary, str) else binary), *args, "-c", conf]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=NGINX_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv)}` did not finish within {NGINX_TIMEOUT:g}s", ""
    except OSError as exc:
        return f"`{' '.join(argv)}` could not run: {exc}", ""
    if result.returncode != 0:
        return f"`{' '.join(argv)}` exited with {result.returncode}: {nginx_problem(result.stderr)}", ""
    return None, result.stdout


def proc_workers(master: int) -> dict[int, bool] | None:
    """nginx worker processes of ``master``: pid -> draining; None when /proc cannot tell (not Linux)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    workers = {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stream:
                stat = stream.read().decode(errors="replace")
            if int(stat.rsplit(")", 1)[1].split()[1]) != master:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                title = stream.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            # Gone between listdir and open: it is no worker any more.
            continue
        # nginx rewrites its workers' titles; a worker told to quit by a
        # reload becomes "worker process is shutting down" and no longer accepts.
        if "worker process" in title:
            workers[int(entry)] = "shutting down" in title
    return workers


def nginx_build_option(binary: str, name: str) -> str | None:
    """A ``--name=value`` of ``nginx -V`` (how this nginx was built), None when it does not say."""
    try:
        result = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=NGINX_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(rf"--{name}=(\S+)", result.stderr + result.stdout)
    return match.group(1) if match else None


def nginx_master_pid(binary: str, dump: str) -> int | None:
    """PID of the running nginx master, from the pid file its configuration (``nginx -T``) names; None when unknown."""
    match = re.search(r"^\s*pid\s+\"?([^\s;\"]+)\"?\s*;", dump, re.MULTILINE)
    pid_file = match.group(1) if match else nginx_build_option(binary, "pid-path") or "logs/nginx.pid"
    if not os.path.isabs(pid_file):
        pid_file = os.path.join(nginx_build_option(binary, "prefix") or "/usr/local/nginx", pid_file)
    try:
        with open(pid_file, encoding="utf-8") as stream:
            text = stream.read().strip()
    except (OSError, UnicodeDecodeError):
        # Not knowing the master only means the caller waits for the front instead of watching the workers.
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    return pid if pid_alive(pid) else None


def wait_workers_replaced(master: int, before: set[int], timeout: float) -> bool:
    """True once the master runs new workers and every old one drains (accepts no new request) or is gone."""
    deadline = time.monotonic() + timeout
    while True:
        workers = proc_workers(master) or {}
        accepting = {pid for pid, draining in workers.items() if not draining}
        if accepting and not accepting & before:
            return True
        if time.monotonic() > deadline or not pid_alive(master):
            return False
        time.sleep(0.01)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, it is only not ours
    return True


class NginxFront:
    """The upstream file ``upstream_file`` (owned by the driver, written whole) of the nginx run by ``conf``."""

    switch_timeout = SWITCH_TIMEOUT

    def __init__(self, *, app: str, ports: dict[str, int], upstream_file: str, conf: str, binary: str = "nginx",
                 front_url: str) -> None:
        self.app = app
        self.ports = ports
        self.upstream_file = absolute(upstream_file, "compose nginx_upstream_file")
        self.conf = absolute(conf, "compose nginx_conf")
        if not isinstance(binary, str) or not binary.strip():
            raise DeployError(msg=f"compose nginx_binary {binary!r} must name the nginx executable")
        self.binary = binary
        self.front_url = front_url_of(front_url)

    def active(self) -> str | None:
        text = read_text(self.upstream_file)
        if text is None:
            return None
        servers = re.findall(r"\bserver\s+([^\s;]+)", re.sub(r"#[^\n]*", "", text))
        if not servers:
            raise DeployError(msg=f"nginx upstream file {self.upstream_file} has no `server` line")
        by_port = {port: colour for colour, port in self.ports.items()}
        found = set()
        for server in servers:
            port = server.rpartition(":")[2]
            found.add(by_port.get(int(port)) if port.isdigit() else None)
        if len(found) == 1:
            # A front that points at neither colour (the app before blue/green) has no colour yet:
            # the first deploy takes it over.
            return found.pop()
        raise DeployError(msg=f"nginx upstream file {self.upstream_file} points at {', '.join(servers)}, "
                              f"which is not one colour (blue is {LOOPBACK}:{self.ports['blue']}, green is "
                              f"{LOOPBACK}:{self.ports['green']}); point it at one of them by hand")

    def plan(self, colour: str) -> str:
        """The switch to ``colour`` in one line; DeployError when it could not be written."""
        if not os.path.isdir(os.path.dirname(self.upstream_file)):
            raise DeployError(msg=f"the directory of nginx upstream file {self.upstream_file} does not exist")
        return (f"nginx upstream file {self.upstream_file}: server {LOOPBACK}:{self.ports[colour]} ({colour}), "
                "nginx -T (the test) and a graceful reload")

    def upstream_text(self, colour: str) -> str:
        return (f"# Written by streamops.maintenance blue_green_deploy: traffic of {self.app} goes to {colour} "
                f"(compose project {self.app}-{colour}).\n# Rewritten on every switch; edits are lost.\n"
                f"upstream {self.app} {{ server {LOOPBACK}:{self.ports[colour]}; }}\n")

    def switch(self, colour: str) -> None:
        path = self.upstream_file
        if not os.path.isdir(os.path.dirname(path)):
            raise DeployError(msg=f"the directory of nginx upstream file {path} does not exist")
        old = read_text(path)
        # nginx's master may run as another user than this module: a new upstream file is world-readable.
        mode = mode_of(path, 0o644)
        write_text(path, self.upstream_text(colour), mode)
        problem, dump = self.nginx("-T")
        if problem:
            self.restore(old, mode)
            raise DeployError(msg=f"nginx rejects the configuration with {path} pointing at {colour}: {problem}; "
                                  f"{path} is restored, the traffic did not move")
        master = self.master(dump)
        before = proc_workers(master) if master else None
        problem, _dump = self.nginx("-s", "reload")
        if problem:
            self.restore(old, mode)
            raise DeployError(msg=f"nginx reload failed: {problem}; {path} is restored, the traffic did not move")
        if master and before:
            if not self.wait_new_workers(master, set(before)):
                self.restore(old, mode)
                self.nginx("-s", "reload")
                raise DeployError(msg=f"nginx (master {master}) did not start workers with {colour}'s upstream "
                                      f"within {self.switch_timeout:g}s (see nginx's error log); {path} is "
                                      "restored and nginx reloaded with it")
            return
        # No master or workers to watch (no pid file, master_process off, not Linux): the
        # reload is graceful all the same; wait until the front answers again.
        self.wait_front_answers(time.monotonic() + self.switch_timeout)

    def restore(self, old: str | None, mode: int) -> None:
        if old is not None:
            write_text(self.upstream_file, old, mode)
            return
        try:
            os.unlink(self.upstream_file)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DeployError(msg=f"cannot remove {self.upstream_file} again: {exc}") from exc

    def nginx(self, *args: str) -> tuple[str | None, str]:
        """Run nginx with the configuration: (what went wrong or None, stdout)."""
        return run_nginx(self.binary, self.conf, *args)

    def master(self, dump: str) -> int | None:
        return nginx_master_pid(self.binary, dump)

    def wait_new_workers(self, master: int, before: set[int]) -> bool:
        return wait_workers_replaced(master, before, self.switch_timeout)

    def wait_front_answers(self, deadline: float) -> bool:
        while True:
            try:
                with _DIRECT.open(self.front_url, timeout=1):
                    return True
            except urllib.error.HTTPError:
                # Any HTTP answer is nginx answering; the post-switch checks judge the content.
                return True
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


__all__ = ["LOOPBACK", "NginxFront", "front_url_of", "nginx_problem", "pid_alive", "proc_workers", "run_nginx"]
