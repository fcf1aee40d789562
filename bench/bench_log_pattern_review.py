"""log_pattern_review on a 1 GB log: wall time, MB/s and peak RSS of the scan, against grep as the floor.

Writes once, under the cache (``$STREAMOPS_BENCH_LOG_CACHE``, else ~/.cache/streamops-maintenance/bench-logs), a
log of ``--size-mb`` (default 1024) MB in the guides' mix (sshd, CRON, sudo, the API's JSON lines, nginx-style
access lines; ISO stamps over 20 hours) with a few planted matches, and a gzip of its first ``--gz-mb`` (default
128) MB. Then, each measured twice (the best kept, the page cache warm for both):

1. the module's logic (``run_log_pattern_review``, the guide's two patterns, failed logins and injection
   markers, over the whole file: the window covers it) in a child process: wall time, MB/s, and the child's
   peak RSS (``ru_maxrss`` from ``wait4``) against a child that only imports the module (the interpreter's
   baseline); goal: under 64 MB above it;
2. the floor: ``grep -c -E`` of the same patterns on the same file (``zgrep`` on the gzip), and the ratio.

The counts of both are printed and must agree with what was planted. ``python bench/bench_log_pattern_review.py
--size-mb 256`` for a quicker run. Exits 1 only when the counts disagree.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

from lab.harness.base import cache_dir  # noqa: E402

START = 1796479200  # 2026-12-05T14:00:00Z: the log spans 20 hours from here
SPAN_S = 20 * 3600
NOW = "2026-12-06T10:00:00Z"
PATTERNS = [
    {"name": "failed_logins", "regex": "Failed password|authentication failure"},
    {"name": "injection_markers", "regex": "SQL injection|XSS|CSRF"},
]
MIX = (  # one in every len(MIX) lines of each; decoys that look close but match neither pattern
    "{ts} web1 sshd[{pid}]: Accepted publickey for deploy from 10.0.{a}.{b} port {port} ssh2: ED25519 SHA256:"
    "Zx8f0Lq2mE9yC1pR7tK3wV5nA6bH4jD0sG2uQ8iO1cX",
    "{ts} web1 CRON[{pid}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
    '{ts} web1 vitalstream-api[812]: {{"level":"info","msg":"vitals stored","patient":"p-{a}{b}","bed":{b},'
    '"hr":{hr},"spo2":98,"request_id":"{pid}-{port}"}}',
    '{ts} web1 nginx[77]: 10.0.{a}.{b} - - "GET /api/vitals?bed={b} HTTP/1.1" 200 {port} "-" "vitalstream-monitor/2.4"',
    "{ts} web1 sudo[{pid}]:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl "
    "status vitalstream-api",
    "{ts} web1 sshd[{pid}]: Failed publickey for deploy from 10.0.{a}.{b} port {port} ssh2",  # decoy
    '{ts} web1 vitalstream-api[812]: {{"level":"debug","msg":"password policy checked","user":"nurse{b}"}}',  # decoy
)
PLANTED = (  # (every n-th line, text): the matches
    (250_000, "{ts} web1 sshd[{pid}]: Failed password for invalid user admin from 203.0.113.{b} port {port} ssh2"),
    (400_000, "{ts} web1 sshd[{pid}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
              "ruser= rhost=203.0.113.{b}  user=root password=hunter2"),
    (600_000, '{ts} web1 vitalstream-api[812]: {{"level":"warn","msg":"SQL injection attempt blocked",'
              '"path":"/patients?id={b}%27%20OR%201=1"}}'),
    (900_000, '{ts} web1 vitalstream-api[812]: {{"level":"warn","msg":"XSS payload rejected","field":"notes"}}'),
)


def write_log(path: Path, size_mb: int) -> dict[str, int]:
    """The log, written once; returns the planted counts per pattern (kept next to it)."""
    counts_file = path.with_suffix(".counts.json")
    if path.exists() and counts_file.exists():
        return json.loads(counts_file.read_text())
    target = size_mb * 1024 * 1024
    lines_estimate = target // 150
    step = SPAN_S / lines_estimate
    counts = {"failed_logins": 0, "injection_markers": 0}
    partial = path.with_suffix(".partial")
    written, line_no = 0, 0
    started = time.monotonic()
    with open(partial, "w", encoding="utf-8") as stream:
        while written < target:
            batch = []
            for _line in range(10_000):
                line_no += 1
                seconds = START + min(line_no * step, SPAN_S - 1)
                ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{line_no % 1000:03d}+00:00"
                fields = {"ts": ts, "pid": 1000 + line_no % 50000, "a": line_no % 256, "b": line_no % 200,
                          "port": 1024 + line_no % 60000, "hr": 60 + line_no % 40}
                template = MIX[line_no % len(MIX)]
                for every, planted in PLANTED:
                    if line_no % every == 0:
                        template = planted
                        counts["failed_logins" if "sshd" in planted else "injection_markers"] += 1
                        break
                batch.append(template.format(**fields))
            text = "\n".join(batch) + "\n"
            stream.write(text)
            written += len(text)
    partial.rename(path)
    counts_file.write_text(json.dumps(counts))
    print(f"wrote {path} ({written / 1e6:.0f} MB, {line_no} lines) in {time.monotonic() - started:.0f} s")
    return counts


def write_gzip(plain: Path, path: Path, size_mb: int) -> None:
    """A gzip (level 6, logrotate's default) of the plain log's first ``size_mb`` MB, cut at a line end."""
    if path.exists():
        return
    partial = path.with_suffix(".partial")
    with open(plain, "rb") as source, open(partial, "wb") as target:
        packer = subprocess.Popen(["gzip", "-6", "-c"], stdin=subprocess.PIPE, stdout=target)
        left = size_mb * 1024 * 1024
        while left > 0:
            block = source.read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)
            if left <= 0:
                block = block[:block.rfind(b"\n") + 1]
            packer.stdin.write(block)
        packer.stdin.close()
        if packer.wait():
            raise RuntimeError(f"gzip exited {packer.returncode}")
    partial.rename(path)


def child(args: list[str]) -> tuple[float, float, dict]:
    """(wall seconds, peak RSS MB, output) of this script run as a child with ``args``."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE)
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"child {args} exited {process.returncode}")
    return wall, usage.ru_maxrss / 1024, json.loads(output or b"{}")


