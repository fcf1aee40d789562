# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# module_utils of streamops.maintenance are internal to the collection: no API promise outside it.
"""The one place where a module's typed errors become ``fail_json(msg=...)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from .errors import MaintenanceError
from .records import is_changed


def run_and_exit(module: AnsibleModule, runner: Callable[..., dict[str, Any]],
                 missing: dict[str, str | None]) -> None:
    """Fail on a missing library (name -> import traceback), run, and exit with the result.

    A result with ``failed: True`` (work done, but some of it failed) keeps its records; a typed error
    fails with the records it carries, or none, so a failed result keeps the record shape (docs/records.md).
    """
    for library, error in missing.items():
        if error:
            module.fail_json(msg=missing_required_lib(library), exception=error)
    try:
        result = runner(module.params, check_mode=module.check_mode, diff_mode=module._diff)
    except MaintenanceError as exc:
        details = {"records": [], **exc.details}
        details.setdefault("changed", is_changed(details["records"]))
        module.fail_json(msg=exc.msg, **details)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)
