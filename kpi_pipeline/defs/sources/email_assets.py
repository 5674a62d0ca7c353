"""Raw email tables (campaigns by send day, audience growth) read from Mailchimp and Klaviyo.

Reading and loading (look-back, one transaction, empty days kept) is
`kpi_pipeline.loading.email`; this module wires it to Dagster resources and metadata.
"""

import datetime as dt
import os
from collections.abc import Mapping

import dagster as dg
import pandas as pd

from kpi_pipeline.defs.check_assets import AssetChecks
from kpi_pipeline.defs.keys import PLAN_SOURCES_KEY, table_key
from kpi_pipeline.defs.partitions import failure, run_days
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.defs.sources.partition_rows import add_rows_per_day, frame_rows_by_day
from kpi_pipeline.loading.email import EmailRead, email_start, load_email_sources
from kpi_pipeline.loading.errors import LoadError
from kpi_pipeline.plan.email_config import EmailSource
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.sources.credentials import MissingCredentialsError, email_credentials
from kpi_pipeline.sources.email import (
    EMAIL_CAMPAIGNS,
    EMAIL_LIST_GROWTH,
    EmailApiError,
    EmailAuthError,
    EmailExtract,
    JsonApiClient,
    RetryPolicy,
    extract_email,
    open_email_client,
)


class EmailPlatformResource(dg.ConfigurableResource):
    """One email platform account. `api_key` arrives as a `dg.EnvVar`, never as a value (None
    when the plan's variable is not set: reading the source then raises
    MissingCredentialsError)."""

    api_key: str | None = None
    retry_max_attempts: int = 6
    retry_initial_seconds: float = 1.0
    retry_maximum_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0

    def client(self, source: EmailSource) -> JsonApiClient:
        if not self.api_key:
            raise MissingCredentialsError(email_credentials(source))
        retry = RetryPolicy(
            max_attempts=self.retry_max_attempts,
            initial_seconds=self.retry_initial_seconds,
            maximum_seconds=self.retry_maximum_seconds,
            max_retry_after_seconds=self.max_retry_after_seconds,
        )
        return open_email_client(source, self.api_key, retry=retry)


class MailchimpResource(EmailPlatformResource):
    """Mailchimp Marketing API (reports, campaigns, audience activity)."""


class KlaviyoResource(EmailPlatformResource):
    """Klaviyo REST API (campaigns, campaign values reports)."""


def resource_key(source: EmailSource) -> str:
    return f"email_{source.id}"


def build_email_resources(
    loaded: LoadedPlan, environ: Mapping[str, str] | None = None
) -> dict[str, EmailPlatformResource]:
    """One resource per declared email source, its key read from the variable the plan names,
    when it is set (else the step reading the source says which variable to export)."""
    environ = os.environ if environ is None else environ
    kinds = {"mailchimp": MailchimpResource, "klaviyo": KlaviyoResource}
    resources = {}
    for source in loaded.plan.sources.email:
        needed = email_credentials(source)
        api_key = dg.EnvVar(needed.variable) if needed.is_set(environ) else None
        resources[resource_key(source)] = kinds[source.platform](api_key=api_key)
    return resources


