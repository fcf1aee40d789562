# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""ISO 8601 / RFC 3339 stamps as logs and engines write them (any fraction digits, Z or an offset)."""

from __future__ import annotations

import datetime
import re

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
                  r"\s?(Z|[+-]\d{2}(?::?\d{2})?)?", re.IGNORECASE)


def parse_iso8601(text: str) -> datetime.datetime | None:
    """An ISO 8601 / RFC 3339 stamp (T or space, optional seconds, any fraction, Z or offset); None if not one.

    Parsed here, not with fromisoformat: Python 3.9's (the managed nodes' floor) refuses Z, commas and +HHMM.
    """
    match = _ISO.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tzinfo = None
    if offset:
        if offset in ("Z", "z"):
            tzinfo = datetime.timezone.utc
        else:
            digits = offset[1:].replace(":", "")
            delta = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            tzinfo = datetime.timezone(-delta if offset[0] == "-" else delta)
    try:
        return datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                                 int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tzinfo)
    except ValueError:
        return None
