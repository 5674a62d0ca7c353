"""The tiny project fixture: the plan and CSV export of `tests/tiny_csv.py`, whose KPI values
are computed by hand in the tests."""

from pathlib import Path

import pytest
from tiny_csv import FIRST_DAY, HEADER, LAST_DAY, ROWS, TINY_PLAN, TinyProject, make_tiny_project

# Read from this module by tests/pipeline/ownership_project.py.
__all__ = ["FIRST_DAY", "HEADER", "LAST_DAY", "ROWS", "TINY_PLAN", "TinyProject", "tiny_project"]


@pytest.fixture
def tiny_project(tmp_path: Path) -> TinyProject:
    return make_tiny_project(tmp_path)
