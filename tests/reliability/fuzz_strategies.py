"""hypothesis strategies for the bad-input class of the campaign: option values around a module's argument_spec.

Values are drawn per option from what the option is (its type, its choices, and what its name says it holds:
an identifier, a key pattern, a path, a duration, a port...), mixing valid values with operators' typos so
that most examples pass AnsibleModule's type checks and reach the collection's own validation.

Paths are written with ``@ROOT@`` (the example's sandbox) and replaced when the example runs: no generated
path points outside the test's temporary directory, except well-known non-existent ones. Host names are
loopback literals or strings no resolver is asked about (tests/reliability/test_fuzz_modules.py refuses
every other name in-process), so no example sends traffic off 127.0.0.1.
"""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ROOT = "@ROOT@"

IDENTIFIERS = [
    "trades", "public.trades", "Trades", '"trades"', "trades; DROP TABLE trades", "trades'--", "tr ades",
    "tradés", "交易", "x" * 64, "x" * 200, "", " ", "public.", ".trades", "a.b.c", "%s", "{}", "$1",
    "trades\ttab", "trades\n", "pg_catalog.pg_class", "information_schema.tables", "-1", "0",
]
KEY_PATTERNS = ["cache:*", "*", "", "[", "\\", "session:[a-", "?", "**", "cache:\\*", "a" * 300, "ключ:*",
                " ", "cache:{*}", "\x7f"]
DURATIONS = ["1h", "30m", "7d", "-1h", "0", "0s", "1e9d", "10XB", "1.5h", "h", "", " ", "1h30", "P1D", "99999999999d",
             "-0", "nan", "inf", "1 hour", "24h0m", "1y"]
SIZES = ["1GB", "512mb", "10XB", "-1GB", "0", "", "1e30TB", "1.5GB", "GB", "100%", "nan"]
RRULES = ["FREQ=DAILY;BYHOUR=2;BYMINUTE=0", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", "FREQ=SECONDLY", "FREQ=DAILY;COUNT=0",
          "FREQ=DAILY;INTERVAL=999999999", "FREQ=MINUTELY;INTERVAL=0", "FREQ=", "RRULE:FREQ=DAILY", "", "garbage",
          "FREQ=DAILY;BYHOUR=25", "FREQ=WEEKLY;BYDAY=XX", "FREQ=DAILY;UNTIL=19990101T000000Z",
          "DTSTART:20260101T020000Z\nRRULE:FREQ=DAILY", "FREQ=YEARLY;BYYEARDAY=400", "FREQ=DAILY;BYSETPOS=0",
          "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2", "FREQ=DAILY;COUNT=-1"]
VERSIONS = ["1.2.3", "v2", "latest", "", " ", "1.2.3 ; rm -rf /", "../1", "a" * 200, "版本", "1.2.3\n", "-1", "None"]
TIMEZONES = ["UTC", "Europe/London", "America/New_York", "Mars/Olympus", "", "+02:00", "../../etc/passwd", "utc",
             "EST5EDT", "Etc/GMT+14"]
NOWS = ["2026-11-22T02:30:00Z", "2026-11-24T15:00:00Z", "2026-02-30T00:00:00Z", "yesterday", "", "2026-11-22",
        "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-11-22T02:30:00+25:00", "1700000000"]
PORTS: list[Any] = [0, 65536, -1, 1, 70000, "5432x", "", "http", 3.5, 2 ** 40]
# Loopback literals, a socket directory that does not exist, and strings a resolver must never see.
HOSTS = ["127.0.0.1", "localhost", "::1", "", "/nonexistent/socket-dir", "127.0.0.1:5432", "bad host name",
         "-h", "host\nname", "ホスト", "a" * 300]
# libpq resolves names itself (not through Python's socket module): only names it answers without DNS.
PG_HOSTS = ["127.0.0.1", "localhost", "::1", "/nonexistent/socket-dir"]
THRESHOLDS: list[Any] = [0, 0.5, 1, 1.5, 100, 150, -1, -0.5, float("nan"), float("inf"), "nan", "50%", "", 1e308]
INTS: list[Any] = [0, 1, -1, 2, 10, 2 ** 31, -2 ** 31, 2 ** 63, "10", "ten", "", 1.5, "1e3", [1], True]
FLOATS: list[Any] = [0.0, 0.1, 1.0, -1.0, 1e9, float("nan"), float("inf"), "1.5", "x", "", [1.0]]
BOOLS: list[Any] = [True, False, "yes", "no", "maybe", 2, "", None]
URLS = ["http://127.0.0.1:1", "http://127.0.0.1:9/x", "", "not a url", "ftp://127.0.0.1/", "http://[::1", "http://",
        "127.0.0.1:9090", "http://127.0.0.1:0", "https://127.0.0.1:1/"]
WEIRD_STRINGS = ["", " ", "x" * 300, "naïve", "quote'\"", "semi;colon", "new\nline", "null\\0", "%(name)s", "{{ x }}",
                 "-rf", "*"]


def paths() -> st.SearchStrategy[str]:
    """Paths around the sandbox: relative, ``..``, non-existent, a file where a directory is expected, odd bytes."""
    return st.sampled_from([
        f"{ROOT}/data", f"{ROOT}/missing/dir", f"{ROOT}/a-file.txt", f"{ROOT}/data/../data", f"{ROOT}/..",
        f"{ROOT}/../..", "relative/dir", ".", "..", "", f"{ROOT}/with space", f"{ROOT}/ünïcode", f"{ROOT}/semi;colon",
        f"{ROOT}/star*", f"{ROOT}/new\nline", "/nonexistent/streamops-fuzz", f"{ROOT}/" + "x" * 300,
        f"{ROOT}/data/" + "d/" * 40,
    ])


