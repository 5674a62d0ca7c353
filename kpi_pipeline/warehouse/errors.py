"""The warehouse's errors, in a module light enough for the command line to import at start.

Each is a known failure with a message that says what happened and what to do: the CLI
prints it as one line, without a traceback.
"""

from __future__ import annotations


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the transaction was rolled back."""


class WarehouseBusyError(WarehouseError):
    """Another run holds what this run needs (a partition, or DuckDB's single writer slot)."""


class WarehouseTimeout(WarehouseError):
    """PostgreSQL did not answer, a lock was not granted, or a statement ran too long, within
    the configured time (`connect_timeout`, `lock_timeout`, `statement_timeout`)."""
