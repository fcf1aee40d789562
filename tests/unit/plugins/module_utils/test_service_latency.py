"""service_latency: nearest-rank percentiles, judging, the probe loop and the checks on bad input (no service)."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.doc_fragments.postgres import ModuleDocFragment as PgFragment
from ansible_collections.streamops.maintenance.plugins.doc_fragments.redis import ModuleDocFragment as RedisFragment
from ansible_collections.streamops.maintenance.plugins.module_utils import pg, redis_conn, service_latency
from ansible_collections.streamops.maintenance.plugins.module_utils.records import record_problems, result_problems
from ansible_collections.streamops.maintenance.plugins.module_utils.service_latency import (
    LatencyError,
    Limits,
    ProbeError,
    Remedies,
    Samples,
    Target,
    judge,
    nearest_rank,
    parse_http,
    probe,
    run_service_latency,
    shown_url,
)
from ansible_collections.streamops.maintenance.plugins.modules import service_latency as module

REMEDIES = Remedies(slow_request="slow request", slow_connect="slow connect", unreachable="unreachable")
LIMITS = Limits(max_p95_ms=50, max_connect_p95_ms=250)


def params(**changes):
    base = {"probes": 5, "interval": 0.0, "timeout": 5.0, "postgres": None, "redis": None, "http": [],
            "postgres_max_p95_ms": 50.0, "postgres_max_connect_p95_ms": 250.0,
            "redis_max_p95_ms": 10.0, "redis_max_connect_p95_ms": 50.0}
    base.update(changes)
    return base


# --------------------------------------------------------------------------- percentiles


def test_nearest_rank_with_five_samples_p50_is_the_third_and_p95_the_max():
    samples = [9.0, 1.0, 5.0, 3.0, 7.0]
    assert nearest_rank(samples, 50) == 5.0
    assert nearest_rank(samples, 95) == 9.0
    assert nearest_rank(samples, 100) == 9.0


def test_nearest_rank_leaves_the_slowest_out_from_twenty_samples():
    samples = [float(n) for n in range(1, 21)]
    assert nearest_rank(samples, 95) == 19.0  # ceil(0.95 * 20) = 19
    assert nearest_rank(samples[:19], 95) == 19.0  # ceil(0.95 * 19) = 19: still the max
    assert nearest_rank(samples, 50) == 10.0
    assert nearest_rank([4.2], 50) == nearest_rank([4.2], 95) == 4.2


@pytest.mark.parametrize("samples, percent", [([], 50), ([1.0], 0), ([1.0], 101)])
def test_nearest_rank_refuses_what_has_no_answer(samples, percent):
    with pytest.raises(ValueError):
        nearest_rank(samples, percent)


# --------------------------------------------------------------------------- judging


def test_within_thresholds_is_ok_with_every_figure():
    samples = Samples(connect_ms=[10.0, 12.0, 11.0, 9.0, 30.0], request_ms=[0.5, 0.4, 0.6, 0.3, 2.0])
    record = judge("postgres h:5432/db", "SELECT 1", samples, LIMITS, REMEDIES, probes=5, seconds=0.1)
    assert record_problems(record) == []
    assert record["status"] == "ok" and record["action"] == "latency"
    assert record["after"] == {"connect_p50_ms": 11.0, "connect_p95_ms": 30.0, "connect_max_ms": 30.0,
                               "request_p50_ms": 0.5, "request_p95_ms": 2.0, "max_ms": 2.0, "probes": 5,
                               "threshold_ms": 50, "connect_threshold_ms": 250}
    assert record["detail"] == ("SELECT 1 p50 0.50 ms, p95 2.00 ms (limit 50 ms); connect p50 11.00 ms, "
                                "p95 30.00 ms (limit 250 ms); 5 of 5 probe(s)")


def test_a_slow_request_is_a_breach_naming_the_figure_and_the_threshold():
    samples = Samples(connect_ms=[1.0] * 5, request_ms=[1.0, 1.0, 1.0, 1.0, 60.5])
    record = judge("redis h:6379", "PING", samples, LIMITS, REMEDIES, probes=5)
    assert record["status"] == "breach"
    assert record["detail"].startswith("PING p95 60.50 ms is over 50 ms (")
    assert record["after"]["remedy"] == "slow request"


def test_a_p95_equal_to_the_threshold_is_still_ok():
    record = judge("x", "GET", Samples(connect_ms=[250.0], request_ms=[50.0]), LIMITS, REMEDIES, probes=1)
    assert record["status"] == "ok"


def test_a_slow_connect_is_a_breach_of_its_own_threshold():
    samples = Samples(connect_ms=[300.0] * 5, request_ms=[1.0] * 5)
    record = judge("x", "SELECT 1", samples, LIMITS, REMEDIES, probes=5)
    assert record["status"] == "breach"
    assert record["detail"].startswith("connect p95 300.00 ms is over 250 ms (")
    assert record["after"]["remedy"] == "slow connect"


def test_no_answer_is_a_breach_with_the_error_and_the_figures_so_far():
    samples = Samples(connect_ms=[5.0, 6.0], request_ms=[1.0, 2.0], error="connection reset")
    record = judge("x", "PING", samples, LIMITS, REMEDIES, probes=5)
    assert record["status"] == "breach" and record_problems(record) == []
    assert record["detail"].startswith("no answer (2 of 5 probe(s) answered): connection reset; so far PING p50")
    assert record["after"]["probes"] == 2 and record["after"]["remedy"] == "unreachable"
    nothing = judge("x", "PING", Samples(error="refused"), LIMITS, REMEDIES, probes=5)
    assert nothing["detail"] == "no answer (0 of 5 probe(s) answered): refused"
    assert nothing["after"]["request_p95_ms"] is None and nothing["after"]["probes"] == 0


# --------------------------------------------------------------------------- the probe loop


class FakeService:
    """Connections numbered from 1; each open and ask advances the clock by the next duration given."""

    def __init__(self, durations, fail_at=None):
        self.durations = list(durations)
        self.now = 0.0
        self.opened, self.closed, self.asked_on, self.slept = [], [], [], []
        self.fail_at = fail_at

    def clock(self):
        return self.now

    def _spend(self):
        self.now += self.durations.pop(0) / 1000

    def open(self):
        if self.fail_at == len(self.opened) + 1:
            raise ProbeError("refused")
        self._spend()
        self.opened.append(len(self.opened) + 1)
        return self.opened[-1]

    def ask(self, connection):
        self._spend()
        self.asked_on.append(connection)

    def target(self, holds=True):
        return Target(name="fake", request_label="ASK", limits=LIMITS, remedies=REMEDIES, open=self.open,
                      ask=self.ask, close=self.closed.append, holds_connection=holds)


def test_each_probe_is_one_connect_and_one_request_on_the_first_connection():
    service = FakeService([10, 1, 20, 2, 30, 3])
    samples = probe(service.target(), probes=3, interval=0.5, clock=service.clock, sleep=service.slept.append)
    assert samples.connect_ms == pytest.approx([10, 20, 30]) and samples.request_ms == pytest.approx([1, 2, 3])
    assert service.asked_on == [1, 1, 1]  # requests on the open connection
    assert sorted(service.closed) == [1, 2, 3]  # every connection closed, the kept one last
    assert service.closed[-1] == 1
    assert service.slept == [0.5, 0.5]  # between probes, not before the first
    assert samples.error is None


def test_a_target_that_holds_no_connection_closes_each_one_and_asks_on_its_own():
    service = FakeService([1, 5, 1, 5])
    samples = probe(service.target(holds=False), probes=2, interval=0, clock=service.clock, sleep=service.slept.append)
    assert service.asked_on == [None, None] and service.closed == [1, 2]
    assert service.slept == [] and samples.request_ms == pytest.approx([5, 5])


def test_the_first_error_stops_the_probes_and_the_kept_connection_is_closed():
    service = FakeService([10, 1, 20, 2], fail_at=3)
    samples = probe(service.target(), probes=5, interval=0, clock=service.clock, sleep=service.slept.append)
    assert samples.error == "refused" and len(samples.connect_ms) == 2 and len(samples.request_ms) == 2
    assert sorted(service.closed) == [1, 2]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("changes, message", [
    ({"probes": 0}, "probes must be 1 to 100, got 0"),
    ({"probes": 101}, "probes must be 1 to 100, got 101"),
    ({"interval": -1.0}, "interval must be 0 to 60 seconds, got -1.0"),
    ({"timeout": 0.0}, "timeout must be above 0 seconds, got 0.0"),
    ({"postgres_max_p95_ms": 0.0}, "postgres_max_p95_ms must be a number of milliseconds above 0, got 0.0"),
    ({"redis_max_connect_p95_ms": -5.0}, "redis_max_connect_p95_ms must be a number of milliseconds above 0, got -5.0"),
    ({"http": [{"name": "api"}]}, "http[1] (api): url is missing"),
    ({"http": [{"name": "api", "url": "ftp://127.0.0.1/x"}]}, "http[1]: url 'ftp://127.0.0.1/x' is not an http:// or https:// URL"),
    ({"http": [{"url": "http://127.0.0.1/", "max_p95_ms": 0}]}, "http[1]: max_p95_ms must be a number of milliseconds above 0, got 0"),
    ({"http": [{"url": "http://127.0.0.1/", "status": 42}]}, "http[1]: status 42 is not an HTTP status code"),
    ({"http": [{"url": "http://127.0.0.1/", "colour": "blue"}]}, "http[1]: unknown key(s) colour"),
    ({"http": [{"name": "a", "url": "http://127.0.0.1/"}, {"name": "a", "url": "http://127.0.0.1/x"}]},
     "http: the name(s) 'a' are used more than once"),
])
def test_bad_input_fails_naming_the_value_before_anything_is_probed(changes, message, monkeypatch):
    monkeypatch.setattr(service_latency, "probe", lambda *a, **k: pytest.fail("probed despite bad input"))
    with pytest.raises(LatencyError) as failed:
        run_service_latency(params(**{"http": [{"url": "http://127.0.0.1:1/"}], **changes}))
    assert failed.value.msg.startswith(message)


def test_a_bad_connection_option_fails_before_anything_is_probed(monkeypatch):
    monkeypatch.setattr(service_latency, "probe", lambda *a, **k: pytest.fail("probed despite bad input"))
    with pytest.raises(pg.PgError, match="connect_timeout must be at least 1 second, got 0"):
        run_service_latency(params(postgres={"login_host": "127.0.0.1", "connect_timeout": 0}))
    redis_login = {"login_host": "127.0.0.1", "login_port": 6379, "db": -1, "tls": False, "socket_timeout": 1.0,
                   "connect_timeout": 1.0}
    with pytest.raises(redis_conn.RedisError, match="db must not be negative, got -1"):
        run_service_latency(params(redis=redis_login))


def test_a_password_in_a_url_is_never_shown():
    assert shown_url("https://ops:s3cret@127.0.0.1:8443/health") == "https://ops:********@127.0.0.1:8443/health"
    assert shown_url("http://127.0.0.1/") == "http://127.0.0.1/"
    check = parse_http({"url": "https://ops:s3cret@127.0.0.1:8443/health"}, 1)
    assert check["name"] == "https://ops:********@127.0.0.1:8443/health" and check["port"] == 8443
    with pytest.raises(LatencyError) as failed:
        parse_http({"url": "ftp://ops:s3cret@127.0.0.1/"}, 2)
    assert "s3cret" not in failed.value.msg


def test_a_missing_library_is_unknown_and_not_probed(monkeypatch):
    monkeypatch.setattr(pg, "psycopg", None)
    monkeypatch.setattr(service_latency, "probe", lambda *a, **k: pytest.fail("probed without psycopg"))
    result = run_service_latency(params(postgres={"login_host": "127.0.0.1", "login_port": 5432, "database": "db"}))
    assert result_problems(result) == []
    [record] = result["records"]
    assert record["name"] == "postgres 127.0.0.1:5432/db" and record["status"] == "unknown"
    assert "psycopg" in record["after"]["remedy"]


def test_nothing_to_measure_is_an_empty_result():
    result = run_service_latency(params())
    assert result == {"changed": False, "msg": "nothing to measure: no postgres, redis or http target given",
                      "records": []}


# --------------------------------------------------------------------------- the module


def run_main(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, message", [
    ({"probes": 0}, "probes must be 1 to 100, got 0"),
    ({"http": [{"name": "api"}]}, "http[1] (api): url is missing"),
    ({"http": [{"name": "api", "url": "file:///etc/passwd"}]}, "http[1]: url 'file:///etc/passwd' is not an http"),
    ({"postgres_max_p95_ms": 0}, "postgres_max_p95_ms must be a number of milliseconds above 0, got 0.0"),
    ({"http": [{"url": "http://127.0.0.1/", "max_connect_p95_ms": -1}]}, "http[1]: max_connect_p95_ms must be"),
])
def test_the_module_fails_on_bad_input_with_the_record_shape(args, message, capsys):
    result = run_main(args, capsys)
    result.pop("invocation", None)
    assert result["failed"] is True and result["msg"].startswith(message), result
    assert result["records"] == [] and result["changed"] is False
    assert result_problems(result) == []


def test_the_module_hides_the_passwords_of_its_connection_dicts(capsys):
    result = run_main({"postgres": {"login_host": "127.0.0.1", "login_port": 1, "login_password": "pg-s3cret",
                                    "database": "db", "connect_timeout": 1},
                       "redis": {"login_host": "127.0.0.1", "login_port": 1, "login_password": "redis-s3cret"},
                       "probes": 1}, capsys)
    text = json.dumps(result)
    assert "pg-s3cret" not in text and "redis-s3cret" not in text
    assert [r["status"] for r in result["records"]] == ["breach", "breach"]
    assert result["records"][0]["name"] == "postgres 127.0.0.1:1/db"
    assert result["records"][1]["name"] == "redis 127.0.0.1:1"


# --------------------------------------------------------------------------- docs and options


def _shape(options):
    return {name: {"type": o.get("type", "str"), "default": o.get("default"), "choices": o.get("choices"),
                   "aliases": sorted(o.get("aliases", []))} for name, o in options.items()}


def test_the_connection_dicts_are_the_doc_fragments_options():
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = module.argument_spec()
    for option, fragment in (("postgres", PgFragment), ("redis", RedisFragment)):
        shared = _shape(yaml.safe_load(fragment.DOCUMENTATION)["options"])
        assert _shape(documented[option]["suboptions"]) == shared, option
        assert _shape(spec[option]["options"]) == shared, option
        assert spec[option]["options"]["login_password"]["no_log"] is True


def test_module_options_are_documented_exactly():
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = module.argument_spec()
    assert _shape(documented) == _shape(spec)
    assert _shape(documented["http"]["suboptions"]) == _shape(spec["http"]["options"])
    http_defaults = {name: option["default"] for name, option in spec["http"]["options"].items() if "default" in option}
    assert http_defaults == service_latency.HTTP_DEFAULTS
