"""Building blocks shared by every plan model (and by plan sections in their own modules)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

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


# Every number of a plan ends up in a warehouse column: integers in 32-bit integer columns
# (priorities, months, days, page sizes...), other numbers in double columns. A value the column
# cannot hold must be refused here, where it is written, not crash the run.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
FLOAT_LIMIT = 1e15  # floats must be finite and within +-FLOAT_LIMIT
_FLOAT_LIMIT = f"{FLOAT_LIMIT:.0e}".replace("e+", "e")  # 1e15


class StrictModel(BaseModel):
    """Base for every plan model: unknown keys are errors, values are immutable, and every
    number (also inside lists and mappings) fits the warehouse column that stores it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _numbers_fit_the_warehouse(cls, value: Any) -> Any:
        errors: list[InitErrorDetails] = []
        _check_numbers(value, (), errors)
        if errors:
            # A ValidationError raised here is nested under the field: each error keeps the
            # position of the number inside the field (e.g. `weights[2]`).
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return value


def number_problem(value: object) -> str | None:
    """Why a warehouse column cannot hold `value`, or None (also None for non-numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if INT_MIN <= value <= INT_MAX:
            return None
        return (
            f"{_show_int(value)} is outside the range of a warehouse integer column "
            f"(32-bit: {INT_MIN} to {INT_MAX})"
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            return (
                f"{value} is not a finite number: a warehouse number column holds finite "
                f"numbers within ±{_FLOAT_LIMIT}"
            )
        if abs(value) > FLOAT_LIMIT:
            return f"{value:g} is outside the range of a warehouse number column (±{_FLOAT_LIMIT})"
    return None


def _check_numbers(value: object, loc: tuple[int | str, ...], errors: list[InitErrorDetails]):
    if isinstance(value, BaseModel):
        return  # a nested plan model checked its own fields
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(key, loc, errors)
            _check_numbers(item, (*loc, str(key)), errors)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_numbers(item, (*loc, index), errors)
        return
    if isinstance(value, set | frozenset):
        for item in value:
            _check_numbers(item, loc, errors)
        return
    problem = number_problem(value)
    if problem:
        error = PydanticCustomError("number_out_of_range", "{problem}", {"problem": problem})
        errors.append(InitErrorDetails(type=error, loc=loc, input=value))


def _show_int(value: int) -> str:
    if value.bit_length() <= 200:
        return str(value)
    # str() of a huge integer is slow, and refused past 4300 digits.
    return f"a {int(value.bit_length() * math.log10(2)) + 1}-digit number"
