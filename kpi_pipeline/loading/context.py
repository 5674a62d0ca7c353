"""What a run loads, passed to every source's loader."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from kpi_pipeline.loading.commands import run_command


@dataclass(frozen=True)
class RunDays:
    """What a run loads: the plan (for the commands it prints), its days, what it allows."""

    plan_path: Path
    base_dir: Path
    first: dt.date
    last: dt.date
    allow_missing: bool = False

    def command(self, *, allow_missing: bool = False) -> str:
        return run_command(self.plan_path, self.first, self.last, allow_missing=allow_missing)
