"""lab/fleet.py without services: the estates' names, AWX's slices, --limit, the inventory it writes."""
from __future__ import annotations

import jinja2
import pytest
import yaml

from lab import fleet
from lab.fleet import Estate, FleetError

LAB_SERVICES = {
    "postgres": {"host": "127.0.0.1", "port": 5433, "admin_user": "admin", "admin_password": "pw",
                 "sslmode": "verify-full", "ca_cert": "/tmp/pg/tls/ca.crt"},
    "redis": {"host": "127.0.0.1", "port": 6380},
    "s3": {"endpoint_url": "http://127.0.0.1:9000", "region": "us-east-1", "access_key": "a", "secret_key": "s"},
}
LAB_MAIN = {"maintenance_windows": [{"name": "lab", "rrule": "FREQ=DAILY", "duration": "23h59m"}],
            "maintenance_window_windows": "{{ maintenance_windows }}", "maintenance_window_name": "lab",
            "lab_state_dir": "{{ inventory_dir | dirname }}/lab-state"}


def test_plan_names_every_thing_an_estate_owns_after_its_host():
    assert fleet.plan_fleet("fleet", 2) == [
        Estate("fleet-001", "fleet_001", "fleet_001_owner", "fleet-001:", "fleet-001"),
        Estate("fleet-002", "fleet_002", "fleet_002_owner", "fleet-002:", "fleet-002"),
    ]
    hosts = [estate.host for estate in fleet.plan_fleet("f", 120)]
    assert hosts == sorted(hosts)  # zero-padded: name order is number order (AWX slices by name)


@pytest.mark.parametrize("name", ["", "Fleet", "1fleet", "fleet-a", "fleet_a", "fleet*", "a" * 21, None])
def test_a_bad_fleet_name_is_named(name):
    with pytest.raises(FleetError, match=r"fleet name .* must be 1-20 lowercase letters and digits"):
        fleet.plan_fleet(name, 1)


@pytest.mark.parametrize("count", [0, -1, 1000, 2.5, "10", True])
def test_a_bad_count_is_named(count):
    with pytest.raises(FleetError, match=rf"number of estates {count!r} must be a whole number from 1 to 999"):
        fleet.plan_fleet("fleet", count)


HOSTS = [f"fleet-{n:03d}" for n in range(1, 11)]


@pytest.mark.parametrize("count, slices", [
    (3, [["fleet-001", "fleet-004", "fleet-007", "fleet-010"], ["fleet-002", "fleet-005", "fleet-008"],
         ["fleet-003", "fleet-006", "fleet-009"]]),
    (1, [HOSTS]),
    (12, [[host] for host in HOSTS]),  # AWX makes no more slices than hosts
])
def test_awx_slices_are_round_robin_over_the_hosts_by_name(count, slices):
    assert fleet.awx_slices(reversed(HOSTS), count) == slices


def test_awx_slices_are_what_awx_get_sliced_hosts_makes():
    # awx/main/models/inventory.py: host_queryset.order_by('name')[slice_number - 1::slice_count]
    ordered = sorted(HOSTS)
    assert fleet.awx_slices(HOSTS, 4) == [ordered[number - 1::4] for number in range(1, 5)]
    together = [host for one in fleet.awx_slices(HOSTS, 4) for host in one]
    assert sorted(together) == HOSTS and len(together) == len(set(together))


@pytest.mark.parametrize("count", [0, -2, "3", True])
def test_a_bad_slice_count_is_named(count):
    with pytest.raises(FleetError, match=rf"slice count {count!r} must be a whole number of at least 1"):
        fleet.awx_slices(HOSTS, count)


def test_limit_argument_names_exactly_the_hosts():
    assert fleet.limit_argument(["fleet-001", "fleet-004"]) == "fleet-001,fleet-004"
    with pytest.raises(FleetError, match=r"host name\(s\) \['web\*'\] cannot be given to --limit"):
        fleet.limit_argument(["fleet-001", "web*"])


