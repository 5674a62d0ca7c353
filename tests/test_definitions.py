"""The Dagster definitions load, validate with Dagster's own CLI, and keep their shape."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from kpi_pipeline.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[1]

# Changing this list is a deliberate act: analysts and schedules refer to these keys.
EXPECTED_ASSET_KEYS = {
    "intermediate/int_email__measures",
    "intermediate/int_web_analytics__measures",
    "intermediate/int_ga4__quality_flags_daily",
    "intermediate/int_kpi_measures_daily",
    # The days each KPI's sources all covered: what its periods are judged on.
    "intermediate/int_kpi_days_covered",
    "intermediate/int_quality_flags_daily",
    "intermediate/int_measures_unioned",
    "intermediate/int_session_csv__measures",
    "intermediate/int_measures_aggregated_daily",
    "intermediate/int_traffic_sources_daily",
    "intermediate/int_traffic_sources_mapped_to_tactics",
    "marts/kpi_scores",
    "marts/kpi_snapshots",
    "marts/kpi_values",
    # Objective roll-up and tactic ranking (scoring), alert state and delivery (alerts).
    "marts/alert_state",
    "marts/kpi_period_to_date",
    "marts/objective_status",
    "marts/tactic_ranking",
    "marts/unmapped_traffic",
    "plan/calendar",
    # The self-contained HTML report, written after scoring.
    "reports/kpi_report",
    "plan/kpi_grains",
    "plan/kpi_segments",
    "plan/kpi_sources",
    "plan/kpi_tactics",
    "plan/sources",
    "plan/kpis",
    "plan/measures",
    "plan/tactic_rules",
    "raw/csv_events",
    "raw/csv_traffic",
    "raw/session_csv_rows",
    # Email tables too (empty without email sources); their API resources only when declared.
    "raw/email_campaigns",
    "raw/email_list_growth",
    # GA4 tables exist in every plan (empty without GA4 sources): the SQL models read them.
    "raw/ga4_events",
    "raw/ga4_extract_log",
    "raw/ga4_period_users",
    "raw/ga4_traffic",
    "staging/stg_csv__events",
    "staging/stg_csv__traffic",
    "staging/stg_session_csv__sessions",
    "staging/stg_email__campaigns",
    "staging/stg_ga4__events",
    "staging/stg_ga4__extract_log",
    "staging/stg_ga4__period_users",
    "staging/stg_ga4__traffic",
    # Staging of raw.source_days, which the loaders write alongside their own tables: the
    # raw table itself is not an asset.
    "staging/stg_loading__source_days",
    "staging/stg_checks__flags",
}


def test_asset_keys_groups_and_partitions():
    defs = build_definitions(ROOT / "plan_config" / "demo.yaml", warehouse_url="duckdb:///:memory:")
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSET_KEYS
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {"plan", "sources", "staging", "kpis", "scoring", "alerts", "reporting"}
    raw = graph.get(dg.AssetKey(["raw", "csv_traffic"]))
    assert raw.partitions_def.timezone == "America/Toronto"
    assert raw.partitions_def.start.date().isoformat() == "2025-06-01"
    assert raw.backfill_policy == dg.BackfillPolicy.single_run()
    # SQL dependencies come from ref()/source(): kpi_values reads the daily KPI measures
    # and the days they cover.
    parents = graph.get(dg.AssetKey(["marts", "kpi_values"])).parent_keys
    assert dg.AssetKey(["intermediate", "int_kpi_measures_daily"]) in parents
    assert dg.AssetKey(["intermediate", "int_kpi_days_covered"]) in parents
    # raw.source_days has several writers: its readers depend on each of them.
    coverage = graph.get(dg.AssetKey(["staging", "stg_loading__source_days"])).parent_keys
    assert {dg.AssetKey(["raw", "ga4_traffic"]), dg.AssetKey(["raw", "csv_traffic"])} <= coverage
    schedule = defs.resolve_schedule_def("daily_kpis_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "America/Toronto"


def test_warehouse_url_comes_from_an_env_var(monkeypatch):
    secret_url = "postgresql+psycopg://analyst:s3cret@127.0.0.1:5432/test"
    monkeypatch.setenv("KPI_WAREHOUSE_URL", secret_url)
    defs = build_definitions(ROOT / "plan_config" / "demo.yaml")
    warehouse = defs.resources["warehouse"]
    # An EnvVar, not its value: the UI shows the variable's name, never the password.
    assert isinstance(warehouse.url, dg.EnvVar)
    assert warehouse.url.env_var_name == "KPI_WAREHOUSE_URL"
    assert "s3cret" not in repr(warehouse)


def test_dagster_definitions_validate_passes():
    env = {**os.environ, "DAGSTER_HOME": ""}
    env.pop("DAGSTER_HOME")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
