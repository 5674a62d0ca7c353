"""Commands that messages tell people to run: complete (plan included) and quoted, so they
run as printed from any folder."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path


def run_command(
    plan_path: Path | str,
    first: dt.date,
    last: dt.date,
    *,
    allow_missing: bool = False,
    rollback: int = 0,
) -> str:
    """`kpi-pipeline run --plan PLAN --from FIRST --to LAST [...]` for the same plan."""
    parts = ["kpi-pipeline", "run", "--plan", str(plan_path)]
    parts += ["--from", first.isoformat(), "--to", last.isoformat()]
    if rollback:
        parts += ["--rollback", str(rollback)]
    if allow_missing:
        parts.append("--allow-missing")
    return shlex.join(parts)


def prune_command(plan_path: Path | str) -> str:
    return shlex.join(["kpi-pipeline", "prune", "--plan", str(plan_path)])
