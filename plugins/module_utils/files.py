# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The collection's one atomic file writer: readers see the old content or the new one, never a part."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time

# An empty temp file younger than this may belong to a writer that has not taken its lock yet: left alone.
ABANDONED_AFTER_S = 2.0


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
    handle, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        # Locked until the rename: a later writer removes a temp only when no process holds it (its writer was
        # killed between its temp and its rename), never one that is being written.
        with os.fdopen(handle, "wb") as stream:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
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
    removed = []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        temp = os.path.join(directory, name)
        try:
            descriptor = os.open(temp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            status = os.fstat(descriptor)
            if status.st_size == 0 and time.time() - status.st_mtime < ABANDONED_AFTER_S:
                continue  # maybe a writer between its mkstemp and its flock: nothing written yet
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its writer still holds it
            os.unlink(temp)
            removed.append(temp)
        except OSError:
            pass
        finally:
            os.close(descriptor)
    return removed
