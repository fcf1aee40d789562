# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The ``redis_rdb`` part of a backup set: an RDB snapshot of the whole server, as ``redis-cli --rdb`` takes it.

The connection options are those of ``redis_conn.redis_connection_argument_spec()``;
``db`` is not used (an RDB holds every database of the server), nor are the
socket timeouts (redis-cli has no such option). The password goes to redis-cli in
E(REDISCLI_AUTH), never on its command line.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from .backup_set import BackupError, stream_child, tail

RDB_MAGIC = b"REDIS"
EOF_MARK = 40  # CONFIG_RUN_ID_SIZE: the mark that ends a diskless (EOF-delimited) RDB transfer


def redis_cli_argv(redis_cli: str, options: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """redis-cli's arguments and environment for the server of ``options``."""
    argv = [redis_cli, "--no-auth-warning"]
    if options.get("login_unix_socket"):
        argv += ["-s", options["login_unix_socket"]]
    else:
        argv += ["-h", options.get("login_host") or "localhost", "-p", str(options.get("login_port") or 6379)]
    if options.get("login_user"):
        argv += ["--user", options["login_user"]]
    if options.get("tls"):
        argv.append("--tls")
        if options.get("validate_certs") is False:
            argv.append("--insecure")
        for flag, key in (("--cacert", "ca_certs"), ("--cert", "client_cert_file"), ("--key", "client_key_file")):
            if options.get(key):
                argv += [flag, options[key]]
    env = dict(os.environ)
    env.pop("REDISCLI_AUTH", None)
    if options.get("login_password"):
        env["REDISCLI_AUTH"] = options["login_password"]  # never -a: argv is visible in ps
    return argv, env


def rdb_tail(stderr: str, last: bytes) -> bytes:
    """A diskless sync ends with a 40-byte EOF mark that redis-cli cannot truncate from stdout: drop it."""
    return b"" if "EOF marker" in stderr else last


def dump_redis(redis_cli: str, options: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Write ``redis.rdb`` into the set; the part's manifest entry. Raises BackupError(step='redis rdb')."""
    step = "redis rdb"
    argv, env = redis_cli_argv(redis_cli, options)
    target = directory / "redis.rdb"
    try:
        writer, stderr = stream_child([*argv, "--rdb", "-"], env, target, step=step, hold_back=EOF_MARK,
                                      judge_tail=rdb_tail)
    except BackupError as exc:
        if not isinstance(exc.__cause__, OSError):  # our disk is not the problem: the transfer broke
            exc.msg += f"; {transfer_broke_cause(argv, env)}"
        raise
    match = re.search(r"Transfer finished with success(?: after (\d+) bytes)?", stderr)
    if match is None or (match.group(1) is not None and int(match.group(1)) != writer.size):
        raise BackupError(msg=f"{step}: redis-cli did not report a complete transfer of {writer.size} bytes: "
                              f"{tail(stderr)}; {transfer_broke_cause(argv, env)}", step=step)
    with target.open("rb") as handle:
        head = handle.read(len(RDB_MAGIC))
    if head != RDB_MAGIC:
        raise BackupError(msg=f"{step}: the transfer is not an RDB file (starts with {head!r})", step=step)
    return {"part": "redis_rdb", "format": "rdb", "path": target.name, "files": [writer.record(target.name)]}


def transfer_broke_cause(argv: list[str], env: dict[str, str]) -> str:
    """Why an RDB transfer broke, as far as the server tells afterwards: stopped, or it dropped the copy itself.

    redis-cli --rdb is a replica to the server: the writes made while the server takes its snapshot are buffered
    for the copy, and the server drops a replica whose buffer passes client-output-buffer-limit's replica class,
    saying so only in its own log. The server still answering afterwards is the sign.
    """
    try:
        ping = subprocess.run([*argv, "PING"], env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the server could not be asked afterwards ({exc})"
    if ping.returncode != 0 or ping.stdout.strip() != b"PONG":
        answer = tail(ping.stdout.decode(errors="replace") + ping.stderr.decode(errors="replace"))
        return f"the server does not answer now ({answer}): it stopped or restarted during the copy"
    try:
        limits = subprocess.run([*argv, "CONFIG", "GET", "client-output-buffer-limit"], env=env, capture_output=True,
                                stdin=subprocess.DEVNULL, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        limits = None
    lines = limits.stdout.decode(errors="replace").splitlines() if limits is not None else []
    # CONFIG may be denied to this user by an ACL: the limits are then not named.
    now = f" (now: {lines[1]})" if limits is not None and limits.returncode == 0 and len(lines) >= 2 else ""
    return ("the server still answers, so it dropped the copy itself: most likely the writes made during its "
            f"snapshot went over its client-output-buffer-limit for replicas{now}, else repl-timeout")