def floor(command: list[str]) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command[0]} failed: {done.stderr}")
    return time.monotonic() - started, int(done.stdout.strip() or 0)


def measure(label: str, path: Path, size_mb: float, grep: str, baseline_mb: float, planted: dict[str, int]) -> bool:
    review = {"files": [{"path": str(path), "rotated": []}], "patterns": PATTERNS, "now": NOW, "hours": 24}
    ours, greps = [], []
    for _round in range(2):
        greps.append(floor([grep, "-c", "-E", "-e", PATTERNS[0]["regex"], "-e", PATTERNS[1]["regex"], str(path)]))
        ours.append(child(["--child", json.dumps(review)]))
    wall, rss, counts = min(ours, key=lambda run: run[0])
    grep_wall, grep_count = min(greps)
    print(f"\n{label}: {path.name}, {size_mb:.0f} MB of text")
    print(f"  log_pattern_review  {wall:7.2f} s  {size_mb / wall:7.0f} MB/s   peak RSS {rss:6.1f} MB "
          f"({rss - baseline_mb:+.1f} MB over the interpreter's {baseline_mb:.1f} MB; goal < 64)")
    print(f"  {grep + ' -c -E':<19} {grep_wall:7.2f} s  {size_mb / grep_wall:7.0f} MB/s")
    print(f"  ratio (ours / {grep}) {wall / grep_wall:.2f}x")
    print(f"  counts: ours {counts}, {grep} {grep_count} line(s), planted {planted}")
    return sum(counts.values()) == grep_count and (not planted or counts == planted)


def run_child(raw: str) -> None:
    from ansible_collections.streamops.maintenance.plugins.module_utils.log_pattern_review import (  # noqa: PLC0415
        run_log_pattern_review,
    )
    if raw == "baseline":
        print("{}")
        return
    result = run_log_pattern_review(json.loads(raw))
    print(json.dumps({record["name"].rsplit(" ", 1)[1]: record["after"]["count"] for record in result["records"]}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--gz-mb", type=int, default=128)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        run_child(options.child)
        return 0
    cache = cache_dir("bench-logs", "STREAMOPS_BENCH_LOG_CACHE")
    cache.mkdir(parents=True, exist_ok=True)
    plain = cache / f"vitalstream-{options.size_mb}mb.log"
    planted = write_log(plain, options.size_mb)
    packed = cache / f"vitalstream-{options.size_mb}mb-first-{options.gz_mb}mb.log.gz"
    write_gzip(plain, packed, options.gz_mb)
    _wall, baseline_mb, _output = child(["--child", "baseline"])
    print(f"log_pattern_review scan (2 patterns, window covering the whole file); interpreter + module: "
          f"{baseline_mb:.1f} MB RSS")
    good = measure("plain", plain, plain.stat().st_size / 1e6, "grep", baseline_mb, planted)
    unpacked = int(subprocess.run(["gzip", "-l", "-q", str(packed)], capture_output=True, text=True,
                                  check=True).stdout.split()[1]) / 1e6
    good = measure("gzip", packed, unpacked, "zgrep", baseline_mb, {}) and good
    if not good:
        print("counts disagree")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
