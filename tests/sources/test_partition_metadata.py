"""A range run records each day partition's own row count, not the range's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tiny_csv import make_tiny_project

# The tiny plan's export (HEADER of tiny_csv), three days of it.
# 5 January: 2 traffic rows; 6 January: 1; 7 January: 3 (one quarantined, so 2 kept).
ROWS = [
    "2026-01-05,google,organic,,/,mobile,10,5,1,2,1",
    "2026-01-05,newsletter,email,jan,/,desktop,4,2,0,0,0",
    "2026-01-06,google,organic,,/,mobile,7,3,0,3,2",
    "2026-01-07,google,organic,,/,mobile,9,4,1,1,1",
    "2026-01-07,google,cpc,brand,/,mobile,3,1,0,0,0",
    "2026-01-07,google,organic,,/blog,mobile,abc,1,0,0,0",
]


def test_each_partition_of_a_range_run_carries_its_own_row_count(tmp_path: Path):
    project = make_tiny_project(tmp_path, ROWS)
    result = project.run(dt.date(2026, 1, 5), dt.date(2026, 1, 7))
    assert result.success
    counts: dict[str, dict[str, int]] = {}
    for event in result.get_asset_materialization_events():
        m = event.materialization
        if m.partition is not None and "dagster/row_count" in m.metadata:
            table = m.asset_key.to_user_string()
            counts.setdefault(table, {})[m.partition] = m.metadata["dagster/row_count"].value
    # Traffic: one row per date x source/medium/campaign/page/device: 2, 1 and 2 kept.
    assert counts["raw/csv_traffic"] == {"2026-01-05": 2, "2026-01-06": 1, "2026-01-07": 2}
    # Events: whatever the reader keeps per day, each day's count is that day's rows.
    events = project.read("select date, count(*) as n from raw.csv_events group by date")
    by_day = {str(day)[:10]: int(n) for day, n in zip(events["date"], events["n"], strict=True)}
    assert counts["raw/csv_events"] == {
        day: by_day.get(day, 0) for day in ("2026-01-05", "2026-01-06", "2026-01-07")
    }
    # Every source table's days add up to the range's total, recorded once as rows_in_run.
    for event in result.get_asset_materialization_events():
        m = event.materialization
        table = m.asset_key.to_user_string()
        if table in ("raw/csv_traffic", "raw/csv_events"):
            assert m.metadata["rows_in_run"].value == sum(counts[table].values())
    assert counts["raw/email_campaigns"] == dict.fromkeys(counts["raw/csv_traffic"], 0)