def build_email_assets(
    loaded: LoadedPlan, partitions: dg.PartitionsDefinition, checks: AssetChecks
) -> list[dg.AssetsDefinition]:
    """The email tables exist in every plan (empty without email sources): SQL models read them."""
    plan = loaded.plan
    sources = list(plan.sources.email)
    kinds = {"pandas", *(sorted({s.platform for s in sources}) or ["email"])}
    specs = [
        dg.AssetSpec(
            table_key(EMAIL_CAMPAIGNS),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds=kinds,
            description="Email campaigns by send day: sent, delivered, bounces, unique opens "
            "(machine opens left out where flagged), unique clicks, unsubscribes.",
            metadata={"grain": EMAIL_CAMPAIGNS.grain},
        ),
        dg.AssetSpec(
            table_key(EMAIL_LIST_GROWTH),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds=kinds,
            description="Daily audience growth: subscribes, unsubscribes, other adds, removes.",
            metadata={"grain": EMAIL_LIST_GROWTH.grain},
        ),
    ]

    @dg.multi_asset(
        name="email_platforms",
        specs=specs,
        check_specs=checks.specs(*(spec.key for spec in specs)),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        required_resource_keys={"warehouse", *(resource_key(s) for s in sources)},
    )
    def email_platforms(context: dg.AssetExecutionContext):
        """Read each email source's campaigns for the run's days plus its look-back window."""
        run = run_days(context, loaded)
        first_day, last_day = run.first, run.last
        extracted_at = dt.datetime.now(dt.UTC)
        reads: dict[str, EmailRead] = {}
        for source in sources:
            start = email_start(source, plan, run)
            resource: EmailPlatformResource = getattr(context.resources, resource_key(source))
            try:
                extract = extract_email(
                    resource.client(source),
                    source,
                    first_day=start,
                    last_day=last_day,
                    zone=plan.zone,
                    extracted_at=extracted_at,
                )
            except EmailAuthError as exc:
                raise dg.Failure(
                    description=f"email source {source.id!r} ({source.platform}, key from "
                    f"${source.api_key_env_var}): {exc}",
                    metadata={"env_var": source.api_key_env_var},
                    allow_retries=False,
                ) from None
            except EmailApiError as exc:
                raise dg.Failure(
                    description=f"email source {source.id!r} ({source.platform}): {exc}",
                    allow_retries=False,
                ) from None
            reads[source.id] = EmailRead(source, extract, start)
        wh: WarehouseResource = context.resources.warehouse
        try:
            load_email_sources(wh.get(), reads, run)
        except LoadError as exc:
            raise failure(exc) from None
        extracts = {source_id: (read.extract, read.start) for source_id, read in reads.items()}
        common: dict[str, object] = {
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
        }
        for source in sources:
            extract, start = extracts[source.id]
            common.update(_source_summary(context, source, extract, start))
            common[f"{source.id}/rows"] = len(extract.campaigns) + len(extract.list_growth)
        for spec, frames in (
            (EMAIL_CAMPAIGNS, [e.campaigns for e, _ in extracts.values()]),
            (EMAIL_LIST_GROWTH, [e.list_growth for e, _ in extracts.values()]),
        ):
            rows = add_rows_per_day(context, table_key(spec), frame_rows_by_day(frames))
            yield dg.MaterializeResult(
                asset_key=table_key(spec), metadata={**common, "rows_in_run": rows}
            )
        yield from checks.evaluate(context, wh.get(), *(spec.key for spec in specs))

    return [email_platforms]


def _source_summary(
    context: dg.AssetExecutionContext, source: EmailSource, extract: EmailExtract, start: dt.date
) -> dict[str, object]:
    """Calls, retries and the machine-open exclusion of one source, as metadata."""
    campaigns = extract.campaigns
    flagged = campaigns["machine_unique_opens"].notna() if not campaigns.empty else pd.Series()
    if source.exclude_machine_opens and flagged.any():
        opens = f"machine opens excluded ({extract.machine_opens_excluded} unique opens left out)"
    elif source.exclude_machine_opens:
        opens = f"{source.platform} flags no machine opens: unique opens as reported"
    else:
        opens = "machine opens included (exclude_machine_opens: false)"
    if extract.stats.retries:
        context.log.warning(
            f"email {source.id}: {len(extract.stats.retries)} call(s) retried "
            f"({', '.join(sorted({r.reason for r in extract.stats.retries}))})"
        )
    return {
        f"{source.id}/platform": source.platform,
        f"{source.id}/repulled_from": start.isoformat(),
        f"{source.id}/campaigns": len(campaigns),
        f"{source.id}/requests": extract.stats.requests,
        f"{source.id}/retries": len(extract.stats.retries),
        f"{source.id}/open_counting": opens,
        f"{source.id}/machine_unique_opens_excluded": extract.machine_opens_excluded,
    }
