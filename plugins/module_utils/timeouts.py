# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The one check of a timeout option: a finite number of seconds above 0, and not beyond what the OS takes.

``socket.settimeout`` refuses NaN and overflows ``time_t`` on a huge value, ``poll`` (subprocess, selectors)
overflows a C int of milliseconds past 2**31 ms (24.8 days): without this check an operator's typo in a
timeout (``inf``, ``1e16``, ``2147483648``) ended the module in a traceback instead of a message naming it.
"""

from __future__ import annotations

import math
from typing import Any

# A week: far above any timeout a maintenance run needs, far below what the OS calls overflow on.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600


def timeout_problem(value: Any, name: str = "timeout") -> str | None:
    """Why ``value`` is not a usable timeout in seconds (the message names ``name`` and the value), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return f"{name} must be a number of seconds, got {value!r}"
    if value <= 0:
        return f"{name} must be above 0 seconds, got {value!r}"
    if value > MAX_TIMEOUT_SECONDS:
        return f"{name} must be at most {MAX_TIMEOUT_SECONDS} seconds (a week), got {value!r}"
    return None
