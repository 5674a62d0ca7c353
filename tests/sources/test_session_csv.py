"""Session-level CSV sources, checked on a real retailer's data set and on small broken files."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from kpi_pipeline.plan.session_csv_config import FlagColumn, SessionCsvSource, SessionPeriod
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.sources.session_csv import read_session_csvs
from kpi_pipeline.warehouse.engine import read_frame_once

ROOT = Path(__file__).resolve().parents[2]
SHOPPERS_PLAN = ROOT / "plan_config" / "online_shoppers.yaml"
SHOPPERS_CSV = ROOT.parent / "shared" / "data" / "online_shoppers_intention.csv"
# The file's own month spellings ("June" is the only full name).
MONTHS = {
    "Feb": 2, "Mar": 3, "May": 5, "June": 6, "Jul": 7,
    "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip


@pytest.fixture(scope="module")
def shoppers_values(tmp_path_factory) -> pd.DataFrame:
    assert SHOPPERS_CSV.exists(), f"the shared data set is missing: {SHOPPERS_CSV}"
    url = f"duckdb:///{tmp_path_factory.mktemp('shoppers') / 'kpi.duckdb'}"
    result = run_days(SHOPPERS_PLAN, dt.date(2017, 1, 1), dt.date(2017, 12, 31), warehouse_url=url)
    assert result.success, step_failures(result)
    return read_frame_once(
        url,
        "select period_label, segment_type, segment, numerator, denominator, value "
        "from marts.kpi_values where kpi_id = 'purchase_conversion_rate'",
        plan_id="online_shoppers",
    )


def _expected(by: list[str]) -> pd.DataFrame:
    """The same rates computed by pandas straight from the file: ratios of monthly sums."""
    raw = pd.read_csv(SHOPPERS_CSV)
    raw["period_label"] = raw["Month"].map(lambda m: f"2017-{MONTHS[m]:02d}")
    grouped = raw.groupby(["period_label", *by])["Revenue"].agg(["sum", "count"]).reset_index()
    grouped["value"] = grouped["sum"] / grouped["count"]
    return grouped


def test_real_data_totals_match_the_published_figures(shoppers_values):
    whole = shoppers_values[shoppers_values.segment_type == "all"]
    # The data set's README: 1,908 purchases in 12,330 sessions.
    assert (whole.numerator.sum(), whole.denominator.sum()) == (1908.0, 12330.0)


def test_real_data_monthly_rates_equal_pandas(shoppers_values):
    expected = _expected([])
    whole = shoppers_values[shoppers_values.segment_type == "all"].set_index("period_label")
    # The file holds February to December but no April (the data set has none): the file
    # covers April all the same, so April is a covered month with no session, 0 / 0 (no
    # value: insufficient data), not a missing row. January precedes the file.
    assert sorted(whole.index) == sorted([*expected.period_label, "2017-04"])
    april = whole.loc["2017-04"]
    assert (april.numerator, april.denominator) == (0.0, 0.0)
    assert pd.isna(april.value)
    for row in expected.itertuples():
        assert whole.loc[row.period_label, "numerator"] == row.sum
        assert whole.loc[row.period_label, "denominator"] == row.count
        assert whole.loc[row.period_label, "value"] == pytest.approx(row.value, abs=1e-12)


def test_real_data_monthly_rates_by_visitor_type_equal_pandas(shoppers_values):
    expected = _expected(["VisitorType"])
    by_audience = shoppers_values[shoppers_values.segment_type == "audience"]
    got = {
        (r.period_label, r.segment): (r.numerator, r.denominator, r.value)
        for r in by_audience.itertuples()
    }
    assert len(got) == len(expected)
    for row in expected.itertuples():
        numerator, denominator, value = got[(row.period_label, row.VisitorType)]
        assert (numerator, denominator) == (row.sum, row.count)
        assert value == pytest.approx(row.value, abs=1e-12)


def _source(**changes) -> SessionCsvSource:
    fields = {
        "id": "visits",
        "path": "*.csv",
        "period": SessionPeriod(column="Month", format="month_name", year=2017),
        "converted": FlagColumn(column="Revenue"),
        "audience": "VisitorType",
    } | changes
    return SessionCsvSource(**fields)


def test_bad_rows_are_quarantined_with_their_reason(tmp_path):
    (tmp_path / "a.csv").write_text(
        "Month,VisitorType,Revenue\n"
        "Feb,New_Visitor,TRUE\n"
        "Febuary,New_Visitor,TRUE\n"  # a misspelt month
        "Mar,Returning_Visitor,maybe\n"  # not a yes/no value
        "Mar,Returning_Visitor\n"  # a field missing
        "mars,,false\n",  # French month, empty audience
        encoding="utf-8",
    )
    extract = read_session_csvs(_source(), tmp_path, dt.date(2017, 1, 1), dt.date(2017, 12, 31))
    kept = extract.sessions[["date", "audience", "converted", "line"]]
    assert list(kept.itertuples(index=False, name=None)) == [
        (pd.Timestamp("2017-02-01"), "New_Visitor", True, 2),
        (pd.Timestamp("2017-03-01"), "(not set)", False, 6),
    ]  # fmt: skip
    reasons = extract.quarantine[["line", "column_name", "reason"]].astype(object)
    assert list(reasons.itertuples(index=False, name=None)) == [
        (3, "Month", "cannot read 'Febuary' as a month name (year 2017)"),
        (4, "Revenue", "not a yes/no value: 'maybe'"),
        (5, None, "expected 3 fields, found 2"),
    ]


def test_a_month_name_period_needs_a_year():
    # The file cannot tell the year: silently guessing one would misplace a whole year.
    with pytest.raises(ValueError, match="month-name period needs the `year`"):
        SessionPeriod(column="Month", format="month_name")
