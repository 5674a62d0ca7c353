"""Which warehouses have roles to grant: PostgreSQL only. Said once, for the command line (before
it opens anything) and for `Warehouse.grant_readonly`; light enough to import at start.
"""

from __future__ import annotations

# The backends `create_warehouse_engine` opens as PostgreSQL (`postgres://` is an alias).
_POSTGRES_BACKENDS = frozenset({"postgresql", "postgres"})
_SHOWN_AS = {"duckdb": "DuckDB"}


def url_backend(url: str) -> str:
    """The backend of a SQLAlchemy URL (`postgresql+psycopg://...` -> `postgresql`)."""
    return url.partition(":")[0].partition("+")[0].lower()


def has_roles(backend: str) -> bool:
    """Whether a warehouse of `backend` (a URL's backend or an engine's dialect name) has
    roles that `grant-readonly` can give SELECT to."""
    return backend in _POSTGRES_BACKENDS


def no_roles_message(backend: str) -> str:
    """Why `grant-readonly` cannot run on a warehouse of `backend`, and what to do instead."""
    return (
        f"grant-readonly needs PostgreSQL; a {_SHOWN_AS.get(backend, backend)} warehouse has no "
        "roles (give analysts a copy of the file, opened read-only)"
    )
