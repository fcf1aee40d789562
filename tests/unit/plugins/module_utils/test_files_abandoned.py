"""files.write_atomically removes the temp files a killed writer left (kill -9 between its temp and its rename), and
never one that a live writer holds or may be about to lock."""
from __future__ import annotations

import fcntl
import os
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
    young.write_text("")  # just made by mkstemp, its writer not locked yet
    killed_now = tmp_path / ".state.json.k2.tmp"
    killed_now.write_text('{"half')  # a writer killed a moment ago, half written: goes at once
    other = tmp_path / ".other.json.zzz.tmp"
    other.write_text("another file's")
    _old(other)
    with open(held, "rb") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)  # a live writer of the same file
        files.write_atomically(target, '{"whole": true}')
    assert target.read_text() == '{"whole": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.json.zzz.tmp", ".state.json.held99.tmp", ".state.json.young1.tmp", "state.json"]


def test_remove_abandoned_temps_says_what_it_removed(tmp_path):
    target = tmp_path / "upstream.conf"
    left = tmp_path / ".upstream.conf.k1.tmp"
    left.write_text("half")
    _old(left)
    assert files.remove_abandoned_temps(target) == [str(left)]
    assert files.remove_abandoned_temps(tmp_path / "missing" / "x.conf") == []
