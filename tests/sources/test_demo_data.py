"""Tests for the deterministic GA4-style demo data generator."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from kpi_pipeline.sources.demo_data import (
    BAD_ROWS,
    COLUMNS,
    COUNT_COLUMNS,
    DEMO_END,
    DEMO_START,
    KEY_COLUMNS,
    build_demo_frame,
    write_demo_exports,
)


@pytest.fixture(scope="module")
def full_frame() -> pd.DataFrame:
    return build_demo_frame(DEMO_START, DEMO_END)


@pytest.fixture(scope="module")
def full_exports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_demo_exports(tmp_path_factory.mktemp("exports"), DEMO_START, DEMO_END)


def _rate(frame: pd.DataFrame, first: str, last: str, numerator: str, denominator: str) -> float:
    window = frame[(frame["date"] >= first) & (frame["date"] <= last)]
    return window[numerator].sum() / window[denominator].sum()


def _is_valid_line(fields: list[str]) -> bool:
    """True if a CSV record parses as a well-formed export row."""
    if len(fields) != len(COLUMNS):
        return False
    try:
        dt.date.fromisoformat(fields[0])
    except ValueError:
        return False
    return all(value.isdigit() for value in fields[len(KEY_COLUMNS) :])


def _records(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


# --- Shape ------------------------------------------------------------------------------


def test_columns_types_and_date_format(full_frame: pd.DataFrame) -> None:
    assert list(full_frame.columns) == list(COLUMNS)
    assert full_frame["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert full_frame["date"].iloc[0] == "2025-06-01"
    assert full_frame["date"].iloc[-1] == "2026-11-25"
    for column in COUNT_COLUMNS:
        assert pd.api.types.is_integer_dtype(full_frame[column]), column


def test_catalogue_labels(full_frame: pd.DataFrame) -> None:
    one_day = full_frame[full_frame["date"] == "2025-06-10"]
    campaigns = set(one_day["session_campaign"])
    assert {"nl_2025_06", "cart_abandon_flow", "brand_northwind", "generic_tents"} <= campaigns
    assert {"quote_group_orders", "guide_sleeping_bags", "howto_tent_setup"} <= campaigns
    assert set(full_frame["device_category"]) == {"desktop", "mobile", "tablet"}
    # The newsletter campaign follows the month of the row.
    newsletter = full_frame[full_frame["session_source"] == "newsletter"]
    expected = "nl_" + newsletter["date"].str.slice(0, 4) + "_" + newsletter["date"].str[5:7]
    assert (newsletter["session_campaign"] == expected).all()


# --- Determinism ------------------------------------------------------------------------


def test_same_seed_gives_identical_frames() -> None:
    start, end = dt.date(2025, 6, 1), dt.date(2025, 7, 15)
    first = build_demo_frame(start, end, seed=11)
    pd.testing.assert_frame_equal(first, build_demo_frame(start, end, seed=11))
    assert not first.equals(build_demo_frame(start, end, seed=12))


def test_day_does_not_depend_on_range() -> None:
    day = dt.date(2025, 8, 20)
    alone = build_demo_frame(day, day)
    longer = build_demo_frame(dt.date(2025, 6, 1), dt.date(2025, 12, 31))
    inside = longer[longer["date"] == day.isoformat()].reset_index(drop=True)
    assert len(alone) > 0
    pd.testing.assert_frame_equal(alone, inside)


def test_same_args_give_byte_identical_files(tmp_path: Path, full_exports: list[Path]) -> None:
    again = write_demo_exports(tmp_path / "again", DEMO_START, DEMO_END)
    assert [p.name for p in again] == [p.name for p in full_exports]
    for left, right in zip(full_exports, again, strict=True):
        assert left.read_bytes() == right.read_bytes(), left.name


def test_rerun_removes_stale_exports(tmp_path: Path) -> None:
    stale = tmp_path / "ga4_export_1999-01.csv"
    stale.write_text("old\n", encoding="utf-8")
    unrelated = tmp_path / "notes.csv"
    unrelated.write_text("keep\n", encoding="utf-8")
    first = write_demo_exports(tmp_path, dt.date(2025, 6, 20), dt.date(2025, 7, 5))
    snapshot = {p.name: p.read_bytes() for p in first}
    second = write_demo_exports(tmp_path, dt.date(2025, 6, 20), dt.date(2025, 7, 5))

    assert not stale.exists()
    assert unrelated.exists()
    assert sorted(p.name for p in tmp_path.glob("ga4_export_*.csv")) == sorted(snapshot)
    assert {p.name: p.read_bytes() for p in second} == snapshot


# --- Files ------------------------------------------------------------------------------


def test_one_sorted_file_per_month(full_exports: list[Path]) -> None:
    assert full_exports == sorted(full_exports)
    assert len(full_exports) == 18  # 2025-06 .. 2026-11
    assert full_exports[0].name == "ga4_export_2025-06.csv"
    assert full_exports[-1].name == "ga4_export_2026-11.csv"
    raw = full_exports[0].read_bytes()
    assert b"\r" not in raw
    assert raw.endswith(b"\n")
    assert raw.decode("utf-8").split("\n", 1)[0] == ",".join(COLUMNS)


def test_files_hold_the_frame(tmp_path: Path) -> None:
    start, end = dt.date(2025, 6, 25), dt.date(2025, 7, 3)
    paths = write_demo_exports(tmp_path, start, end, inject_bad_rows=False)
    read = pd.concat([pd.read_csv(p, dtype={"date": str}) for p in paths], ignore_index=True)
    expected = build_demo_frame(start, end)
    assert read.astype(str).equals(expected.astype(str))


# --- Invariants -------------------------------------------------------------------------


def test_count_invariants(full_frame: pd.DataFrame) -> None:
    f = full_frame
    assert (f[list(COUNT_COLUMNS)] >= 0).all().all()
    assert (f["sessions"] > 0).all()
    assert (f["engaged_sessions"] <= f["sessions"]).all()
    assert (f["key_events"] <= f["sessions"]).all()
    assert (f["key_events"] <= f["engaged_sessions"]).all()
    assert (f["form_submit_events"] <= f["form_start_events"]).all()
    assert not f.duplicated(list(KEY_COLUMNS)).any()


def test_volumes(full_frame: pd.DataFrame) -> None:
    days = full_frame["date"].nunique()
    assert 3600 <= full_frame["sessions"].sum() / days <= 4400
    starts_per_day = full_frame["form_start_events"].sum() / days
    assert 24 <= starts_per_day <= 30
    quote = full_frame["landing_page"].eq("/quote") | full_frame["session_campaign"].eq(
        "quote_group_orders"
    )
    assert full_frame.loc[quote, "form_start_events"].sum() > 0.8 * (starts_per_day * days)
    devices = full_frame.groupby("device_category")["sessions"].sum() / full_frame["sessions"].sum()
    assert devices["desktop"] == pytest.approx(0.40, abs=0.03)
    assert devices["mobile"] == pytest.approx(0.52, abs=0.03)
    assert devices["tablet"] == pytest.approx(0.08, abs=0.02)


def test_weekends_busier_than_weekdays(full_frame: pd.DataFrame) -> None:
    quarter = full_frame[
        (full_frame["date"] >= "2025-07-01") & (full_frame["date"] <= "2025-09-30")
    ]
    daily = quarter.groupby("date")["sessions"].sum()
    weekend = pd.to_datetime(daily.index).dayofweek >= 5
    assert daily[weekend].mean() > 1.05 * daily[~weekend].mean()


# --- Calibrated trends ------------------------------------------------------------------


def test_conversion_rate_trend(full_frame: pd.DataFrame) -> None:
    start = _rate(full_frame, "2025-06-01", "2025-06-30", "key_events", "sessions")
    end = _rate(full_frame, "2026-11-01", "2026-11-25", "key_events", "sessions")
    assert start == pytest.approx(0.0183, abs=0.0015)
    assert end == pytest.approx(0.0240, abs=0.0015)


def test_engagement_rate_slips(full_frame: pd.DataFrame) -> None:
    start = _rate(full_frame, "2025-06-01", "2025-06-30", "engaged_sessions", "sessions")
    end = _rate(full_frame, "2026-10-01", "2026-11-25", "engaged_sessions", "sessions")
    assert 0.50 <= start <= 0.54
    assert 0.50 <= end <= 0.56


def test_form_completion_steps_up_after_redesign(full_frame: pd.DataFrame) -> None:
    before = _rate(
        full_frame, "2025-06-01", "2025-12-31", "form_submit_events", "form_start_events"
    )
    after = _rate(full_frame, "2026-10-01", "2026-11-25", "form_submit_events", "form_start_events")
    assert 0.31 <= before <= 0.37
    assert 0.46 <= after <= 0.53


def test_tactic_effects(full_frame: pd.DataFrame) -> None:
    by_medium = full_frame.groupby("session_medium")[["sessions", "key_events"]].sum()
    rate = by_medium["key_events"] / by_medium["sessions"]
    overall = full_frame["key_events"].sum() / full_frame["sessions"].sum()
    assert rate["email"] > 1.5 * overall
    assert rate["social"] < 0.6 * overall
    by_device = full_frame.groupby("device_category")[["sessions", "key_events"]].sum()
    device_rate = by_device["key_events"] / by_device["sessions"]
    assert device_rate["desktop"] > device_rate["mobile"]


# --- Deliberately malformed rows --------------------------------------------------------


def test_bad_rows_injected_where_documented(full_exports: list[Path]) -> None:
    by_name = {p.name: _records(p) for p in full_exports}
    invalid = {
        (name, tuple(record))
        for name, records in by_name.items()
        for record in records[1:]
        if not _is_valid_line(record)
    }
    assert len(invalid) == 3

    for bad in BAD_ROWS:
        records = by_name[f"ga4_export_{bad.anchor:%Y-%m}.csv"]
        fields = bad.line.split(",")
        index = records.index(fields)
        # Directly after the last row of the anchor day.
        assert records[index - 1][0] == bad.anchor.isoformat()
        assert index + 1 == len(records) or records[index + 1][0] > bad.anchor.isoformat()

    na_row, date_row, short_row = (bad.line.split(",") for bad in BAD_ROWS)
    assert na_row[COLUMNS.index("sessions")] == "n/a"
    assert len(na_row) == len(COLUMNS)
    assert date_row[0] == "2026-04-31"
    with pytest.raises(ValueError):
        dt.date.fromisoformat(date_row[0])
    assert len(short_row) == len(COLUMNS) - 1
    assert ("ga4_export_2025-09.csv", tuple(na_row)) in invalid
    assert ("ga4_export_2026-04.csv", tuple(date_row)) in invalid
    assert ("ga4_export_2026-08.csv", tuple(short_row)) in invalid


def test_no_bad_rows_when_disabled(tmp_path: Path) -> None:
    paths = write_demo_exports(tmp_path, DEMO_START, DEMO_END, inject_bad_rows=False)
    for path in paths:
        records = _records(path)
        assert records[0] == list(COLUMNS)
        assert all(_is_valid_line(record) for record in records[1:]), path.name


def test_bad_rows_only_when_range_covers_them(tmp_path: Path) -> None:
    # Covers the April file but not its last day, and September 14 itself.
    paths = write_demo_exports(tmp_path, dt.date(2025, 9, 14), dt.date(2026, 4, 29))
    invalid = [
        record for path in paths for record in _records(path)[1:] if not _is_valid_line(record)
    ]
    assert invalid == [BAD_ROWS[0].line.split(",")]


def test_reversed_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="after end"):
        build_demo_frame(dt.date(2025, 7, 1), dt.date(2025, 6, 1))
