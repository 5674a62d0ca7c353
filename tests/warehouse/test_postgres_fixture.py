"""Without a reachable PostgreSQL, its tests skip saying how to point them at one; in CI
(`KPI_REQUIRE_POSTGRES=1`) they fail instead, so a missing server can never pass as green."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Port 9 on loopback: nothing listens there, the connection is refused at once.
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/test"


def _run_one_postgres_test(require: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KPI_REQUIRE_POSTGRES"}
    env["KPI_TEST_POSTGRES_URL"] = UNREACHABLE
    if require:
        env["KPI_REQUIRE_POSTGRES"] = "1"
    target = f"{HERE / 'test_engine.py'}::test_postgres_loads_through_copy_not_inserts"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", target],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE.parents[1],
        timeout=120,
    )


@pytest.mark.parametrize("require", [False, True], ids=["developer", "ci"])
def test_an_unreachable_server_skips_for_developers_and_fails_in_ci(require):
    result = _run_one_postgres_test(require)
    out = result.stdout
    assert "PostgreSQL is unreachable at postgresql+psycopg://postgres@127.0.0.1:9/test" in out
    assert "set KPI_TEST_POSTGRES_URL=postgresql+psycopg://" in out
    if require:
        assert result.returncode == 1 and "1 error" in out
        assert "KPI_REQUIRE_POSTGRES=1 but PostgreSQL is unreachable" in out
    else:
        assert result.returncode == 0 and "1 skipped" in out
