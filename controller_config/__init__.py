"""The AWX/Tower controller configuration of streamops.maintenance, generated from the collection's own data.

See docs/awx.md. ``python -m controller_config generate`` writes it, ``validate`` checks it offline.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# The collection's module_utils are imported by their collection names; `make collection-link` puts this
# checkout under build/collections (pytest and the Makefile put it on the path; a bare run may not have).
_COLLECTIONS = Path(__file__).resolve().parent.parent / "build" / "collections"
if importlib.util.find_spec("ansible_collections") is None and _COLLECTIONS.is_dir():
    sys.path.insert(0, str(_COLLECTIONS))
