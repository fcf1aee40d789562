"""Inputs the bad-input fuzzing (tests/reliability/test_fuzz_modules.py) found ending in a traceback, each now
refused by the collection's own checks with a message naming the option and the value."""
from __future__ import annotations

import pytest

from ansible_collections.streamops.maintenance.plugins.module_utils import (
    dependency_audit,
    endpoints,
    notify,
    service_latency,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.errors import MaintenanceError
from ansible_collections.streamops.maintenance.plugins.module_utils.timeouts import timeout_problem

MAIL = {**{key: None for key in notify.channel_suboptions()},
        "name": "mail", "type": "smtp", "host": "127.0.0.1", "port": 1, "to": ["ops@example.test"],
        "from": "bot@example.test", "starttls": False}
LATENCY = {"probes": 2, "interval": 0.0, "timeout": 5.0, "postgres": None, "redis": None, "http": [],
           "postgres_max_p95_ms": 50.0, "postgres_max_connect_p95_ms": 250.0,
           "redis_max_p95_ms": 10.0, "redis_max_connect_p95_ms": 50.0}


def refuse_to_run(*args, **kwargs):
    raise AssertionError("a tool ran despite bad input")


@pytest.mark.parametrize("call, message", [
    # smtplib: socket.settimeout -> OverflowError: timestamp out of range for platform time_t
    pytest.param(lambda: notify.parse_channel({**MAIL, "timeout": 2.9835382508099384e+16}, 1),
                 "channel 'mail': timeout must be at most 604800 seconds (a week), got 2.9835382508099384e+16",
                 id="maintenance_notify channel timeout 3e16"),
    # socket.create_connection -> OverflowError
    pytest.param(lambda: endpoints.run_endpoint_check({"timeout": float("inf"), "validate_certs": True,
                                                       "tcp": [], "http": []}),
                 "timeout must be at most 604800 seconds (a week), got inf", id="endpoint_check timeout inf"),
    pytest.param(lambda: endpoints.run_endpoint_check({"timeout": float("nan"), "validate_certs": True,
                                                       "tcp": [], "http": []}),
                 "timeout must be a number of seconds, got nan", id="endpoint_check timeout nan"),
    # subprocess (selectors.poll) -> OverflowError: timeout is too large
    pytest.param(lambda: dependency_audit.run_dependency_audit(
        {"audits": [{"name": "tools", "tool": "pip-audit", "path": "/", "executable": "/bin/true"}],
         "timeout": 2147483648}, runner=refuse_to_run, environ={}),
        "timeout must be at most 604800 seconds (a week), got 2147483648", id="dependency_audit timeout 2**31"),
    pytest.param(lambda: service_latency.run_service_latency({**LATENCY, "timeout": 1e16}),
                 "timeout must be at most 604800 seconds (a week), got 1e+16", id="service_latency timeout 1e16"),
])
def test_a_timeout_the_os_cannot_take_is_refused_by_name(call, message):
    with pytest.raises(MaintenanceError) as raised:
        call()
    assert raised.value.msg == message


@pytest.mark.parametrize("value, message", [
    (0, "timeout must be above 0 seconds, got 0"),
    (-1.5, "timeout must be above 0 seconds, got -1.5"),
    (float("nan"), "timeout must be a number of seconds, got nan"),
    (float("inf"), "timeout must be at most 604800 seconds (a week), got inf"),
    (True, "timeout must be a number of seconds, got True"),
    ("10", "timeout must be a number of seconds, got '10'"),
    (604801, "timeout must be at most 604800 seconds (a week), got 604801"),
])
def test_timeout_problem_names_the_value(value, message):
    assert timeout_problem(value) == message


@pytest.mark.parametrize("value", [0.001, 1, 30.5, 604800])
def test_usable_timeouts_pass(value):
    assert timeout_problem(value) is None
