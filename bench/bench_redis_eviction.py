"""Evicting 1,000,000 of 2,000,000 Redis keys: the guides' ways, ours, and the server's limit.

In one run, on one redis-server started here, each method starts from the same
keyspace (DEBUG POPULATE: 1M ``evict:*`` and 1M ``keep:*`` keys) and must leave
exactly the 1M ``keep:*`` keys:

- xargs: the guide's ``redis-cli --scan --pattern 'evict:*' | xargs redis-cli del``
- eval:  the guide's EVAL of KEYS + DEL
- ours:  redis_memory_guard's server-side SCAN + UNLINK steps with its latency budget (1 ms, the default)
- limit: ``redis-benchmark -P 100`` pipelined UNLINK throughput (1M UNLINKs of random
  key names: how fast the server can take the command at all)
- floor: the server's own time (INFO commandstats) for a bare ``SCAN MATCH 'evict:*' COUNT 1000``
  over the whole keyspace plus UNLINK of the keys it found, 500 per command: the work any
  eviction that does not block the server (so: SCAN, not KEYS) cannot avoid. The limit never
  has to find its keys; this is why it is a bound no SCAN-based method can reach.

redis-server is pinned to the first CPU and every client (the methods and the probe) to the
others, as on a host where Redis has a core of its own: on 2 cores, without pinning, the
probe mostly measures its own fight for a CPU with redis-server and the evicting client.

While each runs, a second process issues a GET every 0.5 ms and records each
one's latency; the idle row is the same probe for 3 s with nothing else running: the
machine's own noise, which no method can go below. ``python bench/bench_redis_eviction.py 2`` runs ours with a 2 ms
latency budget instead of the default 1 ms.
Goals: ours >= 3x faster than xargs, >= 0.5x the limit, the concurrent client's
p99.9 under 2 ms. Prints a table; exits 0 either way.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "build" / "collections"))

import redis  # noqa: E402

from ansible_collections.streamops.maintenance.plugins.module_utils.redis_memory import (  # noqa: E402
    Pacing,
    evict_by_pattern,
)
from lab.harness.redis import RedisServer  # noqa: E402

KEYS = 1_000_000
BUDGET = float(sys.argv[1]) / 1000 if len(sys.argv) > 1 else 0.001
EVAL_KEYS_DEL = """
local keys = redis.call('KEYS', ARGV[1])
for i = 1, #keys, 5000 do
  redis.call('DEL', unpack(keys, i, math.min(i + 4999, #keys)))
end
return #keys
"""
PROBE = r"""
import json, signal, sys, time, redis
client = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]))
client.set("probe", "x")
samples, running = [], [True]
signal.signal(signal.SIGTERM, lambda *a: running.__setitem__(0, False))
print("ready", flush=True)
while running[0]:
    start = time.perf_counter()
    client.get("probe")
    samples.append(time.perf_counter() - start)
    # An application client, not a busy loop: on 2 cores a spinning probe would mostly
    # measure its own fight for CPU with redis-server and the evicting client.
    time.sleep(0.0005)
