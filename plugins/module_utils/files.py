# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The collection's one atomic file writer: readers see the old content or the new one, never a part."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator

# Where the directory cannot be locked (no read permission, a file system without flock on directories): an empty
# temp file younger than this may belong to a writer that has not taken its lock yet, and is left alone.
ABANDONED_AFTER_S = 2.0
# How long a cleaner waits for writers to get from their mkstemp to their temp file's lock (microseconds each),
# and a writer for a cleaner's scan; past it, both go on without the directory's lock (see _directory_locked).
DIRECTORY_LOCK_WAIT_S = 2.0


def write_atomically(path: str | os.PathLike[str], data: bytes | str, mode: int | None = None) -> None:
    """Temp file in the same directory, fsync, rename over ``path``, fsync the directory.

    ``mode`` defaults to the existing file's mode (0o600 for a new file). Raises OSError; the
    temp file is removed on any failure, so a full disk leaves ``path`` as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o600
    payload = data.encode("utf-8") if isinstance(data, str) else data
    remove_abandoned_temps(path)
    # The temp file is locked until the rename: a later writer removes a temp only when no process holds it (its
    # writer was killed between its temp and its rename), never one that is being written. A kill -9 between
    # mkstemp and that lock would leave a temp nobody holds that looks like a live writer's: the shared lock on the
    # directory covers that gap, and a cleaner takes it exclusively.
    with _directory_locked(directory, fcntl.LOCK_SH, wait_s=DIRECTORY_LOCK_WAIT_S):
        handle, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            os.close(handle)
            os.unlink(temp)
            raise
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
            os.fchmod(stream.fileno(), mode)
            os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    # The rename itself is durable only once the directory is synced.
    try:
        directory_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory_fd)
    except OSError:
        pass
    finally:
        os.close(directory_fd)


def remove_abandoned_temps(path: str | os.PathLike[str]) -> list[str]:
    """The temp files of earlier writes of ``path`` whose writer is gone (killed between its temp and its
    rename, which no ``finally`` survives): removed, so a killed run leaves them only until the next write."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    prefix = f".{os.path.basename(path)}."
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    temps = [name for name in names if name.startswith(prefix) and name.endswith(".tmp")]
    if not temps:
        return []
    with _directory_locked(directory, fcntl.LOCK_EX, wait_s=DIRECTORY_LOCK_WAIT_S) as no_writer_between:
        return [temp for temp in (os.path.join(directory, name) for name in temps)
                if _remove_if_abandoned(temp, no_writer_between)]


def _remove_if_abandoned(temp: str, no_writer_between: bool) -> bool:
    """``no_writer_between``: the directory is locked, so no writer is between its mkstemp and its temp's lock."""
    try:
        descriptor = os.open(temp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        status = os.fstat(descriptor)
        if not no_writer_between and status.st_size == 0 and time.time() - status.st_mtime < ABANDONED_AFTER_S:
            return False  # maybe a writer between its mkstemp and its flock: nothing written yet
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its writer still holds it
        os.unlink(temp)
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _directory_locked(directory: str, operation: int, wait_s: float) -> Iterator[bool]:
    """flock on the directory itself (no lock file left beside the user's files); yields whether it is held.

    Gives up after ``wait_s`` and yields False, as where a directory cannot be locked at all (another tool holding
    it, a file system without flock on directories): a cleaner then falls back to the age rule
    (ABANDONED_AFTER_S) and a writer goes on, rather than a maintenance run hanging or failing on it.
    """
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        descriptor = None
    if descriptor is None:
        yield False
        return
    try:
        yield _flock_within(descriptor, operation, wait_s)
    finally:
        os.close(descriptor)  # releases the lock


def _flock_within(descriptor: int, operation: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        except OSError:
            return False
