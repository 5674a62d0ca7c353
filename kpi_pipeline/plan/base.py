"""Building blocks shared by every plan model (and by plan sections in their own modules)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Identifiers end up as SQL values and Dagster names: keep them boring.
IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]


class StrictModel(BaseModel):
    """Base for every plan model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
