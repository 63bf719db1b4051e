"""Test-run settings shared by every test.

- Tests marked `slow` (or `cuda`) run only when BRNET_TEST_FLAGS names that flag, as the
  notebooks' `#| slow` / `#| cuda` cells do (`make test-slow`).
- Under pytest-xdist each worker gets one BLAS/OpenMP thread: two workers with two threads
  each on two cores spin against each other and run several times slower.
"""
import os, sys

import pytest

if os.environ.get('PYTEST_XDIST_WORKER'):
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'): os.environ[var] = '1'
    if 'torch' in sys.modules: sys.modules['torch'].set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    force = os.environ.get('BRNET_TEST_FLAGS', '').split()
    for item in items:
        for flag in ('slow', 'cuda'):
            if flag in item.keywords and flag not in force:
                item.add_marker(pytest.mark.skip(reason=f"{flag}: set BRNET_TEST_FLAGS={flag} (or `make test-slow`) to run"))