samples.sort()
pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000
print(json.dumps({"n": len(samples), "p50": pick(0.5), "p99": pick(0.99), "p999": pick(0.999), "max": samples[-1] * 1000}))
"""


def populate(client: redis.Redis) -> None:
    client.flushall()
    client.execute_command("DEBUG", "POPULATE", KEYS, "evict", 16)
    client.execute_command("DEBUG", "POPULATE", KEYS, "keep", 16)
    assert client.dbsize() == 2 * KEYS


def server_seconds(client: redis.Redis, commands: tuple[str, ...]) -> float:
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("usec", 0) for name in commands) / 1e6


def pin(server_pid: int) -> str:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "not pinned (one CPU)"
    os.sched_setaffinity(server_pid, {cpus[0]})
    os.sched_setaffinity(0, set(cpus[1:]))  # children (probe, redis-cli, redis-benchmark) inherit it
    return f"redis-server on CPU {cpus[0]}, clients on CPU {','.join(map(str, cpus[1:]))}"


def with_probe(host: str, port: int, action) -> tuple[float, dict]:
    probe = subprocess.Popen([sys.executable, "-c", PROBE, host, str(port)], stdout=subprocess.PIPE, text=True)
    assert probe.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    probe.send_signal(signal.SIGTERM)
    out, _err = probe.communicate(timeout=30)
    return seconds, json.loads(out.strip().splitlines()[-1])


def main() -> int:
    redis_cli, benchmark = shutil.which("redis-cli"), shutil.which("redis-benchmark")
    server = RedisServer(extra={"maxmemory-policy": "noeviction"})
    info = server.start()
    print(pin(info.pid), flush=True)
    client = redis.Redis(host=info.host, port=info.port)
    base = ["-h", info.host, "-p", str(info.port)]
    rows = []
    try:
        def xargs() -> None:
            scan = subprocess.Popen([redis_cli, *base, "--scan", "--pattern", "evict:*"], stdout=subprocess.PIPE)
            subprocess.run(["xargs", redis_cli, *base, "del"], stdin=scan.stdout, check=True,
                           stdout=subprocess.DEVNULL)
            scan.wait()

        def eval_keys() -> None:
            client.eval(EVAL_KEYS_DEL, 0, "evict:*")

        def ours() -> None:
            pacing = Pacing(batch=500, latency_budget_s=BUDGET)
            result = evict_by_pattern(client, ["evict:*"], target_bytes=0, pacing=pacing)
            ours.pacing = result.pacing  # type: ignore[attr-defined]

        def limit() -> None:
            subprocess.run([benchmark, *base, "-n", str(KEYS), "-P", "100", "-c", "50", "-r", str(KEYS), "-q",
                            "UNLINK", "evict:__rand_int__"], check=True, stdout=subprocess.DEVNULL)

        def floor() -> None:
            cursor, names = 0, []
            while True:
                cursor, keys = client.scan(cursor=cursor, match="evict:*", count=1000)
                names.extend(keys)
                if cursor == 0:
                    break
            pipe = client.pipeline(transaction=False)
            for start in range(0, len(names), 500):
                pipe.unlink(*names[start:start + 500])
            pipe.execute()

        def idle() -> None:
            time.sleep(3)

        populate(client)
        client.config_resetstat()
        floor()
        floor_s = server_seconds(client, ("scan", "unlink"))
        print(f"floor  {floor_s:7.2f}s  server time of SCAN over {2 * KEYS} keys + UNLINK of the {KEYS} found "
              f"(SCAN alone {server_seconds(client, ('scan',)):.2f}s)", flush=True)
        for name, action in (("idle", idle), ("xargs", xargs), ("eval", eval_keys), ("ours", ours),
                             ("limit", limit)):
            populate(client)
            client.config_resetstat()
            seconds, latency = with_probe(info.host, info.port, action)
            if name == "ours":
                ours.server_s = server_seconds(client, ("evalsha", "eval"))  # type: ignore[attr-defined]
            left_keep = client.dbsize()
            rows.append((name, seconds, latency, left_keep))
            print(f"{name:6s} {seconds:7.2f}s  keys left {left_keep:>8}  GET p50 {latency['p50']:.3f} ms  "
                  f"p99 {latency['p99']:.3f}  p99.9 {latency['p999']:.3f}  max {latency['max']:.1f} ms "
                  f"({latency['n']} GETs)", flush=True)
        times = {name: seconds for name, seconds, _lat, _left in rows}
        ours_latency = next(lat for name, _s, lat, _left in rows if name == "ours")
        print(f"\nours vs xargs: {times['xargs'] / times['ours']:.1f}x faster (goal >= 3x)")
        print(f"ours vs the limit: {times['limit'] / times['ours']:.2f}x of its speed (goal >= 0.5x; the limit "
              "UNLINKs random key names: a bound on command throughput, not an eviction)")
        print(f"ours vs the floor: {floor_s / times['ours']:.2f}x of its speed; the floor alone is "
              f"{times['limit'] / floor_s:.2f}x of the limit. Ours kept the server busy "
              f"{ours.server_s:.2f}s of its {times['ours']:.2f}s")  # type: ignore[attr-defined]
        idle_latency = rows[0][2]
        print(f"concurrent GET p99.9 while ours ran: {ours_latency['p999']:.3f} ms (goal < 2 ms; idle server "
              f"{idle_latency['p999']:.3f} ms); "
              f"latency budget {BUDGET * 1000:g} ms, our longest step on the server "
              f"{ours.pacing['longest_command_ms']} ms")  # type: ignore[attr-defined]
    finally:
        client.close()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
