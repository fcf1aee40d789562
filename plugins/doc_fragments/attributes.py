# -*- coding: utf-8 -*-
# Copyright: streamops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Our own fragment, built like ansible.builtin.action_common_attributes: core's lacks `idempotent`.

from __future__ import annotations


class ModuleDocFragment:
    # Descriptions only; each module sets `support:` (full, partial, none) for every attribute.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Can run in C(check_mode) and return the real plan (what would be touched, how big, which lock)
        without modifying the target.
  diff_mode:
    description:
      - Will return details on what has changed (or would change in C(check_mode)) when in diff mode.
  idempotent:
    description:
      - When run twice in a row with the same arguments and an unchanged target, the second run
        reports RV(ignore:changed=false) and changes nothing.
"""

    # For the modules that only read (the reviews), beside the fragment above: the support of each attribute
    # (Ansible merges the two per attribute, so the descriptions stay in one place).
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - Only reads; check mode runs the same reads and returns the same records.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Never changes anything; RV(ignore:changed) is always V(false).
"""
