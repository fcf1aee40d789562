"""files.write_atomically removes the temp files a killed writer left (kill -9 between its temp and its rename), and
never one that a live writer holds or may be about to lock."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

from ansible_collections.streamops.maintenance.plugins.module_utils import files


def _old(path, seconds=60):
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_a_killed_writers_temp_goes_with_the_next_write_and_others_stay(tmp_path):
    target = tmp_path / "state.json"
    abandoned = tmp_path / ".state.json.abc123.tmp"
    abandoned.write_text('{"half": ')
    _old(abandoned)
    held = tmp_path / ".state.json.held99.tmp"
    held.write_text("being written")
    _old(held)
    young = tmp_path / ".state.json.young1.tmp"
    young.write_text("")  # as a writer killed between its mkstemp and its lock leaves it: nobody holds the directory
    killed_now = tmp_path / ".state.json.k2.tmp"
    killed_now.write_text('{"half')  # a writer killed a moment ago, half written: goes at once
    other = tmp_path / ".other.json.zzz.tmp"
    other.write_text("another file's")
    _old(other)
    with open(held, "rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)  # a live writer of the same file
        files.write_atomically(target, '{"whole": true}')
    assert target.read_text() == '{"whole": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.zzz.tmp", ".state.json.held99.tmp", "state.json"]


def test_remove_abandoned_temps_says_what_it_removed(tmp_path):
    target = tmp_path / "upstream.conf"
    left = tmp_path / ".upstream.conf.k1.tmp"
    left.write_text("half")
    _old(left)
    assert files.remove_abandoned_temps(target) == [str(left)]
    assert files.remove_abandoned_temps(tmp_path / "missing" / "x.conf") == []


# A writer as files.write_atomically is one, stopped between its mkstemp and its temp file's lock: it holds the
# directory's shared lock, prints its temp's path, and goes on (locks the temp, lets the directory go) on a line in.
_WRITER_BETWEEN = """
import fcntl, os, sys, tempfile
directory = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(directory, fcntl.LOCK_SH)
handle, temp = tempfile.mkstemp(prefix=".state.json.", suffix=".tmp", dir=sys.argv[1])
print(temp, flush=True)
sys.stdin.readline()
fcntl.flock(handle, fcntl.LOCK_EX)
os.close(directory)
print("locked", flush=True)
sys.stdin.readline()
"""


def _writer_between(directory):
    writer = subprocess.Popen([sys.executable, "-c", _WRITER_BETWEEN, str(directory)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    return writer, writer.stdout.readline().strip()


def test_a_writer_killed_between_its_temp_and_its_lock_leaves_nothing_after_the_next_write(tmp_path):
    """The kill the campaign met (compose deploy, 'verified, history live'): the empty temp went with the next write
    only two seconds later, so a re-run right after the kill left it behind."""
    writer, temp = _writer_between(tmp_path)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert os.path.exists(temp) and os.path.getsize(temp) == 0
    files.write_atomically(tmp_path / "state.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_live_writer_between_its_temp_and_its_lock_keeps_its_temp(tmp_path):
    writer, temp = _writer_between(tmp_path)
    try:
        cleaner = threading.Thread(target=files.remove_abandoned_temps, args=(tmp_path / "state.json",))
        cleaner.start()
        time.sleep(0.3)
        assert cleaner.is_alive(), "the cleaner must wait for the writer to lock its temp"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "locked"
        cleaner.join(timeout=10)
        assert not cleaner.is_alive()
        assert os.path.exists(temp)
    finally:
        writer.kill()
        writer.wait(timeout=10)


def test_where_the_directory_cannot_be_locked_a_young_empty_temp_is_left_to_its_writer(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "DIRECTORY_LOCK_WAIT_S", 0.05)
    young = tmp_path / ".state.json.young1.tmp"
    young.write_text("")
    old = tmp_path / ".state.json.old1.tmp"
    old.write_text("")
    _old(old)
    other_tool = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(other_tool, fcntl.LOCK_EX)  # another program holding the directory
        assert files.remove_abandoned_temps(tmp_path / "state.json") == [str(old)]
    finally:
        os.close(other_tool)
    assert young.exists()
