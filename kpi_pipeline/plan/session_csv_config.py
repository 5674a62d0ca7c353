"""Session-level CSV sources: one row per visit with a conversion flag, as many data sets ship.

Such files often carry no full date (a month name, no year), so the plan declares how to
read the period and, when the file cannot tell, the year.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from kpi_pipeline.plan.base import ALLOW_MISSING_DAYS_DESCRIPTION, Identifier, StrictModel

TRUE_VALUES = ("true", "1", "yes", "y", "t")


class SessionPeriod(StrictModel):
    """Which column dates a session: a date in `format`, or a month name in `year`."""

    column: str
    format: Literal["month_name"] | str = "%Y-%m-%d"
    year: int | None = Field(default=None, ge=1990, le=2100)

    @model_validator(mode="after")
    def _month_names_need_a_year(self) -> SessionPeriod:
        if self.format == "month_name" and self.year is None:
            raise ValueError("a month-name period needs the `year` the file's months belong to")
        return self


class FlagColumn(StrictModel):
    """A yes/no column (e.g. Revenue = TRUE); values are compared case-insensitively."""

    column: str
    true_values: tuple[str, ...] = TRUE_VALUES
    false_values: tuple[str, ...] = ("false", "0", "no", "n", "f")


class SessionCsvSource(StrictModel):
    """One row per session; sessions, conversions and engagement are counted per day."""

    id: Identifier
    path: str = Field(description="Glob relative to the plan file.")
    delimiter: str = Field(default="auto", description="One character, or `auto`.")
    encoding: str = "utf-8"
    period: SessionPeriod
    converted: FlagColumn = Field(description="The column saying the session converted.")
    engaged: FlagColumn | None = None
    allow_missing_days: bool = Field(default=False, description=ALLOW_MISSING_DAYS_DESCRIPTION)
    audience: str | None = Field(
        default=None, description="Column whose values form the `audience` segment."
    )
    source: str = "(not set)"
    medium: str = "(not set)"
    campaign: str = "(not set)"
