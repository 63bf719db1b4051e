"""Tests marked `slow` run only when BRNET_TEST_FLAGS names `slow` (as the notebooks' `#| slow` cells do)."""
import os

import pytest


def pytest_collection_modifyitems(config, items):
    force = os.environ.get('BRNET_TEST_FLAGS', '').split()
    for item in items:
        for flag in ('slow', 'cuda'):
            if flag in item.keywords and flag not in force:
                item.add_marker(pytest.mark.skip(reason=f"{flag}: set BRNET_TEST_FLAGS={flag} (or `make test-slow`) to run"))
