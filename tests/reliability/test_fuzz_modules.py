"""Bad input (issue 20): hypothesis-generated options for every module, run in-process against the lane's servers.

For each module, option sets are drawn around its real argument_spec (tests/reliability/fuzz_strategies.py):
one to three options of a valid base call are replaced by generated values (identifiers with quotes and
unicode, key patterns, paths, durations, rrules, ports, thresholds, choices outside the set, lists for
scalars...). Each example is one ``bad_input`` case of the campaign, named after the module, and checks:

- no exception escapes main() (Ansible would print a traceback), no example runs longer than EXAMPLE_SECONDS;
- a failed result has a message that names one of the options made bad (or its value);
- a result of the collection's runner keeps the record shape (records.result_problems);
- when the module failed, said ``changed: false`` or ran in check mode: every service it can reach (the
  lane's PostgreSQL, Redis, S3, the sandbox's files) holds exactly what it held before, and no new file is left.

Docker and Kubernetes belong to the services lane: the modules that drive them get a Docker socket and a
kubeconfig that lead nowhere, so the examples exercise their validation and their failure messages only.
No example sends traffic off loopback: names other than loopback are refused in-process (libpq gets only
loopback names and socket directories).
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import importlib
import json
import math
import os
import shutil
import signal
import socket
import stat
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.streamops.maintenance.plugins.module_utils.records import result_problems
from tests.reliability import fuzz_strategies as fs

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
EXAMPLE_SECONDS = 20
# Exploring (not in CI): every example's problems appended to this file instead of failing at the first one.
EXPLORE = os.environ.get("STREAMOPS_FUZZ_EXPLORE")
SCALE = int(os.environ.get("STREAMOPS_FUZZ_SCALE", "1"))  # more examples per module when exploring
ALWAYS = [{"name": "always", "rrule": "FREQ=DAILY;BYHOUR=0;BYMINUTE=0", "duration": "23h59m"}]
INSIDE = "2026-11-22T02:30:00Z"
CLOSED_PORT = 1  # nothing listens on 127.0.0.1:1 (tcpmux): connections are refused at once


# --------------------------------------------------------------------------- running one example


class ExampleTimeout(Exception):
    """An example ran longer than EXAMPLE_SECONDS: a module that hangs on an input is a defect too."""


def _alarm(signum, frame):
    raise ExampleTimeout(f"the module ran longer than {EXAMPLE_SECONDS} s")


def argument_spec_of(module) -> dict[str, Any]:
    """The argument_spec main() builds AnsibleModule with (captured, not re-declared)."""
    captured: dict[str, Any] = {}

    class Captured(Exception):
        pass

    def capture(self, *args, **kwargs):
        captured.update(kwargs)
        raise Captured()

    with mock.patch.object(basic.AnsibleModule, "__init__", capture):
        try:
            module.main()
        except Captured:
            pass
    return captured["argument_spec"]


def run_main(module, args: dict[str, Any], capsys) -> tuple[dict[str, Any], bool]:
    """(result, whether the collection's runner was reached) of main() as Ansible runs it.

    An exception escaping main() becomes the result Ansible would show: failed, with the traceback.
    """
    reached = []
    original = module.run_and_exit

    def spy(ansible_module, runner, missing):
        reached.append(True)
        return original(ansible_module, runner, missing)

    capsys.readouterr()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(EXAMPLE_SECONDS)
    try:
        with mock.patch.object(module, "run_and_exit", spy), patch_module_args(args):
            try:
                module.main()
            except SystemExit:
                pass
            except Exception:  # noqa: BLE001 - any exception escaping main() is what this test looks for
                capsys.readouterr()
                return {"failed": True, "msg": "", "exception": traceback.format_exc()}, bool(reached)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out = capsys.readouterr().out
    try:
        return json.loads(out), bool(reached)
    except ValueError:
        return {"failed": True, "msg": "", "exception": f"Traceback (most recent call last): no JSON: {out[:500]}"}, True


# --------------------------------------------------------------------------- what the services hold


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under root: kind, size and mtime (a change of either is a change)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            kind = "d" if stat.S_ISDIR(info.st_mode) else "l" if stat.S_ISLNK(info.st_mode) else "f"
            found[str(path.relative_to(root))] = (kind, info.st_size if kind == "f" else 0,
                                                  info.st_mtime_ns if kind == "f" else 0)
    return found


def pg_state(conninfo: dict[str, Any]) -> dict[str, Any]:
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    state: dict[str, Any] = {}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        state["databases"] = sorted(r[0] for r in conn.execute("SELECT datname FROM pg_database"))
        state["settings"] = sorted(conn.execute(
            "SELECT coalesce(name, ''), coalesce(setting, '') FROM pg_file_settings").fetchall())
        tables = conn.execute("SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY 1, 2").fetchall()
        for schema, table in tables:
            name = sql.Identifier(schema, table)
            count, digest = conn.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY "
                                                 "t::text), '')) FROM {} t").format(name)).fetchone()
            state[f"table {schema}.{table}"] = (count, digest)
        state["indexes"] = sorted(conn.execute("SELECT schemaname, indexname FROM pg_indexes "
                                               "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"))
        state["sequences"] = sorted(conn.execute("SELECT schemaname, sequencename, last_value FROM pg_sequences"))
    return state


def redis_state(client) -> dict[str, Any]:
    # Key counts only: expires and avg_ttl move with the clock.
    state: dict[str, Any] = {"keyspace": {db: v["keys"] for db, v in client.info("keyspace").items()}}
    for db in (0, 1, 2):
        client.execute_command("SELECT", db)
        digest = hashlib.sha256()
        for key in sorted(client.scan_iter(count=1000)):
            digest.update(key + b"=" + (client.dump(key) or b""))
        state[f"db{db}"] = digest.hexdigest()
    client.execute_command("SELECT", 0)
    config = client.config_get("*")
    state["config"] = {k: v for k, v in config.items() if k not in ("dir",)}
    return state


def s3_state(client) -> dict[str, Any]:
    state = {}
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        listing = client.list_objects_v2(Bucket=name)
        state[name] = sorted((o["Key"], o["ETag"], o["Size"]) for o in listing.get("Contents", []))
    return state


# --------------------------------------------------------------------------- the sandbox of one module's test


@dataclass
class Sandbox:
    """One module's surroundings: the files it may touch and the services it reaches, snapshot and reset."""

    base: Path  # what tree() watches; ROOT is two levels below, so '@ROOT@/../..' stays inside
    root: Path
    snapshots: list[Callable[[], Any]] = field(default_factory=list)
    resets: list[Callable[[], None]] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        return {"files": tree(self.base), **{str(i): snap() for i, snap in enumerate(self.snapshots)}}

    def reset(self) -> None:
        for reset in self.resets:
            reset()


def substitute(value: Any, root: str) -> Any:
    if isinstance(value, str):
        return value.replace(fs.ROOT, root)
    if isinstance(value, list):
        return [substitute(v, root) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, root) for k, v in value.items()}
    return value


