"""Building blocks shared by every plan model (and by plan sections in their own modules)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Identifiers end up as SQL values and Dagster names: keep them boring.
IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
# A plan's id prefixes its warehouse schemas (`<id>_marts`): shorter, so the schema name
# stays within PostgreSQL's 63 bytes.
PLAN_ID_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
PlanId = Annotated[str, Field(pattern=PLAN_ID_PATTERN)]

# Per-source setting: a day that had rows and now reads none is accepted as empty.
ALLOW_MISSING_DAYS_DESCRIPTION = (
    "Accept a day that had rows and now reads none (the day becomes empty). Off by default: "
    "such a day keeps its rows and the run fails, naming the source and the day."
)


class StrictModel(BaseModel):
    """Base for every plan model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
