"""Pure KPI maths: periods, ratios and scoring. No Dagster, no SQL."""
