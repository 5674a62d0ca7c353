"""Known failures as one line and an exit code; anything else as one line and a hint.

Exit codes (README, "Command line"):
  0  the command did what it was asked
  1  the run (or the read) failed: a step failed, the warehouse is busy, no scores yet
  2  usage or configuration: bad arguments, dates, plan, warehouse URL, missing variables

`--debug` prints the traceback as well. Exceptions are classified by type, never by their
message; a known error Dagster wrapped (a resource's or a step's) is found in the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

OK = 0
RUN_FAILED = 1
USAGE = 2


class CliError(Exception):
    """A failure the command detected itself: its message is the whole story."""

    code = RUN_FAILED


class UsageError(CliError):
    """Bad arguments or configuration: nothing was run."""

    code = USAGE


class RunFailedError(CliError):
    code = RUN_FAILED


@dataclass(frozen=True)
class Outcome:
    message: str
    code: int


def classify(exc: BaseException) -> Outcome:
    """The message and exit code for `exc` (an unknown exception is a failed run)."""
    from kpi_pipeline.plan.loader import PlanError
    from kpi_pipeline.sources.credentials import MissingCredentialsError
    from kpi_pipeline.warehouse.errors import WarehouseBusyError, WarehouseError, WarehouseTimeout

    if isinstance(exc, CliError):
        return Outcome(str(exc), exc.code)
    if isinstance(exc, KeyboardInterrupt):
        return Outcome("interrupted", 130)
    if isinstance(exc, PlanError):
        # One problem reads as one line; several keep the loader's list, one per line.
        text = f"invalid plan: {exc.issues[0]}" if len(exc.issues) == 1 else str(exc)
        return Outcome(text, USAGE)
    if isinstance(exc, WarehouseBusyError | WarehouseTimeout):
        return Outcome(str(exc), RUN_FAILED)
    if isinstance(exc, WarehouseError):
        return Outcome(str(exc), USAGE)
    missing = _in_chain(exc, MissingCredentialsError)
    if missing is not None:
        return Outcome(str(missing), USAGE)
    if isinstance(exc, OSError) and exc.filename is not None:
        return Outcome(f"{exc.filename}: {exc.strerror or exc}", USAGE)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return Outcome(
        f"unexpected error: {type(exc).__name__}: {first} (run `kpi-pipeline --debug ...` "
        "for the traceback, and report it)",
        RUN_FAILED,
    )


E = TypeVar("E", bound=BaseException)


def _in_chain(exc: BaseException, kind: type[E]) -> E | None:
    """`exc` or the first exception of type `kind` it wraps: Dagster keeps a resource's or a
    step's error as `user_exception` and as the cause (an error raised while handling another
    is not wrapping it, so `__context__` is not followed)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = getattr(current, "user_exception", None) or current.__cause__
    return None
