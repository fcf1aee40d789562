"""The reliability campaign's tests (tests/reliability/campaign.py): each is a case of the campaign, marked
``reliability``; make test runs them in the servers lane, on servers this pytest process starts itself."""
from __future__ import annotations

import pytest

from tests.reliability.campaign import REPO

try:
    from hypothesis import settings
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # the generated-input cases say so themselves when they import it
    settings = None

if settings is not None:
    # Its caches (unicode data) under build/, not a .hypothesis/ in the collection's tree, which ansible-test,
    # ansible-galaxy's tarball and the molecule copies would pick up.
    set_hypothesis_home_dir(str(REPO / "build" / "hypothesis"))
    # Reproducible in CI (the same examples on every run) and nothing written into the work tree
    # (no .hypothesis/ directory beside the collection that ansible-test and git would see).
    settings.register_profile("campaign", database=None, derandomize=True, deadline=None, print_blob=True)
    settings.load_profile("campaign")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)
