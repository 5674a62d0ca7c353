"""How a plan declares CSV exports: where the files are and how to read the ones people have.

Every reading option can be declared or left to detection (`auto`): delimiter, decimal
separator and date format are detected per file; headers are matched against English and
French GA4 names unless the plan names its own.
"""

from __future__ import annotations

import codecs
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kpi_pipeline.plan.base import ALLOW_MISSING_DAYS_DESCRIPTION, Identifier, StrictModel

# Header names tried in order (case and spacing ignored) when the plan names none.
DEFAULT_HEADERS: dict[str, tuple[str, ...]] = {
    "date": ("date", "jour"),
    "source": ("source", "session_source", "session source", "source de la session"),
    "medium": ("medium", "session_medium", "session medium", "support de la session"),
    "campaign": (
        "campaign",
        "session_campaign",
        "session campaign",
        "session campaign name",
        "campagne de la session",
    ),
    "landing_page": (
        "landing_page",
        "landing page",
        "landing page + query string",
        "page de destination",
        "page de destination + chaîne de requête",
    ),
    "device": (
        "device",
        "device_category",
        "device category",
        "catégorie d'appareil",
        "catégorie d’appareil",
    ),
    "sessions": ("sessions",),
    "engaged_sessions": ("engaged_sessions", "engaged sessions", "sessions avec engagement"),
    "key_events": ("key_events", "key events", "événements clés", "conversions"),
}

DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%d.%m.%Y")


Headers = str | tuple[str, ...]


class CsvColumns(StrictModel):
    """Which header holds each field; a list gives alternatives, the first present wins."""

    date: Headers = DEFAULT_HEADERS["date"]
    source: Headers = DEFAULT_HEADERS["source"]
    medium: Headers = DEFAULT_HEADERS["medium"]
    campaign: Headers = DEFAULT_HEADERS["campaign"]
    landing_page: Headers = DEFAULT_HEADERS["landing_page"]
    device: Headers = DEFAULT_HEADERS["device"]
    sessions: Headers = DEFAULT_HEADERS["sessions"]
    engaged_sessions: Headers = DEFAULT_HEADERS["engaged_sessions"]
    key_events: Headers = DEFAULT_HEADERS["key_events"]

    def candidates(self) -> dict[str, tuple[str, ...]]:
        """Field -> header names to look for, in order."""
        return {
            field: (value,) if isinstance(value, str) else value
            for field, value in self.model_dump().items()
        }


class CsvSource(StrictModel):
    """GA4-style daily exports as CSV files; `path` is a glob relative to the plan file."""

    id: Identifier
    path: str
    delimiter: str = Field(
        default="auto", description="One character, or `auto` to detect it from the header."
    )
    encoding: str = Field(
        default="utf-8",
        description="A Python codec name, or `auto`: UTF-8, else Windows-1252. A byte-order "
        "mark decides (UTF-8, UTF-16 or UTF-32) whatever is declared.",
    )
    decimal: Literal[".", ",", "auto"] = "."
    thousands: Literal["", ",", ".", " ", "'"] = ""
    date_format: str = Field(
        default="auto",
        description=f"strftime format, or `auto` to pick per file among {', '.join(DATE_FORMATS)}.",
    )
    columns: CsvColumns = Field(default_factory=CsvColumns)
    allow_missing_days: bool = Field(default=False, description=ALLOW_MISSING_DAYS_DESCRIPTION)
    event_columns: dict[str, Headers] = Field(
        default_factory=dict, description="Event name -> header(s) of its count column."
    )

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if value != "auto" and len(value) != 1:
            raise ValueError(f"delimiter must be one character or auto, not {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _separators_differ(self) -> CsvSource:
        if self.thousands and self.thousands == self.decimal:
            raise ValueError("thousands and decimal separators must differ")
        return self
