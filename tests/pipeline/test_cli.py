"""The command line: the same job as the schedule, and the scorecard a marketing lead reads."""

import json
from pathlib import Path

from kpi_pipeline.cli import main
from kpi_pipeline.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[2]


def test_validate_summarises_a_good_plan(capsys):
    assert main(["validate", str(ROOT / "plan_config" / "demo.yaml")]) == 0
    out = capsys.readouterr().out
    assert "valid plan for Northwind Outfitters — 3 objectives, 8 tactics, 5 KPIs" in out


def test_validate_locates_errors(tmp_path, capsys):
    broken = tmp_path / "plan.yaml"
    text = (ROOT / "plan_config" / "demo.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("timezone: America/Toronto", "timezone: Mars/Olympus"))
    assert main(["validate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert f"{broken}:10: timezone: unknown IANA timezone 'Mars/Olympus'" in err


def test_schema_is_the_plan_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Plan"
    assert {"objectives", "timezone", "sources"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_run_then_scorecard(tiny_project, monkeypatch, capsys):
    monkeypatch.setenv("KPI_WAREHOUSE_URL", tiny_project.warehouse_url)
    code = main(
        ["run", "--plan", str(tiny_project.plan_path), "--from", "2026-01-05", "--to", "2026-01-12"]
    )
    assert code == 0
    ran = capsys.readouterr()
    assert "materialized 8 day(s) 2026-01-05..2026-01-12" in ran.out
    # Two warnings let the run go on: the January 2026 data is stale today (freshness), and
    # one of the two rows of 8 January is quarantined (sessions "abc"): 50 % of that day,
    # over the 5 % quarantine_rate limit, which holds that week (below).
    assert [line for line in ran.err.splitlines() if line.startswith("check ")] == [
        "check freshness on raw/csv_traffic failed (warn): 1 of 1 row(s) fail",
        "check quarantine_rate on raw/csv_traffic failed (warn): 1 of 8 row(s) fail",
    ]
    # Every other check the plan declares passed.
    declared = len(build_definitions(tiny_project.plan_path).resolve_asset_graph().asset_check_keys)
    assert ran.out.splitlines()[-1] == (
        f"data checks: {declared - 2} passed, 2 failed (see above; marts.check_results has the "
        "history)"
    )
    assert main(["scorecard", "--plan", str(tiny_project.plan_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "objective", "KPI", "grain", "period", "value", "expected", "target", "status", "hold"
    ]  # fmt: skip
    rows = [" ".join(line.split()) for line in lines[2:]]
    # Latest closed periods: day 2026-01-12 (5/50), week W02 (29/1510); January is partial.
    # A period is compared with the path's average over its days (baseline 2026-01-01,
    # target by 2026-12-31: span 364 days).
    # Day Jan 12, offset 11: 0.01 + 0.02 x 11/364 = 0.010604; Wilson 95 % of 5/50 is
    # [0.0435, 0.2136], wholly above 0.03: achieved.
    # W02 Mon 5..Sun 11, offsets 4..10, midpoint 7: conversion 0.01 + 0.02 x 7/364 = 0.010385;
    # form completion 0.4 + 0.2 x 7/364 = 0.403846 (10/20 = 50 %, ahead: on track);
    # form submits 8 + 12 x 7/364 = 8.23 (shown as 8; 10 is ahead: on track).
    # W02 holds 8 January, flagged by the quarantine burst: its alerts wait.
    assert rows == [
        "1. Sell more Conversion rate day 2026-01-12 10.00% 1.06% 3.00% achieved",
        "1. Sell more Conversion rate week 2026-W02 1.92% 1.04% 3.00% on_track held: "
        "check:quarantine_rate",
        "1. Sell more Form completion week 2026-W02 50.00% 40.38% 60.00% on_track held: "
        "check:quarantine_rate",
        "1. Sell more Form submits week 2026-W02 10 8 20 on_track held: check:quarantine_rate",
    ]


def test_run_reports_the_failing_step_and_its_cause(tiny_project, monkeypatch, capsys):
    monkeypatch.setenv("KPI_WAREHOUSE_URL", tiny_project.warehouse_url)
    tiny_project.export_path.write_text("date,source\n2026-01-05,google\n", encoding="utf-8")
    assert main(["run", "--plan", str(tiny_project.plan_path), "--date", "2026-01-05"]) == 1
    err = capsys.readouterr().err
    assert "step csv_exports failed:" in err
    assert "missing medium (one of: medium, session_medium" in err
    assert "Found: date, source" in err
