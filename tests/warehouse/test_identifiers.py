"""Identifiers from configuration cannot carry SQL: plan validation rejects them, located.

Ids of KPIs, tactics, sources... reach the warehouse as values (bulk-loaded, never spliced
into SQL text), and table, schema and column names come from code, always quoted. A plan's
own id prefixes its schema names (`demo` -> `demo_raw`), so it must be a plain identifier.
Still, an id that looks like SQL is a mistake or an attack: the loader refuses it before
anything runs.
"""

from __future__ import annotations

import pytest

from kpi_pipeline.definitions import DEFAULT_PLAN
from kpi_pipeline.plan import PlanError, load_plan

DEMO = DEFAULT_PLAN.read_text(encoding="utf-8")
INJECTION = "x'); drop table marts.kpi_snapshots; --"


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        pytest.param(
            "id: demo",
            'id: "demo; drop schema demo_raw cascade"',
            "id",
            id="plan-id",
        ),
        pytest.param("id: demo", "id: Demo_EU", "id", id="plan-id-with-capitals"),
        pytest.param(
            "- id: online_conversion_rate",
            f'- id: "{INJECTION}"',
            "objectives[0].kpis[0].id",
            id="kpi-id",
        ),
        pytest.param(
            "- id: email_newsletter",
            '- id: "email\\"; delete from raw.csv_traffic; --"',
            "objectives[0].strategies[0].tactics[0].id",
            id="tactic-id",
        ),
        pytest.param(
            "- id: sell_more_online",
            '- id: "Sell More Online"',
            "objectives[0].id",
            id="objective-id-with-spaces-and-capitals",
        ),
        pytest.param(
            "- id: ga4_export",
            '- id: "ga4_export; drop schema raw cascade"',
            "sources.csv_exports[0].id",
            id="source-id",
        ),
        pytest.param(
            "- id: quote_form_starts",
            '- id: "starts) or (1=1"',
            "measures[0].id",
            id="measure-id",
        ),
        pytest.param(
            "segments: [tactic, channel, device]",
            'segments: [tactic, channel, "device; drop table plan.kpis"]',
            "objectives[0].kpis[0].segments[2]",
            id="segment-name",
        ),
    ],
)
def test_a_plan_carrying_sql_in_an_identifier_is_rejected_and_located(tmp_path, old, new, path):
    assert DEMO.count(old) == 1, f"edit must match exactly once: {old!r}"
    edited = DEMO.replace(old, new)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(edited, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file)
    located = [issue for issue in caught.value.issues if issue.path == path]
    assert located, f"no issue at {path}: {caught.value}"
    assert located[0].line == next(
        number for number, text in enumerate(edited.splitlines(), 1) if new in text
    )
