"""host_usage: which file systems df would list, its Use% rounding, memory from /proc/meminfo, the limits."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.streamops.maintenance.plugins.module_utils import host_usage as host_usage_utils
from ansible_collections.streamops.maintenance.plugins.module_utils.host_usage import (
    DEFAULT_EXCLUDED_TYPES,
    HostUsageError,
    disk_record,
    memory_record,
    mounts,
    run_host_usage,
    used_percent,
)
from ansible_collections.streamops.maintenance.plugins.module_utils.records import make_record, result_problems
from ansible_collections.streamops.maintenance.plugins.modules import host_usage

# /proc/self/mounts of a Docker host, as the kernel writes it (spaces in paths as \040, tabs \011, backslash \134).
PROC_MOUNTS = r"""proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
devtmpfs /dev devtmpfs rw,nosuid,size=12334192k,nr_inodes=3083548,mode=755 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=4936720k,mode=755 0 0
/dev/vda1 / ext4 rw,relatime,discard 0 0
/dev/vda15 /boot/efi vfat rw,relatime,fmask=0022,dmask=0022 0 0
/dev/loop0 /snap/core20/2015 squashfs ro,nodev,relatime 0 0
/dev/vdb /var/lib/postgresql xfs rw,relatime,attr2,inode64 0 0
/dev/vda1 /var/lib/docker ext4 rw,relatime,discard 0 0
overlay /var/lib/docker/overlay2/3f2a/merged overlay rw,relatime,lowerdir=/x 0 0
nsfs /run/docker/netns/default nsfs rw 0 0
/dev/vdc /mnt/backup\040disk ext4 rw,relatime 0 0
/dev/vdd /mnt/tab\011and\134slash ext4 rw,relatime 0 0
/dev/vdb /srv/pg-bind xfs rw,relatime,attr2,inode64 0 0
/dev/vde /mnt/image squashfs ro 0 0
short line
"""


@pytest.mark.parametrize("excluded, expected", [
    pytest.param(DEFAULT_EXCLUDED_TYPES, [
        ("/dev/vda1", "/"), ("/dev/vda15", "/boot/efi"), ("/dev/vdb", "/var/lib/postgresql"),
        ("/dev/vdc", "/mnt/backup disk"), ("/dev/vdd", "/mnt/tab\tand\\slash")], id="default exclusions"),
    pytest.param(["squashfs", "vfat", "xfs"], [
        ("/dev/vda1", "/"), ("/dev/vdc", "/mnt/backup disk"), ("/dev/vdd", "/mnt/tab\tand\\slash")],
        id="more types excluded"),
    pytest.param([], [
        ("/dev/vda1", "/"), ("/dev/vda15", "/boot/efi"), ("/dev/loop0", "/snap/core20/2015"),
        ("/dev/vdb", "/var/lib/postgresql"), ("/dev/vdc", "/mnt/backup disk"),
        ("/dev/vdd", "/mnt/tab\tand\\slash"), ("/dev/vde", "/mnt/image")],
        id="nothing excluded: still only devices, each once"),
])
def test_mounts(excluded, expected):
    assert mounts(PROC_MOUNTS, excluded) == expected


def test_a_bind_mount_of_the_same_device_is_reported_once_at_its_first_mount_point():
    text = "/dev/sda1 /data ext4 rw 0 0\n/dev/sda1 /srv/data ext4 rw 0 0\n/dev/sda1 /data ext4 rw 0 0\n"
    assert mounts(text, ()) == [("/dev/sda1", "/data")]
    assert mounts(text, (), once_per_device=False) == [
        ("/dev/sda1", "/data"), ("/dev/sda1", "/srv/data"), ("/dev/sda1", "/data")]


def test_a_bind_mount_named_in_mounts_is_reported(tmp_path, monkeypatch):
    # The default listing names a device once, but a bind mount point named explicitly is mounted all the same.
    proc_mounts = f"/dev/vda1 / ext4 rw 0 0\n/dev/vda1 {tmp_path} ext4 rw 0 0\n"
    real_read_text = host_usage_utils.read_text
    monkeypatch.setattr(host_usage_utils, "read_text",
                        lambda path: proc_mounts if path == "/proc/self/mounts" else real_read_text(path))
    result = run_host_usage(params(mounts=[str(tmp_path)], disk_max_percent=100, memory_max_percent=100))
    assert [(r["name"], r["status"]) for r in result["records"]] == [(f"disk {tmp_path}", "ok"), ("memory", "ok")]
    assert result_problems(result) == []
    with pytest.raises(HostUsageError) as caught:
        run_host_usage(params(mounts=[str(tmp_path / "sub")]))
    assert caught.value.msg == f"mounts: {tmp_path / 'sub'} is not a mounted file system of this host (mounted: /)"


@pytest.mark.parametrize("used, available, percent", [
    pytest.param(0, 100, 0, id="empty"),
    pytest.param(41, 59, 41, id="exact"),
    pytest.param(1, 199, 1, id="half a percent rounds up"),
    pytest.param(1, 10 ** 9, 1, id="a trace rounds up to 1"),
    pytest.param(801, 199, 81, id="80.1 is 81 (over a limit of 80)"),
    pytest.param(800, 200, 80, id="80.0 stays 80"),
    pytest.param(100, 0, 100, id="full"),
    pytest.param(0, 0, 0, id="no size at all"),
    # df's used + available is less than the size: reserved blocks count as used, as in the guides' df -h.
    pytest.param(26103904, 80287008, 25, id="df -P of a real root"),
])
def test_used_percent_rounds_up_like_df(used, available, percent):
    assert used_percent(used, available) == percent


MEMINFO = """MemTotal:       24683584 kB
MemFree:         1034212 kB
MemAvailable:   19442776 kB
Buffers:          905100 kB
Cached:         16026164 kB
SwapTotal:             0 kB
HugePages_Total:       0
"""


@pytest.mark.parametrize("meminfo, limit, expected", [
    pytest.param(MEMINFO, 90, make_record("memory", "memory", "ok", "5118/24105 MB (21.2%, limit 90%)",
                                          after={"used_mb": 5118, "total_mb": 24105, "used_percent": 21.2}),
                 id="ok"),
    pytest.param(MEMINFO, 21.2, make_record("memory", "memory", "ok", "5118/24105 MB (21.2%, limit 21.2%)",
                                            after={"used_mb": 5118, "total_mb": 24105, "used_percent": 21.2}),
                 id="at the limit"),
    pytest.param(MEMINFO, 20, make_record("memory", "memory", "breach", "5118/24105 MB (21.2%, limit 20%)",
                                          after={"used_mb": 5118, "total_mb": 24105, "used_percent": 21.2}),
                 id="breach"),
    pytest.param("MemTotal: 2048 kB\nMemAvailable: 0 kB\n", 90,
                 make_record("memory", "memory", "breach", "2/2 MB (100%, limit 90%)",
                             after={"used_mb": 2, "total_mb": 2, "used_percent": 100.0}), id="nothing available"),
    pytest.param(MEMINFO.replace("MemAvailable:   19442776 kB\n", ""), 90,
                 make_record("memory", "memory", "unknown", "MemTotal or MemAvailable missing from /proc/meminfo"),
                 id="no MemAvailable (kernel before 3.14)"),
    pytest.param("MemTotal: 0 kB\nMemAvailable: 0 kB\n", 90,
                 make_record("memory", "memory", "unknown", "MemTotal or MemAvailable missing from /proc/meminfo"),
                 id="MemTotal 0"),
    pytest.param("", 90, make_record("memory", "memory", "unknown",
                                     "MemTotal or MemAvailable missing from /proc/meminfo"), id="empty"),
])
def test_memory_record(meminfo, limit, expected):
    assert memory_record(meminfo, limit) == expected


def test_disk_record_of_a_real_file_system_and_a_missing_one(tmp_path):
    stats = os.statvfs("/")
    expected = used_percent((stats.f_blocks - stats.f_bfree) * stats.f_frsize, stats.f_bavail * stats.f_frsize)
    ok = disk_record("/", 100)
    assert (ok["name"], ok["action"], ok["status"]) == ("disk /", "disk", "ok")
    assert ok["detail"] == f"{expected}% used (limit 100%)" and ok["after"]["used_percent"] == expected
    assert set(ok["after"]) == {"used_percent", "used_kb", "available_kb"}
    if expected > 0:
        assert disk_record("/", expected - 0.5)["status"] == "breach"
    gone = disk_record(str(tmp_path / "gone"), 80)
    assert gone == make_record(f"disk {tmp_path / 'gone'}", "disk", "unknown",
                               f"cannot read its usage: [Errno 2] No such file or directory: '{tmp_path / 'gone'}'")


def params(**given) -> dict:
    return {"disk_max_percent": 80.0, "memory_max_percent": 90.0, "exclude_types": list(DEFAULT_EXCLUDED_TYPES),
            "mounts": None} | given


@pytest.mark.parametrize("given, msg", [
    pytest.param({"disk_max_percent": 0}, "disk_max_percent must be above 0 and at most 100, got 0", id="disk 0"),
    pytest.param({"disk_max_percent": 101}, "disk_max_percent must be above 0 and at most 100, got 101",
                 id="disk 101"),
    pytest.param({"memory_max_percent": -5.0}, "memory_max_percent must be above 0 and at most 100, got -5.0",
                 id="memory negative"),
    pytest.param({"memory_max_percent": 100.5}, "memory_max_percent must be above 0 and at most 100, got 100.5",
                 id="memory 100.5"),
])
def test_run_host_usage_rejects_a_bad_limit(given, msg):
    with pytest.raises(HostUsageError) as caught:
        run_host_usage(params(**given))
    assert caught.value.msg == msg


def test_run_host_usage_rejects_a_mount_point_that_is_not_mounted(tmp_path):
    with pytest.raises(HostUsageError) as caught:
        run_host_usage(params(mounts=["/", str(tmp_path) + "/"]))
    assert caught.value.msg.startswith(f"mounts: {tmp_path} is not a mounted file system of this host (mounted: ")
    assert "/" in caught.value.msg.split("(mounted: ")[1].rstrip(")").split(", ")


def test_run_host_usage_on_this_host():
    result = run_host_usage(params(mounts=["/"], disk_max_percent=100, memory_max_percent=100))
    assert result_problems(result) == []
    assert [(r["name"], r["action"], r["status"]) for r in result["records"]] == [
        ("disk /", "disk", "ok"), ("memory", "memory", "ok")]
    assert result["msg"] == "1 file system(s) and memory: all within the limits"
    every = run_host_usage(params(), check_mode=True)
    assert result_problems(every, check_mode=True) == []
    assert every["changed"] is False
    assert "disk /" in [r["name"] for r in every["records"]]


def test_main_as_ansible_runs_it(capsys):
    with patch_module_args({"mounts": ["/"], "disk_max_percent": 100, "memory_max_percent": 100,
                            "_ansible_check_mode": True}), pytest.raises(SystemExit) as exited:
        host_usage.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 0, result
    assert result_problems(result, check_mode=True) == []
    with patch_module_args({"disk_max_percent": 0}), pytest.raises(SystemExit) as exited:
        host_usage.main()
    result = json.loads(capsys.readouterr().out)
    assert exited.value.code == 1
    assert result["msg"] == "disk_max_percent must be above 0 and at most 100, got 0.0"
