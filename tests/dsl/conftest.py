"""tests/dsl runs without torch: `dsl/` never imports it, and neither may these tests.

With NETSPEC_BLOCK_TORCH=1 (tests/dsl/test_no_torch.py sets it for a second run of this
folder) `import torch` fails, and the session fails if torch got imported anyway.
"""
import os
import sys

import pytest

from tests.dsl.notorch import block_torch

BLOCKED = os.environ.get("NETSPEC_BLOCK_TORCH") == "1"
if BLOCKED:
    block_torch()


def pytest_sessionfinish(session, exitstatus):
    if BLOCKED and "torch" in sys.modules:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nerror: torch was imported while running tests/dsl", file=sys.stderr)
