"""Commands about the plan itself: validate, schema, prune, grant-readonly."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kpi_pipeline.cli.common import plan_option, plan_warehouse, warehouse_url
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.plan.models import Plan


def register_validate(commands) -> None:
    validate = commands.add_parser("validate", help="check a plan file and summarise it")
    validate.add_argument("plan", type=Path)
    validate.set_defaults(handler=_validate)


def register_schema(commands) -> None:
    schema = commands.add_parser("schema", help="print the plan's JSON Schema")
    schema.set_defaults(handler=_schema)


def register_prune(commands) -> None:
    prune = commands.add_parser(
        "prune",
        help="delete the plan's raw rows of sources it no longer declares, saying how many",
    )
    plan_option(prune)
    prune.add_argument("--dry-run", action="store_true", help="count the rows, delete nothing")
    prune.set_defaults(handler=_prune)


def register_grant(commands) -> None:
    grant = commands.add_parser(
        "grant-readonly", help="let a PostgreSQL role SELECT a plan's marts and nothing else"
    )
    grant.add_argument("role", help="an existing role (lower-case letters, digits, _)")
    plan_option(grant)
    grant.set_defaults(handler=_grant_readonly)


def _validate(args: argparse.Namespace) -> int:
    loaded = load_plan(args.plan)
    plan = loaded.plan
    print(
        f"{args.plan}: valid plan for {plan.organization} — "
        f"{len(plan.objectives)} objectives, {len(plan.iter_tactics())} tactics, "
        f"{len(plan.iter_kpis())} KPIs, timezone {plan.timezone}, plan id {loaded.plan_id}, "
        f"hash {loaded.plan_hash}"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(Plan.model_json_schema(), indent=2))
    return 0


def _prune(args: argparse.Namespace) -> int:
    from kpi_pipeline.loading.plans import prune_undeclared

    loaded, warehouse = plan_warehouse(args)
    try:
        found = prune_undeclared(warehouse, loaded, dry_run=args.dry_run)
    finally:
        warehouse.dispose()
    verb = "would delete" if args.dry_run else "deleted"
    for item in found:
        print(
            f"{verb} {item.rows:,} row(s) of undeclared source {item.source_id!r} from {item.table}"
        )
    total = sum(item.rows for item in found)
    print(
        f"plan {loaded.plan_id!r}: {verb} {total:,} row(s) of sources the plan no longer declares"
    )
    return 0


def _grant_readonly(args: argparse.Namespace) -> int:
    from kpi_pipeline.warehouse.errors import WarehouseError
    from kpi_pipeline.warehouse.roles import has_roles, no_roles_message, url_backend

    backend = url_backend(warehouse_url())
    if not has_roles(backend):
        # Said before opening anything: a DuckDB file need not even exist to know this.
        print(no_roles_message(backend), file=sys.stderr)
        return 2
    _, warehouse = plan_warehouse(args)
    try:
        statements = warehouse.grant_readonly(args.role)
    except WarehouseError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        warehouse.dispose()
    print("\n".join(f"{statement};" for statement in statements))
    return 0