def set_option(args: dict[str, Any], path: tuple, value: Any) -> None:
    target = args
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def option_paths(spec: dict[str, Any], base: dict[str, Any], prefix: tuple = ()) -> dict[tuple, dict]:
    """Every option that can be made bad: top level, and the sub-options of dicts (and first list items) given."""
    found = {}
    for name, option in spec.items():
        found[prefix + (name,)] = option
        given_value = base.get(name) if isinstance(base, dict) else None
        if option.get("options") and isinstance(given_value, dict):
            found.update(option_paths(option["options"], given_value, prefix + (name,)))
        elif option.get("options") and isinstance(given_value, list) and given_value and isinstance(given_value[0], dict):
            found.update(option_paths(option["options"], given_value[0], prefix + (name, 0)))
    return found


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    return [value]


def named_in(msg: str, path: tuple, value: Any, args: dict[str, Any]) -> bool:
    """Whether msg names the option (a step of its path, or a word of its name), the bad value, or the list item
    holding it (by its name: a rule file, a channel, a certificate)."""
    low = msg.lower()
    words = []
    holder: Any = args
    for step in path[:-1]:
        try:
            holder = holder[step]
        except (KeyError, IndexError, TypeError):  # a parent made bad by another draw of the example
            break
        if isinstance(step, int) and isinstance(holder, dict) and str(holder.get("name") or "").strip():
            words.append(str(holder["name"]))
    for step in path:
        if isinstance(step, str):
            words += [step, step.rstrip("s"), step.replace("_", " ")]
            words += [part for part in step.split("_") if len(part) >= 4]
    for item in _scalars(value):
        text = str(item)
        if text.strip():
            words += [text, repr(item).strip("'\""), text[:40], json.dumps(item).strip('"')]
        if isinstance(item, float) and math.isnan(item):
            words.append("nan")
    return any(word and word.lower() in low for word in words)


@dataclass
class Target:
    """How to call one module: a valid base call, what not to fuzz, and strategies for free-form options."""

    base: dict[str, Any]
    examples: int
    keep: tuple = ()  # option names never made bad (they hold the sandbox: kubeconfig, docker socket...)
    overrides: dict[tuple, st.SearchStrategy] = field(default_factory=dict)
    # A failure naming this is the service the sandbox leads nowhere (Docker, Kubernetes): the input passed
    # the module's checks and the message says what could not be reached, which is clear.
    unreachable: tuple[str, ...] = ()
    reset_always: bool = False  # reset after every example (a module whose every run leaves files: pg_backup)


