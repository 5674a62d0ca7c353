"""The environment variables a plan's sources read their credentials from, and the error raised
when one is not set.

The value (a key file's path, an API key) reaches Dagster as a `dg.EnvVar`, so the UI shows
the variable's name, never the value. A variable that is not set (or empty) gives no EnvVar;
the resource that needed it raises `MissingCredentialsError` when its source is read, naming
the variable, the source and what to do. The command line classifies it by type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kpi_pipeline.plan.email_config import EmailSource
    from kpi_pipeline.plan.ga4 import Ga4Source
    from kpi_pipeline.plan.models import Plan


@dataclass(frozen=True)
class CredentialsVariable:
    """One variable a source reads its credentials from."""

    variable: str
    source: str  # the source, as a person reads it: "GA4 source 'site'"
    holds: str  # what the value is: "its API key"

    def is_set(self, environ: Mapping[str, str]) -> bool:
        """Set and not empty (an empty key or path is no credential)."""
        return bool(environ.get(self.variable))


def ga4_credentials(source: Ga4Source) -> CredentialsVariable:
    return CredentialsVariable(
        source.credentials_env_var,
        f"GA4 source {source.id!r}",
        "the path of its service-account key file",
    )


def email_credentials(source: EmailSource) -> CredentialsVariable:
    return CredentialsVariable(
        source.api_key_env_var, f"email source {source.id!r} ({source.platform})", "its API key"
    )


def credentials_variables(plan: Plan) -> list[CredentialsVariable]:
    """Every variable the plan's declared GA4 and email sources read, in plan order."""
    return [ga4_credentials(s) for s in plan.sources.ga4] + [
        email_credentials(s) for s in plan.sources.email
    ]


class MissingCredentialsError(LookupError):
    """A source's credentials variable is not set: nothing was read from that source."""

    def __init__(self, needed: CredentialsVariable):
        self.needed = needed
        super().__init__(
            f"environment variable {needed.variable} is not set: {needed.source} reads "
            f"{needed.holds} from it (export {needed.variable}=..., or remove the source from "
            "the plan)"
        )

    def __reduce__(self):
        return (type(self), (self.needed,))