def _choices(choices: list[Any]) -> st.SearchStrategy[Any]:
    outside = ["", "ALL", "none", "drop", " " + str(choices[0]), str(choices[0]).upper(), 1, None]
    return st.one_of(st.sampled_from(list(choices)), st.sampled_from(outside))


DURATION_WORDS = ("max_age", "older_than", "within", "after", "duration", "cutoff", "keep_previous_for", "rto", "rpo",
                  "until", "incomplete", "ttl")


def by_name(name: str, kind: str | None) -> st.SearchStrategy[Any] | None:
    """The family of bad values an option's name says it holds, or None."""
    lname = name.lower()
    if "password" in lname:
        return st.sampled_from(SECRETS)
    if lname in ("rrule",):
        return st.sampled_from(RRULES)
    if "timezone" in lname:
        return st.sampled_from(TIMEZONES)
    if lname == "now":
        return st.sampled_from(NOWS)
    if "port" in lname and kind in (None, "int", "str", "raw"):
        return st.sampled_from(PORTS)
    if lname in ("login_host", "host", "address", "docker_host"):
        return st.sampled_from(HOSTS)
    if "url" in lname:
        return st.sampled_from(URLS)
    if "pattern" in lname:
        return st.sampled_from(KEY_PATTERNS)
    if any(word in lname for word in ("ratio", "percent", "threshold")):
        return st.sampled_from(THRESHOLDS)
    if kind in (None, "str") and any(word in lname for word in DURATION_WORDS):
        return st.sampled_from(DURATIONS)
    if lname in ("budget",):
        return st.sampled_from(SIZES)
    if any(word in lname for word in ("version", "image", "tag")):
        return st.sampled_from(VERSIONS)
    if kind == "path" or any(lname.endswith(word) for word in ("_dir", "_root", "_file", "_path", "path", "root")):
        return paths()
    if any(word in lname for word in ("table", "database", "schema", "column", "scratch", "index")):
        return st.sampled_from(IDENTIFIERS)
    return None


SECRETS = ["", "wrong-password", "naïve pässword", "x" * 300, "quote'\"", "pass word"]


def for_option(name: str, spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for one option of an argument_spec (a scalar option or a list of scalars)."""
    kind = spec.get("type", "str")
    if spec.get("no_log") and kind == "str":
        # Never digits alone: Ansible masks a no_log value wherever it appears, numbers of the result included.
        return st.sampled_from(SECRETS)
    if spec.get("choices"):
        base = _choices(list(spec["choices"]))
        if kind == "list":
            return st.one_of(st.lists(base, max_size=3), base)
        return base
    named = by_name(name, kind if kind != "list" else spec.get("elements"))
    if kind == "list":
        element = for_option(name, {"type": spec.get("elements", "str")}) if named is None else named
        # A scalar where a list is expected, and a list of odd elements.
        return st.one_of(st.lists(element, max_size=3), element, st.just([]))
    if named is not None:
        return st.one_of(named, st.sampled_from(WEIRD_STRINGS[:3])) if kind in ("str", "path") else named
    if kind == "int":
        return st.one_of(st.sampled_from(INTS), st.integers(-10, 100000))
    if kind == "float":
        return st.one_of(st.sampled_from(FLOATS), st.floats(allow_nan=True, allow_infinity=True))
    if kind == "bool":
        return st.sampled_from(BOOLS)
    if kind == "dict":
        return st.one_of(st.just({}), st.just("not a dict"), st.just([{"a": 1}]),
                         st.dictionaries(st.sampled_from(["a", "name", "", "x" * 70]), st.sampled_from(WEIRD_STRINGS),
                                         max_size=2))
    if kind == "raw":
        return st.one_of(st.sampled_from(WEIRD_STRINGS), st.sampled_from(INTS), st.just({}), st.just([]))
    return st.one_of(st.sampled_from(WEIRD_STRINGS), st.text(max_size=20), st.sampled_from(["1", "yes", "0"]))


def windows() -> st.SearchStrategy[list[dict[str, Any]]]:
    """The window_guard ``windows`` option: a valid always-open window or one with a bad rrule/duration/zone."""
    window = st.fixed_dictionaries({
        "name": st.sampled_from(["always", "weekly", "", "x" * 70]),
        "rrule": st.sampled_from(RRULES[:2] + RRULES),
        "duration": st.sampled_from(["23h59m", "2h"] + DURATIONS),
    }, optional={"timezone": st.sampled_from(TIMEZONES), "start": st.sampled_from(NOWS), "bogus": st.just(1)})
    return st.one_of(st.lists(window, max_size=2), st.just("FREQ=DAILY"), st.just([["not", "a", "dict"]]))


def blackouts() -> st.SearchStrategy[Any]:
    blackout = st.fixed_dictionaries({"start": st.sampled_from(NOWS), "end": st.sampled_from(NOWS)},
                                     optional={"reason": st.sampled_from(WEIRD_STRINGS),
                                               "timezone": st.sampled_from(TIMEZONES)})
    return st.one_of(st.lists(blackout, max_size=2), st.just(["2026-11-22"]), st.just([1]))


def emergency() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({}, optional={key: st.sampled_from(WEIRD_STRINGS + ["ops", "INC-1"])
                                               for key in ("approved_by", "reason", "ticket")})


def window_guard() -> dict[str, st.SearchStrategy[Any]]:
    """Overrides for the options every disruptive module shares (window.window_guard_argument_spec)."""
    return {"windows": windows(), "blackouts": blackouts(), "emergency": emergency(),
            "window": st.sampled_from(["always", "weekly", "", "nope"])}