def fuzz(module_name: str, target: Target, sandbox: Sandbox, campaign, capsys) -> None:
    module = importlib.import_module(f"ansible_collections.streamops.maintenance.plugins.modules.{module_name}")
    base = substitute(target.base, str(sandbox.root))
    paths = option_paths(argument_spec_of(module), base)
    for path in list(paths):
        if any(step in target.keep for step in path if isinstance(step, str)):
            del paths[path]
    # `is None`, not `or`: a strategy's truth value is a mistake hypothesis warns about.
    strategies = {path: fs.for_option(str(path[-1]), option) if target.overrides.get(path) is None
                  else target.overrides[path] for path, option in paths.items()}
    for path, strategy in target.overrides.items():
        strategies.setdefault(path, strategy)
    choices = sorted(strategies, key=repr)

    @settings(max_examples=target.examples * SCALE, deadline=None, derandomize=True, database=None,
              # Module calls are slow (servers, subprocesses): the generation is not what is measured.
              suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def one_example(data):
        chosen = data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True), label="options")
        check_mode = data.draw(st.booleans(), label="check_mode")
        args = copy.deepcopy(base)
        bad = []
        for path in chosen:
            value = substitute(data.draw(strategies[path], label=".".join(map(str, path))), str(sandbox.root))
            try:
                set_option(args, path, value)
            except (KeyError, IndexError, TypeError):
                continue  # a parent made bad by an earlier draw
            bad.append((path, value))
        args["_ansible_check_mode"] = check_mode
        with campaign.case("bad_input", module_name, raise_on_problems=not EXPLORE) as case:
            before = sandbox.state()
            result, reached = run_main(module, args, capsys)
            after = sandbox.state()
            crashed = bool(result.get("exception"))
            if result.get("failed"):
                msg = str(result.get("msg") or "")
                named = [".".join(map(str, p)) for p, v in bad if named_in(msg, p, v, args)]
                # AnsibleModule's own type checks (before the collection's runner) are ansible-core's wording.
                expected = any(marker in msg for marker in target.unreachable)
                names = [] if named or crashed or not reached or expected else [".".join(map(str, path)) for path, _value in bad]
                case.check_error(result, names=names)
            elif crashed:
                case.check_error(result)
            if reached and not crashed:
                case.check_shape(result_problems(result, check_mode=check_mode))
            unchanged = result.get("failed") or check_mode or not result.get("changed")
            if unchanged:
                files_before, files_after = before.pop("files"), after.pop("files")
                new = sorted(set(files_after) - set(files_before))
                case.check_no_partial(new, f"new file(s) in the sandbox ({'check mode' if check_mode else 'unchanged'})")
                gone_or_changed = sorted(k for k in files_before if files_after.get(k) != files_before[k])
                case.check_data(not gone_or_changed, f"sandbox files changed or removed: {gone_or_changed[:5]}")
                changed = sorted(k for k in before if before[k] != after[k])
                case.check_data(not changed, f"service state changed ({', '.join(changed)}) by {module_name} "
                                             f"(failed={bool(result.get('failed'))}, check_mode={check_mode}, "
                                             f"changed={result.get('changed')}) with {bad!r}")
            if not unchanged or crashed or target.reset_always:
                sandbox.reset()
        if case.problems and EXPLORE:
            with open(EXPLORE, "a", encoding="utf-8") as out:
                out.write(json.dumps({"module": module_name, "bad": repr(bad), "check_mode": check_mode,
                                      "problems": case.problems, "msg": str(result.get("msg"))[:400],
                                      "exception": str(result.get("exception") or "")[-1500:]}) + "\n")

    one_example()


