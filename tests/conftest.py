"""Suite-wide hooks: tests marked ``postgres`` need a real server.

Outside CI they are skipped, with the reason, when the server cannot be reached (``make
test`` lists them under "short test summary info"); with ``CI=true`` they fail instead.
"""

import pytest
from pg_support import create_schema, drop_schema, in_ci, schema_url, unreachable_reason


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") is None:
        return
    reason = unreachable_reason()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason}; CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(f"{reason}: PostgreSQL tests skipped (they run in CI)")


@pytest.fixture
def pg_url():
    """URL of a fresh PostgreSQL schema, dropped after the test."""
    name = create_schema()
    try:
        yield schema_url(name)
    finally:
        drop_schema(name)
