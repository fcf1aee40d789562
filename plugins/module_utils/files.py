# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The collection's one atomic file writer: readers see the old content or the new one, never a part."""

from __future__ import annotations

import os
import tempfile


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
    handle, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
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