@pytest.mark.parametrize("previous, wanted, expected", [
    ([], ["a", "b"], (["a", "b"], [], [])),
    (["a", "b"], ["a", "b"], ([], ["a", "b"], [])),
    (["a", "b", "c"], ["a"], ([], ["a"], ["b", "c"])),
    (["a"], ["a", "b"], (["b"], ["a"], [])),
])
def test_changes_from_the_manifest_to_the_wanted_fleet(previous, wanted, expected):
    assert fleet.changes(previous, wanted) == expected


def inventory(count=2):
    estates = fleet.plan_fleet("fleet", count)
    passwords = {estate.host: f"secret-{estate.host}" for estate in estates}
    return fleet.inventory_files(estates, passwords, name="fleet", redis_db=2, lab_services=LAB_SERVICES,
                                 lab_main_vars=LAB_MAIN)


def test_the_inventory_puts_every_estate_in_the_fleet_group_with_its_secrets_0600():
    files = inventory()
    hosts = yaml.safe_load(files["hosts.yml"][0])
    assert hosts["all"]["children"] == {"fleet": {"hosts": {"fleet-001": None, "fleet-002": None}}}
    assert hosts["all"]["vars"]["ansible_connection"] == "local"
    assert {path: mode for path, (_text, mode) in files.items() if mode == 0o600} == {
        "group_vars/all/lab_services.yml": 0o600, "host_vars/fleet-001.yml": 0o600, "host_vars/fleet-002.yml": 0o600}
    assert yaml.safe_load(files["host_vars/fleet-002.yml"][0]) == {"fleet_estate": {
        "database": "fleet_002", "user": "fleet_002_owner", "password": "secret-fleet-002",
        "redis_prefix": "fleet-002:", "s3_bucket": "fleet-backups", "s3_prefix": "fleet-002"}}
    main = yaml.safe_load(files["group_vars/all/main.yml"][0])
    assert main["maintenance_window_name"] == "lab" and main["maintenance_windows"] == LAB_MAIN["maintenance_windows"]
    assert "lab_state_dir" not in main


def rendered(value, host_vars):
    """A group_vars value rendered with plain Jinja2, the way Ansible would for that host."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["urlsplit"] = lambda url, part: "9000"
    if isinstance(value, dict):
        return {key: rendered(item, host_vars) for key, item in value.items()}
    if isinstance(value, list):
        return [rendered(item, host_vars) for item in value]
    if isinstance(value, str):
        return env.from_string(value).render(**host_vars)
    return value


def test_each_estate_states_its_connections_once_as_the_lab_inventory_does():
    files = inventory()
    group = yaml.safe_load(files["group_vars/fleet.yml"][0])
    host_vars = {"lab_services": LAB_SERVICES, "inventory_hostname": "fleet-002", "fleet_state_dir": "/f/state",
                 "fleet_redis_db": 2, **yaml.safe_load(files["host_vars/fleet-002.yml"][0])}
    assert rendered(group["postgres_login"], host_vars) == {
        "login_host": "127.0.0.1", "login_port": "5433", "login_user": "fleet_002_owner",
        "login_password": "secret-fleet-002", "database": "fleet_002", "sslmode": "verify-full",
        "ca_cert": "/tmp/pg/tls/ca.crt"}
    assert rendered(group["backup_verify_login"], host_vars)["sslmode"] == "verify-full"
    assert rendered(group["s3_login"], host_vars)["prefix"] == "fleet-002"
    assert rendered(group["backup_root"], host_vars) == "/f/state/fleet-002/backups"
    assert rendered(group["log_maintenance_cleanup"], host_vars)[0]["root"] == "/f/state/fleet-002/logs"
    assert rendered(group["log_maintenance_cleanup_protected_roots"], {**host_vars, "backup_root": "/b"}) == ["/b"]
    # The estates share a Redis db: the allow-list is the estate's own cache keys only.
    assert rendered(group["redis_routine_evict_patterns"], host_vars) == ["fleet-002:cache:*"]
    assert "redis_rdb" not in group["backup_parts"]


def test_the_estates_are_platform_free():
    # lab_services.yml is the lab's facts as given (the real lab's name its Kubernetes and compose too).
    text = "".join(text for path, (text, _mode) in inventory().items() if path != "group_vars/all/lab_services.yml")
    for platform_word in ("platform_target", "kubernetes", "k8s", "compose", "docker", "deploy_"):
        assert platform_word not in text