# --------------------------------------------------------------------------- fixtures: sandbox and servers


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    base = tmp_path / "sandbox"
    root = base / "a" / "work"
    (root / "data").mkdir(parents=True)
    (root / "a-file.txt").write_text("not a directory\n")
    # Relative paths resolve inside the sandbox, never in the repository.
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root))
    # Docker and Kubernetes belong to the services lane: a socket and a cluster that lead nowhere.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{root}/no-docker.sock")
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": f"https://127.0.0.1:{CLOSED_PORT}"}}],
        "users": [{"name": "nobody", "user": {"token": "fuzz"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(kubeconfig))
    return Sandbox(base=base, root=root)


LOOPBACK_NAMES = {"127.0.0.1", "::1", "localhost", "ip6-localhost"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every name but loopback is unknown: a generated host name never reaches a resolver."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK_NAMES and not str(name).startswith("127."):
            raise socket.gaierror(socket.EAI_NONAME, f"fuzz: {name!r} is not loopback")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


SEED_SQL = [
    "CREATE TABLE trades (id bigserial PRIMARY KEY, account int, amount numeric, created_at timestamptz)",
    "INSERT INTO trades (account, amount, created_at) SELECT g % 7, g, now() - g * interval '1 hour' "
    "FROM generate_series(1, 500) g",
    "CREATE TABLE audit_logs (id bigserial PRIMARY KEY, created_at timestamptz DEFAULT now(), action text)",
    "INSERT INTO audit_logs (action, created_at) SELECT 'INSERT', now() - g * interval '1 minute' "
    "FROM generate_series(1, 100) g",
    'CREATE SCHEMA "Odd Schema"',
    'CREATE TABLE "Odd Schema"."Weird ""Name""" (id int PRIMARY KEY, note text)',
    "INSERT INTO \"Odd Schema\".\"Weird \"\"Name\"\"\" SELECT g, 'n' || g FROM generate_series(1, 50) g",
]


@pytest.fixture
def seeded_pg(pg_server):
    """A database of its own with known rows; dropped at the end."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    name = "fuzz_seed"

    def seed() -> None:
        with psycopg.connect(**pg_server.conninfo(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM RESET ALL")
            conn.execute("SELECT pg_reload_conf()")
            for row in conn.execute("SELECT datname FROM pg_database WHERE datname NOT IN "
                                    "('postgres', 'template0', 'template1')").fetchall():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(row[0])))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(**pg_server.conninfo(name), autocommit=True) as conn:
            for statement in SEED_SQL:
                conn.execute(statement)

    seed()
    info = pg_server.conninfo(name)
    yield info, seed, (lambda: pg_state(pg_server.conninfo(name)) | {"all": pg_state(pg_server.conninfo())})
    seed()


@pytest.fixture
def seeded_redis(redis_server):
    import redis  # noqa: PLC0415

    client = redis.Redis(host=redis_server.host, port=redis_server.port, password=redis_server.password)

    def seed() -> None:
        client.flushall()
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "256mb")
        for db in (0, 1):
            client.execute_command("SELECT", db)
            for i in range(60):
                client.set(f"cache:{i}", "v" * 50)
                client.set(f"session:{i}", "s", ex=3600)
            client.set("weird[key]*", "x")
            client.rpush("big:list", *range(500))
        client.execute_command("SELECT", 0)

    seed()
    yield redis_server, seed, (lambda: redis_state(client))
    client.flushall()
    client.close()


@pytest.fixture
def s3_watch(s3_server, s3_env):
    import boto3  # noqa: PLC0415

    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    bucket = "fuzz-backups"
    if bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=bucket)
    return s3_server, bucket, (lambda: s3_state(client))


def pg_login(info: dict[str, Any]) -> dict[str, Any]:
    return {"login_host": info["host"], "login_port": info["port"], "login_user": info["user"],
            "login_password": info["password"], "database": info["dbname"]}


def s3_options(server, bucket: str) -> dict[str, Any]:
    return {"bucket": bucket, "prefix": "fuzz", "endpoint_url": server.endpoint_url, "region": server.region,
            "access_key": server.access_key, "secret_key": server.secret_key, "validate_certs": False}


def certificate(path: Path, days: int) -> Path:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = path.with_suffix(".key")
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


def old_file(path: Path, text: str = "x\n", days: int = 30) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    then = (datetime.datetime.now() - datetime.timedelta(days=days)).timestamp()
    os.utime(path, (then, then))


# --------------------------------------------------------------------------- the modules that need no service


def test_fuzz_maintenance_window(sandbox, campaign, capsys):
    (sandbox.root / "backups").mkdir()
    # require_backup only when drawn: with enforce, a base that asks for a verified set the sandbox has not got
    # fails every example for that reason, whatever else was made bad.
    target = Target(base={"windows": ALWAYS, "now": INSIDE, "cutoff": "10m", "estimated_duration": "30m"},
                    examples=60,
                    overrides={**fs.window_guard(),
                               ("require_backup",): st.fixed_dictionaries({"root": fs.paths()},
                                                                          optional={"max_age": st.sampled_from(fs.DURATIONS)})})
    fuzz("maintenance_window", target, sandbox, campaign, capsys)


def test_fuzz_host_usage(sandbox, campaign, capsys):
    target = Target(base={"mounts": ["/"]}, examples=25)
    fuzz("host_usage", target, sandbox, campaign, capsys)


def test_fuzz_certificate_expiry(sandbox, campaign, capsys):
    cert = certificate(sandbox.root / "data" / "site.pem", 30)
    target = Target(base={"paths": [str(cert)], "texts": [{"name": "inline", "pem": cert.read_text()}],
                          "min_days": 14},
                    examples=20,
                    overrides={("texts", 0, "pem"): st.sampled_from(
                        ["", "-----BEGIN CERTIFICATE-----\nxx\n", "not pem", "\x00" * 3])})
    fuzz("certificate_expiry", target, sandbox, campaign, capsys)


def test_fuzz_endpoint_check(sandbox, campaign, capsys, http_endpoint):
    port = int(http_endpoint.rsplit(":", 1)[1])
    tcp = st.fixed_dictionaries({"name": st.sampled_from(["api", "", "x" * 70]),
                                 "host": st.sampled_from(fs.HOSTS), "port": st.sampled_from(fs.PORTS + [port])},
                                optional={"bogus": st.just(1)})
    http = st.fixed_dictionaries({"name": st.sampled_from(["count", ""]),
                                  "url": st.sampled_from(fs.URLS + [http_endpoint])},
                                 optional={"status": st.sampled_from(fs.INTS), "count": st.sampled_from(fs.BOOLS),
                                           "max": st.sampled_from(fs.INTS), "contains": st.sampled_from(fs.WEIRD_STRINGS)})
    target = Target(base={"tcp": [{"name": "http", "host": "127.0.0.1", "port": port}],
                          "http": [{"name": "count", "url": http_endpoint, "count": True, "max": 5}], "timeout": 2},
                    examples=30,
                    overrides={("tcp",): st.one_of(st.lists(tcp, max_size=2), st.just("127.0.0.1:80")),
                               ("http",): st.one_of(st.lists(http, max_size=2), st.just([http_endpoint])),
                               ("timeout",): st.sampled_from([0, -1, 0.001, float("nan"), float("inf"), "x", 1e9])})
    fuzz("endpoint_check", target, sandbox, campaign, capsys)


def test_fuzz_log_cleanup(sandbox, campaign, capsys):
    def seed() -> None:
        for name in ("app.log", "app.log.1", "old.gz", "keep.txt"):
            old_file(sandbox.root / "logs" / name)
        (sandbox.root / "logs" / "new.log").write_text("fresh\n")
        old_file(sandbox.root / "backups" / "db.log")

    seed()
    sandbox.resets.append(seed)
    root = st.fixed_dictionaries({"root": fs.paths(), "age_days": st.sampled_from(fs.INTS)},
                                 optional={"patterns": st.lists(st.sampled_from(fs.KEY_PATTERNS), max_size=2),
                                           "recurse": st.sampled_from(fs.BOOLS), "bogus": st.just(1)})
    target = Target(base={"roots": [{"root": f"{fs.ROOT}/logs", "age_days": 7}],
                          "protected_roots": [f"{fs.ROOT}/backups"]},
                    examples=50, overrides={("roots",): st.one_of(st.lists(root, max_size=2), st.just("/var/log"))})
    fuzz("log_cleanup", target, sandbox, campaign, capsys)


def test_fuzz_log_pattern_review(sandbox, campaign, capsys):
    log = sandbox.root / "logs" / "app.log"
    log.parent.mkdir()
    log.write_text("".join(f"2026-11-22T02:{i:02d}:00Z ERROR boom {i}\n" for i in range(30)))
    regexes = st.sampled_from(["ERROR", "(", "[", "a{99999999}", "(?P<x>", "\\", "", ".*", "(?i)error", "\\d+"])
    file_items = st.fixed_dictionaries({"path": fs.paths()},
                                       optional={"rotated": st.one_of(st.sampled_from(fs.BOOLS),
                                                                      st.lists(fs.paths(), max_size=2)),
                                                 "bogus": st.just(1)})
    timestamp = st.fixed_dictionaries({}, optional={
        "format": st.sampled_from(["iso8601", "syslog", "%Y-%m-%d", "%Q", "", "epoch"]),
        "regex": regexes, "timezone": st.sampled_from(fs.TIMEZONES)})
    target = Target(base={"files": [{"path": str(log), "rotated": [f"{log}.*"]}],
                          "patterns": [{"name": "errors", "regex": "ERROR", "max": 100}],
                          "now": "2026-11-22T03:00:00Z"},
                    examples=40,
                    overrides={("files",): st.one_of(st.lists(fs.paths(), max_size=2), st.lists(file_items, max_size=2)),
                               ("patterns", 0, "regex"): regexes, ("timestamp",): timestamp,
                               ("redact",): st.lists(regexes, max_size=2)})
    fuzz("log_pattern_review", target, sandbox, campaign, capsys)


def test_fuzz_maintenance_notify(sandbox, campaign, capsys):
    target = Target(base={"channels": [{"name": "mail", "type": "smtp", "host": "127.0.0.1", "port": CLOSED_PORT,
                                        "to": ["ops@example.test"], "from": "bot@example.test", "starttls": False,
                                        "timeout": 2},
                                       {"name": "hook", "type": "webhook", "url": f"http://127.0.0.1:{CLOSED_PORT}/x",
                                        "timeout": 2}],
                          "subject": "weekly", "text": "done", "when_check_mode": "skip"},
                    examples=20)
    fuzz("maintenance_notify", target, sandbox, campaign, capsys)


def test_fuzz_dependency_audit(sandbox, campaign, capsys):
    # A stand-in auditor: the real ones would ask PyPI or npm's registry, which is not loopback.
    auditor = sandbox.root / "bin" / "fake-audit"
    auditor.parent.mkdir()
    auditor.write_text('#!/bin/sh\necho \'{"dependencies": [], "fixes": []}\'\n')
    auditor.chmod(0o755)
    (sandbox.root / "requirements.txt").write_text("requests==2.31.0\n")
    target = Target(base={"audits": [{"name": "tools", "tool": "pip-audit", "path": f"{fs.ROOT}/requirements.txt",
                                      "executable": str(auditor), "args": []}],
                          "allowed": [{"id": "PYSEC-0", "reason": "fuzz", "until": "2099-01-01"}], "timeout": 10},
                    examples=10, keep=("executable", "environment"),
                    overrides={("audits", 0, "args"): st.lists(st.sampled_from(fs.WEIRD_STRINGS), max_size=2),
                               ("max_findings",): st.sampled_from([{}, {"critical": -1}, {"high": "x"},
                                                                   {"bogus": 1}, {"critical": 0.5}, "none"])})
    fuzz("dependency_audit", target, sandbox, campaign, capsys)


# --------------------------------------------------------------------------- Docker and Kubernetes: nowhere


def test_fuzz_docker_cleanup(sandbox, campaign, capsys):
    target = Target(base={"docker_host": f"unix://{fs.ROOT}/no-docker.sock", "older_than": "24h",
                          "unused_images": True, "volumes": ["fuzz_data"], "timeout": 5},
                    examples=20, keep=("docker_host",), unreachable=("cannot reach the Docker engine",),
                    overrides={("blue_green",): st.lists(st.fixed_dictionaries(
                        {"app": st.sampled_from(fs.IDENTIFIERS)},
                        optional={"project_dir": fs.paths(), "state_file": fs.paths(), "image": st.sampled_from(fs.VERSIONS),
                                  "bogus": st.just(1)}), max_size=2)})
    fuzz("docker_cleanup", target, sandbox, campaign, capsys)


def test_fuzz_docker_security_review(sandbox, campaign, capsys):
    target = Target(base={"docker_host": f"unix://{fs.ROOT}/no-docker.sock", "project": "vitalstream", "timeout": 5,
                          "allowed": [{"container": "nginx", "checks": ["privileged"], "reason": "fuzz"}]},
                    examples=20, keep=("docker_host",), unreachable=("cannot reach the Docker engine",),
                    overrides={("allowed",): st.lists(st.fixed_dictionaries(
                        {"container": st.sampled_from(fs.WEIRD_STRINGS)},
                        optional={"checks": st.one_of(st.sampled_from(fs.WEIRD_STRINGS), st.lists(st.sampled_from(
                            ["privileged", "root", "nope", ""]), max_size=2)), "reason": st.sampled_from(fs.WEIRD_STRINGS),
                            "bogus": st.just(1)}), max_size=2)})
    fuzz("docker_security_review", target, sandbox, campaign, capsys)


def test_fuzz_k8s_access_review(sandbox, campaign, capsys):
    target = Target(base={"kubeconfig": f"{fs.ROOT}/kubeconfig", "request_timeout": 2, "namespaces": ["stream"],
                          "service_accounts": [{"name": "stream/api", "namespaces": ["stream"],
                                                "expected": [{"verbs": ["get"], "resources": ["pods"]}]}]},
                    examples=15, keep=("kubeconfig",), unreachable=("cannot reach the Kubernetes API server",))
    fuzz("k8s_access_review", target, sandbox, campaign, capsys)


def test_fuzz_k8s_secret_rotate(sandbox, campaign, capsys):
    target = Target(base={"kubeconfig": f"{fs.ROOT}/kubeconfig", "request_timeout": 2, "namespace": "stream",
                          "name": "db-credentials", "data": {"password": "fuzz-secret"}, "windows": ALWAYS,
                          "now": INSIDE, "restart_deployments": ["api"], "restart_timeout": 5},
                    examples=15, keep=("kubeconfig",), overrides=fs.window_guard(),
                    unreachable=("cannot reach the Kubernetes API server",))
    fuzz("k8s_secret_rotate", target, sandbox, campaign, capsys)


def test_fuzz_blue_green_deploy(sandbox, campaign, capsys):
    (sandbox.root / "compose").mkdir()
    (sandbox.root / "compose" / "docker-compose.yml").write_text("version: '3'\nservices: {}\n")
    checks = st.lists(st.fixed_dictionaries({}, optional={"name": st.sampled_from(fs.WEIRD_STRINGS),
                                                          "url": st.sampled_from(fs.URLS),
                                                          "path": st.sampled_from(["/health", "", "no-slash"]),
                                                          "status": st.sampled_from(fs.INTS),
                                                          "bogus": st.just(1)}), max_size=2)
    target = Target(base={"state": "deployed", "platform": "compose", "app": "api", "image": "api", "version": "1.2.3",
                          "ready_timeout": 5, "windows": ALWAYS, "now": INSIDE, "keep_previous_for": "1h",
                          "smoke_checks": [{"name": "health", "path": "/health"}],
                          "compose": {"project_dir": f"{fs.ROOT}/compose", "compose_file": f"{fs.ROOT}/compose/docker-compose.yml",
                                      "ports": {"blue": 18081, "green": 18082},
                                      "nginx_upstream_file": f"{fs.ROOT}/compose/upstream.conf",
                                      "nginx_binary": "/nonexistent/nginx", "nginx_conf": f"{fs.ROOT}/compose/nginx.conf",
                                      "front_url": f"http://127.0.0.1:{CLOSED_PORT}/", "docker_host": f"unix://{fs.ROOT}/no-docker.sock",
                                      "state_file": f"{fs.ROOT}/compose/state.json", "service": "api"},
                          "kubernetes": {"kubeconfig": f"{fs.ROOT}/kubeconfig", "namespace": "stream"}},
                    examples=20, keep=("docker_host", "kubeconfig", "nginx_binary", "migration", "nginx_conf"),
                    unreachable=("cannot reach the Docker engine", "cannot reach the Kubernetes API server"),
                    overrides={**fs.window_guard(), ("smoke_checks",): checks, ("post_checks",): checks,
                               ("compose", "ports"): st.sampled_from([{}, {"blue": 0, "green": 65536}, {"blue": "x"},
                                                                      {"blue": 18081}, {"red": 1, "green": 2},
                                                                      {"blue": 18081, "green": 18081}])})
    fuzz("blue_green_deploy", target, sandbox, campaign, capsys)


def test_fuzz_certificate_renew(sandbox, campaign, capsys):
    cert = certificate(sandbox.root / "data" / "site.pem", 200)
    (sandbox.root / "webroot").mkdir()
    (sandbox.root / "nginx.conf").write_text("events {}\n")
    account = sandbox.root / "data" / "account.key"
    account.write_bytes(cert.with_suffix(".key").read_bytes())
    target = Target(base={"certificates": [{"name": "site", "domains": ["fuzz.test"], "cert_path": str(cert),
                                            "key_path": str(cert.with_suffix(".key"))}],
                          "renew_before_days": 30, "kubeconfig": f"{fs.ROOT}/kubeconfig", "request_timeout": 2,
                          "acme": {"directory_url": f"https://127.0.0.1:{CLOSED_PORT}/dir", "account_key_path": str(account),
                                   "webroot": f"{fs.ROOT}/webroot", "timeout": 5},
                          "nginx": {"binary": "/nonexistent/nginx", "conf": f"{fs.ROOT}/nginx.conf",
                                    "verify": {"address": f"127.0.0.1:{CLOSED_PORT}", "timeout": 2}},
                          "windows": ALWAYS, "now": INSIDE},
                    examples=20, keep=("kubeconfig", "binary", "command"),
                    overrides={**fs.window_guard(),
                               ("certificates", 0, "domains"): st.lists(st.sampled_from(
                                   ["fuzz.test", "", "*.fuzz.test", "bad domain", "x" * 300, "ünï.test", "127.0.0.1"]),
                                   max_size=2)})
    fuzz("certificate_renew", target, sandbox, campaign, capsys)


# --------------------------------------------------------------------------- PostgreSQL, Redis, S3, Prometheus


def pg_target_overrides() -> dict[tuple, st.SearchStrategy]:
    # libpq resolves names itself, outside Python's socket module: loopback names and socket directories only.
    return {("login_host",): st.sampled_from(fs.PG_HOSTS)}


def test_fuzz_pg_maintenance(sandbox, seeded_pg, campaign, capsys):
    info, seed, state = seeded_pg
    sandbox.snapshots.append(state)
    sandbox.resets.append(seed)
    index = st.fixed_dictionaries(
        {"name": st.sampled_from(fs.IDENTIFIERS), "table": st.sampled_from(fs.IDENTIFIERS)},
        optional={"columns": st.lists(st.sampled_from(fs.IDENTIFIERS), max_size=2),
                  "expression": st.sampled_from(["lower(note)", "1/0", "); DROP TABLE trades; --"]),
                  "where": st.sampled_from(["id > 0", "true; DROP TABLE trades", ""]),
                  "method": st.sampled_from(["btree", "hash", "gist", "nope", ""])})
    indexes = st.lists(index, max_size=2)
    target = Target(base={**pg_login(info), "operation": "analyze", "tables": ["trades"], "windows": ALWAYS,
                          "now": INSIDE, "lock_timeout": 2000, "statement_timeout": 20000},
                    examples=30,
                    overrides={**pg_target_overrides(), **fs.window_guard(), ("indexes",): indexes,
                               ("settings",): st.sampled_from([{}, {"work_mem": "64MB"}, {"work_mem": "-1"},
                                                               {"no_such_setting": "1"}, {"work_mem": "64MB'; DROP"},
                                                               {"shared_buffers": "1TB"}, "work_mem=1"])})
    fuzz("pg_maintenance", target, sandbox, campaign, capsys)


def test_fuzz_pg_compliance(sandbox, seeded_pg, campaign, capsys):
    info, seed, state = seeded_pg
    sandbox.snapshots.append(state)
    sandbox.resets.append(seed)
    target = Target(base={**pg_login(info),
                          "retention": [{"name": "trades-7y", "table": "trades", "column": "created_at",
                                         "max_age": "2555d", "expect": "kept"}],
                          "audit": {"table": "audit_logs", "time_column": "created_at", "verb_column": "action",
                                    "id_column": "id", "hours": 24},
                          "lock_timeout": 2000, "statement_timeout": 10000},
                    examples=25, overrides=pg_target_overrides())
    fuzz("pg_compliance", target, sandbox, campaign, capsys)


def test_fuzz_redis_memory_guard(sandbox, seeded_redis, campaign, capsys):
    server, seed, state = seeded_redis
    sandbox.snapshots.append(state)
    sandbox.resets.append(seed)
    target = Target(base={"login_host": server.host, "login_port": server.port, "login_password": server.password,
                          "operation": "evict", "patterns": ["cache:*"], "max_ratio": 0.8, "target_ratio": 0.7,
                          "windows": ALWAYS, "now": INSIDE, "socket_timeout": 5, "connect_timeout": 2,
                          "bgsave_timeout": 5},
                    examples=30,
                    overrides={**fs.window_guard(),
                               ("config",): st.sampled_from([{}, {"maxmemory-policy": "allkeys-lru"},
                                                             {"maxmemory-policy": "nope"}, {"maxmemory": "-1"},
                                                             {"no-such": "1"}, {"maxmemory": "10XB"},
                                                             {"dir": "/"}, {"requirepass": ""}, "maxmemory 1"])})
    fuzz("redis_memory_guard", target, sandbox, campaign, capsys)


def test_fuzz_service_latency(sandbox, seeded_pg, seeded_redis, campaign, capsys, http_endpoint):
    info, _seed_pg, pg_snapshot = seeded_pg
    server, _seed_redis, redis_snapshot = seeded_redis
    sandbox.snapshots += [pg_snapshot, redis_snapshot]
    target = Target(base={"probes": 2, "interval": 0, "timeout": 2,
                          "postgres": {**pg_login(info), "connect_timeout": 2},
                          "redis": {"login_host": server.host, "login_port": server.port,
                                    "login_password": server.password, "socket_timeout": 2, "connect_timeout": 2},
                          "http": [{"name": "front", "url": http_endpoint}]},
                    examples=15,
                    overrides={("postgres", "login_host"): st.sampled_from(fs.PG_HOSTS),
                               ("probes",): st.sampled_from([0, -1, 1, 3, 2 ** 31, "x", 1.5]),
                               ("interval",): st.sampled_from([0, -1, 0.01, float("nan"), float("inf"), 1e12]),
                               ("timeout",): st.sampled_from([0, -1, 0.5, float("nan"), float("inf"), 1e16])})
    fuzz("service_latency", target, sandbox, campaign, capsys)


@pytest.fixture
def backup_sandbox(sandbox, seeded_pg, s3_watch, capsys):
    """A verified backup set of the seeded database under ROOT/backups, the services it touches watched."""
    from ansible_collections.streamops.maintenance.plugins.modules import backup_verify, pg_backup  # noqa: PLC0415

    info, seed, pg_snapshot = seeded_pg
    server, bucket, s3_snapshot = s3_watch
    sandbox.snapshots += [pg_snapshot, s3_snapshot]
    sandbox.resets.append(seed)
    root = sandbox.root / "backups"
    backup_args = {**pg_login(info), "backup_root": str(root), "name": "fuzzdb", "parts": ["full", "critical_data"],
                   "critical_tables": ["public.trades"]}
    backup, _reached = run_main(pg_backup, backup_args, capsys)
    assert not backup.get("failed"), backup
    verify_args = {**pg_login(info), "path": backup["path"], "restore_test": True, "scratch_database": "fuzz_scratch"}
    verified, _reached = run_main(backup_verify, verify_args, capsys)
    assert not verified.get("failed") and verified.get("verified"), verified
    kept = {p.name for p in root.iterdir()}

    def drop_new_sets() -> None:
        """Sets a successful (or half-failed) example wrote, so the next one does not meet them (one set a second)."""
        for path in root.iterdir():
            if path.name not in kept:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()

    sandbox.resets.append(drop_new_sets)
    return sandbox, info, server, bucket, backup


def test_fuzz_pg_backup(backup_sandbox, campaign, capsys):
    sandbox, info, server, bucket, _backup = backup_sandbox
    target = Target(base={**pg_login(info), "backup_root": f"{fs.ROOT}/backups", "name": "fuzzdb", "parts": ["full"],
                          "critical_tables": ["public.trades"], "s3": s3_options(server, bucket),
                          "retention": {"keep_last": 2, "keep_daily": 1, "keep_weekly": 0, "keep_monthly": 0}},
                    examples=8, keep=("pg_bin_dir",), reset_always=True,
                    overrides={**pg_target_overrides(),
                               ("redis",): st.sampled_from([{"login_host": "127.0.0.1", "login_port": CLOSED_PORT}])})
    fuzz("pg_backup", target, sandbox, campaign, capsys)


def test_fuzz_backup_verify(backup_sandbox, campaign, capsys):
    sandbox, info, server, bucket, backup = backup_sandbox
    target = Target(base={**pg_login(info), "path": backup["path"], "max_age": "1d", "restore_test": False,
                          "scratch_database": "fuzz_scratch", "sql_checks": [{"name": "trades", "sql": "SELECT count(*) FROM trades", "min": 1}]},
                    examples=10, keep=("pg_bin_dir",),
                    overrides={**pg_target_overrides(),
                               ("sql_checks", 0, "sql"): st.sampled_from(["SELECT count(*) FROM trades", "DROP TABLE trades",
                                                                          "SELECT 1/0", "", "SELECT 'x'", "SELEC"]),
                               ("s3",): st.sampled_from([s3_options(server, bucket), {"bucket": ""},
                                                        {**s3_options(server, bucket), "bucket": "no-such-bucket"}])})
    fuzz("backup_verify", target, sandbox, campaign, capsys)


def test_fuzz_pg_restore(backup_sandbox, campaign, capsys):
    sandbox, info, server, bucket, backup = backup_sandbox
    target = Target(base={**pg_login(info), "backup_root": f"{fs.ROOT}/backups", "name": "fuzzdb",
                          "critical_tables": ["public.trades"], "windows": ALWAYS, "now": INSIDE,
                          "docker_host": f"unix://{fs.ROOT}/no-docker.sock", "kubeconfig": f"{fs.ROOT}/kubeconfig",
                          "writers": {"compose": {"project": "fuzz", "services": ["api"], "stop_timeout": 1},
                                      "start_timeout": 5},
                          "safety_backup_root": f"{fs.ROOT}/safety"},
                    examples=10, keep=("pg_bin_dir", "docker_host", "kubeconfig"),
                    unreachable=("cannot reach the Docker engine",),
                    overrides={**pg_target_overrides(), **fs.window_guard(),
                               ("writers",): st.sampled_from([{}, {"compose": {}}, {"kubernetes": {"namespace": ""}},
                                                              {"compose": {"project": "x", "services": "api"}},
                                                              {"bogus": 1}, "api"])})
    fuzz("pg_restore", target, sandbox, campaign, capsys)


def test_fuzz_pg_dr_test(backup_sandbox, pg_dr_server, campaign, capsys):
    sandbox, info, server, bucket, backup = backup_sandbox
    dr = pg_dr_server.conninfo()
    target = Target(base={**pg_login(info), "backup_root": f"{fs.ROOT}/backups", "name": "fuzzdb",
                          "target": {"login_host": dr["host"], "login_port": dr["port"], "login_user": dr["user"],
                                     "login_password": dr["password"], "database": "postgres", "sslmode": "require"},
                          "target_database": "fuzz_dr", "rto_target": "10m", "rpo_target": "1d"},
                    examples=8, keep=("pg_bin_dir",),
                    overrides={**pg_target_overrides(), ("target", "login_host"): st.sampled_from(fs.PG_HOSTS)})
    sandbox.snapshots.append(lambda: pg_state(dr)["databases"])
    fuzz("pg_dr_test", target, sandbox, campaign, capsys)


def test_fuzz_prometheus_rules(sandbox, prometheus_server, campaign, capsys):
    rules = "groups:\n  - name: fuzz\n    rules:\n      - alert: Up\n        expr: up == 0\n"
    files = st.lists(st.fixed_dictionaries({"name": st.sampled_from(["fuzz.yml", "", "../escape.yml", "x" * 300, "a/b.yml",
                                                                     "ü.yml", "rules"])},
                                           optional={"content": st.sampled_from([rules, "", "groups: [", "not: rules",
                                                                                 rules.replace("up == 0", "up ==")]),
                                                     "src": fs.paths()}), max_size=2)
    sandbox.snapshots.append(lambda: tree(prometheus_server.rules_dir))
    target = Target(base={"url": prometheus_server.url, "rules_dir": str(prometheus_server.rules_dir),
                          "rule_files": [{"name": "fuzz.yml", "content": rules}], "reload": "lifecycle", "timeout": 5,
                          "pid_file": str(prometheus_server.pid_file)},
                    examples=15, keep=("promtool",), overrides={("rule_files",): files})
    fuzz("prometheus_rules", target, sandbox, campaign, capsys)


def test_fuzz_prometheus_tsdb(sandbox, prometheus_server, campaign, capsys):
    sandbox.snapshots.append(lambda: sorted(p.name for p in (prometheus_server.data_dir / "snapshots").glob("*")))
    target = Target(base={"url": prometheus_server.url, "data_dir": str(prometheus_server.data_dir),
                          "operation": "report", "timeout": 5},
                    examples=15, keep=("promtool",))
    fuzz("prometheus_tsdb", target, sandbox, campaign, capsys)


def test_fuzz_maintenance_lock(sandbox, campaign, capsys):
    locks = sandbox.root / "locks"
    locks.mkdir()
    target = Target(base={"name": "vitalstream", "state": "acquired", "run_id": "fuzz-run-1", "path": f"{fs.ROOT}/locks",
                          "ttl": "6h", "holder": {"maintenance_id": "MAINT-1", "user": "ops", "controller": "laptop"}},
                    # The lock directory is the sandbox's: dropped or replaced, the module's default would leave a
                    # lock in this machine's /var/lib/streamops-maintenance/locks that refuses a later real run.
                    examples=40, keep=("path",))
    sandbox.resets.append(lambda: [p.unlink() for p in locks.glob("*")])
    fuzz("maintenance_lock", target, sandbox, campaign, capsys)
